"""``bn-props check``: the property suite against your own kernel, from any directory.

    bn-props check SPEC [SPEC ...] [-n N|auto] [--profile NAME] [--report PATH ...]
                   [--repro-dir DIR] [--db URL] [--budget DURATION] [-- PYTEST_ARGS ...]

SPEC is ``module:attr`` (``attr`` may be dotted), importable from the current directory, or
a built-in subject's name. First each SPEC is imported and its signature checked against
the contract, once (``bn_reference.subjects.signature``); then the installed suite runs in
a child process,

    python -m pytest <site-packages>/bn_reference/properties -c <that>/bn-props.ini --bn-impl SPEC ...

with the suite's own pytest configuration (the calling project's pytest.ini, pyproject.toml
and conftest.py do not apply), the current directory first on the import path (through
``PYTHONPATH``, so for the ``-n`` workers too), and the Hypothesis example database,
pytest's cache and the repro scripts (``.bn-props/repro``) in the current directory. (A child, not ``pytest.main`` here: pytest must
be the first to import the plugin's modules to rewrite their asserts.)

Exit status, for scripts and CI:

    0  every property holds
    1  a property is falsified (the matrix and pytest's report name it), also when
       ``-- -x``/``--maxfail`` stopped the run there (with ``-n`` too: harness.maxfail)
    2  usage error, one line on stderr: a bad SPEC, a subject that cannot take the
       contract's call, an unknown profile, a bad option
    3  anything else: an interrupted run, a collection error, an internal error

``pytest --pyargs bn_reference.properties --bn-impl SPEC`` runs the same properties under
your own pytest configuration, for people who prefer pytest.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "pytest_args", "EXIT"]

INI = "bn-props.ini"
# pytest's exit status -> bn-props'. 4: pytest's usage error; 5: nothing collected (a
# filter after -- that matched nothing). Anything else (2 interrupted or collection
# errors, 3 internal error) is 3.
EXIT = {0: 0, 1: 1, 4: 2, 5: 2}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _workers(text: str) -> str:
    if text in ("auto", "logical") or (text.isdigit() and int(text) >= 0):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers or 'auto'")


def _parser() -> argparse.ArgumentParser:
    from bn_reference.harness.profiles import PROFILES
    from bn_reference.harness.report import OPTION_HELP

    parser = _Parser(prog="bn-props", description="Property-based verification of batch/layer/group normalization kernels.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    check = commands.add_parser(
        "check",
        help="run the property suite against subjects (exit 0 all hold, 1 one falsified, 2 usage error)",
        description="Run the property suite against the subjects named by SPEC. "
        "Arguments after -- go to pytest unchanged (e.g. -- -k zero_mean -x).",
    )
    check.add_argument("specs", nargs="+", metavar="SPEC", help="module:attr importable from the current directory, or a built-in name")
    check.add_argument("-n", dest="workers", type=_workers, default=None, metavar="N|auto", help="run in N processes (pytest-xdist); default: one")
    check.add_argument("--profile", choices=PROFILES, default=None, help="Hypothesis profile (default: HYPOTHESIS_PROFILE, else ci when CI is set, else dev)")
    check.add_argument("--report", metavar="PATH", action="append", default=None, help=OPTION_HELP)
    check.add_argument("--repro-dir", metavar="DIR", default=None, help="save a runnable repro script for each falsified property in DIR (default .bn-props/repro)")
    check.add_argument(
        "--budget",
        metavar="DURATION",
        default=None,
        help="spread the examples over the cells to finish in about DURATION (300, 90s, 5m; 0: off; default 5m for a subject with bn_compiles)",
    )
    check.add_argument("--db", metavar="URL", default=None, help="shared example database (redis://host:port/db or github://owner/repo[/artifact])")
    return parser


def pytest_args(options, extra=(), *, here: Path) -> list[str]:
    """The pytest command line ``bn-props check`` runs (see the module docstring)."""
    from bn_reference.harness.activation import suite_dir

    suite = suite_dir()
    args = [str(suite), "-c", str(suite / INI), "-o", f"cache_dir={here / '.pytest_cache'}", "-p", "bn_reference.harness.plugin"]
    if options.workers is not None:
        if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
            args += ["-p", "xdist.plugin"]
        args += ["-n", options.workers]
    for spec in options.specs:
        args += ["--bn-impl", spec]
    # The repros go to the current directory's .bn-props/repro by default, not to the rootdir
    # (the installed suite's directory, where the ini lies).
    repro_dir = options.repro_dir or str(here / ".bn-props" / "repro")
    reports = [options.report] if isinstance(options.report, str) else list(options.report or [])
    for flag, value in (*(("--bn-report", r) for r in reports), ("--bn-repro-dir", repro_dir), ("--bn-db", options.db), ("--bn-budget", getattr(options, "budget", None))):
        if value:
            args += [flag, value]
    return args + list(extra)


def _usage(message: str) -> int:
    print(f"bn-props check: error: {message}", file=sys.stderr)
    return 2


def _import_from(here: Path) -> None:
    """Put ``here`` first on the import path of this process and of the ones it starts."""
    if str(here) not in sys.path:
        sys.path.insert(0, str(here))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(here) + (os.pathsep + old if old else "")


def check(options, extra=()) -> int:
    from bn_reference.harness.profiles import PROFILES, default_profile
    from bn_reference.subjects import SubjectSpecError, load_subject
    from bn_reference.subjects.signature import check_signature

    here = Path.cwd()
    _import_from(here)
    if options.profile:
        os.environ["HYPOTHESIS_PROFILE"] = options.profile
    elif default_profile() not in PROFILES:
        return _usage(f"HYPOTHESIS_PROFILE={default_profile()!r}: choose one of {', '.join(PROFILES)}")
    if options.budget is not None:
        from bn_reference.harness.budget import parse_duration

        try:
            parse_duration(options.budget)
        except argparse.ArgumentTypeError as exc:
            return _usage(str(exc))
    for spec in dict.fromkeys(options.specs):  # one clear line now, rather than pytest's report later
        try:
            subject = load_subject(spec)
            subject.dtypes  # bn_dtypes names known dtypes
            check_signature(subject)
        except SubjectSpecError as exc:
            return _usage(str(exc))

    cmd = [sys.executable, "-m", "pytest", *pytest_args(options, extra, here=here)]
    try:
        code = subprocess.run(cmd, cwd=here).returncode
    except KeyboardInterrupt:  # the child got the signal too and reports what it had
        return 3
    if code == 5:
        print("bn-props check: error: no property ran (does a filter after -- match nothing?)", file=sys.stderr)
    return EXIT.get(code, 3)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = _parser()
    options = parser.parse_args(own)
    if options.command is None:
        parser.print_help(sys.stderr)
        return 2
    return check(options, extra)


if __name__ == "__main__":
    sys.exit(main())
