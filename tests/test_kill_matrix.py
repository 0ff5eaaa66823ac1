"""The harness's self-test: every mutant in ``bn_reference.selftest.mutants`` is caught by at least
one property, and no correct variant is failed by any.

The matrix is checked in groups (``GROUPS``), one test each, so that ``pytest -n 2`` runs
them on both workers (one group of 16 minutes was the whole run's floor): all the mutants,
each under the properties docs/properties.md claims catch it (``bn_reference.selftest.claimed``),
in one group; each correct variant under every property in a group of its own, the costliest
(``keras_layer_norm``) split by dtype. Each group runs the property suite once in a
subprocess without xdist (``bn_reference.selftest.killmatrix.run_suite``, Hypothesis profile
``verdict``: ``ci``'s examples, no shrinking; the verdicts do not depend on the worker
count, ``tox -e flaky-mutants``), reads its JUnit report into a kill matrix (subject x
property), prints it (``-s`` shows it) and writes it to ``kill_matrix.txt`` in the test's
tmp_path. What the groups check together is what one run checked: every mutant caught, each
claim of the table held (a claim names one property and one mutant: it is checked in the
mutants' group), every correct variant passing every property in every dtype (the dtype
slices of a split variant cover all of its tests: ``none`` takes those without a dtype).
Minutes, not seconds: deselect with ``-m "not slow"``.
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


# (group id, correct variant or None for the mutants' group, dtypes or None for all). The
# order is the order of the tests: the costliest first, so that with -n 2 the last group to
# start is a short one (measured on 2 shared cores: a whole correct variant ~77 s of CPU, the
# mutants' group 45 s, a dtype of ``keras_layer_norm``, a third of the old matrix, 42 s).
GROUPS = [
    *[(name, name, None) for name in mutants.CORRECT if name != "keras_layer_norm"],
    ("mutants", None, None),
    *[(f"keras_layer_norm-{d}", "keras_layer_norm", d.split("+")) for d in ("float32", "float64", "float16", "bfloat16+none")],
]


# Correct variants checked under their family's laws only: without a mask, ``masked_two_pass``
# is ``float32_two_pass``'s kernel (both call ``mutants._half_bn``), which its own group
# checks under every law; run again, the plain laws would repeat those verdicts (~60 s).
FAMILY_ONLY = {"masked_two_pass": ("properties/test_masked.py",)}


@pytest.mark.parametrize("variant,dtypes", [pytest.param(v, d, id=g) for g, v, d in GROUPS])
def test_kill_matrix(tmp_path, variant, dtypes):
    wrong = mutants.specs(mutants.MUTANTS) if variant is None else []
    right = mutants.specs([variant]) if variant is not None else []
    specs = wrong + right
    claims = killmatrix.readme_claims((ROOT / "docs" / "properties.md").read_text())
    started = time.monotonic()
    if wrong:  # each mutant under the properties claimed to catch it
        narrowed = claimed.child_args(claims, wrong, tmp_path)
    else:
        narrowed = claimed.dtype_args(dtypes)
    paths = FAMILY_ONLY.get(variant, killmatrix.PROPERTIES)
    junit = killmatrix.run_suite(specs, PROFILE, narrowed, junit_path=tmp_path / "junit.xml", root=ROOT, workers=None, paths=paths)
    elapsed = time.monotonic() - started
    cells = killmatrix.parse_cells(junit, specs)
    matrix = killmatrix.parse_junit(junit, specs)
    expect = {**{s: "mutant" for s in wrong}, **{s: "correct" for s in right}}
    text = killmatrix.render(matrix, expect=expect, cells=cells)
    slice_ = f", dtypes {', '.join(dtypes)}" if dtypes else ""
    text += f"\n{len(specs)} subjects{slice_}, profile {PROFILE!r}, mutants under their claimed properties only (blank: not run): property suite took {elapsed:.0f} s (wall)\n"
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
        ran = [c for by_dtype in cells.get(s, {}).values() for c in by_dtype.values() if c.outcome in killmatrix.RAN]
        if s in matrix and not ran:
            problems.append(f"correct variant {s}: no property ran{slice_}")
    for s in wrong:
        errors = [ln for ln in _explain(cells, s) if ln.lstrip().startswith("error")]
        if errors:
            problems.append(f"mutant {s}: harness errors (not failures):\n" + "\n".join(errors))
    # The "what each property catches" table (docs/properties.md) must be true of this run.
    if wrong:
        actual = killmatrix.catches(matrix, wrong)
        for prop, names in claims.items():
            unproven = names - set(actual.get(prop, []))
            if unproven:
                problems.append(f"README claims {prop} catches {sorted(unproven)}, but it did not in this run")
    assert not problems, "\n".join(problems) + f"\n\n{text}"


def test_groups_cover_the_whole_matrix():
    """Every mutant and every correct variant is in some group, and a correct variant split
    by dtype is split into slices that cover every dtype and the tests without one."""
    from bn_reference.subjects import KNOWN_DTYPES

    assert {v for _, v, _ in GROUPS if v is not None} == set(mutants.CORRECT)
    assert sum(v is None for _, v, _ in GROUPS) == 1  # one group holds every mutant
    for variant in mutants.CORRECT:
        slices = [d for _, v, d in GROUPS if v == variant]
        if slices != [None]:
            covered = [x for d in slices for x in d]
            assert sorted(covered) == sorted([*KNOWN_DTYPES, claimed.NO_DTYPE]), (variant, slices)
