"""Subjects with a deliberately wrong backward pass (mutants), and correct ones, to test the
gradient properties (``properties/test_gradients.py``) through ``--bn-impl``.

Every subject here has the reference's forward pass and a hand-written NumPy ``vjp`` (the
gradient contract, ``bn_reference.subjects``), and is loadable as
``--bn-impl bn_reference.selftest.grad_mutants:NAME``. ``GRADIENT_MUTANTS`` names the wrong
ones (the gradient properties must fail each), ``GRADIENT_CORRECT`` the correct ones (they
must pass every gradient property in every dtype they declare). ``tests/test_gradient_mutants.py``
runs the gradient properties once over all of them in a subprocess, as a user's
``pytest properties --bn-impl ...`` would, and checks both.

All share one skeleton, ``_backward``: the moments and the reductions in the accumulation
dtype (float32 for float16/bfloat16 inputs, the float32 accumulation contract; x's dtype
otherwise), ``inv = 1/sqrt(var + eps)``, ``x_hat``, ``m1 = mean_A(dy)``, ``m2 =
mean_A(dy x_hat)``, then pluggable rules for ``dx``, ``dgamma`` and ``dbeta``; a mutant is
one wrong step. The correct rules (``bn_reference.mathematics.reference.batch_norm_vjp``)::

    dx = gamma inv (dy - m1 - x_hat m2),  dgamma = R_gamma(dy x_hat),  dbeta = R_beta(dy)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bn_reference.mathematics.reference import reduce_to, reference
from bn_reference.mathematics.validation import check_epsilon, check_mask, check_x, normalize_axes

__all__ = ["GRADIENT_MUTANTS", "GRADIENT_CORRECT", "specs"]

ALL_DTYPES = ("float32", "float64", "float16", "bfloat16")
HALF = ("float16", "bfloat16")


def _acc(x, *, half_accumulation=False):
    """The dtype the reductions run in: float32 for half-precision x (the contract), unless
    the mutant accumulates in x's own dtype."""
    if x.dtype.name in HALF and not half_accumulation:
        return np.dtype(np.float32)
    return x.dtype


def _as_given(g, like, dtype):
    if np.ndim(like) == 0 and not isinstance(like, np.ndarray):
        return float(np.asarray(g, dtype=np.float64).sum())
    return np.asarray(g).astype(dtype).reshape(np.shape(like))


# dx rules: (dy, x_hat, x - mu, inv, g, m1, m2, axes) -> dx, in the accumulation dtype


def _dx_three_terms(dy, x_hat, centered, inv, g, m1, m2, axes):
    return g * inv * (dy - m1 - x_hat * m2)


def _dx_two_terms(dy, x_hat, centered, inv, g, m1, m2, axes):
    """dy centred first: dx = gamma inv (dy_c - x_hat mean_A(dy_c x_hat)), dy_c = dy - mean_A dy
    (equal, since mean_A x_hat = 0)."""
    dy_c = dy - m1
    return g * inv * (dy_c - x_hat * (dy_c * x_hat).mean(axis=axes, keepdims=True))


def _dx_folded(dy, x_hat, centered, inv, g, m1, m2, axes):
    """The folded form: dx = k1 dy + k2 (x - mu) + k3, k1 = gamma inv, k2 = -gamma inv^3
    mean_A(dy (x - mu)), k3 = -gamma inv mean_A(dy)."""
    k1 = g * inv
    k2 = -g * inv**3 * (dy * centered).mean(axis=axes, keepdims=True)
    return k1 * dy + k2 * centered - k1 * m1


def _dx_without_mean_term(dy, x_hat, centered, inv, g, m1, m2, axes):
    """Forgets d mu / d x: dx = gamma inv (dy - x_hat mean_A(dy x_hat))."""
    return g * inv * (dy - x_hat * m2)


def _dx_without_variance_term(dy, x_hat, centered, inv, g, m1, m2, axes):
    """Forgets d var / d x: dx = gamma inv (dy - mean_A dy). Still sums to zero over A."""
    return g * inv * (dy - m1)


