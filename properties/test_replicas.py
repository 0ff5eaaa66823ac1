"""Statistics across replicas: synchronized batch norm (subjects declaring ``bn_replicas = R``).

The batch is cut into R shards along its first reduced axis (unequal sizes, and empty
shards: a replica with no examples) and the subject normalizes every shard with the moments
of the whole batch. Contract, error model and strategies: ``bn_reference.mathematics.replicas``.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bn_reference.mathematics.checks import assert_identical
from bn_reference.mathematics.replicas import (
    call_replicas,
    check_merge,
    check_split_independence,
    draw_replica_case,
    outputs_of,
    shard_sizes,
)

pytestmark = pytest.mark.bn_family("replicas")


@given(data=st.data())
def test_replicas_agree_with_batch_norm_of_the_whole(subject, dtype, data):
    """concat_a(f(shards)_i) = BN(concat_a(shards)), a the first reduced axis: every replica
    normalizes with mu = sum w_i mu_i and var = sum w_i var_i + sum w_i (mu_i - mu)^2
    (w_i = n_i / n), within the merge bound (each shard's moment error weighted by w_i, the
    between-shard term 2 s D + D^2, the merge's roundings, then the output's item 4)."""
    rcase = draw_replica_case(data, subject, dtype)
    check_merge(call_replicas(subject, rcase), rcase)


@given(data=st.data())
def test_replicas_independent_of_the_split(subject, dtype, data):
    """The same batch cut two ways gives the same outputs: |concat f(split A) - concat
    f(split B)| <= B_A + B_B (each within its merge bound of the exact BN). A merge that
    weights the replicas by anything but their sizes moves with the split."""
    rcase = draw_replica_case(data, subject, dtype)
    other = data.draw(shard_sizes(rcase.case.x.shape[rcase.axis], len(rcase.sizes)), label="other shard sizes")
    assume(other != rcase.sizes)
    out_a = call_replicas(subject, rcase)
    out_b = call_replicas(subject, rcase, other)
    check_split_independence(out_a, out_b, rcase, other)


@given(data=st.data())
def test_replicas_contract(subject, dtype, data):
    """f(shards) is a list (or tuple) of R numpy.ndarrays, the i-th of shard i's shape and
    dtype, and the shards are bit-identical after the call, whatever ``training`` is."""
    rcase = draw_replica_case(data, subject, dtype)
    training = data.draw(st.sampled_from([True, False, None]), label="training")
    shards = rcase.shards()
    out = outputs_of(call_replicas(subject, rcase, shards=shards, training=training), rcase)
    for i, (y, before) in enumerate(zip(out, rcase.shards())):
        assert isinstance(y, np.ndarray), f"output {i} is a {type(y).__name__}; the contract requires numpy.ndarray"
        assert y.dtype == before.dtype, f"output {i} has dtype {y.dtype}, its shard {before.dtype}"
        np.testing.assert_array_equal(shards[i], before, err_msg=f"the subject modified shard {i} in place")


@pytest.mark.parametrize("training", [None, False], ids=["training=None", "training=False"])
@given(data=st.data())
def test_replicas_inference_returns_shards(subject, dtype, training, data):
    """training in {None, False}: f(shards)_i = shards_i exactly (values, shape, dtype)."""
    rcase = draw_replica_case(data, subject, dtype)
    out = outputs_of(call_replicas(subject, rcase, training=training), rcase)
    for i, (y, shard) in enumerate(zip(out, rcase.shards())):
        assert_identical(y, shard, law=f"training={training} must return shard {i} unchanged")
