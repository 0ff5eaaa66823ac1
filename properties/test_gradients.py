"""Laws of the gradient of batch normalization, checked on every gradient subject
(``bn_reference.mathematics.gradients.GRADIENT_SUBJECTS``) through ``tf.GradientTape``.

With x_hat = (x - mu) inv, inv = 1 / sqrt(var + eps) and an upstream gradient dy:
dx = gamma inv (dy - mean_A dy - x_hat mean_A(dy x_hat)), dgamma = R_gamma(dy x_hat),
dbeta = R_beta(dy) (R_p: summed over A and over p's broadcast axes). Bounds from the error
model in ``bn_reference/mathematics/gradients.py``. Marker ``gradients``: ``-m "not gradients"`` skips them.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference.mathematics import gradients as gr

pytestmark = pytest.mark.gradients

SUBJECTS = pytest.mark.parametrize("fn", list(gr.GRADIENT_SUBJECTS.values()), ids=list(gr.GRADIENT_SUBJECTS))
DTYPES = pytest.mark.parametrize("dtype", gr.GRADIENT_DTYPES)


@SUBJECTS
@DTYPES
@given(data=st.data())
def test_dx_agrees_with_analytic(fn, dtype, data):
    """dx = gamma inv (dy - mean_A(dy) - x_hat mean_A(dy x_hat)) elementwise, within B_dx."""
    gr.check_dx_agreement(fn, *gr.grad_cases(data, fn, dtype))


@SUBJECTS
@DTYPES
@given(data=st.data())
def test_dx_sums_to_zero(fn, dtype, data):
    """sum_A dx = 0: BN(x + c) = BN(x) for c constant along A, so dx is orthogonal to such
    c; checked as |mean_A dx| <= mean_A(B_dx)."""
    gr.check_dx_sums_to_zero(fn, *gr.grad_cases(data, fn, dtype))


@SUBJECTS
@DTYPES
@given(data=st.data())
def test_dgamma(fn, dtype, data):
    """dgamma = sum of dy x_hat over A and gamma's broadcast axes (per feature), within B_dgamma."""
    gr.check_dgamma(fn, *gr.grad_cases(data, fn, dtype))


@SUBJECTS
@DTYPES
@given(data=st.data())
def test_dbeta(fn, dtype, data):
    """dbeta = sum of dy over A and beta's broadcast axes (per feature), within B_dbeta."""
    gr.check_dbeta(fn, *gr.grad_cases(data, fn, dtype))
