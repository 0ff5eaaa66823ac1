"""A normalization written in torch and compiled by ``torch.compile`` (TorchInductor's CPU
backend: generated C++, with its own reductions, built with the machine's C++ compiler)::

    bn-props check examples.inductor_bn:compiled_norm

The function normalizes the rows of an (M, N) tensor (``bn_reference.subjects.kernels``: kept
axes -> M, reduced axes -> N; a contiguous copy), accumulating in float32 for half-precision
input, and is compiled once per dtype with ``dynamic=True`` (symbolic M and N: a new shape
does not recompile, except where Inductor specializes a size of 0 or 1). Autograd through
the compiled function is Inductor's generated backward (AOTAutograd), so the gradient laws
check that code, not eager PyTorch's.

``compiled_norm_bessel`` plants the classic PyTorch slip: ``x.var(dim)`` is the UNBIASED
variance (``correction=1``) by default, while normalization uses the biased one.

bfloat16: NumPy's bfloat16 (ml_dtypes) becomes a torch.bfloat16 tensor through float32
(exact); on a GPU machine the adapter moves the tensors to ``DEVICE = "cuda"`` and back.
"""
from __future__ import annotations

import numpy as np
import torch

from bn_reference.subjects import check_call, supports
from bn_reference.subjects.autodiff import as_given
from bn_reference.subjects.kernels import as_rows, from_torch, per_row, row_sums_to, to_torch

torch.set_num_threads(1)  # tiny inputs: torch's thread pool only costs on a busy machine
DEVICE = "cpu"


def _rows_norm(x, scale, offset, eps, unbiased: bool):
    """(M, N) rows normalized, times scale plus offset (one per row), in x's dtype. ``eps`` is
    a 0-d float64 tensor: a Python float would be specialized (one compilation per epsilon)."""
    acc = x.to(torch.float32) if x.dtype in (torch.float16, torch.bfloat16) else x
    mean = acc.mean(dim=1, keepdim=True)
    var = acc.var(dim=1, keepdim=True) if unbiased else (acc - mean).square().mean(dim=1, keepdim=True)
    y = (acc - mean) * torch.rsqrt(var + eps.to(acc.dtype)) * scale.to(acc.dtype) + offset.to(acc.dtype)
    return y.to(x.dtype)


_COMPILED = {flag: torch.compile(lambda x, g, b, eps, flag=flag: _rows_norm(x, g, b, eps, flag), dynamic=True) for flag in (False, True)}


def _arguments(x, axes, scale, offset, requires_grad=False):
    rows, undo = as_rows(x, axes)
    t = to_torch(rows, DEVICE).requires_grad_(requires_grad)
    g, b = (to_torch(per_row(v, x.shape, axes, np.float64)[:, None], DEVICE).to(t.dtype).requires_grad_(requires_grad) for v in (scale, offset))
    return t, g, b, undo


def _normalize(x, *, axes, scale, offset, epsilon, training, unbiased):
    x, axes, epsilon, normalize = check_call(x, axes, scale, offset, epsilon, training)
    if not normalize or x.size == 0:
        return x.copy()
    t, g, b, undo = _arguments(x, axes, scale, offset)
    with torch.no_grad():
        y = _COMPILED[unbiased](t, g, b, torch.tensor(float(epsilon), dtype=torch.float64))
    return undo(from_torch(y, x.dtype))


def vjp(x, dy, *, axes, scale, offset, epsilon):
    """``torch.autograd.grad`` through the compiled function (Inductor's generated backward)."""
    x, axes = np.asarray(x), tuple(axes)
    if x.size == 0:
        return np.zeros_like(x), as_given(np.zeros(np.shape(scale), x.dtype), scale), as_given(np.zeros(np.shape(offset), x.dtype), offset)
    t, g, b, undo = _arguments(x, axes, scale, offset, requires_grad=True)
    y = _COMPILED[False](t, g, b, torch.tensor(float(epsilon), dtype=torch.float64))
    d = to_torch(as_rows(np.asarray(dy, dtype=x.dtype), axes)[0], DEVICE)
    dx, dg, db = torch.autograd.grad(y, (t, g, b), grad_outputs=d)
    return (
        undo(from_torch(dx, x.dtype)),
        row_sums_to(from_torch(dg, np.float64)[:, 0], scale, x.shape, axes, x.dtype),
        row_sums_to(from_torch(db, np.float64)[:, 0], offset, x.shape, axes, x.dtype),
    )


@supports("float32", "float64", "float16", "bfloat16", vjp=vjp)
def compiled_norm(x, *, axes, scale, offset, epsilon, training):
    """The compiled normalization, biased variance."""
    return _normalize(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, unbiased=False)


@supports("float32", "float64", "float16", "bfloat16", vjp=vjp)
def compiled_norm_bessel(x, *, axes, scale, offset, epsilon, training):
    """The planted bug: ``x.var(dim)``, Bessel-corrected (divides by N - 1)."""
    return _normalize(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, unbiased=True)


compiled_norm.bn_compiles = compiled_norm_bessel.bn_compiles = True
