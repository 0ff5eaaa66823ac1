"""The real layers as subjects: Keras 3 normalization layers and TF's fused kernel.

Each adapter follows the subject contract (``bn_reference.subjects``)::

    f(x, *, axes, scale, offset, epsilon, training) -> ndarray (same shape and dtype as x)

and is registered in ``subjects.LAYER_SUBJECTS``: not a default subject, checked with
``--bn-impl NAME`` (``tox -e layers`` runs them all). What each layer can express decides
its ``bn_axes``; the strategies then draw only those reduced-axis sets.

=====================  ===============================================  ====================
subject                reduced axes it expresses (``bn_axes``)           dtypes
=====================  ===============================================  ====================
keras_batch_norm       every axis but one (rank >= 2)                    all four
keras_layer_norm       any non-empty set                                 all four
keras_group_norm       every axis but 0 (rank >= 2); every axis but 0    all four
                       and one channel axis k (rank >= 3)
fused_batch_norm       any non-empty set (x rearranged to N, H, W, C)    float32, float16,
fused_batch_norm_nchw                                                    bfloat16
keras_tf_rms_norm      any non-empty set (x rearranged to (K, *R))       all four
keras_tf_ops_rms_norm
=====================  ===============================================  ====================

``keras_tf_rms_norm`` (``keras.layers.RMSNormalization``) and ``keras_tf_ops_rms_norm``
(``keras.ops.rms_normalization``) are RMSNorm subjects (``bn_norm = "rms"``) registered in
``subjects.FRAMEWORK_SUBJECTS`` with their JAX and PyTorch twins (``keras_backends``), so the
conformance run checks them (group ``keras_tf``); how they compute and take the contract's
scale: ``bn_reference.subjects._keras_rms``.

Measured on TF 2.21 / Keras 3.15, CPU (``properties/test_layers.py`` checks each fact):

* ``keras.layers.BatchNormalization(axis=...)`` takes ONE int, the KEPT (feature) axis
  (``self.axis = int(axis)``: a list raises ``TypeError``); it reduces over every other
  axis. It computes in ``result_type(x.dtype, float32)`` (float16/bfloat16 in float32),
  with ``tf.nn.moments`` and the folded ``tf.nn.batch_normalization``; gamma, beta and
  the moving statistics are variables of the layer's dtype. With ``training`` False or
  None it normalizes with its MOVING statistics (initially mean 0, variance 1):
  ``y = x / sqrt(1 + eps) * gamma + beta``, not ``x``. That is Keras' documented
  inference mode and a knowing difference from this contract: recorded as a strict xfail
  of ``test_inference_returns_input`` in ``bn_reference.subjects.deviations``, and checked against
  its own law in ``properties/test_layers.py``.
* ``keras.layers.LayerNormalization(axis=[...])`` takes the REDUCED axes (any set); its
  gamma/beta are per ELEMENT of the reduced axes, not per feature, so the adapter builds
  it with ``center=False, scale=False`` and applies the contract's scale and offset
  after, in x's dtype. It has no training mode: the adapter returns ``x`` for
  ``training`` False/None (the contract's inference).
* ``keras.layers.GroupNormalization(groups, axis=k)`` reduces, per example (axis 0) and
  group, over every axis but 0 and the group's channels: ``groups=1`` reduces over every
  axis but 0; ``groups=-1`` (one group per channel, instance norm) over every axis but 0
  and k. Intermediate group counts reduce over part of axis k, which no axis set names.
  Its gamma/beta are per channel (axis k), while the contract's per-feature parameters
  vary along axis 0 too, so the adapter uses ``center=False, scale=False`` and applies
  scale and offset after. No training mode: ``x`` for ``training`` False/None.
* ``tf.compat.v1.nn.fused_batch_norm`` (``FusedBatchNormV3``) is 4-D only. The adapter
  transposes the reduced axes to the front and the kept ones to the back, and reshapes to
  ``(N, H, W, C)``: N, H = the first two reduced axes, W = the product of the rest (1 if
  none), C = the product of the kept axes (1 if none); NHWC, or NCHW for
  ``fused_batch_norm_nchw``. x may be float32, float16 or bfloat16; scale, offset and the
  returned statistics are float32 (``U``): a float16 scale is rejected ("Value for attr
  'U' of half is not in the list of allowed values"), float64 x is rejected ('T'), and
  bfloat16 scale has no CPU kernel. In training mode it normalizes with the BIASED batch
  variance but RETURNS the Bessel-corrected one, ``var * n / max(n - 1, 1)`` (bit for bit
  ``fl32(reserve_space_2 * fl32(n / (n - 1)))`` on CPU, and 0 for n = 1). Epsilon is used
  as given: TF 2.21's Python wrapper no longer raises it to 1.001e-5 (TF 1.x did, for
  cuDNN), and the CPU kernel normalizes with epsilon down to 1e-12 and 0.
  The fused adapters run on the CPU (``tf.device("/CPU:0")``): these facts, and the
  ``moments`` attribute, are the CPU kernel's.

Keras layers are cached (``functools.lru_cache``) per shape-relevant key and dtype;
every call sets the weights it uses (gamma, beta, fresh moving statistics, epsilon), so
no state leaks from one call into the next.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from bn_reference.subjects import check_call, supports
from bn_reference.subjects._keras_rms import keras_rms_ops, rms_subject
from bn_reference.mathematics.validation import check_mask, check_x, normalize_axes

__all__ = [
    "keras_batch_norm",
    "keras_masked_batch_norm",
    "keras_layer_norm",
    "keras_group_norm",
    "keras_tf_rms_norm",
    "keras_tf_ops_rms_norm",
    "fused_batch_norm",
    "fused_batch_norm_nchw",
    "fused_batch_statistics",
    "fused_reserve_space",
    "fused_moments",
    "keras_bn_axes",
    "keras_gn_axes",
    "keras_bn_layer",
    "per_feature",
    "ALL_DTYPES",
    "FUSED_DTYPES",
    "FUSED_MIN_EPSILON_OLD",
]

ALL_DTYPES = ("float32", "float64", "float16", "bfloat16")
FUSED_DTYPES = ("float32", "float16", "bfloat16")
FUSED_MIN_EPSILON_OLD = 1.001e-5  # the floor TF 1.x's fused_batch_norm wrapper applied (cuDNN's minimum)
_CACHE = 64  # Keras layers kept per adapter


def _keras():
    from bn_reference.subjects._tf import keras

    return keras


def _tf():
    from bn_reference.subjects._tf import tf

    return tf


# --------------------------------------------------------------------------------------
# Shared pieces: kept axes, per-feature parameters, rearranging x
# --------------------------------------------------------------------------------------


def _kept(axes, ndim: int) -> tuple[int, ...]:
    return tuple(a for a in range(ndim) if a not in axes)


def _keepdims_shape(shape, axes) -> tuple[int, ...]:
    return tuple(1 if a in axes else d for a, d in enumerate(shape))


def per_feature(v, shape, axes, dtype) -> np.ndarray:
    """The contract's ``scale``/``offset`` (a float, or an array with size 1 on every reduced
    axis) as the flat vector over the kept axes, in C order (length ``prod`` of the kept
    sides, 1 if none are kept), converted once from float64 to ``dtype``."""
    a = np.asarray(v, dtype=np.float64)
    a = a.reshape((1,) * (len(shape) - a.ndim) + a.shape).squeeze(axis=tuple(axes))
    kept_shape = tuple(shape[k] for k in _kept(axes, len(shape)))
    return np.broadcast_to(a, kept_shape).reshape(-1).astype(dtype)


def _param(v, dtype) -> np.ndarray:
    return np.asarray(np.asarray(v, dtype=np.float64), dtype=dtype)


def _affine_after(x_hat: np.ndarray, scale, offset, dtype) -> np.ndarray:
    """``x_hat * scale + offset`` in ``dtype`` (for layers whose own gamma/beta cannot hold
    the contract's per-feature parameters)."""
    return (x_hat.astype(dtype) * _param(scale, dtype) + _param(offset, dtype)).astype(dtype)


def _features_last(x: np.ndarray, axes, lead):
    """x with its reduced axes moved to the front (in order) and its kept axes to the back,
    reshaped to ``lead(reduced sides) + (C,)``, C = product of the kept sides (1 if none).
    Returns ``(rearranged, undo)``; ``undo(y)`` maps a result of that shape back to x's."""
    kept = _kept(axes, x.ndim)
    perm = tuple(axes) + kept
    t = np.transpose(x, perm)
    c = math.prod(x.shape[k] for k in kept)
    inverse = np.argsort(perm)

    def undo(y):
        return np.transpose(np.asarray(y).reshape(t.shape), inverse)

    return np.ascontiguousarray(t.reshape(tuple(lead([x.shape[a] for a in axes])) + (c,))), undo


def _nhw(sides) -> tuple[int, int, int]:
    """Reduced sides grouped into (N, H, W): the first two, and the product of the rest."""
    return (sides[0], sides[1] if len(sides) > 1 else 1, math.prod(sides[2:]))


# --------------------------------------------------------------------------------------
# keras.layers.BatchNormalization
# --------------------------------------------------------------------------------------


def keras_bn_axes(ndim: int) -> list[tuple[int, ...]]:
    """Every axis but one (Keras' ``axis`` is the single kept axis); none for rank 1."""
    if ndim < 2:
        return []
    return [tuple(a for a in range(ndim) if a != k) for k in range(ndim)]


def _single_kept_axis(name: str, axes, ndim: int) -> int:
    """The one axis a Keras ``BatchNormalization`` keeps (its ``axis``) for ``axes`` of a
    rank-``ndim`` x; any other axis set is a ``ValueError`` naming the subject (its
    ``bn_axes`` lists the sets it takes)."""
    kept = _kept(axes, ndim)
    if len(kept) != 1:
        raise ValueError(
            f"{name}: Keras BatchNormalization keeps exactly one axis (its `axis`); "
            f"axes={axes} of a rank-{ndim} x keeps {kept} (see {name}.bn_axes)"
        )
    return kept[0]


@functools.lru_cache(maxsize=_CACHE)
def keras_bn_layer(ndim: int, axis: int, features: int, dtype: str):
    """A built ``BatchNormalization(axis=axis, momentum=0.0, dtype=dtype)`` for rank-``ndim``
    inputs with ``features`` entries on ``axis``. ``momentum=0`` changes nothing the layer
    outputs in training mode, and makes its moving-statistics update ``moving = 0 * moving
    + 1 * batch`` copy the batch moments exactly (what ``_keras_bn_moments`` reads)."""
    keras = _keras()
    layer = keras.layers.BatchNormalization(axis=axis, momentum=0.0, dtype=dtype)
    shape = [1] * ndim
    shape[axis] = features
    layer.build(tuple(shape))
    return layer


def _fresh(layer, dtype, gamma=None, beta=None, epsilon=None, *, moving=True):
    """Set gamma and beta and epsilon; with ``moving``, reset the moving statistics to Keras'
    initial 0 and 1 (a training-mode output does not read them: skipping saves two of the
    four variable writes, about 1 ms a call)."""
    c = layer.moving_mean.shape[0]
    layer.gamma.assign(np.ones(c, dtype) if gamma is None else gamma)
    layer.beta.assign(np.zeros(c, dtype) if beta is None else beta)
    if moving:
        layer.moving_mean.assign(np.zeros(c, dtype))
        layer.moving_variance.assign(np.ones(c, dtype))
    if epsilon is not None:
        layer.epsilon = float(epsilon)


def _keras_bn_moments(x, *, axes):
    """The batch moments Keras BatchNormalization computes in training mode, read back from
    its moving statistics after one call with ``momentum=0`` (an exact copy; in the layer's
    variable dtype, i.e. x's). Axis sets with more than one kept axis are reached by
    flattening the kept axes into Keras' one feature axis (the reduction is the same)."""
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    kept = _kept(axes, x.ndim)
    if len(kept) == 1:
        arranged, axis = x, kept[0]
    else:
        arranged, _ = _features_last(x, axes, tuple)
        axis = arranged.ndim - 1
    layer = keras_bn_layer(arranged.ndim, axis, arranged.shape[axis], x.dtype.name)
    _fresh(layer, x.dtype)
    layer(arranged, training=True)
    keep = _keepdims_shape(x.shape, axes)
    return np.asarray(layer.moving_mean).reshape(keep), np.asarray(layer.moving_variance).reshape(keep)


@supports(*ALL_DTYPES, moments=_keras_bn_moments)
def keras_batch_norm(x, *, axes, scale, offset, epsilon, training):
    """``keras.layers.BatchNormalization(axis=k, epsilon=epsilon, dtype=x.dtype)`` with k the
    one kept axis (axes = every axis but k; ``bn_axes``), gamma and beta set from the
    contract's scale and offset (per feature along k), called with ``training`` as given.

    ``training=True``: batch statistics, the contract's law. ``training`` False/None:
    Keras' inference mode with fresh moving statistics, ``x / sqrt(1 + eps) * gamma + beta``
    (a recorded deviation from the contract's "return x"; see the module docstring).
    """
    x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
    k = _single_kept_axis("keras_batch_norm", axes, x.ndim)
    layer = keras_bn_layer(x.ndim, k, x.shape[k], x.dtype.name)
    gamma, beta = per_feature(scale, x.shape, axes, x.dtype), per_feature(offset, x.shape, axes, x.dtype)
    _fresh(layer, x.dtype, gamma, beta, epsilon, moving=not train)
    return np.asarray(layer(x, training=None if training is None else bool(training)))


keras_batch_norm.bn_axes = keras_bn_axes


def _keras_bn_mixed(policy: str):
    """``keras_batch_norm`` under the Keras dtype policy ``policy`` (``mixed_float16`` or
    ``mixed_bfloat16``): float32 variables, computation in the policy's compute dtype, y in
    it (``bn_output_dtype``). Called on float32 x, the mixed-precision case."""
    out = policy.removeprefix("mixed_")

    def subject(x, *, axes, scale, offset, epsilon, training):
        x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
        k = _single_kept_axis(f"keras_batch_norm_{policy}", axes, x.ndim)
        layer = keras_bn_layer(x.ndim, k, x.shape[k], policy)
        variables = np.dtype(layer.variable_dtype)
        gamma, beta = per_feature(scale, x.shape, axes, variables), per_feature(offset, x.shape, axes, variables)
        _fresh(layer, variables, gamma, beta, epsilon, moving=not train)
        with np.errstate(over="ignore"):  # Keras' own cast of x to the compute dtype is what is under test
            return np.asarray(layer(x, training=None if training is None else bool(training)))

    subject.__name__ = subject.__qualname__ = f"keras_batch_norm_{policy}"
    subject.__doc__ = (
        f"``keras.layers.BatchNormalization(axis=k, dtype='{policy}')`` on float32 x: y in {out} "
        "(the policy's compute dtype), gamma and beta float32 variables; otherwise as keras_batch_norm."
    )
    subject.bn_dtypes = ("float32",)
    subject.bn_output_dtype = out
    subject.bn_axes = keras_bn_axes
    return subject


keras_batch_norm_mixed_float16 = _keras_bn_mixed("mixed_float16")
keras_batch_norm_mixed_bfloat16 = _keras_bn_mixed("mixed_bfloat16")


@supports(*ALL_DTYPES)
def keras_masked_batch_norm(x, *, axes, scale, offset, epsilon, training, mask=None):
    """``keras.layers.BatchNormalization`` called with ``mask`` (``bn_mask = True``): the
    masked-moments contract (``bn_reference/mathematics/masked.py``). Without ``mask``:
    ``keras_batch_norm``.

    Keras takes a mask of x's rank minus one and broadcasts it along x's LAST axis
    (``call()`` raises ``ValueError`` otherwise; ``_moments``: ``expand_dims(mask, -1)``),
    so the adapter moves the kept axis k last and builds ``BatchNormalization(axis=-1)``.
    The contract's mask may differ from one kept position to the next, which Keras' mask
    cannot say: the adapter calls the layer once per distinct mask pattern along k (once
    when the mask has size 1 on k, Keras' own case) and takes, from each call, the
    features that have that pattern (the features are normalized independently: feature
    c's output reads only feature c's elements, its gamma and beta). Training only: in
    inference Keras ignores the mask (moving statistics; ``keras_batch_norm``'s deviation).

    The layer is built with ``axis=-1`` (Keras' default), not the positive index of the
    last axis: measured on Keras 3.15 / TF, ``BatchNormalization(axis=1)`` on a (n, 1) x
    with a mask raises ``IndexError: tuple index out of range``. ``_moments`` returns
    ``ops.squeeze(mean)``, rank 0 for a single feature, and the TF backend's
    ``batch_normalization`` (keras/src/backend/tensorflow/nn.py) reshapes it with
    ``shape[axis] = mean.shape[0]`` whenever ``axis != -1``. With ``axis=-1`` that reshape
    is skipped and the rank-0 moments broadcast. Recorded deviation (float64 only): the
    masked moments are divided by ``count + 1e-7`` (``bn_reference.subjects.deviations``).
    """
    if mask is None:
        return keras_batch_norm(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)
    x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
    counted = check_mask(mask, x.shape)
    if not train:
        return keras_batch_norm(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)
    k = _single_kept_axis("keras_masked_batch_norm", axes, x.ndim)
    xt = np.ascontiguousarray(np.moveaxis(x, k, -1))
    mt = np.moveaxis(counted, k, -1).reshape(-1, xt.shape[-1])  # one column per feature
    layer = keras_bn_layer(x.ndim, -1, xt.shape[-1], x.dtype.name)  # -1: see the docstring
    gamma, beta = per_feature(scale, x.shape, axes, x.dtype), per_feature(offset, x.shape, axes, x.dtype)
    _fresh(layer, x.dtype, gamma, beta, epsilon, moving=False)
    out = np.empty(xt.shape, dtype=x.dtype)
    patterns, which = np.unique(mt.T, axis=0, return_inverse=True)
    for i, pattern in enumerate(patterns):
        features = np.flatnonzero(np.ravel(which) == i)
        y = np.asarray(layer(xt, training=True, mask=np.ascontiguousarray(pattern.reshape(xt.shape[:-1]))))
        out[..., features] = y[..., features]
    return np.moveaxis(out, -1, k)


keras_masked_batch_norm.bn_axes = keras_bn_axes
keras_masked_batch_norm.bn_mask = True


# --------------------------------------------------------------------------------------
# keras.layers.LayerNormalization
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE)
def _keras_ln_layer(axes: tuple[int, ...], dtype: str):
    return _keras().layers.LayerNormalization(axis=list(axes), center=False, scale=False, dtype=dtype)


