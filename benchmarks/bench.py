"""bn-props benchmark: how many examples per second the harness affords, what it costs on
top of the subject, how xdist scales, and how fast each mutant is caught.

    python benchmarks/bench.py [--out benchmarks/results.json] [--seeds 1 2 3] [--skip-ttff]

(or ``tox -e bench``). Prints tables and writes JSON. Every figure comes from this one run:

1. **Per property and built-in subject** (default suite, ``-n 1``, profile ``dev``): examples
   per second, and the harness overhead = (time per example) / (time inside the subject
   call per example), both summed over the subject's dtypes. 1.0 would be a free harness.
2. **xdist scaling**: wall time of the default suite (the README's main job) with ``-n 1``
   and ``-n 2``, and their ratio.
3. **Where an example's time goes** (in-process, ``tf_nn`` float32): Hypothesis' floor per
   example, drawing a case, the float64 expectation and bound, the bare subject call.
4. **Time to first failure** for each mutant in ``bn_reference.selftest.mutants.MUTANTS``: profile
   ``explore`` (generation only: no shrinking, no database), one process per seed, without
   xdist; the sum of the mutant's test durations, in suite order, up to and including its
   first failing test (what a CI run spends before it goes red). Median over the seeds.
5. **Vacuous examples per dtype** (in-process, no subject): the share of examples drawn by
   the default strategy (``bn_cases``, derandomized) whose error-model bound exceeds 10% of
   the output's spread (max B > 0.1 ptp(y), y the float64 reference; examples whose output
   is constant are left out), under the strict contract (``tolerance`` item 6, reductions
   in float32) and under ``bn_accumulation="input"`` on the same draws. ``--vacuous-root
   PATH`` measures another checkout's model and strategies the same way (the "before" of
   a change: ``git archive HEAD | tar -x -C PATH``).

Absolute times are noisy on a shared 2-core machine; read the ratios.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ["properties", "-m", "not meta and not layers and not gradients"]


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numpy
    import tensorflow as tf

    return {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "numpy": numpy.__version__,
    }


def run_pytest(args: list[str], env_extra: dict | None = None) -> tuple[float, list[dict], int]:
    """One pytest process with the recorder plugin; returns (wall seconds, records, exit code)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "records.jsonl"
        env = {k: v for k, v in os.environ.items() if k not in ("BN_IMPL", "BN_DB", "CI", "PYTEST_ADDOPTS")}
        env.update(
            PYTHONPATH=os.pathsep.join([str(ROOT / "benchmarks"), env.get("PYTHONPATH", "")]),
            BN_BENCH_OUT=str(out),
            TF_CPP_MIN_LOG_LEVEL="2",
            HYPOTHESIS_STORAGE_DIRECTORY=str(Path(tmp) / "hypothesis"),
            **(env_extra or {}),
        )
        cmd = [sys.executable, "-m", "pytest", "-p", "bench_plugin", "-p", "no:cacheprovider", "-q", *args]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        if proc.returncode not in (0, 1):
            sys.stderr.write(proc.stdout[-4000:])
            raise SystemExit(f"pytest {' '.join(args)} exited {proc.returncode}")
        return wall, records, proc.returncode


