"""Laws of the real layers that the subject contract does not state: what Keras'
BatchNormalization does in inference mode, what ``fused_batch_norm`` returns besides y,
and how it treats a small epsilon. Layer-specific: no ``subject`` argument; the layers
are the adapters of ``bn_reference.subjects.keras_layers`` (measured facts in its module docstring).
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference.subjects._framework import install_hint

pytest.importorskip("tensorflow", reason=install_hint("tensorflow", "tensorflow"))  # the laws of the built-in TF layers

from bn_reference.subjects import keras_layers as layers
from bn_reference.mathematics import strategies as bst
from bn_reference.subjects._tf import keras
from bn_reference.mathematics.checks import assert_within
from bn_reference.mathematics.laws import check_agreement, check_unit_variance
from bn_reference.subjects.keras_laws import (
    check_fused_reserve_space,
    check_fused_statistics,
    check_keras_bn_inference,
    keras_bn_inference_bound,
)

pytestmark = pytest.mark.layers

FORMATS = ("NHWC", "NCHW")
SMALL_EPSILONS = (1e-12, 1e-10, 1e-8, 1e-6, 5e-6, 1e-5)  # all below TF 1.x's floor 1.001e-5


def keras_bn_cases(dtype):
    return bst.bn_cases(dtypes=(dtype,), axes_sets=layers.keras_bn_axes)


# --------------------------------------------------------------------------------------
# Keras BatchNormalization
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("training", [None, False], ids=["training=None", "training=False"])
@pytest.mark.parametrize("dtype", layers.ALL_DTYPES)
@given(data=st.data())
def test_keras_bn_inference_uses_moving_statistics(dtype, training, data):
    """Keras BatchNormalization with ``training`` None or False normalizes with its moving
    statistics; fresh ones (mean 0, variance 1) give y = x / sqrt(1 + eps) * gamma + beta
    (not x: the contract's inference, hence the strict xfail of test_inference_returns_input
    for keras_batch_norm). Bound: the folded evaluation's roundings with exact moments."""
    case = bst.draw_case(data, None, dtype, strategy=keras_bn_cases(dtype))
    y = layers.keras_batch_norm(case.x.copy(), **case.kwargs(training=training))
    assert y.dtype == case.x.dtype, f"output dtype {y.dtype} != input dtype {case.x.dtype}"
    check_keras_bn_inference(y, case.x, case.scale, case.offset, case.epsilon)


A = np.arange(1, 7, dtype=np.float32).reshape(2, 3)  # the seed notebook's In [4]
IN86 = np.array([[1.9990008, 3.9980016, 5.9970026], [7.996003, 9.995004, 11.994005]], dtype=np.float32)


def test_keras_bn_inference_matches_seed_in86():
    """The seed notebook (TF 2.1), In [76]-[86]: ``BatchNormalization(axis=0, epsilon=0.001)``
    with gamma set to [2, 2], called without ``training`` on a = [[1, 2, 3], [4, 5, 6]],
    printed 1.9990008 = 2 / sqrt(1.001) for x = 1: the inference law with fresh moving
    statistics. Today's layer and the printed values are each within B of the truth."""
    y = layers.keras_batch_norm(A.copy(), axes=(1,), scale=2.0, offset=0.0, epsilon=0.001, training=None)
    assert_within(y, IN86, 2 * keras_bn_inference_bound(A, 2.0, 0.0, 0.001), law="In [86]: Keras BN inference, gamma = 2")
    check_keras_bn_inference(IN86, A, 2.0, 0.0, 0.001, law="In [86] as printed by TF 2.1")


def test_keras_bn_axis_is_one_kept_axis():
    """Keras 3's BatchNormalization takes ONE int axis, the kept one (``self.axis =
    int(axis)``); a list of kept axes raises TypeError. If this starts passing a list,
    ``layers.keras_bn_axes`` can offer more axis sets."""
    with pytest.raises(TypeError):
        keras.layers.BatchNormalization(axis=[1, 2])
    layer = keras.layers.BatchNormalization(axis=1)
    layer.build((2, 3, 4))
    assert layer.gamma.shape == (3,) and layer._reduction_axes == [0, 2]


