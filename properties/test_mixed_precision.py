"""Mixed precision: the seed layer and Keras' BatchNormalization / LayerNormalization under
the Keras policy ``mixed_float16`` (compute float16, variables float32).

Each example builds its layer inside ``keras_laws.keras_policy("mixed_float16")``, which
restores the previous global policy whatever happens; the autouse fixture checks that
no test leaves the policy changed. The input is float32, as a mixed-precision model's
input usually is; the layer casts it to float16, so the law is stated on the
float16-rounded input ``x16``: y within ``tolerance.bound(x16, ..., dtype=float16)``.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bn_reference.subjects._framework import install_hint

pytest.importorskip("tensorflow", reason=install_hint("tensorflow", "tensorflow"))  # the laws of the built-in TF layers

from bn_reference.subjects import keras_layers as layers
from bn_reference.mathematics import strategies as bst
from bn_reference.subjects._tf import keras
from bn_reference.subjects.seed_notebook import SeedBatchNorm
from bn_reference.subjects.keras_laws import check_mixed_precision, keras_policy
from bn_reference.mathematics.tolerance import in_safe_domain

pytestmark = pytest.mark.layers

POLICY = "mixed_float16"


@pytest.fixture(autouse=True)
def policy_untouched():
    before = keras.mixed_precision.global_policy().name
    yield
    after = keras.mixed_precision.global_policy().name
    assert after == before, f"the global Keras dtype policy leaked: {before!r} before the test, {after!r} after"


def build_seed_layer(case):
    return SeedBatchNorm(scale=case.scale, offset=case.offset, axes=case.axes, epsilon=case.epsilon)


def build_keras_batch_norm(case):
    """``BatchNormalization(axis=k)`` under the policy, gamma/beta (float32 variables) set
    from the per-feature scale/offset."""
    (k,) = tuple(a for a in range(case.x.ndim) if a not in case.axes)
    layer = keras.layers.BatchNormalization(axis=k, epsilon=case.epsilon)
    layer.build(case.x.shape)
    layer.gamma.assign(layers.per_feature(case.scale, case.x.shape, case.axes, np.float32))
    layer.beta.assign(layers.per_feature(case.offset, case.x.shape, case.axes, np.float32))
    return layer


def build_keras_layer_norm(case):
    """``LayerNormalization(axis=axes)`` under the policy; its gamma/beta are per element of
    the reduced axes, so the (scalar) scale and offset fill them."""
    layer = keras.layers.LayerNormalization(axis=list(case.axes), epsilon=case.epsilon)
    layer.build(case.x.shape)
    layer.gamma.assign(np.full(layer.gamma.shape, case.scale, np.float32))
    layer.beta.assign(np.full(layer.beta.shape, case.offset, np.float32))
    return layer


BUILDERS = {
    "seed_layer": (build_seed_layer, None),
    "keras_batch_norm": (build_keras_batch_norm, layers.keras_bn_axes),
    "keras_layer_norm": (build_keras_layer_norm, None),
}


def call(layer, x):
    return layer(x, training=True) if not isinstance(layer, keras.layers.LayerNormalization) else layer(x)


@st.composite
def mixed_cases(draw, axes_sets=None, scalar_affine=False):
    """float32 cases whose float16 rounding is inside the float16 error model's domain, with
    epsilon at least float16's smallest normal (TF flushes a subnormal epsilon to zero)."""
    case = draw(bst.bn_cases(dtypes=("float32",), axes_sets=axes_sets, epsilon_strategy=bst.epsilons("float16")))
    if scalar_affine:
        case = bst.replace(
            case,
            scale=draw(st.sampled_from((1.0, 2.0, -0.5)) | st.floats(0.1, 10.0), label="scale"),
            offset=draw(st.sampled_from((0.0, 1.0)) | st.floats(-10.0, 10.0), label="offset"),
        )
    assume(in_safe_domain(case.x.astype(np.float16), case.axes, case.scale, case.offset, case.epsilon, np.float16))
    return case


@pytest.mark.parametrize("kind", list(BUILDERS))
@given(data=st.data())
def test_mixed_float16(kind, data):
    """Under ``mixed_float16``: every variable of the layer is float32, the output is
    float16, and it is within the float16 error model of batch norm of the float16-rounded
    input (Keras computes BN/LN statistics in float32 inside; the seed layer computes
    ``tf.nn.batch_normalization`` in float16)."""
    build, axes_sets = BUILDERS[kind]
    case = bst.draw_case(
        data, None, "float32", strategy=mixed_cases(axes_sets, scalar_affine=kind == "keras_layer_norm")
    )
    with keras_policy(POLICY):
        layer = build(case)
        y = call(layer, case.x.copy())
    check_mixed_precision(layer, y, case.x, case.axes, case.scale, case.offset, case.epsilon)


def test_policy_restored_after_an_error():
    """``keras_policy`` restores the previous global policy even when the block raises."""
    before = keras.mixed_precision.global_policy().name
    with pytest.raises(RuntimeError, match="inside"):
        with keras_policy(POLICY):
            assert keras.mixed_precision.global_policy().name == POLICY
            raise RuntimeError("raised inside the policy block")
    assert keras.mixed_precision.global_policy().name == before
