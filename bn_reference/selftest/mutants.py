"""Deliberately wrong subjects (mutants) and correct-but-different ones, to test the tests.

Every function here follows the subject contract (``bn_reference.subjects``)::

    f(x, *, axes, scale, offset, epsilon, training) -> ndarray (same shape and dtype as x)

and is loadable as ``--bn-impl bn_reference.selftest.mutants:NAME``. ``MUTANTS`` names the wrong
ones: the property suite must fail each of them at least once. ``CORRECT`` names
implementations that differ from the reference in algorithm or rounding only: the suite
must pass every one of them (a failure is a false alarm, i.e. an error model or a
property that is too strict). ``tests/test_kill_matrix.py`` checks both.

Most subjects share one NumPy skeleton, ``_numpy_bn``: validate, gate on ``training``,
compute the moments with a pluggable ``moments(x, axes) -> (mu, var)`` (keepdims), then a
pluggable ``normalize(x, mu, var, gamma, beta, eps)``, all in a chosen compute dtype, and
cast back to ``x.dtype``. A mutant is one wrong step plugged into that skeleton; the
others (TensorFlow, Keras) are spelled out because their bug lives in the API call.

Dtypes (``bn_dtypes``, via ``subjects.supports``): the correct variants declare every
dtype they handle, since a false alarm may hide in one dtype only. Mutants on the NumPy
skeleton declare float32 and float64 (the skeleton's arithmetic in either); mutants whose
bug is a dtype (float16 moments, float64 output, naive float32 variance) or a TF API call
keep the float32 default: their bug does not depend on the dtype, and each extra dtype
costs the meta-test a full pass of the suite for that subject. The half-precision mutants
(``tolerance`` item 6: forgotten upcast, variance clipped to float16, rsqrt in float16)
declare the dtype they target; float32, always checked, is for them a correct kernel.
"""
from __future__ import annotations

import functools

import numpy as np

from bn_reference.mathematics.reference import first_of_each_slice
from bn_reference.mathematics.validation import check_mask, check_x, normalize_axes
from bn_reference.subjects import check_call, supports

__all__ = ["MUTANTS", "CORRECT", "specs"]

ALL_DTYPES = ("float32", "float64", "float16", "bfloat16")
FULL = ("float32", "float64")  # the NumPy skeleton computing in x.dtype
# Mutants are checked in float32 only: each seeds one algorithmic bug, which float64 would
# show the same way, and running them in float64 too cost ~30% of the kill-matrix time.
MUTANT_DTYPES = ("float32",)


# --------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------


_validate = check_call  # the contract's argument checks, shared with the built-ins


def _param(v, dtype) -> np.ndarray:
    """scale/offset as an array of the compute dtype (a 0-d array for a Python float)."""
    return np.asarray(np.asarray(v, dtype=np.float64), dtype=dtype)


# moments(x, axes) -> (mu, var), keepdims, in x's dtype -----------------------------------


def _two_pass(x, axes):
    """mean, then the mean of squared deviations from it (biased): the reference algorithm."""
    mu = x.mean(axis=axes, keepdims=True)
    return mu, np.square(x - mu).mean(axis=axes, keepdims=True)


def _two_pass_ddof1(x, axes):
    n = int(np.prod([x.shape[a] for a in axes]))
    mu = x.mean(axis=axes, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return mu, np.square(x - mu).sum(axis=axes, keepdims=True) / x.dtype.type(n - 1)


def _complement(axes, ndim):
    return tuple(a for a in range(ndim) if a not in axes)


def _complement_moments(x, axes):
    return _two_pass(x, _complement(axes, x.ndim))


def _first_axis_moments(x, axes):
    return _two_pass(x, tuple(axes[:1]))


def _float16_moments(x, axes):
    with np.errstate(over="ignore", invalid="ignore"):  # beyond 65504: inf, and its squares (the bug)
        mu, var = _two_pass(x.astype(np.float16), axes)
    return mu.astype(x.dtype), var.astype(x.dtype)


def _naive_one_pass(x, axes):
    mu = x.mean(axis=axes, keepdims=True)
    return mu, np.square(x).mean(axis=axes, keepdims=True) - np.square(mu)


def _global_mean_moments(x, axes):
    mu = x.mean(keepdims=True)  # over every element, not per slice
    return mu, np.square(x - mu).mean(axis=axes, keepdims=True)


def _shifted_one_pass(x, axes):
    """One pass over d = x - K (K a sample of the slice): var = E[d^2] - E[d]^2, mu = K + E[d].
    Shifting by a sample keeps E[d]^2 within the spread, so there is no catastrophic
    cancellation (unlike the naive E[x^2] - E[x]^2)."""
    k = first_of_each_slice(x, axes)
    d = x - k
    m1 = d.mean(axis=axes, keepdims=True)
    m2 = np.square(d).mean(axis=axes, keepdims=True)
    return k + m1, np.maximum(m2 - np.square(m1), x.dtype.type(0))


def _rows(x, axes):
    """``x`` as (slices, N): one row per kept position, the reduced elements along it."""
    n = int(np.prod([x.shape[a] for a in axes]))
    rows = int(np.prod([d for a, d in enumerate(x.shape) if a not in axes]))  # not -1: N may be 0
    return np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim))).reshape(rows, n), n


def _welford(x, axes):
    """Welford's streaming update over the elements of each slice (all slices at once)."""
    flat, n = _rows(x, axes)
    mean = np.zeros(flat.shape[0], dtype=x.dtype)
    m2 = np.zeros(flat.shape[0], dtype=x.dtype)
    for i in range(n):
        v = flat[:, i]
        delta = v - mean
        mean = mean + delta / x.dtype.type(i + 1)
        m2 = m2 + delta * (v - mean)
    keep_shape = tuple(1 if a in axes else x.shape[a] for a in range(x.ndim))
    with np.errstate(invalid="ignore"):  # N = 0: 0/0, moments of nothing
        return mean.reshape(keep_shape), (m2 / x.dtype.type(n)).reshape(keep_shape)


def _welford_delta2(x, axes):
    """Welford's update in its ``delta^2`` form, as PyTorch's CPU ``layer_norm`` merges
    (``AddMoments`` in aten/src/ATen/native/cpu/moments_utils.h): ``delta = x_i - m``,
    ``m += delta / i``, ``M2 += delta^2 (i - 1) / i``. The first step squares x_1 itself
    (``m`` starts at 0) and multiplies it by 0: inside the domain (``tolerance`` item 5,
    ``4 max|x|^2 <= max/4``) that is 0; beyond it, NaN."""
    flat, n = _rows(x, axes)
    mean = np.zeros(flat.shape[0], dtype=x.dtype)
    m2 = np.zeros(flat.shape[0], dtype=x.dtype)
    for i in range(n):
        delta = flat[:, i] - mean
        mean = mean + delta / x.dtype.type(i + 1)
        m2 = m2 + delta * delta * x.dtype.type(i / (i + 1))
    keep_shape = tuple(1 if a in axes else x.shape[a] for a in range(x.ndim))
    with np.errstate(invalid="ignore"):  # N = 0: 0/0, moments of nothing
        return mean.reshape(keep_shape), (m2 / x.dtype.type(n)).reshape(keep_shape)


