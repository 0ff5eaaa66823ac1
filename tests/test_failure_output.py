"""Failures a person reads in thirty seconds (issue 15).

A known-buggy subject (epsilon outside the square root, computed in x's dtype) runs
through the property suite with ``-n 2``; its output must stay short (under 40 lines per
failing property, all told), name the right law for every property that fails, show the
inputs the subject actually received (the constant array for the constant-slices
property), leak no numpy reprs, helper source or Hypothesis "Explanation", and the JSON
report must carry each failure whole: a falsifying case that, fed back to the subject,
reproduces the failure with the very err/bound the message printed.

The fast tests below pin the pieces (reprs, array summaries, the exact-bytes encoding,
the provoked-warnings filter) without a subprocess.
"""
import json
import re
import sys
import textwrap
import warnings
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from bn_reference.harness import failure
from bn_reference.mathematics import checks
from bn_reference.harness.report import SCHEMA
from bn_reference.mathematics import laws
from bn_reference.mathematics.reference import batch_norm, first_of_each_slice
from bn_reference.mathematics.strategies import BNCase, PoisonedCase, Regime

from .test_plugin import ROOT, run_pytest

pytestmark = [pytest.mark.meta, pytest.mark.xdist_group("test_failure_output")]  # one worker runs buggy_run (tox -e tests: --dist loadgroup)

EPS_OUTSIDE = textwrap.dedent(
    '''
    import numpy as np

    def outside(x, *, axes, scale, offset, epsilon, training):
        """epsilon outside the square root: (x - mu) / (sigma + eps), computed in x's dtype."""
        if not training:
            return x.copy()
        mu = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        return ((x - mu) / (np.sqrt(var) + epsilon) * scale + offset).astype(x.dtype)

    outside.bn_dtypes = ("float32",)  # one screen per failure, not dtype probing (tests/test_dtype_probe.py)
    '''
)

# property -> the law(s) its failure message may name (the assertion's first line)
LAWS = {
    "test_agrees_with_float64_reference": ("agreement with the float64 reference:",),
    "test_agrees_beyond_16_bit_counts": ("agreement with the float64 reference:",),
    "test_layout_invariance": ("layout invariance: the same values in another memory layout give the same output",),
    "test_zero_mean": ("zero mean: mean_A(y - beta) = 0:",),
    "test_unit_variance": ("unit variance: var_A(y) = gamma^2 sigma^2 / (sigma^2 + eps):",),
    "test_epsilon_sensitivity": ("epsilon sensitivity (eps inside the sqrt):",),
    "test_permutation_equivariance": ("permutation equivariance along reduced axis",),
    "test_translation_invariance": ("translation invariance: BN(x + ",),
    "test_scale_identity": ("scale identity: BN_(",),
    "test_constant_slices_give_offset": ("constant slices normalize to the offset",),
    "test_idempotence": ("idempotence: BN(BN(x)) = BN(x)",),
    "test_affine_acts_per_feature": ("per-feature scale and offset act on kept axes only",),
    "test_nonfinite_value_stays_in_its_slice": ("no cross-slice contamination: with x[", ": its slice must come out non-finite"),
    "test_single_element_slices_give_the_offset": ("N = 1: y = beta:",),
    "test_zero_size_dimensions_give_an_empty_output": ("zero-size x of shape",),
    "test_huge_values_up_to_the_overflow_limit": ("huge values: agreement up to the overflow limit:",),
}
MUST_FAIL = {"test_agrees_with_float64_reference", "test_unit_variance", "test_epsilon_sensitivity", "test_constant_slices_give_offset"}
FILES = ("properties/test_agreement.py", "properties/test_metamorphic.py", "properties/test_moments.py", "properties/test_edge_inputs.py")
LEAKS = ("np.float32(", "np.float64(", "np.int64(", "# or any other generated value", "Explanation:", "def assert_within", "RuntimeWarning")
_HEADER = re.compile(r"^_{3,} (test_\w+)\[[^\]]*\] _{3,}$")


