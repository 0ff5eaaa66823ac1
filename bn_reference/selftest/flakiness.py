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

With ``--mutants`` it watches the kill matrix instead (``killmatrix.run_suite`` over
``MUTANTS`` and ``CORRECT``, the run ``tests/test_kill_matrix.py`` makes):

    python -m bn_reference.selftest.flakiness --mutants [--ci-runs 2] [--dev-runs 2] [--parallel 2]

* ``ci`` runs alternate ``-n 2`` and ``-n 1`` (different worker counts distribute the tests
  differently) under different ``PYTHONHASHSEED``s: every (subject, property, dtype) outcome
  must be the same in all of them, so a catch claimed in ``docs/properties.md`` holds in
  every ``ci`` run (the claims are checked against each run too);
* ``dev`` runs (random ``--hypothesis-seed``, printed) report the catches that depend on the
  seed: (mutant, property) cells whose verdict differs from the ``ci`` one. Not a failure:
  the ``ci`` verdict is the claim, the others show how robust each catch is.
* in every run, ``ci`` or ``dev``: each mutant must fail some property in every dtype it runs
  in (else it *escaped*), and no correct variant may fail (a *false alarm*); either fails the
  guard. ``--run-timeout`` bounds each run (``-n 1`` takes over an hour on 2 cores).
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

from bn_reference.selftest import killmatrix
from bn_reference.selftest.mutants import CORRECT, MUTANTS, specs
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


def kill_matrix_run(profile: str, workers: int | None, hash_seed: int, seed: int | None, extra, timeout: float | None = None) -> dict:
    """One kill-matrix run (``killmatrix.run_suite``, its own example directory): the outcome
    of every (subject, property, dtype) cell, the seconds it took and the README claims it
    did not bear out. ``timeout`` (seconds, None: none) bounds the whole run: the
    ``-n 1`` run takes about twice as long as the ``-n 2`` one, over an hour on 2 cores,
    more than ``run_suite``'s default allows (a guard run ended with ``SuiteError`` there)."""
    wrong, right = specs(MUTANTS), specs(CORRECT)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PYTHONHASHSEED": str(hash_seed), "HYPOTHESIS_STORAGE_DIRECTORY": str(Path(tmp) / "hypothesis")}
        for key in ("CI", "BN_DB", "HYPOTHESIS_PROFILE"):
            os.environ.pop(key, None)
        args = [*extra] + ([] if seed is None else [f"--hypothesis-seed={seed}"])
        start = time.perf_counter()
        junit = killmatrix.run_suite(wrong + right, profile, args, junit_path=Path(tmp) / "junit.xml", workers=workers, env=env, timeout=timeout)
        seconds = time.perf_counter() - start
        cells = killmatrix.parse_cells(junit, wrong + right)
        matrix = killmatrix.parse_junit(junit, wrong + right)
    outcomes = killmatrix.outcomes_of(cells)
    actual = killmatrix.catches(matrix, wrong)
    readme = (killmatrix.repo_root() / killmatrix.TABLE_DOC).read_text()
    unproven = killmatrix.unproven_claims(killmatrix.readme_claims(readme), actual, outcomes)
    return {
        "outcomes": outcomes,
        "seconds": seconds,
        "unproven_claims": unproven,
        "catches": actual,
        "escaped": escaped(outcomes, wrong),
        "false_alarms": sorted(_cell_name(k) for k, o in outcomes.items() if k[0] in right and o == "failed"),
    }


def escaped(outcomes: dict, mutant_specs) -> list[str]:
    """The (mutant, dtype) pairs that ran at least one property and failed none: a mutant
    must be caught in every dtype it is run in (``supports``), by some property."""
    ran: dict[tuple[str, str], bool] = {}
    for (spec, _prop, dtype), outcome in outcomes.items():
        if spec in mutant_specs and outcome in killmatrix.RAN:
            ran[spec, dtype] = ran.get((spec, dtype), False) or outcome == "failed"
    return sorted(f"{killmatrix.short_name(spec)} [{dtype}]" for (spec, dtype), caught in ran.items() if not caught)


def _cell_name(key) -> str:
    spec, prop, dtype = key
    return f"{killmatrix.short_name(spec)} {prop} [{dtype}]"


