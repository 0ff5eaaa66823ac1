"""The family attributes (``bn_norm``, ``bn_scale``, ``bn_mask``, ``bn_replicas``) and which
properties each family is given (``bn_reference.harness.applicability``)."""
import numpy as np
import pytest

from bn_reference.harness.applicability import applies, describe
from bn_reference.mathematics import reference as ref
from bn_reference.subjects import Subject, SubjectSpecError


def _subject(**attrs):
    def f(x, *, axes, scale, offset, epsilon, training):
        return x

    for k, v in attrs.items():
        setattr(f, k, v)
    return Subject("f", f)


def test_default_family_is_the_standard_norm():
    s = _subject()
    assert (s.norm, s.scale_convention, s.masked, s.replicas) == ("standard", "plain", False, None)
    assert s.families == {"standard"}


@pytest.mark.parametrize(
    "attrs, tags, expected",
    [
        ({}, (), True),
        ({}, ("standard", "rms"), True),
        ({}, ("rms",), False),
        ({"bn_norm": "rms"}, (), False),
        ({"bn_norm": "rms"}, ("standard", "rms"), True),
        ({"bn_norm": "rms"}, ("rms",), True),
        ({}, ("masked",), False),
        ({"bn_mask": True}, ("masked",), True),
        ({"bn_mask": True}, (), True),  # a masked subject is a standard one called without mask
        ({"bn_replicas": 2}, (), False),  # called with shards: only the replicas laws
        ({"bn_replicas": 2}, ("replicas",), True),
        ({}, ("replicas",), False),
    ],
)
def test_applies(attrs, tags, expected):
    assert applies(_subject(**attrs), tags) is expected


@pytest.mark.parametrize(
    "attrs, named",
    [({"bn_norm": "layer"}, "bn_norm"), ({"bn_scale": "plus_one"}, "bn_scale"), ({"bn_mask": "yes"}, "bn_mask"), ({"bn_replicas": 0}, "bn_replicas"), ({"bn_replicas": True}, "bn_replicas")],
)
def test_bad_declarations_name_the_attribute(attrs, named):
    with pytest.raises(SubjectSpecError, match=named):
        _subject(**attrs).families


def test_describe():
    assert describe(()) == "the standard norm"
    assert describe(("rms",)) == "the rms norm"


def test_rms_reference_is_the_formula():
    """y = x / sqrt(mean_A(x^2) + eps) * gamma + beta, checked on a hand example: x = (3, 4)
    has ms = 12.5; with eps = 0.5, sqrt(13) normalizes."""
    x = np.array([3.0, 4.0])
    y = ref.rms_norm(x, (0,), 2.0, 1.0, 0.5)
    np.testing.assert_allclose(y, x / np.sqrt(13.0) * 2.0 + 1.0, rtol=1e-15)
    assert ref.effective_scale(0.5, "one_plus") == 1.5


def test_rms_vjp_matches_finite_differences():
    """The RMSNorm gradient of the reference (``batch_norm_vjp(norm="rms")``) against central
    differences of ``rms_norm`` in float64 (step 1e-6: truncation ~1e-12, rounding ~1e-10)."""
    rng = np.random.default_rng(0)
    x, dy = rng.normal(1.0, 2.0, (3, 5)), rng.normal(size=(3, 5))
    dx, dg, db = ref.batch_norm_vjp(x, dy, (1,), 1.5, 0.1, norm="rms")
    h, num = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        num[i] = ((ref.rms_norm(x + e, (1,), 1.5, 0.0, 0.1) - ref.rms_norm(x - e, (1,), 1.5, 0.0, 0.1)) * dy).sum() / (2 * h)
    np.testing.assert_allclose(dx, num, atol=1e-8)
    np.testing.assert_allclose(dg, (ref.rms_norm(x, (1,), 1.0, 0.0, 0.1) * dy).sum(), rtol=1e-12)
    np.testing.assert_allclose(db, dy.sum(), rtol=1e-12)
