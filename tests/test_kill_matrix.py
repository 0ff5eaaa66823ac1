"""The harness's self-test: every mutant in ``bn_reference.selftest.mutants`` is caught by at least
one property, and no correct variant is failed by any.

Runs the property suite ONCE in a subprocess (``bn_reference.selftest.killmatrix.run_suite``,
Hypothesis profile ``verdict``: ``ci``'s examples, no shrinking; ``-n 2``) with one
``--bn-impl`` per mutant and correct variant, each mutant under the properties
docs/properties.md claims catch it (``bn_reference.selftest.claimed``; the correct variants
under all),
reads the JUnit report into a kill matrix (subject x property), prints it (``-s`` shows
it) and writes it to ``kill_matrix.txt`` in the test's tmp_path. Minutes, not seconds:
deselect with ``-m "not slow"``.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from bn_reference.selftest import claimed, killmatrix
from bn_reference.selftest import mutants

pytestmark = [pytest.mark.meta, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]  # tests/ -> repo root
# ci's examples without shrinking (harness.profiles): the same verdicts, and a caught mutant's
# smallest input is not what this test asks for.
PROFILE = "verdict"


def _explain(cells, spec) -> list[str]:
    """One line per failed/errored (property, dtype) of a subject: message and ratio."""
    lines = []
    for prop, by_dtype in sorted(cells.get(spec, {}).items()):
        for dtype, cell in sorted(by_dtype.items(), key=lambda kv: str(kv[0])):
            if cell.outcome in ("failed", "error"):
                ratio = "" if cell.ratio is None else f" (worst err/bound before failing {cell.ratio:.3g})"
                lines.append(f"    {cell.outcome}: {prop} [{dtype}]: {cell.message[:300]}{ratio}")
    return lines


def test_kill_matrix(tmp_path):
    wrong = mutants.specs(mutants.MUTANTS)
    right = mutants.specs(mutants.CORRECT)
    specs = wrong + right
    claims = killmatrix.readme_claims((ROOT / "docs" / "properties.md").read_text())
    started = time.monotonic()
    narrowed = claimed.child_args(claims, wrong, tmp_path)  # each mutant under the properties claimed to catch it
    junit = killmatrix.run_suite(specs, PROFILE, narrowed, junit_path=tmp_path / "junit.xml", root=ROOT)
    elapsed = time.monotonic() - started
    cells = killmatrix.parse_cells(junit, specs)
    matrix = killmatrix.parse_junit(junit, specs)
    expect = {**{s: "mutant" for s in wrong}, **{s: "correct" for s in right}}
    text = killmatrix.render(matrix, expect=expect, cells=cells)
    text += f"\n{len(specs)} subjects, profile {PROFILE!r}, mutants under their claimed properties only (blank: not run): property suite took {elapsed:.0f} s (wall)\n"
    text += f"junit report: {junit}\n"
    (tmp_path / "kill_matrix.txt").write_text(text)
    print()
    print(text)

    problems = []
    missing = [s for s in specs if s not in matrix]
    if missing:
        problems.append(f"subjects with no test in the report: {missing}")
    survivors = [s for s in wrong if s in matrix and not killmatrix.killers(matrix[s])]
    for s in survivors:
        problems.append(f"mutant {s} SURVIVED every property ({mutants.__dict__[s.split(':')[1]].__doc__.strip().splitlines()[0]})")
    for s in right:
        bad = _explain(cells, s)
        if bad:
            problems.append(f"correct variant {s} FAILED (false alarm):\n" + "\n".join(bad))
    for s in wrong:
        errors = [ln for ln in _explain(cells, s) if ln.lstrip().startswith("error")]
        if errors:
            problems.append(f"mutant {s}: harness errors (not failures):\n" + "\n".join(errors))
    # The "what each property catches" table (docs/properties.md) must be true of this run.
    actual = killmatrix.catches(matrix, wrong)
    for prop, names in claims.items():
        unproven = names - set(actual.get(prop, []))
        if unproven:
            problems.append(f"README claims {prop} catches {sorted(unproven)}, but it did not in this run")
    assert not problems, "\n".join(problems) + f"\n\n{text}"