def _keras_moments(x, *, axes):
    """``keras.ops.moments`` (what LayerNormalization calls; float16/bfloat16 in float32
    inside, returned in x's dtype)."""
    mean, var = _keras().ops.moments(x, axes=list(axes), keepdims=True)
    return np.asarray(mean), np.asarray(var)


@supports(*ALL_DTYPES, moments=_keras_moments)
def keras_layer_norm(x, *, axes, scale, offset, epsilon, training):
    """``keras.layers.LayerNormalization(axis=axes, center=False, scale=False)`` (its ``axis``
    is the reduced axes; float16/bfloat16 computed in float32 inside), built with
    dtype=x.dtype, then * scale + offset in x.dtype. No training mode in Keras: the adapter
    returns x for ``training`` False/None."""
    x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    layer = _keras_ln_layer(axes, x.dtype.name)
    layer.epsilon = epsilon
    return _affine_after(np.asarray(layer(x)), scale, offset, x.dtype)


# --------------------------------------------------------------------------------------
# keras.layers.GroupNormalization
# --------------------------------------------------------------------------------------


def keras_gn_axes(ndim: int) -> list[tuple[int, ...]]:
    """``groups=1``: every axis but 0 (rank >= 2); ``groups=-1`` with channel axis k: every
    axis but 0 and k (rank >= 3, so that something is reduced)."""
    sets = []
    if ndim >= 2:
        sets.append(tuple(range(1, ndim)))
    if ndim >= 3:
        sets += [tuple(a for a in range(1, ndim) if a != k) for k in range(1, ndim)]
    return sets


