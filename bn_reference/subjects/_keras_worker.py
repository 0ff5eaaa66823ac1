"""The child process behind ``keras_backends``: Keras 3 on the backend named by
``KERAS_BACKEND`` (fixed per process), serving normalization calls over a pipe.

Protocol (pickle frames): the parent writes ``(op, payload)`` to the child's stdin; the child
answers ``("ok", result)`` or ``("error", "TypeName: message")`` on the file descriptor it
was started with as stdout (its own ``sys.stdout`` then goes to stderr, so nothing Keras
prints can corrupt a frame). ``op`` is ``"batch_norm"`` or ``"layer_norm"`` (payload
``(a, gamma, beta, epsilon)``, ``a`` already rearranged to (K, *R) by the parent), or
``"bn_moments"``/``"ln_moments"`` (payload ``(a,)``), ``"rms_norm"``/``"ops_rms_norm"``
(payload ``(a, scale, epsilon)``: ``keras.layers.RMSNormalization`` / ``keras.ops.rms_normalization``,
``bn_reference.subjects._keras_rms``), or ``"version"``.

* ``batch_norm``: ``keras.layers.BatchNormalization(axis=0, momentum=0.0, dtype=a.dtype)``
  (one feature per kept position, reduced over every other axis), gamma and beta assigned,
  called with ``training=True``; ``bn_moments`` reads the moving statistics after such a
  call (momentum 0: an exact copy of the batch moments).
* ``layer_norm``: ``keras.layers.LayerNormalization(axis=[1, ..., ndim-1], center=False,
  scale=False, dtype=a.dtype)``; ``ln_moments``: ``keras.ops.moments`` (what it calls).

Layers are cached per (rank, K, dtype); every call sets what it uses (gamma, beta, epsilon).
"""
from __future__ import annotations

import functools
import os

from bn_reference.subjects._pipe_worker import run


def _ops() -> dict:
    if os.environ.get("KERAS_BACKEND") == "jax":
        # float64 as the other JAX subjects run it (jax_nn.py): with jax_enable_x64 at its
        # default False, JAX silently computes a float64 array in float32 (jax/_src/config.py).
        os.environ.setdefault("JAX_ENABLE_X64", "1")
    import keras
    import numpy as np

    from bn_reference.subjects._keras_rms import keras_rms_ops

    @functools.lru_cache(maxsize=64)
    def bn_layer(ndim, k, dtype):
        layer = keras.layers.BatchNormalization(axis=0, momentum=0.0, dtype=dtype)
        layer.build((k,) + (1,) * (ndim - 1))
        return layer

    @functools.lru_cache(maxsize=64)
    def ln_layer(ndim, dtype):
        return keras.layers.LayerNormalization(axis=list(range(1, ndim)), center=False, scale=False, dtype=dtype)

    def numpy(t):
        return np.asarray(keras.ops.convert_to_numpy(t))

    def batch_norm(a, gamma, beta, epsilon):
        layer = bn_layer(a.ndim, a.shape[0], a.dtype.name)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
        layer.epsilon = float(epsilon)
        return numpy(layer(a, training=True))

    def bn_moments(a):
        k = a.shape[0]
        batch_norm(a, np.ones(k, a.dtype), np.zeros(k, a.dtype), 1e-3)
        layer = bn_layer(a.ndim, k, a.dtype.name)
        return numpy(layer.moving_mean), numpy(layer.moving_variance)

    def layer_norm(a, gamma, beta, epsilon):
        layer = ln_layer(a.ndim, a.dtype.name)
        layer.epsilon = float(epsilon)
        return numpy(layer(a))

    def ln_moments(a):
        mean, var = keras.ops.moments(a, axes=list(range(1, a.ndim)), keepdims=True)
        return numpy(mean), numpy(var)

    ops = {
        "batch_norm": batch_norm,
        "layer_norm": layer_norm,
        "bn_moments": bn_moments,
        "ln_moments": ln_moments,
        **keras_rms_ops(keras),
        "version": lambda: (keras.__version__, keras.backend.backend()),
    }
    return ops


def main() -> None:
    run(_ops)


if __name__ == "__main__":
    main()
