"""Assertion helpers for properties: compare against a bound, explain the failure,
and remember the worst err/bound ratio so the report can show the margin.

Modelled on ``numpy.testing.assert_allclose``'s message (mismatch count, largest
differences) plus what a BN failure needs: the err/bound ratio and where it happened.
"""
from __future__ import annotations

import contextlib
import functools
import math
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "assert_within",
    "assert_identical",
    "as_output",
    "LawViolation",
    "Call",
    "Tracker",
    "tracking",
    "count_example",
    "record_call",
    "add_subject_time",
    "cover",
    "size_class",
    "plain",
]


# user_properties keys a subject test carries (set by the plugin, read by the report, the
# kill matrix and the benchmark)
RATIO_KEY = "bn_worst_ratio"  # the test's worst err/bound
CELL_KEY = "bn_cell"  # (subject spec, property): its conformance-matrix cell
EXAMPLES_KEY = "bn_examples"  # examples drawn
SUBJECT_SECONDS_KEY = "bn_subject_seconds"  # time inside subject calls
MEDIAN_CALL_KEY = "bn_median_call_seconds"  # the median duration of one subject call
COVERED_KEY = "bn_covered"  # the coverage labels of the examples run (``cover``)


@dataclass
class Call:
    """One subject call exactly as made: ``label`` names it in the law's terms (``BN(x + 1)``,
    ``BN(x)``), ``function`` is the subject's attribute called (``None``: the subject itself;
    ``"moments"``, ``"vjp"``), ``x`` a copy of the input it received, ``kwargs`` the rest,
    ``layout`` the memory layout its arrays came in (``layouts.Layout``; None: C order)."""

    label: str
    x: np.ndarray
    kwargs: dict
    function: str | None = None
    layout: object = None
    shards: tuple | None = None  # ``(axis, sizes)``: x was passed cut into shards of these sizes (bn_replicas)


@dataclass
class Tracker:
    """What one test saw: the worst err/bound ratio of its ``assert_within`` calls over all
    examples (``worst``) and in the current example (``example_worst``: after a failure,
    that of the minimal falsifying example, which Hypothesis runs last), the number of
    examples it drew, and the current example's subject calls."""

    worst: float = 0.0
    examples: int = 0
    calls: list = field(default_factory=list)  # ``Call``s of the current example
    subject_seconds: float = 0.0  # wall time spent inside subject calls
    call_seconds: list = field(default_factory=list)  # each subject call's duration
    example_worst: float = 0.0  # may be inf (a NaN or inf where a finite value was due)
    covered: set = field(default_factory=set)  # "kind: value" labels of what the examples reached (``cover``)


_tracker: ContextVar[Tracker | None] = ContextVar("bn_tracker", default=None)


@contextlib.contextmanager
def tracking():
    """Track the worst err/bound ratio and the example count inside the block."""
    tracker = Tracker()
    token = _tracker.set(tracker)
    try:
        yield tracker
    finally:
        _tracker.reset(token)


def count_example() -> None:
    """Called once per drawn example (by ``strategies.draw_case``): a new example starts."""
    t = _tracker.get()
    if t is not None:
        t.examples += 1
        t.calls.clear()
        t.example_worst = 0.0


def record_call(x: np.ndarray, kwargs: dict, label: str = "BN(x)", function: str | None = None, layout=None, shards=None) -> None:
    """Remember a subject call of the current example (for the failure report and its repro);
    ``shards = (axis, sizes)``: the subject got x cut into shards (``Call.shards``)."""
    t = _tracker.get()
    if t is not None:
        t.calls.append(Call(label, np.array(x, copy=True), dict(kwargs), function, layout, shards))
        t.covered.update(_call_labels(x, kwargs))
        if layout is not None:
            t.covered.add(f"layout: {layout.label}")


def size_class(n: int) -> str:
    """The size class of a slice of ``n`` elements (the elements one mean and variance are
    taken over): ``0``, ``1``, then octaves ``2-7``, ``8-63``, ``64-511``, ``512+``, the
    reduction's regimes (no statistics, the offset alone, tiny, one SIMD/warp-sized
    block, several, many)."""
    if n <= 1:
        return str(n)
    for top in (8, 64, 512):
        if n < top:
            return f"{top // 8 if top > 8 else 2}-{top - 1}"
    return "512+"


def cover(*labels: str) -> None:
    """Note that the current test's examples reached ``labels`` (``"kind: value"``, e.g.
    ``"layout: NCHW"``, ``"size class: block boundary"``): a strategy that draws a layout or
    a size class says so here, and the report lists each cell's labels. ``record_call`` adds
    what every subject call shows by itself: the input's rank, its slice size class
    (``size_class``) and, when not C-contiguous, its strides."""
    t = _tracker.get()
    if t is not None:
        t.covered.update(labels)


def _call_labels(x, kwargs: dict) -> tuple[str, ...]:
    shape = getattr(x, "shape", ())
    flags = getattr(x, "flags", None)
    strided = flags is not None and not flags.c_contiguous and getattr(x, "size", 0) > 1
    axes = kwargs.get("axes") or ()
    try:
        return _labels(tuple(shape), tuple(axes), strided)
    except TypeError:  # axes not a tuple of ints (a bad-input property's call)
        return (f"rank: {len(shape)}",)


