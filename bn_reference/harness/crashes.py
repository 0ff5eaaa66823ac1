"""A subject that kills its process: under pytest-xdist the run goes on for the others.

When a subject kills its worker (``os._exit``, a segfault, SIGKILL), xdist reports the test
that was running as failed ("worker 'gw0' crashed while running ...") and starts a new
worker, but only ``--max-worker-restart`` times. A subject that crashed once would crash
again in each of its ~17 properties and exhaust that limit, aborting the run. So:

* the controller (``pytest_handlecrashitem``, xdist >= 2.2.1) notes the crashed subject in
  a run-private directory handed to every worker (``pytest_configure_node``), gives the
  crash report its conformance-matrix cell (it shows as ``ERROR``: the phase is unknown)
  and a message naming the subject;
* each worker, before a test of a subject (``pytest_runtest_setup``), skips it if that
  subject crashed: "not run: subject S killed its worker process in test T". The skip is
  the honest verdict: the property was not checked; the crash itself is already a failure;
* with ``-n N`` and no explicit ``--max-worker-restart``, the limit is raised from xdist's
  ``4 N`` by ``N`` per subject, room for each subject to crash once on every worker
  (tests already running when a crash is noted can still crash).

Without xdist, nothing can survive a process kill: pytest itself dies. Run subjects you do
not trust with ``-n 1`` or more.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

from bn_reference.harness.activation import is_active
from bn_reference.harness.ids import split_id
from bn_reference.harness.plugin import _CELL_KEY, cell_key, subjects_of

__all__ = ["crashed_in", "note_crash"]

_INPUT_KEY = "bn_crash_dir"  # workerinput entry: the directory of crash notes
_DIR = pytest.StashKey["Path | None"]()


def _note_path(directory: Path, spec: str) -> Path:
    return directory / quote(spec, safe="")


def note_crash(directory: Path, spec: str, nodeid: str) -> None:
    """Record that ``spec`` killed its worker in test ``nodeid`` (the first crash is kept)."""
    path = _note_path(directory, spec)
    if not path.exists():  # write, then rename: a worker never reads a half-written note
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(nodeid)
        os.replace(tmp, path)


def crashed_in(directory: Path, spec: str) -> str | None:
    """The test in which ``spec`` killed its worker, or None."""
    path = _note_path(directory, spec)
    return path.read_text() if path.exists() else None


def _is_distributing(config) -> bool:
    """This process is an xdist controller (the test as xdist's own ``_is_distribution_mode``)."""
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def pytest_configure(config):  # after bn_reference.harness.plugin's (subjects), before xdist's (trylast)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        directory = workerinput.get(_INPUT_KEY)
        config.stash[_DIR] = Path(directory) if directory else None
        return
    if not _is_distributing(config) or not is_active(config):  # no crash handling in runs not about bn-props
        config.stash[_DIR] = None
        return
    config.stash[_DIR] = Path(tempfile.mkdtemp(prefix="bn-props-crashes-"))
    n = config.option.numprocesses
    if isinstance(n, int) and n > 0 and config.option.maxworkerrestart is None:
        config.option.maxworkerrestart = str(n * (4 + len(subjects_of(config))))


def pytest_unconfigure(config):
    directory = config.stash.get(_DIR, None)
    if directory is not None and not hasattr(config, "workerinput"):
        shutil.rmtree(directory, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    directory = node.config.stash.get(_DIR, None)
    if directory is not None:
        node.workerinput[_INPUT_KEY] = str(directory)


def _subject_of_nodeid(config, nodeid: str) -> tuple[str, str] | None:
    """(spec, property) of a subject test's node id, or None."""
    test = nodeid.rpartition("::")[2]
    _, spec, _ = split_id(test, [s.spec for s in subjects_of(config)])
    if spec is None:
        return None
    name, _, params = test.partition("[")
    return cell_key(spec, name, params.removesuffix("]"))


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    config = sched.config
    directory = config.stash.get(_DIR, None)
    cell = _subject_of_nodeid(config, crashitem)
    if directory is None or cell is None:
        return None
    spec = cell[0]
    note_crash(directory, spec, crashitem)
    # "E   " marks the message lines, as in pytest's own failure text (report.failure_details reads them)
    report.longrepr = (
        f"E   {report.longrepr}\n"
        f"E   subject {spec!r} killed its worker process (exit, signal or crash in native code)\n"
        f"E   its tests not yet started are skipped as not run"
    )
    report.user_properties.append((_CELL_KEY, cell))
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    directory = item.config.stash.get(_DIR, None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    if directory is None or params.get("subject") is None:
        return
    spec = params["subject"].spec
    where = crashed_in(directory, spec)
    if where is not None:
        pytest.skip(f"not run: subject {spec!r} killed its worker process in {where}")
