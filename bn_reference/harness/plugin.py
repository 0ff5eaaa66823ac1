"""The pytest plugin: choose subjects, parametrize properties over them, pick the
Hypothesis profile, name the subjects in the header, report the error-model margins.

Options: ``--bn-impl SPEC`` (repeatable; env ``BN_IMPL``, comma-separated) replaces the
built-in subjects. Each property that takes a ``subject`` argument runs once per subject
and its test id is the spec exactly as given, e.g. ``test_zero_mean[mypkg.bn:my_bn]``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

import statistics

from bn_reference.harness import activation, applicability, failure
from bn_reference.harness import report as report_mod
from bn_reference.harness import dtypes as dtypes_mod
from bn_reference.mathematics import checks
from bn_reference.harness import repro
from bn_reference.harness.maxfail import MaxfailStop
from bn_reference.subjects.deviations import deviation_for
from bn_reference.harness.profiles import PROFILES, default_profile, draws_of, register_profiles
from bn_reference.subjects import BUILTINS, LAYER_SUBJECTS, SubjectSpecError, default_specs, load_subject
from bn_reference.subjects.signature import check_signature
from bn_reference.properties import BUILT_IN_LAW_MODULES

# Guards against hostile subjects: a per-call timeout, and surviving a worker's death.
pytest_plugins = ("bn_reference.harness.budget", "bn_reference.harness.watchdog", "bn_reference.harness.crashes", "bn_reference.harness.exampledb", "bn_reference.harness.determinism", "bn_reference.harness.isolation")

_RATIO_KEY = checks.RATIO_KEY
_CELL_KEY = checks.CELL_KEY
_EXAMPLES_KEY = checks.EXAMPLES_KEY
_SUBJECT_SECONDS_KEY = checks.SUBJECT_SECONDS_KEY
_MEDIAN_CALL_KEY = checks.MEDIAN_CALL_KEY
_COVERED_KEY = checks.COVERED_KEY
_LAW_KEY = "bn_law"  # the property's first docstring sentence (the report's row title)
_TRACKER = pytest.StashKey[checks.Tracker]()
# The suite's markers and warning filters (pyproject.toml's in the checkout), declared
# wherever it runs, so a project's --strict-markers or filterwarnings=error leave it alone.
_SUITE_INI = (
    ("markers", (
        "gradients: properties of the gradient of BN (vjp); deselect with -m 'not gradients'",
        "layers: laws of the real Keras layers and TF's fused kernel beyond the contract; deselect with -m 'not layers'",
        applicability.MARKER_LINE,
    )),
    ("filterwarnings", (
        "ignore::DeprecationWarning:tensorflow.*",
        "ignore::DeprecationWarning:keras.*",
        "ignore::DeprecationWarning:google.*",
    )),
)
_SUBJECTS = pytest.StashKey[list]()
_USER_CHOSEN = pytest.StashKey[bool]()


def pytest_addoption(parser):
    activation.addini(parser)  # when the plugin takes part in a run at all (installed, it is loaded into every one)
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
        help="save the runnable repro script of each falsified property in DIR "
        "(default: .bn-props/repro under the rootdir); its path is printed with the failure",
    )
    group.addoption(
        "--bn-report",
        action="append",
        metavar="PATH",
        default=[],
        help=report_mod.OPTION_HELP,
    )


def selected_specs(config) -> tuple[list[str], bool]:
    specs = list(config.getoption("bn_impl") or [])
    if not specs and os.environ.get("BN_IMPL"):
        specs = [s.strip() for s in os.environ["BN_IMPL"].split(",") if s.strip()]
    if specs:
        return list(dict.fromkeys(specs)), True
    return default_specs()[0], False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    specs, user_chosen = selected_specs(config)
    if not activation.activate(config, user_chosen):  # a run that is not about bn-props: stay inert
        config.stash[_SUBJECTS], config.stash[_USER_CHOSEN] = [], False
        return
    _pause_gc(config)
    register_profiles()  # only now: Hypothesis loads its own "ci" profile by itself in CI, ours replaces it
    failure.print_arrays_compactly()
    if user_chosen:  # module:attr specs import from the directory pytest runs in, as with python -m pytest
        here = str(config.invocation_params.dir)
        if here not in sys.path:
            sys.path.insert(0, here)
    for name, lines in _SUITE_INI:  # what the checkout's pyproject.toml declares, wherever the suite runs
        for line in lines:
            config.addinivalue_line(name, line)
    subjects = []
    for spec in specs:
        try:
            subject = load_subject(spec)
            subject.dtypes  # validates bn_dtypes early
            check_signature(subject)  # a wrong signature: one usage error, not one shrunk failure per property
            subject.accumulation  # and bn_accumulation
            subject.families  # and bn_norm, bn_scale, bn_mask, bn_replicas
            subjects.append(subject)
        except SubjectSpecError as exc:
            raise pytest.UsageError(f"--bn-impl: {exc}") from None
    dtypes_mod.settle(config, subjects)  # probe the dtypes of subjects that declare none
    config.stash[_SUBJECTS] = subjects
    config.stash[_USER_CHOSEN] = user_chosen
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        config.pluginmanager.register(Matrix(report_mod.contracts(subjects), budgeted=bool(_budget().budget_seconds(config, subjects))), "bn-props-matrix")
        config.pluginmanager.register(MaxfailStop(), "bn-props-maxfail")  # -x under xdist: exit 1
    chosen = config.getoption("hypothesis_profile", None)
    if chosen and not _is_profile(chosen):  # else Hypothesis' own plugin fails with an INTERNALERROR
        raise pytest.UsageError(f"--hypothesis-profile={chosen!r}: choose one of {', '.join(PROFILES)}")
    if not chosen:
        profile = default_profile()
        if profile not in PROFILES:
            raise pytest.UsageError(f"HYPOTHESIS_PROFILE={profile!r}: choose one of {', '.join(PROFILES)}")
        settings.load_profile(profile)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist: hand each worker the controller's dtype probe (``dtypes.settle``)."""
    dtypes_mod.to_worker(node)


