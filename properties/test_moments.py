"""Laws of the normalized output's moments, and of the moments themselves."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference import strategies as bst
from bn_reference.laws import check_unit_variance, check_zero_mean, law_of_total_variance, run


@given(case=bst.bn_cases())
def test_zero_mean(subject, case):
    """mean_A((y - beta) / gamma) = 0 over the reduced axes A, checked as
    |mean_A(y - beta)| <= mean_A(B)."""
    check_zero_mean(run(subject, case), case)


@given(case=bst.bn_cases())
def test_unit_variance(subject, case):
    """var_A((y - beta) / gamma) = sigma^2 / (sigma^2 + eps): epsilon is part of the law,
    so the variance is not exactly 1 (and is 0 on a constant slice)."""
    check_unit_variance(run(subject, case), case)


@given(case=bst.bn_cases(min_axes=2), data=st.data())
def test_moment_decomposition(subject, case, data):
    """For A = A1 | A2 disjoint: mean_A = mean_A2(mean_A1) and
    var_A = mean_A2(var_A1) + var_A2(mean_A1) (law of total variance; the seed notebook's
    "dismantled" moments over [0, 2], for every split), on the subject's own moments."""
    if subject.moments is None:
        pytest.skip(f"{subject.spec} exposes no moments(x, *, axes) attribute")
    a1, a2 = data.draw(bst.axis_splits(case.axes), label="A1, A2")
    law_of_total_variance(subject.moments, case.x, a1, a2)
