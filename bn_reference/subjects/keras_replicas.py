"""Keras 3's synchronized batch norm, ``BatchNormalization(synchronized=True)`` on the
TensorFlow backend under a ``tf.distribute.MirroredStrategy`` over R logical CPU devices, as a
replicas subject (``bn_replicas = R``; ``pip install "bn-props[tensorflow]"``)::

    pytest properties/test_replicas.py --bn-impl bn_reference.subjects.keras_replicas:keras_sync_batch_norm

Logical CPU devices must be configured before TensorFlow starts, so the layer runs in a child
process of its own (``bn_reference.subjects._keras_replicas_worker``, ``replica_workers``).
Each replica gets its shard, rearranged to (K, n_i, ...) (K kept positions: the layer's
``axis=0``), of its own size (MirroredStrategy takes per-replica values of different shapes,
and an empty one); the affine step runs after, per kept position, in x's dtype (the layer is
built with ``center=False, scale=False``). Only TensorFlow synchronizes: on the JAX and PyTorch
backends Keras refuses ``synchronized=True`` (docs/subjects.md).

What Keras synchronizes (``keras/src/backend/tensorflow/nn.py``, ``_compute_moments_sync()``):
each replica's ``reduce_sum(x)``, ``reduce_sum(square(x))`` and count, all-reduced (SUM), then
``mean = sum / count`` and ``variance = max(sum_sq / count - mean^2, 0)``: the replicas
weighted by their counts (right, an empty replica included: ``divide_no_nan``), but the
variance in one pass, ``E[x^2] - E[x]^2``, which cancels at ``|mean| >> std``: outside the
merge bound, as the naive one-pass variance is outside the single-device one
(``tolerance`` item 2). Recorded as a deviation (``bn_reference/subjects/deviations.py``).
"""
from __future__ import annotations

from bn_reference.mathematics.replicas import check_replica_call
from bn_reference.subjects.replica_workers import blocks, outputs, worker

__all__ = ["REPLICAS", "keras_sync_batch_norm", "LIBRARY"]

LIBRARY = "keras"
REPLICAS = 2
_ENV = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def keras_sync_batch_norm(shards, *, axes, scale, offset, epsilon, training):
    """``keras.layers.BatchNormalization(axis=0, synchronized=True)`` in training mode, one replica per shard."""
    shards, axes, epsilon, normalize = check_replica_call(shards, REPLICAS, axes, scale, offset, epsilon, training)
    if not normalize:
        return [s.copy() for s in shards]
    arranged = blocks(shards, axes)
    w = worker("bn_reference.subjects._keras_replicas_worker", REPLICAS, "keras_sync_batch_norm", _ENV, ("tensorflow", "keras"), "tensorflow")
    return outputs(w.call("sync_bn", [a for a, _ in arranged], epsilon), arranged, shards, scale, offset)


keras_sync_batch_norm.bn_replicas = REPLICAS
keras_sync_batch_norm.bn_dtypes = ("float32", "float64", "float16", "bfloat16")
keras_sync_batch_norm.bn_library = (LIBRARY, "tensorflow")
keras_sync_batch_norm.bn_api = "keras.layers.BatchNormalization(synchronized=True)"
