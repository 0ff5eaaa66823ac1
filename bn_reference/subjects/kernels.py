"""Helpers for wrapping a row-wise normalization kernel (Triton, Pallas, a compiled torch
function) to the contract, NumPy in and out.

A row kernel normalizes each row of an (M, N) array. The contract reduces any axis set, so
the adapter moves the kept axes first and the reduced axes last and flattens them:
M = product of the kept sides (the rows), N = product of the reduced sides (each row's
slice). ``as_rows`` does that on any strided array (transposed, Fortran-ordered or
negative-stride views included): it COPIES into a C-contiguous (M, N) array, since the
kernels index ``row * N + col`` and need unit stride along the row. The contract's
``scale``/``offset`` have size 1 on every reduced axis, so each is one value per row
(``per_row``); their gradients are per-row sums, summed to the parameter's shape
(``row_sums_to``).

Device placement belongs here too: on a GPU machine the adapter moves the rows to the
device and the result back to NumPy (``to_torch(..., device="cuda")``); the suite only
ever sees NumPy.
"""
from __future__ import annotations

import numpy as np

from bn_reference.subjects._framework import kept_last, per_kept

__all__ = ["as_rows", "per_row", "row_sums_to", "to_torch", "from_torch"]


def as_rows(x: np.ndarray, axes):
    """``(rows, undo)``: x as a C-contiguous (M, N) array (a copy; any strides accepted) and
    the map of an (M, N) result back to x's shape and axis order."""
    arranged, undo = kept_last(np.asarray(x), axes)
    m = arranged.shape[0]
    return np.ascontiguousarray(arranged.reshape(m, -1)), undo


def per_row(v, shape, axes, dtype=np.float32) -> np.ndarray:
    """The contract's ``scale``/``offset`` (a float, or an array with size 1 on every reduced
    axis) as one value per row (length M of ``as_rows``), rounded once to ``dtype``."""
    return per_kept(v, tuple(shape), tuple(axes), dtype)


def row_sums_to(row_sums, like, shape, axes, dtype):
    """A parameter's gradient from its per-row sums (``sum over the row of dy * x_hat`` for
    scale, ``of dy`` for offset): summed over the rows that share one parameter value, in
    the parameter's form (a Python float for a float, else an array of its shape)."""
    kept_shape = tuple(d for i, d in enumerate(shape) if i not in axes)
    g = np.asarray(row_sums, dtype=np.float64).reshape(kept_shape)
    g = np.expand_dims(g, tuple(axes))  # x's rank, size 1 on the reduced axes
    if np.ndim(like) == 0 and not isinstance(like, np.ndarray):
        return float(g.sum())
    target = np.shape(like)
    lead = g.ndim - len(target)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    ones = tuple(i for i, s in enumerate(target) if s == 1 and g.shape[i] != 1)
    return (g.sum(axis=ones, keepdims=True) if ones else g).reshape(target).astype(dtype)


def to_torch(a: np.ndarray, device: str = "cpu"):
    """A NumPy array (ml_dtypes bfloat16 included) as a torch tensor of the same dtype on
    ``device``. NumPy has no native bfloat16, so bfloat16 goes through float32 (exact). Any
    memory layout: a fresh C-ordered copy, since ``torch.from_numpy`` refuses negative strides
    and warns on read-only memory."""
    import torch

    if a.dtype.name == "bfloat16":
        return torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True)).to(device=device, dtype=torch.bfloat16)
    return torch.from_numpy(np.array(a, order="C", copy=True)).to(device)


def from_torch(t, dtype) -> np.ndarray:
    """A torch tensor back as a NumPy array of ``dtype`` (bfloat16 through float32, exact)."""
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.to(torch.float32)
    return t.numpy().astype(dtype)
