"""The laws of the real Keras layers and TF's fused kernel beyond the contract
(``properties/test_layers.py``, ``properties/test_mixed_precision.py``,
``properties/test_moving_statistics.py``'s ``keras.Model`` law): each law as a check helper that takes the
implementation's output, so the self-tests (``tests/test_layers_bite.py``) can
hand the same helper a deliberately broken variant and see it fail.

* Keras BatchNormalization in inference mode with fresh moving statistics (mean 0,
  variance 1): ``y = x / sqrt(1 + eps) * gamma + beta``.
* ``fused_batch_norm``'s returned batch statistics: the mean, and the variance
  Bessel-corrected, ``var * n / max(n - 1, 1)``, while y is normalized with the biased one.
* Mixed precision (Keras policy ``mixed_float16``): variables float32, outputs float16,
  values within the float16 error model of the float16-rounded input.
* A ``keras.Model`` around ``BatchNormalization``: ``fit`` updates the moving statistics once
  per batch, ``predict`` and ``model(x)`` use them (``bn_reference.mathematics.moving``'s
  checks, whose error model is framework-free).

They live with the subjects, not in ``bn_reference.mathematics``, because they build Keras
objects: the mathematics layer imports no framework.
"""
from __future__ import annotations

import contextlib

import numpy as np

from bn_reference.mathematics import checks, moving
from bn_reference.mathematics.moving import MovingCase
from bn_reference.mathematics.reference import batch_norm
from bn_reference.mathematics.tolerance import bound, finfo, flush_to_zero_floor, inv_relative_error, moment_error, unit_roundoff

__all__ = [
    "keras_bn_inference_expected",
    "keras_bn_inference_bound",
    "check_keras_bn_inference",
    "bessel_factor",
    "check_fused_statistics",
    "check_fused_reserve_space",
    "keras_policy",
    "check_mixed_precision",
    "keras_bn",
    "check_model_propagates_training",
]


# --------------------------------------------------------------------------------------
# Keras BatchNormalization, inference mode
# --------------------------------------------------------------------------------------


def keras_bn_inference_expected(x, scale, offset, epsilon) -> np.ndarray:
    """``(x - 0) / sqrt(1 + eps) * gamma + beta`` in float64: Keras' inference formula with
    its initial moving statistics (moving_mean 0, moving_variance 1)."""
    return x.astype(np.float64) / np.sqrt(1.0 + epsilon) * np.asarray(scale, np.float64) + np.asarray(offset, np.float64)


def _inference_bound_one(x64, gamma, beta, eps, dtype) -> np.ndarray:
    fi = finfo(dtype)
    u, tiny = unit_roundoff(dtype), float(fi.tiny)
    # 1 + eps: eps stored in the compute dtype, the sum rounded; then rsqrt (three roundings).
    delta = u * eps + float(fi.smallest_subnormal) + u * (1.0 + eps)
    e_inv = inv_relative_error(np.asarray(delta), np.asarray(1.0 + eps), u)
    inv = 1.0 / np.sqrt(1.0 + eps)
    y = x64 * inv * gamma + beta
    # inv * gamma and x * (inv gamma) rounded, gamma stored in the variable dtype: three more
    # relative roundings; beta - 0 * inv = beta is exact, beta stored, the add and the final
    # cast to x's dtype round; flush-to-zero (tolerance item 4).
    return (
        np.abs(gamma * x64 * inv) * ((1 + e_inv) * (1 + u) ** 3 - 1)
        + 2 * u * (np.abs(beta) + np.abs(y))
        + flush_to_zero_floor(tiny, inv, np.abs(gamma))
    )


def keras_bn_inference_bound(x, scale, offset, epsilon, dtype=None) -> np.ndarray:
    """Per-element rounding bound of Keras' folded inference evaluation
    ``x * (rsqrt(1 + eps) * gamma) + (beta - 0 * inv)`` in ``dtype`` (default x's; Keras
    computes float16/bfloat16 in float32, which only tightens it), plus the float64
    reference's own: the same counting as ``tolerance.bound`` with exact moments."""
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    x64 = x.astype(np.float64)
    gamma = np.asarray(scale, np.float64)
    beta = np.asarray(offset, np.float64)
    b = _inference_bound_one(x64, gamma, beta, float(epsilon), dtype)
    if dtype != np.float64:
        b = b + _inference_bound_one(x64, gamma, beta, float(epsilon), np.dtype(np.float64))
    return np.broadcast_to(b, x.shape)


def check_keras_bn_inference(y, x, scale, offset, epsilon, *, law=None) -> None:
    """Keras BatchNormalization in inference mode with fresh moving statistics:
    ``y = x / sqrt(1 + eps) * gamma + beta`` within ``keras_bn_inference_bound``."""
    checks.assert_within(
        checks.as_output(y),
        keras_bn_inference_expected(x, scale, offset, epsilon),
        keras_bn_inference_bound(x, scale, offset, epsilon),
        law=law or "Keras BN inference with fresh moving statistics: y = x / sqrt(1 + eps) * gamma + beta",
        x=x,
    )


# --------------------------------------------------------------------------------------
# fused_batch_norm's returned statistics
# --------------------------------------------------------------------------------------


def bessel_factor(n: int) -> float:
    """``n / max(n - 1, 1)``: the factor fused_batch_norm applies to the variance it returns
    (n = 1 returns the biased variance, 0)."""
    return n / max(n - 1, 1)


