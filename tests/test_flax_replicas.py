"""Flax's synchronized BatchNorm (``bn_reference.subjects.flax_replicas``): right on equal
shards, and the recorded deviation (``deviations._FLAX_PMEAN_EQUAL_WEIGHTS``) on unequal and
empty ones, on one fixed batch (the laws' own run: ``properties/test_replicas.py
--bn-impl bn_reference.subjects.flax_replicas:flax_sync_batch_norm``, strict xfails under ci)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from bn_reference.mathematics.replicas import ReplicaCase, check_merge
from bn_reference.mathematics.strategies import BNCase

pytestmark = pytest.mark.meta


@pytest.fixture(scope="module")
def flax_replicas():
    if not os.environ.get("CI"):
        pytest.importorskip("flax")
    from bn_reference.subjects import flax_replicas as m

    yield m
    m._close()


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
