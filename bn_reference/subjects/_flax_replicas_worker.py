"""The child process behind ``flax_replicas``: Flax's synchronized ``BatchNorm`` over R host
CPU devices, serving calls over a pipe.

XLA creates its host devices when JAX initializes its backend, from
``XLA_FLAGS=--xla_force_host_platform_device_count=R``: the flag must be in the environment
before ``jax`` is imported, so R devices need a process of their own (the parent's JAX, if
any, has one device). The parent starts this module with ``BN_REPLICAS=R`` and the flag set.

Protocol (pickle frames, as ``_keras_worker``): the parent writes ``(op, payload)`` to stdin;
the child answers ``("ok", result)`` or ``("error", "TypeName: message")`` on the file
descriptor it was started with as stdout. ``op``:

* ``"sync_bn"``, payload ``(stacked, mask, epsilon, fast)``: ``stacked`` is (R, K, L, ...),
  replica i's shard rearranged to (K, n_i, ...) (K kept positions first) and padded to L
  along axis 1; ``mask`` (R, 1, L, 1, ...) marks the real examples. Under
  ``jax.shard_map`` over a mesh axis ``"r"`` of the R devices, each device runs
  ``BatchNorm(axis=0, axis_name="r", use_running_average=False, use_scale=False,
  use_bias=False, use_fast_variance=fast)`` on its (K, L, ...) block with its ``mask``:
  Flax's own synchronization (``lax.pmean`` inside ``_compute_stats``). Returns (R, K, L, ...).
* ``"version"``: ``(jax.__version__, flax.__version__, device count)``.
"""
from __future__ import annotations

import functools
import os

from bn_reference.subjects._pipe_worker import run


def _ops() -> dict:
    os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 stays float64 (as jax_nn.py runs it)
    import flax
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec

    replicas = int(os.environ["BN_REPLICAS"])
    devices = jax.devices()
    if len(devices) < replicas:
        raise RuntimeError(f"{len(devices)} devices for {replicas} replicas: XLA_FLAGS was not set before jax was imported")
    mesh = Mesh(np.array(devices[:replicas]), ("r",))

    @functools.lru_cache(maxsize=8)
    def program(fast: bool):
        def per_replica(block, mask, epsilon):
            layer = nn.BatchNorm(
                use_running_average=False, axis=0, momentum=0.0, epsilon=epsilon, use_bias=False, use_scale=False,
                axis_name="r", use_fast_variance=fast,
            )
            x, m = block[0], mask[0]
            k = x.shape[0]
            stats = {"batch_stats": {"mean": jnp.zeros((k,), jnp.float32), "var": jnp.ones((k,), jnp.float32)}}
            y, _ = layer.apply(stats, x, mask=m, mutable=["batch_stats"])
            return y[None]

        spec = PartitionSpec("r")
        return jax.jit(jax.shard_map(per_replica, mesh=mesh, in_specs=(spec, spec, PartitionSpec()), out_specs=spec))

    def sync_bn(stacked, mask, epsilon, fast):
        return np.asarray(program(bool(fast))(stacked, mask, epsilon))

    ops = {"sync_bn": sync_bn, "version": lambda: (jax.__version__, flax.__version__, len(devices))}
    return ops


def main() -> None:
    run(_ops)


if __name__ == "__main__":
    main()
