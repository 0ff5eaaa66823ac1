"""Known, deliberate differences between a built-in subject and the textbook law.

Each entry becomes a ``strict`` xfail on exactly that (subject, property[, dtype]) test:
if the subject ever stops deviating, the xfail turns into a failure (XPASS strict) and the
entry must go. The reason names the behaviour and its source. Prefer modelling a
difference exactly in a property; list it here only when the law itself is what the
subject knowingly breaks.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Deviation", "KNOWN_DEVIATIONS", "deviation_for"]


@dataclass(frozen=True)
class Deviation:
    subject: str  # the spec as given (built-in name or module:attr)
    prop: str  # the test function's name, e.g. "test_unit_variance"
    reason: str  # the behaviour, and where it is documented or observed
    dtype: str | None = None  # None: every dtype


KNOWN_DEVIATIONS: list[Deviation] = []


def deviation_for(subject: str, prop: str, dtype: str | None) -> Deviation | None:
    for d in KNOWN_DEVIATIONS:
        if d.subject == subject and d.prop == prop and (d.dtype is None or d.dtype == dtype):
            return d
    return None
