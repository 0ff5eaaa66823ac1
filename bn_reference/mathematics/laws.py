"""What each property compares, computed once: the float64 expectation and its bound.

Properties stay a few lines long: they draw a case, call the subject through
``run``, and hand both to one of these helpers.
"""
from __future__ import annotations

import contextlib
import time
import warnings

import numpy as np

from bn_reference.mathematics import checks
from bn_reference.mathematics import watchdog
from bn_reference.mathematics.reference import centre_and_spread, moments, normalize
from bn_reference.mathematics.strategies import BNCase, at_block_boundary
from bn_reference.mathematics.tolerance import bound, moment_error, times, unit_roundoff
from bn_reference.mathematics.tolerance import gamma as gamma_k

__all__ = [
    "call",
    "call_with",
    "run",
    "output_bound",
    "expected_output",
    "check_agreement",
    "check_zero_mean",
    "check_unit_variance",
    "law_of_total_variance",
    "check_nonfinite_isolated",
    "check_empty_output",
    "check_refusal",
    "provoked_warnings",
    "UNIT_VARIANCE_LAW",
]


def call(subject, case: BNCase, x: np.ndarray | None = None, *, label: str = "BN(x)", edge_input: bool = False, **overrides):
    """Call the subject on ``x`` (default: a private copy of ``case.x`` in the case's memory
    layout, ``BNCase.laid_out``, so a subject that writes into its input cannot corrupt the
    comparison; an ``x`` given is passed as it is) with the case's arguments; the
    call is recorded under ``label`` (its name in the law: ``BN(x + 1)``, ``BN(x)``) for the
    failure report and its repro, and limited in time (``watchdog``: a hang fails the
    property with ``SubjectTimeout``). ``edge_input=True`` (NaN, inf, empty or huge inputs
    fed on purpose): the RuntimeWarnings they provoke are expected (``provoked_warnings``).
    Returns what the subject returned."""
    __tracebackhide__ = True  # a failure's traceback goes from the property to the subject's code
    kwargs = case.kwargs(**overrides)
    x = case.laid_out() if x is None else x
    checks.record_call(x, kwargs, label, layout=case.layout)
    if at_block_boundary(case.n) or any(at_block_boundary(case.x.shape[a]) for a in case.axes):
        checks.cover("slice size: at a block boundary (k 2^p - 1, k 2^p, k 2^p + 1)")
    with provoked_warnings() if edge_input else contextlib.nullcontext():
        return _subject_call(subject, x, **kwargs)


def call_with(subject, arg, case: BNCase, *, label: str, record: np.ndarray, shards=None, **overrides):
    """``call`` for a subject that takes something else than x first (a replicas subject's
    list of shards, ``bn_reference.mathematics.replicas``): ``arg`` is passed as it is,
    ``record`` (the whole batch) is what the failure report and the repro show, with
    ``shards = (axis, sizes)`` saying how it was cut."""
    __tracebackhide__ = True
    kwargs = case.kwargs(**overrides)
    checks.record_call(record, kwargs, label, layout=case.layout, shards=shards)
    return _subject_call(subject, arg, **kwargs)


@contextlib.contextmanager
def provoked_warnings():
    """Silence ``RuntimeWarning`` inside the block: around a subject call on an input the
    harness made non-finite, empty or huge on purpose, numpy's "invalid value", "Mean of
    empty slice" and "overflow" warnings are the expected reaction, not the user's problem.
    Only ``RuntimeWarning``, only there: every other warning, and any warning elsewhere,
    still surfaces."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _subject_call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under the watchdog, its time added to the test's tracker (the
    benchmark's "time inside the subject")."""
    __tracebackhide__ = True
    start = time.perf_counter()
    try:
        return watchdog.call(fn, *args, **kwargs)
    finally:
        checks.add_subject_time(time.perf_counter() - start)


def _guarded(fn, function: str = "moments"):
    """``fn`` (the subject's ``moments``) called like a subject: recorded (under the keyword
    ``label``, default ``moments(x)``), timed, and limited in time."""

    def guarded(x, *, label: str = f"{function}(x)", **kwargs):
        __tracebackhide__ = True
        checks.record_call(x, kwargs, label, function)
        return _subject_call(fn, x, **kwargs)

    return guarded


def run(subject, case: BNCase, **overrides) -> np.ndarray:
    """``call`` (same keywords), with the result as a float64 array for comparison."""
    __tracebackhide__ = True
    return checks.as_output(call(subject, case, **overrides))


