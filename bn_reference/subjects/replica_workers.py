"""What the framework replicas subjects share (``flax_replicas``, ``keras_replicas``): a child
process that owns R devices, and the shards' way in and out of it.

A framework creates its devices when its runtime starts (XLA's host devices from
``XLA_FLAGS``, TensorFlow's logical CPUs from ``tf.config``), before any computation: R
replicas need a process of their own, started with the right environment. ``ReplicaWorker``
is ``keras_backends``' pipe worker (pickle frames, restarted when it dies, closed at exit)
running another module with another environment. ``blocks`` rearranges each shard to (K,
n_i, ...) (``_framework.kept_last``: K kept positions first, then the reduced sides, the split
axis first of them), where a framework's BatchNorm over axis 0's complement is the contract's
reduction; ``outputs`` maps the child's results back and applies the contract's affine step
per kept position in x's dtype (``_framework.affine_after``).
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import subprocess
import sys

from bn_reference.subjects._framework import FrameworkMissing, affine_after, kept_last
from bn_reference.subjects.keras_backends import _Worker

__all__ = ["ReplicaWorker", "worker", "blocks", "outputs"]


class ReplicaWorker(_Worker):
    """``python -m module`` with ``BN_REPLICAS=R`` and ``env`` added to this process's environment."""

    def __init__(self, module: str, replicas: int, label: str, env: dict[str, str]):
        super().__init__(label)
        self.label = f"{label} ({replicas} replicas)"
        self.module, self.replicas, self.env = module, replicas, env

    def _start(self):
        env = {**os.environ, **self.env, "BN_REPLICAS": str(self.replicas)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )


_WORKERS: dict[str, ReplicaWorker] = {}


def worker(module: str, replicas: int, label: str, env: dict[str, str], needs: tuple[str, ...], extra: str) -> ReplicaWorker:
    """The (lazily started) worker running ``module``; the frameworks ``needs`` must be installed
    (looked up, not imported: they run in the child only)."""
    if module not in _WORKERS:
        for name in needs:
            if importlib.util.find_spec(name) is None:
                raise FrameworkMissing(f'{label} needs {name}, which is not installed: pip install "bn-props[{extra}]"')
        _WORKERS[module] = ReplicaWorker(module, replicas, label, env)
    return _WORKERS[module]


@atexit.register
def close_all() -> None:
    for w in _WORKERS.values():
        w.close()


def blocks(shards, axes):
    """Each shard as (K, n_i, ...) and the function that maps a result of that shape back."""
    return [kept_last(s, axes) for s in shards]


def outputs(results, arranged, shards, scale, offset) -> list:
    """The child's (K, n_i, ...) results, back in each shard's shape, times ``scale`` plus
    ``offset`` in the shard's dtype."""
    return [affine_after(undo(y), scale, offset, s.dtype) for y, (_, undo), s in zip(results, arranged, shards)]
