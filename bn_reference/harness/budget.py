"""Slow subjects: shape buckets and a time budget (``--bn-budget``).

A subject that declares ``bn_compiles = True`` (a kernel compiled per shape: Triton, Pallas,
``torch.compile``; or one whose every call costs tens of milliseconds, as Triton's
interpreter does) gets:

* shapes from a few buckets (``strategies.SIDE_BUCKETS``: each side snapped down to one of
  them, which still covers every size class the suite draws), so it compiles once per
  bucket, not once per example;
* a time budget, 5 minutes unless ``--bn-budget`` says otherwise.

``--bn-budget DURATION`` (``300``, ``90s``, ``5m``, ``1h``; ``0`` turns it off) spreads the
examples of a run over its cells (subject x property x dtype): each cell gets an equal share
of ``DURATION x workers``, and its example count is that share divided by the seconds an
example has cost so far in this worker (the subject's calls and the harness around them),
between ``MIN_EXAMPLES`` and the profile's ``max_examples``. A known deviation's strict
xfail keeps the profile's examples (its draws are the ones it was measured with). The
run's report gives the examples each cell ran and the subject's median call time, so a pass
says how much it covered.
"""
from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import time

import pytest
from hypothesis import settings

from bn_reference.harness import activation
from bn_reference.mathematics.strategies import shape_buckets

__all__ = ["parse_duration", "budget_seconds", "compiles", "applied", "median_call_line", "DEFAULT_COMPILES_BUDGET", "MIN_EXAMPLES"]

DEFAULT_COMPILES_BUDGET = 300.0  # seconds: a bn_compiles subject's default budget
MIN_EXAMPLES = 3  # a cell under a budget never runs fewer (the first examples find most bugs)
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_STATE = pytest.StashKey[dict]()


def parse_duration(text: str) -> float:
    """``"5m"`` -> 300.0; an argparse ``type`` whose errors name ``--bn-budget``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"--bn-budget: {text!r} is not a duration (e.g. 300, 90s, 5m, 1h; 0 turns it off)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def pytest_addoption(parser):
    parser.getgroup("bn-props").addoption(
        "--bn-budget",
        metavar="DURATION",
        type=parse_duration,
        default=None,
        help="spread the examples over the cells to finish in about DURATION (300, 90s, 5m, 1h; 0: off; "
        "default: 5m when a subject declares bn_compiles, else off); the report gives each cell's examples",
    )


def compiles(subject) -> bool:
    return bool(getattr(subject.fn, "bn_compiles", False))


def budget_seconds(config, subjects) -> float:
    """The run's budget in seconds (0: none)."""
    chosen = config.getoption("bn_budget", None)
    if chosen is not None:
        return chosen
    return DEFAULT_COMPILES_BUDGET if any(compiles(s) for s in subjects) else 0.0


def _subjects(config):
    from bn_reference.harness.plugin import subjects_of

    return subjects_of(config)


def pytest_report_header(config):
    if not activation.is_active(config):
        return []
    subjects = _subjects(config)
    lines = []
    bucketed = [s.spec for s in subjects if compiles(s)]
    if bucketed:
        lines.append(f"bn-props shape buckets (bn_compiles) for {', '.join(bucketed)}: every side snapped to one of 0, 1, 2, 3, 5, 64, 127, 1024, 1025, 4095")
    seconds = budget_seconds(config, subjects)
    if seconds:
        lines.append(f"bn-props budget: {seconds:g} s, spread over the cells ({MIN_EXAMPLES} examples at least, the profile's max_examples at most)")
    return lines


def pytest_collection_finish(session):
    config = session.config
    if not activation.is_active(config):
        return
    seconds = budget_seconds(config, _subjects(config))
    cells = [i for i in session.items if getattr(getattr(i, "callspec", None), "params", {}).get("subject") is not None]
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    config.stash[_STATE] = {
        "per_cell": seconds * workers / len(cells) if seconds and cells else 0.0,
        "seconds": 0.0,
        "examples": 0,
    }


def _examples_for(item, state, cap: int) -> int | None:
    """The cell's example count under the budget, or None (the profile's own)."""
    if not state or not state["per_cell"]:
        return None
    xfail = item.get_closest_marker("xfail")
    if xfail is not None and xfail.kwargs.get("strict"):
        return None
    if not state["examples"]:
        return min(cap, MIN_EXAMPLES)  # the worker's first cell measures the cost of an example
    per_example = state["seconds"] / state["examples"]
    return int(min(cap, max(MIN_EXAMPLES, state["per_cell"] // max(per_example, 1e-6))))


@contextlib.contextmanager
def applied(item, subject):
    """Around one subject test: its shapes bucketed if the subject compiles, its example
    count set by the budget (restored after); yields ``done(examples)``, to call with the
    examples the test drew so that later cells' counts use the cost measured."""
    state = item.config.stash.get(_STATE, None)
    test = getattr(item, "obj", None)
    original = getattr(test, "_hypothesis_internal_use_settings", None)
    n = None if original is None else _examples_for(item, state, original.max_examples)
    if n is not None:
        test._hypothesis_internal_use_settings = settings(original, max_examples=n)
    start = time.perf_counter()

    def done(examples: int) -> None:
        if state is not None and examples:
            state["seconds"] += time.perf_counter() - start
            state["examples"] += examples

    try:
        with shape_buckets(compiles(subject)):
            yield done
    finally:
        if original is not None:
            test._hypothesis_internal_use_settings = original


def median_call_line(medians: dict[str, list[float]]) -> str:
    """One line: each subject's median call time (the median of its cells' medians)."""
    parts = [f"{spec} {1e3 * statistics.median(v):.3g} ms" for spec, v in medians.items() if v]
    return "median subject call: " + "; ".join(parts) if parts else ""
