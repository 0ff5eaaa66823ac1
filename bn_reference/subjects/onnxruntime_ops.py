"""ONNX Runtime's CPU normalization operators as subjects (``pip install "bn-props[onnxruntime]"``).

==================  =====================================================  ==========================
subject             one-node model (x rearranged as below), CPU provider    dtypes
==================  =====================================================  ==========================
ort_batch_norm      ``BatchNormalization`` (opset 15, ``training_mode=1``,   float32, float64, float16
                    ``momentum=0``) on (R0, K, R1*...): scale and B per
                    channel (the contract's, per kept position)
ort_layer_norm      ``LayerNormalization`` (opset 17, ``axis=1``) on         float32, float16
                    (K, *R), Scale = ones, then * scale + offset
ort_group_norm      ``GroupNormalization`` (opset 21, ``num_groups=1``) on   float32, float64, float16
                    (K, R0, R1...), scale/bias = 1/0, then * scale + offset
ort_rms_norm        ``RMSNormalization`` (opset 23, ``axis=1``) on (K, *R),  float32, float64, float16
                    Scale = the contract's scale as (K, 1, ..., 1), then
                    + offset (``bn_norm = "rms"``)
==================  =====================================================  ==========================

K is the product of the kept sides, R the reduced sides (``_framework.kept_last``), so the
operator's own reduction is exactly the contract's, for every axis set. ONNX Runtime 1.32's
CPU provider has no bfloat16 kernel for these operators, and ``LayerNormalization``'s
float64 kernel wants float64 ``Mean``/``InvStdDev`` outputs (``stash_type``) that the
reference build rejects, hence the dtypes.

``RMSNormalization``-23 runs ONNX Runtime's LayerNormalization kernel in its simplified form
(``onnxruntime/core/providers/cpu/nn/rms_norm.cc``: ``class RMSNorm : LayerNormImpl(info,
simplified = true)``, registered for float, double and float16; ``layer_norm_impl.cc``,
``ComputeImpl()``: ``sqrt(mean_square / norm_size + epsilon)`` over the axes from ``axis`` on,
``x / rms * scale``). Its ``Scale`` is broadcast (measured): the contract's per-kept-position
scale goes in as ``(K, 1, ..., 1)``. Its epsilon is a 32-bit FLOAT attribute, as every ONNX
one (a framework finding in float64). bfloat16 has no kernel: ORT falls back to the ONNX
function body, whose ``Mul`` has no bfloat16 CPU kernel ("Could not find an implementation
for Mul(14)").

``BatchNormalization`` in training mode also outputs ``running_mean = input_mean * momentum
+ current_mean * (1 - momentum)`` and likewise ``running_var`` with the population
(biased) batch variance (ONNX operator spec); with ``momentum=0`` those ARE the batch
moments, which ``ort_batch_norm.moments`` returns.

Sessions are cached (``functools.lru_cache``) per operator, rank, dtype and epsilon (an
attribute, hence part of the model); the input dimensions are symbolic, so new shapes reuse
a session. Forward-only: ONNX Runtime's inference sessions have no gradient.
"""
from __future__ import annotations

import functools

import numpy as np

from bn_reference.subjects import check_call
from bn_reference.subjects._framework import affine_after, kept_last, per_kept, require

ort = require("onnxruntime", "onnxruntime")
onnx = require("onnx", "onnxruntime")
helper = onnx.helper
ort.set_default_logger_severity(3)  # errors are raised as exceptions; no ANSI log lines on stderr
TensorProto = onnx.TensorProto

__all__ = ["ort_batch_norm", "ort_layer_norm", "ort_group_norm", "ort_rms_norm", "session", "LIBRARY"]

LIBRARY = "onnxruntime"
_ELEM = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "float16": TensorProto.FLOAT16}
_CACHE = 256


def _symbolic(name, elem, rank, prefix):
    return helper.make_tensor_value_info(name, elem, [f"{prefix}{i}" for i in range(rank)])


