"""The modernised seed layer (``bn_reference.subjects.seed_notebook.SeedBatchNorm``) on TF 2.21 / Keras 3.

What the seed notebook's ``custom_bn`` meant, kept on current TF: the seed's defaults;
``training=True`` normalizes; ``training=False`` and ``training=None`` return the input
unchanged, eagerly, inside ``tf.function`` (Python bool or symbolic ``tf.bool``) and in a
functional ``keras.Model`` (call and ``predict``); the configuration survives
``get_config``/``from_config``, Keras serialization and a ``.keras`` file.
"""
import json

import keras
import numpy as np
import pytest

from bn_reference import batch_norm, bound
from bn_reference.subjects._tf import tf
from bn_reference.mathematics.checks import assert_within
from bn_reference.subjects.seed_notebook import SeedBatchNorm, custom_bn

pytestmark = pytest.mark.meta

X = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 3)).astype(np.float32)
X4 = np.random.default_rng(1).normal(-5.0, 0.5, size=(4, 3, 5, 2)).astype(np.float32)
ROW_SCALE, ROW_OFFSET = np.array([[0.5, -2.0, 3.0]]), np.array([[1.0, 0.0, -4.0]])  # shape (1, 3): per feature
AFFINE = [
    pytest.param(2, 1, id="scale=2,offset=1"),
    pytest.param(ROW_SCALE, ROW_OFFSET, id="scale,offset=arrays"),
]


def expected(x, training, axes=(0,), scale=1, offset=0, epsilon=0.001):
    """(expected output, allowed error): x itself exactly unless training is True, else the
    float64 reference within the error model's bound."""
    if training is not True:
        return x, 0.0
    return batch_norm(x, axes, scale, offset, epsilon, dtype=np.float64), bound(x, axes, scale, offset, epsilon)


def check(y, x, training, law, **kwargs):
    """assert_within(y, *expected(x, training, **kwargs))."""
    want, tol = expected(x, training, **kwargs)
    assert_within(np.asarray(y), want, tol, law=law, x=x)


def seed_model(**kwargs):
    """A functional model: keras.Input(shape=(3,)) -> SeedBatchNorm(**kwargs)."""
    inputs = keras.Input(shape=(3,))
    return keras.Model(inputs, SeedBatchNorm(**kwargs)(inputs))


def test_defaults_are_the_seeds():
    """SeedBatchNorm() has the seed's defaults: scale=1, offset=0, axes=[0], epsilon=0.001
    (the seed's hard-coded variance_epsilon); ``custom_bn`` is the seed's name for it."""
    layer = SeedBatchNorm()
    assert (layer.scale, layer.offset, list(layer.axes), layer.epsilon) == (1, 0, [0], 0.001)
    assert custom_bn is SeedBatchNorm
    check(layer(X, training=True), X, True, law="SeedBatchNorm() normalizes over axis 0 with eps 0.001")


@pytest.mark.parametrize(
    "axes, scale, offset",
    [
        pytest.param((0,), 1, 0, id="axes=[0]"),
        pytest.param((0, 1, 2), 2, 1, id="axes=[0,1,2]"),
        pytest.param((1, 2), np.full((4, 1, 1, 2), 3.0), np.full((4, 1, 1, 2), -1.0), id="axes=[1,2]-arrays"),
        pytest.param((3,), 1, 0, id="axes=[3]"),
    ],
)
def test_training_true_normalizes(axes, scale, offset):
    """layer(x, training=True) agrees with the float64 reference within the error model."""
    y = SeedBatchNorm(scale=scale, offset=offset, axes=axes)(X4, training=True)
    check(y, X4, True, law="training=True vs float64 reference", axes=axes, scale=scale, offset=offset)


@pytest.mark.parametrize("kwargs", [{}, {"training": None}, {"training": False}], ids=["omitted", "None", "False"])
def test_inference_returns_input_eagerly(kwargs):
    """Eagerly, training omitted, None or False: the output is x, bit for bit."""
    check(SeedBatchNorm()(X, **kwargs), X, False, law=f"eager call with {kwargs or 'no training'}")


@pytest.mark.parametrize("training", [None, False, True])
def test_tf_function_with_python_bool(training):
    """Inside tf.function with a Python training value: None/False give x, True normalizes."""
    layer = SeedBatchNorm()
    f = tf.function(lambda x: layer(x, training=training))
    check(f(tf.constant(X)), X, training, law=f"tf.function, training={training}")