@functools.lru_cache(maxsize=_CACHE)
def _keras_gn_layer(ndim: int, groups: int, axis: int, channels: int, dtype: str):
    keras = _keras()
    layer = keras.layers.GroupNormalization(groups=groups, axis=axis, center=False, scale=False, dtype=dtype)
    shape = [1] * ndim
    shape[axis] = channels
    layer.build(tuple(shape))
    return layer


def _group_norm_config(axes, ndim) -> tuple[int, int]:
    """(groups, channel axis) for a reduced-axis set from ``keras_gn_axes``."""
    kept = _kept(axes, ndim)
    if kept == (0,):
        return 1, ndim - 1
    if len(kept) == 2 and kept[0] == 0:
        return -1, kept[1]
    raise ValueError(
        f"keras_group_norm: GroupNormalization reduces over every axis but 0 (groups=1) or every "
        f"axis but 0 and the channel axis (groups=-1); axes={axes} of a rank-{ndim} x keeps {kept} "
        f"(see keras_group_norm.bn_axes)"
    )


@supports(*ALL_DTYPES)
def keras_group_norm(x, *, axes, scale, offset, epsilon, training):
    """``keras.layers.GroupNormalization(groups, axis=k, center=False, scale=False)``, built
    with dtype=x.dtype: ``groups=1`` for axes = every axis but 0, ``groups=-1`` (instance
    norm) with channel axis k for axes = every axis but 0 and k; then * scale + offset in
    x.dtype (Keras' per-channel gamma cannot vary along axis 0 as the contract's may).
    No training mode in Keras: the adapter returns x for ``training`` False/None."""
    x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
    groups, k = _group_norm_config(axes, x.ndim)
    if not train:
        return x.copy()
    layer = _keras_gn_layer(x.ndim, groups, k, x.shape[k], x.dtype.name)
    layer.epsilon = epsilon
    return _affine_after(np.asarray(layer(x)), scale, offset, x.dtype)