def per_property(records: list[dict]) -> list[dict]:
    """Examples/s and overhead per (property without dtype, subject)."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0, 0.0])
    for r in records:
        if r["outcome"] != "passed" or not r["examples"]:
            continue
        prop = r["property"].split("[")[0]
        a = acc[(prop, r["subject"])]
        a[0] += r["duration"]
        a[1] += r["examples"]
        a[2] += r["subject_seconds"]
    rows = []
    for (prop, subject), (duration, examples, inside) in sorted(acc.items()):
        rows.append(
            {
                "property": prop,
                "subject": subject,
                "examples": examples,
                "examples_per_second": examples / duration if duration else None,
                "overhead": duration / inside if inside else None,
            }
        )
    return rows


def time_to_first_failure(seeds: list[int]) -> list[dict]:
    from bn_reference.selftest.mutants import MUTANTS, specs

    per_mutant: dict[str, list[float | None]] = {m: [] for m in MUTANTS}
    for seed in seeds:
        args = [*SUITE, "-p", "no:xdist", f"--hypothesis-seed={seed}", "--hypothesis-profile=explore"]
        for spec in specs(MUTANTS):
            args += ["--bn-impl", spec]
        _, records, _ = run_pytest(args, {"BN_BENCH_STOP_AT_FIRST_FAILURE": "1"})
        spent: dict[str, float] = defaultdict(float)
        found: dict[str, float] = {}
        for r in records:  # in run order (no xdist): suite order
            spec = r["subject"]
            if spec in found:
                continue
            spent[spec] += r["duration"]
            if r["outcome"] == "failed":
                found[spec] = spent[spec]
        for name, spec in zip(MUTANTS, specs(MUTANTS)):
            per_mutant[name].append(found.get(spec))
    rows = []
    for name, times in per_mutant.items():
        got = [t for t in times if t is not None]
        rows.append(
            {
                "mutant": name,
                "seconds": times,
                "median_seconds": statistics.median(got) if len(got) == len(times) else None,
            }
        )
    return rows


def components(n: int = 300) -> dict:
    """Where an example's time goes, in-process, for ``tf_nn`` float32 and the agreement
    property (ms per example): Hypothesis drawing one integer (the engine's floor), drawing
    a whole case (engine + NumPy data generation + the safe-domain check), the property's
    float64 expectation and bound, and the bare subject call on the same cases (warm)."""
    import numpy as np
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from bn_reference.mathematics import strategies as bst
    from bn_reference.mathematics.laws import expected_output, output_bound
    from bn_reference.subjects import load_subject

    subject = load_subject("tf_nn")
    cases: list = []

    def per_example(body) -> float:
        @settings(max_examples=n, database=None, deadline=None)
        @given(data=st.data())
        def t(data):
            body(data)

        t()  # warm: strategy caches, TF's first call
        start = time.perf_counter()
        t()
        return (time.perf_counter() - start) / n * 1e3

    out = {
        "hypothesis_one_integer_ms": per_example(lambda data: data.draw(st.integers(0, 10))),
        "draw_case_ms": per_example(lambda data: cases.append(bst.draw_case(data, subject, "float32"))),
    }
    cases = cases[-n:]
    for c in cases[:20]:
        subject(c.x.copy(), **c.kwargs())  # warm TF
    for key, fn in (
        ("expected_and_bound_ms", lambda c: (expected_output(c), output_bound(c))),
        ("bare_tf_nn_call_ms", lambda c: subject(c.x.copy(), **c.kwargs())),
    ):
        start = time.perf_counter()
        for c in cases:
            fn(c)
        out[key] = (time.perf_counter() - start) / len(cases) * 1e3
    out["median_elements"] = float(np.median([c.x.size for c in cases]))
    return out


VACUOUS_FRACTION = 0.1  # a bound above 10% of the output's spread says nothing useful


def vacuous_shares(examples: int = 400) -> dict:
    """Per dtype: examples drawn, the share with max B > 0.1 ptp(y) under each contract this
    checkout knows, the share of examples with N >= 1024, and the median N."""
    import inspect

    import numpy as np
    from hypothesis import given, settings

    from bn_reference.harness.profiles import probe_settings
    from bn_reference.mathematics import strategies as bst
    from bn_reference.mathematics.reference import batch_norm
    from bn_reference.mathematics.tolerance import bound

    contracts = ("float32", "input") if "accumulation" in inspect.signature(bound).parameters else ("input",)
    out = {}
    for dtype in bst.DTYPES:
        seen = {"n": [], **{c: [] for c in contracts}}

        @settings(probe_settings(examples))
        @given(case=bst.bn_cases(dtypes=(dtype,)))
        def measure(case):
            y = batch_norm(case.x, case.axes, case.scale, case.offset, case.epsilon, dtype=np.float64)
            spread = float(np.ptp(y)) if y.size else 0.0
            if not np.isfinite(spread) or spread == 0:
                return
            seen["n"].append(case.n)
            for c in contracts:
                kw = {"accumulation": c} if len(contracts) == 2 else {}
                with np.errstate(all="ignore"):
                    b = float(np.max(bound(case.x, case.axes, case.scale, case.offset, case.epsilon, **kw)))
                seen[c].append(not b <= VACUOUS_FRACTION * spread)

        measure()
        n = np.array(seen["n"])
        out[dtype] = {
            "examples": int(n.size),
            "long_share": float(np.mean(n >= 1024)) if n.size else 0.0,
            "median_n": float(np.median(n)) if n.size else 0.0,
            **{f"vacuous_{c}": float(np.mean(seen[c])) if seen[c] else 0.0 for c in contracts},
        }
    return out


def vacuous_shares_of(root: Path, examples: int) -> dict:
    """``vacuous_shares`` measured in a subprocess on the checkout at ``root``."""
    code = f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import bench; print(json.dumps(bench.vacuous_shares({examples})))"
    env = {k: v for k, v in os.environ.items() if k not in ("BN_IMPL", "CI")}
    env["PYTHONPATH"] = str(root)
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def render_vacuous(v: dict) -> list[str]:
    lines = []
    for label, shares in (("before", v.get("before")), ("after", v.get("after"))):
        if not shares:
            continue
        parts = []
        for dtype, r in shares.items():
            strict = r.get("vacuous_float32")
            text = f"{dtype}: " + (f"{strict:.1%} strict, " if strict is not None else "") + f"{r['vacuous_input']:.1%} input-accumulation"
            parts.append(text + f" (N >= 1024 in {r['long_share']:.0%}, {r['examples']} examples)")
        lines.append(f"vacuous examples ({label}): " + "; ".join(parts))
    return lines


def isolation_cost(n: int = 200) -> dict:
    """What ``--bn-isolate`` costs (``bn_reference.harness.isolation``), in-process: ms per call
    of ``reference`` and ``tf_nn`` on float32 inputs of 144 elements (about the suite's median)
    and 16384 (the long-axis shapes), with the in-process SIGALRM watchdog and isolated (the
    arguments and the result pickled through a pipe to the child and back); and the child's
    start: the first (the forkserver imports the subjects' modules, TF) and a restart after a
    kill (a fork of the warm server)."""
    import numpy as np

    from bn_reference.harness import isolation
    from bn_reference.mathematics import watchdog
    from bn_reference.subjects import load_subject

    subjects = [load_subject(s) for s in ("reference", "tf_nn")]
    rng = np.random.default_rng(0)
    kwargs = dict(scale=1.0, offset=0.0, epsilon=1e-3, training=True)
    inputs = {144: (rng.standard_normal((4, 6, 6)).astype(np.float32), (0, 1)), 16384: (rng.standard_normal((4096, 4)).astype(np.float32), (0,))}
    isolation.Isolator.preload([s.spec for s in subjects])
    iso = isolation.Isolator(subjects, isolation.default_memory_mb())
    x, axes = inputs[144]
    start = time.perf_counter()
    iso.call(subjects[0], x, axes=axes, **kwargs)
    out: dict = {"first_start_s": time.perf_counter() - start, "calls": []}

    def per_call(call, s, x, axes) -> float:
        begin = time.perf_counter()
        for _ in range(n):
            call(s, x, axes=axes, **kwargs)
        return (time.perf_counter() - begin) / n * 1e3

    for s in subjects:
        for size, (x, axes) in inputs.items():
            for _ in range(10):  # warm: TF's first calls, in both processes
                watchdog.call(s, x, axes=axes, **kwargs)
                iso.call(s, x, axes=axes, **kwargs)
            inside = per_call(watchdog.call, s, x, axes)
            isolated = per_call(iso.call, s, x, axes)
            out["calls"].append({"subject": s.spec, "elements": size, "in_process_ms": inside, "isolated_ms": isolated})
    iso.close()
    x, axes = inputs[144]
    start = time.perf_counter()
    iso.call(subjects[0], x, axes=axes, **kwargs)
    out["restart_s"] = time.perf_counter() - start
    iso.close()
    return out


def render(result: dict) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    buf = StringIO()
    console = Console(file=buf, width=110, color_system=None)
    m = result["machine"]
    console.print(f"bn-props benchmark, {m['date']}: {m['cpu']}, {m['cores']} cores, Python {m['python']}, TF {m['tensorflow']}")
    t = Table(title="examples per second (overhead = time per example / time inside the subject)")
    subjects = sorted({r["subject"] for r in result["properties"]})
    t.add_column("property")
    for s in subjects:
        t.add_column(f"{s} ex/s", justify="right")
        t.add_column("overhead", justify="right")
    cells = {(r["property"], r["subject"]): r for r in result["properties"]}
    for prop in sorted({r["property"] for r in result["properties"]}):
        row = [prop]
        for s in subjects:
            c = cells.get((prop, s))
            row += [f"{c['examples_per_second']:.0f}", f"{c['overhead']:.2f}x"] if c and c["overhead"] else ["", ""]
        t.add_row(*row)
    console.print(t)
    x = result["xdist"]
    console.print(
        f"default suite wall time: -n 1 {x['n1_seconds']:.0f} s, -n 2 {x['n2_seconds']:.0f} s, "
        f"speed-up {x['speedup']:.2f}x"
    )
    c = result.get("components")
    if c:
        console.print(
            "per example, tf_nn float32 agreement (in-process, ms): Hypothesis floor (one integer) "
            f"{c['hypothesis_one_integer_ms']:.2f}, drawing a case {c['draw_case_ms']:.2f}, "
            f"float64 expectation + bound {c['expected_and_bound_ms']:.2f}, bare tf_nn call {c['bare_tf_nn_call_ms']:.2f} "
            f"(median {c['median_elements']:.0f} elements)"
        )
    iso = result.get("isolation")
    if iso:
        console.print(
            "--bn-isolate, ms per call (in-process -> isolated): "
            + "; ".join(f"{c['subject']} {c['elements']} el. {c['in_process_ms']:.2f} -> {c['isolated_ms']:.2f}" for c in iso["calls"])
            + f"; child start {iso['first_start_s']:.1f} s first, {iso['restart_s'] * 1e3:.0f} ms after a kill"
        )
    if result.get("ttff"):
        t = Table(title="time to first failure per mutant (generation only; median over seeds)")
        t.add_column("mutant")
        t.add_column("median s", justify="right")
        t.add_column("per seed", justify="right")
        for r in result["ttff"]:
            med = "not found" if r["median_seconds"] is None else f"{r['median_seconds']:.2f}"
            t.add_row(r["mutant"], med, ", ".join("-" if s is None else f"{s:.2f}" for s in r["seconds"]))
        console.print(t)
    for line in render_vacuous(result.get("vacuous", {})):
        console.print(line)
    return buf.getvalue()


def markdown(result: dict) -> str:
    """The README's benchmark section body (between ``<!-- bench:start -->`` and ``<!-- bench:end -->``)."""
    m, x = result["machine"], result["xdist"]
    lines = [
        f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, Python {m['python']}, TF {m['tensorflow']}, "
        f"NumPy {m['numpy']} (`tox -e bench`; `benchmarks/results.json`).",
        "",
        f"* Default suite (the main job, 3 subjects x 4 dtypes): **{x['n1_seconds']:.0f} s with `-n 1`, "
        f"{x['n2_seconds']:.0f} s with `-n 2`: {x['speedup']:.2f}x**.",
    ]
    c = result.get("components")
    if c:
        lines.append(
            f"* Per example (tf_nn, float32, agreement; ms): Hypothesis' floor {c['hypothesis_one_integer_ms']:.2f}, "
            f"drawing a case {c['draw_case_ms']:.2f}, float64 expectation and bound {c['expected_and_bound_ms']:.2f}, "
            f"the bare `tf_nn` call {c['bare_tf_nn_call_ms']:.2f}."
        )
    iso = result.get("isolation")
    if iso:
        lines.append(
            "* `--bn-isolate` (ms per subject call, in-process -> in the child): "
            + "; ".join(f"{c['subject']}, {c['elements']} elements: {c['in_process_ms']:.2f} -> {c['isolated_ms']:.2f}" for c in iso["calls"])
            + f". The child starts in {iso['first_start_s']:.1f} s (the forkserver imports TF), again in "
            f"{iso['restart_s'] * 1e3:.0f} ms after a hang or crash."
        )
    lines += ["", "| property | reference ex/s | overhead | seed_layer ex/s | overhead | tf_nn ex/s | overhead |", "|---|---|---|---|---|---|---|"]
    cells = {(r["property"], r["subject"]): r for r in result["properties"]}
    for prop in sorted({r["property"] for r in result["properties"]}):
        row = [f"`{prop}`"]
        for s in ("reference", "seed_layer", "tf_nn"):
            cell = cells.get((prop, s))
            row += [f"{cell['examples_per_second']:.0f}", f"{cell['overhead']:.1f}x"] if cell and cell["overhead"] else ["", ""]
        lines.append("| " + " | ".join(row) + " |")
    if result.get("ttff"):
        lines += ["", "Time to first failure (profile `explore`, median of 3 seeds, seconds of the mutant's own tests):", ""]
        lines.append(", ".join(
            f"`{r['mutant']}` {'not found' if r['median_seconds'] is None else format(r['median_seconds'], '.2f')}" for r in result["ttff"]
        ) + ".")
    v = result.get("vacuous")
    if v:
        lines += ["", vacuous_markdown(v)]
    return "\n".join(lines) + "\n"


def vacuous_markdown(v: dict) -> str:
    """The table of vacuous-example shares per dtype, before and after (also in docs/error-model.md)."""
    before, after = v.get("before") or {}, v["after"]
    lines = [
        f"Vacuous examples (error-model bound > 10% of the output's spread; {v['examples']} examples per dtype "
        "drawn by the default strategy, derandomized; counted: those whose output is not constant):",
        "",
        "| dtype | before: model | before: N >= 1024 | after: strict (float32 accumulation) | after: `bn_accumulation = \"input\"` | after: N >= 1024 | counted before / after |",
        "|---|---|---|---|---|---|---|",
    ]
    for dtype, r in after.items():
        b = before.get(dtype, {})
        lines.append(
            f"| {dtype} | {b.get('vacuous_input', float('nan')):.1%} | {b.get('long_share', float('nan')):.0%} | "
            f"{r['vacuous_float32']:.1%} | {r['vacuous_input']:.1%} | {r['long_share']:.0%} | {b.get('examples', '-')} / {r['examples']} |"
        )
    return "\n".join(lines)


def rewrite_block(path: Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``."""
    text = path.read_text()
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + start + body.rstrip("\n") + "\n" + end + tail)


def rewrite_readme(result: dict, readme: Path = ROOT / "docs" / "speed.md") -> None:
    rewrite_block(readme, "bench", markdown(result))


VACUOUS_PAGES = (ROOT / "README.md", ROOT / "docs" / "error-model.md")  # where the vacuous table is printed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--skip-ttff", action="store_true", help="skip the time-to-first-failure runs")
    ap.add_argument("--readme", action="store_true", help="rewrite the README's benchmark section from the results")
    ap.add_argument("--from-json", metavar="PATH", help="do not measure: render (and --readme) an earlier results file")
    ap.add_argument("--vacuous-examples", type=int, default=400, help="examples per dtype for the vacuous-share section")
    ap.add_argument("--vacuous-root", metavar="PATH", help="also measure the vacuous shares of the checkout at PATH (the 'before')")
    ap.add_argument("--vacuous-only", action="store_true", help="measure only the vacuous shares; merge them into --out (with --readme: rewrite their table in README.md and docs/error-model.md)")
    args = ap.parse_args(argv)
    if args.vacuous_only:
        out = Path(args.out)
        result = json.loads(out.read_text()) if out.exists() else {"machine": machine()}
        result["vacuous"] = _vacuous(args)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print("\n".join(render_vacuous(result["vacuous"])))
        print(vacuous_markdown(result["vacuous"]))
        if args.readme:
            for page in VACUOUS_PAGES:
                rewrite_block(page, "vacuous", vacuous_markdown(result["vacuous"]))
        return 0
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        print(render(result))
        if args.readme:
            rewrite_readme(result)
        return 0

    result: dict = {"machine": machine()}
    dev = ["--hypothesis-profile=dev"]
    n1_wall, records, _ = run_pytest([*SUITE, "-n", "1", *dev])
    result["properties"] = per_property(records)
    n2_wall, _, _ = run_pytest([*SUITE, "-n", "2", *dev])
    result["xdist"] = {"n1_seconds": n1_wall, "n2_seconds": n2_wall, "speedup": n1_wall / n2_wall}
    result["components"] = components()
    result["isolation"] = isolation_cost()
    result["vacuous"] = _vacuous(args)
    if not args.skip_ttff:
        result["ttff"] = time_to_first_failure(args.seeds)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    if args.readme:
        rewrite_readme(result)
    print(f"written: {args.out}")
    return 0


def _vacuous(args) -> dict:
    v = {"examples": args.vacuous_examples, "after": vacuous_shares(args.vacuous_examples)}
    if args.vacuous_root:
        v["before"] = vacuous_shares_of(Path(args.vacuous_root), args.vacuous_examples)
    return v


if __name__ == "__main__":
    sys.exit(main())
