"""Masked moments: laws of a subject declaring ``bn_mask = True`` (``f(..., mask=m)``).

For each slice p (reduced axes A, kept position p), ``C_p`` = its elements whose mask
(broadcast to x) is True, ``n_p = |C_p|``; ``mu_p``, ``sigma_p^2`` the mean and biased
variance of ``C_p`` (``(0, 0)`` when ``n_p = 0``); EVERY element of the slice, counted or
not, is ``y_i = (x_i - mu_p) / sqrt(sigma_p^2 + eps) gamma + beta``. Reference, error
bound (``n_p`` in place of N), domain and mask strategies: ``bn_reference/mathematics/masked.py``.
Masks are drawn in every shape that broadcasts to x (full, size 1 on the reduced axes,
size 1 on the kept axes, fewer leading dimensions, mixtures), in the case's memory layout.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bn_reference.harness.applicability import require_vjp
from bn_reference.mathematics import checks
from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.laws import check_close_to, output_bound, run
from bn_reference.mathematics.masked import (
    MASK_DENSITIES,
    check_masked_gradients,
    draw_masked_case,
    draw_masked_grad_case,
    empty_slices,
    masks,
    with_an_empty_slice,
)

pytestmark = pytest.mark.bn_family("masked")

# Densities that leave some element uncounted (law 1 needs one to change).
SOME_UNCOUNTED = tuple(p for p in MASK_DENSITIES if p < 1.0)
NON_FINITE = (float("nan"), float("inf"), float("-inf"))


def _masked_run(subject, mc, *, label="BN(x; m)"):
    """The subject's output on a ``MaskedCase``: x and the mask in the case's layout."""
    return run(subject, mc.case, mask=mc.laid_out_mask, label=label)


@given(data=st.data())
def test_uncounted_values_do_not_change_the_moments(subject, dtype, data):
    """The moments read only the counted elements: replacing every uncounted x_i by another
    value x'_i (drawn in any regime) leaves mu_p and sigma_p^2, hence every COUNTED output,
    unchanged: y_i(x') = y_i(x) for mask_i. The counted elements and the moments are the
    same on both sides, so the masked bound B_i (``masked.masked_bound``: tolerance's item
    4 on the counted statistics, n_p in place of N) is the same too, and each side is within
    B_i of the one exact value: tolerance 2 B_i. (The uncounted outputs do change, with
    x'_i; test_agrees_with_masked_moments checks them.)"""
    mc = draw_masked_case(data, subject, dtype, densities=SOME_UNCOUNTED)
    counted = np.broadcast_to(mc.mask, mc.case.x.shape)
    assume(not counted.all())
    other, _, _ = data.draw(bst.values(mc.case.x.shape, mc.case.axes, dtype), label="uncounted values")
    changed = mc.with_x(np.where(counted, mc.case.x, other))
    assume(changed.in_safe_domain())
    y = _masked_run(subject, mc)
    y_changed = _masked_run(subject, changed, label="BN(x'; m)")
    zero = np.zeros_like(y)
    check_close_to(
        np.where(counted, y_changed, zero),
        np.where(counted, y, zero),
        np.where(counted, 2 * mc.bound(), 0.0),
        law="uncounted values do not change the moments: y_i(x') = y_i(x) wherever mask_i (x' = x there)",
        got="BN(x'; m)",
        want="BN(x; m)",
    )


@given(data=st.data())
def test_nonfinite_uncounted_values_stay_out_of_the_moments(subject, dtype, data):
    """Law 1 for values no arithmetic survives: an uncounted x_j that is NaN, +inf or -inf is
    still not part of mu_p or sigma_p^2, so every COUNTED output equals its value on x (x_j
    finite), within 2 B_i (B_i of the finite x: the counted statistics are the same). Padding
    is where garbage sits, and Keras selects (``where(mask, x, 0)``, ``where(mask, x - mean,
    0)``: its ``_moments``): a NaN at a padded position stays there. Weighting by a product,
    ``x * m``, gives ``NaN * 0 = NaN`` in every moment of the slice. (y_j itself is
    (x_j - mu_p) inv_p gamma + beta, non-finite: not compared.)"""
    mc = draw_masked_case(data, subject, dtype, densities=SOME_UNCOUNTED)
    counted = np.broadcast_to(mc.mask, mc.case.x.shape)
    uncounted = np.argwhere(~counted)
    assume(len(uncounted))
    j = tuple(uncounted[data.draw(st.integers(0, len(uncounted) - 1), label="uncounted position")])
    value = data.draw(st.sampled_from(NON_FINITE), label="its value")
    poisoned = mc.case.x.copy()
    poisoned[j] = value
    y = _masked_run(subject, mc)
    y_poisoned = run(subject, mc.case, x=mc.case.laid_out(poisoned), mask=mc.laid_out_mask, label=f"BN(x with x{list(j)} = {value}; m)", edge_input=True)
    zero = np.zeros_like(y)
    check_close_to(
        np.where(counted, y_poisoned, zero),
        np.where(counted, y, zero),
        np.where(counted, 2 * mc.bound(), 0.0),
        law=f"a non-finite uncounted value (x{list(j)} = {value}) stays out of the moments: every counted output is unchanged",
        got=f"BN(x with x{list(j)} = {value}; m)",
        want="BN(x; m)",
    )


@given(data=st.data())
def test_agrees_with_masked_moments(subject, dtype, data):
    """Every output, counted or not, is the masked-moment formula:
    |y_i - y64_i| <= B_i with y64_i = (x_i - mu_p)/sqrt(sigma_p^2 + eps) gamma + beta in float64,
    (mu_p, sigma_p^2) the biased moments of the n_p counted elements of i's slice ((0, 0) if
    none). B_i is the error model with n_p in place of N, per slice (a counted subset is a
    slice of n_p elements; summing the whole slice with the uncounted terms zeroed adds exact
    zeros, which round nothing), the counted subset's mu, var, D2, max|x|, and item 4 per
    element (``masked.masked_bound``). Counts taken over N (or over the mask before it is
    broadcast) move the moments by a factor N/n_p: far outside B."""
    mc = draw_masked_case(data, subject, dtype)
    checks.assert_within(
        _masked_run(subject, mc), mc.expected(), mc.bound(),
        law="masked moments: y_i = (x_i - mu_p)/sqrt(sigma_p^2 + eps) gamma + beta, moments of the counted elements",
        got="BN(x; m)", want="float64 masked reference",
    )


@given(data=st.data())
def test_all_true_mask_is_plain_normalization(subject, dtype, data):
    """A mask that counts everything, in any shape that broadcasts to x (a (1, ..., 1) mask,
    one of fewer dimensions, one of size 1 on the reduced axes...), gives the standard
    normalization: BN(x; m = True) = BN(x), the call without ``mask``. Each side is within
    the plain bound B of the same exact output (n_p = N): tolerance 2B. A count taken from
    the mask before broadcasting (1 where N are counted) breaks it."""
    case = bst.draw_case(data, subject, dtype)
    mask, kind = data.draw(masks(case.x.shape, case.axes, densities=(1.0,)), label="all-True mask")
    checks.cover(f"mask: {kind}")
    check_close_to(
        run(subject, case, mask=case.laid_out(mask), label="BN(x; m = True)"),
        run(subject, case),
        2 * output_bound(case),
        law=f"an all-True mask ({kind}, shape {mask.shape}) is the plain normalization: BN(x; m = True) = BN(x)",
        got="BN(x; m = True)",
        want="BN(x)",
    )


@given(data=st.data())
def test_empty_slices_use_zero_moments(subject, dtype, data):
    """A slice with no counted element has mu_p = 0 and sigma_p^2 = 0 (the decision of
    docs/subjects.md: Keras' ``sum / (count + 1e-7)``, ``tf.nn.weighted_moments``'
    ``reciprocal_no_nan``, a kernel's ``sum / max(n_p, 1)``), so each of its elements is
    y_i = x_i / sqrt(eps) gamma + beta: finite, not the NaN of 0/0. One slice of the drawn
    mask is emptied (with a mask of size 1 on a kept axis, every slice along that axis).
    Bound: the masked bound at n_p = 0, i.e. item 4 with exact moments (0, 0)."""
    mc = draw_masked_case(data, subject, dtype)
    which = data.draw(st.integers(0, max(mc.case.x.size - 1, 0)), label="slice emptied")
    mc = mc.with_mask(with_an_empty_slice(mc.mask, mc.case.x.shape, mc.case.axes, which))
    assume(mc.in_safe_domain())
    empty = np.broadcast_to(empty_slices(mc.mask, mc.case.x.shape, mc.case.axes), mc.case.x.shape)
    y = _masked_run(subject, mc)
    zero = np.zeros_like(y)
    checks.assert_within(
        np.where(empty, y, zero), np.where(empty, mc.expected(), zero), np.where(empty, mc.bound(), 0.0),
        law="empty slice (no counted element): mu_p = 0, sigma_p^2 = 0, y_i = x_i / sqrt(eps) gamma + beta",
        got="BN(x; m)", want="x / sqrt(eps) gamma + beta",
    )


@pytest.fixture
def needs_vjp(subject):
    require_vjp(subject)


@pytest.mark.gradients
@pytest.mark.usefixtures("needs_vjp")
@given(data=st.data())
def test_gradients_follow_the_masked_moments(subject, dtype, data):
    """The subject's ``vjp(x, dy, ..., mask=m)``: only counted elements move the moments, so
    d mu / d x_j = c_j / n and d var / d x_j = 2 c_j (x_j - mu) / n, and every output of the
    slice (counted or not) reads them:
    dx_j = gamma inv (dy_j - c_j (sum_A dy + x_hat_j sum_A(dy x_hat)) / n),
    dgamma = R_gamma(dy x_hat), dbeta = R_beta(dy), x_hat with the masked moments
    (``masked.masked_batch_norm_vjp``; an empty slice: dx = gamma eps^-1/2 dy). Each within
    the gradient error model with the counted statistics (``gradients`` item 10). A backward
    pass that takes its means over the counted elements only, or gives uncounted elements
    the mean terms, is off by O(gamma inv |m1|) at every element."""
    check_masked_gradients(subject, *draw_masked_grad_case(data, subject, dtype))