@pytest.fixture(scope="module")
def buggy_run(tmp_path_factory):
    """The suite's numerical properties on the buggy subject: ``-n 2``, ci profile, report."""
    tmp = tmp_path_factory.mktemp("eps_outside")
    (tmp / "epsout.py").write_text(EPS_OUTSIDE)
    report = tmp / "report.json"
    r = run_pytest(
        tmp, *FILES, "--bn-impl", "epsout:outside", "-n", "2", f"--bn-report={report}", f"--bn-repro-dir={tmp / 'repro'}"
    )
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-3000:]
    sys.path.insert(0, str(tmp))
    try:
        import epsout
    finally:
        sys.path.remove(str(tmp))
    return r.stdout, json.loads(report.read_text()), epsout.outside


def sections(out: str) -> dict[str, list[str]]:
    """``{property: its failure section's lines}`` of pytest's FAILURES part."""
    found, current = {}, None
    for line in out.splitlines():
        m = _HEADER.match(line)
        if m:
            current = found.setdefault(m.group(1), [])
        elif line.startswith("====="):
            current = None
        if current is not None:
            current.append(line)
    return found


@pytest.mark.slow
def test_each_failure_is_one_screen_naming_its_law(buggy_run):
    out, _, _ = buggy_run
    failed = sections(out)
    assert MUST_FAIL <= set(failed), sorted(failed)
    count = sum(1 for line in out.splitlines() if _HEADER.match(line))  # failures (a property fails once per dtype)
    assert len(out.splitlines()) <= 40 * count, f"{len(out.splitlines())} lines for {count} failures"
    for name, lines in failed.items():
        text = "\n".join(lines)
        assert len(lines) <= 40, f"{name}: {len(lines)} lines\n{text}"
        assert name in LAWS, f"{name} failed; add the law it must name to LAWS\n{text}"
        body = [ln for ln in lines if not ln.startswith("property:")]
        assert any(law in ln for ln in body for law in LAWS[name]), f"{name} must name one of {LAWS[name]!r}\n{text}"
        values = [ln for ln in body if re.match(r"^  \S.*? = ", ln)]
        assert not any("expected" in ln for ln in values), f"{name}: 'expected' labels a value\n{text}"
        for needed in ("the subject received", "repro: python ", "replay: @reproduce_failure("):
            assert needed in text, f"{name}: no {needed!r}\n{text}"
    eps = "\n".join(failed["test_epsilon_sensitivity"])
    assert "unit variance:" not in eps, eps
    for leak in LEAKS:
        assert leak not in out, f"{leak!r} in the output"


@pytest.mark.slow
def test_constant_slices_show_the_constant_input(buggy_run):
    """The constant-slices failure shows the constant array the subject received (as the
    report's exact bytes have it), not the drawn case it was made from."""
    out, report, _ = buggy_run
    (row,) = [r for r in report["results"] if r["property"].startswith("test_constant_slices_give_offset")]
    (call,) = row["failure"]["calls"]
    _, x, kwargs = failure.decode_call(call)
    first = first_of_each_slice(x, kwargs["axes"])
    assert np.array_equal(np.broadcast_to(first, x.shape), x), "the recorded input is not constant per slice"
    shown = failure.describe_array(x, kwargs["axes"])
    assert shown in "\n".join(sections(out)["test_constant_slices_give_offset"]), shown


def _case(x, kwargs) -> BNCase:
    return BNCase(x=x, axes=kwargs["axes"], scale=kwargs["scale"], offset=kwargs["offset"], epsilon=kwargs["epsilon"])


def _replayed_ratio(prop: str, subject, x, kwargs) -> float:
    """The property's comparison on the subject's output for the reported input: the
    worst err/bound of the LawViolation it raises."""
    y = checks.as_output(subject(x.copy(), **kwargs))
    case = _case(x, kwargs)
    with pytest.raises(checks.LawViolation) as info:
        if prop == "test_agrees_with_float64_reference":
            laws.check_agreement(y, case)
        elif prop == "test_epsilon_sensitivity":
            laws.check_unit_variance(y, case)
        else:  # constant slices: y = beta
            checks.assert_within(y, np.broadcast_to(np.asarray(case.offset, dtype=np.float64), x.shape), laws.output_bound(case), law="beta")
    return info.value.ratio


