"""The masked-moments contract (``bn_mask = True``): its argument checks, its optional
keyword, the masked reference and bound against the plain ones, and the mask strategy's
shapes. Milliseconds: no framework, a few NumPy calls (the laws themselves are
properties/test_masked.py, checked on the mutants by tests/test_kill_matrix.py)."""
import numpy as np
import pytest
from hypothesis import find, settings

from bn_reference.harness.applicability import applies
from bn_reference.mathematics import masked
from bn_reference.mathematics.gradients import grad_bound
from bn_reference.mathematics.reference import batch_norm, batch_norm_vjp
from bn_reference.mathematics.tolerance import bound
from bn_reference.selftest.mutants import masked_two_pass
from bn_reference.subjects import Subject, signature

X = np.random.default_rng(0).normal(size=(4, 3, 2)).astype(np.float32)
ARGS = dict(axes=(0, 2), scale=1.5, offset=0.25, epsilon=1e-3, training=True)


@pytest.mark.parametrize(
    "mask,error,message",
    [
        (np.ones((4, 3, 2), dtype=np.int8), TypeError, "mask must be a bool numpy array"),
        ([[True, False]], TypeError, "mask must be a bool numpy array"),
        (np.ones((5, 3, 2), dtype=bool), ValueError, "mask of shape \\(5, 3, 2\\) does not broadcast"),
        (np.ones((1, 4, 3, 2), dtype=bool), ValueError, "more dimensions than x"),
    ],
    ids=["int8", "list", "shape", "rank"],
)
def test_bad_mask_is_named(mask, error, message):
    """A bad mask is one error naming ``mask`` (the check every built-in shares)."""
    with pytest.raises(error, match=message):
        masked_two_pass(X, mask=mask, **ARGS)


def test_mask_keyword_is_optional():
    """The plain properties call a bn_mask subject without ``mask``: ``mask=None`` binds the
    contract's call (``subjects.signature``), a required ``mask`` does not."""

    def required(x, *, axes, scale, offset, epsilon, training, mask):
        return x

    assert signature.mismatch(masked_two_pass) is None
    assert "mask" in signature.mismatch(required)
    np.testing.assert_array_equal(masked_two_pass(X, **ARGS), masked_two_pass(X, mask=np.ones((), bool), **ARGS))


def test_masked_properties_only_for_bn_mask_subjects():
    """A ``bn_family("masked")`` law is generated for a subject with bn_mask = True only; the
    plain laws for both."""
    plain = Subject("plain", lambda x, **kw: x)
    assert applies(Subject("m", masked_two_pass), ("masked",)) and applies(Subject("m", masked_two_pass), ())
    assert not applies(plain, ("masked",)) and applies(plain, ())


