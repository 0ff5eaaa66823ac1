"""Synchronized batch norm over ``torch.distributed``: R replicas, R processes, gloo.

The replicas contract (``bn_replicas = R``, ``docs/subjects.md``): the suite hands the
batch as R shards, and each shard goes to its own process. The R processes form one gloo
process group on this machine; each computes its shard's count, mean and variance
(``torch.var_mean``, float32 for float16/bfloat16), the group exchanges them with ONE
``all_gather`` (three numbers per feature and replica), and every replica merges them
(``n = sum n_i``, ``mean = sum n_i m_i / n``, ``var = sum n_i (v_i + (m_i - mean)^2) / n``:
Chan's merge of all R at once) and normalizes its own shard::

    pytest properties/test_replicas.py --bn-impl examples.torch_sync_bn:torch_sync_bn -n 0

The group is started once, at the first call, and reused by every call after it (a worker
is fed through a pipe: the shard, the call's arguments; it answers with its output); it is
shut down at exit (``atexit``: each worker leaves the group and ends; a worker that does not
is terminated). A call interrupted half-way (the harness's per-call timeout) shuts the group
down, and the next call starts a fresh one.

Why not ``torch.nn.SyncBatchNorm``: on CPU tensors it refuses to synchronize.
``SyncBatchNorm.forward`` (``torch/nn/modules/batchnorm.py``, torch 2.13) raises
``ValueError("SyncBatchNorm expected input tensor to be on GPU or XPU or privateuseone")``
whenever a process group is initialized and the input's device is not cuda, hpu, xpu or
the private-use backend; its merge (``torch.batch_norm_gather_stats_with_counts``) runs in
the CUDA kernels. So this example does what SyncBatchNorm does, in plain ``torch`` ops
and ``torch.distributed.all_gather``, on the CPU.

PyTorch is an optional dependency (``pip install "bn-props[torch]"``).
"""
from __future__ import annotations

import atexit
import multiprocessing
import socket

import numpy as np

from bn_reference.mathematics.replicas import check_replica_call

__all__ = ["REPLICAS", "torch_sync_bn", "shutdown"]

REPLICAS = 2  # the machine has few cores: 2 processes, idle between calls
_START_SECONDS = 120.0  # importing torch and joining the group, in every worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# The worker: one replica, one process
# ---------------------------------------------------------------------------------------


def _to_torch(a: np.ndarray):
    import torch

    a = np.ascontiguousarray(a)
    if a.dtype.name == "bfloat16":  # torch.from_numpy knows no bfloat16: through its bits
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _to_numpy(t, dtype: np.dtype) -> np.ndarray:
    import torch

    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(dtype)
    return t.numpy()


def _replica_step(dist, shard: np.ndarray, axes, scale, offset, epsilon, replicas: int) -> np.ndarray:
    """One replica's share of a training call: local moments, all_gather, merge, normalize."""
    import torch

    x = _to_torch(shard)
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xf = x.to(compute)
    keep = [1 if a in axes else s for a, s in enumerate(shard.shape)]
    n = float(np.prod([shard.shape[a] for a in axes]))
    if n:
        var, mean = torch.var_mean(xf, dim=axes, correction=0, keepdim=True)
    else:  # a replica with no examples: count 0, no moments (and no NaN into the merge)
        var = mean = torch.zeros(keep, dtype=compute)
    local = torch.stack([torch.full(keep, n, dtype=compute), mean, var])
    gathered = [torch.empty_like(local) for _ in range(replicas)]
    dist.all_gather(gathered, local)
    counts, means, variances = torch.stack(gathered).unbind(1)  # each (R, *keep)
    total = counts.sum(0)
    merged_mean = (counts * means).sum(0) / total
    merged_var = (counts * (variances + (means - merged_mean) ** 2)).sum(0) / total
    gamma, beta = (torch.as_tensor(np.asarray(p, dtype=np.float64)).to(compute) for p in (scale, offset))
    y = (xf - merged_mean) * torch.rsqrt(merged_var + epsilon) * gamma + beta
    return _to_numpy(y.to(x.dtype), shard.dtype)


def _worker(rank: int, replicas: int, port: int, conn) -> None:
    """Join the group, then answer requests until told to stop (``None``)."""
    import ml_dtypes  # noqa: F401  (bfloat16 arrays arrive pickled)
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=replicas)
    conn.send("ready")
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the parent is gone without saying so
                break
            if request is None:
                break
            try:
                conn.send(("ok", _replica_step(dist, *request, replicas)))
            except Exception as exc:  # noqa: BLE001 - the caller raises it
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        dist.destroy_process_group()
        conn.close()


# ---------------------------------------------------------------------------------------
# The group, started once per process and reused
# ---------------------------------------------------------------------------------------


class _Group:
    def __init__(self, replicas: int):
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
        port = _free_port()
        self.conns, self.procs = [], []
        for rank in range(replicas):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(rank, replicas, port, there), daemon=True, name=f"torch_sync_bn-{rank}")
            proc.start()
            there.close()
            self.conns.append(here)
            self.procs.append(proc)
        for rank, conn in enumerate(self.conns):
            if not conn.poll(_START_SECONDS) or conn.recv() != "ready":
                self.close()
                raise RuntimeError(f"torch_sync_bn: replica {rank} did not join the gloo group within {_START_SECONDS:g} s")

    def run(self, shards, axes, scale, offset, epsilon):
        for conn, shard in zip(self.conns, shards):
            conn.send((shard, axes, scale, offset, epsilon))
        answers = [conn.recv() for conn in self.conns]
        errors = [f"replica {i}: {msg}" for i, (status, msg) in enumerate(answers) if status == "error"]
        if errors:
            raise RuntimeError("torch_sync_bn: " + "; ".join(errors))
        return [y for _, y in answers]

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        for conn in self.conns:
            conn.close()


_group: _Group | None = None


def _the_group() -> _Group:
    global _group
    if _group is None:
        _group = _Group(REPLICAS)
    return _group


def shutdown() -> None:
    """Stop the replicas (registered with ``atexit``; safe to call twice)."""
    global _group
    group, _group = _group, None
    if group is not None:
        group.close()


atexit.register(shutdown)


def torch_sync_bn(shards, *, axes, scale, offset, epsilon, training):
    """Synchronized batch norm of ``REPLICAS`` shards over torch.distributed (gloo)."""
    shards, axes, epsilon, normalize = check_replica_call(shards, REPLICAS, axes, scale, offset, epsilon, training)
    if not normalize:
        return [s.copy() for s in shards]
    group = _the_group()
    try:
        return group.run([np.ascontiguousarray(s) for s in shards], list(axes), scale, offset, epsilon)
    except BaseException:
        shutdown()  # interrupted half-way (a timeout): the pipes hold stale answers; start afresh next call
        raise


torch_sync_bn.bn_replicas = REPLICAS
torch_sync_bn.bn_dtypes = ("float32", "float64", "float16", "bfloat16")
