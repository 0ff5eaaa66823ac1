"""Sharding across CI machines with pytest-split (``docs/ci-sharding.md``): the shards
together run every test exactly once, and the stored durations balance them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_plugin import run_pytest

pytestmark = [pytest.mark.meta, pytest.mark.xdist_group("test_sharding")]  # one worker collects the shards (tox -e tests: --dist loadgroup)

ROOT = Path(__file__).resolve().parents[1]
DURATIONS = ROOT / ".test_durations"
SHARDS = 3


def _collect(tmp_path, *args) -> list[str]:
    r = run_pytest(tmp_path, "--collect-only", "-q", *args)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return [line for line in r.stdout.splitlines() if "::" in line]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    whole = _collect(tmp)
    groups = [
        _collect(tmp, f"--splits={SHARDS}", f"--group={g}", "--splitting-algorithm=least_duration") for g in range(1, SHARDS + 1)
    ]
    return whole, groups


def test_shards_run_every_test_exactly_once(shards):
    """Concatenating the N shards' test ids gives the full collection as a multiset:
    nothing lost, nothing run twice."""
    whole, groups = shards
    together = [t for g in groups for t in g]
    assert sorted(together) == sorted(whole)
    assert all(groups), "an empty shard"


def test_stored_durations_balance_the_shards(shards):
    """With least_duration (longest test first, onto the least-loaded shard) the predicted
    loads differ by at most the longest single test: max_load - min_load <= max_t d_t.
    Unknown tests are predicted at the mean stored duration, as pytest-split does."""
    whole, groups = shards
    durations = json.loads(DURATIONS.read_text())
    known = [durations[t] for t in whole if t in durations]
    assert len(known) >= 0.9 * len(whole), (
        f"{DURATIONS.name} covers {len(known)} of {len(whole)} tests: regenerate it (docs/ci-sharding.md)"
    )
    mean = sum(known) / len(known)
    loads = [sum(durations.get(t, mean) for t in g) for g in groups]
    longest = max(durations.get(t, mean) for t in whole)
    assert max(loads) - min(loads) <= longest + 1e-9, loads
