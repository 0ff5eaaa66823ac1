"""Laws of the normalized output's moments, and of the moments themselves."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.laws import check_parallel_merge, check_unit_variance, check_zero_mean, law_of_total_variance, run


EPSILON_LAW = "epsilon sensitivity (eps inside the sqrt): with sigma^2 ~ eps, var_A(y) = gamma^2 sigma^2 / (sigma^2 + eps)"


def _moments_of(subject):
    if subject.moments is None:
        pytest.skip(f"{subject.spec} exposes no moments(x, *, axes) attribute (see bn_reference.subjects)")
    return subject.moments


@given(data=st.data())
def test_zero_mean(subject, dtype, data):
    """mean_A((y - beta) / gamma) = 0 over the reduced axes A, checked as
    |mean_A(y - beta)| <= mean_A(B)."""
    case = bst.draw_case(data, subject, dtype)
    check_zero_mean(run(subject, case), case)


@given(data=st.data())
def test_unit_variance(subject, dtype, data):
    """var_A((y - beta) / gamma) = sigma^2 / (sigma^2 + eps): epsilon is part of the law,
    so the variance is not exactly 1 (and is 0 on a constant slice)."""
    case = bst.draw_case(data, subject, dtype)
    check_unit_variance(run(subject, case), case)


@given(data=st.data())
def test_epsilon_sensitivity(subject, dtype, data):
    """With sigma^2 comparable to eps, var_A(y) = gamma^2 sigma^2 / (sigma^2 + eps) is far
    from gamma^2: eps inside the sqrt gives exactly this; eps outside the sqrt gives
    sigma^2 / (sigma + eps)^2 and a forgotten eps gives 1 - both outside the bound."""
    case = bst.draw_case(data, subject, dtype, strategy=bst.epsilon_comparable_cases(dtype, subject.axes_sets, subject.accumulation))
    check_unit_variance(run(subject, case), case, law=EPSILON_LAW)


@given(data=st.data())
def test_moment_decomposition(subject, dtype, data):
    """For A = A1 | A2 disjoint: mean_A = mean_A2(mean_A1) and
    var_A = mean_A2(var_A1) + var_A2(mean_A1) (law of total variance; the seed notebook's
    "dismantled" moments over [0, 2], for every split), on the subject's own moments."""
    moments = _moments_of(subject)
    case = bst.draw_case(data, subject, dtype, min_axes=2)
    a1, a2 = data.draw(bst.axis_splits(case.axes), label="A1, A2")
    law_of_total_variance(moments, case.x, a1, a2, accumulation=subject.accumulation)


@given(data=st.data())
def test_parallel_merge(subject, dtype, data):
    """Cut the slices along one reduced axis into unequal chunks; the chunks' moments merged
    with Chan's formula (delta = m_b - m_a, M2 = M2_a + M2_b + delta^2 n_a n_b / n) equal the
    moments of the whole. Bound: each chunk's moment error, weighted by n_i / n, plus the
    whole's, plus 4 s E + 12 E^2 for the between-chunk term (s = max |m_i - m|)."""
    moments = _moments_of(subject)
    shapes = st.one_of(bst.shapes(min_side=2), bst.long_shapes(min_c=2))
    case = bst.draw_case(data, subject, dtype, shape_strategy=shapes)
    axis = data.draw(st.sampled_from(case.axes), label="cut axis")
    cuts = data.draw(
        st.lists(st.integers(1, case.x.shape[axis] - 1), min_size=1, max_size=3, unique=True).map(sorted), label="cuts"
    )
    check_parallel_merge(moments, case.x, case.axes, axis, cuts, accumulation=subject.accumulation)
