"""Metamorphic laws: how BN's output must respond to a transformed input.

Each compares the subject with itself on two related inputs, so it needs no reference
output; the tolerance is the error model at both inputs (plus, where the transformed
input cannot be formed exactly in the dtype, the exact float64 effect of that rounding).
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.reference import centre_and_spread
from bn_reference.mathematics.laws import check_close_to, expected_output, normalization_lipschitz, output_bound, run

# The far powers come early: Hypothesis favours the first options of sampled_from, and
# 1024 / -1/1024 are what reach the edges of a half-precision range (std x 1024, eps x 2^20).
POWERS_OF_TWO = (2.0, 1024.0, -1.0, -1 / 1024, 0.5, -2.0, 4.0, 0.125)


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_permutation_equivariance(subject, dtype, data):
    """Permuting the positions along a reduced axis a permutes the output the same way:
    BN(P_a x) = P_a BN(x). Tolerance: 2B (B is invariant under P_a; each side is within B
    of the exact, exactly-equivariant truth)."""
    case = bst.draw_case(data, subject, dtype)
    axis = data.draw(st.sampled_from(case.axes), label="axis")
    perm = np.asarray(data.draw(st.permutations(range(case.x.shape[axis])), label="permutation"), dtype=np.intp)
    permuted = bst.replace(case, x=np.take(case.x, perm, axis=axis))
    y = run(subject, case)
    check_close_to(
        run(subject, permuted, label="BN(P x)"),
        np.take(y, perm, axis=axis),
        2 * output_bound(permuted),
        law=f"permutation equivariance along reduced axis {axis}: BN(P x) = P BN(x)",
        got="BN(P x)",
        want="P BN(x)",
    )


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_layout_invariance(subject, dtype, data):
    """The same values in another memory layout give the same output: BN(L' x) = BN(L x)
    for any two layouts L, L' (C or Fortran order, a permuted view, a step-2 slice of a
    larger array, negative strides, read-only, unaligned: ``layouts.Layout``). The values,
    hence the exact outputs, are equal, and each side is within B of them: tolerance 2B.
    A kernel that reads its buffer in memory order, or assumes C order, fails."""
    case = bst.draw_case(data, subject, dtype)
    other = bst.replace(case, layout=data.draw(bst.layouts(case.x.ndim), label="other layout"))
    assume(other.layout != case.layout)
    there, here = (f"BN(x) {c.layout.describe(case.x.ndim)}" for c in (other, case))
    check_close_to(
        run(subject, other, label=there),
        run(subject, case, label=here),
        2 * output_bound(case),
        law="layout invariance: the same values in another memory layout give the same output",
        got=there,
        want=here,
    )


@given(data=st.data())
def test_translation_invariance(subject, dtype, data):
    """BN(x + c) = BN(x) for any c constant over each slice (here a scalar). x + c is
    rounded to the dtype, so the exact float64 effect of that rounding, BN64(fl(x + c)) -
    BN64(x), is added to the tolerance B(x) + B(x + c) (the error model at the shifted
    conditioning: a large c makes |mu|/sigma large)."""
    case = bst.draw_case(data, subject, dtype)
    c = data.draw(st.sampled_from((1.0, -3.5, 100.0, -1e3, 1e4)), label="c")
    with np.errstate(over="ignore"):
        shifted = bst.replace(case, x=(case.x.astype(np.float64) + c).astype(case.x.dtype))
    bst.assume_safe(shifted)
    drift = np.abs(expected_output(shifted) - expected_output(case))
    shifted_label = f"BN(x + {c:g})"
    check_close_to(
        run(subject, shifted, label=shifted_label),
        run(subject, case),
        output_bound(case) + output_bound(shifted) + drift,
        law=f"translation invariance: {shifted_label} = BN(x)",
        got=shifted_label,
        want="BN(x)",
    )


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_scale_identity(subject, dtype, data):
    """BN_{a^2 e}(a x) - beta = sign(a) (BN_e(x) - beta): the normalized value of a x with
    epsilon a^2 e equals that of x with e. a is a power of two, so a x and a^2 e are exact.
    The drawn epsilon goes to the side with the smaller epsilon (e = eps for |a| >= 1, e =
    eps / a^2 for |a| < 1), so neither side's epsilon falls below the drawn one (a subnormal
    epsilon, which TF flushes to 0, is never formed) and a > 1 scales the data up, e.g. a
    float16 slice of std > 1/4 by 1024 to std > 256, where a variance or an epsilon kept in
    float16 overflows. Tolerance: B at each side. Separates eps inside the sqrt from eps
    outside it."""
    case = bst.draw_case(data, subject, dtype, regime_strategy=bst.regimes(kinds=("gaussian", "integers", "constant_slices"), dtype=dtype))
    a = data.draw(st.sampled_from(POWERS_OF_TWO), label="a")
    e = case.epsilon * max(1.0, 1 / a**2)
    with np.errstate(over="ignore", under="ignore"):
        scaled = bst.replace(case, x=(case.x.astype(np.float64) * a).astype(case.x.dtype), epsilon=a**2 * e)
    unscaled = bst.replace(case, epsilon=e)
    assume(np.array_equal(scaled.x.astype(np.float64), case.x.astype(np.float64) * a))  # no overflow/underflow
    bst.assume_safe(scaled)
    bst.assume_safe(unscaled)
    beta = np.asarray(case.offset, dtype=np.float64)
    scaled_label, smaller_label = f"BN_({a * a:g} e)({a:g} x)", f"BN_e(x), e = {e:g}"
    check_close_to(
        run(subject, scaled, label=scaled_label) - beta,
        np.sign(a) * (run(subject, unscaled, label=smaller_label) - beta),
        output_bound(scaled) + output_bound(unscaled),
        law=f"scale identity: {scaled_label} - beta = sign(a) ({smaller_label} - beta), a = {a:g}",
        got=f"{scaled_label} - beta",
        want=f"{'-' if a < 0 else ''}({smaller_label} - beta)",
    )


@given(data=st.data())
def test_constant_slices_give_offset(subject, dtype, data):
    """A slice that is constant (sigma = 0) normalizes to the offset: x - mu = 0, so
    y = 0 * gamma / sqrt(eps) + beta = beta, within B (the computed mean of N equal
    numbers can still be off by the summation error E_mu, amplified by 1/sqrt(eps))."""
    case = bst.draw_case(data, subject, dtype)
    first = np.take(case.x, [0], axis=case.axes[0])
    for a in case.axes[1:]:
        first = np.take(first, [0], axis=a)
    constant = bst.replace(case, x=np.ascontiguousarray(np.broadcast_to(first, case.x.shape)))
    bst.assume_safe(constant)
    check_close_to(
        run(subject, constant, label="BN(x), x constant per slice"),
        np.broadcast_to(np.asarray(case.offset, dtype=np.float64), case.x.shape),
        output_bound(constant),
        law="constant slices normalize to the offset: BN(x) = beta where sigma = 0",
        got="BN(x)",
        want="beta",
    )


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_idempotence(subject, dtype, data):
    """With gamma = 1, beta = 0, eps = 0: z = BN(x) has mean 0 and variance exactly 1 per
    slice, so BN(z) = z (RMSNorm: z has mean square exactly 1, so RMS(z) = z). The first
    pass leaves z within E = max B of the truth; BN moves by at most (2E + |z - m| E)/(1 - E)
    under such a perturbation, RMSNorm by (E + |z| E)/(1 - E) (laws.normalization_lipschitz),
    plus B at z for the second pass."""
    case = bst.draw_case(
        data,
        subject,
        dtype,
        shape_strategy=st.one_of(bst.shapes(min_side=2), bst.long_shapes()),
        regime_strategy=bst.spread_regimes(),
        epsilon_strategy=st.just(0.0),
    )
    plain = bst.replace(case, scale=case.unit_scale, offset=0.0, epsilon=0.0)
    assume(np.all(centre_and_spread(case.x, case.axes, case.norm)[1] > 0))  # eps = 0 needs sigma > 0 (ms > 0)
    z = run(subject, plain, label="z = BN(x)")
    again = bst.replace(plain, x=z.astype(case.x.dtype))
    bst.assume_safe(again)
    e_max = np.max(output_bound(plain), axis=case.axes, keepdims=True)
    check_close_to(
        run(subject, again, label="BN(z)"),
        z,
        output_bound(again) + normalization_lipschitz(z, case.axes, e_max, case.norm),
        law="idempotence: BN(BN(x)) = BN(x) with gamma=1, beta=0, eps=0",
        got="BN(z)",
        want="z = BN(x)",
    )


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_affine_acts_per_feature(subject, dtype, data):
    """Per-feature gamma, beta act on the kept axes only: BN(x; gamma, beta) =
    gamma * BN(x; 1, 0) + beta, on shapes whose axes all have the same length (so a
    parameter broadcast along the wrong axis still fits). Tolerance: B(gamma, beta) + |gamma| B(1, 0)."""
    case = bst.draw_case(data, subject, dtype, shape_strategy=bst.square_shapes())
    gamma = data.draw(bst.affine(case.x.shape, case.axes, dtype, role="scale", per_feature=True), label="gamma")
    beta = data.draw(bst.affine(case.x.shape, case.axes, dtype, role="offset", per_feature=True), label="beta")
    affine = bst.replace(case, scale=gamma, offset=beta)
    plain = bst.replace(case, scale=case.unit_scale, offset=0.0)  # gamma = 1 (scale 0 under one_plus)
    g = np.asarray(affine.gamma, dtype=np.float64)
    check_close_to(
        run(subject, affine, label="BN(x; gamma, beta)"),
        g * run(subject, plain, label="BN(x; 1, 0)") + np.asarray(beta, dtype=np.float64),
        output_bound(affine) + np.abs(g) * output_bound(plain),
        law="per-feature scale and offset act on kept axes only: BN(x; gamma, beta) = gamma BN(x; 1, 0) + beta",
        got="BN(x; gamma, beta)",
        want="gamma BN(x; 1, 0) + beta",
    )
