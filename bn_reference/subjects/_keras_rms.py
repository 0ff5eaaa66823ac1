"""Keras 3's RMSNorm, ``keras.ops.rms_normalization`` and ``keras.layers.RMSNormalization``,
as subjects on any backend: the TensorFlow one in this process (``keras_layers``), JAX and
PyTorch in a child process each (``keras_backends``, ``_keras_worker``).

Both compute (``keras/src/ops/nn.py``, ``_rms_normalization()``) in ``compute_dtype =
backend.result_type(x.dtype, "float32")``: float16/bfloat16 in float32 (the mean of
squares, the rsqrt and the product, then one cast back to x's dtype), and float64 in
float32 too (Keras' result_type maps 64-bit results to 32 bits: a framework finding).
``rrms = rsqrt(mean(square(x), axis, keepdims=True) + epsilon)``, ``x * rrms``, then
``* scale`` when a scale is given; on the PyTorch backend a contiguous ``axis`` goes to
``torch.nn.functional.rms_norm(x, normalized_shape, scale, epsilon)`` instead, which
normalizes over the TRAILING ``len(normalized_shape)`` dimensions whatever ``axis`` says
(measured, Keras 3.15.1: ``rms_normalization(x, axis=0)`` of a (2, 2) x normalizes each
ROW; of a (2, 3) x it raises "Given normalized_shape=[2], expected input with shape [*2]").

The adapters call both on x rearranged to ``(K, *R)`` (``_framework.kept_last``) with
``axis = [1, ..., ndim - 1]``: the reduced sides trailing, so every backend, PyTorch's
``F.rms_norm`` included, reduces over exactly the contract's axes. The scale conventions:

* ``keras.layers.RMSNormalization(axis, epsilon=1e-6)`` has no ``use_scale``: its ``scale``
  weight is per ELEMENT of the reduced axes (``build()``: shape ``input_shape[axis]``),
  initialized to ones, where the contract's is per kept position. The adapter leaves it at
  ones (an exact product) and applies the contract's scale and offset after, in x's dtype.
* ``keras.ops.rms_normalization(x, scale, axis, epsilon)`` multiplies by any ``scale``
  broadcastable to x on the generic path (TensorFlow, JAX): the adapter passes the
  contract's scale there, shaped ``(K, 1, ..., 1)``, so it is applied in the compute dtype
  before the one cast, and adds the offset after, in x's dtype. PyTorch's ``F.rms_norm``
  wants a weight of ``normalized_shape``, so on that backend the scale too is applied after.

Neither has an offset (RMSNorm's beta) nor a training mode: ``training`` False/None returns
x (the contract's inference). Epsilon is always passed (the defaults, ``backend.epsilon()``
= 1e-7 for the op and 1e-6 for the layer, are not the contract's).
"""
from __future__ import annotations

import functools

import numpy as np

from bn_reference.subjects import check_call
from bn_reference.subjects._framework import affine_after, kept_last, per_kept

__all__ = ["OPS", "keras_rms_ops", "rms_subject", "DTYPES"]

DTYPES = ("float32", "float64", "float16", "bfloat16")
OPS = ("rms_norm", "ops_rms_norm")  # keras.layers.RMSNormalization, keras.ops.rms_normalization
_API = {"rms_norm": "keras.layers.RMSNormalization", "ops_rms_norm": "keras.ops.rms_normalization"}
_CACHE = 64


def keras_rms_ops(keras) -> dict:
    """``{op: f(a, scale, epsilon) -> ndarray}`` for ``a`` laid out (K, *R), in the process
    whose ``keras`` is given (any backend): the layer (cached per reduced shape and dtype;
    epsilon set per call) and the op (``scale`` None, or an array broadcastable to ``a``)."""

    @functools.lru_cache(maxsize=_CACHE)
    def layer(reduced: tuple[int, ...], dtype: str):
        built = keras.layers.RMSNormalization(axis=list(range(1, len(reduced) + 1)), dtype=dtype)
        built.build((1, *reduced))
        return built

    def numpy(t):
        return np.asarray(keras.ops.convert_to_numpy(t))

    def rms_norm(a, scale, epsilon):
        built = layer(tuple(a.shape[1:]), a.dtype.name)
        built.epsilon = float(epsilon)
        return numpy(built(a))

    def ops_rms_norm(a, scale, epsilon):
        return numpy(keras.ops.rms_normalization(a, scale=scale, axis=list(range(1, a.ndim)), epsilon=float(epsilon)))

    return {"rms_norm": rms_norm, "ops_rms_norm": ops_rms_norm}


def rms_subject(name: str, op: str, run, *, backend: str, library: str):
    """The contract around ``run(op, a, scale, epsilon)`` (``a`` = x as (K, *R), ``scale``
    None or the contract's scale as (K, 1, ..., 1) in x's dtype): ``op`` one of ``OPS``.
    The op takes the scale where the backend allows it (module docstring); the rest of the
    affine step runs after, in x's dtype."""
    scale_inside = op == "ops_rms_norm" and backend != "torch"

    def subject(x, *, axes, scale, offset, epsilon, training):
        x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
        if not train:
            return x.copy()
        a, undo = kept_last(x, axes)
        gamma = per_kept(scale, x.shape, axes, x.dtype).reshape((-1,) + (1,) * (a.ndim - 1)) if scale_inside else None
        y = undo(run(op, a, gamma, epsilon))
        return affine_after(y, 1.0 if scale_inside else scale, offset, x.dtype)

    where = "in the op (compute dtype), offset after" if scale_inside else "both after"
    subject.__name__ = subject.__qualname__ = name
    subject.__doc__ = (
        f"``{_API[op]}`` (Keras 3, {backend} backend) on x rearranged to (K, *R), axis = [1..], "
        f"epsilon passed; the contract's scale and offset: {where}, in x's dtype. RMSNorm "
        "(``bn_norm = 'rms'``); ``training`` False/None returns x."
    )
    subject.bn_dtypes = DTYPES
    subject.bn_norm = "rms"
    subject.bn_library = (library, backend)  # Keras' API on the backend's distribution
    subject.bn_api = f"{_API[op]} (KERAS_BACKEND={backend})"
    return subject
