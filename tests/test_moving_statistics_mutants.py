"""The moving-statistics laws (``bn_reference.mathematics.moving``, the checks behind
``properties/test_moving_statistics.py``) catch broken ``BatchNormalization`` layers.

Each mutant is a ``keras.layers.BatchNormalization`` subclass with one wrong behaviour;
each check aimed at it must raise AssertionError on some of up to EXAMPLES derandomized
Hypothesis examples (no shrinking). The real layer passing the same checks is the property
suite itself.
"""
import numpy as np
import pytest
from hypothesis import given

from bn_reference.mathematics import moving
from bn_reference.harness.profiles import probe_settings
from bn_reference.subjects._tf import keras, tf

pytestmark = pytest.mark.meta

EXAMPLES = 20


class TorchMomentumBN(keras.layers.BatchNormalization):
    """Reads ``momentum`` with PyTorch's convention: running <- (1 - m) running + m batch."""

    def __init__(self, momentum=0.99, **kwargs):
        super().__init__(momentum=1.0 - momentum, **kwargs)


class BatchStatsAtInferenceBN(keras.layers.BatchNormalization):
    """Inference (training False/None) normalizes with the batch's own moments, not the
    moving statistics (which it leaves alone)."""

    def call(self, inputs, training=None, mask=None):
        if training:
            return super().call(inputs, training=True, mask=mask)
        mean, var = tf.nn.moments(inputs, self._reduction_axes, keepdims=True)
        shape = [-1 if a == self.axis % len(inputs.shape) else 1 for a in range(len(inputs.shape))]
        return tf.nn.batch_normalization(
            inputs, mean, var, tf.reshape(self.beta, shape), tf.reshape(self.gamma, shape), self.epsilon
        )


class UnbiasedMovingVarianceBN(keras.layers.BatchNormalization):
    """Feeds the moving variance the unbiased batch variance, n / (n - 1) var (PyTorch's
    running_var), instead of the biased one Keras uses."""

    def call(self, inputs, training=None, mask=None):
        old = tf.identity(self.moving_variance)
        outputs = super().call(inputs, training=training, mask=mask)
        if training:
            _, var = tf.nn.moments(inputs, self._reduction_axes)
            n = tf.cast(tf.size(inputs) // tf.shape(inputs)[self.axis], var.dtype)
            self.moving_variance.assign(self.momentum * old + (1 - self.momentum) * var * n / tf.maximum(n - 1, 1))
        return outputs


def factory(cls):
    return lambda *, axis, momentum, epsilon: cls(axis=axis, momentum=momentum, epsilon=epsilon, dtype="float32")


CHECKS = {
    "momentum_update": (moving.moving_cases(), moving.check_momentum_update),
    "inference_training_False": (moving.moving_cases(), lambda f, c: moving.check_inference_uses_moving_stats(f, c, False)),
    "inference_training_None": (moving.moving_cases(), lambda f, c: moving.check_inference_uses_moving_stats(f, c, None)),
    "model_propagates_training": (moving.moving_cases(max_batches=3, min_axis=1), moving.check_model_propagates_training),
}
MUTANTS = {
    "torch_momentum": (TorchMomentumBN, ("momentum_update", "model_propagates_training")),
    "batch_stats_at_inference": (
        BatchStatsAtInferenceBN,
        ("inference_training_False", "inference_training_None", "model_propagates_training"),
    ),
    "unbiased_moving_variance": (UnbiasedMovingVarianceBN, ("momentum_update", "model_propagates_training")),
}


def failure(name, layer_factory):
    """The first AssertionError message of check ``name`` on the factory, or None."""
    strategy, check = CHECKS[name]

    @probe_settings(EXAMPLES)
    @given(case=strategy)
    def probe(case):
        check(layer_factory, case)

    try:
        probe()
    except AssertionError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("mutant,check", [(m, c) for m, (_, aimed) in MUTANTS.items() for c in aimed])
def test_mutant_is_caught(mutant, check):
    """Each check aimed at the mutant fails it (the others are not required to)."""
    cls = MUTANTS[mutant][0]
    msg = failure(check, factory(cls))
    assert msg is not None, f"mutant {mutant} ({cls.__doc__.strip().splitlines()[0]}) survived {check}"
    print(f"\n{mutant} caught by {check}: {msg.splitlines()[0]}")


def test_unbiased_differs_from_biased():
    """Sanity for the unbiased mutant: on one (4, 2) batch with momentum 0 its moving
    variance is 4/3 of the real layer's."""
    x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    real, mut = moving.keras_bn(axis=1, momentum=0.0, epsilon=1e-3), factory(UnbiasedMovingVarianceBN)(axis=1, momentum=0.0, epsilon=1e-3)
    real(x, training=True)
    mut(x, training=True)
    np.testing.assert_allclose(mut.moving_variance.numpy(), real.moving_variance.numpy() * 4 / 3, rtol=1e-5)
