"""The framework conformance report: run the property suite on every installed framework
subject and regenerate ``docs/conformance.md`` and ``docs/conformance.html`` (one heat map of
every API, grouped by family; ``harness.report_html``) from the ``--bn-report`` JSON.

    python -m bn_reference.selftest.conformance                      # run, then write docs/conformance.{md,html}
    python -m bn_reference.selftest.conformance --render-only        # rewrite both from the last run's JSON
    python -m bn_reference.selftest.conformance -- -k float32        # extra pytest arguments after --

(``tox -e frameworks`` runs the first.) One pytest run per framework group (PyTorch, JAX,
Flax, ONNX Runtime, Keras on the JAX, PyTorch and TensorFlow backends) whose library imports, each
writing ``OUT/<group>.json``; a group whose framework is missing is listed as not installed
(with the extra that installs it), not run.

The runs use ``--runxfail``: every known finding (``bn_reference.subjects.framework_findings``)
is run as an ordinary test, so its cell records the failure and the smallest falsifying
input Hypothesis shrank it to. The verdict of a cell is then

* ``pass``: the law held on every example (the worst err/bound is shown);
* ``deviation``/``refusal``: it failed, and a finding explains it (its cause is printed);
* ``FAIL``: it failed with no finding: a new discovery (exit status 1);
* ``unreached``: a finding's cell passed: this run's examples did not reach the cause there
  (a finding is listed for every cell its cause reaches, derived from the cause, not only
  where a few examples hit it);
* ``FIXED?``: no cell of a finding's cause failed in the run: the behaviour is gone, delete
  the finding (exit 1);
* ``skip``: the law does not apply (no ``moments``, no refusal declared, ...).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

from bn_reference.subjects import FRAMEWORK_SUBJECTS, REPLICA_SUBJECTS
from bn_reference.subjects._framework import library_version
from bn_reference.subjects.framework_findings import FINDINGS, specs_of

__all__ = ["GROUPS", "FAMILIES", "run", "render", "page_model", "main"]

ROOT = Path(__file__).resolve().parents[2]
DTYPE_ORDER = ("float32", "float64", "float16", "bfloat16")
PROFILE = "conformance"
# The profile each group is published with (issue 24: a cell means something): ``ci``'s 200
# examples per cell for the APIs that run eagerly, and for the synchronized batch norms (the
# replicas group: shards padded to a few block lengths, 126 s at ci on 2 cores); ``compiled``'s 100 for those that compile
# per shape (JAX, Flax, Keras on JAX: bn_compiles, so shapes from a few buckets, each compiled
# once), and for Keras on PyTorch and TensorFlow (a call crosses a process, or Keras' eager
# TF layer), without a time budget; inductor keeps ``conformance`` and its 5-minute budget (each
# bucket compiles C++; the page gives its examples per cell). A profile on the command line
# (CI's regression check: ``-- --hypothesis-profile conformance``) overrides them all.
GROUP_PROFILES = {"pytorch": "ci", "onnxruntime": "ci", "replicas": "ci", "keras_torch": "compiled", "keras_tf": "compiled", "jax": "compiled", "flax": "compiled", "keras_jax": "compiled"}


def _named(prefix: str) -> list[str]:
    """The framework subjects of one group: by name prefix, those called with shards apart."""
    return [n for n in FRAMEWORK_SUBJECTS if n.startswith(prefix) and n not in REPLICA_SUBJECTS]


class Group(NamedTuple):
    """A conformance group: the modules it needs, the extra that installs them, its subjects."""

    modules: tuple[str, ...]
    extra: str
    subjects: list[str]


GROUPS = {
    "pytorch": Group(("torch",), "torch", _named("torch_")),
    "inductor": Group(("torch",), "torch", _named("inductor_")),
    "jax": Group(("jax",), "jax", _named("jax_")),
    "flax": Group(("jax", "flax"), "flax", _named("flax_")),
    "onnxruntime": Group(("onnxruntime", "onnx"), "onnxruntime", _named("ort_")),
    "keras_jax": Group(("jax", "keras"), "jax", _named("keras_jax_")),
    "keras_torch": Group(("torch", "keras"), "torch", _named("keras_torch_")),
    "keras_tf": Group(("tensorflow", "keras"), "tensorflow", _named("keras_tf_")),
    # synchronized batch norm over 2 host devices: Flax (shard_map) and Keras on TF (MirroredStrategy)
    "replicas": Group(("jax", "flax", "tensorflow", "keras"), "flax,tensorflow", list(REPLICA_SUBJECTS)),
}


def installed(group: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in GROUPS[group].modules)


def versions_of(library) -> str:
    """A subject's ``bn_library`` (a distribution, or the API's distribution and then its
    backend's: ``("keras", "jax")``) with the installed versions: ``"keras 3.15.1, jax 0.10.2"``."""
    return ", ".join(f"{d} {library_version(d)}" for d in ((library,) if isinstance(library, str) else library))


