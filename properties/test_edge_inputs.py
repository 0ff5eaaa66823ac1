"""Edge inputs users actually feed a BN: NaN and infinities, slices of one element,
zero-size dimensions, huge magnitudes. The expected behaviour of each is defined by the
float64 reference (``bn_reference.mathematics.reference``, module docstring) and checked here."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.laws import call, check_agreement, check_empty_output, check_nonfinite_isolated, run


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_nonfinite_value_stays_in_its_slice(subject, dtype, data):
    """One x_j in {NaN, +inf, -inf}: every output of x_j's slice is non-finite (mu_s and
    sigma_s^2 are NaN: inf - inf), and every other slice s' equals the reference on the
    clean input within B (mu_s' and sigma_s'^2 read only slice s')."""
    poisoned = bst.draw_case(data, subject, dtype, strategy=bst.poisoned_cases(dtype, subject.axes_sets, subject.accumulation))
    y = run(subject, poisoned.case, label=f"BN(x with x{list(poisoned.index)} = {poisoned.value})", edge_input=True)
    check_nonfinite_isolated(y, poisoned)


@given(data=st.data())
def test_single_element_slices_give_the_offset(subject, dtype, data):
    """N = 1 (every reduced axis of size 1): mu = x, sigma^2 = 0, so y = 0 / sqrt(eps) *
    gamma + beta = beta, finite for every eps > 0 (a Bessel-corrected 0/0 gives NaN);
    checked against the reference within B (the folded form rounds x inv and mu inv)."""
    case = bst.draw_case(data, subject, dtype, strategy=bst.single_element_cases(dtype, subject.axes_sets, subject.accumulation))
    check_agreement(run(subject, case), case, law="N = 1: y = beta")


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_zero_size_dimensions_give_an_empty_output(subject, dtype, data):
    """x with a dimension of size 0 (reduced: N = 0; or kept: no slices): an empty array of
    x's shape and dtype comes back, with no error, for training True, False and None."""
    case = bst.draw_case(data, subject, dtype, strategy=bst.zero_size_cases(dtype, subject.axes_sets, subject.accumulation))
    training = data.draw(st.sampled_from([True, False, None]), label="training")
    check_empty_output(call(subject, case, training=training, edge_input=True), case)


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_huge_values_up_to_the_overflow_limit(subject, dtype, data):
    """Data scaled by 2^k to the edge of the documented overflow limit (``tolerance`` items 5
    and 6: N max|x|, N (var + 3 D2) and Welford's 4 max|x|^2 within the accumulation dtype's
    max/4, the elementwise stage's |x| + |mu| and folded products within x's dtype's), e.g.
    |x| near max/N for constant slices: the output still agrees with the reference within
    B, so no sum, sum of squares or Welford update may overflow on the way (and a float16
    variance above 65504 must not be clipped or overflowed before the rsqrt)."""
    case = bst.draw_case(data, subject, dtype, strategy=bst.huge_cases(dtype, subject.axes_sets, subject.accumulation))
    check_agreement(run(subject, case, edge_input=True), case, law="huge values: agreement up to the overflow limit")
