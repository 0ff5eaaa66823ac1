"""The shared example database end to end, on a real ``redis-server``: a failure found by
one pytest process is replayed first by another process that shares only the database.

Saved failures belong to their subject: checking a correct subject (locally, or through
the shared database) leaves a buggy subject's saved failures in place, and ``replay`` of the
buggy one fails every property it failed before (``exampledb.example_key``).

The server is Debian's ``redis-server`` on a free port of 127.0.0.1, started and stopped
by the fixture (``.ci/run`` installs it). Outside CI, a machine without it skips these
tests with that reason; in CI a missing server is a failure, not a skip.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from .test_plugin import run_pytest

pytestmark = [pytest.mark.meta, pytest.mark.slow, pytest.mark.xdist_group("test_shared_database")]  # one module fixture (tox -e tests: --dist loadgroup)

TEST_ID = "properties/test_agreement.py::test_agrees_with_float64_reference[usermod:broken-float32]"

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A private redis-server (no persistence) on a free loopback port."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs Debian's redis-server")
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server); CI runs this test")
    redis = pytest.importorskip("redis")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail(f"redis-server did not answer on 127.0.0.1:{port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _run(tmp_path, name, *args, ci: bool):
    """One pytest process of ``usermod:broken`` with its own local example directory
    (``tmp_path/name``); ``CI`` set or not."""
    return run_pytest(
        tmp_path,
        "properties/test_agreement.py",
        "--bn-impl",
        "usermod:broken",
        *args,
        env_extra={"HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / name), **({"CI": "true"} if ci else {})},
        unset=("CI",),
    )


def _replay_blob(out: str) -> str:
    """The ``@reproduce_failure(...)`` blob Hypothesis printed: the example's identity."""
    (blob,) = set(re.findall(r"@reproduce_failure\((.*?)\)", out))
    return blob


def _snapshot(url: str) -> dict:
    import redis

    client = redis.Redis.from_url(url)
    return {key: client.smembers(key) for key in client.scan_iter(match=b"bn-props:*")}


def test_failure_found_in_ci_is_replayed_first_by_a_developer(redis_url, tmp_path):
    """CI (``CI`` set: the shared layer is writable) falsifies a property and saves the
    example to Redis; a developer's process with an empty local directory, the same
    ``--bn-db`` and the ``replay`` profile (no generation at all: only saved examples run)
    fails on the same test with the same falsifying example, and writes nothing back; the
    same replay without ``--bn-db`` passes, so the failure came from the shared database."""
    ci = _run(tmp_path, "ci-machine", f"--bn-db={redis_url}", ci=True)
    assert ci.returncode == 1, ci.stdout[-3000:] + ci.stderr[-2000:]
    assert f"{redis_url} (read-write" in ci.stdout
    assert f"FAILED {TEST_ID}" in ci.stdout
    saved = _snapshot(redis_url)
    assert saved, "the CI process saved nothing to the shared database"

    dev = _run(tmp_path, "dev-laptop", f"--bn-db={redis_url}", "--hypothesis-profile=replay", ci=False)
    assert dev.returncode == 1, dev.stdout[-3000:] + dev.stderr[-2000:]
    assert f"{redis_url} (read-only" in dev.stdout
    assert f"FAILED {TEST_ID}" in dev.stdout
    assert _replay_blob(dev.stdout) == _replay_blob(ci.stdout)
    assert _snapshot(redis_url) == saved, "a developer's run wrote to the shared database"

    alone = _run(tmp_path, "other-laptop", "--hypothesis-profile=replay", ci=False)
    assert alone.returncode == 0, alone.stdout[-3000:]


# A correct subject (float64 arithmetic, rounded once to x's dtype) for the key tests.
CORRECT = """
import numpy as np

def correct(x, *, axes, scale, offset, epsilon, training):
    if not training:
        return x.copy()
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=axes, keepdims=True)
    var = np.square(x64 - mu).mean(axis=axes, keepdims=True)
    return ((x64 - mu) / np.sqrt(var + epsilon) * scale + offset).astype(x.dtype)


correct.bn_dtypes = ("float32",)
"""
KEY_FILES = ("properties/test_agreement.py", "properties/test_moments.py")


