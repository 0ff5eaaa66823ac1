"""Flax ``linen`` normalization layers as subjects (``pip install "bn-props[flax]"``), each with
``use_fast_variance`` True (Flax's default) and False.

=============================  ==========================================================
subject                        layer (x rearranged to (K, *R), ``_framework.kept_last``)
=============================  ==========================================================
flax_layer_norm[_two_pass]     ``LayerNorm(reduction_axes=R)``
flax_batch_norm[_two_pass]     ``BatchNorm(axis=0, use_running_average=False, momentum=0)``
flax_group_norm[_two_pass]     ``GroupNorm(num_groups=1)``: per batch entry (axis 0), over R
flax_rms_norm                  ``RMSNorm(reduction_axes=R, feature_axes=0)``: its scale
                               parameter holds the contract's scale (``bn_norm = "rms"``)
=============================  ==========================================================

K is the product of the kept sides (one batch entry / feature per kept position), R the
reduced sides, so each layer's own reduction is exactly the contract's, for every axis set.
Every layer is built with ``use_scale=False, use_bias=False`` (their parameters are per
element of R, or per channel of R's last axis, where the contract's are per kept
position) and the affine step runs after, in JAX: ``y * scale + offset``.

``use_fast_variance=True`` computes ``var = mean(x^2) - mean(x)^2`` (clipped at 0;
``flax/linen/normalization.py``, ``_compute_stats()``), one pass; ``False`` computes
``mean((x - mean)^2)``. ``force_float32_reductions=True`` (default): the statistics of
float16/bfloat16 inputs are computed in float32.

``RMSNorm`` (``_compute_stats(use_mean=False)``: ``var = mean(|x|^2)`` in at least float32,
the mean a zero; ``use_fast_variance`` plays no part) keeps its ``scale`` per position of
``feature_axes``; with ``feature_axes=0`` on (K, *R) that is one per kept position, the
contract's, so ``flax_rms_norm`` passes the contract's scale (rounded to x's dtype) as the
layer's ``{"params": {"scale": ...}}``. ``_normalize()`` then forms ``y = x - 0``, ``mul =
rsqrt(var + eps) * scale`` and ``y * mul`` in the statistics' dtype (float32 for
half-precision x) and casts once to x's dtype; RMSNorm has no bias, so the offset is added
after, in JAX. Its own defaults (``epsilon=1e-6``, ``reduction_axes=-1``) are overridden.

Each forward pass (module built inside one ``jax.jit``, epsilon a traced argument, so a new
epsilon does not recompile) is a JAX function in ``FORWARDS``: ``autodiff.jax_vjp`` attaches
the gradient with one line. ``flax_batch_norm``'s ``moments`` are its ``batch_stats`` after
one training call with ``momentum=0`` (``ra = 0 * ra + 1 * batch``: an exact copy; float32
storage under ``force_float32_reductions``).
"""
from __future__ import annotations

import numpy as np

from bn_reference.subjects._framework import require
from bn_reference.subjects.jax_nn import jax_subject

jax = require("jax", "flax")
jnp = require("jax.numpy", "flax")
nn = require("flax.linen", "flax")

__all__ = [
    "flax_layer_norm",
    "flax_layer_norm_two_pass",
    "flax_batch_norm",
    "flax_batch_norm_two_pass",
    "flax_group_norm",
    "flax_group_norm_two_pass",
    "flax_rms_norm",
    "FORWARDS",
    "LIBRARY",
]

LIBRARY = "flax"


def _kept_last(x, axes):
    kept = tuple(a for a in range(x.ndim) if a not in axes)
    perm = kept + tuple(axes)
    p = jnp.transpose(x, perm)
    inverse = tuple(int(i) for i in np.argsort(perm))
    k = int(np.prod([x.shape[a] for a in kept], dtype=np.int64))
    arranged = p.reshape((k,) + tuple(x.shape[a] for a in axes))
    return arranged, lambda y: jnp.transpose(y.reshape(p.shape), inverse)