def _dgamma_right(dy_x_hat, shape):
    return reduce_to(dy_x_hat, shape)


def _dgamma_over_all_axes(dy_x_hat, shape):
    """Sums dy x_hat over every axis (as if gamma were one number) and broadcasts it to
    gamma's shape: right for a scalar gamma, wrong per feature."""
    return np.broadcast_to(dy_x_hat.sum(), shape).copy()


def _backward(
    x,
    dy,
    axes,
    scale,
    offset,
    epsilon,
    *,
    dx_rule=_dx_three_terms,
    dgamma_rule=_dgamma_right,
    backward_var=None,
    inv_rule=None,
    compute=None,
    half_accumulation=False,
):
    """The skeleton (module docstring). ``backward_var(var, n)`` replaces the biased variance
    in the backward pass only; ``inv_rule(var, eps)`` replaces ``1/sqrt(var + eps)``;
    ``compute`` forces a compute dtype (float64 for the float64 variant)."""
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    eps = check_epsilon(epsilon)
    c = np.dtype(compute) if compute is not None else _acc(x, half_accumulation=half_accumulation)
    xc, d = x.astype(c), np.asarray(dy).astype(c)
    n = int(np.prod([x.shape[a] for a in axes]))
    mu = xc.mean(axis=axes, keepdims=True)
    centered = xc - mu
    # The mutants' wrong steps give inf and NaN (half_accumulation's squares overflow x's dtype).
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        var = np.square(centered).mean(axis=axes, keepdims=True)
        if backward_var is not None:
            var = backward_var(var, n).astype(c)
        inv = (inv_rule(var, c.type(eps)) if inv_rule is not None else 1 / np.sqrt(var + c.type(eps))).astype(c)
        x_hat = centered * inv
        g = np.asarray(np.asarray(scale, dtype=np.float64), dtype=c)
        m1 = d.mean(axis=axes, keepdims=True)
        m2 = (d * x_hat).mean(axis=axes, keepdims=True)
        dx = dx_rule(d, x_hat, centered, inv, g, m1, m2, axes)
        dg = dgamma_rule(d * x_hat, np.shape(scale))
        db = reduce_to(d, np.shape(offset))
    return dx.astype(x.dtype), _as_given(dg, scale, x.dtype), _as_given(db, offset, x.dtype)


def _subject(name, dtypes=ALL_DTYPES, doc="", **rules):
    """A subject: the reference's forward, ``_backward`` with ``rules`` as its ``vjp``."""

    def forward(x, *, axes, scale, offset, epsilon, training):
        return reference(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)

    def vjp(x, dy, *, axes, scale, offset, epsilon):
        return _backward(x, dy, axes, scale, offset, epsilon, **rules)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = doc
    forward.bn_dtypes = tuple(dtypes)
    forward.vjp = vjp
    return forward


def _bessel(var, n):
    """n/(n-1) var: NaN (0/0) or inf for n = 1."""
    return var * n / np.float64(n - 1) if n > 1 else var * np.inf


MUTANT_DTYPES = ("float32",)  # one algorithmic bug each: float32 shows it

# Correct: they must pass every gradient property in every dtype they declare. The skeleton
# (three_terms) and the folded form, whose rounding differs most, in all four dtypes; the
# other two in float32 and one half-precision dtype each (CI time: every subject-dtype pair
# is seven properties of 200 examples).
three_terms = _subject("three_terms", doc="dx = gamma inv (dy - mean_A dy - x_hat mean_A(dy x_hat)), float32 accumulation for half.")
two_terms = _subject("two_terms", ("float32", "float16"), doc=_dx_two_terms.__doc__, dx_rule=_dx_two_terms)
folded = _subject("folded", doc=_dx_folded.__doc__, dx_rule=_dx_folded)
float64_backward = _subject(
    "float64_backward", ("float32", "bfloat16"), doc="The three-term rules computed in float64, rounded once to x's dtype.", compute=np.float64
)

