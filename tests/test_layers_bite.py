"""The layer properties bite: each check helper behind ``properties/test_layers.py`` and
``properties/test_mixed_precision.py`` fails on a deliberately broken variant, on a fixed
input on which the real layer passes the same check (so the failure is the bug's)."""
from __future__ import annotations

import numpy as np
import pytest

from bn_reference.subjects import keras_layers as layers
from bn_reference.subjects._tf import keras, tf
from bn_reference.mathematics.laws import check_agreement, check_unit_variance
from bn_reference.subjects.seed_notebook import SeedBatchNorm
from bn_reference.subjects.keras_laws import (
    check_fused_reserve_space,
    check_fused_statistics,
    check_keras_bn_inference,
    check_mixed_precision,
    keras_policy,
)
from bn_reference.mathematics.strategies import BNCase, Regime
from bn_reference.mathematics.tolerance import bound

pytestmark = pytest.mark.meta

RNG = np.random.default_rng(20240601)
X = (1.0 + 2.0 * RNG.standard_normal((6, 3))).astype(np.float32)  # reduce axis 0, 3 features
GAMMA = np.array([2.0, -0.5, 1.5], np.float32)
BETA = np.array([0.25, 1.0, -3.0], np.float32)
EPS = 1e-3


# --------------------------------------------------------------------------------------
# Keras BN inference: broken variants of what inference mode does
# --------------------------------------------------------------------------------------


def inference_returns_x(x, *, axes, scale, offset, epsilon, training):
    """BROKEN (for Keras): moving statistics ignored at inference, x returned as is."""
    return x.copy()


def inference_uses_batch_statistics(x, *, axes, scale, offset, epsilon, training):
    """BROKEN (for Keras): moving statistics ignored at inference, the batch's used instead."""
    return layers.keras_batch_norm(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=True)


def inference_epsilon_outside_sqrt(x, *, axes, scale, offset, epsilon, training):
    """BROKEN: the moving variance with epsilon outside the sqrt: x / (sqrt(1) + eps)."""
    return (x.astype(np.float64) / (1.0 + epsilon) * scale + offset).astype(x.dtype)


@pytest.mark.parametrize("training", [None, False])
def test_keras_bn_inference_law_holds_for_keras(training):
    y = layers.keras_batch_norm(X.copy(), axes=(0,), scale=GAMMA, offset=BETA, epsilon=EPS, training=training)
    check_keras_bn_inference(y, X, GAMMA, BETA, EPS)


@pytest.mark.parametrize("broken", [inference_returns_x, inference_uses_batch_statistics, inference_epsilon_outside_sqrt])
def test_keras_bn_inference_law_bites(broken):
    y = broken(X.copy(), axes=(0,), scale=GAMMA, offset=BETA, epsilon=EPS, training=None)
    with pytest.raises(AssertionError, match="Keras BN inference"):
        check_keras_bn_inference(y, X, GAMMA, BETA, EPS)


# --------------------------------------------------------------------------------------
# fused_batch_norm's statistics
# --------------------------------------------------------------------------------------

X4 = (5.0 + RNG.standard_normal((2, 3, 4, 2))).astype(np.float32)
AXES4 = (0, 1, 2)  # n = 24: the Bessel factor 24/23 is 4% off


def fused_reports_biased_variance(x, axes):
    """BROKEN: reports the variance it normalized with (biased) as if fused returned it."""
    _, _, saved_mean, saved_var = layers.fused_reserve_space(x, axes=axes)
    return saved_mean, saved_var


def fused_reports_float64_bessel(x, axes):
    """BROKEN (subtly): the Bessel factor applied in float64 to the float64 biased variance
    and rounded once: right within the model, not the kernel's float32 arithmetic bit for bit."""
    _, _, saved_mean, _ = layers.fused_reserve_space(x, axes=axes)
    n = int(np.prod([x.shape[a] for a in axes]))
    return saved_mean, (x.astype(np.float64).var(axis=axes, keepdims=True) * n / (n - 1)).astype(np.float32)


def test_fused_statistics_hold_for_fused():
    _, mean, var = layers.fused_batch_statistics(X4, axes=AXES4)
    check_fused_statistics(mean, var, X4, AXES4)
    check_fused_reserve_space(*layers.fused_reserve_space(X4, axes=AXES4), X4, AXES4)


def test_fused_bessel_law_bites():
    mean, var = fused_reports_biased_variance(X4, AXES4)
    with pytest.raises(AssertionError, match="Bessel"):
        check_fused_statistics(mean, var, X4, AXES4)


