"""The reference and the built-in subjects reject bad input with a message naming the argument."""
import numpy as np
import pytest

from bn_reference import batch_norm, moments
from bn_reference.subjects import LAYER_SUBJECTS, load_subject

pytestmark = pytest.mark.meta

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
GOOD = dict(axes=(0,), scale=1.0, offset=0.0, epsilon=1e-3, training=True)
BAD_INPUTS = [
    ("axes", dict(axes=()), ValueError, "axes must not be empty"),
    ("axes", dict(axes=(0, 0)), ValueError, "names an axis twice"),
    ("axes", dict(axes=(0, -3)), ValueError, "names an axis twice"),
    ("axes", dict(axes=(3,)), ValueError, "out of range"),
    ("axes", dict(axes=(-4,)), ValueError, "out of range"),
    ("axes", dict(axes=(0.0,)), ValueError, "only ints"),
    ("axes", dict(axes=(True,)), ValueError, "only ints"),
    ("axes", dict(axes="0"), ValueError, "sequence of ints"),
    ("scale", dict(scale=np.ones(5)), ValueError, "does not broadcast"),
    ("scale", dict(scale=np.ones((2, 1, 1))), ValueError, "size 1 on every reduced axis"),
    ("scale", dict(scale=np.ones((1, 1, 1, 4))), ValueError, "more dimensions"),
    ("scale", dict(scale=float("nan")), ValueError, "finite"),
    ("scale", dict(scale="2"), TypeError, "scale must be"),
    ("offset", dict(offset=np.ones((2, 3, 4))), ValueError, "size 1 on every reduced axis"),
    ("offset", dict(offset=[1.0, 2.0]), TypeError, "offset must be"),
    ("epsilon", dict(epsilon=-1e-3), ValueError, "epsilon must be finite and >= 0"),
    ("epsilon", dict(epsilon=float("inf")), ValueError, "epsilon must be finite"),
    ("epsilon", dict(epsilon="1e-3"), TypeError, "epsilon must be a real number"),
    ("training", dict(training="yes"), TypeError, "training must be True, False or None"),
    ("training", dict(training=1), TypeError, "training must be True, False or None"),
]


@pytest.mark.parametrize("spec", ["reference", "tf_nn", "seed_layer", *LAYER_SUBJECTS])
@pytest.mark.parametrize("name,change,error,message", BAD_INPUTS, ids=[f"{b[0]}:{b[3]}" for b in BAD_INPUTS])
def test_bad_argument_is_named(spec, name, change, error, message):
    """Each contract violation raises ``error`` whose message names the argument."""
    subject = load_subject(spec)
    with pytest.raises(error, match=message) as info:
        subject(X.copy(), **{**GOOD, **change})
    assert name in str(info.value)


@pytest.mark.parametrize("x", [X.astype(np.int64), X.tolist()], ids=["int64", "list"])
def test_x_must_be_a_floating_ndarray(x):
    """x must be a numpy array of a floating dtype."""
    with pytest.raises(TypeError, match="^x must"):
        batch_norm(x, (0,))


def test_negative_axes_are_normalized():
    """axes=-1 means the last axis: same result as axes=(ndim-1,)."""
    np.testing.assert_array_equal(batch_norm(X, (-1,)), batch_norm(X, (2,)))
    np.testing.assert_array_equal(moments(X, -1)[1], moments(X, (2,))[1])


def test_moments_are_biased_and_float64_inside():
    """sigma^2 is the ddof=0 variance: for [1, 2, 3, 4], mu = 2.5 and sigma^2 = 1.25 (not 5/3)."""
    mu, var = moments(np.array([1, 2, 3, 4], dtype=np.float32), (0,))
    assert (float(mu[0]), float(var[0])) == (2.5, 1.25)
    assert mu.dtype == np.float32 and moments(X, (0,), dtype=np.float64)[0].dtype == np.float64


def test_inference_returns_a_copy():
    """training=False returns x's values in a new array (writing to it leaves x alone)."""
    from bn_reference import reference

    y = reference(X, **{**GOOD, "training": False})
    assert y is not X and np.array_equal(y, X)


def test_unknown_spec_is_a_clear_error():
    """A spec that is neither built-in nor module:attr, or names nothing, says so."""
    from bn_reference.subjects import SubjectSpecError

    for spec, message in [("nope", "expected module:attr"), ("no_such_mod:f", "cannot import"), ("numpy:nope", "no attribute"), ("numpy:pi", "not callable")]:
        with pytest.raises(SubjectSpecError, match=message):
            load_subject(spec)
