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
    """x = (v, v) with v = sqrt(max/16) (Welford's 4 max|x|^2 = max/4, at the limit, which in
    float32 binds long before N max|x| does): TF returns beta = 0."""
    x = np.full(2, np.sqrt(MAX32 / 16), dtype=np.float32)
    assert in_safe_domain(x, (0,), epsilon=1.0)
    assert not in_safe_domain(x * np.float32(2), (0,), epsilon=1.0)
    np.testing.assert_array_equal(tf_nn(x, **KW), np.zeros(2, np.float32))


def test_torch_welford_delta_squared_sets_the_limit():
    """PyTorch's CPU ``layer_norm`` merges Welford moments with ``delta * delta * c * m0``
    (``AddMoments``, aten/src/ATen/native/cpu/moments_utils.h): for N = 1 it squares x itself
    and multiplies by 0, NaN once x^2 overflows float32 (|x| >= 1e20; the answer is the
    offset). The domain's ``4 max|x|^2 <= max/4`` puts those inputs outside it, and torch is
    right at its edge (|x| = 4.6e18 -> 0)."""
    torch = pytest.importorskip("torch")

    def layer_norm(v):
        x = np.array([v], dtype=np.float32)
        return x, torch.nn.functional.layer_norm(torch.from_numpy(x), (1,), eps=1e-5).numpy()

    for v in (1.34e36, 1e20):
        x, y = layer_norm(v)
        assert np.isnan(y).all()
        assert not in_safe_domain(x, (0,), epsilon=1e-5)
    x, y = layer_norm(4.6e18)
    assert in_safe_domain(x, (0,), epsilon=1e-5)
    np.testing.assert_array_equal(y, np.zeros(1, np.float32))
