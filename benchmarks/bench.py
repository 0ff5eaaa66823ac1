"""bn-props benchmark: how many examples per second the harness affords, what it costs on
top of the subject, how xdist scales, and how fast each mutant is caught.

    python benchmarks/bench.py [--out benchmarks/results.json] [--seeds 1 2 3] [--skip-ttff]

(or ``tox -e bench``). Prints tables and writes JSON. Every figure comes from this one run:

1. **Per property and built-in subject** (default suite, ``-n 1``, profile ``dev``): examples
   per second, and the harness overhead = (time per example) / (time inside the subject
   call per example), both summed over the subject's dtypes. 1.0 would be a free harness.
2. **xdist scaling**: wall time of the default suite (the README's main job) with ``-n 1``
   and ``-n 2``, and their ratio.
3. **Time to first failure** for each mutant in ``bn_reference.mutants.MUTANTS``: profile
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
    from bn_reference.mutants import MUTANTS, specs

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--skip-ttff", action="store_true", help="skip the time-to-first-failure runs")
    args = ap.parse_args(argv)

    result: dict = {"machine": machine()}
    dev = ["--hypothesis-profile=dev"]
    n1_wall, records, _ = run_pytest([*SUITE, "-n", "1", *dev])
    result["properties"] = per_property(records)
    n2_wall, _, _ = run_pytest([*SUITE, "-n", "2", *dev])
    result["xdist"] = {"n1_seconds": n1_wall, "n2_seconds": n2_wall, "speedup": n1_wall / n2_wall}
    if not args.skip_ttff:
        result["ttff"] = time_to_first_failure(args.seeds)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
