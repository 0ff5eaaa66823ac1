"""PyTorch's normalization functions as subjects (``pip install "bn-props[torch]"``).

=====================  ==============================================  ==============================
subject                call (x rearranged as below, CPU)               refuses (``bn_refuses``)
=====================  ==============================================  ==============================
torch_batch_norm       ``F.batch_norm(x, None, None, weight, bias,     N = 1: "Expected more than 1
                       training=True, eps)`` on (R0, K, R1*...)         value per channel when training"
torch_layer_norm       ``F.layer_norm(x, R, eps=eps)`` on (K, *R),     nothing
                       then * scale + offset
torch_group_norm       ``F.group_norm(x, 1, eps=eps)`` on (K, *R)       x of ONE element: "Expected more
                       (one group), then * scale + offset              than 1 value per channel when
                                                                       training"
torch_instance_norm    ``F.instance_norm(x, weight=, bias=,            N = 1: "Expected more than 1
                       use_input_stats=True, eps)`` on (1, K, *R)      spatial element when training"
torch_rms_norm         ``F.rms_norm(x, R, eps=eps)`` on (K, *R),        nothing
                       then * scale + offset (``bn_norm = "rms"``)
=====================  ==============================================  ==============================

K is the product of the kept sides, R the reduced sides (``_framework.kept_last``): each
API's own reduction is then exactly the contract's, for every axis set. ``batch_norm`` and
``instance_norm`` take the contract's scale and offset as their per-channel weight and
bias (channels = kept positions); ``layer_norm``'s weight is per reduced element and
``group_norm``'s per channel of the reduced axis 1, so those two get none and the affine
step runs after, in x's dtype, in torch. All four dtypes, computed by torch's CPU kernels.

**The elementwise stage in float32** (``bn_elementwise = "float32"``: ``torch_batch_norm``,
``torch_instance_norm``). For a float16/bfloat16 input these two pass the contract's scale
and offset to torch in float32, as mixed-precision training keeps them, which selects the
CPU kernel's mixed-type path (``aten/src/ATen/native/cpu/batch_norm_kernel.cpp``:
``batch_norm_cpu_collect_linear_and_constant_terms<param_t = float, opmath_t = float>``
forms ``alpha = invstd * weight`` and ``beta = bias - mean * alpha`` in float32 from the
float32 ``save_mean``/``save_invstd``; ``batch_norm_cpu_contiguous_impl`` then computes
``x * alpha + beta`` in float32 (``Vectorized<float>``) and rounds once to x's dtype).
Measured under ``ci``: every law passes at the stricter bound, worst err/bound 0.99-1.0 in
half precision (the final rounding, which the bound is). With half-precision weights the
kernel keeps the mean and invstd in x's dtype (``param_t = BFloat16``) and fails that bound
at err/bound 1.1-1.4: the default contract's (the elementwise stage in x's dtype), which
the other three, whose affine step runs after the kernel in x's dtype, are held to.

The refusals are the libraries' own checks (``torch/nn/functional.py``):
``_verify_batch_size(size)`` raises when ``size[0] * prod(size[2:]) == 1`` (called by
``batch_norm`` in training, and by ``group_norm`` on ``[N * C // G, G, *spatial]``, so
group_norm refuses only an input of one element in all); ``_verify_spatial_size`` raises
for ``instance_norm`` when ``prod(size[2:]) == 1``. Each declares exactly that
(``bn_refuses``); the property suite checks the refusal once and draws no refused input
elsewhere.

Each subject's forward pass is a torch function ``forward(x, scale, offset, *, axes,
epsilon)`` on tensors (``FORWARDS``), so the gradient adapter attaches with one line:
``torch_batch_norm.vjp = autodiff.torch_vjp(FORWARDS["torch_batch_norm"])``.
"""
from __future__ import annotations

import numpy as np

from bn_reference.subjects import check_call
from bn_reference.subjects._framework import refuse_when, require
from bn_reference.subjects.autodiff import torch_vjp

torch = require("torch", "torch")
F = require("torch.nn.functional", "torch")
# One intra-op thread: the suite's inputs are tiny, and torch's thread pool on a busy machine
# (pytest-xdist workers on every core) turned a 10 us kernel into 20-150 ms
# (benchmarks/bench_frameworks.py). The results do not depend on it: the same kernels run.
torch.set_num_threads(1)

__all__ = ["torch_batch_norm", "torch_layer_norm", "torch_group_norm", "torch_instance_norm", "torch_rms_norm", "FORWARDS", "LIBRARY"]