def _budget():
    """``bn_reference.harness.budget``, imported where used: pytest_plugins registers it first,
    so pytest can rewrite its asserts (an earlier import prints PytestAssertRewriteWarning)."""
    from bn_reference.harness import budget

    return budget


def _is_profile(name: str) -> bool:
    """Whether a Hypothesis profile of that name is registered (ours, or a conftest's)."""
    try:
        settings.get_profile(name)
    except Exception:  # noqa: BLE001 - hypothesis.errors.InvalidArgument
        return False
    return True


def subjects_of(config):
    return config.stash[_SUBJECTS]


def pytest_report_header(config):
    if not activation.is_active(config):
        return []
    names = ", ".join(s.spec for s in subjects_of(config))
    origin = "chosen with --bn-impl/BN_IMPL" if config.stash[_USER_CHOSEN] else "built-in"
    lines = [f"bn-props subjects ({origin}): {names}", f"bn-props hypothesis profile: {settings._current_profile}"]
    if not config.stash[_USER_CHOSEN]:
        lines += [f"bn-props: built-in {spec} not checked: {why}" for spec, why in default_specs()[1].items()]
    lines += dtypes_mod.header_lines(subjects_of(config))
    lines.append("bn-props error-model contract (tolerance item 6): " + report_mod.contracts_line(report_mod.contracts(subjects_of(config))))
    lines += activation.header(config)
    if config.stash[_USER_CHOSEN]:
        lines.append("bn-props: only properties that take a subject run (self-tests and built-in layer laws deselected)")
    return lines


_NO_SUBJECT_ID = "no-subject-of-its-family"  # the one cell of a law no checked subject's family has (deselected)


