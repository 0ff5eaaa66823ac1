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
    if result.get("ttff"):
        t = Table(title="time to first failure per mutant (generation only; median over seeds)")
        t.add_column("mutant")
        t.add_column("median s", justify="right")
        t.add_column("per seed", justify="right")
        for r in result["ttff"]:
            med = "not found" if r["median_seconds"] is None else f"{r['median_seconds']:.2f}"
            t.add_row(r["mutant"], med, ", ".join("-" if s is None else f"{s:.2f}" for s in r["seconds"]))
        console.print(t)
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
    return "\n".join(lines) + "\n"


def rewrite_readme(result: dict, readme: Path = ROOT / "docs" / "speed.md") -> None:
    text = readme.read_text()
    start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + markdown(result) + end + tail)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--skip-ttff", action="store_true", help="skip the time-to-first-failure runs")
    ap.add_argument("--readme", action="store_true", help="rewrite the README's benchmark section from the results")
    ap.add_argument("--from-json", metavar="PATH", help="do not measure: render (and --readme) an earlier results file")
    args = ap.parse_args(argv)
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
    if not args.skip_ttff:
        result["ttff"] = time_to_first_failure(args.seeds)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    if args.readme:
        rewrite_readme(result)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