def _meta(group: str) -> dict:
    """API and library version of each subject of an installed group (loads the subjects)."""
    from bn_reference.subjects import load_subject

    out = {}
    for name in GROUPS[group].subjects:
        fn = load_subject(name).fn
        out[name] = {"api": getattr(fn, "bn_api", name), "version": versions_of(fn.bn_library), "dtypes": list(getattr(fn, "bn_dtypes", ("float32",)))}
    return out


def xla_cache_entries(cache: Path) -> int:
    """The entries in XLA's persistent compilation cache: 0 is a cold start, where a JAX
    group's seconds include compiling every shape it draws; a derandomized rerun finds them."""
    return sum(1 for _ in cache.iterdir()) if cache.is_dir() else 0


def _cache_state(run: dict) -> str:
    """The Runs table's cell for XLA's cache at a group's start (blank: no JAX, or not recorded)."""
    entries = run.get("xla_cache_entries_at_start")
    if entries is None:
        return ""
    return "cold (empty)" if entries == 0 else f"warm ({entries:,} entries)"


def run(out: Path, groups, pytest_args) -> dict:
    """One pytest run per installed group; returns the metadata (APIs, versions, missing groups)."""
    out.mkdir(parents=True, exist_ok=True)
    meta = _load(out)[0]  # merged: a run of some groups keeps the others' last results
    for group in groups:
        extra, names = GROUPS[group].extra, GROUPS[group].subjects
        meta["missing"].pop(group, None)
        if not installed(group):
            (out / f"{group}.json").unlink(missing_ok=True)
            meta["missing"][group] = f'pip install "bn-props[{extra}]"'
            print(f"conformance: {group}: not installed ({meta['missing'][group]}); skipped", flush=True)
            continue
        meta["subjects"].update(_meta(group))
        args = [sys.executable, "-m", "pytest", "properties", "-m", "not meta and not layers and not gradients", "--runxfail",
                "-p", "no:cacheprovider", "-q", f"--bn-report={out / (group + '.json')}"]
        if not any(a.startswith("--hypothesis-profile") for a in pytest_args):
            profile = GROUP_PROFILES.get(group, PROFILE)
            args.append(f"--hypothesis-profile={profile}")
            if profile == "compiled" and not any(a.startswith("--bn-budget") for a in pytest_args):
                args.append("--bn-budget=0")  # every cell its 100 examples
        if not any(a == "-n" or a.startswith("-n") or a.startswith("--numprocesses") for a in pytest_args):
            args += ["-n", "auto"]
        for name in names:
            args += ["--bn-impl", name]
        args += list(pytest_args)
        print(f"conformance: {group}: {' '.join(args[1:])}", flush=True)
        started = _dt.datetime.now(_dt.timezone.utc)
        env = {
            **os.environ,
            # XLA compiles per new shape (~0.1-1 s each); a derandomized rerun draws the same
            # shapes, so a persistent cache makes it cheap.
            "JAX_COMPILATION_CACHE_DIR": os.environ.get("JAX_COMPILATION_CACHE_DIR", str(out / "jax-cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        }
        cached = xla_cache_entries(Path(env["JAX_COMPILATION_CACHE_DIR"])) if "jax" in GROUPS[group].modules else None
        code = subprocess.call(args, cwd=ROOT, env=env)
        meta["runs"][group] = {
            "exit": code,
            "seconds": round((_dt.datetime.now(_dt.timezone.utc) - started).total_seconds()),
            "pytest_args": list(pytest_args),
        }
        if cached is not None:
            meta["runs"][group]["xla_cache_entries_at_start"] = cached
        (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")  # after each group: a stopped run keeps the finished ones
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# --------------------------------------------------------------------------------------
# Verdicts and rendering
# --------------------------------------------------------------------------------------


def _finding(subject: str, prop: str, dtype: str | None):
    for f in FINDINGS:
        if prop == f.prop and any(subject in specs_of(n) for n in f.subjects) and (f.dtypes is None or dtype in f.dtypes):
            return f
    return None


_PROP = re.compile(r"^(?P<name>[^\[]+)(?:\[(?P<params>.*)\])?$")


def _split(prop: str) -> tuple[str, str | None, str]:
    """``test_zero_mean[float32-training=None]`` -> (``test_zero_mean``, ``float32``, ``training=None``)."""
    m = _PROP.match(prop)
    name, params = m.group("name"), (m.group("params") or "")
    parts = params.split("-") if params else []
    dtype = next((p for p in parts if p in DTYPE_ORDER), None)
    rest = "-".join(p for p in parts if p != dtype)
    return name, dtype, rest


def verdict(result: dict) -> tuple[str, object]:
    """(verdict, finding or None) of one report row."""
    name, dtype, _ = _split(result["property"])
    finding = _finding(result["subject"], name, dtype)
    outcome = result["outcome"]
    if outcome in ("failed", "error", "xfailed"):
        return (finding.kind if finding else "FAIL"), finding
    if outcome == "passed":
        return ("unreached" if finding else "pass"), finding
    return "skip", finding


def fixed_causes(rows) -> dict[str, list[str]]:
    """``{cause: [nodeids]}`` for each finding cause none of whose cells failed in ``rows``
    (every cell it explains passed): the behaviour is gone, or the run never reached it."""
    reached: dict[str, bool] = {}
    cells: dict[str, list[str]] = {}
    for r in rows:
        v, finding = verdict(r)
        if finding is None or v == "skip":
            continue
        reached[finding.cause] = reached.get(finding.cause, False) or v in ("deviation", "refusal")
        cells.setdefault(finding.cause, []).append(r["nodeid"])
    return {cause: cells[cause] for cause, hit in reached.items() if not hit}


_SYMBOL = {"pass": "✓", "deviation": "D", "unreached": "d", "refusal": "R", "FAIL": "✗", "FIXED?": "!", "skip": "·"}


def _load(out: Path):
    meta = json.loads((out / "meta.json").read_text()) if (out / "meta.json").exists() else {"subjects": {}, "missing": {}, "runs": {}}
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.name != "meta.json"]
    return meta, reports


def _short_example(text: str | None, limit: int = 900) -> str:
    if not text:
        return "(not printed)"
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " ..."


WIDTH = 100  # the page's prose and code lines are wrapped here (no line past ~200 characters)


def _wrap(text: str, width: int = WIDTH) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), width) or [""]


def _title(cause: str, limit: int = 110) -> str:
    """A cause's first clause, short enough for a table cell."""
    head = re.split(r"(?<=\.)\s|\s\(", cause, maxsplit=1)[0].rstrip(".:;")
    return head if len(head) <= limit else head[: limit - 3].rsplit(" ", 1)[0] + " ..."


def _code(text: str, width: int = 160) -> list[str]:
    """A code block's lines, hard-wrapped at ``width`` (a long array prints on one line)."""
    out = []
    for line in text.splitlines():
        out += [line[i : i + width] for i in range(0, max(len(line), 1), width)]
    return out


def _worst(ratio) -> str:
    """The worst err/bound of a subject's passing cells; ``-`` when none has a bound (laws of
    exact identities only: the contract, inference)."""
    return "-" if ratio is None else f"{ratio:.3g}"


def _group_of(subject: str) -> str:
    return next((g for g, group in GROUPS.items() if subject in group.subjects), "other")


def render(out: Path) -> tuple[str, int]:
    """``docs/conformance.md`` from ``OUT/*.json`` and ``OUT/meta.json``; returns (text,
    number of FAIL and FIXED? cells). The page opens with the causes (one row each, an id the
    findings cite), then one row per API, then the per-property matrix of each framework
    group (properties down, its APIs across: a screen wide), then the findings, one line each
    citing its cause, and for each cause its smallest falsifying input."""
    meta, reports = _load(out)
    rows = [r for rep in reports for r in rep["results"]]
    created = max((rep["created"] for rep in reports), default="never")
    profile_of = {_group_of(rep["results"][0]["subject"]) if rep["results"] else "?": rep["hypothesis_profile"] for rep in reports}
    by_subject: dict[str, list] = {}
    for r in rows:
        by_subject.setdefault(r["subject"], []).append(r)
    subjects = [s for s in FRAMEWORK_SUBJECTS if s in by_subject]
    problems = 0

    # Verdicts, cells and findings, once.
    cells: dict[str, dict[str, dict[str, str]]] = {}
    examples: dict[str, list[int]] = {}
    causes: dict[str, dict] = {}  # cause text -> {"id", "kind", "cells": [...], "subjects": set(), "first": row}
    counts_of: dict[str, dict[str, int]] = {}
    worst_of: dict[str, float | None] = {}
    for s in subjects:
        counts = {k: 0 for k in _SYMBOL}
        worst = None
        for r in by_subject[s]:
            v, finding = verdict(r)
            counts[v] += 1
            name, dtype, rest = _split(r["property"])
            key = name + (f"[{rest}]" if rest else "")
            cells.setdefault(s, {}).setdefault(key, {})[dtype or "-"] = _SYMBOL[v]
            if r.get("examples"):
                examples.setdefault(s, []).append(int(r["examples"]))
            if v == "pass" and r["worst_ratio"] is not None:
                worst = r["worst_ratio"] if worst is None else max(worst, r["worst_ratio"])
            if finding is not None and v in ("deviation", "refusal", "unreached"):
                c = causes.setdefault(finding.cause, {"kind": finding.kind, "cells": [], "subjects": set(), "first": None, "props": set()})
                c["cells"].append((s, finding.prop, dtype, v))
                c["props"].add(finding.prop)
                if v != "unreached":
                    c["subjects"].add(s)
                    if c["first"] is None and r.get("failure"):
                        c["first"] = r
            if v == "FAIL":
                problems += 1
        counts_of[s], worst_of[s] = counts, worst
    ordered = sorted(causes.items(), key=lambda kv: (min(FRAMEWORK_SUBJECTS_ORDER.get(x, 99) for x in kv[1]["subjects"] or {""}), kv[0]))
    ids = {cause: f"C{i}" for i, (cause, _) in enumerate(ordered, 1)}

    lines = ["# Framework conformance: every major framework's normalization against the same mathematics", ""]
    lines += _wrap(
        "Generated by `tox -e frameworks` (`python -m bn_reference.selftest.conformance`): the property suite on each "
        "framework API as a built-in subject (`bn_reference/subjects/`), on CPU, each API reached for every reduced-axis "
        "set by an exact transpose and reshape into its own layout, so what is checked is the framework's arithmetic. "
        f"Last run {created}, Python {platform.python_version()} on {platform.machine()}. The same run as one heat map, "
        "each deviation opening its cause and smallest input: [conformance.html](conformance.html)."
    )
    lines += [""] + _wrap(
        "Verdicts per cell, in dtype order float32, float64, float16, bfloat16 (the dtypes the API supports): ✓ pass; "
        "D a known deviation (a law broken, its cause below); d a cell the cause reaches that this run's examples did not; "
        "R a declared refusal (an input the API refuses by design); ✗ FAIL (unexplained); ! a cause that no longer "
        "reproduces (no cell of it fails: the run fails, so an upstream fix shows); · not applicable. Every finding is "
        "an xfail in `bn_reference/subjects/framework_findings.py`, listed for every dtype and law its cause reaches."
    )
    lines += ["", "Examples per cell, by group (derandomized: every cell replays). The profile sets the examples a law", "runs; a cell counts every case it drew, those a law rejected (outside the domain) included:", ""]
    lines += ["| group | profile | examples a law runs | cases drawn per cell (median) | seconds |", "|---|---|---|---|---|"]
    for group in GROUPS:
        if (out / f"{group}.json").exists():
            ex = sorted(e for s in GROUPS[group].subjects for e in examples.get(s, []))
            median = ex[len(ex) // 2] if ex else "-"
            profile = profile_of.get(group, "?")
            runs = _PROFILE_EXAMPLES.get(profile, "?")
            lines.append(f"| {group} | `{profile}` | {runs} | {median} | {meta.get('runs', {}).get(group, {}).get('seconds', '?')} |")

    lines += ["", "## Causes", ""]
    if not causes:
        lines.append("None in this run.")
    else:
        lines += ["| id | cause (in full below) | kind | APIs it breaks | cells D/R, d |", "|---|---|---|---|---|"]
        for cause, c in ordered:
            hit = sum(1 for *_, v in c["cells"] if v != "unreached")
            names = sorted(c["subjects"], key=lambda x: FRAMEWORK_SUBJECTS_ORDER.get(x, 99))
            apis = ", ".join(f"`{x}`" for x in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "") or "-"
            lines.append(f"| {ids[cause]} | {_title(cause)} | {c['kind']} | {apis} | {hit}, {len(c['cells']) - hit} |")

    lines += ["", "## Summary: one row per framework API", ""]
    lines += [
        "The contract each API is held to (docs/error-model.md): `default` (float16/bfloat16 reductions in float32, the",
        "elementwise stage in x's dtype); `elementwise f32`, the stricter `bn_elementwise = \"float32\"` (the elementwise",
        "stage in float32 too, rounded once); `input`, `bn_accumulation = \"input\"` (reductions in x's dtype).",
        "",
        "| subject | API | library | dtypes | contract | ✓ | D | R | ✗ | worst err/bound (passing) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    short_contract = {"float32-accumulation": "default", "float32-elementwise": "elementwise f32", "input-accumulation": "input"}
    contract_of = {k: short_contract.get(v, v) for rep in reports for k, v in rep.get("contracts", {}).items()}
    for s in subjects:
        m = meta["subjects"].get(s, {})
        counts = counts_of[s]
        lines.append(
            f"| `{s}` | `{m.get('api', s)}` | {m.get('version', '?')} | {', '.join(m.get('dtypes', []))} | {contract_of.get(s, '?')} | "
            f"{counts['pass']} | {counts['deviation']} | {counts['refusal']} | {counts['FAIL']} | {_worst(worst_of[s])} |"
        )
    for group, how in sorted(meta.get("missing", {}).items()):
        lines.append(f"| {', '.join(f'`{n}`' for n in GROUPS[group].subjects)} | not installed here: `{how}` | | | | | | | | |")

    lines += ["", "## Every property, per group: properties down, APIs across", ""]
    for group, (_, _, names) in GROUPS.items():
        present = [s for s in names if s in cells]
        if not present:
            continue
        keys = sorted({k for s in present for k in cells[s]})
        short = {s: s.removeprefix(group + "_").removeprefix("torch_").removeprefix("jax_").removeprefix("flax_") for s in present}
        lines += [f"### {group}", "", "| property | " + " | ".join(f"`{short[s]}`" for s in present) + " |", "|---|" + "---|" * len(present)]
        for k in keys:
            row = []
            for s in present:
                c = cells[s].get(k, {})
                dtypes = meta["subjects"].get(s, {}).get("dtypes") or DTYPE_ORDER
                row.append(c["-"] if "-" in c else "".join(c.get(d, "") for d in DTYPE_ORDER if d in dtypes))
            lines.append(f"| `{k.removeprefix('test_')}` | " + " | ".join(row) + " |")
        lines.append("")

    lines += ["## Findings: one line each, citing its cause", ""]
    per_cell: dict[tuple, list] = {}
    for cause, c in ordered:
        for s, prop, dtype, v in c["cells"]:
            per_cell.setdefault((s, prop, ids[cause], c["kind"]), []).append((dtype or "-") + ("" if v != "unreached" else " (d)"))
    if not per_cell:
        lines.append("None in this run.")
    for (s, prop, cid, kind), dts in sorted(per_cell.items(), key=lambda kv: (FRAMEWORK_SUBJECTS_ORDER.get(kv[0][0], 99), kv[0][1])):
        lines.append(f"* `{s}` `{prop.removeprefix('test_')}` ({', '.join(dts)}): {kind}, {cid}")

    lines += ["", "## The causes in full, each with its smallest falsifying input", ""]
    for cause, c in ordered:
        lines += [f"### {ids[cause]}: {_title(cause, 80)}", ""] + _wrap(cause) + [""]
        first = c["first"]
        if first is not None:
            f = first["failure"]
            message = "\n".join((f.get("message") or "").strip().splitlines()[:6])
            lines += [f"Smallest falsifying input (`{first['nodeid'].split('::')[-1]}`), as Hypothesis shrank it:", "", "```"]
            lines += _code(_short_example(f.get("falsifying_example") or message)) + ["```", ""]
            if f.get("falsifying_example") and message:
                lines += ["Failure:", "", "```"] + _code(message[:900]) + ["```", ""]
            if f.get("reproduce_failure"):
                lines += [f"Replay: `{f['reproduce_failure']}` above the property, with this subject.", ""]

    bad = [r for r in rows if verdict(r)[0] == "FAIL"]
    fixed = fixed_causes(rows)
    problems += len(fixed)
    if bad or fixed:
        lines += ["", "## Unexplained (✗) and no longer reproducing (!)", ""]
        for r in bad:
            first_line = (r.get("failure") or {}).get("message", "").splitlines()[:1]
            lines += _wrap(f"* `{r['nodeid']}`: FAIL" + (f": {first_line[0][:160]}" if first_line else ""), 180)
        for cause, nodeids in fixed.items():
            lines += _wrap(f"* ! no cell of this cause failed ({len(nodeids)} cells, e.g. `{nodeids[0]}`): {_title(cause)}", 180)
    runs = meta.get("runs", {})
    if runs:
        lines += ["", "## Runs", ""]
        lines += _wrap(
            "The JAX groups compile each new shape with XLA; their seconds depend on the persistent "
            "compilation cache (`--out`'s `jax-cache`) they started with: cold on a first run, warm on a rerun of "
            "the same draws.")
        lines += ["", "| group | seconds | XLA cache at start | extra pytest arguments |", "|---|---|---|---|"]
        lines += [f"| {g} | {v.get('seconds', '?')} | {_cache_state(v)} | `{' '.join(v.get('pytest_args', [])) or '-'}` |" for g, v in runs.items()]
    return "\n".join(lines) + "\n", problems


FRAMEWORK_SUBJECTS_ORDER = {name: i for i, name in enumerate(FRAMEWORK_SUBJECTS)}
_PROFILE_EXAMPLES = {"ci": 200, "compiled": 100, "conformance": 20}


# The page's column groups, in order: the normalization each API computes (its name says).
# jax.nn.standardize normalizes over the axes it is given with no affine: layer norm's family.
FAMILIES = (("BN", ("batch_norm",)), ("LN", ("layer_norm", "standardize")), ("GN", ("group_norm",)), ("IN", ("instance_norm",)), ("RMS", ("rms",)))
_MARK = {"pass": "pass", "deviation": "deviation", "refusal": "refusal", "FAIL": "fail", "FIXED?": "xpass", "unreached": "xpass", "skip": "skip"}


def family(subject: str) -> str:
    return next((name for name, keys in FAMILIES if any(k in subject for k in keys)), "other")


def page_model(out: Path) -> dict:
    """The model of ``docs/conformance.html`` (``harness.report_html``) from ``OUT/*.json``
    and ``OUT/meta.json``: the same verdicts as ``render``, one column per API and dtype,
    grouped by family; a deviation or refusal cell opens its cause and the smallest input
    Hypothesis shrank it to."""
    from bn_reference.harness import report_html

    meta, reports = _load(out)
    order = [name for fam, _ in FAMILIES + (("other", ()),) for name in FRAMEWORK_SUBJECTS if family(name) == fam]
    rows = [r for rep in reports for r in rep["results"]]
    present = {r["subject"] for r in rows}
    merged = {"subjects": [s for s in order if s in present], "results": rows}
    model = report_html.from_report(merged, repro=False)
    problems, findings = [], {}
    for i, cell in enumerate(model["cells"]):
        result = rows[i]
        v, finding = verdict(result)
        cell["mark"] = "error" if v == "FAIL" and result["outcome"] == "error" else _MARK[v]
        if finding is not None:
            cell["note"] = ("No longer reproduces; the finding said: " if v == "FIXED?" else "") + finding.cause
        if cell["failure"]:  # the page shows the message and the shrunk input; the bytes and repros stay with the run
            cell["failure"] = {k: v for k, v in cell["failure"].items() if k not in ("calls", "repro")}
        if v in ("FAIL", "FIXED?"):
            problems.append(report_html.cell_item(model["cells"], i))
        elif v in ("deviation", "refusal"):
            findings.setdefault((result["subject"], finding.prop), []).append(i)
    for s in model["subjects"]:
        m = meta["subjects"].get(s["name"], {})
        s.update(group=family(s["name"]), api=m.get("api"), version=m.get("version"), dtypes=m.get("dtypes") or s["dtypes"])
    model["not_run"] = [
        {"subject": name, "why": f"the {group} group was not in this run (no {group}.json); tox -e frameworks runs every group"}
        for group, (_, _, names) in GROUPS.items() if group not in meta.get("missing", {}) and not (out / f"{group}.json").exists()
        for name in names if name not in present
    ] + [{"subject": name, "why": f"not installed: {how}"} for group, how in sorted(meta.get("missing", {}).items()) for name in GROUPS[group].subjects]
    profiles = sorted({rep["hypothesis_profile"] for rep in reports})
    versions = sorted({m.get("version") for m in meta["subjects"].values() if m.get("version")})
    model["title"] = "Framework conformance: every framework's normalization against the same mathematics"
    model["intro"] = [
        "Generated by tox -e frameworks (python -m bn_reference.selftest.conformance), beside docs/conformance.md: "
        "the property suite on each framework API as a built-in subject, on CPU, each API reached for every "
        "reduced-axis set by an exact transpose and reshape into its own layout.",
        "D: a known deviation (a law broken; bn_reference/subjects/framework_findings.py holds its cause in the "
        "library's source), R: a refusal by design, both strict xfails in CI; a cell coloured by its worst err/bound "
        "passed. Click a cell for its figures, and a D or R cell for its cause and smallest falsifying input.",
    ]
    model["header"] = [
        ["last run", max((rep["created"] for rep in reports), default="never")],
        ["Hypothesis profile", ", ".join(profiles) or "-"],
        ["seed", "derandomized (every cell replays)"],
        ["versions", f"python {platform.python_version()}, " + "; ".join(versions)],
        ["not installed", "; ".join(f"{g}: {how}" for g, how in sorted(meta.get("missing", {}).items())) or "-"],
    ]
    items = []
    for (subject, prop), cells in sorted(findings.items()):
        dts = ", ".join(sorted({model["cells"][i]["dtype"] or "-" for i in cells}, key=lambda d: DTYPE_ORDER.index(d) if d in DTYPE_ORDER else 9))
        items.append(report_html.cell_item(model["cells"], cells[0], label=f"{subject} · {prop} ({model['cells'][cells[0]]['mark']}; {dts})"))
    model["lists"] = ([{"title": f"Unexplained ({len(problems)})", "text": "FAIL or a finding that no longer reproduces.", "items": problems}] if problems else []) + [
        {"title": f"Findings ({len(items)})", "text": "Each deviation and refusal: its cause in the library's source; the link opens its smallest input.", "items": items}
    ]
    return model


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(prog="python -m bn_reference.selftest.conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / ".bn-props" / "conformance"), help="directory for the per-group JSON reports")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "conformance.md"), help="the Markdown page to (re)write")
    parser.add_argument("--html", default=None, help="the HTML page to (re)write (default: docs/conformance.html when --doc is the default, else none)")
    parser.add_argument("--groups", default=",".join(GROUPS), help=f"comma-separated subset of {', '.join(GROUPS)}")
    parser.add_argument("--render-only", action="store_true", help="do not run pytest; render from the JSON already in --out")
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"--groups: unknown {unknown}; choose from {', '.join(GROUPS)}")
    out = Path(args.out)
    if not args.render_only:
        run(out, groups, extra)
    text, problems = render(out)
    Path(args.doc).write_text(text)
    print(f"conformance: wrote {args.doc} ({problems} unexplained or fixed cells)")
    html_path = args.html or (str(ROOT / "docs" / "conformance.html") if Path(args.doc) == ROOT / "docs" / "conformance.md" else None)
    if html_path:
        from bn_reference.harness import report_html

        Path(html_path).write_text(report_html.page(page_model(out)), encoding="utf-8")
        print(f"conformance: wrote {html_path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
