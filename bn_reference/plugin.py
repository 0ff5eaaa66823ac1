"""The pytest plugin: choose subjects, parametrize properties over them, pick the
Hypothesis profile, name the subjects in the header, report the error-model margins.

Options: ``--bn-impl SPEC`` (repeatable; env ``BN_IMPL``, comma-separated) replaces the
built-in subjects. Each property that takes a ``subject`` argument runs once per subject
and its test id is the spec exactly as given, e.g. ``test_zero_mean[mypkg.bn:my_bn]``.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import settings

from . import checks
from .profiles import PROFILES, default_profile, register_profiles
from .subjects import BUILTINS, SubjectSpecError, load_subject

register_profiles()

_RATIO_KEY = "bn_worst_ratio"
_SUBJECTS = pytest.StashKey[list]()
_USER_CHOSEN = pytest.StashKey[bool]()
_MARGINS = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("bn-props")
    group.addoption(
        "--bn-impl",
        action="append",
        default=[],
        metavar="SPEC",
        help="subject to check: module:attr or a built-in name "
        f"({', '.join(BUILTINS)}); repeatable; env BN_IMPL (comma-separated). "
        "Default: all built-ins.",
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
    config.stash[_MARGINS] = {}
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
        lines.append("bn-props: harness self-tests (marker 'meta') deselected while checking chosen subjects")
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


def pytest_collection_modifyitems(config, items):
    if not config.stash[_USER_CHOSEN]:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("meta") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with checks.tracking() as box:
        yield
    if "subject" in getattr(item, "fixturenames", ()) and box[0] > 0:
        item.user_properties.append((_RATIO_KEY, box[0]))


def pytest_runtest_logreport(report):
    # Runs on the controller for xdist workers' reports too (user_properties travel).
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == _RATIO_KEY:
            _margins[report.nodeid] = (report.outcome, value)


_margins: dict[str, tuple[str, float]] = {}


def pytest_terminal_summary(terminalreporter, config):
    if not _margins:
        return
    terminalreporter.section("bn-props: worst err/bound ratio per property (1.0 = at the error model's bound)")
    for nodeid, (outcome, ratio) in sorted(_margins.items()):
        terminalreporter.write_line(f"{ratio:10.3g}  {outcome:7s} {nodeid.split('::')[-1]}")