@functools.lru_cache(maxsize=_CACHE)
def session(op: str, rank: int, dtype: str, epsilon: float):
    """An ``InferenceSession`` (CPU) of a one-node model: ``op`` on an input of ``rank``
    symbolic dimensions and ``dtype``, with ``epsilon`` as its attribute."""
    elem = _ELEM[dtype]
    x = _symbolic("X", elem, rank, "d")
    if op == "BatchNormalization":
        params = [_symbolic(n, elem, 1, "c") for n in ("scale", "B", "input_mean", "input_var")]
        outputs = [_symbolic("Y", elem, rank, "d"), _symbolic("running_mean", elem, 1, "c"), _symbolic("running_var", elem, 1, "c")]
        node = helper.make_node(op, ["X", "scale", "B", "input_mean", "input_var"], ["Y", "running_mean", "running_var"], epsilon=epsilon, momentum=0.0, training_mode=1)
        opset = 15
    elif op == "LayerNormalization":
        params = [_symbolic("Scale", elem, rank - 1, "d")]
        outputs = [_symbolic("Y", elem, rank, "d")]
        node = helper.make_node(op, ["X", "Scale"], ["Y"], axis=1, epsilon=epsilon)
        opset = 17
    elif op == "GroupNormalization":
        params = [_symbolic("scale", elem, 1, "c"), _symbolic("bias", elem, 1, "c")]
        outputs = [_symbolic("Y", elem, rank, "d")]
        node = helper.make_node(op, ["X", "scale", "bias"], ["Y"], num_groups=1, epsilon=epsilon)
        opset = 21
    elif op == "RMSNormalization":
        params = [_symbolic("Scale", elem, rank, "s")]
        outputs = [_symbolic("Y", elem, rank, "d")]
        node = helper.make_node(op, ["X", "Scale"], ["Y"], axis=1, epsilon=epsilon)
        opset = 23
    else:
        raise ValueError(f"op must be BatchNormalization, LayerNormalization, GroupNormalization or RMSNormalization, got {op!r}")
    model = helper.make_model(helper.make_graph([node], op, [x, *params], outputs), opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _batch_norm_layout(x, axes):
    """x as (R0, K, R1*...) for BatchNormalization (channels = kept positions), and undo."""
    a, undo = kept_last(x, axes)
    k, r = a.shape[0], a.shape[1:]
    rest = int(np.prod(r[1:], dtype=np.int64))
    nc = np.ascontiguousarray(a.reshape(k, r[0], rest).transpose(1, 0, 2))
    return nc, lambda y: undo(np.asarray(y).transpose(1, 0, 2).reshape(a.shape))


def _run_batch_norm(x, axes, scale, offset, epsilon):
    nc, undo = _batch_norm_layout(x, axes)
    k = nc.shape[1]
    feeds = {
        "X": nc,
        "scale": per_kept(scale, x.shape, axes, x.dtype),
        "B": per_kept(offset, x.shape, axes, x.dtype),
        "input_mean": np.zeros(k, x.dtype),
        "input_var": np.ones(k, x.dtype),
    }
    y, mean, var = session("BatchNormalization", nc.ndim, x.dtype.name, float(epsilon)).run(None, feeds)
    return undo(y), mean, var


def _batch_norm_moments(x, *, axes):
    """The batch moments from ``running_mean``/``running_var`` with ``momentum=0``."""
    x = np.asarray(x)
    axes = tuple(axes)
    _, mean, var = _run_batch_norm(x, axes, 1.0, 0.0, 1e-3)
    keep = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return mean.reshape(keep), var.reshape(keep)


def ort_batch_norm(x, *, axes, scale, offset, epsilon, training):
    """ONNX ``BatchNormalization`` (opset 15, ``training_mode=1``) on (R0, K, R1*...), scale
    and B per channel; ``training`` False/None returns x."""
    x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    return _run_batch_norm(x, axes, scale, offset, epsilon)[0]


def ort_layer_norm(x, *, axes, scale, offset, epsilon, training):
    """ONNX ``LayerNormalization`` (opset 17, ``axis=1``: over every axis of (K, *R) but the
    first), Scale = ones, then * scale + offset in x's dtype; ``training`` False/None returns x."""
    x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    a, undo = kept_last(x, axes)
    (y,) = session("LayerNormalization", a.ndim, x.dtype.name, float(epsilon)).run(None, {"X": a, "Scale": np.ones(a.shape[1:], x.dtype)})
    return affine_after(undo(y), scale, offset, x.dtype)


def ort_group_norm(x, *, axes, scale, offset, epsilon, training):
    """ONNX ``GroupNormalization`` (opset 21, ``num_groups=1``: per batch entry over the
    channels and spatial axes) on (K, R0, R1...), scale 1 and bias 0 per channel, then
    * scale + offset in x's dtype; ``training`` False/None returns x."""
    x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    a, undo = kept_last(x, axes)
    c = a.shape[1]
    (y,) = session("GroupNormalization", a.ndim, x.dtype.name, float(epsilon)).run(
        None, {"X": a, "scale": np.ones(c, x.dtype), "bias": np.zeros(c, x.dtype)}
    )
    return affine_after(undo(y), scale, offset, x.dtype)


def ort_rms_norm(x, *, axes, scale, offset, epsilon, training):
    """ONNX ``RMSNormalization`` (opset 23, ``axis=1``: over every axis of (K, *R) but the
    first), Scale = the contract's scale per kept position as (K, 1, ..., 1), then + offset
    in x's dtype; ``training`` False/None returns x."""
    x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    a, undo = kept_last(x, axes)
    gamma = per_kept(scale, x.shape, axes, x.dtype).reshape((-1,) + (1,) * (a.ndim - 1))
    (y,) = session("RMSNormalization", a.ndim, x.dtype.name, float(epsilon)).run(None, {"X": a, "Scale": gamma})
    return affine_after(undo(y), 1.0, offset, x.dtype)


for _f, _dtypes, _api in (
    (ort_batch_norm, ("float32", "float64", "float16"), "onnxruntime BatchNormalization-15 (training_mode=1)"),
    (ort_layer_norm, ("float32", "float16"), "onnxruntime LayerNormalization-17"),
    (ort_group_norm, ("float32", "float64", "float16"), "onnxruntime GroupNormalization-21"),
    (ort_rms_norm, ("float32", "float64", "float16"), "onnxruntime RMSNormalization-23"),
):
    _f.bn_dtypes = _dtypes
    _f.bn_library = LIBRARY
    _f.bn_api = _api
ort_batch_norm.moments = _batch_norm_moments
ort_rms_norm.bn_norm = "rms"
