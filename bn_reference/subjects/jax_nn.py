"""``jax.nn.standardize`` as subjects, one per variance algorithm (``pip install "bn-props[jax]"``).

* ``jax_standardize`` (``algorithm="fast"``, JAX's default): ``var = mean(x^2) - mean(x)^2``,
  clipped at 0 (``jax/_src/nn/functions.py``, ``standardize()``): one pass, which cancels
  catastrophically when |mean| >> std.
* ``jax_standardize_stable`` (``algorithm="stable"``): ``var = mean((x - mean(x))^2)``,
  two passes.

Both: ``jax.nn.standardize(x, axis=axes, epsilon=epsilon, algorithm=...) * scale + offset``,
the whole forward pass one ``jax.jit`` (compiled once per shape, dtype and axes; epsilon,
scale and offset are traced arguments, so new values do not recompile). JAX's own axis
argument takes any axis set. All four dtypes; float64 needs ``jax_enable_x64``, which
importing this module turns on (float32 inputs stay float32). CPU.

The forward passes (``FORWARDS``) are JAX functions ``forward(x, scale, offset, *, axes,
epsilon)``, so ``subject.vjp = autodiff.jax_vjp(FORWARDS[name])`` attaches the gradient.
"""
from __future__ import annotations

import numpy as np

from bn_reference.subjects import check_call
from bn_reference.subjects._framework import require
from bn_reference.subjects.autodiff import jax_vjp

jax = require("jax", "jax")
jnp = require("jax.numpy", "jax")
jax.config.update("jax_enable_x64", True)

__all__ = ["jax_standardize", "jax_standardize_stable", "FORWARDS", "LIBRARY", "jax_subject", "to_jax"]

LIBRARY = "jax"
DTYPES = ("float32", "float64", "float16", "bfloat16")


def _standardize_forward(algorithm):
    def forward(x, scale, offset, *, axes, epsilon):
        return jax.nn.standardize(x, axis=tuple(axes), epsilon=epsilon, algorithm=algorithm) * scale + offset

    forward.__doc__ = f"``jax.nn.standardize(x, axis=axes, epsilon=epsilon, algorithm={algorithm!r}) * scale + offset``."
    forward.__name__ = f"standardize_{algorithm}"
    return forward


FORWARDS = {
    "jax_standardize": _standardize_forward("fast"),
    "jax_standardize_stable": _standardize_forward("stable"),
}


def to_jax(v, dtype: np.dtype):
    """A float or ndarray as a JAX array of ``dtype`` (a float rounds once from float64)."""
    return jnp.asarray(np.asarray(np.asarray(v, dtype=np.float64) if np.ndim(v) == 0 else v).astype(dtype))


def jax_subject(name: str, forward, api: str, *, dtypes=DTYPES, library=LIBRARY):
    """The contract around a JAX ``forward(x, scale, offset, *, axes, epsilon)``: one
    ``jax.jit`` (``axes`` static), its result returned as it comes (no cast: the output
    dtype is the library's), ``training`` False/None returns x.

    ``scale`` and ``offset`` reach the jitted function as full-rank per-feature arrays of x's
    dtype (size 1 on every reduced axis), whichever form the contract allows them in (a
    float, such an array, one with its leading 1s dropped): XLA compiles once per shape,
    dtype and axes instead of once per combination of the two parameters' forms. The
    product ``y * scale + offset`` is the same elementwise (checked bit for bit on 4,860
    outputs of every forward here, all four dtypes, the nine form pairs)."""
    jitted = jax.jit(forward, static_argnames=("axes",))

    def subject(x, *, axes, scale, offset, epsilon, training):
        x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
        if not train:
            return x.copy()
        keep = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        g, b = (to_jax(np.broadcast_to(v, keep), x.dtype) for v in (scale, offset))  # broadcast in NumPy: jnp's would compile per shape
        y = jitted(jnp.asarray(x), g, b, axes=tuple(axes), epsilon=epsilon)
        return np.asarray(y)

    subject.__name__ = subject.__qualname__ = name
    subject.__doc__ = f"{forward.__doc__} Jitted; ``training`` False/None returns x."
    subject.bn_dtypes = tuple(dtypes)
    subject.bn_library = library
    subject.bn_api = api
    subject.forward = forward
    subject.vjp = jax_vjp(forward)  # the gradient contract, through jax.vjp (issue 17)
    return subject


jax_standardize = jax_subject("jax_standardize", FORWARDS["jax_standardize"], 'jax.nn.standardize(algorithm="fast")')
jax_standardize_stable = jax_subject("jax_standardize_stable", FORWARDS["jax_standardize_stable"], 'jax.nn.standardize(algorithm="stable")')

# XLA compiles each new shape (0.1-1 s): shapes from a few buckets (bn_reference.harness.budget).
jax_standardize.bn_compiles = jax_standardize_stable.bn_compiles = True