# --------------------------------------------------------------------------------------
# tf.compat.v1.nn.fused_batch_norm
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", layers.FUSED_DTYPES)
@given(data=st.data())
def test_fused_variance_is_bessel_corrected(dtype, data_format, data):
    """``fused_batch_norm`` (training) normalizes with the biased variance sigma^2 but
    RETURNS ``n / max(n - 1, 1) * sigma^2`` (unbiased; n = 1 gives 0), and returns the batch
    mean mu. Bound: the float32 moment error model (the kernel accumulates in float32
    for every x dtype), times the factor, plus its two roundings. Its y is checked by the
    whole suite (``--bn-impl fused_batch_norm``): that is the biased-variance half."""
    case = bst.draw_case(data, None, dtype, strategy=bst.bn_cases(dtypes=(dtype,)))
    _, mean, var = layers.fused_batch_statistics(case.x, axes=case.axes, epsilon=case.epsilon, data_format=data_format)
    check_fused_statistics(mean, var, case.x, case.axes)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", layers.FUSED_DTYPES)
@given(data=st.data())
def test_fused_reserve_space_exact(dtype, data_format, data):
    """Measured on TF 2.21 CPU, bit for bit: ``FusedBatchNormV3``'s reserve_space_1 is the
    returned batch mean, reserve_space_2 the biased variance it normalized with, and the
    returned variance is ``fl32(reserve_space_2 * fl32(n / max(n - 1, 1)))`` (the Bessel
    factor applied once, in float32, after the biased variance). This is what the
    adapters' ``moments`` attribute relies on."""
    case = bst.draw_case(data, None, dtype, strategy=bst.bn_cases(dtypes=(dtype,)))
    mean, var, saved_mean, saved_var = layers.fused_reserve_space(case.x, axes=case.axes, data_format=data_format)
    check_fused_reserve_space(mean, var, saved_mean, saved_var, case.x, case.axes)


@st.composite
def small_epsilon_cases(draw, dtype):
    """sigma^2 comparable to an epsilon below 1.001e-5: data = sqrt(r eps) z, r in {1/4, 1, 4}."""
    eps = draw(st.sampled_from(SMALL_EPSILONS))
    r = draw(st.sampled_from((1.0, 0.25, 4.0)))
    regime = bst.Regime("gaussian", 0.0, math.sqrt(r * eps))
    return draw(
        bst.bn_cases(
            dtypes=(dtype,),
            shape_strategy=bst.shapes(max_dims=4),
            regime_strategy=st.just(regime),
            epsilon_strategy=st.just(eps),
        )
    )


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])  # float16 cannot hold sigma ~ 1e-6 as normal numbers
@given(data=st.data())
def test_fused_epsilon_not_raised(dtype, data_format, data):
    """Measured on TF 2.21 CPU: ``fused_batch_norm`` uses epsilon AS GIVEN, also below
    1.001e-5 (TF 1.x's Python wrapper raised it to 1.001e-5, cuDNN's minimum; TF 2.21's
    passes it through, and the CPU kernel normalizes with it down to 1e-12). With sigma^2
    ~ eps, var(y) = gamma^2 sigma^2 / (sigma^2 + eps) is far from what eps = 1.001e-5
    would give, and y agrees with the float64 reference at the given eps."""
    case = bst.draw_case(data, None, dtype, strategy=small_epsilon_cases(dtype))
    fused = layers.fused_batch_norm if data_format == "NHWC" else layers.fused_batch_norm_nchw
    y = fused(case.x.copy(), **case.kwargs()).astype(np.float64)
    check_unit_variance(y, case)
    check_agreement(y, case)
