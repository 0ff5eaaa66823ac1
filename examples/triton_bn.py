"""A Triton normalization kernel, checked on the CPU under Triton's interpreter::

    TRITON_INTERPRET=1 bn-props check examples.triton_bn:triton_norm

(this module sets ``TRITON_INTERPRET=1`` itself if nothing has imported ``triton`` yet; the
interpreter runs ``@triton.jit`` kernels on CPU torch tensors through NumPy, so no GPU.)

The kernel is row-wise, in the style of Triton's layer-norm tutorial: a program normalizes
``ROWS`` rows of an (M, N) array, looping over each row in blocks of ``BLOCK`` lanes; the
lanes past N in the last block (the tail) are masked. Moments are accumulated in float32
(float64 for float64 input), two passes (mean, then the sum of squared deviations), and the
output is rounded once to x's dtype. The adapter (``bn_reference.subjects.kernels``) turns
the contract's any-axes call into rows: kept axes -> M, reduced axes -> N (a contiguous copy:
the kernel needs unit stride along a row), the contract's scale/offset -> one value per row.

The backward pass is a second kernel (``_backward_rows``): with x_hat = (x - mean) * rstd,
``dx = scale * rstd * (dy - mean(dy) - x_hat * mean(dy * x_hat))``, plus the per-row sums
``sum(dy * x_hat)`` and ``sum(dy)`` that become dscale and doffset.

``triton_norm_forgets_tail_mask`` is the same kernel with a planted bug, the classic one:
the variance loop subtracts the mean from every lane, the masked tail lanes included, which
loaded as 0, so each padded lane adds ``(0 - mean)^2 = mean^2`` to the sum of squares. It is
wrong exactly when N is not a multiple of BLOCK and the mean is not 0; the suite must catch it.

bfloat16: NumPy's bfloat16 (ml_dtypes) becomes a torch.bfloat16 tensor through float32
(exact); the kernel loads it, upcasts to float32, and stores bfloat16.

On a GPU machine, the same adapter with ``DEVICE = "cuda"`` (and without
``TRITON_INTERPRET``) checks the compiled kernel: tensors go to the device in the adapter,
NumPy stays the suite's currency.
"""
from __future__ import annotations

import os
import sys

if "triton" not in sys.modules:  # the interpreter must be chosen before triton is imported
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np
import torch
import triton
import triton.language as tl

from bn_reference.subjects import check_call, supports
from bn_reference.subjects.kernels import as_rows, from_torch, per_row, row_sums_to, to_torch

torch.set_num_threads(1)  # tiny inputs: torch's thread pool only costs on a busy machine
DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda"
ROWS = 16  # rows per program
MAX_BLOCK = 256  # lanes per block of a row: a row longer than this is walked in blocks