# Wrong: each must be failed by some gradient property.
no_mean_term = _subject("no_mean_term", MUTANT_DTYPES, _dx_without_mean_term.__doc__, dx_rule=_dx_without_mean_term)
no_variance_term = _subject("no_variance_term", MUTANT_DTYPES, _dx_without_variance_term.__doc__, dx_rule=_dx_without_variance_term)
bessel_in_backward = _subject(
    "bessel_in_backward", MUTANT_DTYPES, "The backward pass alone uses the Bessel-corrected variance n/(n-1) var (the forward is right).", backward_var=_bessel
)
epsilon_outside_sqrt_in_backward = _subject(
    "epsilon_outside_sqrt_in_backward",
    MUTANT_DTYPES,
    "The backward pass alone uses inv = 1/(sqrt(var) + eps) (the forward is right).",
    inv_rule=lambda var, eps: 1 / (np.sqrt(var) + eps),
)
dscale_over_all_axes = _subject("dscale_over_all_axes", MUTANT_DTYPES, _dgamma_over_all_axes.__doc__, dgamma_rule=_dgamma_over_all_axes)
half_accumulation = _subject(
    "half_accumulation",
    ("float16", "bfloat16"),
    "The backward pass accumulates its reductions (moments, mean_A dy, mean_A(dy x_hat), the parameter sums) in x's half-precision dtype.",
    half_accumulation=True,
)


# Masked moments (``bn_mask = True``): the forward of ``mutants.masked_two_pass``, a masked
# backward (``gradients`` item 10): dx = gamma inv (dy - c (m1 + x_hat m2)) with m1, m2 sums
# over the WHOLE slice divided by the count n, c the mask broadcast to x. Caught by
# ``properties/test_masked.py::test_gradients_follow_the_masked_moments``.


def _masked_backward(x, dy, axes, scale, offset, epsilon, mask, *, means_over_counted=False, mean_terms_everywhere=False, mask_ignored=False):
    """The masked skeleton in the accumulation dtype; ``mask`` None (or ``mask_ignored``): the
    plain ``_backward``. ``means_over_counted``: m1, m2 summed over the counted elements only;
    ``mean_terms_everywhere``: uncounted elements get the mean terms too."""
    if mask is None or mask_ignored:
        return _backward(x, dy, axes, scale, offset, epsilon)
    from bn_reference.selftest.mutants import _masked_sums  # the forward's moments (mutants imports the Keras subjects)

    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    eps = check_epsilon(epsilon)
    w = np.broadcast_to(check_mask(mask, x.shape), x.shape)
    c = _acc(x)
    xc, d = x.astype(c), np.asarray(dy).astype(c)
    n = np.maximum(w.sum(axis=axes, keepdims=True), 1).astype(c)
    mu, var = _masked_sums(xc, axes, w, lambda _: n)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        centered = xc - mu
        inv = (1 / np.sqrt(var + c.type(eps))).astype(c)
        x_hat = centered * inv
        g = np.asarray(np.asarray(scale, dtype=np.float64), dtype=c)
        summed = w if means_over_counted else True
        m1 = np.where(summed, d, 0).sum(axis=axes, keepdims=True) / n
        m2 = np.where(summed, d * x_hat, 0).sum(axis=axes, keepdims=True) / n
        weights = 1 if mean_terms_everywhere else w.astype(c)
        dx = g * inv * (d - weights * (m1 + x_hat * m2))
        dg = reduce_to(d * x_hat, np.shape(scale))
        db = reduce_to(d, np.shape(offset))
    return dx.astype(x.dtype), _as_given(dg, scale, x.dtype), _as_given(db, offset, x.dtype)


def _masked_subject(name, dtypes, doc, **rules):
    """A masked subject: ``mutants.masked_two_pass`` forward, ``_masked_backward`` as its vjp."""
    from bn_reference.selftest.mutants import masked_two_pass

    def forward(x, *, axes, scale, offset, epsilon, training, mask=None):
        return masked_two_pass(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training, mask=mask)

    def vjp(x, dy, *, axes, scale, offset, epsilon, mask=None):
        return _masked_backward(x, dy, axes, scale, offset, epsilon, mask, **rules)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = doc
    forward.bn_dtypes = tuple(dtypes)
    forward.bn_mask = True
    forward.vjp = vjp
    return forward