def test_tf_function_with_symbolic_bool():
    """Inside tf.function with training a tf.bool tensor argument: one trace serves both
    values (the choice is a tf.cond in the graph); False gives x, True normalizes."""
    layer = SeedBatchNorm()
    f = tf.function(
        lambda x, training: layer(x, training=training),
        input_signature=[tf.TensorSpec(X.shape, tf.float32), tf.TensorSpec((), tf.bool)],
    )
    for training in (False, True):
        check(f(X, tf.constant(training)), X, training, law=f"tf.function, training=tf.constant({training})")
    assert f.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    "run, training",
    [
        pytest.param(lambda m, x: m(x), None, id="model(x)"),
        pytest.param(lambda m, x: m(x, training=False), False, id="model(x,training=False)"),
        pytest.param(lambda m, x: m(x, training=True), True, id="model(x,training=True)"),
        pytest.param(lambda m, x: m.predict(x, verbose=0), False, id="model.predict(x)"),
    ],
)
def test_keras_model(run, training):
    """In a functional keras.Model: model(x) (default training) and model.predict(x)
    (inference) return x unchanged; model(x, training=True) normalizes the batch."""
    check(run(seed_model(), X), X, training, law="functional keras.Model")


def test_seed_tf_cond_on_none_raises():
    """The seed's ``tf.cond(training, ...)`` cannot take training=None on current TF (None is
    not convertible to a tensor): why the layer resolves None/False/True in Python."""
    with pytest.raises((TypeError, ValueError)):
        tf.cond(None, lambda: tf.constant(X), lambda: tf.constant(X))


@pytest.mark.parametrize("scale, offset", AFFINE)
def test_config_round_trip(scale, offset):
    """get_config is JSON-serializable and from_config rebuilds a layer with the same config
    and bit-identical outputs (array scale/offset included)."""
    layer = SeedBatchNorm(scale=scale, offset=offset, axes=[0], epsilon=1e-5)
    config = layer.get_config()
    clone = SeedBatchNorm.from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    assert_within(clone(X, training=True), layer(X, training=True), 0.0, law="from_config(get_config()) output")


@pytest.mark.parametrize("scale, offset", AFFINE)
def test_keras_serialization_round_trip(scale, offset):
    """keras.saving.serialize_keras_object / deserialize_keras_object give a SeedBatchNorm
    with bit-identical outputs."""
    layer = SeedBatchNorm(scale=scale, offset=offset, axes=[0], epsilon=1e-5)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is SeedBatchNorm
    assert_within(clone(X, training=True), layer(X, training=True), 0.0, law="keras (de)serialization output")


def test_keras_file_round_trip(tmp_path):
    """A model saved to a .keras file and loaded back normalizes identically with
    training=True and still returns x from predict."""
    model = seed_model(scale=ROW_SCALE, offset=ROW_OFFSET, epsilon=1e-5)
    path = tmp_path / "seed.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert_within(loaded(X, training=True), model(X, training=True), 0.0, law="loaded .keras model, training=True")
    check(loaded.predict(X, verbose=0), X, False, law="loaded .keras model, predict")


def test_seed_layer_subject_reuses_a_layer_that_computes_what_a_fresh_one_does():
    """The ``seed_layer`` subject builds one ``SeedBatchNorm`` per dtype and reconfigures it per
    call (``bn_reference.subjects.tensorflow._configured_seed_layer``): over shapes, ranks,
    reduced axes, scalar and per-feature parameters, epsilons and training flags, interleaved
    across dtypes, each call is bit-identical to a fresh ``SeedBatchNorm(scale=..., offset=...,
    axes=..., epsilon=..., dtype=...)`` on the same input, and the reused layer's config equals
    the fresh layer's (its name aside)."""
    import ml_dtypes

    from bn_reference.subjects import tensorflow as tf_subjects

    rng = np.random.default_rng(7)
    dtypes = ["float32", "float64", "float16", ml_dtypes.bfloat16]
    for i in range(40):
        dtype = np.dtype(dtypes[i % len(dtypes)])
        shape = tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 5))))
        axes = tuple(sorted(int(a) for a in rng.choice(len(shape), size=int(rng.integers(1, len(shape) + 1)), replace=False)))
        kept = tuple(1 if a in axes else s for a, s in enumerate(shape))
        scale = rng.normal(size=kept).astype(dtype) if i % 3 else float(rng.normal())
        offset = rng.normal(size=kept).astype(dtype) if i % 2 else float(rng.normal())
        epsilon = float(10.0 ** rng.uniform(-8, 0))
        training = (True, True, False, None)[i % 4]
        x = rng.normal(2.0, 3.0, size=shape).astype(dtype)
        kwargs = dict(scale=scale, offset=offset, axes=axes, epsilon=epsilon)
        got = tf_subjects.seed_layer(x.copy(), training=training, **kwargs)
        fresh = SeedBatchNorm(dtype=dtype.name, **kwargs)
        want = np.asarray(fresh(x.copy(), training=training))
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8), err_msg=f"call {i}: {kwargs}")
        reused = tf_subjects._SEED_LAYERS[dtype.name]
        config = {k: v for k, v in reused.get_config().items() if k != "name"}
        assert config == {k: v for k, v in fresh.get_config().items() if k != "name"}