@pytest.mark.slow
@pytest.mark.parametrize("prop", ["test_agrees_with_float64_reference", "test_epsilon_sensitivity", "test_constant_slices_give_offset"])
def test_report_failure_reproduces_when_fed_back(buggy_run, prop):
    """Each failure in the JSON report is whole (message as printed, exact input, repro
    path, replay blob), and its input, fed back to the subject, fails the same law with
    worst_ratio, which is also the err/bound the message prints."""
    out, report, subject = buggy_run
    jsonschema.validate(report, SCHEMA)
    (row,) = [r for r in report["results"] if r["property"].startswith(prop)]
    f = row["failure"]
    assert row["outcome"] == "failed" and f["reproduce_failure"].startswith("@reproduce_failure(")
    assert Path(f["repro"]).is_file() or (Path(__file__).parents[1] / f["repro"]).is_file(), f["repro"]
    assert f["message"] in out, "the report's message is not the one printed"
    printed = float(re.findall(r"err/bound = (\S+)", f["message"])[-1])
    assert row["worst_ratio"] == pytest.approx(printed, rel=1e-5)
    (call,) = f["calls"]
    function, x, kwargs = failure.decode_call(call)
    assert function is None
    assert _replayed_ratio(prop, subject, x, kwargs) == pytest.approx(row["worst_ratio"], rel=1e-12)


WARNS = textwrap.dedent(
    '''
    import warnings
    import numpy as np

    def warns(x, *, axes, scale, offset, epsilon, training):
        """Correct, numpy's warnings on NaN/empty inputs left alone, plus a warning of its own."""
        warnings.warn("a warning of the subject's own", UserWarning)
        if not training:
            return x.copy()
        x64 = x.astype(np.float64)
        mu = x64.mean(axis=axes, keepdims=True)
        var = np.square(x64 - mu).mean(axis=axes, keepdims=True)
        return ((x64 - mu) / np.sqrt(var + epsilon) * scale + offset).astype(x.dtype)

    warns.bn_dtypes = ("float32",)
    '''
)