def test_masked_reference_is_bn_of_the_counted_subset():
    """Slice by slice, the counted outputs are ``reference.batch_norm`` of the counted values
    alone, the uncounted ones use the same moments, and an empty slice uses (0, 0)."""
    x = X.astype(np.float64)
    mask = np.random.default_rng(1).random((4, 1, 2)) < 0.5
    mask[:, 0, :] = True
    mask = np.broadcast_to(mask, x.shape).copy()
    mask[:, 2, :] = False  # slice 2 empty
    y = masked.masked_batch_norm(x, (0, 2), mask, 1.5, 0.25, 1e-3)
    for c in range(3):
        m, xc = mask[:, c, :], x[:, c, :]
        if m.any():
            np.testing.assert_allclose(y[:, c, :][m], batch_norm(xc[m], (0,), 1.5, 0.25, 1e-3), rtol=1e-12)
            mu, var = xc[m].mean(), xc[m].var()
            np.testing.assert_allclose(y[:, c, :], (xc - mu) / np.sqrt(var + 1e-3) * 1.5 + 0.25, rtol=1e-12)
        else:
            np.testing.assert_allclose(y[:, c, :], xc / np.sqrt(1e-3) * 1.5 + 0.25, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_all_true_mask_bound_is_the_plain_bound(dtype):
    """With every element counted (n_p = N) the masked bound is tolerance's own, term for
    term (the masked statistics feed the same item 4)."""
    x = X.astype(dtype)
    np.testing.assert_allclose(
        masked.masked_bound(x, (0, 2), np.ones((1,), bool), 1.5, 0.25, 1e-3), bound(x, (0, 2), 1.5, 0.25, 1e-3), rtol=1e-12
    )


def test_count_is_taken_after_broadcasting():
    """``counts`` of a (1, 3, 1) mask for a (4, 3, 2) x reduced over (0, 2) counts 8 per
    counted feature, not 1 (the shipped bug)."""
    mask = np.array([True, False, True]).reshape(1, 3, 1)
    np.testing.assert_array_equal(masked.counts(mask, X.shape, (0, 2)).ravel(), [8, 0, 8])


@pytest.mark.parametrize("kind", masked.MASK_KINDS)
def test_masks_are_drawn_in_every_broadcastable_shape(kind):
    """``masks`` reaches each kind of shape, and each broadcasts to x."""
    shape, axes = (3, 4, 5), (0, 2)
    mask, got = find(masked.masks(shape, axes), lambda r: r[1] == kind, settings=settings(database=None, max_examples=500))
    assert np.broadcast_shapes(mask.shape, shape) == shape
    if kind == "size 1 on reduced axes":
        assert mask.shape == (1, 4, 1)
    elif kind == "size 1 on kept axes":
        assert mask.shape == (3, 1, 5)
    elif kind == "fewer leading dims":
        assert mask.ndim < len(shape)


def _finite_difference_vjp(x, dy, axes, mask, scale, eps, h=1e-6):
    """dx_j = d/dx_j sum_i dy_i y_i by central differences of the float64 masked reference."""
    loss = lambda z: float((dy * masked.masked_batch_norm(z, axes, mask, scale, 0.0, eps)).sum())  # noqa: E731
    dx = np.zeros_like(x)
    for j in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[j] = h
        dx[j] = (loss(x + e) - loss(x - e)) / (2 * h)
    return dx


@pytest.mark.parametrize(
    "mask",
    [np.array([True, False, True, True]).reshape(1, 4, 1), np.array([True, False, True]).reshape(3, 1, 1), np.random.default_rng(5).random((3, 4, 2)) < 0.5],
    ids=["on the reduced axis", "whole slices (empty ones)", "full"],
)
def test_masked_vjp_is_the_derivative(mask):
    """``masked_batch_norm_vjp``'s dx is the derivative of the masked reference (central
    differences, float64): counted and uncounted positions, a broadcast mask, empty slices."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 2))
    dy = rng.normal(size=x.shape)
    scale = np.linspace(0.5, 2.0, 3).reshape(3, 1, 1)
    dx, _, _ = masked.masked_batch_norm_vjp(x, dy, (1, 2), mask, scale, 1e-3)
    np.testing.assert_allclose(dx, _finite_difference_vjp(x, dy, (1, 2), mask, scale, 1e-3), rtol=1e-6, atol=1e-8)


def test_all_true_masked_vjp_is_the_plain_vjp():
    """With every element counted the masked gradients and their bounds are the plain ones."""
    rng = np.random.default_rng(4)
    x, dy = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    ones = np.ones((1,), bool)
    for got, want in zip(masked.masked_batch_norm_vjp(x, dy, (0,), ones, 1.5, 1e-3), batch_norm_vjp(x, dy, (0,), 1.5, 1e-3)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    x16, dy16 = x.astype(np.float16), dy.astype(np.float16)
    got, want = masked.masked_grad_bound(x16, dy16, (0,), ones, 1.5, 1e-3), grad_bound(x16, dy16, (0,), 1.5, 1e-3)
    for name in ("dx", "dgamma", "dbeta"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12)
