"""Assertion helpers for properties: compare against a bound, explain the failure,
and remember the worst err/bound ratio so the report can show the margin.

Modelled on ``numpy.testing.assert_allclose``'s message (mismatch count, largest
differences) plus what a BN failure needs: the err/bound ratio and where it happened.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np

__all__ = ["assert_within", "assert_identical", "as_output", "Tracker", "tracking", "count_example", "record_call", "add_subject_time"]


# user_properties keys a subject test carries (set by the plugin, read by the report, the
# kill matrix and the benchmark)
RATIO_KEY = "bn_worst_ratio"  # the test's worst err/bound
CELL_KEY = "bn_cell"  # (subject spec, property): its conformance-matrix cell
EXAMPLES_KEY = "bn_examples"  # examples drawn
SUBJECT_SECONDS_KEY = "bn_subject_seconds"  # time inside subject calls


@dataclass
class Tracker:
    """What one test saw: the worst err/bound ratio of its ``assert_within`` calls and the
    number of examples it drew."""

    worst: float = 0.0
    examples: int = 0
    calls: list = field(default_factory=list)  # (x, kwargs) of the current example's subject calls
    subject_seconds: float = 0.0  # wall time spent inside subject calls


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


def record_call(x: np.ndarray, kwargs: dict) -> None:
    """Remember a subject call of the current example (for the repro of a failure)."""
    t = _tracker.get()
    if t is not None:
        t.calls.append((x.copy(), dict(kwargs)))


def add_subject_time(seconds: float) -> None:
    """Add the duration of one subject call to the current test's tracker."""
    t = _tracker.get()
    if t is not None:
        t.subject_seconds += seconds


def _note(ratio: float) -> None:
    t = _tracker.get()
    if t is not None and np.isfinite(ratio):
        t.worst = max(t.worst, float(ratio))


def as_output(y) -> np.ndarray:
    """The subject's result as a float64 array for comparison (contract checks live in
    their own property: here a tf.Tensor or a list is converted, not judged)."""
    return np.asarray(y).astype(np.float64)


def assert_within(actual, expected, bound, *, law: str, x: np.ndarray | None = None) -> None:
    """Assert ``|actual - expected| <= bound`` elementwise (NaN counts as a mismatch
    unless both sides are NaN), with a message that names the law and the worst element."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"{law}: shape {actual.shape} where {expected.shape} was expected")
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), expected.shape)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.abs(actual - expected)
        both_nan = np.isnan(actual) & np.isnan(expected)
        same_inf = np.isinf(actual) & (actual == expected)
        err = np.where(both_nan | same_inf, 0.0, err)
        err = np.where(np.isnan(err), np.inf, err)
        ratio = np.where(err == 0, 0.0, err / bound)
    ok = ratio <= 1
    finite = ratio[np.isfinite(ratio)]
    _note(float(finite.max(initial=0.0)))
    if ok.all():
        return
    bad = int((~ok).sum())
    i = np.unravel_index(int(np.argmax(np.where(np.isnan(ratio), np.inf, ratio))), ratio.shape)
    lines = [
        f"{law}: {bad} of {ratio.size} elements outside the error model",
        f"  worst at index {tuple(int(k) for k in i)}: got {actual[i]!r}, expected {expected[i]!r}",
        f"  |err| = {err[i]:.6g}, bound = {bound[i]:.6g}, err/bound = {ratio[i]:.6g}",
        f"  max |err| = {np.max(err):.6g}, max err/bound = {np.max(ratio):.6g}",
    ]
    if x is not None and x.shape == expected.shape:
        lines.insert(2, f"  input there: x{list(i)} = {x[i]!r}")
    raise AssertionError("\n".join(lines))


def assert_identical(actual, expected: np.ndarray, *, law: str) -> None:
    """Assert same type ndarray, shape, dtype and bit-identical values."""
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
            f"first at {tuple(int(k) for k in i)}: {actual[i]!r} != {expected[i]!r}"
        )
