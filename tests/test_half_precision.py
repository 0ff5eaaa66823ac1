"""The half-precision contract (``tolerance`` item 6) bites where it should: the forgotten
float32 upcast of the issue's example is outside the strict bound (and inside the looser
``"input"`` one, which is why it was invisible), the correct float32-accumulating variants
are inside it, and a subject's ``bn_accumulation`` is declared, validated and reported."""
import ml_dtypes
import numpy as np
import pytest

from bn_reference.harness import report
from bn_reference.mathematics.reference import batch_norm
from bn_reference.mathematics.tolerance import accumulation_dtype, bound, in_safe_domain
from bn_reference.selftest import mutants
from bn_reference.subjects import Subject, SubjectSpecError, supports

KW = dict(axes=(0,), scale=1.0, offset=0.0, epsilon=1e-3, training=True)
HALF = pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["float16", "bfloat16"])


def _issue_input(dtype):
    """(4096, 3), mean 1, std 0.1, reduced over axis 0 (the issue's example)."""
    return (1 + 0.1 * np.random.default_rng(12).standard_normal((4096, 3))).astype(dtype)


@HALF
def test_forgotten_upcast_is_outside_the_strict_bound_only(dtype):
    x = _issue_input(dtype)
    expected = batch_norm(x, (0,), epsilon=1e-3, dtype=np.float64)
    fn = mutants.forgotten_upcast_bfloat16 if dtype is ml_dtypes.bfloat16 else mutants.forgotten_upcast_float16
    err = np.abs(fn(x, **KW).astype(np.float64) - expected)
    assert (err > bound(x, (0,), epsilon=1e-3)).any()  # strict: caught
    assert not (err > bound(x, (0,), epsilon=1e-3, accumulation="input")).any()  # input: invisible
    for correct in (mutants.float32_two_pass, mutants.float32_welford, mutants.folded_rsqrt):
        err = np.abs(correct(x, **KW).astype(np.float64) - expected)
        assert (err <= bound(x, (0,), epsilon=1e-3)).all(), correct.__name__


def test_bfloat16_running_sum_stalls_as_the_issue_says():
    """A bfloat16 running sum of 4096 values near 1 stops near 256: the mean comes out far
    below 1, so the output's mean is far from 0."""
    y = mutants.forgotten_upcast_bfloat16(_issue_input(ml_dtypes.bfloat16), **KW).astype(np.float64)
    assert np.all(np.abs(y.mean(axis=0)) > 1)


def test_float16_variance_above_65504_is_inside_the_strict_domain_only():
    """std ~ 1000 in float16: representable data, a variance far above float16's max. Inside
    the strict domain (reductions in float32), where the clipped and float16-rsqrt mutants
    fail; outside the input-accumulation domain."""
    x = (1000 * np.random.default_rng(1).standard_normal((64, 2))).astype(np.float16)
    assert in_safe_domain(x, (0,))
    assert not in_safe_domain(x, (0,), accumulation="input")
    expected = batch_norm(x, (0,), epsilon=1e-3, dtype=np.float64)
    b = bound(x, (0,), epsilon=1e-3)
    for wrong in (mutants.variance_clipped_to_float16, mutants.rsqrt_in_float16):
        assert (np.abs(wrong(x, **KW).astype(np.float64) - expected) > b).any(), wrong.__name__
    assert (np.abs(mutants.float32_two_pass(x, **KW).astype(np.float64) - expected) <= b).all()


def test_accumulation_dtype():
    assert accumulation_dtype("float16") == np.float32 and accumulation_dtype("bfloat16") == np.float32
    assert accumulation_dtype("float16", "input") == np.float16
    assert accumulation_dtype("float64") == np.float64
    with pytest.raises(ValueError, match="accumulation"):
        accumulation_dtype("float16", "float16")


def test_subject_declares_its_accumulation():
    def f(x, **kw):
        return x

    assert Subject("f", f).accumulation == "float32"
    assert Subject("g", supports("float16", accumulation="input")(lambda x, **kw: x)).accumulation == "input"
    f.bn_accumulation = "half"
    with pytest.raises(SubjectSpecError, match="bn_accumulation"):
        Subject("f", f).accumulation
    with pytest.raises(ValueError, match="accumulation"):
        supports("float16", accumulation="half")


def test_report_names_each_subjects_contract():
    jsonschema = pytest.importorskip("jsonschema")
    subjects = [Subject("strict", lambda x, **kw: x), Subject("loose", supports("float16", accumulation="input")(lambda x, **kw: x))]
    contracts = report.contracts(subjects)
    assert contracts == {"strict": "float32-accumulation", "loose": "input-accumulation"}
    built = report.build({}, ["strict", "loose"], "ci", contracts=contracts)
    jsonschema.validate(built, report.SCHEMA)
    md = report.to_markdown(built)
    assert "strict: float16/bfloat16 reductions in float32" in md and "loose: float16/bfloat16 reductions in x's dtype" in md


