"""The smallest possible subject: a user's NumPy batch norm, checked without changing bn-props::

    pytest --bn-impl examples.numpy_bn:batch_norm -n auto

It declares float64 support too and exposes its moments, so the moment properties
(decomposition, parallel merge) check them as well, and its hand-written backward pass
(``vjp``, the gradient contract), so the gradient properties check that too.
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


def _sum_to(a, like):
    """Sum ``a`` down to the shape of the parameter ``like`` (a float: the sum of everything)."""
    if np.ndim(like) == 0 and not isinstance(like, np.ndarray):
        return float(a.sum())
    shape = np.shape(like)
    lead = a.ndim - len(shape)
    a = a.sum(axis=tuple(range(lead))) if lead else a
    ones = tuple(i for i, s in enumerate(shape) if s == 1 and a.shape[i] != 1)
    return (a.sum(axis=ones, keepdims=True) if ones else a).reshape(shape).astype(np.asarray(like).dtype)


def vjp(x, dy, *, axes, scale, offset, epsilon):
    """The backward pass by hand: with x_hat = (x - mean) / sqrt(var + eps),
    dx = scale / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat)),
    dscale = sum(dy * x_hat), doffset = sum(dy), summed to the parameters' shapes."""
    mean, var = moments(x, axes=axes)
    inv = 1 / np.sqrt(var + x.dtype.type(epsilon))
    x_hat = (x - mean) * inv
    m1 = dy.mean(axis=axes, keepdims=True)
    m2 = (dy * x_hat).mean(axis=axes, keepdims=True)
    dx = np.asarray(scale, dtype=x.dtype) * inv * (dy - m1 - x_hat * m2)
    return dx.astype(x.dtype), _sum_to(dy * x_hat, scale), _sum_to(dy, offset)


batch_norm.vjp = vjp