LIBRARY = "torch"
DTYPES = ("float32", "float64", "float16", "bfloat16")


# --------------------------------------------------------------------------------------
# Layout on tensors: kept axes first (flattened to K), reduced axes after
# --------------------------------------------------------------------------------------


def _kept_last(t, axes):
    """``t`` permuted to (kept..., reduced...) and reshaped to (K, *R); returns it and undo."""
    # a set, and no np.argsort: torch.compile traces this function (bn_reference.subjects.inductor),
    # and under dynamic=True Dynamo (torch 2.13) evaluated ``0 not in (0,)`` as True, giving a
    # rank-1 x the permutation (0, 0); membership in a set traces right
    reduced = set(axes)
    kept = tuple(a for a in range(t.ndim) if a not in reduced)
    perm = kept + tuple(axes)
    p = t.permute(perm)
    inverse = tuple(perm.index(i) for i in range(len(perm)))
    k = 1
    for a in kept:
        k *= t.shape[a]
    # contiguous: torch's CPU norm kernels take a generic path on strided inputs that costs
    # milliseconds instead of microseconds (benchmarks/bench_frameworks.py)
    arranged = p.reshape((k,) + tuple(t.shape[a] for a in axes)).contiguous()

    def undo(y):
        return y.reshape(p.shape).permute(inverse)

    return arranged, undo


def _per_channel(p, t, axes):
    """A scale/offset tensor (broadcastable to t, size 1 on the reduced axes) as the vector
    over t's kept positions (length K, C order)."""
    reduced = set(axes)  # a set: see _kept_last
    if p.ndim == 0:  # a Python float: one value for every channel
        k = 1
        for a in range(t.ndim):
            k *= 1 if a in reduced else t.shape[a]
        return p.expand(k)
    keep = tuple(1 if a in reduced else d for a, d in enumerate(t.shape))
    return _kept_last(torch.broadcast_to(p, keep), axes)[0].reshape(-1)


# --------------------------------------------------------------------------------------
# Forward passes on tensors (training mode)
# --------------------------------------------------------------------------------------


def batch_norm_forward(x, scale, offset, *, axes, epsilon):
    """``F.batch_norm`` on (R0, K, R1*R2*...): reduces over axes 0 and 2, i.e. over A."""
    a, undo = _kept_last(x, axes)
    k, r = a.shape[0], a.shape[1:]
    rest = 1
    for s in r[1:]:
        rest *= s
    nc = a.reshape(k, r[0], rest).transpose(0, 1).contiguous()  # (R0, K, rest)
    y = F.batch_norm(nc, None, None, _per_channel(scale, x, axes), _per_channel(offset, x, axes), training=True, eps=epsilon)
    return undo(y.transpose(0, 1).reshape(a.shape))


def layer_norm_forward(x, scale, offset, *, axes, epsilon):
    """``F.layer_norm`` over the trailing reduced sides of (K, *R), then * scale + offset."""
    a, undo = _kept_last(x, axes)
    return undo(F.layer_norm(a, tuple(a.shape[1:]), eps=epsilon)) * scale + offset


def group_norm_forward(x, scale, offset, *, axes, epsilon):
    """``F.group_norm(num_groups=1)`` on (K, *R): per batch entry (a kept position), over
    every channel and spatial element (A); then * scale + offset."""
    a, undo = _kept_last(x, axes)
    return undo(F.group_norm(a, 1, eps=epsilon)) * scale + offset


def instance_norm_forward(x, scale, offset, *, axes, epsilon):
    """``F.instance_norm`` on (1, K, *R): per channel (a kept position), over the spatial
    elements (A); weight and bias per channel."""
    a, undo = _kept_last(x, axes)
    y = F.instance_norm(
        a.unsqueeze(0), None, None, _per_channel(scale, x, axes), _per_channel(offset, x, axes), use_input_stats=True, eps=epsilon
    )
    return undo(y[0])


def rms_norm_forward(x, scale, offset, *, axes, epsilon):
    """``F.rms_norm`` over the trailing reduced sides of (K, *R) (no weight), then * scale +
    offset: RMSNorm (``bn_norm = "rms"``)."""
    a, undo = _kept_last(x, axes)
    return undo(F.rms_norm(a, tuple(a.shape[1:]), eps=epsilon)) * scale + offset


