"""Laws of RMSNorm (``bn_norm = "rms"``): y = x / sqrt(ms + eps) * gamma + beta, with
ms = mean_A(x^2) and nothing centred (gamma = 1 + scale under ``bn_scale = "one_plus"``).

The laws RMSNorm shares with the standard norm run on RMSNorm subjects too, against the
RMSNorm reference and its error model (``tolerance`` item 8; they carry
``bn_family("standard", "rms")``): agreement with the float64 reference, the contract,
the training flag, permutation and layout invariance, the scale identity, idempotence, the
per-feature affine step, the edge inputs, N > 65,536, and the gradient laws that do not
rest on centring. Here are the laws in which RMSNorm differs from BN.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.laws import check_agreement, check_close_to, check_unit_variance, output_bound, run
from bn_reference.mathematics.reference import centre_and_spread

pytestmark = pytest.mark.bn_family("rms")

SHIFTS = (1.0, -3.5, 100.0, -1e3, 1e4)


@given(data=st.data())
def test_unit_mean_square(subject, dtype, data):
    """mean_A((y - beta)^2) = gamma^2 ms / (ms + eps): the normalized output has mean
    square ms / (ms + eps), not 1, and its mean is not 0 (nothing is centred). Tolerance:
    with y = t + e, |e| <= B, mean_A(2 |gamma x_hat| B + B^2). A kernel that centres, or
    divides by the standard deviation, fails wherever |mu| is not small against sigma."""
    case = bst.draw_case(data, subject, dtype)
    check_unit_variance(run(subject, case), case)


@given(data=st.data())
def test_rms_epsilon_sensitivity(subject, dtype, data):
    """With ms comparable to eps (data = sqrt(r eps) z about 0, r in {1/4, 1, 4}),
    mean_A((y - beta)^2) = gamma^2 ms / (ms + eps) is far from gamma^2: eps inside the
    square root gives exactly this, eps outside it (x / (sqrt(ms) + eps)) or forgotten does
    not. Tolerance as for ``test_unit_mean_square``."""
    strategy = bst.epsilon_comparable_cases(dtype, subject.axes_sets, subject.accumulation, locations=(0.0,))
    case = bst.draw_case(data, subject, dtype, strategy=strategy)
    check_unit_variance(
        run(subject, case), case, law="epsilon sensitivity (eps inside the sqrt): with ms ~ eps, mean_A((y - beta)^2) = gamma^2 ms / (ms + eps)"
    )


@given(data=st.data())
def test_constant_slices_keep_their_sign(subject, dtype, data):
    """A constant slice c (every element equal, or N = 1) gives y = c / sqrt(c^2 + eps) *
    gamma + beta: ms = c^2, so the output keeps c's sign and tends to +-gamma + beta, where a
    centring kernel gives beta. Against the RMSNorm reference within B."""
    if data.draw(st.booleans(), label="N = 1"):
        strategy = bst.single_element_cases(dtype, subject.axes_sets, subject.accumulation)
        case = bst.draw_case(data, subject, dtype, strategy=strategy)
    else:
        case = bst.with_constant_slices(bst.draw_case(data, subject, dtype))
        bst.assume_safe(case)
    check_agreement(
        run(subject, case, label="RMS(x), x constant per slice"), case, law="constant slices: y = c / sqrt(c^2 + eps) * gamma + beta"
    )


@given(data=st.data())
def test_translation_moves_the_output(subject, dtype, data):
    """Nothing is centred, so a shift survives: with r(x) = sqrt(ms(x) + eps) the formula
    gives (y - beta) r(x) = gamma x exactly, hence for x' = fl(x + c)
    (y' - beta) r(x') - (y - beta) r(x) = gamma (x' - x), computed exactly in float64
    from the inputs. A kernel that subtracts the mean gives the same y for x and x + c and
    fails. Tolerance: each side's B times its r, B(x') r(x') + B(x) r(x)."""
    case = bst.draw_case(data, subject, dtype)
    c = data.draw(st.sampled_from(SHIFTS), label="c")
    with np.errstate(over="ignore"):
        shifted = bst.replace(case, x=(case.x.astype(np.float64) + c).astype(case.x.dtype))
    bst.assume_safe(shifted)
    r, r_shifted = (np.sqrt(centre_and_spread(k.x, k.axes, "rms")[1] + k.epsilon) for k in (case, shifted))
    beta = np.asarray(case.offset, dtype=np.float64)
    gamma = np.asarray(case.gamma, dtype=np.float64)
    label = f"RMS(x + {c:g})"
    with np.errstate(invalid="ignore", over="ignore"):
        moved = (run(subject, shifted, label=label) - beta) * r_shifted - (run(subject, case, label="RMS(x)") - beta) * r
        tol = output_bound(shifted) * r_shifted + output_bound(case) * r
    check_close_to(
        moved,
        gamma * (shifted.x.astype(np.float64) - case.x.astype(np.float64)),
        tol,
        law=f"no centring: ({label} - beta) r(x + c) - (RMS(x) - beta) r(x) = gamma c",
        got=f"({label} - beta) r(x + c) - (RMS(x) - beta) r(x)",
        want="gamma ((x + c) - x)",
    )
