"""The default TensorFlow subjects: ``tf.nn`` called directly, and the seed notebook's layer."""
from __future__ import annotations

import numpy as np

from bn_reference.subjects import check_call, supports
from bn_reference.subjects.autodiff import tape_vjp


def _tf_param(v, dtype):
    from bn_reference.subjects._tf import tf

    return tf.constant(np.asarray(v, dtype=np.float64).astype(dtype))


def _tf_moments(x, *, axes):
    from bn_reference.subjects._tf import tf

    mean, var = tf.nn.moments(tf.constant(x), list(axes), keepdims=True)
    return mean.numpy(), var.numpy()


@supports("float32", "float64", "float16", "bfloat16", moments=_tf_moments)
def tf_nn(x, *, axes, scale, offset, epsilon, training):
    """``tf.nn.moments(keepdims=True)`` + ``tf.nn.batch_normalization``, called directly."""
    from bn_reference.subjects._tf import tf

    x, axes, epsilon, training = check_call(x, axes, scale, offset, epsilon, training)
    if not training:
        return x.copy()
    t = tf.constant(x)
    mean, var = tf.nn.moments(t, list(axes), keepdims=True)
    y = tf.nn.batch_normalization(t, mean, var, _tf_param(offset, x.dtype), _tf_param(scale, x.dtype), epsilon)
    return y.numpy()


_SEED_LAYERS: dict = {}  # dtype name -> the SeedBatchNorm that ``seed_layer`` calls in that dtype


def _configured_seed_layer(dtype: str, *, scale, offset, axes, epsilon):
    """A ``SeedBatchNorm`` in the state ``SeedBatchNorm(scale=scale, offset=offset, axes=axes,
    epsilon=epsilon, dtype=dtype)`` would be in, built once per dtype and reconfigured per call.

    Why one layer per dtype computes exactly what a fresh layer per call computes (constructing
    a Keras layer, with its attribute tracking and signature inspection, cost ~3 ms a call,
    more than the call itself):

    * ``SeedBatchNorm.call`` reads only its inputs, ``training`` and the four attributes that
      ``__init__`` sets; they are assigned here the way ``__init__`` assigns them (the same
      Keras ``__setattr__``, ``axes`` as a new list), before every call.
    * What ``keras.Layer.__init__`` sets from ``dtype`` (the dtype policy: compute and
      variable dtype, autocast) is the same for every call in that dtype, hence the key.
    * The only state a Keras layer keeps from a call is ``built``/``_called``: the layer has no
      ``build`` of its own, no weights and no sublayers, so Keras' ``_maybe_build`` on the first
      call only sets ``built = True`` (``keras.src.layers.layer.Layer._maybe_build``: the
      default ``build``; ``might_have_unbuilt_state`` is false without sublayers), and every
      later call skips it. No input spec is set, so no shape from an earlier call is checked.

    ``tests/test_reference.py`` checks the reused layer against a fresh one, bit for bit and
    config for config, over shapes, dtypes, parameters and training flags in any order.
    """
    from bn_reference.subjects.seed_notebook import SeedBatchNorm

    layer = _SEED_LAYERS.get(dtype)
    if layer is None:
        layer = _SEED_LAYERS[dtype] = SeedBatchNorm(dtype=dtype)
    layer.scale = scale
    layer.offset = offset
    layer.axes = list(axes)
    layer.epsilon = epsilon
    return layer


@supports("float32", "float64", "float16", "bfloat16", moments=_tf_moments)
def seed_layer(x, *, axes, scale, offset, epsilon, training):
    """The seed notebook's layer (``bn_reference.subjects.seed_notebook.SeedBatchNorm``) called eagerly with
    ``training`` as given; built with ``dtype=x.dtype`` so Keras does not cast the input (one
    layer per dtype, configured with the call's parameters: ``_configured_seed_layer``)."""
    x, axes, epsilon, training_flag = check_call(x, axes, scale, offset, epsilon, training)
    layer = _configured_seed_layer(x.dtype.name, scale=scale, offset=offset, axes=axes, epsilon=epsilon)
    return np.asarray(layer(x, training=training))


# -- gradients (the contract's ``vjp``), through tf.GradientTape -------------------------


def _tf_nn_forward(t, g, b, *, axes, epsilon):
    """``tf.nn.moments(keepdims=True)`` + ``tf.nn.batch_normalization`` on tensors."""
    from bn_reference.subjects._tf import tf

    mean, var = tf.nn.moments(t, list(axes), keepdims=True)
    return tf.nn.batch_normalization(t, mean, var, b, g, epsilon)


def _seed_layer_forward(t, g, b, *, axes, epsilon):
    """The seed layer (training=True) with scale and offset passed as watched tensors."""
    from bn_reference.subjects.seed_notebook import SeedBatchNorm

    return SeedBatchNorm(scale=g, offset=b, axes=axes, epsilon=epsilon, dtype=t.dtype.name)(t, training=True)


tf_nn.vjp = tape_vjp(_tf_nn_forward)
seed_layer.vjp = tape_vjp(_seed_layer_forward)
