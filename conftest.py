"""The checkout's pytest configuration.

* Load the bn-props pytest plugin even before it is installed (when installed, its pytest11
  entry point of the same name has loaded it and this is a no-op).
* Longest modules first: the collected tests are ordered by their module's recorded time
  (``.test_durations``, pytest-split's file), longest first, each module's tests kept
  together and in order (module fixtures are set up once per worker). With ``-n 2`` a long
  self-test (the kill matrix, the examples' suite run) then starts at the beginning instead
  of being the last thing one worker does while the other idles.
* The duration budget (``.ci/budget.toml``): after a run, the tests that took longer than
  their budget are listed by the terminal summary, beside pytest's ``--durations`` list
  (CI prints the ten slowest). Printed, never asserted: a time is a benchmark figure, and a
  loaded machine is not a failing test.
"""
import json
import tomllib
from pathlib import Path

pytest_plugins = ("bn_reference.harness.plugin",)

BUDGET_FILE = Path(__file__).with_name(".ci") / "budget.toml"
DURATIONS_FILE = Path(__file__).with_name(".test_durations")
_seconds: dict[str, float] = {}


def budget() -> tuple[dict[str, float], float]:
    """``({test id: seconds}, default seconds)`` from ``.ci/budget.toml``."""
    data = tomllib.loads(BUDGET_FILE.read_text()) if BUDGET_FILE.exists() else {}
    per_test = data.get("tests", {})
    return {k: float(v) for k, v in per_test.items()}, float(data.get("default", {}).get("seconds", float("inf")))


def module_seconds() -> dict[str, float]:
    """``{module path: recorded seconds}`` from ``.test_durations``."""
    totals: dict[str, float] = {}
    if DURATIONS_FILE.exists():
        for nodeid, seconds in json.loads(DURATIONS_FILE.read_text()).items():
            module = nodeid.split("::", 1)[0]
            totals[module] = totals.get(module, 0.0) + seconds
    return totals


def pytest_collection_modifyitems(config, items):
    """Longest modules first (a stable sort: the same order in every xdist worker)."""
    totals = module_seconds()
    items.sort(key=lambda item: -totals.get(item.nodeid.split("::", 1)[0], 0.0))


def pytest_runtest_logreport(report):
    """A test's wall time: setup, call and teardown (module fixtures land in the first test)."""
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration


def over_budget(seconds: dict[str, float]) -> list[tuple[str, float, float]]:
    """``(test id, seconds, budget)`` of each test over its budget (a parametrized test's
    budget may be given for the function, ``path::name``), longest first."""
    per_test, default = budget()
    rows = []
    for nodeid, took in seconds.items():
        limit = per_test.get(nodeid, per_test.get(nodeid.split("[", 1)[0], default))
        if took > limit:
            rows.append((nodeid, took, limit))
    return sorted(rows, key=lambda r: -r[1])


def pytest_terminal_summary(terminalreporter):
    rows = over_budget(_seconds)
    if not rows or not BUDGET_FILE.exists():
        return
    terminalreporter.section("tests over their duration budget (.ci/budget.toml)")
    for nodeid, took, limit in rows[:20]:
        terminalreporter.line(f"{took:8.1f} s (budget {limit:g} s)  {nodeid}")
    if len(rows) > 20:
        terminalreporter.line(f"... and {len(rows) - 20} more")