def pytest_generate_tests(metafunc):
    if "subject" not in metafunc.fixturenames or not activation.is_active(metafunc.config):
        return
    tags = applicability.tags_of(metafunc.definition)
    subjects = [s for s in subjects_of(metafunc.config) if applicability.applies(s, tags)]
    if not subjects:  # a law of another family than every subject's: one skipped cell saying so
        names = ["subject", "dtype"] if "dtype" in metafunc.fixturenames else ["subject"]
        why = f"a law of {applicability.describe(tags)}; no subject checked is one"
        metafunc.parametrize(",".join(names), [pytest.param(*[None] * len(names), marks=pytest.mark.skip(reason=why), id=_NO_SUBJECT_ID)])
        return
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


def pytest_ignore_collect(collection_path, config):
    """Checking chosen subjects, the suite's modules of built-in layer laws (no property there
    takes a subject: ``bn_reference.properties.BUILT_IN_LAW_MODULES``) are not even imported:
    they would be deselected, and they import TensorFlow."""
    if not activation.is_active(config) or not config.stash[_USER_CHOSEN]:
        return None
    if collection_path.name in BUILT_IN_LAW_MODULES and collection_path.resolve().parent == activation.suite_dir():
        return True
    return None


def pytest_collection_modifyitems(config, items):
    if not activation.is_active(config):
        return
    # Known deviations are strict where the draws are the ones they were measured with
    # (bn_reference.subjects.deviations): their profile, and no --hypothesis-seed.
    seeded = config.getoption("hypothesis_seed", None) is not None
    profile = None if seeded else draws_of(config.getoption("hypothesis_profile", None) or default_profile())
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("subject") is not None:
            known = deviation_for(params["subject"].spec, item.originalname, params.get("dtype"), profile=profile)
            if known is not None:
                deviation, strict = known
                item.add_marker(pytest.mark.xfail(strict=strict, reason=deviation.reason))
            item.user_properties.append((_CELL_KEY, cell_key(params["subject"].spec, item.originalname, item.callspec.id)))
            item.user_properties.append((_LAW_KEY, failure.first_sentence(getattr(getattr(item, "function", None), "__doc__", None))))
    # A law of another family than every checked subject's (applicability: its one cell of no
    # subject) is deselected, not skipped: for these subjects the mathematics does not say it.
    unrelated = [i for i in items if getattr(getattr(i, "callspec", None), "id", "").endswith(_NO_SUBJECT_ID)]
    if unrelated:
        config.hook.pytest_deselected(items=unrelated)
        items[:] = [i for i in items if i not in unrelated]
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


_GC_PAUSED = pytest.StashKey[bool]()


def _pause_gc(config) -> None:
    """No cyclic garbage collection until collection has finished, in a process that collects
    (an xdist worker, or a run without xdist; not the xdist controller, which collects
    nothing). Importing TensorFlow and Keras at collection builds ~375,000 long-lived
    objects, and the full collections it triggers walk all of them again each time:
    about 1 s of every worker's start-up. ``pytest_collection_finish`` freezes them and
    turns collection back on (``pytest_unconfigure`` too, should collection not finish)."""
    import gc

    distributing = config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))
    if gc.isenabled() and (hasattr(config, "workerinput") or not distributing):
        gc.disable()
        config.stash[_GC_PAUSED] = True


def _resume_gc(config) -> None:
    if config.stash.get(_GC_PAUSED, False):
        import gc

        config.stash[_GC_PAUSED] = False
        gc.enable()


def pytest_collection_finish(session):
    """Freeze what collection left alive (``gc.freeze``), then resume garbage collection
    (``_pause_gc``): TensorFlow, Keras, Hypothesis and the collected tests are ~375,000
    objects that live to the end of the run, and every full (generation 2) collection
    walked all of them: 0.2-0.4 s each (the float32 properties, one process: 2.2 s of 52 s
    in full collections; frozen, 0.6 s). Frozen objects are still freed by reference
    counting; only the cyclic collector skips them. What a test computes does not depend
    on when collections run."""
    if activation.is_active(session.config):
        import gc

        gc.freeze()
        _resume_gc(session.config)


