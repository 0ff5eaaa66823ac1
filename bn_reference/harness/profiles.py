"""Hypothesis profiles for the property suite.

* ``dev`` (default): 100 examples per property, random seeds, the local example database.
* ``ci`` (automatic when ``CI`` is set): 200 examples, ``derandomize=True`` so every CI
  run explores the same examples, no database writes needed to replay.
* ``thorough``: 2,500 examples per property, for a nightly run or a release.
* ``explore``: 100 examples, generation only (no shrinking, no database): the fastest way
  to learn *whether* a subject fails; the benchmark's time-to-first-failure profile.
* ``conformance``: 20 examples, derandomized, shrinking on: the framework report
  (``tox -e frameworks``, ``docs/conformance.md``): ~20 subjects times 4 dtypes, most of
  them compiling (XLA) per new shape, so few examples per cell; each cell reproducible and
  each failure shrunk to its smallest input.
* ``verdict``: ``ci``'s examples (derandomized, 200, stop at the first failure) without
  shrinking: the same verdict in every cell, since a property fails exactly when one of the
  generated examples fails, and shrinking only looks for a smaller one. For the self-tests
  that need verdicts, not readable examples: the kill matrices (a caught mutant's failure is
  the point, its smallest input is not) and the strict known deviations under ``ci``
  (``bn_reference.subjects.deviations``: a known deviation must still fail; it is shrunk in
  the conformance report, not in every CI run).
* ``replay``: no generation: only the failures saved in the example database (local, and
  the shared one given with ``--bn-db``) are run, e.g. to reproduce what CI found.

The derandomized profiles (``ci``, ``conformance``) stop generating at the first failure
(``report_multiple_bugs=False``) and shrink it. With Hypothesis' default, generation goes on
after the first failure, looking for other distinct bugs, until ``time.monotonic()`` says
10 s have passed since it (``ConjectureRunner.should_generate_more`` in
``hypothesis/internal/conjecture/engine.py``): on a loaded machine fewer examples run, so
the same derandomized test shrank from a different start and printed a different failing
example (measured: ``test_dx_sums_to_zero[tf_nn-float16]`` under ``ci`` sent other inputs
to the subject from its 59th call on, on a machine running the kill matrix alongside). A
verdict never depended on it (a found failure stays a failure), the printed example and
err/bound did. The random-seed profiles keep Hypothesis' default.

No profile has a deadline: TF's first call in a process (graph building, kernel
selection) takes hundreds of milliseconds, and timing is not what bn-props checks.
All print the ``@reproduce_failure`` blob, so any failure replays from the report. None
runs Hypothesis' ``explain`` phase: its "Explanation" lists the lines only failing examples
ran, which here are numpy internals and the assertion helper, and its slice comments
("# or any other generated value") clutter the falsifying example; the failure report
states the law, the inputs and the worst element instead (``bn_reference.harness.failure``).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

__all__ = ["register_profiles", "default_profile", "draws_of", "probe_settings", "PROFILES"]

_NO_EXPLAIN = tuple(p for p in Phase if p is not Phase.explain)
_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_OPTIONS = {
    "dev": dict(max_examples=100, phases=_NO_EXPLAIN),
    "ci": dict(max_examples=200, derandomize=True, database=None, phases=_NO_EXPLAIN, report_multiple_bugs=False),
    "thorough": dict(max_examples=2500, phases=_NO_EXPLAIN),
    "explore": dict(max_examples=100, phases=[Phase.generate], database=None),
    "verdict": dict(max_examples=200, derandomize=True, database=None, phases=[p for p in _NO_EXPLAIN if p is not Phase.shrink], report_multiple_bugs=False),
    "replay": dict(phases=[Phase.explicit, Phase.reuse, Phase.shrink]),
    "conformance": dict(max_examples=20, derandomize=True, database=None, phases=_NO_EXPLAIN, report_multiple_bugs=False),
    "compiled": dict(max_examples=100, derandomize=True, database=None, phases=_NO_EXPLAIN, report_multiple_bugs=False),
}
PROFILES = tuple(_OPTIONS)
# Profiles that generate exactly another profile's examples (same count, derandomized, same
# stop at the first failure), differing only after a failure (no shrinking).
_SAME_DRAWS = {"verdict": "ci"}


def draws_of(profile: str | None) -> str | None:
    """The profile whose examples ``profile`` generates: ``"ci"`` for ``verdict``, else itself.
    A known deviation measured under ``ci`` is strict under both
    (``bn_reference.subjects.deviations``)."""
    return _SAME_DRAWS.get(profile, profile)


def register_profiles() -> None:
    """Each profile derives from Hypothesis' own ``default`` profile, never from the profile
    loaded at import: Hypothesis loads its built-in ``ci`` profile (``derandomize=True``,
    ``database=None``) whenever it detects CI, including tox's
    ``__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI`` (``hypothesis._settings.is_in_ci``), and a
    profile registered without a parent inherits it: ``dev`` under tox in CI would then run
    derandomized and save no failure (found by tests/test_shared_database.py in CI)."""
    base = settings.get_profile("default")
    for name, options in _OPTIONS.items():
        settings.register_profile(name, parent=base, **options, **_COMMON)


def default_profile(environ=os.environ) -> str:
    """``HYPOTHESIS_PROFILE`` if set, else ``ci`` when ``CI`` is set, else ``dev``."""
    if environ.get("HYPOTHESIS_PROFILE"):
        return environ["HYPOTHESIS_PROFILE"]
    return "ci" if environ.get("CI") else "dev"


def probe_settings(max_examples: int) -> settings:
    """Settings for a self-test that asks "does this check fail this mutant?": derandomized,
    generation only (no shrinking, no database), every health check off."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
