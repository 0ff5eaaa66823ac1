"""A per-call timeout for subjects: a subject that hangs fails the property it hangs in,
and the run goes on with the next test.

``call(fn, *args, **kwargs)`` runs ``fn`` under a ``SIGALRM`` timer (``signal.setitimer``,
two system calls per call, no thread or process). On expiry the signal handler raises
``SubjectTimeout`` inside the subject, which derives from ``BaseException``, not
``Exception``: Hypothesis (checked on 6.170) treats only ``Exception``, ``SystemExit``,
``GeneratorExit`` and pytest's ``Failed`` as a test failure to shrink and replay; anything
else propagates at once. So a hang costs one timeout per property, not one per shrink step,
and pytest reports that test as failed, naming it.

The timer is set only on the main thread of a platform with ``SIGALRM`` (POSIX); elsewhere
the call runs unguarded. A timer someone else armed (pytest-timeout's ``signal`` method)
is honoured: the earlier deadline wins, and the outer timer is re-armed with what is left of
it afterwards. A hang inside native code that never returns to the interpreter cannot be
interrupted by a Python signal handler; ``pytest-timeout --timeout-method=thread`` kills
the process instead, which under xdist is a worker crash (``bn_reference.harness.crashes``).

With ``--bn-isolate`` (``bn_reference.harness.isolation``) ``call`` hands every call to a
child process instead (``delegate``), which enforces the same limit as a hard deadline.

Option ``--bn-call-timeout SECONDS`` (env ``BN_CALL_TIMEOUT``; default ``DEFAULT_SECONDS``,
generous because TF's first call in a process and a loaded CI machine are slow; 0 disables).
"""
from __future__ import annotations

import os
import signal
import threading
import time

# ``_signal`` is the C module ``signal`` wraps: its ``signal()`` installs and returns the same
# handlers without converting them to and from ``signal.Handlers``, which cost 2 us per call
# (two installs per guarded call, one or two per example). Handlers read back from it are
# plain ints (0 for SIG_DFL, 1 for SIG_IGN), equal to the enum members.
from _signal import signal as _install  # noqa: I001 - stdlib, after its comment

import pytest

from bn_reference.harness.options import nonnegative

__all__ = ["SubjectTimeout", "call", "configure", "delegate", "DEFAULT_SECONDS"]

DEFAULT_SECONDS = 120.0
_HAVE_ALARM = hasattr(signal, "SIGALRM") and hasattr(signal, "setitimer")
_MAIN = threading.main_thread()

_seconds = DEFAULT_SECONDS  # set by ``configure`` (pytest_configure in every process)
_test_id: str | None = None  # the running test's node id, for the message
_active: "_Guard | None" = None  # the guarded call in progress
_delegate = None  # isolation mode's call(fn, *args, **kwargs), or None


class SubjectTimeout(BaseException):
    """A subject call exceeded ``--bn-call-timeout``. A ``BaseException`` so that
    Hypothesis reports it at once instead of shrinking (re-running) a hanging example."""


class _Guard:
    """One guarded call: what to name on expiry, and the outer timer it displaced."""

    __slots__ = ("fn", "seconds", "previous", "outer_first", "outer_fired")

    def __init__(self, fn, seconds, previous, outer_first):
        self.fn, self.seconds, self.previous, self.outer_first = fn, seconds, previous, outer_first
        self.outer_fired = False


def configure(seconds: float) -> None:
    """Set the per-call limit in seconds (0 or less: no limit)."""
    global _seconds
    _seconds = float(seconds)


def delegate(handler) -> None:
    """Route every ``call`` to ``handler(fn, *args, **kwargs)`` (isolation mode); None: back
    to the in-process timer."""
    global _delegate
    _delegate = handler


def _name(fn) -> str:
    return getattr(fn, "spec", None) or getattr(fn, "__qualname__", None) or repr(fn)


def _on_alarm(signum, frame):
    guard = _active
    if guard is None:  # a stray alarm after the call returned
        return None
    if guard.outer_first:  # the outer timer's deadline came first: its handler's turn
        guard.outer_fired = True
        return guard.previous(signum, frame) if callable(guard.previous) else None
    where = f"{_test_id}: " if _test_id else ""
    raise SubjectTimeout(
        f"{where}subject {_name(guard.fn)!r} did not return within {guard.seconds:g} s "
        f"(per-call limit: --bn-call-timeout SECONDS or BN_CALL_TIMEOUT; 0 disables)"
    )


def call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, raising ``SubjectTimeout`` if it runs longer than the
    configured limit (main thread with SIGALRM only; otherwise unguarded), or through the
    isolation mode's child process when it is on (``delegate``)."""
    __tracebackhide__ = True  # a failure's traceback goes from the property to the subject's code
    global _active
    if _delegate is not None:
        return _delegate(fn, *args, **kwargs)
    seconds = _seconds
    if seconds <= 0 or not _HAVE_ALARM or _active is not None or threading.current_thread() is not _MAIN:
        return fn(*args, **kwargs)
    previous = _install(signal.SIGALRM, _on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic() if outer_delay else 0.0
    guard = _active = _Guard(fn, seconds, previous, 0 < outer_delay <= seconds)
    if guard.outer_first:
        signal.setitimer(signal.ITIMER_REAL, outer_delay)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _active = None
        if previous is not None:
            _install(signal.SIGALRM, previous)
        if guard.outer_fired:  # the outer deadline was handled; only a periodic timer goes on
            if outer_interval:
                signal.setitimer(signal.ITIMER_REAL, outer_interval, outer_interval)
        elif outer_delay:
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), outer_interval)


# -- pytest plugin (loaded by bn_reference.harness.plugin) ------------------------------------------


_seconds_arg = nonnegative("--bn-call-timeout/BN_CALL_TIMEOUT", "seconds")


def pytest_addoption(parser):
    parser.getgroup("bn-props").addoption(
        "--bn-call-timeout",
        metavar="SECONDS",
        type=_seconds_arg,
        default=None,
        help=f"fail a property whose subject call runs longer than SECONDS (env BN_CALL_TIMEOUT; "
        f"default {DEFAULT_SECONDS:g}; 0 disables)",
    )


def pytest_configure(config):
    seconds = config.getoption("bn_call_timeout")
    if seconds is None:
        env = os.environ.get("BN_CALL_TIMEOUT", "").strip()
        try:
            seconds = _seconds_arg(env) if env else DEFAULT_SECONDS
        except Exception as exc:
            raise pytest.UsageError(str(exc)) from None
    configure(seconds)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    global _test_id
    _test_id = item.nodeid
    try:
        return (yield)
    finally:
        _test_id = None
