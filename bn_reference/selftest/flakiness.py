"""The flakiness guard: run the property suite many times on the correct subjects and fail on
any false alarm or any non-determinism.

    python -m bn_reference.selftest.flakiness [--runs 20] [--out flakiness.json] [-- extra pytest args]

(``tox -e flaky``). The runs alternate between

* the ``ci`` profile (derandomized): every such run must give the same verdict, the same
  number of examples and the same worst err/bound ratio in every cell, bit for bit;
  anything else is non-determinism (state leaking between tests or runs, hash-order
  dependence: each run has its own ``PYTHONHASHSEED``, a race between xdist workers, a
  time-dependent subject);
* the ``dev`` profile under a fresh random seed (``--hypothesis-seed``, printed): every run
  must pass, a failure on a correct subject is a false alarm of a property or of the error
  model, replayable with the printed seed (and the ``@reproduce_failure`` blob in its log).

Correct subjects: the built-in ones and ``bn_reference.selftest.mutants.CORRECT``. Each run is one
``pytest -n 2`` process writing ``--bn-report`` JSON; the guard compares the reports.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bn_reference.selftest.mutants import CORRECT, specs
from bn_reference.subjects import BUILTINS

SUITE = ["properties", "-m", "not meta and not layers and not gradients", "-n", "2", "-p", "no:cacheprovider"]
SUBJECTS = [*BUILTINS, *specs(CORRECT)]


def run_once(profile: str, seed: int | None, extra: list[str], hash_seed: int = 0) -> tuple[dict, float, str]:
    """One pytest run (``PYTHONHASHSEED=hash_seed``: set and dict orders differ between runs);
    returns (report cells by (subject, property), seconds, log tail)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        args = [*SUITE, f"--hypothesis-profile={profile}", f"--bn-report={report}", *extra]
        if seed is not None:
            args.append(f"--hypothesis-seed={seed}")
        for s in SUBJECTS:
            args += ["--bn-impl", s]
        env = {k: v for k, v in os.environ.items() if k not in ("BN_IMPL", "BN_DB", "CI", "HYPOTHESIS_PROFILE")}
        env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(Path(tmp) / "hypothesis")  # no replays from earlier runs
        env["PYTHONHASHSEED"] = str(hash_seed)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", *args], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode not in (0, 1) or not report.exists():
            raise SystemExit(f"pytest exited {proc.returncode} without a report:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
        data = json.loads(report.read_text())
    cells = {(c["subject"], c["property"]): c for c in data["results"]}
    return cells, seconds, proc.stdout[-6000:]


def fingerprint(cell: dict) -> tuple:
    return (cell["outcome"], cell.get("examples"), cell.get("worst_ratio"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=None, help="write the summary as JSON here")
    ap.add_argument("extra", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)

    rng = random.SystemRandom()
    baseline: dict | None = None
    false_alarms: list[str] = []
    nondeterministic: list[str] = []
    runs = []
    for i in range(args.runs):
        profile, seed = ("ci", None) if i % 2 == 0 else ("dev", rng.randrange(2**32))
        cells, seconds, log = run_once(profile, seed, args.extra, hash_seed=i)
        bad = sorted(f"{s} {p}: {c['outcome']}" for (s, p), c in cells.items() if c["outcome"] not in ("passed", "xfailed", "skipped"))
        label = f"run {i + 1}/{args.runs} ({profile}{'' if seed is None else f', --hypothesis-seed={seed}'})"
        if bad:
            false_alarms += [f"{label}: {b}" for b in bad]
            print(log, file=sys.stderr)
        changed = []
        if profile == "ci":
            if baseline is None:
                baseline = cells
            else:
                keys = set(baseline) | set(cells)
                changed = sorted(
                    f"{s} {p}: {fingerprint(baseline[(s, p)]) if (s, p) in baseline else None} -> "
                    f"{fingerprint(cells[(s, p)]) if (s, p) in cells else None}"
                    for s, p in keys
                    if (s, p) not in baseline or (s, p) not in cells or fingerprint(baseline[(s, p)]) != fingerprint(cells[(s, p)])
                )
                nondeterministic += [f"{label}: {c}" for c in changed]
        examples = sum(c.get("examples") or 0 for c in cells.values())
        runs.append({"profile": profile, "seed": seed, "seconds": seconds, "cells": len(cells), "examples": examples, "false_alarms": len(bad), "changed": len(changed)})
        print(f"{label}: {len(cells)} cells, {examples} examples, {len(bad)} failing, {len(changed)} changed vs run 1, {seconds:.0f} s", flush=True)

    summary = {
        "runs": len(runs),
        "subjects": SUBJECTS,
        "examples": sum(r["examples"] for r in runs),
        "seconds": sum(r["seconds"] for r in runs),
        "false_alarms": false_alarms,
        "nondeterministic": nondeterministic,
        "per_run": runs,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"flakiness guard: {summary['runs']} runs ({sum(r['profile'] == 'ci' for r in runs)} ci, "
        f"{sum(r['profile'] == 'dev' for r in runs)} random seeds), {summary['examples']} examples, "
        f"{len(false_alarms)} false alarms, {len(nondeterministic)} non-deterministic cells, {summary['seconds'] / 60:.1f} min"
    )
    for line in false_alarms + nondeterministic:
        print("  " + line)
    return 1 if false_alarms or nondeterministic else 0


if __name__ == "__main__":
    sys.exit(main())
