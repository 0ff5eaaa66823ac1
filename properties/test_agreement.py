"""Subject vs the float64 reference, within the error model (``bn_reference.mathematics.tolerance``)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.laws import check_agreement, run


@given(data=st.data())
def test_agrees_with_float64_reference(subject, dtype, data):
    """|y - y64| <= B elementwise, where y64 = (x - mu)/sqrt(sigma^2 + eps) * gamma + beta in
    float64 (biased sigma^2 over the reduced axes) and B is the rounding bound of a correct
    implementation in x's dtype: it grows with N and with |mu|/sigma (tolerance module)."""
    case = bst.draw_case(data, subject, dtype)
    check_agreement(run(subject, case), case)


# Each example is one call on 65,537 .. 262,146 elements: a few reach the class.
VERY_LONG_EXAMPLES = 5


@settings(max_examples=VERY_LONG_EXAMPLES)
@given(data=st.data())
def test_agrees_beyond_16_bit_counts(subject, dtype, data):
    """The agreement law on slices of more than 65,536 elements (N in 65,537, 98,305,
    131,073: ``strategies.BEYOND_16_BITS``), where a count or an index kept in 16 bits wraps
    (a uint16 lane index) or rounds (a float16 count holds integers only up to 65,504).
    Same law and bound as ``test_agrees_with_float64_reference``, on ``VERY_LONG_EXAMPLES``
    examples per cell."""
    case = bst.draw_case(data, subject, dtype, strategy=bst.very_long_cases(dtype, subject.axes_sets, subject.accumulation))
    check_agreement(run(subject, case), case)