def _failed(out: str) -> set[str]:
    """The node ids pytest's summary lists as FAILED."""
    return {line.split()[1] for line in out.splitlines() if line.startswith("FAILED ")}


def _check(tmp_path, spec, storage, *args, ci: bool):
    (tmp_path / "goodmod.py").write_text(CORRECT)
    return run_pytest(
        tmp_path, *KEY_FILES, "--bn-impl", spec, "-p", "no:xdist", *args,
        env_extra={"HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / storage), **({"CI": "true"} if ci else {})},
        unset=("CI",),
    )


def _directory_snapshot(root) -> set:
    """Every saved example of a local example directory, as (key directory, file) pairs."""
    return {(p.parent.name, p.name) for p in root.rglob("*") if p.is_file()}


def _saved_failures_survive_a_correct_subject(tmp_path, db_args=(), *, ci=False, storages=("db", "db", "db"), snapshot=None):
    """The buggy subject's run saves its failures; the correct subject's run (same local
    directory, or only the shared database in common) passes and removes none of them
    (``snapshot()``: the saved examples); ``replay`` of the buggy one fails exactly the tests
    it failed first."""
    profile = () if ci else ("--hypothesis-profile=dev",)
    found = _check(tmp_path, "usermod:broken", storages[0], *db_args, *profile, ci=ci)
    assert found.returncode == 1, found.stdout[-3000:] + found.stderr[-2000:]
    failed = _failed(found.stdout)
    assert len(failed) >= 2, found.stdout[-3000:]
    saved = snapshot()
    assert saved, "the buggy subject's run saved nothing"
    good = _check(tmp_path, "goodmod:correct", storages[1], *db_args, *profile, ci=ci)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]
    after = snapshot()
    if isinstance(saved, dict):  # Redis: key -> members
        lost = {k: v - after.get(k, set()) for k, v in saved.items() if v - after.get(k, set())}
    else:
        lost = saved - after
    assert not lost, f"the correct subject's run removed saved failures of the buggy one: {lost}"
    replay = _check(tmp_path, "usermod:broken", storages[2], *db_args, "--hypothesis-profile=replay", ci=False)
    assert replay.returncode == 1, replay.stdout[-3000:]
    assert _failed(replay.stdout) == failed, (sorted(failed), replay.stdout[-3000:])
    return failed


def test_a_correct_subject_leaves_saved_failures_alone_locally(tmp_path):
    """One local example directory for all three runs."""
    _saved_failures_survive_a_correct_subject(tmp_path, snapshot=lambda: _directory_snapshot(tmp_path / "db"))


def test_a_correct_subject_leaves_saved_failures_alone_in_redis(redis_url, tmp_path):
    """Three machines (their own local directories) sharing only Redis: CI finds the
    failures and publishes them, CI checks the correct subject (writable: before the keys
    were per subject, its passing replays deleted them), a developer replays read-only; the
    buggy subject's entries in Redis are all still there."""
    _saved_failures_survive_a_correct_subject(
        tmp_path, (f"--bn-db={redis_url}",), ci=True, storages=("ci-1", "ci-2", "laptop"), snapshot=lambda: _snapshot(redis_url)
    )


def test_unreachable_database_is_a_usage_error(tmp_path):
    """A --bn-db nobody answers at is a usage error naming the URL, not a silent local run."""
    url = f"redis://127.0.0.1:{_free_port()}/0"
    r = _run(tmp_path, "x", f"--bn-db={url}", "--collect-only", ci=False)
    assert r.returncode == 4, r.stdout + r.stderr
    assert url in r.stderr and "cannot reach the Redis server" in r.stderr
