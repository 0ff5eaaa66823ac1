"""Memory layouts: the same values in the ways a real caller's arrays sit in memory.

A kernel sees a pointer and strides, not values. One that reads its input in memory order
and ignores the strides, assumes C order, writes through a read-only buffer or loads
aligned vectors gets every contiguous input right and a transposed, channels-last, sliced
or reversed one wrong. So every array the harness hands a subject (x; ``dy`` for ``vjp``;
``scale``/``offset`` arrays; a stateful layer's input) comes in a drawn ``Layout``: the
values and therefore the laws are unchanged, only the memory under them differs.

``Layout(kind, order)``:

* ``"C"``: a C-contiguous copy (the layout every array had before layouts were drawn);
* ``"F"``: a Fortran-ordered copy (the first axis varies fastest);
* ``"permuted"``: a view of a C array whose axes are stored in ``order`` (``(0, 2, 3, 1)``
  on a 4-d array is channels-last): what ``a.transpose(...)`` hands a kernel;
* ``"strided"``: a step-2 slice, on every axis, of an array twice as long on each;
* ``"reversed"``: every axis reversed, so every stride is negative (``a[::-1, ::-1]``);
* ``"readonly"``: a C-contiguous copy whose ``writeable`` flag is off;
* ``"unaligned"``: a C-contiguous copy one byte off its dtype's alignment (dtypes wider
  than a byte; numpy reports ``aligned=False``).

``apply(a)`` returns a new array in the layout holding ``a``'s values (never ``a`` itself),
``describe()`` names it in a failure (``Fortran-ordered``), ``repr`` rebuilds it in a repro.
Shrinking goes to ``"C"``: a failure that needs no layout reports none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KINDS", "Layout", "C_ORDER", "layout_of"]

KINDS = ("C", "F", "permuted", "strided", "reversed", "readonly", "unaligned")

_NAMES = {
    "C": "C-contiguous",
    "F": "Fortran-ordered",
    "strided": "step-2 slice of a larger array",
    "reversed": "reversed view (negative strides)",
    "readonly": "read-only",
    "unaligned": "unaligned (one byte off)",
}


_LABELS = {
    "C": "C order",
    "F": "Fortran order",
    "permuted": "permuted view",
    "strided": "step-2 slice",
    "reversed": "negative strides",
    "readonly": "read-only",
    "unaligned": "unaligned",
}


@dataclass(frozen=True)
class Layout:
    """How an array sits in memory (module docstring); ``order`` is used by ``"permuted"``."""

    kind: str = "C"
    order: tuple[int, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"layout kind {self.kind!r}: choose one of {KINDS}")

    def apply(self, a) -> np.ndarray:
        """A fresh array in this layout with ``a``'s values, shape and dtype."""
        a = np.asarray(a)
        if a.ndim == 0:
            return a.copy()
        kind = self.kind
        if kind == "C":
            return np.array(a, order="C", copy=True)
        if kind == "F":
            return np.array(a, order="F", copy=True)
        if kind == "permuted":
            order = self._order_for(a.ndim)
            # np.array(..., copy=True), not np.ascontiguousarray: that returns ``a`` itself when the
            # transposed view is already contiguous (rank 1, identity order), and a subject
            # writing into its input would then write into the harness's copy of x
            return np.array(a.transpose(order), order="C", copy=True).transpose(np.argsort(order))
        if kind == "strided":
            base = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
            view = base[(slice(None, None, 2),) * a.ndim]
            view[...] = a
            return view
        if kind == "reversed":
            flip = (slice(None, None, -1),) * a.ndim
            return np.array(a[flip], order="C", copy=True)[flip]
        if kind == "readonly":
            out = np.array(a, order="C", copy=True)
            out.flags.writeable = False
            return out
        # unaligned: the values one byte into a byte buffer
        if a.dtype.itemsize == 1:
            return np.array(a, order="C", copy=True)
        buf = np.empty(a.nbytes + 1, dtype=np.uint8)
        out = buf[1:].view(a.dtype).reshape(a.shape)
        out[...] = a
        return out

    def _order_for(self, ndim: int) -> tuple[int, ...]:
        """``order`` if it permutes ``ndim`` axes, else the axes reversed (an array of
        another rank than x, e.g. a scale of lower rank, gets the plain transpose)."""
        if sorted(self.order) == list(range(ndim)):
            return tuple(self.order)
        return tuple(reversed(range(ndim)))

    def describe(self, ndim: int | None = None) -> str:
        """The layout as a failure names it: ``Fortran-ordered``, ``view of axes stored in
        order (0, 2, 1)``."""
        if self.kind == "permuted":
            order = self.order if ndim is None else self._order_for(ndim)
            return f"permuted view (axes stored in order {tuple(order)})"
        return _NAMES[self.kind]

    @property
    def label(self) -> str:
        """The kind in a word or two, for the report's coverage labels (``layout: Fortran order``)."""
        return _LABELS[self.kind]

    def __repr__(self) -> str:
        """Source that rebuilds the layout (``bn_reference.mathematics.layouts.Layout``)."""
        return f"Layout({self.kind!r}, {tuple(self.order)!r})" if self.order else f"Layout({self.kind!r})"


C_ORDER = Layout("C")


def layout_of(a: np.ndarray) -> str:
    """What the memory under ``a`` looks like, read off its flags and strides (a failure
    report's description of what the subject actually received)."""
    if not isinstance(a, np.ndarray) or a.ndim == 0 or a.size <= 1:
        return ""
    parts = []
    if a.flags.c_contiguous:
        parts.append("C-contiguous")
    elif a.flags.f_contiguous:
        parts.append("Fortran-ordered")
    elif any(s < 0 for s in a.strides):
        parts.append(f"negative strides {a.strides}")
    else:
        parts.append(f"non-contiguous, strides {a.strides}")
    if not a.flags.writeable:
        parts.append("read-only")
    if not a.flags.aligned:
        parts.append("unaligned")
    return ", ".join(parts)
