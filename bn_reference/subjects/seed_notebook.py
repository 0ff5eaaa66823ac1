"""The seed notebook's ``custom_bn`` layer, on TF 2.21 / Keras 3.

The seed (TF 2.1) normalized with ``tf.nn.moments(keepdims=True)`` followed by
``tf.nn.batch_normalization`` and chose between that and the identity with
``tf.cond(training, ...)``. On current TF, ``tf.cond(None, ...)`` raises (``None`` cannot
become a tensor), and Keras 3 calls layers with ``training=None`` whenever nobody sets it.
So ``training`` is resolved in Python: ``None``/``False`` return the input, ``True``
normalizes, and only a symbolic boolean tensor goes through ``tf.cond``.

    y = (x - mu) / sqrt(sigma^2 + eps) * scale + offset      (moments over ``axes``)
"""
from __future__ import annotations

import numpy as np

from bn_reference.subjects._tf import keras, tf

__all__ = ["SeedBatchNorm", "custom_bn"]


def _plain(v):
    """Config-friendly value: numbers stay numbers, arrays become nested lists."""
    if isinstance(v, (np.ndarray, np.generic)):
        return np.asarray(v, dtype=np.float64).tolist()
    if isinstance(v, tf.Tensor):
        return v.numpy().tolist()
    return v


def _as_tensor(v, dtype):
    """``v`` in ``dtype`` with one rounding (``tf.cast`` of a Python float would round to
    float32 first: a float64 layer would then be off by float32's rounding)."""
    if isinstance(v, tf.Tensor):
        return tf.cast(v, dtype)
    return tf.cast(tf.constant(np.asarray(v, dtype=np.float64)), dtype)


@keras.saving.register_keras_serializable(package="bn_props")
class SeedBatchNorm(keras.layers.Layer):
    """Batch normalization over ``axes`` with fixed ``scale`` and ``offset`` (the seed's layer).

    Parameters are the seed's: ``scale=1``, ``offset=0``, ``axes=[0]`` (passed to
    ``tf.nn.moments``: the REDUCED axes), plus ``epsilon=0.001``, the seed's constant.
    """

    def __init__(self, scale=1, offset=0, axes=(0,), epsilon=0.001, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.axes = list(axes)
        self.epsilon = epsilon

    def batch_norm_fn(self, inputs):
        mean, variance = tf.nn.moments(inputs, self.axes, keepdims=True)
        return tf.nn.batch_normalization(
            inputs,
            mean=mean,
            variance=variance,
            offset=_as_tensor(self.offset, inputs.dtype),
            scale=_as_tensor(self.scale, inputs.dtype),
            variance_epsilon=self.epsilon,
        )

    def call(self, inputs, training=None):
        if training is None or training is False:
            return inputs
        if training is True:
            return self.batch_norm_fn(inputs)
        # A symbolic boolean (e.g. a tf.function argument): only then is tf.cond right.
        return tf.cond(tf.cast(training, tf.bool), lambda: self.batch_norm_fn(inputs), lambda: tf.identity(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(scale=_plain(self.scale), offset=_plain(self.offset), axes=list(self.axes), epsilon=self.epsilon)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("scale", "offset"):
            if isinstance(config.get(key), list):
                config[key] = np.asarray(config[key])
        return cls(**config)


custom_bn = SeedBatchNorm  # the seed notebook's name