def mutants_main(args) -> int:
    """``--mutants``: the kill matrix's ci runs must agree cell for cell; dev runs report the
    catches that depend on the seed."""
    from concurrent.futures import ThreadPoolExecutor

    rng = random.SystemRandom()
    plan = [("ci", 2 if i % 2 == 0 else 1, i, None) for i in range(args.ci_runs)]
    plan += [("dev", 2, args.ci_runs + i, rng.randrange(2**32)) for i in range(args.dev_runs)]
    labels = [
        f"{profile} -n {workers} PYTHONHASHSEED={h}" + ("" if seed is None else f" --hypothesis-seed={seed}")
        for profile, workers, h, seed in plan
    ]
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        futures = [pool.submit(kill_matrix_run, profile, workers, h, seed, args.extra, args.run_timeout or None) for profile, workers, h, seed in plan]
        runs, broken = [], []
        for step, label, future in zip(plan, labels, futures):
            try:
                run = future.result()
            except Exception as exc:  # noqa: BLE001 - one run that produced no matrix (SuiteError...)
                broken.append(f"{label}: no kill matrix: {type(exc).__name__}: {str(exc)[-2000:]}")
                print(broken[-1], flush=True)
                continue
            runs.append((step, label, run))
            failed = sum(o == "failed" for o in run["outcomes"].values())
            print(f"{label}: {len(run['outcomes'])} cells, {failed} failed, {run['seconds']:.0f} s", flush=True)
    plan, labels, runs = [r[0] for r in runs], [r[1] for r in runs], [r[2] for r in runs]
    ci = [(label, run) for (profile, *_), label, run in zip(plan, labels, runs) if profile == "ci"]
    nondeterministic, unproven, seed_dependent = [], [], []
    escapes = [f"{label}: {m} escaped (no property failed it)" for label, run in zip(labels, runs) for m in run["escaped"]]
    false_alarms = [f"{label}: {c} failed (a correct variant)" for label, run in zip(labels, runs) for c in run["false_alarms"]]
    if ci:
        base_label, base = ci[0]
        for label, run in ci:
            unproven += [f"{label}: {c}" for c in run["unproven_claims"]]
            if run is base:
                continue
            for key in sorted(set(base["outcomes"]) | set(run["outcomes"])):
                a, b = base["outcomes"].get(key), run["outcomes"].get(key)
                if a != b:
                    nondeterministic.append(f"{_cell_name(key)}: {a} ({base_label}) vs {b} ({label})")
        for (profile, *_), label, run in zip(plan, labels, runs):
            if profile != "dev":
                continue
            for key in sorted(set(base["outcomes"]) | set(run["outcomes"])):
                a, b = base["outcomes"].get(key), run["outcomes"].get(key)
                if a != b:
                    seed_dependent.append(f"{_cell_name(key)}: {a} in ci, {b} under {label}")
    summary = {
        "mode": "mutants",
        "broken_runs": broken,
        "runs": [{"label": label, "seconds": run["seconds"], "cells": len(run["outcomes"])} for label, run in zip(labels, runs)],
        "nondeterministic": nondeterministic,
        "unproven_claims": unproven,
        "seed_dependent": seed_dependent,
        "escaped": escapes,
        "false_alarms": false_alarms,
        "ci_catches": ci[0][1]["catches"] if ci else None,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    cells = len(ci[0][1]["outcomes"]) if ci else 0
    print(
        f"flakiness guard (kill matrix): {len(ci)} ci runs x {cells} cells, {len(nondeterministic)} differing between ci runs, "
        f"{len(unproven)} README claims not borne out; {len(plan) - len(ci)} dev runs, {len(seed_dependent)} seed-dependent cells"
        + (f"; {len(broken)} runs gave no matrix" if broken else "")
        + f"; {len(escapes)} escaped mutants, {len(false_alarms)} false alarms in {len(runs)} runs"
    )
    for line in broken + nondeterministic + unproven + escapes + false_alarms:
        print("  " + line)
    if seed_dependent:
        print("seed-dependent (dev runs; not a failure):")
        for line in seed_dependent:
            print("  " + line)
    failed = broken or nondeterministic or unproven or escapes or false_alarms
    return 1 if failed or len(ci) < min(2, args.ci_runs) else 0


def _summary(runs: list[dict], planned: int, false_alarms: list[str], nondeterministic: list[str]) -> dict:
    """The guard's record so far: ``runs`` of the ``planned`` ones, with what they found."""
    return {
        "runs": len(runs),
        "planned": planned,
        "subjects": SUBJECTS,
        "examples": sum(r["examples"] for r in runs),
        "seconds": sum(r["seconds"] for r in runs),
        "false_alarms": false_alarms,
        "nondeterministic": nondeterministic,
        "per_run": runs,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=None, help="write the summary as JSON here")
    ap.add_argument("--mutants", action="store_true", help="watch the kill matrix (mutants and correct variants) instead")
    ap.add_argument("--ci-runs", type=int, default=2, help="--mutants: ci runs, alternating -n 2 and -n 1")
    ap.add_argument("--dev-runs", type=int, default=2, help="--mutants: runs under random seeds")
    ap.add_argument("--parallel", type=int, default=1, help="--mutants: kill-matrix runs at a time")
    ap.add_argument(
        "--run-timeout", type=float, default=4 * 3600.0, help="--mutants: seconds one kill-matrix run may take (0: no limit)"
    )
    ap.add_argument("extra", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)
    if args.mutants:
        return mutants_main(args)

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
        summary = _summary(runs, args.runs, false_alarms, nondeterministic)
        if args.out:  # after every run: a guard stopped part way still leaves its record
            Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")

    summary = _summary(runs, args.runs, false_alarms, nondeterministic)
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
