"""A third-party subject: PyTorch's ``torch.nn.functional.batch_norm`` wrapped to the contract.

``F.batch_norm`` normalizes an (N, C, ...) tensor over every axis but the channel axis 1.
The wrapper moves the contract's kept axes together into that channel axis and the
reduced axes into N, so any axis set works::

    pytest --bn-impl examples.torch_bn:torch_batch_norm -n auto

Two things ``F.batch_norm`` refuses in training mode, and what the wrapper does about them
(``torch/nn/functional.py``, ``batch_norm()``):

* one value per channel (N = 1): ``ValueError("Expected more than 1 value per channel when
  training")``. A refusal by design, so the wrapper DECLARES it (``bn_refuses``): the suite
  checks once that such a call raises that error, and draws no such input for the other
  properties (the N = 1 law, all of whose inputs are refused, is the one strict xfail:
  ``bn_reference/subjects/deviations.py``);
* ``eps <= 0``: ``ValueError("batch_norm eps must be positive during training")``. The
  contract allows epsilon = 0 (for slices with variance > 0); the wrapper passes the
  smallest positive normal number t of x's dtype instead, which leaves ``var + eps`` equal to
  ``var`` (after rounding) for every variance above about 2^24 t (float32: ~2e-31, float64:
  ~4e-300), far below any variance the suite's eps = 0 laws draw.

(``bn_reference.subjects.pytorch`` ships the built-in ``torch_batch_norm`` and friends; this
file shows how a user wraps a framework.) PyTorch is an optional dependency
(``pip install "bn-props[torch]"``): without it, importing this module raises ImportError
(and ``--bn-impl`` says so).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bn_reference.subjects import check_call, supports

# The suite's inputs are tiny: one intra-op thread (torch's pool on cores that pytest-xdist
# workers already occupy turns a 10 us call into tens of milliseconds).
torch.set_num_threads(1)


def refuses_one_value_per_channel(shape, axes):
    """``bn_refuses``: F.batch_norm's refusal of a channel with one value (N = 1)."""
    if int(np.prod([shape[a] for a in axes])) == 1:
        return "Expected more than 1 value per channel when training"
    return None


@supports("float32", "float64")
def torch_batch_norm(x, *, axes, scale, offset, epsilon, training):
    x, axes, epsilon, normalize = check_call(x, axes, scale, offset, epsilon, training)
    if not normalize:
        return x.copy()
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, list(axes) + kept)
    n = int(np.prod([x.shape[a] for a in axes]))
    c = int(np.prod([x.shape[a] for a in kept]))
    t = torch.from_numpy(np.array(moved, order="C", copy=True).reshape(n, c))  # any layout: a fresh C-ordered copy
    eps = epsilon if epsilon > 0 else float(np.finfo(x.dtype).tiny)  # F.batch_norm refuses eps <= 0
    y = F.batch_norm(t, None, None, training=True, eps=eps).numpy()
    y = np.transpose(y.reshape(moved.shape), np.argsort(list(axes) + kept))
    return (y * np.asarray(scale, dtype=x.dtype) + np.asarray(offset, dtype=x.dtype)).astype(x.dtype)


torch_batch_norm.bn_refuses = refuses_one_value_per_channel


# --------------------------------------------------------------------------------------
# Gradients and running statistics (optional attributes of the contract)
# --------------------------------------------------------------------------------------
from bn_reference.subjects.autodiff import torch_vjp  # noqa: E402
from bn_reference.subjects.running_stats import TorchRunningBN  # noqa: E402


def batch_norm_on_tensors(t, scale, offset, *, axes, epsilon):
    """``torch_batch_norm``'s computation on tensors (what autograd differentiates): the same
    rearrangement, ``F.batch_norm``, and ``* scale + offset``."""
    kept = [a for a in range(t.ndim) if a not in axes]
    order = list(axes) + kept
    moved = t.permute(order)
    n = int(np.prod([t.shape[a] for a in axes]))
    y = F.batch_norm(moved.reshape(n, -1), None, None, training=True, eps=epsilon)
    return y.reshape(moved.shape).permute(*np.argsort(order).tolist()) * scale + offset


# torch.autograd through F.batch_norm: PyTorch's own backward kernel (native_batch_norm_backward).
torch_batch_norm.vjp = torch_vjp(batch_norm_on_tensors)
# torch.nn.BatchNorm1d's running statistics, in PyTorch's conventions.
torch_batch_norm.bn_stateful = TorchRunningBN
torch_batch_norm.bn_momentum, torch_batch_norm.bn_running_variance = "torch", "unbiased"


class BatchNormFunction(torch.autograd.Function):
    """A batch norm with a hand-written backward pass, as a kernel author writes one::

        forward:  x_hat = (x - mean) / sqrt(var + eps),  y = x_hat * scale + offset
        backward: dx = scale / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))
                  dscale = sum(dy * x_hat), doffset = sum(dy) (to the parameters' shapes)

    (means over the reduced axes; ``var`` biased). ``pytest --bn-impl
    examples.torch_bn:custom_backward_bn`` checks the forward pass and this backward pass."""

    @staticmethod
    def forward(ctx, x, scale, offset, axes, epsilon):
        mean = x.mean(dim=axes, keepdim=True)
        var = (x - mean).square().mean(dim=axes, keepdim=True)
        inv = torch.rsqrt(var + epsilon)
        x_hat = (x - mean) * inv
        ctx.save_for_backward(x_hat, inv, scale, offset)
        ctx.axes = axes
        return x_hat * scale + offset

    @staticmethod
    def backward(ctx, dy):
        x_hat, inv, scale, offset = ctx.saved_tensors
        axes = ctx.axes
        m1 = dy.mean(dim=axes, keepdim=True)
        m2 = (dy * x_hat).mean(dim=axes, keepdim=True)
        dx = scale * inv * (dy - m1 - x_hat * m2)

        def sum_to(g, p):
            return g.sum() if p.dim() == 0 else g.sum_to_size(p.shape)

        return dx, sum_to(dy * x_hat, scale), sum_to(dy, offset), None, None


def custom_backward_on_tensors(t, scale, offset, *, axes, epsilon):
    return BatchNormFunction.apply(t, scale, offset, tuple(axes), epsilon)


@supports("float32", "float64", vjp=torch_vjp(custom_backward_on_tensors))
def custom_backward_bn(x, *, axes, scale, offset, epsilon, training):
    """``BatchNormFunction`` (forward and hand-written backward) on NumPy in and out."""
    x, axes, epsilon, normalize = check_call(x, axes, scale, offset, epsilon, training)
    if not normalize:
        return x.copy()
    # x may come in any memory layout (reversed, read-only, ...): torch.from_numpy refuses
    # negative strides and warns on a read-only array, so hand it a C-contiguous copy.
    xt = torch.from_numpy(np.ascontiguousarray(x).copy())
    with torch.no_grad():
        g, b = (torch.tensor(np.array(v, dtype=np.float64, order="C")).to(xt.dtype) for v in (scale, offset))
        y = custom_backward_on_tensors(xt, g, b, axes=axes, epsilon=epsilon)
    return y.numpy()
