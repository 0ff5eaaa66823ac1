"""The ``training`` flag: only ``True`` normalizes."""
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
    """training in {None, False}: f(x) = x exactly (same values, shape and dtype)."""
    case = bst.draw_case(data, subject, dtype)
    y = call(subject, case, training=training)
    assert_identical(y, case.x, law=f"training={training} must return x unchanged")
