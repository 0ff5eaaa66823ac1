"""pytest plugin used by ``benchmarks/bench.py`` (loaded with ``-p bench_plugin``).

On the controller it appends one JSON line per test to ``$BN_BENCH_OUT``: the test id,
its subject and property, the outcome, the call-phase duration, the number of examples
and the seconds spent inside the subject (both carried by bn-props' ``user_properties``).

With ``BN_BENCH_STOP_AT_FIRST_FAILURE=1`` (time-to-first-failure runs, without xdist) a
subject's later tests are skipped once one of its tests has failed: only the time up to
the first failure is being measured.
"""
from __future__ import annotations

import json
import os

import pytest

from bn_reference.mathematics.checks import CELL_KEY as _CELL_KEY, EXAMPLES_KEY as _EXAMPLES_KEY, SUBJECT_SECONDS_KEY as _SUBJECT_SECONDS_KEY

_failed_subjects: set[str] = set()


def _cell(report_or_item):
    return dict(getattr(report_or_item, "user_properties", ())).get(_CELL_KEY)


def pytest_runtest_setup(item):
    cell = _cell(item)
    if os.environ.get("BN_BENCH_STOP_AT_FIRST_FAILURE") and cell and cell[0] in _failed_subjects:
        pytest.skip("bench: this subject already failed")


def pytest_runtest_logreport(report):
    cell = _cell(report)
    if cell and report.failed:
        _failed_subjects.add(cell[0])


def pytest_configure(config):
    if os.environ.get("BN_BENCH_OUT") and not hasattr(config, "workerinput"):  # the controller writes
        config.pluginmanager.register(_Recorder(os.environ["BN_BENCH_OUT"]), "bn-bench-recorder")


class _Recorder:
    def __init__(self, path: str):
        self.path = path

    def pytest_runtest_logreport(self, report):
        props = dict(report.user_properties)
        if _CELL_KEY not in props:
            return
        if report.when != "call" and not (report.when == "setup" and report.skipped):
            return
        record = {
            "nodeid": report.nodeid,
            "subject": props[_CELL_KEY][0],
            "property": props[_CELL_KEY][1],
            "outcome": report.outcome,
            "duration": report.duration,
            "examples": props.get(_EXAMPLES_KEY, 0),
            "subject_seconds": props.get(_SUBJECT_SECONDS_KEY, 0.0),
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
