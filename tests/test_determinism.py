"""Same seed, same examples: importing a module does not change what a derandomized test
draws (``bn_reference.harness.determinism``).

Hypothesis' own behaviour is the control: with its pool of local constants back, importing a
module full of literals changes the examples of the very same derandomized test, which is
how the kill matrix came to differ between ``-n 1`` and ``-n 2`` (subjects import their
modules lazily, in whichever test a worker runs first).
"""
from __future__ import annotations

import importlib
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import providers

from bn_reference.harness import determinism

pytestmark = pytest.mark.meta

def literals(salt: int) -> str:
    """A module of 40 tuples of literals (floats in [0, 1], integers: what ``_draws`` draws),
    different for each ``salt``."""
    return "\n".join(f"C{i} = ({(i + salt) / 997!r}, {i * 7919 + salt}, {0.5 + (i + salt) / 1e5!r})" for i in range(40))


def _draws() -> list:
    """The examples of one derandomized test (its seed is its own digest: the same every call)."""
    seen = []

    @settings(derandomize=True, database=None, max_examples=200)
    @given(st.floats(0, 1), st.integers(0, 2**32 - 1), st.floats(-10, 10))
    def probe(a, b, c):
        seen.append((a, b, c))

    probe()
    return seen


def _import_literals(tmp_path, monkeypatch, name: str, salt: int) -> None:
    (tmp_path / f"{name}.py").write_text(literals(salt) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module(name)


def test_the_plugin_forgets_local_constants():
    """Every bn-props run (this checkout's self-tests too) has the empty pool."""
    assert determinism.local_constants_forgotten()


def test_an_import_does_not_change_the_examples(tmp_path, monkeypatch):
    before = _draws()
    _import_literals(tmp_path, monkeypatch, "bn_determinism_literals_a", 1)
    assert _draws() == before


def test_with_hypothesis_pool_an_import_changes_the_examples(tmp_path, monkeypatch):
    """The control: Hypothesis' own pool (recollected when ``sys.modules`` grows) lets the
    same import change the same test's examples."""
    assert determinism._ORIGINAL is not None
    monkeypatch.setattr(providers, "_get_local_constants", determinism._ORIGINAL)
    providers.CONSTANTS_CACHE.cache.clear()  # allowed constants per range, built from the pool in use
    try:
        before = _draws()
        assert _draws() == before  # nothing imported in between: the same examples
        _import_literals(tmp_path, monkeypatch, "bn_determinism_literals_b", 1000)
        assert _draws() != before
    finally:
        monkeypatch.undo()  # the empty pool again, for the tests after this one
        providers.CONSTANTS_CACHE.cache.clear()
        sys.modules.pop("bn_determinism_literals_b", None)


@pytest.mark.parametrize("marker", ["CI", "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", "GITHUB_ACTIONS"])
def test_profiles_do_not_inherit_hypothesis_ci_profile(marker):
    """Hypothesis loads its own ``ci`` profile at import when it detects CI (any of
    ``hypothesis._settings._CI_VARS``; tox sets ``__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI``).
    bn-props' ``dev`` and ``thorough`` must still draw random seeds and save failures to the
    local database there, and ``ci`` must still be derandomized without a database: in a
    fresh interpreter with the marker set, each profile's settings are those it declares."""
    import os
    import subprocess
    import sys

    code = (
        "from hypothesis import settings\n"
        "from bn_reference.harness.profiles import register_profiles\n"
        "register_profiles()\n"
        "for name in ('dev', 'thorough', 'ci'):\n"
        "    s = settings.get_profile(name)\n"
        "    print(name, s.derandomize, s.database is not None)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", "HYPOTHESIS_PROFILE")}
    env[marker] = "true"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:3] == ["dev False True", "thorough False True", "ci True False"], out


def test_deviations_are_strict_only_under_the_profile_they_were_measured_with():
    """A deviation's strict xfail holds only where the draws are the ones it was measured on:
    under its profile without --hypothesis-seed (``profile=None``). Elsewhere it is a plain
    xfail; ``measured_in=None`` entries are never strict."""
    from bn_reference.subjects.deviations import KNOWN_DEVIATIONS, deviation_for

    measured = next(d for d in KNOWN_DEVIATIONS if d.measured_in == "ci")
    assert deviation_for(measured.subject, measured.prop, measured.dtype or "float32", profile="ci") == (measured, True)
    for other in ("dev", "thorough", None):
        assert deviation_for(measured.subject, measured.prop, measured.dtype or "float32", profile=other) == (measured, False)
    # The framework findings are listed by cause, for every cell the cause reaches, so never
    # strict per cell: whether a cause still reproduces is judged per cause by the conformance
    # run (selftest/conformance.py, fixed_causes).
    from bn_reference.subjects.framework_findings import FINDINGS

    causes = {f.cause for f in FINDINGS}
    framework = [d for d in KNOWN_DEVIATIONS if d.reason in causes and not d.subject.startswith("examples.")]
    assert framework and all(d.measured_in is None for d in framework)
    for profile in ("conformance", "ci", "dev"):
        assert deviation_for(framework[0].subject, framework[0].prop, framework[0].dtype, profile=profile) == (framework[0], False)
    never = next(d for d in KNOWN_DEVIATIONS if d.measured_in is None)
    assert deviation_for(never.subject, never.prop, never.dtype, profile="dev") == (never, False)
    assert deviation_for(never.subject, never.prop, never.dtype, profile="ci") == (never, False)


def test_ci_failures_do_not_depend_on_the_clock(monkeypatch):
    """A failing test under the ``ci`` profile runs the same examples however slow the
    machine: with a clock that jumps 100 s per reading (Hypothesis stops looking for other
    bugs 10 s after the first one, unless report_multiple_bugs is off), the examples run
    are the ones run with the real clock."""
    import time

    from bn_reference.harness.profiles import register_profiles

    register_profiles()

    def examples_run() -> list[int]:
        seen = []

        @settings(settings.get_profile("ci"), max_examples=100, print_blob=False)
        @given(st.integers(0, 1000))
        def prop(n):
            seen.append(n)
            assert n < 300

        with pytest.raises(AssertionError):
            prop()
        return seen

    real = examples_run()
    clock = iter(range(0, 10**9, 100))
    monkeypatch.setattr(time, "monotonic", lambda: float(next(clock)))
    assert examples_run() == real