keras_group_norm.bn_axes = keras_gn_axes


# --------------------------------------------------------------------------------------
# keras.layers.RMSNormalization, keras.ops.rms_normalization (bn_reference.subjects._keras_rms)
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tf_rms_ops():
    return keras_rms_ops(_keras())


def _tf_rms_run(op, a, scale, epsilon):
    return _tf_rms_ops()[op](a, scale, epsilon)


keras_tf_rms_norm = rms_subject("keras_tf_rms_norm", "rms_norm", _tf_rms_run, backend="tensorflow", library="keras")
keras_tf_ops_rms_norm = rms_subject("keras_tf_ops_rms_norm", "ops_rms_norm", _tf_rms_run, backend="tensorflow", library="keras")


# --------------------------------------------------------------------------------------
# tf.compat.v1.nn.fused_batch_norm
# --------------------------------------------------------------------------------------


def _fused_input(x, axes, data_format):
    """x as the 4-D NHWC/NCHW tensor fused_batch_norm wants, and ``undo`` back to x's layout."""
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    nhwc, undo = _features_last(x, axes, _nhw)
    if data_format == "NHWC":
        return nhwc, undo
    return np.ascontiguousarray(np.moveaxis(nhwc, 3, 1)), lambda y: undo(np.moveaxis(np.asarray(y), 1, 3))


