"""A JAX Pallas normalization kernel, checked on the CPU in interpret mode::

    bn-props check examples.pallas_bn:pallas_norm

``pl.pallas_call(..., interpret=True)`` runs the kernel body as ordinary JAX operations on
the CPU (no TPU or GPU); the same code with ``INTERPRET = False`` runs compiled on an
accelerator. The kernel sees one block: the (M, N) rows (``bn_reference.subjects.kernels``:
kept axes -> M, reduced axes -> N; a contiguous copy) padded with zeros to a multiple of 8
rows and 128 lanes, as a TPU tile is. Lanes past N are masked (``cols < n``); moments are
accumulated in float32, two passes, and the output is rounded once to x's dtype.

The backward pass is a second kernel, attached with ``jax.custom_vjp`` so that
``jax.vjp`` runs it: ``dx = scale * rstd * (dy - mean(dy) - x_hat * mean(dy * x_hat))``,
plus the per-row sums ``sum(dy * x_hat)``, ``sum(dy)`` (dscale, doffset).

``pallas_norm_mean_over_padded_lanes`` plants a bug of the same family as the Triton one:
the mean divides the (correct, masked) sum by the PADDED lane count, as ``jnp.mean`` over
the block does; right only when N is a multiple of 128.

dtypes: float32, float16 and bfloat16 (NumPy's ml_dtypes bfloat16 IS JAX's bfloat16: it
goes in and out unchanged). float64 would need ``jax_enable_x64``, which changes every JAX
user's defaults in the process, so it is not declared. Each new padded shape and dtype is
one trace and compilation (~0.25 s; N and epsilon are runtime arguments): ``bn_compiles = True`` keeps the shapes to a few buckets.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl

from bn_reference.subjects import check_call, supports
from bn_reference.subjects.kernels import as_rows, per_row, row_sums_to

INTERPRET = True  # False on a TPU/GPU machine: the same kernels, compiled
SUBLANES, LANES = 8, 128


def _masked_moments(x, n, mean_over_padded):
    ok = jax.lax.broadcasted_iota(jnp.int32, x.shape, 1) < n
    total = jnp.sum(jnp.where(ok, x, 0.0), axis=1, keepdims=True)
    mean = total / (x.shape[1] if mean_over_padded else n.astype(jnp.float32))  # the planted bug divides by the padded width
    d = jnp.where(ok, x - mean, 0.0)
    return ok, mean, jnp.sum(d * d, axis=1, keepdims=True) / n


def _forward_kernel(n_ref, eps_ref, x_ref, g_ref, b_ref, y_ref, mean_ref, rstd_ref, *, mean_over_padded):
    x = x_ref[...].astype(jnp.float32)
    ok, mean, var = _masked_moments(x, n_ref[0, 0], mean_over_padded)
    rstd = jax.lax.rsqrt(var + eps_ref[0, 0])
    y = (x - mean) * rstd * g_ref[...] + b_ref[...]
    y_ref[...] = jnp.where(ok, y, 0.0).astype(y_ref.dtype)
    mean_ref[...] = mean
    rstd_ref[...] = rstd


def _backward_kernel(n_ref, x_ref, dy_ref, g_ref, mean_ref, rstd_ref, dx_ref, sdyx_ref, sdy_ref):
    n = n_ref[0, 0]
    x = x_ref[...].astype(jnp.float32)
    dy = dy_ref[...].astype(jnp.float32)
    ok = jax.lax.broadcasted_iota(jnp.int32, x.shape, 1) < n
    x_hat = jnp.where(ok, (x - mean_ref[...]) * rstd_ref[...], 0.0)
    dy = jnp.where(ok, dy, 0.0)
    s_dy = jnp.sum(dy, axis=1, keepdims=True)
    s_dyx = jnp.sum(dy * x_hat, axis=1, keepdims=True)
    dx = g_ref[...] * rstd_ref[...] * (dy - (s_dy + x_hat * s_dyx) / n.astype(jnp.float32))
    dx_ref[...] = jnp.where(ok, dx, 0.0).astype(dx_ref.dtype)
    sdyx_ref[...] = s_dyx
    sdy_ref[...] = s_dy


def _f32(shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


# N and epsilon are (1, 1) arrays, not static arguments: one compilation per padded shape
# and dtype, not per N or per epsilon.
@functools.partial(jax.jit, static_argnames=("mean_over_padded",))
def _forward(n, eps, x, g, b, *, mean_over_padded=False):
    col = (x.shape[0], 1)
    kernel = functools.partial(_forward_kernel, mean_over_padded=mean_over_padded)
    return pl.pallas_call(kernel, out_shape=(jax.ShapeDtypeStruct(x.shape, x.dtype), _f32(col), _f32(col)), interpret=INTERPRET)(n, eps, x, g, b)


@jax.jit
def _backward(n, eps, x, dy, g, b):
    _, mean, rstd = _forward(n, eps, x, g, b)
    col = (x.shape[0], 1)
    return pl.pallas_call(_backward_kernel, out_shape=(jax.ShapeDtypeStruct(x.shape, x.dtype), _f32(col), _f32(col)), interpret=INTERPRET)(n, x, dy, g, mean, rstd)


def _scalars(n, epsilon):
    return jnp.full((1, 1), n, jnp.int32), jnp.full((1, 1), epsilon, jnp.float32)


def _padded(a: np.ndarray, dtype) -> np.ndarray:
    m, n = a.shape
    out = np.zeros((-(-m // SUBLANES) * SUBLANES, -(-n // LANES) * LANES), dtype=dtype)
    out[:m, :n] = a
    return out


def _prepare(x, axes, scale, offset):
    rows, undo = as_rows(x, axes)
    m, n = rows.shape
    col = lambda v: _padded(per_row(v, x.shape, axes, np.float32)[:, None], np.float32)[:, :1]  # noqa: E731
    return jnp.asarray(_padded(rows, x.dtype)), jnp.asarray(col(scale)), jnp.asarray(col(offset)), m, n, undo


def _normalize(x, *, axes, scale, offset, epsilon, training, mean_over_padded):
    x, axes, epsilon, normalize = check_call(x, axes, scale, offset, epsilon, training)
    if not normalize or x.size == 0:
        return x.copy()
    xp, g, b, m, n, undo = _prepare(x, axes, scale, offset)
    y, _, _ = _forward(*_scalars(n, epsilon), xp, g, b, mean_over_padded=mean_over_padded)
    return undo(np.asarray(y)[:m, :n]).astype(x.dtype)


def vjp(x, dy, *, axes, scale, offset, epsilon):
    """The backward kernel: ``(dx, dscale, doffset)`` of the training-mode output."""
    x, axes = np.asarray(x), tuple(axes)
    if x.size == 0:
        zero = lambda p: 0.0 if np.ndim(p) == 0 and not isinstance(p, np.ndarray) else np.zeros(np.shape(p), x.dtype)  # noqa: E731
        return np.zeros_like(x), zero(scale), zero(offset)
    xp, g, b, m, n, undo = _prepare(x, axes, scale, offset)
    dyp = jnp.asarray(_padded(as_rows(np.asarray(dy, dtype=x.dtype), axes)[0], x.dtype))
    dx, s_dyx, s_dy = _backward(*_scalars(n, epsilon), xp, dyp, g, b)
    rows = lambda s: np.asarray(s)[:m, 0]  # noqa: E731
    return (
        undo(np.asarray(dx)[:m, :n]).astype(x.dtype),
        row_sums_to(rows(s_dyx), scale, x.shape, axes, x.dtype),
        row_sums_to(rows(s_dy), offset, x.shape, axes, x.dtype),
    )


@supports("float32", "float16", "bfloat16", vjp=vjp)
def pallas_norm(x, *, axes, scale, offset, epsilon, training):
    """The Pallas kernel, tail lanes masked and the mean over the N real lanes."""
    return _normalize(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, mean_over_padded=False)


@supports("float32", "float16", "bfloat16", vjp=vjp)
def pallas_norm_mean_over_padded_lanes(x, *, axes, scale, offset, epsilon, training):
    """The planted bug: the mean divides by the padded lane count."""
    return _normalize(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, mean_over_padded=True)


pallas_norm.bn_compiles = pallas_norm_mean_over_padded_lanes.bn_compiles = True
