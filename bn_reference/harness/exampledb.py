"""The shared example database: a failure one machine finds is replayed first everywhere.

``--bn-db URL`` (env ``BN_DB``) layers a shared Hypothesis example database under the local
one (``.hypothesis/examples``, or ``$HYPOTHESIS_STORAGE_DIRECTORY/examples``)::

    database = MultiplexedDatabase(local, shared)          # in CI (CI set) or --bn-db-write
    database = MultiplexedDatabase(local, ReadOnly(shared)) # developers (the default)

Hypothesis reads from every layer (the *reuse* phase replays each saved failure before it
generates anything new) and writes to the writable ones, so CI machines publish what they
find and developers replay it without publishing their experiments. URL schemes:

* ``redis://[:password@]host:port/db`` (also ``rediss://``): Hypothesis'
  ``RedisExampleDatabase``; keys are prefixed ``bn-props:`` and expire after 8 days unused.
* ``github://owner/repo[/artifact-name]``: Hypothesis' ``GitHubArtifactDatabase``, the
  option for teams without Redis: CI uploads its ``.hypothesis/examples`` as an artifact
  and everyone else reads the latest one (needs ``GITHUB_TOKEN`` for private repos).
  Always read-only here: CI writes to its local layer, which the workflow uploads.

A shared database needs random exploration: Hypothesis ignores the database in
derandomized runs (``derandomize=True implies database=None``; a deterministic run has
nothing to remember), so with ``--bn-db`` the ``ci`` profile runs with random seeds and the
header says so. Its failures stay replayable from the printed ``@reproduce_failure`` blob.

Every saved example belongs to one question: the property, the subject and the dtype (and
the property's other parameters). Hypothesis keys a test's examples by a digest of the test
function, plus the node id for ``@pytest.mark.parametrize`` cases; the subjects and dtypes
are parametrized in ``pytest_generate_tests``, which its plugin does not see, so every subject
of a property used to share one key, and a passing subject replayed, then deleted, another
subject's saved failures. ``example_key`` names the question (``b"bn-props:reference:
test_inference_returns_input[float32-training=None]"``) and ``pytest_runtest_call`` hands it
to Hypothesis the way its own plugin does for parametrized tests (the test's
``_hypothesis_internal_add_digest``): it enters both the database key and, in a derandomized
run, the seed, so each (subject, dtype) explores its own examples, the same in every run.
The key holds no path, so a checkout and an installed suite share saved failures.
"""
from __future__ import annotations

import argparse
import os
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from hypothesis import settings

from bn_reference.harness.activation import is_active
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    GitHubArtifactDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

__all__ = ["shared_database", "layered_database", "local_directory", "example_key", "KEY_PREFIX"]

KEY_PREFIX = b"bn-props:"
EXPIRE_AFTER = timedelta(days=8)


def shared_database(url: str) -> ExampleDatabase:
    """The shared layer named by ``url`` (``redis://…`` or ``github://owner/repo[/artifact]``)."""
    parsed = urlparse(url)
    if parsed.scheme in ("redis", "rediss", "unix"):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as exc:  # pragma: no cover - redis is a declared dependency
            raise ValueError(f"--bn-db {url!r}: the redis client is not installed ({exc})") from None
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ValueError(f"--bn-db {url!r}: cannot reach the Redis server: {exc}") from None
        return RedisExampleDatabase(client, expire_after=EXPIRE_AFTER, key_prefix=KEY_PREFIX)
    if parsed.scheme == "github":
        parts = [p for p in (parsed.netloc + parsed.path).split("/") if p]
        if len(parts) not in (2, 3):
            raise ValueError(f"--bn-db {url!r}: expected github://owner/repo or github://owner/repo/artifact-name")
        return GitHubArtifactDatabase(*parts)
    raise ValueError(f"--bn-db {url!r}: unknown scheme {parsed.scheme!r}; use redis://host:port/db or github://owner/repo")


def local_directory() -> str:
    """Hypothesis' own default location (honours ``HYPOTHESIS_STORAGE_DIRECTORY``)."""
    root = os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY") or ".hypothesis"
    return os.path.join(root, "examples")


def layered_database(url: str, *, writable: bool) -> tuple[ExampleDatabase, bool]:
    """Local directory first, then the shared layer, read-only unless ``writable`` (a GitHub
    artifact always is). Returns the database and whether the shared layer is written."""
    shared = shared_database(url)
    writes = writable and not isinstance(shared, GitHubArtifactDatabase)
    if not writes:
        shared = ReadOnlyDatabase(shared)
    return MultiplexedDatabase(DirectoryBasedExampleDatabase(local_directory()), shared), writes


def pytest_addoption(parser):
    group = parser.getgroup("bn-props")
    group.addoption(
        "--bn-db",
        metavar="URL",
        default=None,
        help="shared Hypothesis example database under the local one: redis://host:port/db or "
        "github://owner/repo[/artifact]; env BN_DB. Read-only unless CI is set or --bn-db-write.",
    )
    group.addoption(
        "--bn-db-write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write new failures to the shared database (default: yes when CI is set, else no); "
        "--no-bn-db-write forces read-only",
    )


_DB_LINE = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)  # after bn_reference.harness.plugin has loaded the profile
def pytest_configure(config):
    url = config.getoption("bn_db") or os.environ.get("BN_DB")
    if not url or not is_active(config):  # BN_DB alone does not change a run that is not about bn-props
        return
    writable = config.getoption("bn_db_write")
    if writable is None:
        writable = bool(os.environ.get("CI"))
    try:
        database, writes = layered_database(url, writable=writable)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    base = settings._current_profile or "default"
    name = f"{base}+shared-db"
    settings.register_profile(name, parent=settings.get_profile(base), derandomize=False, database=database)
    settings.load_profile(name)
    mode = "read-write" if writes else "read-only"
    config.stash[_DB_LINE] = f"bn-props example database: {local_directory()} + {url} ({mode}; random seeds: a derandomized run ignores databases)"


def example_key(item) -> bytes | None:
    """The question a subject test asks, as the extra digest of its Hypothesis key: subject
    spec and property with its parameters (``plugin.cell_key``: function name, dtype, then
    the rest of the test id). None for a test without a subject."""
    from bn_reference.harness.plugin import cell_key

    params = getattr(getattr(item, "callspec", None), "params", {})
    subject = params.get("subject")
    if subject is None:
        return None
    spec, prop = cell_key(subject.spec, item.originalname, item.callspec.id)
    return KEY_PREFIX + spec.encode() + b":" + prop.encode()


@pytest.hookimpl(tryfirst=True)  # after Hypothesis' hookwrapper set its node-id key, before the test runs
def pytest_runtest_call(item):
    inner = getattr(getattr(getattr(item, "obj", None), "hypothesis", None), "inner_test", None)
    if inner is None or not is_active(item.config):
        return
    key = example_key(item)
    if key is not None:
        inner._hypothesis_internal_add_digest = key


def pytest_report_header(config):
    line = config.stash.get(_DB_LINE, None)
    return [line] if line else []