# Correct (float32 and float16: the float32 accumulation contract with the count's division).
masked_three_terms = _masked_subject("masked_three_terms", ("float32", "float16"), "dx = gamma inv (dy - c (m1 + x_hat m2)), m1, m2 over the whole slice / n.")
# Wrong, each caught by the masked gradient law.
masked_backward_ignores_mask = _masked_subject(
    "masked_backward_ignores_mask", MUTANT_DTYPES, "The forward masks; the backward is the plain one (moments and means of every element).", mask_ignored=True
)
masked_means_over_counted = _masked_subject(
    "masked_means_over_counted", MUTANT_DTYPES, "m1, m2 summed over the counted elements only (every output reads the moments: the sums run over all).",
    means_over_counted=True,
)
masked_mean_terms_everywhere = _masked_subject(
    "masked_mean_terms_everywhere", MUTANT_DTYPES, "Uncounted elements get the mean terms too (their x does not move the moments).", mean_terms_everywhere=True
)

GRADIENT_MUTANTS = [
    "no_mean_term",
    "no_variance_term",
    "bessel_in_backward",
    "epsilon_outside_sqrt_in_backward",
    "dscale_over_all_axes",
    "half_accumulation",
    "masked_backward_ignores_mask",
    "masked_means_over_counted",
    "masked_mean_terms_everywhere",
]
GRADIENT_CORRECT = ["three_terms", "two_terms", "folded", "float64_backward", "masked_three_terms"]


def specs(names) -> list[str]:
    """``--bn-impl`` specs for names in this module."""
    return [f"bn_reference.selftest.grad_mutants:{n}" for n in names]


# --------------------------------------------------------------------------------------
# The gradient kill matrix: the gradient properties run over the catalogue through --bn-impl
# --------------------------------------------------------------------------------------

MARKERS = ("<!-- gradient-kill-matrix:start -->", "<!-- gradient-kill-matrix:end -->")
PROPERTIES = ("properties/test_gradients.py", "properties/test_masked.py::test_gradients_follow_the_masked_moments")


def run(junit_path, profile: str = "ci", workers=2, claims=None):
    """Run the gradient properties once, in a subprocess, with one ``--bn-impl`` per mutant and
    correct subject (``killmatrix.run_suite``); with ``claims`` (``{property: {mutant
    names}}``), each mutant only under the properties claimed to catch it
    (``bn_reference.selftest.claimed``). Returns ``(junit path, matrix, cells, specs)``."""
    from bn_reference.selftest import claimed, killmatrix

    wrong, right = specs(GRADIENT_MUTANTS), specs(GRADIENT_CORRECT)
    extra = () if claims is None else claimed.child_args(claims, wrong, Path(junit_path).parent)
    junit = killmatrix.run_suite(wrong + right, profile, extra, junit_path=junit_path, workers=workers, paths=PROPERTIES)
    return junit, killmatrix.parse_junit(junit, wrong + right), killmatrix.parse_cells(junit, wrong + right), (wrong, right)


def main(argv=None) -> int:
    """``python -m bn_reference.selftest.grad_mutants [--readme] [--mutant NAME]... [-k EXPR]``:
    run the gradient properties over the catalogue (narrowed to the named subjects and to the
    properties ``-k`` selects), print the matrix and the verdict, and with ``--readme`` rewrite
    the gradient table of ``docs/properties.md`` (a whole run only). The options are the kill
    matrix's (``killmatrix.command``)."""
    from bn_reference.selftest import killmatrix

    return killmatrix.command(catalogue(), argv)


def catalogue():
    """This catalogue as the kill matrix's command line runs it (``killmatrix.Catalogue``)."""
    from bn_reference.selftest import killmatrix

    return killmatrix.Catalogue(
        "bn_reference.selftest.grad_mutants",
        "bn_reference/selftest/grad_mutants.py",
        tuple(GRADIENT_MUTANTS),
        tuple(GRADIENT_CORRECT),
        specs,
        paths=PROPERTIES,
        markers=MARKERS,
    )


if __name__ == "__main__":
    raise SystemExit(main())