def _running_sums(x, axes):
    """Two-pass moments whose sums are sequential running sums in x's own dtype
    (``np.cumsum``: every partial sum rounded to x's dtype, as a naive kernel loop does)."""
    flat, n = _rows(x, axes)
    keep_shape = tuple(1 if a in axes else x.shape[a] for a in range(x.ndim))

    def total(a):
        return np.cumsum(a, axis=1, dtype=x.dtype)[:, -1] if n else np.zeros(a.shape[0], x.dtype)

    # N = 0: 0 / 0; a float16 running sum beyond 65504 is inf (a symptom of the forgotten upcast)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mu = total(flat) / x.dtype.type(n)
        var = total(np.square(flat - mu[:, None])) / x.dtype.type(n)
    return mu.reshape(keep_shape), var.reshape(keep_shape)


def _in_float64(moments):
    """Moments computed in float64 and returned in x's dtype (keepdims)."""

    def wrapped(x, axes):
        mu, var = moments(x.astype(np.float64), axes)
        return mu.astype(x.dtype), var.astype(x.dtype)

    return wrapped


# normalize(x, mu, var, gamma, beta, eps) in the compute dtype ----------------------------


def _standard(x, mu, var, gamma, beta, eps):
    """((x - mu) / sqrt(var + eps)) * gamma + beta."""
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


# The skeleton ----------------------------------------------------------------------------


def _compute(x, axes, scale, offset, epsilon, *, moments=_two_pass, normalize=_standard, dtype=None, out=None):
    """Normalize ``x`` (already validated) in ``dtype`` (default x.dtype); cast to ``out``
    (default x.dtype)."""
    ct = np.dtype(dtype) if dtype is not None else x.dtype
    xc = x.astype(ct)
    mu, var = moments(xc, axes)
    y = normalize(xc, mu, var, _param(scale, ct), _param(offset, ct), ct.type(epsilon))
    return np.asarray(y).astype(out if out is not None else x.dtype)


