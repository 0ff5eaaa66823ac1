"""The pytest plugin: choose subjects, parametrize properties over them, pick the
Hypothesis profile, name the subjects in the header, report the error-model margins.

Options: ``--bn-impl SPEC`` (repeatable; env ``BN_IMPL``, comma-separated) replaces the
built-in subjects. Each property that takes a ``subject`` argument runs once per subject
and its test id is the spec exactly as given, e.g. ``test_zero_mean[mypkg.bn:my_bn]``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from bn_reference.harness import checks
from bn_reference.harness import report as report_mod
from bn_reference.harness import repro
from bn_reference.subjects.deviations import deviation_for
from bn_reference.harness.profiles import PROFILES, default_profile, register_profiles
from bn_reference.subjects import BUILTINS, LAYER_SUBJECTS, SubjectSpecError, load_subject

register_profiles()

# Guards against hostile subjects: a per-call timeout, and surviving a worker's death.
pytest_plugins = ("bn_reference.harness.watchdog", "bn_reference.harness.crashes", "bn_reference.harness.exampledb")

_RATIO_KEY = checks.RATIO_KEY
_CELL_KEY = checks.CELL_KEY
_EXAMPLES_KEY = checks.EXAMPLES_KEY
_SUBJECT_SECONDS_KEY = checks.SUBJECT_SECONDS_KEY
_TRACKER = pytest.StashKey[checks.Tracker]()
_SUBJECTS = pytest.StashKey[list]()
_USER_CHOSEN = pytest.StashKey[bool]()


def pytest_addoption(parser):
    group = parser.getgroup("bn-props")
    group.addoption(
        "--bn-impl",
        action="append",
        default=[],
        metavar="SPEC",
        help="subject to check: module:attr or a built-in name "
        f"({', '.join(BUILTINS)}; on request only: {', '.join(LAYER_SUBJECTS)}); "
        "repeatable; env BN_IMPL (comma-separated). Default: the first group.",
    )
    group.addoption(
        "--bn-list",
        action="store_true",
        default=False,
        help="list the properties (first line of each docstring) and the selected subjects, then exit",
    )
    group.addoption(
        "--bn-repro-dir",
        metavar="DIR",
        default=None,
        help="save a runnable repro script for each falsified property in DIR",
    )
    group.addoption(
        "--bn-report",
        metavar="PATH",
        default=None,
        help="write the conformance matrix as JSON to PATH and as Markdown to PATH with suffix .md "
        "(schema: bn_reference.harness.report.SCHEMA)",
    )


def selected_specs(config) -> tuple[list[str], bool]:
    specs = list(config.getoption("bn_impl") or [])
    if not specs and os.environ.get("BN_IMPL"):
        specs = [s.strip() for s in os.environ["BN_IMPL"].split(",") if s.strip()]
    if specs:
        return list(dict.fromkeys(specs)), True
    return list(BUILTINS), False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    specs, user_chosen = selected_specs(config)
    subjects = []
    for spec in specs:
        try:
            subject = load_subject(spec)
            subject.dtypes  # validates bn_dtypes early
            subjects.append(subject)
        except SubjectSpecError as exc:
            raise pytest.UsageError(f"--bn-impl: {exc}") from None
    config.stash[_SUBJECTS] = subjects
    config.stash[_USER_CHOSEN] = user_chosen
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        config.pluginmanager.register(Matrix(), "bn-props-matrix")
    if not config.getoption("hypothesis_profile", None):
        profile = default_profile()
        if profile not in PROFILES:
            raise pytest.UsageError(f"HYPOTHESIS_PROFILE={profile!r}: choose one of {', '.join(PROFILES)}")
        settings.load_profile(profile)


def subjects_of(config):
    return config.stash[_SUBJECTS]


def pytest_report_header(config):
    names = ", ".join(s.spec for s in subjects_of(config))
    origin = "chosen with --bn-impl/BN_IMPL" if config.stash[_USER_CHOSEN] else "built-in"
    lines = [f"bn-props subjects ({origin}): {names}", f"bn-props hypothesis profile: {settings._current_profile}"]
    if config.stash[_USER_CHOSEN]:
        lines.append("bn-props: only properties that take a subject run (self-tests and built-in layer laws deselected)")
    return lines


def pytest_generate_tests(metafunc):
    if "subject" not in metafunc.fixturenames:
        return
    subjects = subjects_of(metafunc.config)
    if "dtype" in metafunc.fixturenames:
        pairs = [(s, d) for s in subjects for d in s.dtypes]
        metafunc.parametrize("subject,dtype", pairs, ids=[f"{s.spec}-{d}" for s, d in pairs])
    else:
        metafunc.parametrize("subject", subjects, ids=[s.spec for s in subjects])


def cell_key(spec: str, name: str, callspec_id: str) -> tuple[str, str]:
    """The conformance-matrix cell of a subject test: (spec, property), the property being
    the function name plus the parameters after the spec, e.g.
    ``("reference", "test_inference_returns_input[float32-training=None]")``."""
    rest = callspec_id.removeprefix(spec).lstrip("-")
    return spec, name + (f"[{rest}]" if rest else "")


def pytest_collection_modifyitems(config, items):
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "subject" in params:
            known = deviation_for(params["subject"].spec, item.originalname, params.get("dtype"))
            if known is not None:
                item.add_marker(pytest.mark.xfail(strict=True, reason=known.reason))
            item.user_properties.append((_CELL_KEY, cell_key(params["subject"].spec, item.originalname, item.callspec.id)))
    if not config.stash[_USER_CHOSEN]:
        return
    # Checking chosen subjects: keep only the properties that take a subject (drop the
    # harness self-tests and the laws of the built-in layers, which ignore --bn-impl).
    keep, drop = [], []
    for item in items:
        takes_subject = "subject" in getattr(item, "fixturenames", ())
        (keep if takes_subject and not item.get_closest_marker("meta") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session):
    config = session.config
    if not config.getoption("bn_list"):
        return
    tw = config.get_terminal_writer()
    tw.line("bn-props subjects: " + ", ".join(f"{s.spec} [{', '.join(s.dtypes)}]" for s in subjects_of(config)))
    tw.line("bn-props properties:")
    seen = {}
    for item in session.items:
        if "subject" in getattr(item, "fixturenames", ()) and item.originalname not in seen:
            doc = (getattr(item, "function", None).__doc__ or "").strip().splitlines()
            seen[item.originalname] = (item.location[0], doc[0] if doc else "")
    for name, (path, first) in sorted(seen.items()):
        tw.line(f"  {name:40s} {first}  ({path})")
    pytest.exit("listed", returncode=0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with checks.tracking() as tracker:
        yield
    item.stash[_TRACKER] = tracker
    if "subject" in getattr(item, "fixturenames", ()):
        if tracker.worst > 0:
            item.user_properties.append((_RATIO_KEY, tracker.worst))
        if tracker.examples:
            item.user_properties.append((_EXAMPLES_KEY, tracker.examples))
        if tracker.subject_seconds:
            item.user_properties.append((_SUBJECT_SECONDS_KEY, tracker.subject_seconds))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    tracker = item.stash.get(_TRACKER, None)
    if call.when != "call" or not report.failed or tracker is None or not tracker.calls:
        return
    params = item.callspec.params
    text = repro.snippet(item.nodeid, params["subject"].spec, params, tracker.calls, report.longreprtext)
    report.sections.append(("bn-props repro (python repro.py, from the checkout)", text))
    directory = item.config.getoption("bn_repro_dir")
    if directory:
        path = Path(directory) / repro.file_name(item.nodeid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        report.sections.append(("bn-props repro file", str(path)))


class Matrix:
    """Outcome and worst err/bound ratio per (subject, property), gathered on the controller
    (xdist workers' reports carry them in ``user_properties``)."""

    def __init__(self):
        self.cells: dict[tuple[str, str], dict] = {}

    def pytest_runtest_logreport(self, report):
        props = dict(report.user_properties)
        if _CELL_KEY not in props:
            return
        cell = self.cells.setdefault(
            tuple(props[_CELL_KEY]),
            {"outcome": "passed", "ratio": None, "examples": None, "duration": 0.0, "nodeid": report.nodeid, "failure": None},
        )
        cell["duration"] += report.duration
        if report.when == "call" or report.outcome != "passed":
            outcome = report.outcome
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.skipped else "xpassed"
            elif report.when != "call" and report.failed:
                outcome = "error"
            if cell["outcome"] == "passed" or outcome in ("failed", "error"):
                cell["outcome"] = outcome
            if report.failed:
                cell["failure"] = report_mod.failure_details(report.longreprtext)
        if _RATIO_KEY in props:
            cell["ratio"] = max(cell["ratio"] or 0.0, props[_RATIO_KEY])
        if _EXAMPLES_KEY in props:
            cell["examples"] = props[_EXAMPLES_KEY]

    def render(self) -> str:
        from io import StringIO

        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        subjects = list(dict.fromkeys(s for s, _ in self.cells))
        laws = sorted({law for _, law in self.cells})
        table = Table(title="bn-props conformance: outcome (worst err/bound; 1.0 = at the error model's bound)")
        table.add_column("property", no_wrap=True)
        for s in subjects:
            table.add_column(escape(s), justify="right")
        for law in laws:
            row = [escape(law)]
            for s in subjects:
                cell = self.cells.get((s, law))
                if cell is None:
                    row.append("")
                    continue
                text = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip", "xfailed": "xfail", "xpassed": "XPASS"}[cell["outcome"]]
                if cell["ratio"] is not None and cell["outcome"] == "passed":
                    text += f" {cell['ratio']:.2g}"
                row.append(text)
            table.add_row(*row)
        buf = StringIO()
        Console(file=buf, width=max(len(law) for law in laws) + sum(max(len(s), 10) + 3 for s in subjects) + 4, color_system=None).print(table)
        return buf.getvalue()


def pytest_terminal_summary(terminalreporter, config):
    matrix = config.pluginmanager.get_plugin("bn-props-matrix")
    if matrix is None or not matrix.cells:
        return
    terminalreporter.section("bn-props conformance matrix")
    terminalreporter.write(matrix.render())
    path = config.getoption("bn_report")
    if path:
        specs = [s.spec for s in subjects_of(config)]
        json_path, md_path = report_mod.write(path, report_mod.build(matrix.cells, specs, settings._current_profile))
        terminalreporter.write_line(f"bn-props report: {json_path} (JSON), {md_path} (Markdown)")