@pytest.mark.slow
def test_provoked_warnings_are_silent_genuine_ones_surface(tmp_path):
    """NaN and empty inputs fed on purpose provoke numpy RuntimeWarnings in the subject:
    not shown; the subject's own warning still is."""
    (tmp_path / "warnmod.py").write_text(WARNS)
    r = run_pytest(
        tmp_path, "properties/test_edge_inputs.py", "--bn-impl", "warnmod:warns",
        "-k", "nonfinite or zero_size", path=(tmp_path,),
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "a warning of the subject's own" in out
    assert "RuntimeWarning" not in out and "Mean of empty slice" not in out


# -- the pieces, without a subprocess ----------------------------------------------------


def test_reprs_are_plain_and_one_line():
    x = np.array([0.12573022, -0.13210486], dtype=np.float32)
    case = BNCase(x=x, axes=(0,), scale=np.float32(2.0), epsilon=np.float64(1e-3), regime=Regime("gaussian", np.float64(0.0), 1.0))
    text = repr(case)
    assert "\n" not in text and "np." not in text, text
    assert "x=float32 (2,) [0.12573022, -0.13210486]" in text and "epsilon=0.001" in text and "scale=2.0" in text
    assert repr(Regime("gaussian", 0.0, 1.0)) == "Regime('gaussian', location=0.0, spread=1.0)"
    poisoned = PoisonedCase(case, case, (1,), float("nan"))
    assert repr(poisoned).startswith("PoisonedCase(x[1] = nan in clean=BNCase(")
    assert checks.plain(np.int64(3)) == "3" and checks.plain(np.float32(0.1)) == "0.1"


def test_hypothesis_prints_the_compact_repr():
    """Hypothesis' printer of falsifying examples uses the one-line repr, not its
    field-by-field dataclass layout."""
    from hypothesis.vendor.pretty import pretty

    case = BNCase(x=np.zeros(3, np.float32), axes=(0,))
    assert pretty(case) == repr(case)
    assert pretty(Regime("tiny", 0.0, 1.0)) == "Regime('tiny', location=0.0, spread=1.0)"


def test_large_arrays_are_summarized_constant_slices_named():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    assert failure.describe_array(x, (0,)).startswith("float32 (64, 2): min ")
    constant = np.broadcast_to(x[:1], x.shape).copy()
    assert failure.describe_array(constant, (0,)) == f"float32 (64, 2), constant along axes (0,), slice values [{str(x[0, 0])}, {str(x[0, 1])}]"
    x[3, 1] = np.nan
    assert "1 NaN, 0 inf (first at [3, 1])" in failure.describe_array(x)
    assert failure.describe_array(np.zeros((0, 3), np.float16)) == "float16 (0, 3) (empty)"


def test_first_sentence_is_whole():
    doc = """|y - y64| <= B elementwise, where y64 = (x - mu)/sqrt(sigma^2 + eps) * gamma + beta in
    float64, e.g. for N = 2. Second sentence.

    Another paragraph."""
    assert failure.first_sentence(doc) == "|y - y64| <= B elementwise, where y64 = (x - mu)/sqrt(sigma^2 + eps) * gamma + beta in float64, e.g. for N = 2."


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_calls_round_trip_bit_for_bit(dtype):
    import ml_dtypes  # noqa: F401

    dt = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    x = np.array([[0.1, np.nan], [-np.inf, 3.0]]).astype(dt)
    gamma = np.array([[2.0, -0.5]]).astype(dt)
    c = checks.Call("BN(x + 1)", x, {"axes": (0,), "scale": gamma, "offset": 0.25, "epsilon": 1e-3, "training": None})
    data = json.loads(json.dumps(failure.encode_call(c)))
    function, x2, kw = failure.decode_call(data)
    assert function is None and x2.dtype == x.dtype and x2.tobytes() == x.tobytes()
    assert kw["axes"] == (0,) and kw["scale"].tobytes() == gamma.tobytes() and kw["training"] is None
    jsonschema.validate(data, {**SCHEMA["$defs"]["call"], "$defs": SCHEMA["$defs"]})


def test_provoked_warnings_silences_runtime_warnings_only():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with laws.provoked_warnings():
            np.mean(np.zeros(0))
            warnings.warn("kept", UserWarning)
        np.mean(np.zeros(0))  # outside the block: shown
    kinds = [w.category for w in seen]
    assert kinds.count(UserWarning) == 1 and kinds.count(RuntimeWarning) >= 1


def test_law_violation_names_both_sides():
    with pytest.raises(checks.LawViolation) as info:
        checks.assert_within(np.array([1.0, 2.5]), np.array([1.0, 2.0]), 0.1, law="translation invariance", got="BN(x + 1)", want="BN(x)")
    text = str(info.value)
    assert text.splitlines()[:3] == [
        "translation invariance: 1 of 2 elements outside the error model; the worst, at [1]:",
        "  BN(x + 1) = 2.5",
        "  BN(x)     = 2.0",
    ]
    assert info.value.ratio == pytest.approx(5.0) and info.value.index == (1,)
    assert "expected" not in text


LONG_ONLY = textwrap.dedent(
    """
    import math

    import numpy_bn  # examples/numpy_bn.py: forward and vjp by hand


    def long_only(x, **kwargs):
        return numpy_bn.batch_norm(x, **kwargs)


    def vjp(x, dy, *, axes, **kwargs):
        dx, dgamma, dbeta = numpy_bn.vjp(x, dy, axes=axes, **kwargs)
        long = math.prod(x.shape[a] for a in axes) >= 200
        return dx, dgamma, dbeta * 1.01 if long else dbeta  # wrong only for long slices


    long_only.vjp = vjp
    long_only.bn_dtypes = ("float32",)
    """
)


@pytest.mark.slow
def test_a_gradient_failure_with_a_long_drawn_dy_fits_a_screen(tmp_path):
    """A failure that shrinks no further than N = 200 draws a ``dy`` of hundreds of elements:
    Hypothesis' ``Draw 3 (dy)`` note prints it as ``describe_array`` does (one line), not as
    its ``repr`` (one line per few elements)."""
    (tmp_path / "longonly.py").write_text(LONG_ONLY)
    r = run_pytest(
        tmp_path, "properties/test_gradients.py", "-k", "test_dbeta", "--bn-impl", "longonly:long_only", path=[ROOT / "examples"]
    )
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-3000:]
    section = sections(r.stdout)["test_dbeta"]
    draws = [line for line in section if "Draw " in line]
    assert any("(dy)" in line and "float32 (" in line and "min " in line for line in draws), "\n".join(section)
    assert len(section) <= 40, "\n".join(section)