def _numpy_bn(x, axes, scale, offset, epsilon, training, **steps):
    """Validate, return a copy of x unless training, else ``_compute`` with ``steps``."""
    x, axes, epsilon, train = _validate(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    return _compute(x, axes, scale, offset, epsilon, **steps)


# Half precision: reductions in float32, the elementwise stage in x's dtype ----------------
#
# ``tolerance`` item 6: for float16/bfloat16 x, the moments (and var + eps, the rsqrt) in
# float32, the mean and inv rounded once to x's dtype, then the elementwise stage in x's
# dtype. For float32/float64 x every step runs in x's dtype. Each half-precision mutant
# replaces one step.

HALF = ("float16", "bfloat16")
FLOAT16_MAX = float(np.finfo(np.float16).max)


def _accumulation(dtype) -> np.dtype:
    return np.dtype(np.float32) if np.dtype(dtype).name in HALF else np.dtype(dtype)


def _reduce_in_float32(moments):
    """moments(x, axes) run on x upcast to the accumulation dtype (float32 for half x)."""

    def reduced(x, axes):
        return moments(x.astype(_accumulation(x.dtype)), axes)

    reduced.__doc__ = moments.__doc__
    return reduced


def _rsqrt(var, eps, dtype):
    """inv = 1 / sqrt(var + eps) in the accumulation dtype (float32 for half x)."""
    acc = _accumulation(dtype)
    v = np.asarray(var).astype(acc)
    return acc.type(1) / np.sqrt(v + acc.type(eps))


def _unfolded_stage(x, mu, inv, gamma, beta):
    """(x - mu) * inv * gamma + beta in x's dtype, mu and inv each rounded once to it."""
    dt = x.dtype
    return (x - np.asarray(mu).astype(dt)) * np.asarray(inv).astype(dt) * _param(gamma, dt) + _param(beta, dt)


def _folded_stage(x, mu, inv, gamma, beta):
    """Folded in x's dtype: g = inv * gamma (formed in inv's dtype, rounded once to x's),
    y = x * g + (beta - mu * g)."""
    dt = x.dtype
    g = (np.asarray(inv) * _param(gamma, np.asarray(inv).dtype)).astype(dt)
    return x * g + (_param(beta, dt) - np.asarray(mu).astype(dt) * g)


def _half_bn(x, axes, scale, offset, epsilon, training, *, moments=_reduce_in_float32(_two_pass), inverse=_rsqrt, stage=_unfolded_stage):
    """Validate, gate on ``training``, then ``moments`` -> ``inverse`` -> ``stage``."""
    x, axes, epsilon, train = _validate(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    mu, var = moments(x, axes)
    y = stage(x, mu, inverse(var, epsilon, x.dtype), scale, offset)
    return np.asarray(y).astype(x.dtype)


def _clipped_to_float16(moments):
    """Keras 3.15's jax ``moments`` (keras/src/backend/jax/nn.py, ``moments()``): float32
    statistics, then ``jnp.clip(variance, finfo(float16).min, finfo(float16).max)`` (and the
    mean) before the cast back to x's dtype, for float16 AND bfloat16 inputs."""

    def clipped(x, axes):
        mu, var = moments(x, axes)
        if x.dtype.name not in HALF:
            return mu, var
        return (np.clip(mu, -FLOAT16_MAX, FLOAT16_MAX).astype(x.dtype), np.clip(var, -FLOAT16_MAX, FLOAT16_MAX).astype(x.dtype))

    return clipped


def _rsqrt_in_input_dtype(var, eps, dtype):
    """inv = rsqrt(var + eps) with the float32 variance cast to x's dtype first: in float16
    a variance above 65504 (std > 256) becomes inf and inv becomes 0."""
    dt = np.dtype(dtype)
    # the variance (or eps) beyond x's dtype: inf, and inv = 0; a variance that underflows to 0
    # with eps = 0 (the idempotence law): inv = inf, as the float16 kernel gives it
    with np.errstate(over="ignore", divide="ignore"):
        v = np.asarray(var).astype(dt)
        return dt.type(1) / np.sqrt(v + dt.type(eps))


def _moments_attr(moments):
    """A subject's ``moments(x, *, axes)`` attribute from a skeleton moments step."""

    def attr(x, *, axes):
        return moments(x, tuple(sorted(axes)))

    attr.__doc__ = moments.__doc__
    return attr


def _tf():
    from bn_reference.subjects._tf import tf

    return tf


def _tf_bn(x, axes, scale, offset, epsilon, training, *, keepdims=True):
    """``tf.nn.moments`` + ``tf.nn.batch_normalization`` (what the built-in ``tf_nn`` does),
    with the knobs the TF mutants turn: ``keepdims``, and the order of scale and offset."""
    tf = _tf()
    x, axes, epsilon, train = _validate(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    t = tf.constant(x)
    mean, var = tf.nn.moments(t, list(axes), keepdims=keepdims)
    return tf.nn.batch_normalization(t, mean, var, _tf_param(offset, x.dtype), _tf_param(scale, x.dtype), epsilon).numpy()


def _tf_param(v, dtype):
    return _tf().constant(np.asarray(v, dtype=np.float64).astype(dtype))


# --------------------------------------------------------------------------------------
# Mutants: each has exactly one bug, named in its docstring
# --------------------------------------------------------------------------------------


@supports(*MUTANT_DTYPES)
def epsilon_outside_sqrt(x, *, axes, scale, offset, epsilon, training):
    """BUG: epsilon added outside the square root: (x - mu) / (sqrt(var) + eps)."""
    return _numpy_bn(
        x, axes, scale, offset, epsilon, training,
        normalize=lambda x, mu, var, g, b, eps: (x - mu) / (np.sqrt(var) + eps) * g + b,
    )


@supports(*MUTANT_DTYPES, moments=_moments_attr(_two_pass_ddof1))
def bessel_variance(x, *, axes, scale, offset, epsilon, training):
    """BUG: Bessel-corrected (unbiased, ddof=1) variance instead of the biased one
    (and NaN/inf for N = 1)."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_two_pass_ddof1)


@supports(*MUTANT_DTYPES, moments=_moments_attr(_complement_moments))
def complement_axes(x, *, axes, scale, offset, epsilon, training):
    """BUG: moments over the complement of ``axes`` (axes read as the kept/feature axes,
    as in Keras' BatchNormalization(axis=...))."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_complement_moments)


@supports(*MUTANT_DTYPES, moments=_moments_attr(_first_axis_moments))
def first_axis_only(x, *, axes, scale, offset, epsilon, training):
    """BUG: moments over ``axes[:1]`` only (the other reduced axes are ignored)."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_first_axis_moments)


@supports(*MUTANT_DTYPES)
def offset_before_scale(x, *, axes, scale, offset, epsilon, training):
    """BUG: offset applied before the scale: (x_hat + beta) * gamma."""
    return _numpy_bn(
        x, axes, scale, offset, epsilon, training,
        normalize=lambda x, mu, var, g, b, eps: ((x - mu) / np.sqrt(var + eps) + b) * g,
    )


@supports(*MUTANT_DTYPES)
def training_ignored(x, *, axes, scale, offset, epsilon, training):
    """BUG: ignores ``training``: always normalizes (inference must return x)."""
    return _numpy_bn(x, axes, scale, offset, epsilon, True)


@functools.cache
def _seed_cond_layer():
    """The seed's layer with its original ``call``: ``tf.cond(training, ...)`` as written."""
    from bn_reference.subjects.seed_notebook import SeedBatchNorm

    tf = _tf()

    class SeedCondBatchNorm(SeedBatchNorm):
        def call(self, inputs, training=None):
            return tf.cond(training, lambda: self.batch_norm_fn(inputs), lambda: inputs)

    return SeedCondBatchNorm


@supports("float32")
def seed_tf_cond(x, *, axes, scale, offset, epsilon, training):
    """BUG: the seed notebook's ``tf.cond(training, bn, identity)`` on a Python value:
    right for True/False, but ``training=None`` (what Keras passes when nobody sets it)
    cannot become a tensor and raises on current TF."""
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    layer = _seed_cond_layer()(scale=scale, offset=offset, axes=axes, epsilon=epsilon, dtype=x.dtype.name)
    return np.asarray(layer(x, training=training))


@supports("float32", moments=_moments_attr(_float16_moments))
def float16_moments(x, *, axes, scale, offset, epsilon, training):
    """BUG: mean and variance computed in float16 (x rounded to 11 bits first), the rest
    in float32."""
    with np.errstate(divide="ignore", invalid="ignore"):  # its inf or underflowed (0) variance
        return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_float16_moments)


@supports("float32", moments=_moments_attr(_naive_one_pass))
def naive_one_pass_variance(x, *, axes, scale, offset, epsilon, training):
    """BUG: naive one-pass variance E[x^2] - E[x]^2 in float32: catastrophic cancellation
    when |mu| >> sigma (and a negative variance, hence NaN, on constant slices)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # a variance <= 0: NaN or inf (the bug)
        return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_naive_one_pass)


@supports("float32")
def squeezed_moments(x, *, axes, scale, offset, epsilon, training):
    """BUG: ``tf.nn.moments`` with its default ``keepdims=False``: the squeezed moments
    broadcast against x from the right, which is only right when the reduced axes are the
    leading ones (otherwise a shape error, or silently the wrong slices on equal sides)."""
    return _tf_bn(x, axes, scale, offset, epsilon, training, keepdims=False)


@supports(*MUTANT_DTYPES)
def variance_without_sqrt(x, *, axes, scale, offset, epsilon, training):
    """BUG: divides by the variance instead of the standard deviation: (x - mu) / (var + eps)."""
    return _numpy_bn(
        x, axes, scale, offset, epsilon, training,
        normalize=lambda x, mu, var, g, b, eps: (x - mu) / (var + eps) * g + b,
    )


@supports(*MUTANT_DTYPES)
def modifies_input(x, *, axes, scale, offset, epsilon, training):
    """BUG: normalizes x in place (right values, but the caller's x is overwritten)."""
    x, axes, epsilon, train = _validate(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    mu, var = _two_pass(x, axes)
    x -= mu
    x /= np.sqrt(var + x.dtype.type(epsilon))
    x *= _param(scale, x.dtype)
    x += _param(offset, x.dtype)
    return x


@supports("float32")
def float64_output(x, *, axes, scale, offset, epsilon, training):
    """BUG: computes in float64 and returns float64 for a float32 input (values are right,
    the dtype is not)."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, dtype=np.float64, out=np.float64)


def _normalize_without_epsilon(x, mu, var, g, b, eps):
    with np.errstate(invalid="ignore", divide="ignore"):  # constant slices: 0 / 0 (the bug)
        return (x - mu) / np.sqrt(var) * g + b


@supports(*MUTANT_DTYPES)
def epsilon_ignored(x, *, axes, scale, offset, epsilon, training):
    """BUG: epsilon dropped: (x - mu) / sqrt(var) (NaN on constant slices)."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, normalize=_normalize_without_epsilon)


@supports(*MUTANT_DTYPES)
def inverse_scale(x, *, axes, scale, offset, epsilon, training):
    """BUG: divides by the scale: x_hat / gamma + beta."""
    return _numpy_bn(
        x, axes, scale, offset, epsilon, training,
        normalize=lambda x, mu, var, g, b, eps: (x - mu) / np.sqrt(var + eps) / g + b,
    )


@supports("float32")
def scale_offset_swapped(x, *, axes, scale, offset, epsilon, training):
    """BUG: ``tf.nn.batch_normalization(x, mean, var, scale, offset, eps)``: its signature is
    ``(x, mean, variance, offset, scale, variance_epsilon)``, so gamma and beta trade places."""
    return _tf_bn(x, axes, offset, scale, epsilon, training)  # the swap, as the bug writes it


@supports(*MUTANT_DTYPES)
def mean_not_subtracted(x, *, axes, scale, offset, epsilon, training):
    """BUG: forgets to centre: x / sqrt(var + eps) * gamma + beta."""
    return _numpy_bn(
        x, axes, scale, offset, epsilon, training,
        normalize=lambda x, mu, var, g, b, eps: x / np.sqrt(var + eps) * g + b,
    )


@supports(*MUTANT_DTYPES, moments=_moments_attr(_global_mean_moments))
def global_mean(x, *, axes, scale, offset, epsilon, training):
    """BUG: the mean is taken over all elements (one global mean), the variance about it
    over the reduced axes: right only when every slice has the same mean."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_global_mean_moments)


@supports(*MUTANT_DTYPES)
def inverted_training(x, *, axes, scale, offset, epsilon, training):
    """BUG: inverted flag: returns x when ``training`` is True, normalizes otherwise."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training is not True)


@supports(*MUTANT_DTYPES)
def none_means_training(x, *, axes, scale, offset, epsilon, training):
    """BUG: ``training=None`` treated as True (``if training is not False``): Keras passes
    None in inference, so the layer normalizes with batch statistics at predict time."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training is not False)


@supports(*MUTANT_DTYPES)
def variance_floor(x, *, axes, scale, offset, epsilon, training):
    """BUG: clamps instead of adding: (x - mu) / sqrt(max(var, eps)) (right only when
    var >> eps or var = 0)."""
    return _numpy_bn(
        x, axes, scale, offset, epsilon, training,
        normalize=lambda x, mu, var, g, b, eps: (x - mu) / np.sqrt(np.maximum(var, eps)) * g + b,
    )


# Mutants written for the edge-input properties (properties/test_edge_inputs.py) ----------


def _nan_ignoring_moments(x, axes):
    """np.nanmean / mean of squared deviations ignoring NaN: a NaN element is skipped."""
    mu = np.nanmean(x, axis=axes, keepdims=True)
    return mu, np.nanmean(np.square(x - mu), axis=axes, keepdims=True)


@supports(*MUTANT_DTYPES, moments=_moments_attr(_nan_ignoring_moments))
def nan_ignoring(x, *, axes, scale, offset, epsilon, training):
    """BUG: moments with np.nanmean (NaN "handled" by skipping it): the rest of a NaN's slice
    comes out finite, normalized with moments the data did not have."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_nan_ignoring_moments)


def _rescaled_by_global_max(x, axes, scale, offset, epsilon, training):
    x, axes, epsilon, training = _validate(x, axes, scale, offset, epsilon, training)
    if not training:
        return x.copy()
    # "overflow guard": divide by the power of two at the top of max|x| (exact), with
    # eps / s^2 for eps, which leaves the mathematics unchanged -- but one global max
    top = np.max(np.abs(x.astype(np.float64)))  # NaN or inf anywhere: so is s; empty: ValueError
    s = float(np.ldexp(1.0, int(np.frexp(top)[1]))) if np.isfinite(top) else float(top)
    xs = (x.astype(np.float64) / s).astype(x.dtype)
    mu, var = _two_pass(xs, axes)
    with np.errstate(over="ignore"):  # a tiny s: eps / s^2 is inf in x's dtype (the bug)
        eps = x.dtype.type(epsilon / s**2)
    y = _standard(xs, mu, var, _param(scale, x.dtype), _param(offset, x.dtype), eps)
    return np.asarray(y, dtype=x.dtype)


@supports(*MUTANT_DTYPES)
def rescaled_by_global_max(x, *, axes, scale, offset, epsilon, training):
    """BUG: an overflow guard with one global scale s = 2^ceil(log2 max|x|) (x / s, eps / s^2):
    a NaN or inf anywhere makes s NaN and poisons every slice; an empty x has no max."""
    return _rescaled_by_global_max(x, axes, scale, offset, epsilon, training)


def _unbiased_then_rescaled(x, axes):
    """var = (sum d^2 / (N - 1)) * ((N - 1) / N): the biased variance via the unbiased one."""
    mu = x.mean(axis=axes, keepdims=True)
    n = int(np.prod([x.shape[a] for a in axes]))
    with np.errstate(invalid="ignore", divide="ignore"):  # N = 1: 0 / 0
        unbiased = np.square(x - mu).sum(axis=axes, keepdims=True) / x.dtype.type(n - 1)
        return mu, unbiased * x.dtype.type((n - 1) / n)


@supports(*MUTANT_DTYPES, moments=_moments_attr(_unbiased_then_rescaled))
def unbiased_then_rescaled(x, *, axes, scale, offset, epsilon, training):
    """BUG: the biased variance computed as (N-1)/N times the unbiased one: right for N >= 2,
    0/0 = NaN for a single-element slice (N = 1)."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_unbiased_then_rescaled)


# Half-precision mutants (``tolerance`` item 6): each is caught in the dtype it targets; in
# float32 (always checked) they are correct float32 kernels ----------------------------


def _forgotten_upcast(x, *, axes, scale, offset, epsilon, training):
    with np.errstate(invalid="ignore"):  # overflowed running sums: inf moments, NaN outputs
        return _half_bn(x, axes, scale, offset, epsilon, training, moments=_running_sums)


@supports("float16", moments=_moments_attr(_running_sums))
def forgotten_upcast_float16(x, *, axes, scale, offset, epsilon, training):
    """BUG (float16): the float32 upcast forgotten: mean and variance summed in float16 with
    running sums (adding 1.0 to 2048 leaves 2048), the rest as ``float32_two_pass``."""
    return _forgotten_upcast(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)


@supports("bfloat16", moments=_moments_attr(_running_sums))
def forgotten_upcast_bfloat16(x, *, axes, scale, offset, epsilon, training):
    """BUG (bfloat16): the float32 upcast forgotten: mean and variance summed in bfloat16
    with running sums (a running sum of ones stops growing at 256)."""
    return _forgotten_upcast(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)


_CLIPPED = _clipped_to_float16(_reduce_in_float32(_two_pass))


@supports(*HALF, moments=_moments_attr(_CLIPPED))
def variance_clipped_to_float16(x, *, axes, scale, offset, epsilon, training):
    """BUG (float16, bfloat16): float32 moments, but mean and variance clipped to float16's
    largest value (65504) before the cast back to x's dtype, as Keras 3.15's jax backend
    ``moments`` does (keras/src/backend/jax/nn.py): a slice with std > 256 comes out
    under-normalized."""
    return _half_bn(x, axes, scale, offset, epsilon, training, moments=_CLIPPED)


@supports("float16")
def rsqrt_in_float16(x, *, axes, scale, offset, epsilon, training):
    """BUG (float16): float32 moments, but the inverse square root computed in x's dtype
    from the variance cast to it (as ``tf.nn.batch_normalization`` does with the float16
    moments of ``tf.nn.moments``): var > 65504 overflows, inv = 0, y = beta."""
    return _half_bn(x, axes, scale, offset, epsilon, training, inverse=_rsqrt_in_input_dtype)


# Memory and block structure: the bugs of kernels that walk a buffer ---------------------


def _memory_order_values(x: np.ndarray) -> np.ndarray:
    """x's buffer read the way a C kernel handed ``x``'s lowest address would read it:
    ``x.size`` consecutive elements, in memory order, as if x were C-contiguous. Right for a
    C-contiguous x; wrong values in wrong places for a Fortran-ordered, permuted, sliced or
    reversed one (stays inside x's memory: a step-2 slice's base is larger than x)."""
    flip = tuple(slice(None, None, -1) if s < 0 else slice(None) for s in x.strides)
    lowest = x[flip]  # every stride positive, same memory, starting at its lowest address
    flat = np.lib.stride_tricks.as_strided(lowest, shape=(x.size,), strides=(x.itemsize,), writeable=False)
    return np.array(flat).reshape(x.shape)


@supports(*MUTANT_DTYPES)
def ignores_strides(x, *, axes, scale, offset, epsilon, training):
    """BUG: reads its input buffer in memory order and ignores the strides (a kernel that
    takes ``data_ptr()`` without ``.contiguous()``): right on C-contiguous x, wrong on
    Fortran-ordered, transposed, sliced and reversed views."""
    x, axes, epsilon, train = _validate(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    return _compute(_memory_order_values(x) if x.size else x, axes, scale, offset, epsilon)


BLOCK = 256  # the block size of ``dropped_tail_block``


def _first_full_blocks_moments(x, axes):
    """Two-pass moments of each slice's first floor(N/256)*256 elements (the slice in C
    order): the tail block is dropped whenever there is a full block before it."""
    keep = tuple(a for a in range(x.ndim) if a not in axes)
    moved = np.transpose(x, keep + tuple(axes))
    rows = moved.reshape(moved.shape[: len(keep)] + (int(np.prod([x.shape[a] for a in axes])),))
    n = rows.shape[-1]
    used = rows[..., : (n // BLOCK) * BLOCK] if n > BLOCK else rows
    mu = used.mean(axis=-1, keepdims=True)
    var = np.square(used - mu).mean(axis=-1, keepdims=True)
    shape = [1 if a in axes else d for a, d in enumerate(x.shape)]
    return mu.reshape(shape), var.reshape(shape)


@supports(*MUTANT_DTYPES)
def dropped_tail_block(x, *, axes, scale, offset, epsilon, training):
    """BUG: a blocked reduction that drops the last, partial block: the moments come from
    the first floor(N/256)*256 elements of each slice when N > 256 (a grid of N // 256
    blocks); N <= 256 (one block) and multiples of 256 are right."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_first_full_blocks_moments)


def _count_in_uint16_moments(x, axes):
    """Two-pass moments divided by a count kept in 16 bits: N mod 65536."""
    n = int(np.prod([x.shape[a] for a in axes])) % 65536
    with np.errstate(invalid="ignore", divide="ignore"):  # N = 65536: 0 / 0 (the bug)
        mu = x.sum(axis=axes, keepdims=True) / x.dtype.type(n)
        var = np.square(x - mu).sum(axis=axes, keepdims=True) / x.dtype.type(n)
    return mu, var


@supports(*MUTANT_DTYPES)
def count_in_uint16(x, *, axes, scale, offset, epsilon, training):
    """BUG: the element count is kept in 16 bits (a uint16 lane counter): right for
    N <= 65535, then N wraps to N mod 65536 and the moments are sums, not means."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_count_in_uint16_moments)


# The stricter elementwise contract (``tolerance`` item 7, ``bn_elementwise = "float32"``):
# both are correct kernels under the default contract (``tests/test_half_precision.py``
# checks that), and wrong for a subject that declares the float32 elementwise stage.


def _toward_zero(t: np.ndarray, dtype) -> np.ndarray:
    """``t`` (float32) converted to ``dtype`` (float16/bfloat16) rounding toward zero: the
    nearest value, moved one step toward zero where it lies beyond ``t`` in magnitude (the
    bit pattern of a sign-magnitude float, less one, is the next value toward zero)."""
    with np.errstate(invalid="ignore", over="ignore"):  # beyond x's range: inf, then max toward zero
        y = np.asarray(t).astype(dtype)
        beyond = (np.abs(y.astype(np.float64)) > np.abs(t.astype(np.float64))) & np.isfinite(t)
    bits = y.view(np.uint16).copy()
    bits[beyond] -= 1
    return bits.view(y.dtype)


@supports(*HALF)
def truncating_final_conversion(x, *, axes, scale, offset, epsilon, training):
    """BUG (under bn_elementwise = "float32"): everything in float32, then converted to x's
    dtype rounding toward zero (a truncating cast: up to one ulp off, where rounding to
    nearest is half)."""
    x, axes, epsilon, train = _validate(x, axes, scale, offset, epsilon, training)
    if not train:
        return x.copy()
    t = _compute(x, axes, scale, offset, epsilon, dtype=np.float32, out=np.float32)
    return _toward_zero(t, x.dtype) if x.dtype.name in HALF else t.astype(x.dtype)


@supports(*HALF)
def elementwise_in_half(x, *, axes, scale, offset, epsilon, training):
    """BUG (under bn_elementwise = "float32"): float32 moments and inverse, but the
    elementwise stage in x's dtype (four roundings in half precision): the default contract's
    kernel, declared stricter than it is."""
    return _half_bn(x, axes, scale, offset, epsilon, training)


truncating_final_conversion.bn_elementwise = elementwise_in_half.bn_elementwise = "float32"


# --------------------------------------------------------------------------------------
# Correct variants: different algorithm or rounding, same mathematics
# --------------------------------------------------------------------------------------


@supports(*ALL_DTYPES, moments=_moments_attr(_in_float64(_two_pass)))
def float64_compute(x, *, axes, scale, offset, epsilon, training):
    """Correct: everything in float64 (two-pass moments, plain formula), one rounding to
    x.dtype at the end: held to the stricter contract it meets, ``bn_elementwise = "float32"``
    (``tolerance`` item 7: computed in float32 or better, rounded once)."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, dtype=np.float64)


float64_compute.bn_elementwise = "float32"


@supports(*ALL_DTYPES, moments=_moments_attr(_reduce_in_float32(_two_pass)))
def folded_rsqrt(x, *, axes, scale, offset, epsilon, training):
    """Correct: TF's folded multiply-add in x.dtype: inv = rsqrt(var + eps) * gamma,
    y = x * inv + (beta - mu * inv) (rounds x*inv and mu*inv before they cancel). For
    float16/bfloat16 x: two-pass moments, var + eps and the rsqrt in float32, inv * gamma
    and mu rounded to x's dtype, the multiply-add in x's dtype."""
    return _half_bn(x, axes, scale, offset, epsilon, training, stage=_folded_stage)


@supports(*ALL_DTYPES, moments=_moments_attr(_reduce_in_float32(_two_pass)))
def float32_two_pass(x, *, axes, scale, offset, epsilon, training):
    """Correct: two-pass moments, var + eps and the rsqrt in float32 (x's dtype for
    float32/float64 x); mean and inv rounded to x's dtype; (x - mu) * inv * gamma + beta
    in x's dtype."""
    return _half_bn(x, axes, scale, offset, epsilon, training)


@supports(*ALL_DTYPES, moments=_moments_attr(_reduce_in_float32(_welford_delta2)))
def float32_welford(x, *, axes, scale, offset, epsilon, training):
    """Correct: Welford's update with its raw delta^2 (PyTorch's form) in float32 (x's dtype
    for float32/float64 x), then the elementwise stage of ``float32_two_pass``."""
    return _half_bn(x, axes, scale, offset, epsilon, training, moments=_reduce_in_float32(_welford_delta2))


@supports(*FULL, moments=_moments_attr(_shifted_one_pass))
def shifted_one_pass(x, *, axes, scale, offset, epsilon, training):
    """Correct: one-pass moments shifted by K = the first element of each slice,
    var = E[(x-K)^2] - E[x-K]^2, in x.dtype."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_shifted_one_pass)


@supports(*FULL, moments=_moments_attr(_welford))
def welford(x, *, axes, scale, offset, epsilon, training):
    """Correct: Welford's streaming mean/variance (element by element along the slice),
    in x.dtype."""
    return _numpy_bn(x, axes, scale, offset, epsilon, training, moments=_welford)


# RMSNorm (``bn_norm = "rms"``, ``tolerance`` item 8): the half-precision skeleton with the
# mean of squares for the moments (its "mean" is the exact centre 0) ------------------------


def _mean_square(x, axes):
    """(0, mean_A(x^2)) in x's dtype: RMSNorm's centre and spread (the squares formed in x's dtype)."""
    return np.zeros((1,) * x.ndim, dtype=x.dtype), np.mean(x * x, axis=axes, keepdims=True)


_RMS_FLOAT32 = _reduce_in_float32(_mean_square)


def _rms(fn):
    """Declare ``fn`` an RMSNorm subject (``bn_norm = "rms"``)."""
    fn.bn_norm = "rms"
    return fn


@_rms
@supports(*ALL_DTYPES)
def rms_float32(x, *, axes, scale, offset, epsilon, training):
    """Correct RMSNorm: the mean of squares accumulated in float32 for half x (x's dtype
    otherwise), inv rounded once to x's dtype, x * inv * gamma + beta in x's dtype."""
    return _half_bn(x, axes, scale, offset, epsilon, training, moments=_RMS_FLOAT32)


def _one_plus_stage(x, mu, inv, gamma, beta):
    """The unfolded stage with gamma = 1 + scale formed in x's dtype (Gemma's RMSNorm)."""
    return _unfolded_stage(x, mu, inv, x.dtype.type(1) + _param(gamma, x.dtype), beta)


@supports("float32", "float16")
def rms_one_plus(x, *, axes, scale, offset, epsilon, training):
    """Correct Gemma-style RMSNorm, declared: ``bn_scale = "one_plus"`` (gamma = 1 + scale)."""
    return _half_bn(x, axes, scale, offset, epsilon, training, moments=_RMS_FLOAT32, stage=_one_plus_stage)


rms_one_plus.bn_norm = "rms"
rms_one_plus.bn_scale = "one_plus"


@_rms
@supports(*MUTANT_DTYPES)
def rms_centred(x, *, axes, scale, offset, epsilon, training):
    """BUG: an RMSNorm that centres: (x - mu) / sqrt(var + eps), i.e. a LayerNorm declared as RMSNorm."""
    return _half_bn(x, axes, scale, offset, epsilon, training, moments=_reduce_in_float32(_two_pass))


def _rsqrt_eps_outside(var, eps, dtype):
    acc = _accumulation(dtype)
    return acc.type(1) / (np.sqrt(np.asarray(var).astype(acc)) + acc.type(eps))


@_rms
@supports(*MUTANT_DTYPES)
def rms_epsilon_outside_sqrt(x, *, axes, scale, offset, epsilon, training):
    """BUG: RMSNorm with epsilon outside the square root: x / (sqrt(ms) + eps)."""
    return _half_bn(x, axes, scale, offset, epsilon, training, moments=_RMS_FLOAT32, inverse=_rsqrt_eps_outside)


@_rms
@supports("float16", "bfloat16")
def rms_squares_in_half(x, *, axes, scale, offset, epsilon, training):
    """BUG: the mean of squares in x's dtype: in float16 x^2 overflows past |x| = 256 and
    the output collapses to beta (the shipped "RMSNorm returns zeros in float16"); in
    bfloat16 the sum of squares loses its low bits past N ~ 256. (float32: correct.)"""
    return _half_bn(x, axes, scale, offset, epsilon, training, moments=_mean_square)


@_rms
@supports(*MUTANT_DTYPES)
def rms_one_plus_undeclared(x, *, axes, scale, offset, epsilon, training):
    """BUG: gamma = 1 + scale applied (Gemma's convention) without declaring ``bn_scale = "one_plus"``."""
    return _half_bn(x, axes, scale, offset, epsilon, training, moments=_RMS_FLOAT32, stage=_one_plus_stage)


# Mixed precision (``bn_output_dtype``, ``tolerance`` item 9): float32 x, float16 y ---------


@supports("float32")
def mixed_float16_output(x, *, axes, scale, offset, epsilon, training):
    """Correct mixed precision: float32 moments and elementwise stage, y rounded once to
    float16 (``bn_output_dtype = "float16"``); inference returns x as float16."""
    x, axes, epsilon, train = _validate(x, axes, scale, offset, epsilon, training)
    if not train:
        with np.errstate(over="ignore"):  # the identity in float16: inf past 65504
            return x.astype(np.float16)
    return _compute(x, axes, scale, offset, epsilon, out=np.float16)


mixed_float16_output.bn_output_dtype = "float16"


@supports("float32")
def mixed_cast_first(x, *, axes, scale, offset, epsilon, training):
    """BUG: mixed precision that casts the float32 input to its float16 output dtype before
    taking the moments (float32 moments of the float16 copy): a float32 x beyond 65504 becomes
    inf, and y NaN where the mathematics gives values of order 1."""
    x, axes, epsilon, train = _validate(x, axes, scale, offset, epsilon, training)
    with np.errstate(over="ignore", invalid="ignore"):
        if not train:
            return x.astype(np.float16)
        return _half_bn(x.astype(np.float16), axes, scale, offset, epsilon, True)


mixed_cast_first.bn_output_dtype = "float16"


# keras_layer_norm (correct: LayerNormalization over the reduced axes, scale and offset
# applied after) is the built-in layer adapter, listed here so the kill matrix checks it.
from bn_reference.subjects.keras_layers import keras_layer_norm  # noqa: E402


MUTANTS = [
    "epsilon_outside_sqrt",
    "bessel_variance",
    "complement_axes",
    "first_axis_only",
    "offset_before_scale",
    "training_ignored",
    "seed_tf_cond",
    "float16_moments",
    "naive_one_pass_variance",
    "squeezed_moments",
    "variance_without_sqrt",
    "modifies_input",
    "float64_output",
    "epsilon_ignored",
    "inverse_scale",
    "scale_offset_swapped",
    "mean_not_subtracted",
    "global_mean",
    "inverted_training",
    "none_means_training",
    "variance_floor",
    "nan_ignoring",
    "rescaled_by_global_max",
    "unbiased_then_rescaled",
    "forgotten_upcast_float16",
    "forgotten_upcast_bfloat16",
    "variance_clipped_to_float16",
    "rsqrt_in_float16",
    "ignores_strides",
    "dropped_tail_block",
    "count_in_uint16",
    "truncating_final_conversion",
    "elementwise_in_half",
    "rms_centred",
    "rms_epsilon_outside_sqrt",
    "rms_squares_in_half",
    "rms_one_plus_undeclared",
    "mixed_cast_first",
]

CORRECT = [
    "float64_compute",
    "folded_rsqrt",
    "float32_two_pass",
    "float32_welford",
    "shifted_one_pass",
    "welford",
    "keras_layer_norm",
    "rms_float32",
    "rms_one_plus",
    "mixed_float16_output",
]


def specs(names) -> list[str]:
    """``--bn-impl`` specs for names in this module."""
    return [f"{__name__}:{n}" for n in names]


# --------------------------------------------------------------------------------------
# Masked moments (``bn_mask = True``, ``bn_reference/mathematics/masked.py``): a correct
# kernel and one wrong step each. Absent a mask (the plain properties' call) every one of
# them is the correct ``float32_two_pass``: the bugs live in the mask's handling only.
# --------------------------------------------------------------------------------------


def _selected(w, a):
    """The uncounted terms replaced by exact zeros: ``where(w, a, 0)`` (Keras' ``_moments``)."""
    return np.where(w, a, a.dtype.type(0))


def _weighted(w, a):
    """The uncounted terms multiplied by a 0 weight: ``a * w`` (a non-finite ``a`` stays NaN)."""
    return a * w.astype(a.dtype)


def _masked_sums(x, axes, mask, divisor, select=_selected):
    """Two-pass moments of the counted elements: the uncounted terms zeroed by ``select``,
    each sum divided by ``divisor(weights broadcast to x)``."""
    w = np.broadcast_to(mask, x.shape)
    d = divisor(w).astype(x.dtype)
    # only the NaN mutant divides by 0; inf or NaN at an uncounted position: inf - mu, inf * 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mu = select(w, x).sum(axis=axes, keepdims=True) / d
        var = select(w, np.square(x - mu)).sum(axis=axes, keepdims=True) / d
    return mu, var


def _count_at_least_one(axes, mask):
    return lambda w: np.maximum(w.sum(axis=axes, keepdims=True), 1)


def _masked_bn(x, axes, scale, offset, epsilon, training, mask, divisor, select=_selected):
    """``_half_bn`` (float32 reductions for half x) with the masked moments of
    ``_masked_sums``; no mask: the plain two-pass kernel."""
    if mask is None:
        return _half_bn(x, axes, scale, offset, epsilon, training)
    x, axes, _, _ = _validate(x, axes, scale, offset, epsilon, training)
    counted = check_mask(mask, x.shape)  # broadcast to x; ``divisor`` also sees the mask as given
    moments = _reduce_in_float32(functools.partial(_masked_sums, mask=counted, divisor=divisor(axes, mask), select=select))
    return _half_bn(x, axes, scale, offset, epsilon, training, moments=moments)


@supports(*ALL_DTYPES)
def masked_two_pass(x, *, axes, scale, offset, epsilon, training, mask=None):
    """Correct: masked two-pass moments (``where(mask, x, 0)`` summed, divided by
    ``max(n_p, 1)``: an empty slice gets (0, 0)), float32 reductions for half x, the
    elementwise stage of ``float32_two_pass``; ``mask`` absent: the plain kernel."""
    return _masked_bn(x, axes, scale, offset, epsilon, training, mask, _count_at_least_one)


@supports(*MUTANT_DTYPES)
def masked_mask_ignored(x, *, axes, scale, offset, epsilon, training, mask=None):
    """BUG: accepts ``mask`` and ignores it: the moments of every element."""
    if mask is not None:
        check_mask(mask, np.shape(x))
    return _half_bn(x, axes, scale, offset, epsilon, training)


@supports(*MUTANT_DTYPES)
def masked_divided_by_n(x, *, axes, scale, offset, epsilon, training, mask=None):
    """BUG: the masked sums divided by the slice's size N instead of its count n_p."""
    return _masked_bn(x, axes, scale, offset, epsilon, training, mask, lambda axes, mask: lambda w: np.full(
        (1,) * w.ndim, int(np.prod([w.shape[a] for a in axes]))))


def _count_before_broadcast(axes, mask):
    """n_p counted from the mask as given, over the reduced axes it has (a size-1 or missing
    axis counts once where the broadcast mask counts its length)."""

    def count(w):
        m = np.asarray(mask)
        lead = w.ndim - m.ndim
        m = m.reshape((1,) * lead + m.shape)
        return np.maximum(m.sum(axis=axes, keepdims=True), 1)

    return count


@supports(*MUTANT_DTYPES)
def masked_count_before_broadcast(x, *, axes, scale, offset, epsilon, training, mask=None):
    """BUG (shipped once: statistics 5-40x wrong): the sums use the mask broadcast to x, the
    count ``n_p`` is taken from the mask before broadcasting."""
    return _masked_bn(x, axes, scale, offset, epsilon, training, mask, _count_before_broadcast)


@supports(*MUTANT_DTYPES)
def masked_empty_slice_nan(x, *, axes, scale, offset, epsilon, training, mask=None):
    """BUG: the masked sums divided by the bare count: an empty slice is 0/0 = NaN."""
    return _masked_bn(x, axes, scale, offset, epsilon, training, mask, lambda axes, mask: lambda w: w.sum(axis=axes, keepdims=True))


@supports(*MUTANT_DTYPES)
def masked_weighted_by_product(x, *, axes, scale, offset, epsilon, training, mask=None):
    """BUG: the uncounted terms zeroed by multiplying with the mask, ``x * m`` and
    ``(x - mu)^2 * m`` (``tf.nn.weighted_moments``' form): right for finite x, but a NaN or
    inf at an uncounted (padded) position gives ``NaN * 0 = NaN`` in its slice's moments."""
    return _masked_bn(x, axes, scale, offset, epsilon, training, mask, _count_at_least_one, _weighted)


for _f in (masked_two_pass, masked_mask_ignored, masked_divided_by_n, masked_count_before_broadcast, masked_empty_slice_nan, masked_weighted_by_product):
    _f.bn_mask = True

MUTANTS += ["masked_mask_ignored", "masked_divided_by_n", "masked_count_before_broadcast", "masked_empty_slice_nan", "masked_weighted_by_product"]
CORRECT += ["masked_two_pass"]


# Replicas (``bn_replicas = R``, synchronized batch norm): the batch comes as R shards, each
# normalized with the moments of the whole (``bn_reference.subjects.numpy_replicas``, Chan's
# merge, is the correct one). A mutant is one wrong merge plugged into its skeleton; caught
# by ``properties/test_replicas.py``.
# --------------------------------------------------------------------------------------

from bn_reference.subjects.numpy_replicas import REPLICAS, chan_merge, replicas_bn, sync_batch_norm  # noqa: E402


def _merge_without_between_term(parts):
    """The size-weighted mean of the means and of the variances: sum w_i var_i, without the
    between-shard term sum w_i (mu_i - mu)^2."""
    n = sum(k for k, _, _ in parts)
    return n, sum(k * m for k, m, _ in parts) / n, sum(k * v for k, _, v in parts) / n


def _merge_equal_weights(parts):
    """Chan's merge with every non-empty shard weighted 1 / R', whatever its size."""
    r = len(parts)
    mean = sum(m for _, m, _ in parts) / r
    return r, mean, sum(v + np.square(m - mean) for _, m, v in parts) / r


def _replicas_mutant(merge, doc):
    def mutant(shards, *, axes, scale, offset, epsilon, training):
        return replicas_bn(shards, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, merge=merge)

    mutant.__doc__ = doc
    mutant.bn_replicas = REPLICAS
    mutant.bn_dtypes = MUTANT_DTYPES
    return mutant


replicas_averaged_variances = _replicas_mutant(
    _merge_without_between_term, "Wrong: the merged variance averages the shards' variances (no between-shard term)."
)
replicas_equal_weights = _replicas_mutant(
    _merge_equal_weights, "Wrong: Chan's merge weighting every non-empty shard equally, whatever its size."
)


def replicas_unsynchronized(shards, *, axes, scale, offset, epsilon, training):
    """Wrong: no synchronization, each replica normalizes its shard with its own moments."""
    return [
        replicas_bn([s], axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, replicas=1)[0]
        for s in shards
    ]


def replicas_in_place(shards, *, axes, scale, offset, epsilon, training):
    """Wrong: right values, but written into the shards it was given (when writeable) and
    those returned."""
    out = sync_batch_norm(shards, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)
    for s, y in zip(shards, out):
        if s.flags.writeable:
            s[...] = y
    return [s if s.flags.writeable else y for s, y in zip(shards, out)]


def replicas_training_ignored(shards, *, axes, scale, offset, epsilon, training):
    """Wrong: normalizes whatever ``training`` is."""
    return sync_batch_norm(shards, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=True)


def _merge_with_empty_replicas(parts):
    """Chan's merge, after padding the parts with the empty replicas' moments (a mean over no
    element: NaN), as a merge over every replica would see them."""
    empty = (0, np.full_like(parts[0][1], np.nan), np.full_like(parts[0][2], np.nan))
    return chan_merge([empty] + list(parts))


def replicas_empty_replica_nan(shards, *, axes, scale, offset, epsilon, training):
    """Wrong: an empty replica's moments (NaN: a mean over no element) enter the merge, when
    some replica is empty."""
    merge = _merge_with_empty_replicas if any(s.shape[axes[0]] == 0 for s in shards) else chan_merge
    with np.errstate(invalid="ignore"):
        return replicas_bn(shards, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, merge=merge)


for _mutant in (replicas_unsynchronized, replicas_in_place, replicas_training_ignored, replicas_empty_replica_nan):
    _mutant.bn_replicas = REPLICAS
    _mutant.bn_dtypes = MUTANT_DTYPES

MUTANTS += [
    "replicas_averaged_variances",
    "replicas_equal_weights",
    "replicas_unsynchronized",
    "replicas_in_place",
    "replicas_training_ignored",
    "replicas_empty_replica_nan",
]
CORRECT += ["sync_batch_norm"]