def _layer(kind: str, fast: bool, epsilon, ndim: int):
    common = dict(epsilon=epsilon, use_bias=False, use_scale=False, use_fast_variance=fast)
    if kind == "layer_norm":
        return nn.LayerNorm(reduction_axes=tuple(range(1, ndim)), **common)
    if kind == "batch_norm":
        return nn.BatchNorm(use_running_average=False, axis=0, momentum=0.0, **common)
    return nn.GroupNorm(num_groups=1, **common)


def _batch_stats(k: int):
    return {"batch_stats": {"mean": jnp.zeros((k,), jnp.float32), "var": jnp.ones((k,), jnp.float32)}}


def _apply(kind, fast, a, epsilon):
    layer = _layer(kind, fast, epsilon, a.ndim)
    if kind == "batch_norm":
        y, updated = layer.apply(_batch_stats(a.shape[0]), a, mutable=["batch_stats"])
        return y, updated["batch_stats"]
    return layer.apply({}, a), None


def _forward(kind: str, fast: bool):
    def forward(x, scale, offset, *, axes, epsilon):
        a, undo = _kept_last(x, axes)
        y, _ = _apply(kind, fast, a, epsilon)
        return undo(y) * scale + offset

    forward.__name__ = f"{kind}_{'fast' if fast else 'two_pass'}"
    forward.__doc__ = f"Flax ``{_CLASS[kind]}(use_fast_variance={fast})`` on (K, *R), then * scale + offset."
    return forward


_CLASS = {"layer_norm": "LayerNorm", "batch_norm": "BatchNorm", "group_norm": "GroupNorm"}
_NAMES = {(kind, fast): f"flax_{kind}" + ("" if fast else "_two_pass") for kind in _CLASS for fast in (True, False)}
FORWARDS = {name: _forward(kind, fast) for (kind, fast), name in _NAMES.items()}


def _batch_norm_moments(fast: bool):
    @jax.jit
    def stats(a):
        _, s = _apply("batch_norm", fast, a, 1e-3)
        return s["mean"], s["var"]

    def moments(x, *, axes):
        x = np.asarray(x)
        axes = tuple(axes)
        a, _ = _kept_last(jnp.asarray(x), axes)
        mean, var = stats(a)
        keep = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        return np.asarray(mean).reshape(keep), np.asarray(var).reshape(keep)

    moments.__doc__ = f"Flax BatchNorm(use_fast_variance={fast}, momentum=0)'s batch_stats after one training call."
    return moments


def _subject(kind, fast):
    name = _NAMES[(kind, fast)]
    subject = jax_subject(name, FORWARDS[name], f"flax.linen.{_CLASS[kind]}(use_fast_variance={fast})", library=LIBRARY)
    if kind == "batch_norm":
        subject.moments = _batch_norm_moments(fast)
    return subject


flax_layer_norm = _subject("layer_norm", True)
flax_layer_norm_two_pass = _subject("layer_norm", False)
flax_batch_norm = _subject("batch_norm", True)
flax_batch_norm_two_pass = _subject("batch_norm", False)
flax_group_norm = _subject("group_norm", True)
flax_group_norm_two_pass = _subject("group_norm", False)


def rms_norm_forward(x, scale, offset, *, axes, epsilon):
    """Flax ``RMSNorm(reduction_axes=R, feature_axes=0)`` on (K, *R) with its scale parameter
    = the contract's scale per kept position, then + offset."""
    a, undo = _kept_last(x, axes)
    keep = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    gamma = _kept_last(jnp.broadcast_to(scale, keep), axes)[0].reshape(a.shape[0])
    layer = nn.RMSNorm(epsilon=epsilon, reduction_axes=tuple(range(1, a.ndim)), feature_axes=0)
    return undo(layer.apply({"params": {"scale": gamma}}, a)) + offset


FORWARDS["flax_rms_norm"] = rms_norm_forward
flax_rms_norm = jax_subject("flax_rms_norm", rms_norm_forward, "flax.linen.RMSNorm(feature_axes=0)", library=LIBRARY)
flax_rms_norm.bn_norm = "rms"


# XLA compiles each new shape (0.1-1 s): shapes from a few buckets (bn_reference.harness.budget).
for _f in (flax_layer_norm, flax_layer_norm_two_pass, flax_batch_norm, flax_batch_norm_two_pass, flax_group_norm, flax_group_norm_two_pass, flax_rms_norm):
    _f.bn_compiles = True
