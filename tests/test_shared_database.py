"""The shared example database end to end, on a real ``redis-server``: a failure found by
one pytest process is replayed first by another process that shares only the database.

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

pytestmark = [pytest.mark.meta, pytest.mark.slow]

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


def test_unreachable_database_is_a_usage_error(tmp_path):
    """A --bn-db nobody answers at is a usage error naming the URL, not a silent local run."""
    url = f"redis://127.0.0.1:{_free_port()}/0"
    r = _run(tmp_path, "x", f"--bn-db={url}", "--collect-only", ci=False)
    assert r.returncode == 4, r.stdout + r.stderr
    assert url in r.stderr and "cannot reach the Redis server" in r.stderr