FORWARDS = {
    "torch_rms_norm": rms_norm_forward,
    "torch_batch_norm": batch_norm_forward,
    "torch_layer_norm": layer_norm_forward,
    "torch_group_norm": group_norm_forward,
    "torch_instance_norm": instance_norm_forward,
}


# --------------------------------------------------------------------------------------
# NumPy <-> torch, and the contract around a forward pass
# --------------------------------------------------------------------------------------


def to_tensor(a, dtype: np.dtype):
    """An ndarray (or float) as a CPU tensor of ``dtype``; bfloat16 through its bits. Any
    memory layout is accepted: ``torch.from_numpy`` refuses negative strides and would share
    a read-only buffer, so the array is copied to C order first (``np.ascontiguousarray``
    after ``astype``), and torch sees a contiguous tensor."""
    a = np.asarray(np.asarray(a, dtype=np.float64) if np.ndim(a) == 0 else a).astype(dtype)
    if dtype.name == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a))


def to_numpy(t, dtype: np.dtype) -> np.ndarray:
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(dtype).copy()
    return t.numpy().copy()


def _float32_params(dtype: np.dtype) -> np.dtype:
    """Weight and bias in float32 for a float16/bfloat16 input (torch's mixed-type CPU path:
    the float32 parameters of mixed-precision training), in x's dtype otherwise."""
    return np.dtype(np.float32) if dtype.name in ("float16", "bfloat16") else dtype


def _subject(name, forward, refuses=None, *, elementwise_in_float32=False):
    """``forward`` under the contract; ``elementwise_in_float32``: the weight and bias go to
    torch in float32 for half x (``_float32_params``), and the subject declares
    ``bn_elementwise = "float32"`` (module docstring)."""
    param_dtype = _float32_params if elementwise_in_float32 else (lambda dtype: dtype)

    def subject(x, *, axes, scale, offset, epsilon, training):
        x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
        if not train:
            return x.copy()
        p = param_dtype(x.dtype)
        with torch.no_grad():
            y = forward(to_tensor(x, x.dtype), to_tensor(scale, p), to_tensor(offset, p), axes=axes, epsilon=epsilon)
        return to_numpy(y, x.dtype)

    subject.__name__ = subject.__qualname__ = name
    subject.__doc__ = f"{forward.__doc__} ``training`` False/None returns x (the contract's inference)."
    subject.bn_dtypes = DTYPES
    subject.bn_library = LIBRARY
    subject.bn_api = _API[name]
    subject.vjp = torch_vjp(forward)  # the gradient contract, through torch.autograd (issue 17)
    if refuses is not None:
        subject.bn_refuses = refuses
    if elementwise_in_float32:
        subject.bn_elementwise = "float32"
    return subject


def _size(shape, axes):
    n = 1
    for a in axes:
        n *= shape[a]
    return n


_API = {
    "torch_rms_norm": "torch.nn.functional.rms_norm",
    "torch_batch_norm": "torch.nn.functional.batch_norm(training=True)",
    "torch_layer_norm": "torch.nn.functional.layer_norm",
    "torch_group_norm": "torch.nn.functional.group_norm(num_groups=1)",
    "torch_instance_norm": "torch.nn.functional.instance_norm(use_input_stats=True)",
}

torch_batch_norm = _subject(
    "torch_batch_norm",
    batch_norm_forward,
    refuse_when(lambda shape, axes: _size(shape, axes) == 1, "Expected more than 1 value per channel when training"),
    elementwise_in_float32=True,
)
torch_layer_norm = _subject("torch_layer_norm", layer_norm_forward)
torch_rms_norm = _subject("torch_rms_norm", rms_norm_forward)
torch_rms_norm.bn_norm = "rms"
torch_group_norm = _subject(
    "torch_group_norm",
    group_norm_forward,
    refuse_when(lambda shape, axes: _size(shape, range(len(shape))) == 1, "Expected more than 1 value per channel when training"),
)
torch_instance_norm = _subject(
    "torch_instance_norm",
    instance_norm_forward,
    refuse_when(lambda shape, axes: _size(shape, axes) == 1, "Expected more than 1 spatial element when training"),
    elementwise_in_float32=True,
)
# torch.nn.BatchNorm1d's running statistics (the stateful contract, PyTorch's conventions; issue 17).
from bn_reference.subjects.running_stats import TorchRunningBN  # noqa: E402

torch_batch_norm.bn_stateful, torch_batch_norm.bn_momentum, torch_batch_norm.bn_running_variance = TorchRunningBN, "torch", "unbiased"