def _check_fused_dtype(x):
    if x.dtype.name not in FUSED_DTYPES:
        raise TypeError(f"fused_batch_norm accepts x of dtype {', '.join(FUSED_DTYPES)} only, got {x.dtype}")


def fused_batch_statistics(x, *, axes, scale=1.0, offset=0.0, epsilon=1e-3, data_format="NHWC"):
    """One training-mode ``tf.compat.v1.nn.fused_batch_norm`` call on x rearranged as the
    adapter does (CPU): ``(y, batch_mean, batch_variance)``, y in x's layout and dtype,
    the statistics float32 in keepdims shape, exactly as the wrapper returns them (the
    variance Bessel-corrected)."""
    tf = _tf()
    x, axes, epsilon, _ = check_call(x, axes, scale, offset, epsilon, True)
    _check_fused_dtype(x)
    x4, undo = _fused_input(x, axes, data_format)
    with tf.device("/CPU:0"):
        y, mean, var = tf.compat.v1.nn.fused_batch_norm(
            x4,
            per_feature(scale, x.shape, axes, np.float32),
            per_feature(offset, x.shape, axes, np.float32),
            epsilon=epsilon,
            data_format=data_format,
            is_training=True,
        )
    keep = _keepdims_shape(x.shape, axes)
    return undo(y.numpy()), mean.numpy().reshape(keep), var.numpy().reshape(keep)


