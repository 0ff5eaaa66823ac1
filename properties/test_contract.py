"""The subject contract itself: what comes back, and what is left alone."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.laws import call, check_refusal


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_output_shape_and_dtype(subject, dtype, data):
    """f(x) is a numpy.ndarray with x's shape and dtype (the declared ``bn_output_dtype``
    for a mixed-precision subject)."""
    case = bst.draw_case(data, subject, dtype)
    y = call(subject, case)
    assert isinstance(y, np.ndarray), f"returned {type(y).__name__}; the contract requires numpy.ndarray"
    assert y.shape == case.x.shape, f"output shape {y.shape} != input shape {case.x.shape}"
    which = "declared bn_output_dtype" if case.output_dtype else "input dtype"
    assert y.dtype == case.out_dtype, f"output dtype {y.dtype} != {which} {case.out_dtype}"


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_input_not_modified(subject, dtype, data):
    """f must not write into x, whatever ``training`` is: after the call x is bit-identical
    to before."""
    case = bst.draw_case(data, subject, dtype)
    training = data.draw(st.sampled_from([True, False, None]), label="training")
    x = case.laid_out()  # writeable unless the drawn layout is the read-only one
    call(subject, case, x=x, training=training)
    np.testing.assert_array_equal(x, case.x, err_msg="the subject modified its input x in place")


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_declared_refusal_is_a_clear_error(subject, dtype, data):
    """An input the subject declares it refuses by design (``bn_refuses``, e.g. PyTorch's
    batch_norm with one value per channel) raises an error carrying the declared message,
    never a silent result; every other property leaves such inputs out (``draw_case``)."""
    if not subject.refuses:
        pytest.skip(f"{subject.spec} declares no refusal (bn_refuses)")
    case = bst.draw_case(data, None, dtype, strategy=bst.refused_cases(dtype, subject.axes_sets, subject.refusal))
    check_refusal(subject, case)
