"""``-x``/``--maxfail`` under pytest-xdist exits 1, as it does without xdist.

Without xdist, pytest's run loop stops at the failure that reaches ``--maxfail`` by raising
``session.Failed``: exit 1, tests failed. Under xdist the controller stops its workers by
raising ``xdist.dsession.Interrupted``, a ``KeyboardInterrupt``: pytest reports an
interrupted run, exit 2 (and ``bn-props check`` maps that to 3). On the controller,
``MaxfailStop`` turns that one exception back into ``session.Failed`` when the stop was
xdist's own (its ``Interrupted``, not a Ctrl-C), pytest counted ``--maxfail`` failures
(``session.shouldfail``) and nothing failed to collect. A real interruption (Ctrl-C, a
collection error) keeps pytest's exit status.
"""
from __future__ import annotations

import pytest

__all__ = ["MaxfailStop", "stopped_by_maxfail"]


def stopped_by_maxfail(exc: BaseException, shouldfail, collection_errors: int) -> bool:
    """Whether ``exc``, raised by the run loop, is xdist stopping the run at ``--maxfail``."""
    try:
        from xdist.dsession import Interrupted
    except ImportError:  # no xdist: pytest's own loop already raises session.Failed
        return False
    return isinstance(exc, Interrupted) and bool(shouldfail) and collection_errors == 0


class MaxfailStop:
    """Registered on the controller (or in a run without xdist, where it never acts)."""

    def __init__(self):
        self.collection_errors = 0

    def pytest_collectreport(self, report):
        if report.failed:  # a worker's collection error reaches the controller through this hook
            self.collection_errors += 1

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session):
        try:
            return (yield)
        except KeyboardInterrupt as exc:
            if stopped_by_maxfail(exc, session.shouldfail, self.collection_errors):
                raise session.Failed(session.shouldfail) from None
            raise