def fused_reserve_space(x, *, axes, epsilon=1e-3, data_format="NHWC"):
    """``tf.raw_ops.FusedBatchNormV3`` (the op the wrapper calls) on the CPU, training mode:
    ``(batch_mean, batch_variance, reserve_space_1, reserve_space_2)`` in keepdims shape.
    On the CPU, reserve_space_1/2 are the mean and the BIASED variance the kernel
    normalized with (measured; the reserve spaces are the gradient's scratch, and other
    devices' kernels may store something else there, hence the CPU pin)."""
    tf = _tf()
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    _check_fused_dtype(x)
    x4, _ = _fused_input(x, axes, data_format)
    c = x4.shape[3 if data_format == "NHWC" else 1]
    with tf.device("/CPU:0"):
        out = tf.raw_ops.FusedBatchNormV3(
            x=x4,
            scale=np.ones(c, np.float32),
            offset=np.zeros(c, np.float32),
            mean=tf.constant([], tf.float32),
            variance=tf.constant([], tf.float32),
            epsilon=float(epsilon),
            is_training=True,
            data_format=data_format,
        )
    keep = _keepdims_shape(x.shape, axes)
    return tuple(out[i].numpy().reshape(keep) for i in (1, 2, 3, 4))


def fused_moments(x, *, axes, data_format="NHWC"):
    """The mean and biased variance the fused CPU kernel normalizes with (reserve spaces 1
    and 2, exact; float32): ``fused_batch_norm`` returns the Bessel-corrected variance, and
    undoing the factor would round once more."""
    _, _, mean, var = fused_reserve_space(x, axes=axes, data_format=data_format)
    return mean, var