def test_fused_reserve_space_law_bites():
    _, _, saved_mean, saved_var = layers.fused_reserve_space(X4, axes=AXES4)
    mean, var = fused_reports_biased_variance(X4, AXES4)
    with pytest.raises(AssertionError, match="reserve_space_2"):
        check_fused_reserve_space(mean, var, saved_mean, saved_var, X4, AXES4)
    # a float64 Bessel correction rounded once differs from the kernel's float32 product
    # somewhere on a larger input (checked here, so that the example stays a real one)
    big = (5.0 + RNG.standard_normal((7, 5, 3, 16))).astype(np.float32)
    _, _, saved_mean, saved_var = layers.fused_reserve_space(big, axes=AXES4)
    mean, var = fused_reports_float64_bessel(big, AXES4)
    with pytest.raises(AssertionError, match="fl32"):
        check_fused_reserve_space(mean, var, saved_mean, saved_var, big, AXES4)


# --------------------------------------------------------------------------------------
# fused_batch_norm's epsilon
# --------------------------------------------------------------------------------------


def fused_with_old_epsilon_floor(x, *, axes, scale, offset, epsilon, training):
    """BROKEN (TF 1.x behaviour): epsilon raised to at least 1.001e-5 before the kernel."""
    return layers.fused_batch_norm(
        x, axes=axes, scale=scale, offset=offset, epsilon=max(epsilon, layers.FUSED_MIN_EPSILON_OLD), training=training
    )


SMALL = BNCase(
    x=(1e-4 * RNG.standard_normal((8, 3))).astype(np.float32),  # sigma^2 ~ 1e-8 = eps
    axes=(0,),
    scale=1.0,
    offset=0.0,
    epsilon=1e-8,
    regime=Regime("gaussian", 0.0, 1e-4),
)


def test_fused_epsilon_law_holds_for_fused():
    y = layers.fused_batch_norm(SMALL.x.copy(), **SMALL.kwargs()).astype(np.float64)
    check_unit_variance(y, SMALL)
    check_agreement(y, SMALL)


def test_fused_epsilon_law_bites():
    y = fused_with_old_epsilon_floor(SMALL.x.copy(), **SMALL.kwargs()).astype(np.float64)
    with pytest.raises(AssertionError, match="unit variance"):
        check_unit_variance(y, SMALL)


# --------------------------------------------------------------------------------------
# Mixed precision
# --------------------------------------------------------------------------------------

# sigma^2 ~ eps and mu ~ 0: epsilon's place shows, and the float16 model is sharp there
# (err/bound ~ 8 for the broken layer). With |mu| >> sigma the float16 model is too loose
# to bite: a naive E[x^2] - E[x]^2 in float16 at |mu| = 50 sigma, N = 8 passes it (the
# bound is infinite), and at |mu| = 4..24 sigma it is caught on some seeds only.
XM = (0.03 * np.random.default_rng(2).standard_normal((8, 2))).astype(np.float32)


class EpsilonOutsideSqrtFloat16(SeedBatchNorm):
    """BROKEN: the seed layer with epsilon outside the square root, (x - mu) / (sigma + eps)."""

    def batch_norm_fn(self, inputs):
        mean, var = tf.nn.moments(inputs, self.axes, keepdims=True)
        return (inputs - mean) / (tf.sqrt(var) + tf.cast(self.epsilon, inputs.dtype))


def _mixed(build):
    with keras_policy("mixed_float16"):
        layer = build()
        y = layer(XM, training=True)
    return layer, y


def test_mixed_precision_holds_for_keras_and_seed():
    assert np.isfinite(bound(XM.astype(np.float16), (0,), 1.0, 0.0, EPS, np.float16)).all(), "the bite case must not be vacuous"
    for build in (lambda: keras.layers.BatchNormalization(axis=1, epsilon=EPS), lambda: SeedBatchNorm(axes=(0,), epsilon=EPS)):
        layer, y = _mixed(build)
        check_mixed_precision(layer, y, XM, (0,), 1.0, 0.0, EPS)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: keras.layers.BatchNormalization(axis=1, epsilon=EPS, dtype="float16"), "variables must stay float32"),
        (lambda: keras.layers.BatchNormalization(axis=1, epsilon=EPS, dtype="float32"), "output dtype float32"),
        (lambda: EpsilonOutsideSqrtFloat16(axes=(0,), epsilon=EPS), "float16 error model"),
    ],
    ids=["float16-variables", "float32-output", "epsilon-outside-sqrt"],
)
def test_mixed_precision_bites(build, message):
    layer, y = _mixed(build)
    with pytest.raises(AssertionError, match=message):
        check_mixed_precision(layer, y, XM, (0,), 1.0, 0.0, EPS)
