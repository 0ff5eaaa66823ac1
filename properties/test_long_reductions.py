"""Reductions longer than 16 bits can count: the agreement law at N > 65,536."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.laws import check_agreement, run


# Each example is one call on 65,537 .. 262,146 elements: a few reach the class.
VERY_LONG_EXAMPLES = 5


@settings(max_examples=VERY_LONG_EXAMPLES)
@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_agrees_beyond_16_bit_counts(subject, dtype, data):
    """The agreement law on slices of more than 65,536 elements (N in 65,537, 98,305,
    131,073: ``strategies.BEYOND_16_BITS``), where a count or an index kept in 16 bits wraps
    (a uint16 lane index) or rounds (a float16 count holds integers only up to 65,504).
    Same law and bound as ``test_agrees_with_float64_reference``, on ``VERY_LONG_EXAMPLES``
    examples per cell."""
    strategy = bst.very_long_cases(dtype, subject.axes_sets, subject.accumulation)
    if strategy is None:
        pytest.skip(f"{subject.spec} reduces over no axis set of a rank-2 x (bn_axes)")
    case = bst.draw_case(data, subject, dtype, strategy=strategy)
    check_agreement(run(subject, case), case)
