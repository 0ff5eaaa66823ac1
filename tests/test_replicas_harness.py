"""The replicas contract in the harness (``bn_replicas = R``): what calls a subject outside the
properties (the dtype probe, the signature check) calls a replicas subject with shards; the
family mechanism gives it the replicas laws only; bad calls are one clear error naming the
argument. The laws themselves are ``properties/test_replicas.py``; their mutants are in the
kill matrix (``tests/test_kill_matrix.py``)."""
from __future__ import annotations

import numpy as np
import pytest

from bn_reference.harness.applicability import applies
from bn_reference.mathematics.replicas import check_replica_call, split
from bn_reference.subjects import Subject, SubjectSpecError
from bn_reference.subjects.numpy_replicas import sync_batch_norm
from bn_reference.subjects.probe import PROBE_DTYPES, probe_in_process
from bn_reference.subjects.signature import check_signature

pytestmark = pytest.mark.meta


def _needs_a_list(shards, *, axes, scale, offset, epsilon, training):
    if not isinstance(shards, list):
        raise TypeError("shards must be a list")
    return [s.copy() for s in shards]


_needs_a_list.bn_replicas = 3


def test_probe_calls_a_replicas_subject_with_shards():
    assert dict(probe_in_process(_needs_a_list, replicas=3)) == {d: None for d in PROBE_DTYPES}
    refused = dict(probe_in_process(_needs_a_list))  # called with x, as for any other subject
    assert all(why == "TypeError: shards must be a list" for why in refused.values())


def test_signature_of_a_replicas_subject():
    check_signature(Subject("sync", sync_batch_norm))  # the replicas contract's call binds

    def wrong(shards, *, axis, scale, offset, epsilon, training):
        return shards

    wrong.bn_replicas = 2
    with pytest.raises(SubjectSpecError, match=r"f\(shards, \*, axes, .*\) -> list of 2 outputs: no parameter named 'axes'"):
        check_signature(Subject("wrong", wrong))


def test_replicas_subjects_get_the_replicas_laws_only():
    replicas, plain = Subject("sync", sync_batch_norm), Subject("plain", lambda x, **kw: x)
    assert applies(replicas, ("replicas",)) and not applies(replicas, ())
    assert applies(plain, ()) and not applies(plain, ("replicas",))


@pytest.mark.parametrize(
    "shards,kwargs,error,match",
    [
        (np.zeros((4, 2)), {}, TypeError, "shards must be a list of 3 numpy arrays, got ndarray"),
        ([np.zeros((2, 2))] * 2, {}, ValueError, r"shards must hold 3 arrays \(bn_replicas = 3\), got 2"),
        ([np.zeros((2, 2)), [[1.0]], np.zeros((2, 2))], {}, TypeError, r"shards\[1\]: x must be a numpy.ndarray"),
        ([np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((0, 2))], {}, ValueError, r"shards\[1\] is float64 \(2, 3\)"),
        ([np.zeros((2, 2))] * 3, {"scale": np.ones((6, 2))}, ValueError, "scale"),
        ([np.zeros((2, 2))] * 3, {"axes": (5,)}, ValueError, "axes"),
    ],
)
def test_bad_replicas_calls_name_the_argument(shards, kwargs, error, match):
    call = {**dict(axes=(0,), scale=1.0, offset=0.0, epsilon=1e-3, training=True), **kwargs}
    with pytest.raises(error, match=match):
        check_replica_call(shards, 3, **call)


def test_split_keeps_empty_shards():
    x = np.arange(10.0).reshape(5, 2)
    shards = split(x, 0, (0, 3, 0, 2))
    assert [s.shape for s in shards] == [(0, 2), (3, 2), (0, 2), (2, 2)]
    np.testing.assert_array_equal(np.concatenate(shards), x)


def test_a_replicas_subject_is_given_the_replicas_laws_only(tmp_path):
    """End to end, on the replicas laws and two modules of single-batch laws: every test run
    with a replicas subject is in properties/test_replicas.py, and ``--bn-list`` lists those
    only (one collection: ``--collect-only`` prints the ids, ``--bn-list`` the laws)."""
    from .test_plugin import run_pytest

    spec = "bn_reference.subjects.numpy_replicas:sync_batch_norm"
    paths = ("properties/test_replicas.py", "properties/test_moments.py", "properties/test_contract.py")
    r = run_pytest(tmp_path, *paths, "--bn-impl", spec, "--collect-only", "-q", "--bn-list", "-p", "no:xdist")
    lines = r.stdout.splitlines()
    ids = [line for line in lines if f"[{spec}-" in line]
    assert len(ids) == 20 and all(i.startswith("properties/test_replicas.py::") for i in ids), r.stdout[-3000:]  # 5 laws x 4 dtypes
    assert [line for line in lines if line.startswith("properties/") and line.endswith(".py:")] == ["properties/test_replicas.py:"], r.stdout[-3000:]


def test_isolation_writes_shards_back(tmp_path):
    """``--bn-isolate`` runs each call in a child process and copies back the argument arrays
    the subject wrote into: the shards of a replicas call too, so the in-place mutant fails
    the contract law there as it does in-process (before the shards were copied back, it
    passed)."""
    from .test_plugin import run_pytest

    spec = "bn_reference.selftest.mutants:replicas_in_place"
    r = run_pytest(tmp_path, "properties/test_replicas.py", "-k", "contract", "--bn-impl", spec, "--bn-isolate", "-p", "no:xdist")
    assert r.returncode == 1, (r.stdout + r.stderr)[-3000:]
    assert f"FAILED properties/test_replicas.py::test_replicas_contract[{spec}-float32]" in r.stdout
    assert "the subject modified shard" in r.stdout
