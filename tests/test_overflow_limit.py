"""The documented overflow limit (``tolerance`` item 5, ``in_safe_domain``) is real: just
beyond it TF's ``tf.nn.moments`` overflows on data whose normalization is perfectly
representable, just inside it the built-in subject is right. A characterization of TF 2.21
on CPU: if TF starts scaling its sums, the first test fails and the limit can be relaxed."""
import numpy as np
import pytest

from bn_reference.mathematics.reference import batch_norm
from bn_reference.subjects.tensorflow import tf_nn
from bn_reference.mathematics.tolerance import in_safe_domain

pytestmark = pytest.mark.meta

MAX32 = float(np.finfo(np.float32).max)
KW = dict(axes=(0,), scale=1.0, offset=0.0, epsilon=1.0, training=True)


def test_tf_mean_overflows_past_the_limit():
    """x = (v, v) with v = 0.6 max: the slice is constant, y = beta = 0 exactly, but the
    sum 2v = 1.2 max overflows float32, so TF's mean is inf and y is NaN; the case is
    outside ``in_safe_domain`` (N max|x| > max/4), which is why no property draws it."""
    x = np.full(2, 0.6 * MAX32, dtype=np.float32)
    assert not in_safe_domain(x, (0,), epsilon=1.0)
    np.testing.assert_array_equal(batch_norm(x, (0,), epsilon=1.0), np.zeros(2, np.float32))
    assert not np.isfinite(tf_nn(x, **KW)).any()


def test_tf_is_right_inside_the_limit():
    """x = (v, v) with v = max/8 (N max|x| = max/4, at the limit): TF returns beta = 0."""
    x = np.full(2, MAX32 / 8, dtype=np.float32)
    assert in_safe_domain(x, (0,), epsilon=1.0)
    np.testing.assert_array_equal(tf_nn(x, **KW), np.zeros(2, np.float32))
