"""The per-call timeout's pytest side: option ``--bn-call-timeout SECONDS`` (env
``BN_CALL_TIMEOUT``; default ``DEFAULT_SECONDS``; 0 disables), and the running test's name
for the message. The mechanism (``call``, ``SubjectTimeout``) is
``bn_reference.mathematics.watchdog``, which the laws call through.
"""
from __future__ import annotations

import os

import pytest

from bn_reference.harness.options import nonnegative
from bn_reference.mathematics.watchdog import DEFAULT_SECONDS, configure, running

__all__ = ["pytest_addoption", "pytest_configure", "pytest_runtest_call"]


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
    running(item.nodeid)
    try:
        return (yield)
    finally:
        running(None)