@HALF
def test_constant_slices_with_small_epsilon_are_resolvable(dtype):
    """A constant slice (sigma = 0) with eps = 1e-5, below float16's 2 tiny: the mean is one
    of the slice's values (exact to 2 e_a, not u |mu|) and no square is flushed, so the
    bound stays finite and small; the correct variants are inside it, a kernel that
    ignores epsilon (inv = inf) is not."""
    c = 2.0**-7  # inside resolvable_constant_slices' |c| <= max_condition sqrt(eps) in both dtypes
    x = np.array([[c, -1.5], [c, 2.0], [c, 0.25]], dtype)
    kw = dict(KW, epsilon=1e-5)
    b = bound(x, (0,), epsilon=1e-5)
    assert np.isfinite(b).all() and b[:, 0].max() < 0.1, b  # the other slice's output spans ~2.4
    expected = batch_norm(x, (0,), epsilon=1e-5, dtype=np.float64)
    for correct in (mutants.float32_two_pass, mutants.float32_welford, mutants.folded_rsqrt):
        assert (np.abs(correct(x, **kw).astype(np.float64) - expected) <= b).all(), correct.__name__
    assert not (np.abs(mutants.epsilon_ignored(x.astype(np.float32), **kw).astype(np.float64) - expected) <= b).all()


@HALF
def test_offsets_are_clipped_to_what_the_output_resolves(dtype):
    """|beta| <= max_condition |gamma| sigma / sqrt(sigma^2 + eps), per feature; a scalar
    offset to the smallest limit; shapes and dtypes kept; a constant slice counts as s = 1."""
    from bn_reference.mathematics.strategies import max_condition, resolvable_offset

    x = np.array([[0.0, 5.0, 1.0], [2.0, 5.0, -1.0]], dtype)  # sigma 1, 0 (constant), 1
    limit = max_condition(np.dtype(dtype))
    s = 1 / np.sqrt(1 + 1e-3)
    gamma = np.array([0.1, 0.1, 10.0], dtype)
    beta = resolvable_offset(np.array([[10.0, -10.0, 10.0]], dtype), gamma, x, (0,), 1e-3)
    assert beta.dtype == np.dtype(dtype) and beta.shape == (1, 3)
    np.testing.assert_allclose(beta.astype(np.float64), [[min(10, limit * 0.1 * s), -min(10, limit * 0.1), 10.0]], rtol=1e-2)
    scalar = resolvable_offset(10.0, gamma, x, (0,), 1e-3)
    assert isinstance(scalar, float) and scalar == pytest.approx(min(10, limit * 0.1 * s), rel=1e-2)
    assert resolvable_offset(0.0, gamma, x, (0,), 1e-3) == 0.0  # what shrinking ends at is kept


@HALF
def test_constant_slices_are_clipped_by_epsilon(dtype):
    """Only constant slices move, to |c| <= max_condition sqrt(eps)."""
    from bn_reference.mathematics.strategies import max_condition, resolvable_constant_slices

    x = np.array([[100.0, 3.0], [100.0, -3.0]], dtype)
    out = resolvable_constant_slices(x, (0,), 1e-3)
    limit = max_condition(np.dtype(dtype)) * np.sqrt(1e-3)
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out[:, 0].astype(np.float64), limit, rtol=1e-2)
    assert (out[:, 1] == x[:, 1]).all()


def test_flush_to_zero_of_the_folded_products_is_inside_the_bound():
    """TF's folded bfloat16 batch norm flushes both x (inv gamma) and mu (inv gamma) to zero
    (found by the flakiness guard, seed 401696828): y = 0 for a reference of -1.8 tiny, which
    the old floor tiny (1 + inv |gamma|) rejected and tiny (2 inv |gamma| + |gamma| + 4)
    (tolerance item 4, flush-to-zero) admits."""
    tf_nn = pytest.importorskip("bn_reference.subjects.tensorflow").tf_nn
    x = np.array([[-7.86e-38, 2.626e-37]], ml_dtypes.bfloat16)
    kw = dict(axes=(1,), scale=0.125, offset=0.0, epsilon=1.0, training=True)
    expected = batch_norm(x, (1,), 0.125, 0.0, 1.0, dtype=np.float64)
    err = np.abs(tf_nn(x, **kw).astype(np.float64) - expected)
    tiny = float(ml_dtypes.finfo(ml_dtypes.bfloat16).tiny)
    assert err.max() > tiny * (1 + 0.125)  # beyond the old floor: the case is real
    assert (err <= bound(x, (1,), 0.125, 0.0, 1.0)).all()


@HALF
def test_the_stricter_elementwise_mutants_are_correct_under_the_default_contract_only(dtype):
    """``tolerance`` item 7: a truncating final conversion and an elementwise stage left in
    half precision stay inside the default contract's bound (item 6) on every example drawn
    (200, derandomized, the default strategy), and leave the ``bn_elementwise = "float32"``
    bound (``accumulation="float32-once"``) on some; a kernel computed in float64 and rounded
    once (``float64_compute``) stays inside both."""
    from hypothesis import HealthCheck, given, settings

    from bn_reference.mathematics import strategies as bst

    name = np.dtype(dtype).name
    outside = {"truncating_final_conversion": 0, "elementwise_in_half": 0}

    @settings(max_examples=200, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bst.bn_cases(dtypes=(name,)))
    def check(case):
        expected = batch_norm(case.x, case.axes, case.scale, case.offset, case.epsilon, dtype=np.float64)
        default = bound(case.x, case.axes, case.scale, case.offset, case.epsilon)
        once = bound(case.x, case.axes, case.scale, case.offset, case.epsilon, accumulation="float32-once")
        with np.errstate(invalid="ignore"):
            for mutant in outside:
                err = np.abs(getattr(mutants, mutant)(case.x.copy(), **case.kwargs()).astype(np.float64) - expected)
                assert (err <= default).all(), mutant  # correct under the default contract
                outside[mutant] += bool((err > once).any())
            err = np.abs(mutants.float64_compute(case.x.copy(), **case.kwargs()).astype(np.float64) - expected)
            assert (err <= once).all()

    check()
    assert all(outside.values()), outside
