"""Flax's synchronized batch norm, ``flax.linen.BatchNorm(axis_name=...)`` under
``jax.shard_map`` over R host CPU devices, as a replicas subject (``bn_replicas = R``;
``pip install "bn-props[flax]"``)::

    pytest properties/test_replicas.py --bn-impl bn_reference.subjects.flax_replicas:flax_sync_batch_norm

R devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=R`` before ``jax`` is
imported, so the layer runs in a child process of its own
(``bn_reference.subjects._flax_replicas_worker``; started at the first call, kept for the
life of this process, closed at exit: ``replica_workers``).

``shard_map`` gives every device a block of one shape, and the replicas contract's shards
are of unequal sizes (some empty): each shard is rearranged to (K, n_i, ...) (K kept
positions, ``_framework.kept_last``; the split axis, the first reduced one, comes first of the
reduced sides), padded to a common length L along it (L a power of two: few shapes, few
compilations) and the padding masked out with the layer's own ``mask`` argument (positions
for which the statistics are computed). The affine step runs after, per kept position, in
x's dtype (the layer is built with ``use_scale=False, use_bias=False``, as in ``flax_linen``).

What Flax synchronizes (``flax/linen/normalization.py``, ``_compute_stats()``,
``maybe_distributed_mean``): each device's ``x.mean(axes, where=mask)`` (and the mean of
``|x|^2`` with ``use_fast_variance=True``, the default), then ``lax.pmean`` over
``axis_name``: the replicas' means averaged with EQUAL weights, whatever the number of
examples each holds. Right for equal shards; for unequal ones the moments are not the
batch's, and a replica with no examples contributes a mean over no element, NaN, which
``pmean`` spreads to every replica. Both are recorded as a deviation of the merge and split
laws (``bn_reference/subjects/deviations.py``).
"""
from __future__ import annotations

import numpy as np

from bn_reference.mathematics.replicas import check_replica_call
from bn_reference.subjects.replica_workers import blocks, outputs, worker

__all__ = ["REPLICAS", "flax_sync_batch_norm", "flax_sync_batch_norm_two_pass", "LIBRARY"]

LIBRARY = "flax"
REPLICAS = 2
_ENV = {
    "XLA_FLAGS": f"--xla_force_host_platform_device_count={REPLICAS}",  # before jax is imported: the child's own
    "JAX_PLATFORMS": "cpu",
    "JAX_ENABLE_X64": "1",
}


def _worker():
    return worker("bn_reference.subjects._flax_replicas_worker", REPLICAS, "flax_sync_batch_norm", _ENV, ("jax", "flax"), "flax")


def _padded_length(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()  # the power of two >= max(n, 1)


def _sync(shards, axes, scale, offset, epsilon, training, fast: bool):
    shards, axes, epsilon, normalize = check_replica_call(shards, REPLICAS, axes, scale, offset, epsilon, training)
    if not normalize:
        return [s.copy() for s in shards]
    arranged = blocks(shards, axes)  # (K, n_i, ...)
    sizes = [a.shape[1] for a, _ in arranged]
    block = arranged[0][0].shape
    length = _padded_length(max(sizes))
    stacked = np.zeros((REPLICAS, block[0], length, *block[2:]), dtype=shards[0].dtype)
    mask = np.zeros((REPLICAS, 1, length) + (1,) * len(block[2:]), dtype=bool)
    for i, ((a, _), n) in enumerate(zip(arranged, sizes)):
        stacked[i, :, :n] = a
        mask[i, :, :n] = True
    y = _worker().call("sync_bn", stacked, mask, epsilon, fast)
    return outputs([y[i, :, :n] for i, n in enumerate(sizes)], arranged, shards, scale, offset)


def flax_sync_batch_norm(shards, *, axes, scale, offset, epsilon, training):
    """``flax.linen.BatchNorm(axis_name="r")`` under ``jax.shard_map``, ``use_fast_variance=True`` (Flax's default)."""
    return _sync(shards, axes, scale, offset, epsilon, training, fast=True)


def flax_sync_batch_norm_two_pass(shards, *, axes, scale, offset, epsilon, training):
    """The same with ``use_fast_variance=False`` (two-pass statistics)."""
    return _sync(shards, axes, scale, offset, epsilon, training, fast=False)


for _subject in (flax_sync_batch_norm, flax_sync_batch_norm_two_pass):
    _subject.bn_replicas = REPLICAS
    _subject.bn_dtypes = ("float32", "float64", "float16", "bfloat16")
    _subject.bn_library = LIBRARY
    _subject.bn_api = f"flax.linen.BatchNorm(axis_name, use_fast_variance={_subject is flax_sync_batch_norm}), shard_map"
