"""The real ``keras.layers.BatchNormalization``'s moving statistics (Keras 3 convention,
measured and derived in ``bn_reference/mathematics/moving.py``): with momentum m, per feature,

    moving_mean <- m moving_mean + (1 - m) mean_A(x),  moving_var <- m moving_var + (1 - m) var_A(x)

(biased var; PyTorch's momentum is m_torch = 1 - m and its running_var is unbiased), and
inference y = (x - moving_mean) / sqrt(moving_var + eps) gamma + beta.
"""
import pytest
from hypothesis import given, settings

from bn_reference.mathematics import moving

pytestmark = pytest.mark.layers

# fit/predict build tf.functions: about a second per example, so the model law draws fewer.
MODEL_EXAMPLES = 8


@given(case=moving.moving_cases())
def test_momentum_update(case):
    """After k training-mode calls on b_1..b_k, from moving_mean = 0 and moving_var = 1:
    moving_j = m moving_{j-1} + (1 - m) stat(b_j), for the mean and the biased variance,
    within the k-fold propagated moment error."""
    moving.check_momentum_update(moving.keras_bn, case)


@pytest.mark.parametrize("training", [False, None])
@given(case=moving.moving_cases())
def test_inference_uses_moving_statistics(training, case):
    """layer(x, training=False|None) = (x - moving_mean) / sqrt(moving_var + eps) gamma + beta
    with the statistics the layer holds, which the call leaves unchanged."""
    moving.check_inference_uses_moving_stats(moving.keras_bn, case, training)


@settings(max_examples=MODEL_EXAMPLES)
@given(case=moving.moving_cases(max_batches=3, min_axis=1))
def test_model_propagates_training(case):
    """In a keras.Model: fit (SGD lr=0) applies the update once per batch; predict(x) and
    model(x) normalize with the moving statistics; model(x, training=True) with the batch's."""
    moving.check_model_propagates_training(moving.keras_bn, case)