def _fused_subject(x, axes, scale, offset, epsilon, training, data_format):
    x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
    _check_fused_dtype(x)
    if not train:  # fused inference needs moving statistics; the contract's inference is x
        return x.copy()
    y, _, _ = fused_batch_statistics(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, data_format=data_format)
    return y


@supports(*FUSED_DTYPES, moments=fused_moments)
def fused_batch_norm(x, *, axes, scale, offset, epsilon, training):
    """``tf.compat.v1.nn.fused_batch_norm(..., data_format="NHWC", is_training=True)`` on x
    rearranged to (N, H, W, C) (reduced axes into N, H, W, kept ones into C), CPU; scale and
    offset per feature in float32. ``training`` False/None returns x (the kernel's
    inference mode needs moving statistics, which the contract does not have)."""
    return _fused_subject(x, axes, scale, offset, epsilon, training, "NHWC")


@supports(*FUSED_DTYPES, moments=functools.partial(fused_moments, data_format="NCHW"))
def fused_batch_norm_nchw(x, *, axes, scale, offset, epsilon, training):
    """``fused_batch_norm`` with ``data_format="NCHW"``: x rearranged to (N, C, H, W)."""
    return _fused_subject(x, axes, scale, offset, epsilon, training, "NCHW")


# --------------------------------------------------------------------------------------
# Gradients (the contract's ``vjp``) and moving statistics (``bn_stateful``)
# --------------------------------------------------------------------------------------


def _feature_grad(g, shape, axes, like):
    """A per-feature gradient (flat over the kept axes, as ``per_feature`` laid it out) back
    in the form of the contract's parameter ``like``: summed over ``like``'s broadcast axes."""
    from bn_reference.mathematics.gradients import reduce_to
    from bn_reference.subjects.autodiff import as_given

    full = np.asarray(g, dtype=np.float64).reshape(_keepdims_shape(shape, axes))
    return as_given(reduce_to(full, np.shape(like)), like)


def _keras_bn_vjp(x, dy, *, axes, scale, offset, epsilon):
    """``tf.GradientTape`` through ``keras_batch_norm`` (training=True): x watched, gamma
    and beta the layer's own variables (set per feature from scale and offset), their
    gradients summed back to the shapes of scale and offset."""
    tf = _tf()
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    (k,) = _kept(axes, x.ndim)
    layer = keras_bn_layer(x.ndim, k, x.shape[k], x.dtype.name)
    _fresh(layer, x.dtype, per_feature(scale, x.shape, axes, x.dtype), per_feature(offset, x.shape, axes, x.dtype), epsilon, moving=False)
    t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = layer(t, training=True)
    dx, dg, db = tape.gradient(y, [t, layer.gamma, layer.beta], output_gradients=tf.constant(np.asarray(dy, dtype=x.dtype)))
    return dx.numpy(), _feature_grad(dg.numpy(), x.shape, axes, scale), _feature_grad(db.numpy(), x.shape, axes, offset)


