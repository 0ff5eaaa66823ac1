"""The ``verdict`` profile draws ``ci``'s examples and stops at the same first failure; it
only skips shrinking. So a verdict under ``verdict`` is the verdict under ``ci``, and a known
deviation measured under ``ci`` is strict under both."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bn_reference.harness.profiles import draws_of, register_profiles

pytestmark = pytest.mark.meta


def _calls_until_failure(profile: str) -> list[int]:
    register_profiles()
    calls = []

    @settings(settings.get_profile(profile))
    @given(st.integers(0, 10**6))
    def law(n):
        calls.append(n)
        assert n % 23 != 5  # false for about one example in 23: fails within ci's 200

    with pytest.raises(AssertionError):
        law()
    return calls


def test_verdict_generates_cis_examples_and_stops_at_the_same_failure():
    ci, verdict = _calls_until_failure("ci"), _calls_until_failure("verdict")
    first_failure = next(i for i, n in enumerate(ci) if n % 23 == 5)
    # The same draws up to the first failure; then verdict replays that failure once to report
    # it, where ci shrinks it first (more calls, ending on the shrunk example).
    assert verdict == ci[: first_failure + 1] + [ci[first_failure]]
    assert len(ci) > len(verdict)


def test_known_deviations_of_ci_are_strict_under_verdict():
    assert draws_of("verdict") == "ci"
    assert draws_of("ci") == "ci" and draws_of("dev") == "dev" and draws_of(None) is None