def _statistics_error(x, axes):
    """Moment errors for statistics accumulated in float32 (fused_batch_norm's ``U`` for
    every input dtype it accepts), plus the float64 reference's own, plus ``tiny`` for
    the flush to zero of a RETURNED statistic that is subnormal: ``moment_error``'s
    ``+ tiny`` covers flushed inputs only, and TF on CPU flushes the result too (x = [1.8,
    0.5] * tiny32: the 0.5 tiny input flushes, the mean 0.9 tiny flushes, 0 is returned for
    a true 1.15 tiny; tf.nn.moments does the same)."""
    e32, e64 = moment_error(x, tuple(axes), np.float32), moment_error(x, tuple(axes), np.float64)
    tiny = float(finfo(np.float32).tiny)
    return e32, e32.mean + e64.mean + tiny, e32.var + e64.var + tiny


def check_fused_statistics(mean, var, x, axes) -> None:
    """``fused_batch_norm``'s returned statistics: ``mean = mu`` within E_mu, and
    ``var = c sigma^2`` with ``c = n / max(n - 1, 1)`` (Bessel) within ``c E_var`` plus the
    rounding of the factor and of the product in float32, ``2 u32 c (sigma^2 + E_var)``.
    The biased variance differs by ``sigma^2 / (n - 1)``: outside that bound whenever
    ``1 / (n - 1)`` exceeds the relative moment error (small and moderate n)."""
    e, e_mu, e_var = _statistics_error(x, axes)
    c = bessel_factor(e.n)
    u32 = unit_roundoff(np.float32)
    checks.assert_within(mean, e.mu, e_mu, law="fused_batch_norm batch mean = mu")
    checks.assert_within(
        var,
        c * e.sigma2,
        c * e_var + 2 * u32 * c * (e.sigma2 + e_var),
        law=f"fused_batch_norm batch variance = n/(n-1) sigma^2 (Bessel, n = {e.n}, factor {c:.6g})",
    )


def check_fused_reserve_space(batch_mean, batch_var, saved_mean, saved_var, x, axes) -> None:
    """The CPU kernel's exact arithmetic: the returned mean IS the saved one, the saved
    variance is the biased one (within E_var) and the returned variance is, bit for bit,
    ``fl32(saved_var * fl32(n / max(n - 1, 1)))``."""
    e, _, e_var = _statistics_error(x, axes)
    checks.assert_identical(np.asarray(batch_mean), np.asarray(saved_mean), law="fused batch_mean == reserve_space_1")
    checks.assert_within(saved_var, e.sigma2, e_var, law="fused reserve_space_2 = biased variance sigma^2")
    factor = np.float32(e.n) / np.float32(max(e.n - 1, 1))
    checks.assert_identical(
        np.asarray(batch_var),
        (np.asarray(saved_var, np.float32) * factor).astype(np.float32),
        law=f"fused batch_variance == fl32(reserve_space_2 * fl32(n/(n-1))), n = {e.n}",
    )


# --------------------------------------------------------------------------------------
# Mixed precision
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def keras_policy(name: str):
    """Set Keras' global dtype policy (e.g. ``"mixed_float16"``) for the block and ALWAYS
    restore the previous one, whatever the block raises."""
    from bn_reference.subjects._tf import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def check_mixed_precision(layer, y, x, axes, scale, offset, epsilon) -> None:
    """Under ``mixed_float16``: every variable of ``layer`` is float32, ``y`` is float16, and
    ``y`` agrees with the float64 batch norm of the float16-rounded input ``x16`` within the
    float16 error model ``tolerance.bound(x16, ..., dtype=float16)``."""
    bad = [f"{v.path}: {v.dtype}" for v in layer.weights if str(v.dtype) != "float32"]
    if bad:
        raise AssertionError(f"mixed_float16: variables must stay float32; {', '.join(bad)}")
    out_dtype = getattr(y.dtype, "name", str(y.dtype))
    if out_dtype != "float16":
        raise AssertionError(f"mixed_float16: output dtype {out_dtype}, expected float16")
    x16 = np.asarray(x).astype(np.float16)
    checks.assert_within(
        np.asarray(y).astype(np.float64),
        batch_norm(x16, axes, scale, offset, epsilon, dtype=np.float64),
        bound(x16, axes, scale, offset, epsilon, np.float16),
        law="mixed_float16 output within the float16 error model of the float16-rounded input",
        x=x16,
    )


# --------------------------------------------------------------------------------------
# Keras BatchNormalization's moving statistics inside a keras.Model
# --------------------------------------------------------------------------------------


def keras_bn(*, axis, momentum, epsilon):
    """The real layer: ``keras.layers.BatchNormalization`` (float32)."""
    from bn_reference.subjects._tf import keras

    return keras.layers.BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon, dtype="float32")


def check_model_propagates_training(factory, case: MovingCase) -> None:
    """A functional ``keras.Model`` around the layer: ``fit`` (SGD, learning rate 0, so only
    the moving statistics can change; one epoch, the batches in order) performs one update
    per batch; ``predict`` and ``model(x)`` use the moving statistics; ``model(x,
    training=True)`` the batch's own."""
    from bn_reference.subjects._tf import keras

    assert case.axis != 0, "the model's batch axis must be a reduced axis"
    inputs = keras.Input(shape=case.x_test.shape[1:], batch_size=None)
    layer = factory(axis=case.axis, momentum=case.momentum, epsilon=case.epsilon)
    model = keras.Model(inputs, layer(inputs))
    layer.gamma.assign(case.gamma)
    layer.beta.assign(case.beta)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    data = np.concatenate(case.batches, axis=0)
    model.fit(data, np.zeros_like(data), batch_size=case.x_test.shape[0], epochs=1, shuffle=False, verbose=0)
    moving.check_moving_statistics(layer, case.batches, case, law="model.fit, one update per batch")
    moving.check_inference_output(model.predict(case.x_test, verbose=0), layer, case, law="model.predict(x)")
    moving.check_inference_output(model(case.x_test), layer, case, law="model(x)")
    moving.check_batch_statistics(model(case.x_test, training=True), case, law="model(x, training=True)")
