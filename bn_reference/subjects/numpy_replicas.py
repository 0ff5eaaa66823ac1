"""A synchronized batch norm in NumPy: the replicas contract's example (``bn_replicas``).

Check it (or your copy of it)::

    pytest properties/test_replicas.py --bn-impl bn_reference.subjects.numpy_replicas:sync_batch_norm

What R replicas on R devices do, in one process: each replica computes its shard's count,
mean and variance (``local_moments``: two-pass, accumulated in float32 for
float16/bfloat16); the replicas exchange them (an all-gather of three numbers per feature,
what ``torch.distributed.all_gather`` or ``jax.lax.all_gather`` carries) and each merges
them with Chan's formula (``chan_merge``); then each normalizes its own shard with the
merged moments. An empty shard (a replica with no examples) has no moments and is left out
of the merge; its output is empty. ``examples/torch_sync_bn.py`` is the same over
``torch.distributed`` (gloo, one process per replica).
"""
from __future__ import annotations

import numpy as np

from bn_reference.mathematics.replicas import check_replica_call

__all__ = ["REPLICAS", "local_moments", "chan_merge", "replicas_bn", "sync_batch_norm"]

REPLICAS = 3
_HALF = ("float16", "bfloat16")


def _compute_dtype(dtype) -> np.dtype:
    """float32 for float16/bfloat16 (the reductions and the elementwise stage), else x's dtype."""
    return np.dtype(np.float32) if np.dtype(dtype).name in _HALF else np.dtype(dtype)


def local_moments(shard: np.ndarray, axes) -> tuple[int, np.ndarray, np.ndarray]:
    """``(n, mean, var)`` of one shard over ``axes`` (keepdims; biased variance, two-pass)."""
    xf = shard.astype(_compute_dtype(shard.dtype))
    n = int(np.prod([shard.shape[a] for a in axes]))
    mean = xf.mean(axis=axes, keepdims=True)
    return n, mean, np.square(xf - mean).mean(axis=axes, keepdims=True)


def chan_merge(parts):
    """Chan, Golub and LeVeque's pairwise update, left to right over the non-empty parts:
    ``delta = m_b - m_a``, ``m = m_a + delta n_b / n``, ``M2 = M2_a + M2_b + delta^2 n_a n_b / n``
    (in variances: ``v = (n_a v_a + n_b v_b + delta^2 n_a n_b / n) / n``)."""
    n, m, v = parts[0]
    for nb, mb, vb in parts[1:]:
        total = n + nb
        delta = mb - m
        m = m + delta * (nb / total)
        v = (n * v + nb * vb + np.square(delta) * (n * nb / total)) / total
        n = total
    return n, m, v


def replicas_bn(shards, *, axes, scale, offset, epsilon, training, replicas: int = REPLICAS, merge=chan_merge, moments=local_moments):
    """The skeleton: validate, per-shard moments (``moments(shard, axes) -> (n, mean, var)``),
    ``merge`` them (``merge(parts) -> (n, mean, var)``, parts ``(n_i, mean_i, var_i)`` of the
    non-empty shards), normalize each shard."""
    shards, axes, epsilon, normalize = check_replica_call(shards, replicas, axes, scale, offset, epsilon, training)
    if not normalize:
        return [s.copy() for s in shards]
    parts = [moments(s, axes) for s in shards if s.shape[axes[0]]]
    if not parts:  # no examples anywhere: nothing to normalize
        return [s.copy() for s in shards]
    _, mean, var = merge(parts)
    dtype = _compute_dtype(shards[0].dtype)
    inv = 1 / np.sqrt(var + dtype.type(epsilon))
    gamma, beta = (np.asarray(np.asarray(p, dtype=np.float64), dtype=dtype) for p in (scale, offset))
    return [((s.astype(dtype) - mean) * inv * gamma + beta).astype(s.dtype) for s in shards]


def sync_batch_norm(shards, *, axes, scale, offset, epsilon, training):
    """Synchronized batch norm over 3 replicas: Chan's merge of the shards' moments."""
    return replicas_bn(shards, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)


sync_batch_norm.bn_replicas = REPLICAS
sync_batch_norm.bn_dtypes = ("float32", "float64", "float16", "bfloat16")
