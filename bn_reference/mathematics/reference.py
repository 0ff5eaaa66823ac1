"""The float64 NumPy reference: the mathematics every subject is checked against.

For reduced axes A (``N = prod(x.shape[a] for a in A)`` elements per slice)::

    mu      = (1/N) * sum_A x                      (mean)
    sigma^2 = (1/N) * sum_A (x - mu)^2             (biased variance, ddof = 0)
    y       = (x - mu) / sqrt(sigma^2 + eps) * gamma + beta

Everything is computed in float64 with the two-pass formula; results are cast to
``x.dtype`` unless ``dtype`` says otherwise.

RMSNorm (``norm="rms"``, a subject's ``bn_norm = "rms"``) does not centre::

    ms      = (1/N) * sum_A x^2                    (mean of squares)
    y       = x / sqrt(ms + eps) * gamma + beta

which is the formula above with mu replaced by 0 and sigma^2 by ms: ``_centre_and_spread``
gives both norms' (centre, spread) per slice. ``gamma`` is the scale as the subject reads
it: ``scale``, or ``1 + scale`` for Gemma's convention (``bn_scale = "one_plus"``,
``effective_scale``). Edge inputs as above, with one difference: a slice of one element (or
a constant slice c) gives ``c / sqrt(c^2 + eps) * gamma + beta``, not beta.

Edge inputs, as every subject must treat them (``properties/test_edge_inputs.py``):

* NaN or +-inf in a slice makes that slice's mu, sigma^2 and every output of the slice
  NaN (inf - inf); every other slice is computed as if it were not there.
* N = 1: mu = x, sigma^2 = 0, so y = beta exactly (finite for any eps > 0).
* A zero-size x (some dimension 0): the output is an empty array of x's shape and dtype.
  Moments over N = 0 elements are undefined: ``moments`` raises ``ValueError`` naming
  ``axes``; with N > 0 and an empty kept dimension they are empty arrays.
"""
from __future__ import annotations

import numpy as np

from bn_reference.mathematics.validation import NORMS, check_affine, check_epsilon, check_training, check_x, normalize_axes

__all__ = ["NORMS", "centre_and_spread", "effective_scale", "rms_norm", "normalize", "rms_reference", "first_of_each_slice", "first_of_each_slice_index", "moments", "batch_norm", "normalized", "reference", "reduce_to", "batch_norm_vjp", "reference_vjp"]


def first_of_each_slice_index(ndim: int, axes) -> tuple:
    """The index selecting, in an array of ``ndim`` dimensions, position 0 on every reduced
    axis and everything on the others: ``x[index]`` is K_p, keepdims."""
    return tuple(slice(0, 1) if a in axes else slice(None) for a in range(ndim))


def first_of_each_slice(x: np.ndarray, axes) -> np.ndarray:
    """K_p = x at index 0 on every reduced axis (one element of each slice p), keepdims: the
    shift of the shifted one-pass moments, the value of a constant slice."""
    return x[first_of_each_slice_index(x.ndim, axes)]


def moments(x: np.ndarray, axes, *, keepdims: bool = True, dtype=None):
    """Return ``(mu, sigma^2)`` over ``axes``: mean and biased (ddof 0) variance.

    Computed in float64 (two-pass); cast to ``dtype`` (default ``x.dtype``).
    With ``keepdims`` the reduced axes stay as size-1 axes, ready to broadcast.
    """
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    empty = [a for a in axes if x.shape[a] == 0]
    if empty:
        raise ValueError(f"axes={axes}: reduced axis {empty[0]} of x (shape {x.shape}) has size 0; moments over no elements are undefined")
    mu, var = _moments64(x.astype(np.float64), axes)
    if not keepdims:
        mu, var = mu.squeeze(axes), var.squeeze(axes)
    out = np.dtype(dtype) if dtype is not None else x.dtype
    return mu.astype(out), var.astype(out)