class KerasMovingBN:
    """``bn_stateful`` of ``keras_batch_norm``: one ``keras.layers.BatchNormalization(axis=k,
    momentum, epsilon, dtype)`` (k the kept axis), gamma and beta set per feature from scale
    and offset when it is built (on the first call); Keras' momentum convention and biased
    moving variance. ``layer_class`` swaps in a subclass (the self-tests' broken layers)."""

    def __init__(self, *, axes, momentum, epsilon, scale, offset, dtype, layer_class=None):
        self.axes, self.scale, self.offset, self.dtype = tuple(axes), scale, offset, np.dtype(dtype)
        self.layer = None
        self.layer_class = layer_class
        self._config = dict(momentum=momentum, epsilon=epsilon, dtype=self.dtype.name)

    def __call__(self, x, training):
        x = check_x(x)
        if self.layer is None:
            (k,) = _kept(self.axes, x.ndim)
            self.layer = (self.layer_class or _keras().layers.BatchNormalization)(axis=k, **self._config)
            self.layer.build(x.shape)
            self.layer.gamma.assign(per_feature(self.scale, x.shape, self.axes, self.dtype))
            self.layer.beta.assign(per_feature(self.offset, x.shape, self.axes, self.dtype))
        return np.asarray(self.layer(x, training=training))

    @property
    def moving_mean(self):
        return np.asarray(self.layer.moving_mean)

    @property
    def moving_variance(self):
        return np.asarray(self.layer.moving_variance)


keras_batch_norm.vjp = _keras_bn_vjp
keras_batch_norm.bn_stateful = KerasMovingBN
keras_batch_norm.bn_momentum, keras_batch_norm.bn_running_variance = "keras", "biased"


def _keras_ln_forward(t, g, b, *, axes, epsilon):
    """``LayerNormalization(axis=axes, center=False, scale=False)``, then ``* scale + offset``."""
    layer = _keras_ln_layer(tuple(axes), t.dtype.name)
    layer.epsilon = epsilon
    return layer(t) * g + b


def _fused_vjp(data_format):
    def vjp(x, dy, *, axes, scale, offset, epsilon):
        """``tf.GradientTape`` through ``fused_batch_norm`` (TF's own FusedBatchNormGradV3
        kernel, CPU): x and dy rearranged alike (a permutation and reshape, whose gradient
        is the inverse rearrangement), scale and offset per feature in float32."""
        tf = _tf()
        x = check_x(x)
        axes = normalize_axes(axes, x.ndim)
        _check_fused_dtype(x)
        x4, undo = _fused_input(x, axes, data_format)
        dy4, _ = _fused_input(np.asarray(dy, dtype=x.dtype), axes, data_format)
        with tf.device("/CPU:0"):
            t = tf.constant(x4)
            g = tf.constant(per_feature(scale, x.shape, axes, np.float32))
            b = tf.constant(per_feature(offset, x.shape, axes, np.float32))
            with tf.GradientTape() as tape:
                tape.watch([t, g, b])
                y, _, _ = tf.compat.v1.nn.fused_batch_norm(t, g, b, epsilon=epsilon, data_format=data_format, is_training=True)
            dx, dg, db = tape.gradient(y, [t, g, b], output_gradients=tf.constant(dy4))
        return undo(dx.numpy()).astype(x.dtype), _feature_grad(dg.numpy(), x.shape, axes, scale), _feature_grad(db.numpy(), x.shape, axes, offset)

    return vjp


def _attach_gradients():
    from bn_reference.subjects.autodiff import tape_vjp

    keras_layer_norm.vjp = tape_vjp(_keras_ln_forward)
    fused_batch_norm.vjp = _fused_vjp("NHWC")
    fused_batch_norm_nchw.vjp = _fused_vjp("NCHW")


_attach_gradients()