def output_bound(case: BNCase, dtype=None) -> np.ndarray:
    """``tolerance.bound`` for the case, under the contract it carries (``case.accumulation``),
    for its norm (``case.norm``), gamma (``case.gamma``) and output dtype (item 9). Under ``bn_scale = "one_plus"``
    the subject forms ``1 + scale`` itself: one more rounding, ``u |gamma x_hat|`` (item 8)."""
    dtype = np.dtype(dtype or case.x.dtype)
    b = bound(case.x, case.axes, case.gamma, case.offset, case.epsilon, dtype, case.accumulation, case.norm, case.output_dtype)
    if case.scale_convention == "one_plus":
        x_hat = normalize(case.x, case.axes, 1.0, 0.0, case.epsilon, norm=case.norm, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            b = b + unit_roundoff(dtype) * np.abs(np.asarray(case.gamma, dtype=np.float64) * x_hat)
    return b


def expected_output(case: BNCase) -> np.ndarray:
    """The float64 truth of the case: BN, or RMSNorm (``case.norm``), with gamma as the
    subject applies its scale (``case.gamma``)."""
    return normalize(case.x, case.axes, case.gamma, case.offset, case.epsilon, norm=case.norm, dtype=np.float64)


def check_agreement(y: np.ndarray, case: BNCase, *, law="agreement with the float64 reference") -> None:
    """|y - y64| <= B elementwise (``y`` is the subject's ``BN(x)``)."""
    __tracebackhide__ = True
    checks.assert_within(y, expected_output(case), output_bound(case), law=law, got="BN(x)", want="float64 reference")


def _slice_mean(a: np.ndarray, axes) -> np.ndarray:
    return np.broadcast_to(a, a.shape).mean(axis=axes, keepdims=True)


def check_zero_mean(y: np.ndarray, case: BNCase) -> None:
    """mean_A(y - beta) = gamma * mean_A(x_hat) = 0; each y_i is within B_i of the truth,
    so |mean_A(y - beta)| <= mean_A(B)."""
    __tracebackhide__ = True
    b = output_bound(case)
    centred = _slice_mean(y - np.asarray(case.offset, dtype=np.float64), case.axes)
    checks.assert_within(
        centred, np.zeros_like(centred), _slice_mean(b, case.axes), law="zero mean: mean_A(y - beta) = 0",
        got="mean_A(y - beta)", want="the law's value",
    )


UNIT_VARIANCE_LAW = "unit variance: var_A(y) = gamma^2 sigma^2 / (sigma^2 + eps)"
UNIT_MEAN_SQUARE_LAW = "unit mean square: mean_A((y - beta)^2) = gamma^2 ms / (ms + eps)"


def _law_evaluation_error(case: BNCase, actual, expected, spread, gamma) -> np.ndarray:
    """The law's own float64 evaluation: ``mean_A((y - beta)^2)`` forms N non-negative
    squares of a difference and their mean (N + 2 roundings: ``gamma_{N+2}`` relative, one
    more for ``y - beta``), ``gamma^2 s / (s + eps)`` five more on an ``s`` that the float64
    reference computes within ``E_s`` (``tolerance.moment_error`` at float64), moving the
    expected value by at most ``gamma^2 eps E_s / (s + eps)^2``. Negligible next to a
    float32 bound; in float64 it is the same size as B itself (a correct float64 subject
    failed without it: ``flax_rms_norm``, err/bound 1.2)."""
    u64 = unit_roundoff(np.float64)
    e_s = moment_error(case.x, case.axes, np.float64, norm=case.norm).var
    with np.errstate(invalid="ignore", divide="ignore"):
        moved = np.square(gamma) * case.epsilon * e_s / np.square(spread + case.epsilon)
    return times(gamma_k(case.n + 5, u64), np.abs(actual) + np.abs(expected)) + np.where(np.isfinite(moved), moved, np.inf)


def check_unit_variance(y: np.ndarray, case: BNCase, *, law: str | None = None) -> None:
    """mean_A((y - beta)^2) = gamma^2 s / (s + eps), ``s`` the slice's sigma^2 (standard) or
    mean of squares ms (RMSNorm, ``case.norm``). With y = t + e, |e| <= B and t - beta =
    gamma x_hat: |mean((y-beta)^2) - mean((t-beta)^2)| <= mean(2|gamma x_hat| B + B^2).
    ``law`` names the law this comparison checks (default: unit variance, or unit mean
    square for RMSNorm; the epsilon-sensitivity properties pass theirs)."""
    __tracebackhide__ = True
    rms = case.norm == "rms"
    law = law or (UNIT_MEAN_SQUARE_LAW if rms else UNIT_VARIANCE_LAW)
    gamma = np.asarray(case.gamma, dtype=np.float64)
    beta = np.asarray(case.offset, dtype=np.float64)
    _, spread = centre_and_spread(case.x, case.axes, case.norm)
    expected = np.broadcast_to(gamma**2 * spread / (spread + case.epsilon), spread.shape if gamma.ndim == 0 else np.broadcast_shapes(gamma.shape, spread.shape))
    b = output_bound(case)
    t = normalize(case.x, case.axes, gamma, 0.0, case.epsilon, norm=case.norm, dtype=np.float64)
    actual = _slice_mean(np.square(y - beta), case.axes)
    tol = _slice_mean(2 * times(np.abs(t), b) + np.square(b), case.axes) + _law_evaluation_error(case, actual, expected, spread, gamma)
    s = "ms" if rms else "sigma^2"
    checks.assert_within(
        actual,
        np.broadcast_to(expected, actual.shape),
        tol,
        law=law,
        got="mean_A((y - beta)^2)",
        want=f"gamma^2 {s} / ({s} + eps)",
    )


def check_nonfinite_isolated(y: np.ndarray, poisoned) -> None:
    """A non-finite x_j makes its own slice's mu and sigma^2 NaN, hence every output of that
    slice; a slice's moments read only its own elements, so every other slice equals the
    reference on the clean input, within its bound (``strategies.PoisonedCase``).

    RMSNorm (``case.norm == "rms"``): a NaN makes ms NaN, so the whole slice is NaN as
    above. An infinite x_j makes ms = inf: y_j = inf / inf is NaN, and every other x_i of
    the slice gives x_i / inf = 0, i.e. y_i = beta. A kernel that pre-scales the slice by
    max|x| (to keep the squares in range) gets NaN there instead: both are the float
    evaluation of a correct formula, so y_j must be non-finite and the slice's other
    outputs either non-finite or, where finite, beta within the reference's bound."""
    __tracebackhide__ = True
    slice_ = poisoned.affected
    partial = poisoned.case.norm == "rms" and np.isinf(poisoned.value)
    affected = np.zeros_like(slice_) if partial else slice_
    if partial:
        affected[poisoned.index] = True
    leaked = affected & np.isfinite(y)
    if leaked.any():
        i = tuple(int(k) for k in np.argwhere(leaked)[0])
        what = "y_j = inf / inf must be NaN" if partial else "mu and sigma^2 are NaN there"
        raise AssertionError(
            f"x{list(poisoned.index)} = {poisoned.value}: its slice must come out non-finite ({what}), but "
            f"{int(leaked.sum())} of {int(affected.sum())} outputs are finite, e.g. y{list(i)} = {checks.plain(y[i])} "
            "(NaN/inf ignored or replaced inside the reduction?)"
        )
    clean = poisoned.clean
    if partial:  # the rest of the slice: x_i / inf = 0, so beta, where the subject gives a finite value
        rest = slice_ & ~affected & np.isfinite(y)
        with np.errstate(invalid="ignore"):
            limit = np.broadcast_to(np.asarray(clean.offset, dtype=np.float64), y.shape)
        checks.assert_within(
            np.where(rest, y, 0.0), np.where(rest, limit, 0.0), output_bound(clean),
            law=f"with x{list(poisoned.index)} = {poisoned.value}, ms = inf: the slice's other outputs are beta (x_i / inf = 0) where finite",
            got="RMS(x) in the poisoned slice", want="beta",
        )
    checks.assert_within(
        np.where(slice_, 0.0, y),
        np.where(slice_, 0.0, expected_output(clean)),
        output_bound(clean),
        law=f"no cross-slice contamination: with x{list(poisoned.index)} = {poisoned.value}, every other slice "
        "equals the reference on the clean input",
        got="BN(x) outside the poisoned slice",
        want="float64 reference on the clean x",
    )


def check_empty_output(y, case: BNCase) -> None:
    """A zero-size x gives an empty array of x's shape and dtype (y's declared dtype under
    ``bn_output_dtype``; nothing to compute: no error, no warning-worthy reduction)."""
    __tracebackhide__ = True
    y = np.asarray(y)
    if y.shape != case.x.shape or y.dtype != case.out_dtype:
        raise AssertionError(
            f"zero-size x of shape {case.x.shape} dtype {case.x.dtype}: returned shape {y.shape} dtype {y.dtype}, "
            f"expected an empty array of x's shape and dtype {case.out_dtype}"
        )


def law_of_total_variance(moments_fn, x: np.ndarray, a1, a2, accumulation: str = "float32") -> None:
    """For A = A1 | A2 (disjoint): mean_A = mean_A2(mean_A1) and
    var_A = mean_A2(var_A1) + var_A2(mean_A1), all computed with ``moments_fn``.

    Each call's error is bounded by ``tolerance.moment_error`` for the data it saw; the
    composition's bound is the sum of the bounds of its parts (means of bounds for the
    inner call, the outer call's own bound, and the whole-set call's bound), each under
    the subject's ``accumulation`` contract (``tolerance`` item 6).
    """
    __tracebackhide__ = True
    moments_fn = _guarded(moments_fn)
    whole = tuple(sorted(a1 + a2))
    dtype = x.dtype
    m_all, v_all = (np.asarray(t, dtype=np.float64) for t in moments_fn(x, axes=whole, label="moments(x) over A"))
    m1, v1 = moments_fn(x, axes=a1, label="moments(x) over A1")
    m1 = np.asarray(m1)
    m2, v2 = (np.asarray(t, dtype=np.float64) for t in moments_fn(m1.astype(dtype), axes=a2, label="moments(mean_A1) over A2"))
    mv1 = np.asarray(v1, dtype=np.float64).mean(axis=a2, keepdims=True)
    e_all = moment_error(x, whole, dtype, accumulation)
    e1 = moment_error(x, a1, dtype, accumulation)
    # The subject's means m1 may be inf or NaN (a kernel that overflows): e2, the spread and
    # the tolerance are then inf or NaN, and assert_within reports the violation, without warnings.
    with np.errstate(invalid="ignore", over="ignore"):
        e2 = moment_error(m1.astype(dtype), a2, dtype, accumulation)
        mean_tol = e_all.mean + e2.mean + e1.mean.mean(axis=a2, keepdims=True)
        # var_A2(mean_A1): moving each inner mean by d_j, |d_j| <= E1, moves each deviation
        # from their mean by at most 2 E1, so the variance moves by at most
        # 2 (s + 2 E1)(2 E1) + (2 E1)^2 = 4 E1 s + 12 E1^2, s = max deviation of the computed means.
        spread = np.sqrt(np.max(np.square(m1.astype(np.float64) - e2.mu), axis=a2, keepdims=True))
        e1_max = e1.mean.max(axis=a2, keepdims=True)
        var_tol = e_all.var + e2.var + e1.var.mean(axis=a2, keepdims=True) + 4 * times(spread, e1_max) + 12 * e1_max**2
    checks.assert_within(
        m2, m_all, mean_tol, law="moment decomposition: mean_A = mean_A2(mean_A1)", got="mean_A2(mean_A1)", want="mean_A"
    )
    checks.assert_within(
        mv1 + v2, v_all, var_tol, law="moment decomposition: var_A = mean_A2(var_A1) + var_A2(mean_A1)",
        got="mean_A2(var_A1) + var_A2(mean_A1)", want="var_A",
    )


def check_close_to(y: np.ndarray, expected: np.ndarray, tol: np.ndarray, *, law: str, x=None, got: str = "got", want: str = "want") -> None:
    """A metamorphic relation ``y = expected`` within ``tol`` (both sides from the subject,
    so both are named in the law's terms: ``got="BN(x + 1)", want="BN(x)"``)."""
    __tracebackhide__ = True
    checks.assert_within(y, expected, tol, law=law, x=x, got=got, want=want)


def normalization_lipschitz(z: np.ndarray, axes, e_max: np.ndarray, norm: str = "standard") -> np.ndarray:
    """How far BN_{eps=0} can move when its input z (exactly unit variance per slice) is
    perturbed by at most ``e_max`` per slice: with m, s the slice mean and std (s = 1),
    |BN(z + e) - BN(z)| <= (2 E + |z - m| E) / (1 - E), since |dm| <= E and |ds| <= std(e) <= E.
    RMSNorm (z of unit mean square, nothing centred: m = 0 and no mean to move):
    |RMS(z + e) - RMS(z)| <= (E + |z| E) / (1 - E), since |d rms| <= rms(e) <= E."""
    rms = norm == "rms"
    m = 0.0 if rms else z.mean(axis=axes, keepdims=True)
    shift = 1 if rms else 2
    with np.errstate(divide="ignore"):
        return np.where(e_max < 1, (shift * e_max + times(np.abs(z - m), e_max)) / np.maximum(1 - e_max, 0), np.inf)


def chan_merge(parts):
    """Combine (n_i, mean_i, var_i) of disjoint chunks into those of their union (Chan et al.):
    delta = m_b - m_a, m = m_a + delta n_b / n, M2 = M2_a + M2_b + delta^2 n_a n_b / n."""
    n, m, var = parts[0]
    for nb, mb, vb in parts[1:]:
        tot = n + nb
        delta = mb - m
        m = m + delta * nb / tot
        var = (n * var + nb * vb + delta**2 * n * nb / tot) / tot
        n = tot
    return n, m, var


def between_chunks_error(s, d):
    """How far the between-chunk term ``sum w_i (m_i - m)^2`` (weights ``w_i`` summing to 1)
    can be from ``sum w_i delta_i^2`` when each deviation ``m_i - m`` is within ``d`` of the
    exact ``delta_i``, ``|delta_i| <= s``: ``|(delta + e)^2 - delta^2| <= 2 |delta| |e| + e^2``,
    so at most ``2 s d + d^2`` (0 * inf = 0: ``tolerance.times``)."""
    return 2 * times(s, d) + np.square(d)


def check_parallel_merge(moments_fn, x: np.ndarray, axes, axis: int, cuts, accumulation: str = "float32") -> None:
    """Moments of the chunks ``np.split(x, cuts, axis)`` (``axis`` in ``axes``), merged with
    ``chan_merge``, against ``moments_fn`` of the whole. Writing the merged variance as
    sum n_i v_i / n + sum n_i (m_i - m)^2 / n, each chunk's errors enter weighted by n_i / n,
    and moving the chunk means by at most E moves the second sum by at most 4 s E + 12 E^2
    (s = max |m_i - m|: ``between_chunks_error(s + 2E, 2E)``); the whole's own moment error
    is added (all under ``accumulation``)."""
    __tracebackhide__ = True
    moments_fn = _guarded(moments_fn)
    parts, errors = [], []
    for i, chunk in enumerate(np.split(x, cuts, axis=axis), 1):
        m, v = (np.asarray(t, dtype=np.float64) for t in moments_fn(chunk, axes=axes, label=f"moments(chunk {i})"))
        parts.append((chunk.shape[axis], m, v))
        errors.append(moment_error(chunk, axes, x.dtype, accumulation))
    # The chunks' moments may be inf or NaN (a kernel that overflows): the merge, s and the
    # tolerance are then inf or NaN, and assert_within reports the violation, without warnings.
    with np.errstate(invalid="ignore", over="ignore"):
        n, m_merged, v_merged = chan_merge(parts)
    m_whole, v_whole = (np.asarray(t, dtype=np.float64) for t in moments_fn(x, axes=axes, label="moments(x)"))
    e_whole = moment_error(x, axes, x.dtype, accumulation)
    e_max = np.max([e.mean for e in errors], axis=0)
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.max([np.abs(m - m_merged) for _, m, _ in parts], axis=0)
        mean_tol = sum(k * e.mean for (k, _, _), e in zip(parts, errors)) / n + e_whole.mean
        # |mu_i - mu| <= s + 2E from the computed means; each deviation off by at most 2E
        var_tol = sum(k * e.var for (k, _, _), e in zip(parts, errors)) / n + between_chunks_error(s + 2 * e_max, 2 * e_max) + e_whole.var
    checks.assert_within(
        m_merged, m_whole, mean_tol, law="parallel merge: Chan-merged mean = mean of the whole",
        got="Chan merge of the chunks' means", want="mean of the whole",
    )
    checks.assert_within(
        v_merged, v_whole, var_tol, law="parallel merge: Chan-merged variance = variance of the whole",
        got="Chan merge of the chunks' variances", want="variance of the whole",
    )


def check_refusal(subject, case: BNCase) -> None:
    """A declared refusal is a clear error: the training call on an input the subject declares
    it refuses (``bn_refuses``) raises an exception whose message contains the declared
    text; returning anything, or raising with another message, fails."""
    expected = subject.refusal(case.x.shape, case.axes)
    try:
        y = call(subject, case)
    except Exception as exc:  # noqa: BLE001 - the refusal is whatever the library raises
        if expected not in str(exc):
            raise AssertionError(
                f"declared refusal: expected an error containing {expected!r}, got {type(exc).__name__}: {exc}"
            ) from exc
        return
    raise AssertionError(
        f"declared refusal: x of shape {case.x.shape} reduced over {case.axes} should raise an error "
        f"containing {expected!r}, but the subject returned {type(y).__name__} {np.asarray(y).ravel()[:4]}..."
    )