@functools.lru_cache(maxsize=4096)
def _labels(shape: tuple, axes: tuple, strided: bool) -> tuple[str, ...]:
    try:
        n = math.prod(shape[a] for a in axes) if axes else 0
    except (IndexError, TypeError):
        return (f"rank: {len(shape)}",)
    return (f"rank: {len(shape)}", f"slice size: {size_class(n)}") + (("layout: non-contiguous",) if strided else ())


def add_subject_time(seconds: float) -> None:
    """Add the duration of one subject call to the current test's tracker."""
    t = _tracker.get()
    if t is not None:
        t.subject_seconds += seconds
        t.call_seconds.append(seconds)


def _note(ratio: float) -> None:
    t = _tracker.get()
    if t is None:
        return
    t.example_worst = max(t.example_worst, float(ratio))
    if np.isfinite(ratio):
        t.worst = max(t.worst, float(ratio))


class LawViolation(AssertionError):
    """A law does not hold within its bound. ``law`` is the law in words, ``ratio`` the worst
    element's err/bound (the largest of the comparison; ``inf`` for a NaN or inf where a
    finite value was due), ``index`` that element's index in the compared arrays of ``shape``."""

    def __init__(self, message: str, *, law: str, ratio: float, index: tuple[int, ...], shape: tuple[int, ...]):
        super().__init__(message)
        self.law, self.ratio, self.index, self.shape = law, ratio, index, shape


def plain(v) -> str:
    """A number as people write it: ``0.12573022``, not ``np.float32(0.12573022)``
    (the shortest repr that round-trips in the value's own dtype)."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, np.generic):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def as_output(y) -> np.ndarray:
    """The subject's result as a float64 array for comparison (contract checks live in
    their own property: here a tf.Tensor or a list is converted, not judged)."""
    return np.asarray(y).astype(np.float64)


def assert_within(actual, expected, bound, *, law: str, x: np.ndarray | None = None, got: str = "got", want: str = "want") -> None:
    """Assert ``|actual - expected| <= bound`` elementwise (NaN counts as a mismatch
    unless both sides are NaN); on failure raise ``LawViolation`` naming the law and the
    worst element: ``got`` (the label of ``actual``, e.g. ``BN(x + 1)``), ``want`` (that of
    ``expected``: ``float64 reference``, or the subject's other output, e.g. ``BN(x)``),
    |err|, bound, err/bound, and the input there when ``x`` has the outputs' shape."""
    __tracebackhide__ = True
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"{law}: shape {actual.shape} of {got}, where {want} has shape {expected.shape}")
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), expected.shape)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.abs(actual - expected)
        both_nan = np.isnan(actual) & np.isnan(expected)
        same_inf = np.isinf(actual) & (actual == expected)
        err = np.where(both_nan | same_inf, 0.0, err)
        err = np.where(np.isnan(err), np.inf, err)
        ratio = np.where(err == 0, 0.0, err / bound)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    ok = ratio <= 1
    _note(float(ratio.max(initial=0.0)))
    if ok.all():
        return
    bad = int((~ok).sum())
    i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    index = tuple(int(k) for k in i)
    where = "" if not index else f"[{', '.join(map(str, index))}]"
    width = max(len(got), len(want))
    lines = [
        f"{law}: {bad} of {ratio.size} elements outside the error model; the worst{', at ' + where if where else ''}:",
        f"  {got:<{width}} = {plain(actual[i])}",
        f"  {want:<{width}} = {plain(expected[i])}",
        f"  |err| = {err[i]:.6g} > bound {bound[i]:.6g}: err/bound = {ratio[i]:.6g}",
    ]
    if x is not None and x.shape == expected.shape:
        lines.append(f"  input there: x{where} = {plain(x[i])}")
    raise LawViolation("\n".join(lines), law=law, ratio=float(ratio[i]), index=index, shape=ratio.shape)


def assert_identical(actual, expected: np.ndarray, *, law: str) -> None:
    """Assert same type ndarray, shape, dtype and bit-identical values."""
    __tracebackhide__ = True
    if not isinstance(actual, np.ndarray):
        raise AssertionError(f"{law}: returned {type(actual).__name__}, the contract requires numpy.ndarray")
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        raise AssertionError(
            f"{law}: returned shape {actual.shape} dtype {actual.dtype}, "
            f"input was shape {expected.shape} dtype {expected.dtype}"
        )
    same = (actual == expected) | (np.isnan(actual.astype(np.float64)) & np.isnan(expected.astype(np.float64)))
    if not same.all():
        i = np.unravel_index(int(np.argmin(same)), same.shape)
        raise AssertionError(
            f"{law}: {int((~same).sum())} of {same.size} elements changed; "
            f"first at {tuple(int(k) for k in i)}: {plain(actual[i])} != {plain(expected[i])}"
        )
