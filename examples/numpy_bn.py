"""The smallest possible subject: a user's NumPy batch norm, checked without changing bn-props::

    pytest --bn-impl examples.numpy_bn:batch_norm -n auto

It declares float64 support too and exposes its moments, so the moment properties
(decomposition, parallel merge) check them as well.
"""
import numpy as np


def moments(x, *, axes):
    mean = x.mean(axis=axes, keepdims=True)
    return mean, np.square(x - mean).mean(axis=axes, keepdims=True)


def batch_norm(x, *, axes, scale, offset, epsilon, training):
    if not training:
        return x.copy()
    mean, var = moments(x, axes=axes)
    y = (x - mean) / np.sqrt(var + x.dtype.type(epsilon))
    return (y * np.asarray(scale, dtype=x.dtype) + np.asarray(offset, dtype=x.dtype)).astype(x.dtype)


batch_norm.bn_dtypes = ("float32", "float64")
batch_norm.moments = moments
