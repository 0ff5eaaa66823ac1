"""The moving-statistics laws (``bn_reference.mathematics.moving``, the checks behind
``properties/test_moving_statistics.py``) catch broken stateful subjects and mis-declared
conventions, and pass correct ones in both conventions.

Each mutant is a ``keras.layers.BatchNormalization`` subclass with one wrong behaviour,
behind the stateful contract (``keras_layers.KerasMovingBN(layer_class=...)``); each check
aimed at it must raise AssertionError on some of up to EXAMPLES derandomized Hypothesis
examples (no shrinking). Declarations: the real Keras layer and ``torch.nn.BatchNorm1d``
(``running_stats.TorchRunningBN``) pass when declared with their own conventions (Keras:
``m``, biased; PyTorch: ``1 - m``, unbiased) and fail when declared with the other's.
"""
import functools

import numpy as np
import pytest
from hypothesis import given

from bn_reference.mathematics import moving
from bn_reference.harness.profiles import probe_settings
from bn_reference.subjects import Subject, keras_laws
from bn_reference.subjects._tf import keras, tf
from bn_reference.subjects.keras_layers import KerasMovingBN, keras_bn_axes
from bn_reference.subjects.running_stats import TorchRunningBN

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
    """A Keras layer factory (for the keras.Model law)."""
    return lambda *, axis, momentum, epsilon: cls(axis=axis, momentum=momentum, epsilon=epsilon, dtype="float32")


def stateful(name, make, momentum="keras", variance="biased"):
    """A subject providing only the stateful contract: ``bn_stateful = make`` and the declared
    conventions (one kept axis, as Keras and BatchNorm1d express)."""

    def fn(x, **kwargs):
        raise NotImplementedError("only the stateful contract")

    fn.bn_stateful, fn.bn_momentum, fn.bn_running_variance, fn.bn_axes = make, momentum, variance, keras_bn_axes
    if make is TorchRunningBN:  # BatchNorm1d's refusal in training: one value per channel
        fn.bn_refuses = lambda shape, axes: "Expected more than 1 value per channel" if np.prod([shape[a] for a in axes]) == 1 else None
    return Subject(name, fn)


def keras_subject(cls, momentum="keras", variance="biased"):
    return stateful(cls.__name__, functools.partial(KerasMovingBN, layer_class=cls), momentum, variance)


def _cases(**kw):
    return lambda subject: moving.stateful_cases(subject, **kw)


CHECKS = {
    "momentum_update": (_cases(), moving.check_momentum_update),
    "inference_training_False": (_cases(), lambda s, c: moving.check_inference_uses_moving_stats(s, c, False)),
    "inference_training_None": (_cases(), lambda s, c: moving.check_inference_uses_moving_stats(s, c, None)),
    "model_propagates_training": (lambda s: moving.moving_cases(max_batches=3, min_axis=1), None),
}
MUTANTS = {
    "torch_momentum": (TorchMomentumBN, ("momentum_update", "model_propagates_training")),
    "batch_stats_at_inference": (
        BatchStatsAtInferenceBN,
        ("inference_training_False", "inference_training_None", "model_propagates_training"),
    ),
    "unbiased_moving_variance": (UnbiasedMovingVarianceBN, ("momentum_update", "model_propagates_training")),
}
# Real layers, declared rightly (must pass every check) or wrongly (momentum_update must fail).
KERAS = keras.layers.BatchNormalization
DECLARED = {
    "keras_as_keras": (keras_subject(KERAS), True),
    "torch_as_torch": (stateful("BatchNorm1d", TorchRunningBN, "torch", "unbiased"), True),
    "keras_as_torch_momentum": (keras_subject(KERAS, momentum="torch"), False),
    "keras_as_unbiased": (keras_subject(KERAS, variance="unbiased"), False),
    "torch_as_keras": (stateful("BatchNorm1d", TorchRunningBN), False),
    "torch_as_biased": (stateful("BatchNorm1d", TorchRunningBN, "torch", "biased"), False),
}


def failure(name, target):
    """The first AssertionError message of check ``name`` on ``target`` (a stateful subject,
    or a Keras layer class for the keras.Model law), or None."""
    strategy, check = CHECKS[name]
    if check is None:  # the keras.Model law takes a layer factory
        strategy, check, target = strategy(None), keras_laws.check_model_propagates_training, factory(target)
    else:
        strategy = strategy(target)

    @probe_settings(EXAMPLES)
    @given(case=strategy)
    def probe(case):
        check(target, case)

    try:
        probe()
    except AssertionError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("mutant,check", [(m, c) for m, (_, aimed) in MUTANTS.items() for c in aimed])
def test_mutant_is_caught(mutant, check):
    """Each check aimed at the mutant fails it (the others are not required to)."""
    cls = MUTANTS[mutant][0]
    msg = failure(check, cls if check == "model_propagates_training" else keras_subject(cls))
    assert msg is not None, f"mutant {mutant} ({cls.__doc__.strip().splitlines()[0]}) survived {check}"
    print(f"\n{mutant} caught by {check}: {msg.splitlines()[0]}")


@pytest.mark.parametrize("name", list(DECLARED))
def test_declared_conventions(name):
    """A real layer passes the momentum and inference laws in its own conventions, and its
    momentum law fails under the other library's (a mismatch between declaration and
    behaviour is caught)."""
    subject, right = DECLARED[name]
    if right:
        for check in ("momentum_update", "inference_training_False"):
            msg = failure(check, subject)
            assert msg is None, f"{name}: {check} failed a correctly declared layer:\n{msg}"
    else:
        msg = failure("momentum_update", subject)
        assert msg is not None, f"{name}: the declaration {subject.conventions} does not match the layer, yet momentum_update passed"
        print(f"\n{name} caught: {msg.splitlines()[0]}")


def test_unbiased_differs_from_biased():
    """Sanity for the unbiased mutant: on one (4, 2) batch with momentum 0 its moving
    variance is 4/3 of the real layer's."""
    x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    real, mut = keras_laws.keras_bn(axis=1, momentum=0.0, epsilon=1e-3), factory(UnbiasedMovingVarianceBN)(axis=1, momentum=0.0, epsilon=1e-3)
    real(x, training=True)
    mut(x, training=True)
    np.testing.assert_allclose(mut.moving_variance.numpy(), real.moving_variance.numpy() * 4 / 3, rtol=1e-5)
