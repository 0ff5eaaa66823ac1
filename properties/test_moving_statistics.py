"""Moving statistics, on every subject with the stateful contract (``bn_stateful``, see
``bn_reference.subjects``), in the conventions it declares; derived in
``bn_reference/mathematics/moving.py``. With momentum m in Keras' convention, per feature,

    moving_mean <- m moving_mean + (1 - m) mean_A(x),  moving_var <- m moving_var + (1 - m) var_A(x)

(``bn_momentum = "torch"``: the subject is passed 1 - m, PyTorch's convention;
``bn_running_variance = "unbiased"``: var_A(x) N/(N - 1)), and inference
y = (x - moving_mean) / sqrt(moving_var + eps) gamma + beta. A subject without
``bn_stateful`` skips them. The last law is the real ``keras.layers.BatchNormalization``
inside a ``keras.Model`` (marker ``layers``).
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bn_reference.mathematics import moving
from bn_reference.mathematics import strategies as bst
from bn_reference.subjects import keras_laws
from bn_reference.subjects._framework import install_hint

# fit/predict build tf.functions: about a second per example, so the model law draws fewer.
MODEL_EXAMPLES = 8


def _stateful_case(data, subject):
    if subject.stateful is None:
        pytest.skip(f"{subject.spec} has no bn_stateful (the stateful contract)")
    return bst.draw_case(data, None, "float32", strategy=moving.stateful_cases(subject))


@given(data=st.data())
def test_momentum_update(subject, data):
    """After k training-mode calls on b_1..b_k, from moving_mean = 0 and moving_var = 1:
    moving_j = m moving_{j-1} + (1 - m) stat(b_j), for the mean and the (declared biased or
    unbiased) variance, within the k-fold propagated moment error."""
    moving.check_momentum_update(subject, _stateful_case(data, subject))


@pytest.mark.parametrize("training", [False, None])
@given(data=st.data())
def test_inference_uses_moving_statistics(subject, training, data):
    """layer(x, training=False|None) = (x - moving_mean) / sqrt(moving_var + eps) gamma + beta
    with the statistics the layer holds, which the call leaves unchanged."""
    moving.check_inference_uses_moving_stats(subject, _stateful_case(data, subject), training)


@pytest.mark.layers
@settings(max_examples=MODEL_EXAMPLES)
@given(case=moving.moving_cases(max_batches=3, min_axis=1))
def test_model_propagates_training(case):
    """In a keras.Model: fit (SGD lr=0) applies the update once per batch; predict(x) and
    model(x) normalize with the moving statistics; model(x, training=True) with the batch's."""
    pytest.importorskip("tensorflow", reason=install_hint("tensorflow", "tensorflow"))
    keras_laws.check_model_propagates_training(keras_laws.keras_bn, case)