def _moments64(x64: np.ndarray, axes: tuple[int, ...]):
    """``(mu, sigma^2)``, keepdims, of a float64 ``x64`` over checked ``axes`` (two-pass)."""
    mu = x64.mean(axis=axes, keepdims=True)
    return mu, np.square(x64 - mu).mean(axis=axes, keepdims=True)


def _centre_and_spread(x64: np.ndarray, axes: tuple[int, ...], norm: str = "standard"):
    """``(c, s)``, keepdims, with ``y = (x - c) / sqrt(s + eps) * gamma + beta``: the mean and
    the biased variance for the standard norm, 0 and the mean of squares for RMSNorm."""
    if norm == "rms":
        return np.zeros((1,) * x64.ndim), np.square(x64).mean(axis=axes, keepdims=True)
    if norm != "standard":
        raise ValueError(f"norm={norm!r}: choose one of {NORMS}")
    return _moments64(x64, axes)


def centre_and_spread(x: np.ndarray, axes, norm: str = "standard"):
    """``(c, s)`` per slice in float64, keepdims: ``(mu, sigma^2)``, or ``(0, ms)`` for RMSNorm."""
    x = check_x(x)
    return _centre_and_spread(x.astype(np.float64), normalize_axes(axes, x.ndim), norm)


def effective_scale(scale, convention: str = "plain"):
    """gamma as a subject of scale ``convention`` applies it: ``scale`` (``"plain"``) or
    ``1 + scale`` (``"one_plus"``, Gemma's RMSNorm), as float64 (a float stays a float)."""
    if convention == "plain":
        return scale
    if convention != "one_plus":
        raise ValueError(f"scale convention {convention!r}: choose 'plain' or 'one_plus'")
    return 1.0 + float(scale) if np.ndim(scale) == 0 and not isinstance(scale, np.ndarray) else 1.0 + np.asarray(scale, dtype=np.float64)


def normalized(x: np.ndarray, axes, epsilon: float) -> np.ndarray:
    """Return x_hat = (x - mu) / sqrt(sigma^2 + eps) in float64 (no scale, no offset)."""
    mu, var = moments(x, axes, dtype=np.float64)
    return (x.astype(np.float64) - mu) / np.sqrt(var + epsilon)


def _normalized64(x64: np.ndarray, axes: tuple[int, ...], epsilon: float, norm: str = "standard") -> np.ndarray:
    """``normalized`` of a float64 ``x64`` over checked, non-empty ``axes`` (the same
    arithmetic, without checking x and axes again); ``norm="rms"``: x / sqrt(ms + eps)."""
    c, s = _centre_and_spread(x64, axes, norm)
    return (x64 - c) / np.sqrt(s + epsilon)


def batch_norm(x: np.ndarray, axes, scale=1.0, offset=0.0, epsilon: float = 1e-3, *, dtype=None):
    """Return y = (x - mu) / sqrt(sigma^2 + eps) * gamma + beta over ``axes``.

    ``scale`` (gamma) and ``offset`` (beta) are numbers or arrays with size 1 on every
    reduced axis. Computed in float64, cast to ``dtype`` (default ``x.dtype``).
    """
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    gamma = check_affine("scale", scale, x.shape, axes)
    beta = check_affine("offset", offset, x.shape, axes)
    return _batch_norm(x, axes, gamma, beta, check_epsilon(epsilon), np.dtype(dtype) if dtype is not None else x.dtype)


def _batch_norm(x: np.ndarray, axes: tuple[int, ...], gamma: np.ndarray, beta: np.ndarray, eps: float, out: np.dtype, norm: str = "standard"):
    """``batch_norm`` on checked arguments (``check_affine``'s float64 gamma and beta)."""
    if x.size == 0:
        return np.empty(x.shape, dtype=out)
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN or inf slice is NaN, as documented above
        y = _normalized64(x.astype(np.float64), axes, eps, norm) * gamma + beta
    return y.astype(out)


