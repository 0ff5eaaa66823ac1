"""The gradient properties catch wrong backward passes and pass correct ones, through the
``--bn-impl`` path a user takes (``bn_reference.selftest.grad_mutants``).

Runs ``properties/test_gradients.py`` ONCE in a subprocess (Hypothesis profile ``verdict``:
``ci``'s examples without shrinking; ``-n 2``; each mutant under the properties claimed or
aimed to catch it, ``bn_reference.selftest.claimed``, the correct variants under all) with
one ``--bn-impl`` per gradient mutant and correct variant (each a subject
with the reference's forward and a hand-written NumPy ``vjp``), reads the JUnit report
into a kill matrix, prints it (``-s``), and checks: every mutant is failed by some
gradient property, and by each property aimed at it (``AIMED``); no correct variant fails
any property in any dtype; the table in ``docs/properties.md`` holds for this run.
"""
from __future__ import annotations

import pytest

from bn_reference.selftest import grad_mutants, killmatrix

pytestmark = [pytest.mark.meta, pytest.mark.slow, pytest.mark.gradients]

# The law each mutant breaks, and so the property that must catch it.
AIMED = {
    "no_mean_term": ("test_dx_sums_to_zero", "test_dx_agrees_with_analytic"),
    "no_variance_term": ("test_dx_orthogonal_to_x_hat", "test_dx_agrees_with_analytic"),
    "bessel_in_backward": ("test_gradient_of_degenerate_slices", "test_dx_agrees_with_analytic"),
    "epsilon_outside_sqrt_in_backward": ("test_dx_scales_inversely", "test_dx_agrees_with_analytic"),
    "dscale_over_all_axes": ("test_dgamma",),
    "half_accumulation": ("test_dbeta", "test_dgamma"),
    "masked_backward_ignores_mask": ("test_gradients_follow_the_masked_moments",),
    "masked_means_over_counted": ("test_gradients_follow_the_masked_moments",),
    "masked_mean_terms_everywhere": ("test_gradients_follow_the_masked_moments",),
}


# ci's examples without shrinking (harness.profiles): the same verdicts.
PROFILE = "verdict"


def claims_to_check() -> dict[str, set[str]]:
    """``{property: {mutant names}}``: docs/properties.md's gradient table and ``AIMED``."""
    doc = (killmatrix.repo_root() / "docs" / "properties.md").read_text()
    claims = killmatrix.readme_claims(doc, markers=grad_mutants.MARKERS)
    for name, props in AIMED.items():
        for prop in props:
            claims.setdefault(prop, set()).add(name)
    return claims


def test_gradient_kill_matrix(tmp_path):
    claims = claims_to_check()
    junit, matrix, cells, (wrong, right) = grad_mutants.run(tmp_path / "junit.xml", PROFILE, claims=claims)
    expect = {**{s: "mutant" for s in wrong}, **{s: "correct" for s in right}}
    text = killmatrix.render(matrix, expect=expect, cells=cells)
    (tmp_path / "gradient_kill_matrix.txt").write_text(text)
    print("\n" + text)
    problems = [f"subject with no test in the report: {s}" for s in wrong + right if s not in matrix]
    for s in wrong:
        name = s.split(":", 1)[1]
        missed = [p for p in AIMED[name] if matrix.get(s, {}).get(p) != "failed"]
        if missed:
            problems.append(f"gradient mutant {name} ({getattr(grad_mutants, name).__doc__.strip().splitlines()[0]}) survived {missed}")
        errors = [p for p, o in matrix.get(s, {}).items() if o == "error"]
        if errors:
            problems.append(f"gradient mutant {name}: harness errors in {errors}")
    for s in right:
        bad = [f"{p} [{d}]: {c.message[:300]}" for p, by in cells.get(s, {}).items() for d, c in by.items() if c.outcome in ("failed", "error")]
        if bad:
            problems.append(f"correct variant {s} FAILED (false alarm):\n  " + "\n  ".join(bad))
        skipped = [p for p, o in matrix.get(s, {}).items() if o == "skipped"]
        if skipped:
            problems.append(f"correct variant {s}: skipped {skipped} (it has a vjp)")
    actual = killmatrix.catches(matrix, wrong)
    for prop, names in claims.items():
        unproven = names - set(actual.get(prop, []))
        if unproven:
            problems.append(f"docs/properties.md claims {prop} catches {sorted(unproven)}, but it did not in this run")
    assert not problems, "\n".join(problems) + f"\n\n{text}"