def pytest_unconfigure(config):
    _resume_gc(config)
    if activation.is_active(config):
        import gc

        # Back into the collected generations: objects frozen at collection are otherwise
        # never collected, and extensions that count their live objects at exit complain
        # (triton's nanobind bindings printed "nanobind: leaked 64 types!" after each run).
        gc.unfreeze()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """``--bn-list`` lists from this process: no xdist workers are started for it."""
    if config.getoption("bn_list", False):
        for name, value in (("numprocesses", 0), ("dist", "no"), ("tx", [])):
            if hasattr(config.option, name):
                setattr(config.option, name, value)


def property_summaries(items) -> dict[str, list[tuple[str, str]]]:
    """``{module path: [(property, first sentence of its docstring)]}`` of the collected
    properties that take a subject, in collection order (a law of no checked subject's
    family, collected as one skipped cell without a subject, is not listed)."""
    out: dict[str, list[tuple[str, str]]] = {}
    seen = set()
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "subject" in params and params["subject"] is None:
            continue
        if "subject" in getattr(item, "fixturenames", ()) and item.originalname not in seen:
            seen.add(item.originalname)
            doc = getattr(getattr(item, "function", None), "__doc__", None)
            out.setdefault(item.location[0], []).append((item.originalname, failure.first_sentence(doc)))
    return out


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    """``--bn-list``: the subjects, then each property with the first sentence of its
    docstring (whole, wrapped under its column), grouped by module; nothing runs."""
    config = session.config
    if not config.getoption("bn_list", False) or not activation.is_active(config):
        return None
    import textwrap

    tw = config.get_terminal_writer()
    tw.line("")
    tw.line("bn-props subjects: " + ", ".join(f"{s.spec} [{', '.join(s.dtypes)}]" for s in subjects_of(config)))
    groups = property_summaries(session.items)
    width = max((len(name) for rows in groups.values() for name, _ in rows), default=0) + 4
    if tw.fullwidth - width < 60:  # a narrow terminal: each summary under its name
        width = 6
    for path, rows in groups.items():
        tw.line(f"{path}:")
        for name, summary in rows:
            wrapped = textwrap.wrap(summary, max(tw.fullwidth - width - 1, 40)) or [""]
            if width == 6:
                tw.line(f"  {name}")
                tw.line(" " * width + wrapped[0])
            else:
                tw.line(f"  {name:<{width - 2}}{wrapped[0]}")
            for more in wrapped[1:]:
                tw.line(" " * width + more)
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if not activation.is_active(item.config):
        yield
        return
    params = getattr(getattr(item, "callspec", None), "params", {})
    if params.get("subject") is None:
        with checks.tracking() as tracker:
            outcome = yield
        item.stash[_TRACKER] = tracker
        return
    with checks.tracking() as tracker, _budget().applied(item, params["subject"]) as done:  # shape buckets, --bn-budget
        outcome = yield
        done(tracker.examples)
    item.stash[_TRACKER] = tracker
    if "subject" in getattr(item, "fixturenames", ()):
        # The worst err/bound of the examples the verdict rests on (report.SCHEMA): all of
        # them for a pass; for a failure, the minimal falsifying example (Hypothesis runs it
        # last), i.e. the err/bound its message prints; none if not finite.
        ratio = tracker.example_worst if outcome.excinfo is not None else tracker.worst
        if 0 < ratio < float("inf"):
            item.user_properties.append((_RATIO_KEY, ratio))
        if tracker.examples:
            item.user_properties.append((_EXAMPLES_KEY, tracker.examples))
        if tracker.subject_seconds:
            item.user_properties.append((_SUBJECT_SECONDS_KEY, tracker.subject_seconds))
        if tracker.call_seconds:
            item.user_properties.append((_MEDIAN_CALL_KEY, statistics.median(tracker.call_seconds)))
        if tracker.covered:
            item.user_properties.append((_COVERED_KEY, sorted(tracker.covered)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A falsified property's report: one screen (``failure.compose``: the law, what the
    subject received, the worst element, the shrunk example, the repro path and the replay
    line) in place of the traceback when a law failed (an AssertionError); after the
    traceback when the subject raised. The same, as data, rides on ``report.bn_failure``
    to the controller's ``Matrix`` (and the JSON report)."""
    outcome = yield
    report = outcome.get_result()
    tracker = item.stash.get(_TRACKER, None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    if call.when != "call" or not report.failed or tracker is None or params.get("subject") is None or call.excinfo is None:
        return
    if item.get_closest_marker("xfail") is not None and not item.config.option.runxfail:
        return  # a known deviation: expected to fail
    exc = call.excinfo.value
    notes = list(getattr(exc, "__notes__", None) or [])
    blob = failure.blob_of(notes)
    repro_path = None
    if isinstance(exc, BaseExceptionGroup):  # distinct failures, each shown with its own draws and
        return  # blob; the recorded calls are those of whichever ran last, so none is claimed
    if tracker.calls:
        text = repro.snippet(item.nodeid, params["subject"].spec, params, tracker.calls, blob or "")
        repro_path = _save_repro(item, text)
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    message = failure.compose(exc, tracker.calls, property_doc=doc, repro_path=repro_path, notes=notes)
    report.bn_failure = {
        "message": message,
        "reproduce_failure": blob,
        "falsifying_example": "\n".join(failure.draws_of(notes)) or None,
        "calls": [failure.encode_call(c) for c in tracker.calls],
        "repro": repro_path,
    }
    if isinstance(exc, AssertionError):
        report.longrepr = _one_screen(item, call.excinfo, message)
    else:
        report.sections.append(("bn-props: the falsifying example", message))


def _save_repro(item, text: str) -> str:
    """Write the repro script (``--bn-repro-dir``, default ``.bn-props/repro`` under the
    rootdir); return its path, relative to the current directory when inside it."""
    directory = item.config.getoption("bn_repro_dir") or item.config.rootpath / ".bn-props" / "repro"
    path = Path(directory) / repro.file_name(item.nodeid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path.resolve())


def _one_screen(item, excinfo, message: str):
    """A pytest failure representation holding just ``message`` (no traceback: the law and
    its inputs say it all), located at the property's line that raised."""
    from _pytest._code.code import ReprEntry, ReprExceptionInfo, ReprFileLocation, ReprTraceback

    lineno = item.location[1] + 1
    for entry in excinfo.traceback:
        if Path(entry.path) == Path(item.path):
            lineno = entry.lineno + 1
    where = ReprFileLocation(item.location[0], lineno, type(excinfo.value).__name__)
    entry = ReprEntry(message.splitlines(), None, None, where, "value")
    first = str(excinfo.value).strip().splitlines()
    crash = ReprFileLocation(item.location[0], lineno, first[0] if first else type(excinfo.value).__name__)
    return ReprExceptionInfo(reprtraceback=ReprTraceback([entry], None, "value"), reprcrash=crash)


class Matrix:
    """Outcome and worst err/bound ratio per (subject, property), gathered on the controller
    (xdist workers' reports carry them in ``user_properties``)."""

    def __init__(self, contracts: dict[str, str] | None = None, budgeted: bool = False):
        self.cells: dict[tuple[str, str], dict] = {}
        self.budgeted = budgeted  # a --bn-budget run: each cell shows its examples
        self.contracts = dict(contracts or {})  # spec -> the half-precision contract it was held to

    def pytest_runtest_logreport(self, report):
        props = dict(report.user_properties)
        if _CELL_KEY not in props:
            return
        cell = self.cells.setdefault(
            tuple(props[_CELL_KEY]),
            {"outcome": "passed", "ratio": None, "examples": None, "duration": 0.0, "nodeid": report.nodeid, "failure": None},
        )
        if props.get(_LAW_KEY):
            cell["law"] = props[_LAW_KEY]
        cell["duration"] += report.duration
        if report.when == "call" or report.outcome != "passed":
            outcome = report.outcome
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.skipped else "xpassed"
                cell["reason"] = report.wasxfail or None  # the known deviation's cause
            elif report.when != "call" and report.failed:
                outcome = "error"
            if cell["outcome"] == "passed" or outcome in ("failed", "error"):
                cell["outcome"] = outcome
            if report.failed:
                cell["failure"] = getattr(report, "bn_failure", None) or report_mod.failure_details(report.longreprtext)
        if _RATIO_KEY in props:
            cell["ratio"] = max(cell["ratio"] or 0.0, props[_RATIO_KEY])
        if _EXAMPLES_KEY in props:
            cell["examples"] = props[_EXAMPLES_KEY]
        if _MEDIAN_CALL_KEY in props:
            cell["median_call"] = props[_MEDIAN_CALL_KEY]
        if _COVERED_KEY in props:
            cell["covered"] = sorted(set(cell.get("covered", ())) | set(props[_COVERED_KEY]))
        if report.skipped and not hasattr(report, "wasxfail"):
            cell["reason"] = _skip_reason(report)

    def render(self) -> str:
        from io import StringIO

        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        subjects = list(dict.fromkeys(s for s, _ in self.cells))
        laws = sorted({law for _, law in self.cells})
        table = Table(
            title="bn-props conformance: outcome (worst err/bound; 1.0 = at the error model's bound)",
            caption=escape("half-precision contract: " + report_mod.contracts_line({s: self.contracts[s] for s in subjects if s in self.contracts}))
            if self.contracts
            else None,
        )
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
                if cell["ratio"] is not None and cell["outcome"] in ("passed", "failed"):
                    text += f" {cell['ratio']:.2g}"
                if self.budgeted and cell["examples"]:
                    text += f" n={cell['examples']}"
                row.append(text)
            table.add_row(*row)
        if self.budgeted:
            medians = {s: [c["median_call"] for (spec, _), c in self.cells.items() if spec == s and c.get("median_call")] for s in subjects}
            table.caption = "\n".join(filter(None, [table.caption, "n=: the examples the cell ran (--bn-budget)", _budget().median_call_line(medians)]))
        buf = StringIO()
        Console(file=buf, width=max(len(law) for law in laws) + sum(max(len(s), 10) + 3 for s in subjects) + 4, color_system=None).print(table)
        return buf.getvalue()


XFAIL_LEGEND = (
    "xfail: a known deviation, failing as recorded (its cause: bn_reference/subjects/deviations.py, "
    "framework_findings.py); XPASS: a cell its cause reaches that these examples did not (it passed)."
)


def pytest_terminal_summary(terminalreporter, config):
    matrix = config.pluginmanager.get_plugin("bn-props-matrix")
    if matrix is None or not matrix.cells:
        return
    terminalreporter.section("bn-props conformance matrix")
    terminalreporter.write(matrix.render())
    outcomes = {cell["outcome"] for cell in matrix.cells.values()}
    if outcomes & {"xfailed", "xpassed"}:
        terminalreporter.write_line(XFAIL_LEGEND)
    paths = config.getoption("bn_report")
    if paths:
        subjects = subjects_of(config)
        report = report_mod.build(
            matrix.cells, [s.spec for s in subjects], settings._current_profile, contracts=report_mod.contracts(subjects),
            coverage={s.spec: dtypes_mod.coverage_record(s) for s in subjects},
            seed=_seed(config), environment=report_mod.environment(subjects),
        )
        for path in paths:
            written = report_mod.write(path, report)
            terminalreporter.write_line("bn-props report: " + ", ".join(f"{p} ({kind})" for p, kind in written))


def _seed(config) -> str:
    """How the run's examples were chosen, for the report's header: the ``--hypothesis-seed``
    given, else ``derandomized`` (the profile's fixed draws), else ``random``."""
    seed = config.getoption("hypothesis_seed", None)
    if seed is not None:
        return f"--hypothesis-seed={seed}"
    return "derandomized" if settings().derandomize else "random (no --hypothesis-seed)"


def _skip_reason(report) -> str | None:
    """A skipped cell's reason (pytest's ``(path, line, reason)`` longrepr)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return None