def rms_norm(x: np.ndarray, axes, scale=1.0, offset=0.0, epsilon: float = 1e-6, *, dtype=None):
    """Return y = x / sqrt(mean_A(x^2) + eps) * gamma + beta over ``axes`` (RMSNorm), in
    float64, cast to ``dtype`` (default ``x.dtype``); arguments as for ``batch_norm``."""
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    gamma = check_affine("scale", scale, x.shape, axes)
    beta = check_affine("offset", offset, x.shape, axes)
    return _batch_norm(x, axes, gamma, beta, check_epsilon(epsilon), np.dtype(dtype) if dtype is not None else x.dtype, "rms")


def normalize(x: np.ndarray, axes, scale=1.0, offset=0.0, epsilon: float = 1e-3, *, norm: str = "standard", dtype=None):
    """``batch_norm`` (``norm="standard"``) or ``rms_norm`` (``norm="rms"``); ``scale`` is gamma
    itself (apply ``effective_scale`` first for a ``one_plus`` subject)."""
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r}: choose one of {NORMS}")
    return (rms_norm if norm == "rms" else batch_norm)(x, axes, scale, offset, epsilon, dtype=dtype)


def _as_subject(x, axes, scale, offset, epsilon, training, norm: str):
    """The contract's call of the reference for ``norm``: each argument checked once, then the
    normalization when training, else a copy of ``x``."""
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    gamma = check_affine("scale", scale, x.shape, axes)
    beta = check_affine("offset", offset, x.shape, axes)
    eps = check_epsilon(epsilon)
    if not check_training(training):
        return x.copy()
    return _batch_norm(x, axes, gamma, beta, eps, x.dtype, norm)


def reference(x, *, axes, scale, offset, epsilon, training):
    """The reference as a subject: ``batch_norm`` when training, else a copy of ``x``
    (each argument checked once)."""
    return _as_subject(x, axes, scale, offset, epsilon, training, "standard")


reference.bn_dtypes = ("float32", "float64", "float16", "bfloat16")
reference.moments = lambda x, *, axes: moments(x, axes)


def rms_reference(x, *, axes, scale, offset, epsilon, training):
    """The RMSNorm reference as a subject (``bn_norm = "rms"``): ``rms_norm`` when training,
    else a copy of ``x``."""
    return _as_subject(x, axes, scale, offset, epsilon, training, "rms")


rms_reference.bn_dtypes = reference.bn_dtypes
rms_reference.bn_norm = "rms"


# --------------------------------------------------------------------------------------
# The gradient (training mode): the reference's vector-Jacobian product
# --------------------------------------------------------------------------------------


def reduce_to(a: np.ndarray, shape) -> np.ndarray:
    """R_p: sum ``a`` over the axes along which an array of ``shape`` is broadcast to
    ``a.shape`` (leading axes it lacks, and its size-1 axes), giving ``shape``."""
    a = np.asarray(a)
    shape = tuple(shape)
    lead = a.ndim - len(shape)
    a = a.sum(axis=tuple(range(lead))) if lead else a
    ones = tuple(i for i, s in enumerate(shape) if s == 1 and a.shape[i] != 1)
    return (a.sum(axis=ones, keepdims=True) if ones else a).reshape(shape)


