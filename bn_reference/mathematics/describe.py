"""Arrays and arguments as one line of plain text: what a failure report, a falsifying
example (``BNCase``'s repr) and Hypothesis' notes print (``bn_reference.harness.failure``
composes them into a report)."""
from __future__ import annotations

import numpy as np

from bn_reference.mathematics.checks import plain
from bn_reference.mathematics.reference import first_of_each_slice

__all__ = ["SMALL", "describe_array", "describe_value"]

SMALL = 12  # arrays of at most this many elements print whole


def _nested(a: np.ndarray) -> str:
    if a.ndim == 0:
        return plain(a[()])
    if a.ndim == 1:
        return "[" + ", ".join(plain(v) for v in a) + "]"
    return "[" + ", ".join(_nested(s) for s in a) + "]"


def _as_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if a.dtype.kind in "fc" or a.dtype.name == "bfloat16" else a


def describe_array(a, axes=None) -> str:
    """``dtype shape`` then the values: all of them when ``a.size <= SMALL``; otherwise, if
    every slice along ``axes`` is constant, the slices' values (``constant along axes
    (0,), slice values [...]``), else min, max and mean; non-finite values counted."""
    a = np.asarray(a)
    head = f"{a.dtype.name} {tuple(a.shape)}"
    if a.size == 0:
        return f"{head} (empty)"
    if a.size <= SMALL:
        return f"{head} {_nested(a)}"
    f = _as_float(a)
    parts = []
    if axes and all(0 <= ax < a.ndim for ax in axes):
        first = first_of_each_slice(a, axes)
        if np.array_equal(np.broadcast_to(first, a.shape), a, equal_nan=True):
            kept = np.squeeze(first, axis=tuple(axes))
            values = _nested(kept) if kept.size <= SMALL else describe_array(kept)
            return f"{head}, constant along axes {tuple(axes)}, slice values {values}"
    finite = np.isfinite(f)
    if not finite.all():
        nan, inf = int(np.isnan(f).sum()), int(np.isinf(f).sum())
        where = tuple(int(k) for k in np.argwhere(~finite)[0])
        parts.append(f"{nan} NaN, {inf} inf (first at {list(where)})")
    if finite.any():
        v = f[finite]
        parts.append(f"min {v.min():.6g}, max {v.max():.6g}, mean {v.mean():.6g}")
    return f"{head}: " + "; ".join(parts)


def describe_value(v, axes=None) -> str:
    """An argument as it reads best: arrays by ``describe_array``, numbers plain."""
    if isinstance(v, np.ndarray):
        return describe_array(v, axes)
    if isinstance(v, tuple):
        return "(" + ", ".join(plain(k) for k in v) + ("," if len(v) == 1 else "") + ")"
    return plain(v)
