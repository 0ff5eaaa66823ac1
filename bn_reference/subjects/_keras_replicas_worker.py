"""The child process behind ``keras_replicas``: Keras 3 ``BatchNormalization(synchronized=True)``
on TensorFlow, under a ``tf.distribute.MirroredStrategy`` over R logical CPU devices.

Logical devices must be configured before TensorFlow initializes its runtime, so R replicas
need a process of their own (the parent's TensorFlow, if any, has one CPU device). The parent
starts this module with ``BN_REPLICAS=R`` and ``KERAS_BACKEND=tensorflow``.

Protocol (pickle frames, as ``_keras_worker``): the parent writes ``(op, payload)`` to stdin;
the child answers ``("ok", result)`` or ``("error", "TypeName: message")`` on the file
descriptor it was started with as stdout. ``op``:

* ``"sync_bn"``, payload ``(blocks, epsilon)``: ``blocks`` the R shards, each rearranged to
  (K, n_i, ...) (K kept positions first; n_i may differ, and be 0). Replica i gets block i
  (``experimental_distribute_values_from_function``) and runs
  ``BatchNormalization(axis=0, synchronized=True, momentum=0, center=False, scale=False)``
  with ``training=True`` (built once per (rank, K, dtype) under the strategy's scope);
  Keras all-reduces the replicas' sums, sums of squares and counts. Returns the R outputs.
* ``"version"``: ``(keras.__version__, tf.__version__, replica count)``.
"""
from __future__ import annotations

import functools
import os

from bn_reference.subjects._pipe_worker import run


def _ops() -> dict:
    import tensorflow as tf

    replicas = int(os.environ["BN_REPLICAS"])
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    import keras
    import numpy as np

    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])

    @functools.lru_cache(maxsize=64)
    def layer_for(ndim, k, dtype):
        with strategy.scope():
            layer = keras.layers.BatchNormalization(axis=0, synchronized=True, momentum=0.0, center=False, scale=False, dtype=dtype)
            layer.build((k,) + (1,) * (ndim - 1))
        return layer

    def sync_bn(blocks, epsilon):
        first = blocks[0]
        layer = layer_for(first.ndim, first.shape[0], first.dtype.name)
        layer.epsilon = float(epsilon)
        values = strategy.experimental_distribute_values_from_function(lambda ctx: tf.constant(blocks[ctx.replica_id_in_sync_group]))
        outputs = strategy.run(lambda t: layer(t, training=True), args=(values,))
        return [np.asarray(y) for y in strategy.experimental_local_results(outputs)]

    ops = {"sync_bn": sync_bn, "version": lambda: (keras.__version__, tf.__version__, strategy.num_replicas_in_sync)}
    return ops


def main() -> None:
    run(_ops)


if __name__ == "__main__":
    main()