def batch_norm_vjp(x, dy, axes, scale=1.0, epsilon=1e-3, *, offset=None, norm: str = "standard"):
    r"""``(dx, dgamma, dbeta)`` of ``y = gamma x_hat + beta`` for an upstream ``dy``, in float64.

    With ``inv = 1/sqrt(var + eps)``, ``x_hat = (x - mu) inv``, ``m1 = mean_A(dy)``,
    ``m2 = mean_A(dy x_hat)``::

        dx     = gamma inv (dy - m1 - x_hat m2)
        dgamma = R_gamma(dy x_hat),   dbeta = R_beta(dy)

    Derivation: ``d mu / d x_j = 1/N``; ``d var / d x_j = 2 (x_j - mu) / N`` (the mean's
    own derivative drops out since ``sum_A (x - mu) = 0``); ``d inv = -inv^3 d var / 2``.
    So ``d x_hat_i / d x_j = inv (delta_ij - 1/N) - x_hat_i x_hat_j inv / N``, and
    ``dx_j = sum_i dy_i gamma d x_hat_i / d x_j`` is the formula. ``R_p`` sums over A and
    over every axis along which ``p`` is broadcast (``reduce_to``); a Python-float gamma
    gets the sum over all elements (``dgamma`` then has shape ``()``).

    Degenerate slices, defined by the same formula (finite for ``eps > 0``): ``var = 0``
    (N = 1, or a constant slice) gives ``x_hat = 0``, ``inv = eps^(-1/2)``, hence
    ``dx = gamma eps^(-1/2) (dy - mean_A dy)``, ``dgamma = 0``, ``dbeta = R_beta(dy)``; for
    N = 1 also ``dx = 0`` (the output ``beta`` does not depend on x). ``dgamma`` has
    ``scale``'s shape, ``dbeta`` ``offset``'s (default: ``scale``'s).

    RMSNorm (``norm="rms"``): ``x_hat = x inv``, ``inv = 1/sqrt(ms + eps)``; ``d ms / d x_j
    = 2 x_j / N``, so ``d x_hat_i / d x_j = inv delta_ij - x_hat_i x_hat_j inv / N`` and::

        dx = gamma inv (dy - x_hat m2)        (no m1 term: nothing is centred)

    with ``dgamma``, ``dbeta`` as above. ``scale`` is gamma (``effective_scale`` for a
    ``one_plus`` subject, whose ``dscale`` equals ``dgamma``: d(1 + s)/ds = 1).
    """
    axes = tuple(axes)
    x64 = np.asarray(x).astype(np.float64)
    c, s = _centre_and_spread(x64, axes, norm)
    inv = 1 / np.sqrt(s + epsilon)
    x_hat = (x64 - c) * inv
    g = np.asarray(scale, dtype=np.float64)
    d = np.asarray(dy).astype(np.float64)
    m1 = d.mean(axis=axes, keepdims=True) if norm == "standard" else 0.0
    m2 = (d * x_hat).mean(axis=axes, keepdims=True)
    dx = g * inv * (d - m1 - x_hat * m2)
    oshape = np.shape(scale if offset is None else offset)
    return dx, reduce_to(d * x_hat, np.shape(scale)), reduce_to(d, oshape)


def reference_vjp(x, dy, *, axes, scale, offset, epsilon):
    """The reference's gradient as a subject's ``vjp``: ``batch_norm_vjp`` rounded once to
    x's dtype (a Python-float parameter's gradient a float)."""
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    dx, dg, db = batch_norm_vjp(x, dy, axes, scale, check_epsilon(epsilon), offset=offset)
    as_given = lambda g, p: float(g) if np.ndim(p) == 0 and not isinstance(p, np.ndarray) else g.astype(x.dtype)  # noqa: E731
    return dx.astype(x.dtype), as_given(dg, scale), as_given(db, offset)


reference.vjp = reference_vjp


def rms_reference_vjp(x, dy, *, axes, scale, offset, epsilon):
    """The RMSNorm reference's gradient (``batch_norm_vjp`` with ``norm="rms"``), rounded once."""
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    dx, dg, db = batch_norm_vjp(x, dy, axes, scale, check_epsilon(epsilon), offset=offset, norm="rms")
    as_given = lambda g, p: float(g) if np.ndim(p) == 0 and not isinstance(p, np.ndarray) else g.astype(x.dtype)  # noqa: E731
    return dx.astype(x.dtype), as_given(dg, scale), as_given(db, offset)


rms_reference.vjp = rms_reference_vjp