@triton.jit
def _forward_rows(X, Y, Scale, Offset, Mean, Rstd, M, N, eps,
                  ROWS: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr, MASK_VARIANCE_TAIL: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_ok = rows < M
    base = rows[:, None] * N
    # pass 1: the mean
    acc = tl.zeros([ROWS, BLOCK], dtype=ACC)
    for start in range(0, N, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        ok = row_ok[:, None] & (cols[None, :] < N)
        acc += tl.load(X + base + cols[None, :], mask=ok, other=0.0).to(ACC)
    mean = tl.sum(acc, axis=1) / N
    # pass 2: the biased variance, sum((x - mean)^2) / N
    acc = tl.zeros([ROWS, BLOCK], dtype=ACC)
    for start in range(0, N, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        ok = row_ok[:, None] & (cols[None, :] < N)
        x = tl.load(X + base + cols[None, :], mask=ok, other=0.0).to(ACC)
        if MASK_VARIANCE_TAIL:
            d = tl.where(ok, x - mean[:, None], 0.0)
        else:  # the planted bug: tail lanes loaded as 0 contribute (0 - mean)^2
            d = x - mean[:, None]
        acc += d * d
    var = tl.sum(acc, axis=1) / N
    var = tl.where(row_ok, var, 1.0)  # rows past M (the last program's padding): no 1/0 when eps = 0
    rstd = 1.0 / tl.sqrt(var + eps)
    tl.store(Mean + rows, mean, mask=row_ok)
    tl.store(Rstd + rows, rstd, mask=row_ok)
    scale = tl.load(Scale + rows, mask=row_ok, other=0.0).to(ACC)
    offset = tl.load(Offset + rows, mask=row_ok, other=0.0).to(ACC)
    # pass 3: y = (x - mean) * rstd * scale + offset, rounded once to Y's dtype
    for start in range(0, N, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        ok = row_ok[:, None] & (cols[None, :] < N)
        x = tl.load(X + base + cols[None, :], mask=ok, other=0.0).to(ACC)
        y = (x - mean[:, None]) * rstd[:, None] * scale[:, None] + offset[:, None]
        tl.store(Y + base + cols[None, :], y.to(Y.dtype.element_ty), mask=ok)


@triton.jit
def _backward_rows(X, DY, DX, Scale, Mean, Rstd, SumDyXhat, SumDy, M, N,
                   ROWS: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_ok = rows < M
    base = rows[:, None] * N
    mean = tl.load(Mean + rows, mask=row_ok, other=0.0)
    rstd = tl.load(Rstd + rows, mask=row_ok, other=0.0)
    scale = tl.load(Scale + rows, mask=row_ok, other=0.0).to(ACC)
    s_dy = tl.zeros([ROWS, BLOCK], dtype=ACC)
    s_dyx = tl.zeros([ROWS, BLOCK], dtype=ACC)
    for start in range(0, N, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        ok = row_ok[:, None] & (cols[None, :] < N)
        x = tl.load(X + base + cols[None, :], mask=ok, other=0.0).to(ACC)
        dy = tl.load(DY + base + cols[None, :], mask=ok, other=0.0).to(ACC)
        x_hat = tl.where(ok, (x - mean[:, None]) * rstd[:, None], 0.0)
        s_dy += dy
        s_dyx += dy * x_hat
    sum_dy = tl.sum(s_dy, axis=1)
    sum_dyx = tl.sum(s_dyx, axis=1)
    tl.store(SumDy + rows, sum_dy, mask=row_ok)
    tl.store(SumDyXhat + rows, sum_dyx, mask=row_ok)
    for start in range(0, N, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        ok = row_ok[:, None] & (cols[None, :] < N)
        x = tl.load(X + base + cols[None, :], mask=ok, other=0.0).to(ACC)
        dy = tl.load(DY + base + cols[None, :], mask=ok, other=0.0).to(ACC)
        x_hat = (x - mean[:, None]) * rstd[:, None]
        dx = scale[:, None] * rstd[:, None] * (dy - sum_dy[:, None] / N - x_hat * sum_dyx[:, None] / N)
        tl.store(DX + base + cols[None, :], dx.to(DX.dtype.element_ty), mask=ok)


def _launch_config(n: int, dtype) -> dict:
    acc = tl.float64 if dtype == np.float64 else tl.float32
    return dict(ROWS=ROWS, BLOCK=min(triton.next_power_of_2(max(n, 1)), MAX_BLOCK), ACC=acc)


def _acc_dtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def _forward(x, axes, scale, offset, epsilon, mask_variance_tail=True):
    """Run the forward kernel on x's rows: ``(y (M, N) tensor, mean, rstd, undo, per-row scale
    tensor, rows tensor)``."""
    rows, undo = as_rows(x, axes)
    m, n = rows.shape
    acc = _acc_dtype(x.dtype)
    t = to_torch(rows, DEVICE)
    y = torch.empty_like(t)
    g = torch.from_numpy(per_row(scale, x.shape, axes, np.float64)).to(device=DEVICE, dtype=acc)
    b = torch.from_numpy(per_row(offset, x.shape, axes, np.float64)).to(device=DEVICE, dtype=acc)
    mean = torch.empty(m, dtype=acc, device=DEVICE)
    rstd = torch.empty(m, dtype=acc, device=DEVICE)
    _forward_rows[(triton.cdiv(m, ROWS),)](t, y, g, b, mean, rstd, m, n, float(epsilon),
                                           MASK_VARIANCE_TAIL=mask_variance_tail, **_launch_config(n, x.dtype))
    return y, mean, rstd, undo, g, t


def _normalize(x, *, axes, scale, offset, epsilon, training, mask_variance_tail):
    x, axes, epsilon, normalize = check_call(x, axes, scale, offset, epsilon, training)
    if not normalize or x.size == 0:
        return x.copy()
    y, *_, undo, _, _ = _forward(x, axes, scale, offset, epsilon, mask_variance_tail)
    return undo(from_torch(y, x.dtype))


def vjp(x, dy, *, axes, scale, offset, epsilon):
    """The backward kernel: ``(dx, dscale, doffset)`` of the training-mode output."""
    x = np.asarray(x)
    axes = tuple(axes)
    if x.size == 0:
        zero = lambda p: 0.0 if np.ndim(p) == 0 and not isinstance(p, np.ndarray) else np.zeros(np.shape(p), x.dtype)  # noqa: E731
        return np.zeros_like(x), zero(scale), zero(offset)
    _, mean, rstd, undo, g, t = _forward(x, axes, scale, offset, epsilon)
    m, n = t.shape
    d = to_torch(as_rows(np.asarray(dy, dtype=x.dtype), axes)[0], DEVICE)
    dx = torch.empty_like(t)
    s_dyx = torch.empty(m, dtype=mean.dtype, device=DEVICE)
    s_dy = torch.empty(m, dtype=mean.dtype, device=DEVICE)
    _backward_rows[(triton.cdiv(m, ROWS),)](t, d, dx, g, mean, rstd, s_dyx, s_dy, m, n, **_launch_config(n, x.dtype))
    return (
        undo(from_torch(dx, x.dtype)),
        row_sums_to(from_torch(s_dyx, np.float64), scale, x.shape, axes, x.dtype),
        row_sums_to(from_torch(s_dy, np.float64), offset, x.shape, axes, x.dtype),
    )


@supports("float32", "float64", "float16", "bfloat16", vjp=vjp)
def triton_norm(x, *, axes, scale, offset, epsilon, training):
    """The Triton kernel, tail lanes masked in every pass."""
    return _normalize(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, mask_variance_tail=True)


@supports("float32", "float64", "float16", "bfloat16", vjp=vjp)
def triton_norm_forgets_tail_mask(x, *, axes, scale, offset, epsilon, training):
    """The planted bug: the variance pass does not mask the tail lanes (each adds mean^2)."""
    return _normalize(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, mask_variance_tail=False)


# A kernel compiles per launch configuration (BLOCK, ACC) on a GPU, and every call through
# the interpreter costs tens of milliseconds: draw shapes from a few buckets.
triton_norm.bn_compiles = triton_norm_forgets_tail_mask.bn_compiles = True
