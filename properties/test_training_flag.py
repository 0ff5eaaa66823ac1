"""The ``training`` flag: only ``True`` normalizes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.checks import assert_identical
from bn_reference.mathematics.laws import call


@pytest.mark.parametrize("training", [None, False], ids=["training=None", "training=False"])
@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_inference_returns_input(subject, dtype, training, data):
    """training in {None, False}: f(x) = x exactly (same values, shape and dtype; for a
    mixed-precision subject, x converted to its ``bn_output_dtype``: the identity in y's dtype)."""
    case = bst.draw_case(data, subject, dtype)
    y = call(subject, case, training=training)
    with np.errstate(over="ignore"):
        expected = case.x.astype(case.out_dtype)
    assert_identical(y, expected, law=f"training={training} must return x unchanged" + (f" (in {case.out_dtype})" if case.output_dtype else ""))
