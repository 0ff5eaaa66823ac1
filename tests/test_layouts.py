"""``Layout.apply`` hands the subject a fresh array, never a view of the harness's own copy:
a subject that writes into its input must not be able to change what its output is compared
with (found with the replicas contract's in-place mutant: ``Layout('permuted')`` of a rank-1
array returned ``np.ascontiguousarray``'s input itself, so the shard written in place was the
harness's x)."""
from __future__ import annotations

import numpy as np
import pytest

from bn_reference.mathematics.layouts import KINDS, Layout

pytestmark = pytest.mark.meta

SHAPES = [(3,), (1,), (1, 4), (4, 1), (2, 3, 1), (0, 2)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_apply_never_shares_memory_with_its_input(kind, shape):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    order = tuple(reversed(range(len(shape))))
    for layout in (Layout(kind, order), Layout(kind, tuple(range(len(shape))))):
        b = layout.apply(a)
        assert not np.shares_memory(a, b), (layout, shape)
        np.testing.assert_array_equal(b, a)
