"""The framework replicas subjects' findings, on one fixed batch (the laws' own runs:
``properties/test_replicas.py --bn-impl bn_reference.subjects.flax_replicas:flax_sync_batch_norm``
or ``...keras_replicas:keras_sync_batch_norm``, xfails listed by cause, docs/conformance.md, group replicas):

* Flax's synchronized BatchNorm (``flax_replicas``): right on equal shards, the recorded
  deviation (``framework_findings._FLAX_PMEAN_EQUAL_WEIGHTS``) on unequal and empty ones;
* Keras' on TensorFlow (``keras_replicas``): right on unequal and empty shards, the recorded
  deviation (``framework_findings._KERAS_SYNC_ONE_PASS``) at a large mean.

Each framework runs in its worker process only (looked up here, not imported)."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from bn_reference.mathematics.replicas import ReplicaCase, check_merge
from bn_reference.mathematics.strategies import BNCase

pytestmark = pytest.mark.meta


def _needs(framework: str) -> None:
    """Skip without ``framework`` (in CI it is installed: a missing one fails)."""
    if importlib.util.find_spec(framework) is None:
        assert not os.environ.get("CI"), f"{framework} is not installed in CI"
        pytest.skip(f"{framework} is not installed")


@pytest.fixture(scope="module")
def flax_replicas():
    _needs("flax")
    from bn_reference.subjects import flax_replicas as m

    yield m
    m._worker().close()


def _case(sizes):
    x = (np.random.default_rng(1).standard_normal((8, 3, 2)) + 3).astype(np.float32)
    return ReplicaCase(BNCase(x=x, axes=(0, 2), scale=np.float32(1.5), offset=0.5, epsilon=1e-3), sizes)


@pytest.mark.parametrize("name", ["flax_sync_batch_norm", "flax_sync_batch_norm_two_pass"])
def test_flax_sync_bn_weights_replicas_equally(flax_replicas, name):
    f = getattr(flax_replicas, name)
    equal = _case((4, 4))
    check_merge(f(equal.shards(), **equal.case.kwargs()), equal)  # equal shards: the batch's moments
    unequal = _case((3, 5))
    with pytest.raises(AssertionError, match="err/bound = 1[0-9]{4}"):  # 1/2 each instead of 3/8, 5/8
        check_merge(f(unequal.shards(), **unequal.case.kwargs()), unequal)
    empty = _case((0, 8))
    assert np.isnan(np.concatenate(f(empty.shards(), **empty.case.kwargs()))).all()  # mean over no element: NaN


@pytest.fixture(scope="module")
def keras_replicas():
    _needs("tensorflow")
    from bn_reference.subjects import keras_replicas as m

    yield m
    from bn_reference.subjects.replica_workers import close_all

    close_all()


def test_keras_sync_bn_weights_by_count_but_cancels(keras_replicas):
    """Keras' synchronized moments (recorded deviation ``_KERAS_SYNC_ONE_PASS``): the replicas
    weighted by their counts, an empty one included, so unequal shards of a well-conditioned
    batch agree; at |mean| / std = 500 its one-pass variance cancels."""
    f = keras_replicas.keras_sync_batch_norm
    for sizes in ((3, 5), (0, 8)):
        case = _case(sizes)
        check_merge(f(case.shards(), **case.case.kwargs()), case)
    far = ReplicaCase(BNCase(x=_case((3, 5)).case.x / 5 + np.float32(100), axes=(0, 2), epsilon=1e-3), (3, 5))
    with pytest.raises(AssertionError, match="outside the error model"):
        check_merge(f(far.shards(), **far.case.kwargs()), far)
