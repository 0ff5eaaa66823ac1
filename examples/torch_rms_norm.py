"""RMSNorm as LLaMA-style models write it, with a hand-written backward pass.

The Hugging Face pattern (``LlamaRMSNorm.forward`` in transformers'
``models/llama/modeling_llama.py``): upcast to float32, take the mean of squares, multiply
by ``rsqrt(ms + eps)``, cast back to the input dtype, then apply the weight::

    hidden = x.to(torch.float32)
    variance = hidden.pow(2).mean(-1, keepdim=True)
    hidden = hidden * torch.rsqrt(variance + eps)
    return weight * hidden.to(input_dtype)

Here over the contract's reduced axes, with the contract's offset added after the weight,
in all four dtypes (bfloat16 arrives as an ``ml_dtypes`` array and goes to torch through its
bits). One change to the pattern: it computes in float32 *at least* (``_compute_dtype``),
not in float32 always. Verbatim, ``x.to(torch.float32)`` turns a float64 input into
float32 arithmetic, and bn-props says so: 12 of its laws fail in float64 (agreement,
unit mean square, the gradients... with errors of float32 size against a float64 bound). The float32 upcast is what keeps float16 correct: without it the squares overflow
past |x| = 256 and the output collapses to the offset (the suite's ``rms_squares_in_half``
mutant, the bug two libraries shipped). ``bn_norm = "rms"`` declares the normalization::

    bn-props check examples.torch_rms_norm:rms_norm

The backward pass, derived in ``bn_reference.mathematics.reference.batch_norm_vjp``::

    dx = gamma inv (dy - x_hat mean_A(dy x_hat)),  x_hat = x inv,  inv = 1/sqrt(ms + eps)
    dgamma = sum(dy x_hat),  doffset = sum(dy)   (to the parameters' shapes)

computed in the forward's compute dtype, and rounded once to the input dtype.
"""
from __future__ import annotations

import numpy as np
import torch

from bn_reference.subjects import check_call, supports
from bn_reference.subjects.autodiff import torch_vjp
from bn_reference.subjects.pytorch import to_numpy, to_tensor

torch.set_num_threads(1)  # tiny inputs: torch's thread pool on busy cores costs more than it saves


def _compute_dtype(dtype):
    """float32 for half precision and float32, float64 for float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class RMSNormFunction(torch.autograd.Function):
    """Forward and backward of ``y = x / sqrt(mean_A(x^2) + eps) * scale + offset``."""

    @staticmethod
    def forward(ctx, x, scale, offset, axes, epsilon):
        hidden = x.to(_compute_dtype(x.dtype))
        inv = torch.rsqrt(hidden.pow(2).mean(dim=axes, keepdim=True) + epsilon)
        x_hat = hidden * inv
        ctx.save_for_backward(x_hat, inv, scale, offset)
        ctx.axes = axes
        return scale * x_hat.to(x.dtype) + offset

    @staticmethod
    def backward(ctx, dy):
        x_hat, inv, scale, offset = ctx.saved_tensors
        d = dy.to(x_hat.dtype)
        m2 = (d * x_hat).mean(dim=ctx.axes, keepdim=True)
        dx = scale.to(x_hat.dtype) * inv * (d - x_hat * m2)

        def sum_to(g, p):
            return (g.sum() if p.dim() == 0 else g.sum_to_size(p.shape)).to(p.dtype)

        return dx.to(dy.dtype), sum_to(d * x_hat, scale), sum_to(d, offset), None, None


def rms_norm_on_tensors(t, scale, offset, *, axes, epsilon):
    return RMSNormFunction.apply(t, scale, offset, tuple(axes), epsilon)


@supports("float32", "float64", "float16", "bfloat16", vjp=torch_vjp(rms_norm_on_tensors))
def rms_norm(x, *, axes, scale, offset, epsilon, training):
    """``RMSNormFunction`` on NumPy in and out (any memory layout: ``to_tensor`` copies)."""
    x, axes, epsilon, normalize = check_call(x, axes, scale, offset, epsilon, training)
    if not normalize:
        return x.copy()
    with torch.no_grad():
        y = rms_norm_on_tensors(to_tensor(x, x.dtype), to_tensor(scale, x.dtype), to_tensor(offset, x.dtype), axes=axes, epsilon=epsilon)
    return to_numpy(y, x.dtype)


rms_norm.bn_norm = "rms"
