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


@supports("float32", "float64", "float16", "bfloat16", moments=_tf_moments)
def seed_layer(x, *, axes, scale, offset, epsilon, training):
    """The seed notebook's layer (``bn_reference.subjects.seed_notebook.SeedBatchNorm``) called eagerly with
    ``training`` as given; built with ``dtype=x.dtype`` so Keras does not cast the input."""
    from bn_reference.subjects.seed_notebook import SeedBatchNorm

    x, axes, epsilon, training_flag = check_call(x, axes, scale, offset, epsilon, training)
    layer = SeedBatchNorm(scale=scale, offset=offset, axes=axes, epsilon=epsilon, dtype=x.dtype.name)
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
