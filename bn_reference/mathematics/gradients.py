r"""Gradients of batch normalization: the float64 truth, an error model, the laws, and how a
subject's ``vjp`` (the gradient contract, ``bn_reference.subjects``) is drawn for and called.

For reduced axes A (N elements per slice), ``x_hat = (x - mu) inv``, ``inv = 1/sqrt(var + eps)``
(biased ``var``), ``y = gamma x_hat + beta`` and an upstream gradient ``dy = dL/dy``::

    dx     = gamma inv (dy - mean_A(dy) - x_hat mean_A(dy x_hat))
    dgamma = R_gamma(dy x_hat)          dbeta = R_beta(dy)

``R_p`` sums over A *and* over every axis along which ``p`` is broadcast: it reduces to
``p``'s shape (a Python-float gamma gets the sum over all elements). A consequence a
property checks: ``sum_A dx = gamma inv (N m1 - N m1 - m2 sum_A x_hat) = 0`` because
``sum_A x_hat = 0``: the gradient is orthogonal to constants along A (BN ignores a shift).

Error model (``grad_bound``), in the notation of ``tolerance``: ``u``, ``tiny``,
``gamma_k``; ``E_mu``, ``E_var`` from ``tolerance.moment_error(x)``; ``e`` the relative
error of the computed ``inv`` (tolerance item 3); ``E_d = E_mu + tiny`` the absolute error
of a computed ``x - mu`` beyond its own rounding (the mean's error, and a flushed
subnormal ``x``). Write ``m1 = mean_A(dy)``, ``m2 = mean_A(dy x_hat)`` and
``P = mean_A(|dy| (|x| + |mu|))``.

1. ``m1`` is a mean of dy: ``E_m1 = gamma_{N+2} mean_A|dy| + tiny`` (tolerance item 1 on dy).

2. ``m2``. Autodiff of ``tf.nn.batch_normalization`` (folded form ``x (inv gamma) +
   (beta - mu inv gamma)``) gets it as ``inv (sum_A(dy x) - mu sum_A(dy)) / N``: both sums
   are rounded relative to ``|dy||x|`` and ``|mu||dy|``, not to ``|dy||x - mu|`` (the same
   cancellation as the forward folded form); an unfolded ``mean_A(dy x_hat)`` is rounded
   relative to ``|dy x_hat| <= inv (|dy|(|x| + |mu|))``. Products, N - 1 additions, the
   subtraction and the division: N + 2 roundings; ``mu``'s error enters as ``E_d`` times
   ``sum|dy|``; a flushed product ``dy x`` moves the mean by at most ``tiny``::

       E_m2 = gamma_{N+2} inv P + E_d inv mean_A|dy| + tiny inv        (inv's error: item 3)

3. ``dx`` is the sum of three terms, ``T1 = gamma inv dy``, ``T2 = gamma inv m1``,
   ``T3 = gamma inv x_hat m2``. The longest chain is T3's in autodiff: ``rsqrt``'s gradient
   ``-1/2 inv^3`` (three products), ``d(inv gamma)`` times ``gamma``, the ``1/N`` of the
   mean, ``x - mu``, the broadcast product: 7 roundings, plus ``gamma`` stored in dtype: 8
   (T1, T2 have fewer); adding the three terms, 2 more. So ``rho_k = (1 + e)^k (1 + u)^10 - 1``
   bounds a term's relative error when it carries ``inv^k`` (k = 1 for T1, T2; k = 3 for
   T3: inv outside, in x_hat and in m2)::

       B_dx = |gamma| inv [ rho_1 |dy| + rho_1 |m1| + (1 + rho_1) E_m1
                            + rho_3 |x_hat m2|
                            + (1 + rho_3) (|x_hat| E_m2 + |m2| E_d inv + E_d inv E_m2) ]
              + 4 tiny                                 (the three terms and their sum flushed)

4. ``dbeta``: a sum of the M = x.size / beta.size values of dy that share a beta entry,
   ``gamma_{M-1}`` for any order, plus M tiny for flushed subnormal dy::

       B_dbeta = R_beta(gamma_M |dy| + tiny)

5. ``dgamma``: per slice ``inv (sum_A(dy x) - mu sum_A(dy))`` (or ``sum_A(dy x_hat)``), as in
   item 2 with sums instead of means, then summed over the M / N slices sharing a gamma
   entry (M = x.size / gamma.size); ``gamma_{N+2} + gamma_{M/N} <= gamma_{M+3}`` (as ``N + M/N <= M + 1``)::

       B_dgamma = R_gamma( (1 + e) (gamma_{M+3} inv |dy| (|x| + |mu|) + E_d inv |dy| + tiny inv)
                           + e |dy x_hat| ) + tiny

6. Half precision (float16, bfloat16): the accumulation contract of ``tolerance`` item 6.
   A subject's reductions (the moments, ``m1``, ``m2``, the sums behind ``dgamma`` and
   ``dbeta``) accumulate in float32 (``v = 2^-24`` replaces ``u`` in their ``gamma_k``),
   the elementwise stage runs in x's dtype (``u``). Changes to items 1-5, with ``e_a``,
   ``E_var_a`` the float32 moment errors:

   * the mean used elementwise is rounded to x's dtype: ``E_mu = e_a (1 + u) + u |mu| +
     tiny``, so ``E_d = E_mu + tiny``; the variance as ``tolerance`` item 6 has it; ``e``
     is item 3 in float32, then rounded once to x's dtype: ``e' = e + u (1 + e)``;
   * ``E_m1 = gamma_{N+2}(v) mean_A|dy| + tiny + gamma_2(u) mean_A|dy|``: the summands may be
     formed in x's dtype first (``gamma dy``, a cast of an incoming product: two roundings);
   * ``E_m2`` adds the products formed in x's dtype before they are summed (``dy x`` or
     ``dy x_hat``, ``x_hat`` itself: four roundings), ``gamma_4(u) inv P``;
   * ``R_p`` may run in two stages, each accumulated in float32 and rounded to x's dtype:
     over A (the gradient of the keepdims statistics), then over ``p``'s other broadcast
     axes (the gradient of the broadcast parameter). Measured: TF's bfloat16 gradient of a
     Python-float offset of a (2993, 3) input sums 2970, 2950, 3080 to bfloat16 2976, 2944,
     3072, then to 8960 (the exact 9000 rounds to 9024): two roundings, ``2u`` relative to
     ``R_p(|dy|)``;
   * so ``B_dgamma`` takes the same ``gamma_4(u)`` per product and those two roundings:
     ``gamma_6(u) inv |dy| (|x| + |mu|)`` per element, summed;
   * ``B_dbeta`` the two roundings: ``+ gamma_2(u) R_beta(|dy|)``.

   ``dx``'s three terms are elementwise: item 3 with x's ``u`` and ``e'``. A subject that
   accumulates in its own dtype declares ``bn_accumulation = "input"`` and is held to items
   1-5 with x's ``u`` throughout. Measured: TF 2.21's CPU ``reduce_sum`` accumulates float16
   in float16 (4096 ones sum to 2048; bfloat16 sums in float32 and gives 4096), so the
   ``tf.GradientTape`` gradients of ``tf_nn`` and the seed layer, whose ``dgamma``/``dbeta``
   are such sums, break the float32 contract in float16 (``bn_reference/subjects/deviations.py``).

The float64 reference is not exact either: each bound adds the same model at float64.
Nothing here is tuned; every term is a count of roundings times what is rounded.

7. Degenerate slices (N = 1, or a constant slice: ``var = 0``). The formulas above hold
   unchanged, since ``inv = 1/sqrt(eps)`` is finite for ``eps > 0``: ``x_hat = 0``, so::

       dx = gamma eps^(-1/2) (dy - mean_A dy),   dgamma = 0,   dbeta = R_beta(dy)

   and for N = 1 ``dy - mean_A dy = 0``: ``dx = 0``. (Differentiating
   ``y = gamma (x - mu) / sqrt(var + eps) + beta`` at ``var = 0``: ``d var / d x = 2 (x -
   mu) / N = 0``, so only the mean's derivative ``1/N`` remains.) A Bessel-corrected
   variance gives ``0/0`` for N = 1; an ``eps`` outside the square root divides by ``eps``
   instead of ``sqrt(eps)``: both are caught there.

8. Metamorphic laws (no float64 truth needed beyond the bound):

   * orthogonality, per slice: ``sum_A dx = 0`` (above) and, since ``sum_A x_hat^2 = N var
     / (var + eps)``, ``sum_A dx x_hat = gamma inv N m2 (1 - var/(var + eps)) = N gamma eps
     inv^3 m2``: orthogonal to ``x_hat`` up to the epsilon term (BN is invariant under
     ``x -> mu + a (x - mu)`` only when ``eps = 0``);
   * scaling: ``BN_{eps a^2}(a x) = sign(a) BN_eps(x)``, so with the same ``dy``
     ``dx(a x; eps a^2) = dx(x; eps) / |a|`` and ``dgamma(a x; eps a^2) = sign(a)
     dgamma(x; eps)``. With ``a = +-2^k`` scaling is exact, and each side is within its own
     bound of its truth.

9. RMSNorm (``bn_norm = "rms"``; ``reference.batch_norm_vjp`` derives
   ``dx = gamma inv (dy - x_hat m2)``, ``x_hat = x inv``, ``inv = 1/sqrt(ms + eps)``). Items
   1-6 hold with the centre 0 in place of ``mu`` (exact: ``E_mu = 0``, ``E_d = tiny``, the
   products rounded relative to ``|dy| |x|``) and ``ms`` in place of ``var``
   (``tolerance`` item 8); the ``m1`` terms of ``B_dx`` bound a term RMSNorm does not have
   and only widen it by ``rho_1 |m1| + E_m1``, a few ``u`` of ``mean_A|dy|``. The
   orthogonality laws of item 8 are laws of the centring norm and are not checked for RMSNorm;
   the scaling law holds as stated (``RMS_{eps a^2}(a x) = sign(a) RMS_eps(x)``).

10. Masked moments (``bn_mask = True``, ``masked.masked_batch_norm_vjp``). With ``c_j`` the
    mask broadcast to x, ``n`` the slice's count, ``mu``, ``var`` its counted moments: every
    output ``y_i`` of the slice depends on ``x_j`` through ``mu`` and ``var`` only if
    ``c_j``, with ``d mu / d x_j = c_j / n`` and ``d var / d x_j = 2 c_j (x_j - mu) / n``
    (the counted deviations sum to zero), so::

        dx_j = gamma inv (dy_j - c_j (m1 + x_hat_j m2)),
        m1 = (1/n) sum_A dy,  m2 = (1/n) sum_A dy x_hat       (sums over EVERY element)

    and ``dgamma``, ``dbeta`` as before, with the masked ``x_hat``. An empty slice
    (``n = 0``: ``mu = var = 0``, constants) has ``dx = gamma eps^-1/2 dy``. The bound is
    items 1-6 with: the moment errors of the counted statistics (``n`` in place of N, as
    the forward's ``masked_bound``); ``m1``, ``m2`` sums of N terms divided by ``n`` (the
    rounding count ``gamma_{N+2}`` as before, the magnitudes ``mean_A|dy|``,
    ``mean_A(|dy|(|x| + |mu|))`` scaled by ``k = N / max(n, 1)``); the ``m1``, ``m2`` terms of
    ``B_dx`` and their errors only where ``c_j`` (an uncounted ``dx_j = gamma inv dy_j`` has
    T1's error alone). With every element counted, ``k = 1``, ``c = 1``: items 1-6 exactly.

Domain: the autodiff form's intermediates reach ``|gamma| inv^3 N P (|x| + |mu|)``
(``d var`` times ``x - mu``) and ``inv^3`` itself (``rsqrt``'s gradient ``-inv^3 / 2``,
formed in x's dtype: in float16 it overflows once ``var + eps < 6e-4``, e.g. TF's
``RsqrtGrad`` returns -inf there); ``in_grad_domain`` keeps them, ``N P inv``, and the
results ``R_gamma(|dy x_hat|)``, ``R_beta(|dy|)``, below ``max / 4``, as
``tolerance.in_safe_domain`` does for the forward pass.
"""
from __future__ import annotations

import functools

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from bn_reference.mathematics import checks
from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.laws import _subject_call  # the watchdog-guarded, timed call
from bn_reference.mathematics.reference import batch_norm_vjp, centre_and_spread, normalized, reduce_to
from bn_reference.mathematics.tolerance import inv_relative_error  # tolerance item 3
from bn_reference.mathematics.tolerance import bound, finfo, gamma, in_safe_domain, times, unit_roundoff
from bn_reference.mathematics.tolerance import _moment_error, _SliceStats  # shared by the bound's two evaluations

__all__ = [
    "reduce_to",
    "analytic_grads",
    "accumulation_dtype",
    "GradBound",
    "grad_bound",
    "in_grad_domain",
    "draw_dy",
    "grad_cases",
    "degenerate_cases",
    "degenerate_grad_cases",
    "scaled_grad_cases",
    "vjp_call",
    "accumulation_of",
    "check_dx_agreement",
    "check_dx_sums_to_zero",
    "check_dx_orthogonal_to_x_hat",
    "check_dgamma",
    "check_dbeta",
    "check_dx_scaling",
    "check_degenerate_gradient",
]

HALF = ("float16", "bfloat16")
analytic_grads = batch_norm_vjp  # the float64 truth lives with the reference (item 7 there too)


def accumulation_dtype(dtype, accumulation: str = "float32") -> np.dtype:
    """The dtype a correct subject's reductions accumulate in (item 6): float32 for float16
    and bfloat16 under the default contract, x's own dtype otherwise or under ``"input"``."""
    dtype = np.dtype(dtype)
    if accumulation not in ("float32", "input"):
        raise ValueError(f"accumulation must be 'float32' or 'input', got {accumulation!r}")
    return np.dtype(np.float32) if dtype.name in HALF and accumulation == "float32" else dtype


# --------------------------------------------------------------------------------------
# The error model
# --------------------------------------------------------------------------------------


class GradBound:
    """Per-element bounds ``dx`` (x's shape), ``dgamma`` (scale's), ``dbeta`` (offset's)."""

    def __init__(self, dx, dgamma, dbeta):
        self.dx, self.dgamma, self.dbeta = dx, dgamma, dbeta

    def __add__(self, other):
        return GradBound(self.dx + other.dx, self.dgamma + other.dgamma, self.dbeta + other.dbeta)


class _GradTerms:
    """The exact float64 quantities ``grad_bound`` needs beyond the precision (slice
    statistics of x and of dy, ``inv``, ``x_hat``, ``m1``, ``m2`` and the magnitudes the
    bounds multiply), the same for x's dtype and for float64, so computed once per call.

    ``counted`` (masked moments, item 10): the counted statistics of each slice
    (``masked.MaskedStats``); then ``m1``, ``m2`` are sums over the whole slice divided by
    the count, ``k = N / max(n_p, 1)`` scales the per-slice means of ``|dy|`` to those, and
    the weights ``c`` (the mask broadcast to x) keep the mean terms at counted positions."""

    def __init__(self, x64, d, axes, g, eps: float, norm: str = "standard", counted=None):
        self.x64, self.axes, self.eps = x64, axes, eps
        self.st, self.d_st = (_SliceStats(x64, axes, norm) if counted is None else counted), _SliceStats(d, axes)
        self.summands = self.d_st.n  # N: every sum of the backward pass runs over the whole slice
        self.k, self.c = 1.0, 1.0
        if counted is not None:
            self.k = self.summands / np.maximum(counted.n, 1)
            self.c = counted.full.astype(np.float64)
        self.denom = self.st.var + eps
        with np.errstate(divide="ignore"):
            self.inv = inv = 1 / np.sqrt(self.denom)
        self.ad = ad = np.abs(d)
        self.big = big = np.abs(x64) + np.abs(self.st.mu)  # |x| + |mu|
        with np.errstate(invalid="ignore", over="ignore"):
            x_hat = (x64 - self.st.mu) * inv
            m1 = d.mean(axis=axes, keepdims=True) * self.k
            m2 = (d * x_hat).mean(axis=axes, keepdims=True) * self.k
            self.ad_mean = ad.mean(axis=axes, keepdims=True) * self.k
            self.ad_big = ad * big
            self.ad_big_mean = self.ad_big.mean(axis=axes, keepdims=True) * self.k
            self.ag_inv = np.abs(g) * inv
            self.ad_m1 = ad + np.abs(m1) * self.c
            self.abs_x_hat = np.abs(x_hat)
            self.abs_m2 = np.abs(m2)
            self.abs_x_hat_m2 = np.abs(x_hat * m2) * self.c
            self.abs_d_x_hat = np.abs(d * x_hat)


def _moments_used(t: _GradTerms, dtype, acc):
    """(MomentError at acc, E_mu, e) for the elementwise stage in ``dtype`` (items 3 and 6)."""
    u, tiny = unit_roundoff(dtype), float(finfo(dtype).tiny)
    ua = unit_roundoff(acc)
    me = _moment_error(t.st, acc, "float32")  # = moment_error(x, axes, acc)
    e_mu, e_var = me.mean, me.var
    if acc != dtype:  # tolerance item 6: the mean and variance rounded to x's dtype
        e_mu = me.mean * (1 + u) + u * np.abs(me.mu) + tiny
        g3 = float(gamma(3, u))
        e_var_a = g3 * (me.sigma2 + np.square(e_mu)) + (1 + g3) * me.var + np.square(e_mu) + 2 * tiny
        e_var = e_var_a * (1 + u) + u * me.sigma2 + tiny
    e = inv_relative_error(e_var + ua * t.eps + float(finfo(acc).smallest_subnormal), t.denom, ua)
    if acc != dtype:
        e = e + u * (1 + e)
    return me, e_mu, e


def _model(t: _GradTerms, gshape, bshape, dtype, acc) -> GradBound:
    u, tiny = unit_roundoff(dtype), float(finfo(dtype).tiny)
    ua = unit_roundoff(acc)
    half = acc != dtype
    _, e_mu, e = _moments_used(t, dtype, acc)
    inv, ad = t.inv, t.ad
    e_d = e_mu + tiny
    with np.errstate(invalid="ignore", over="ignore"):
        e_m1 = _moment_error(t.d_st, acc, "float32").mean * t.k + (times(gamma(2, u), t.ad_mean) if half else 0.0)
        products = gamma(t.summands + 2, ua) + (gamma(4, u) if half else 0.0)
        e_m2 = times(products * inv, t.ad_big_mean) + times(e_d * inv, t.ad_mean) + tiny * inv
        rho1 = (1 + e) * (1 + u) ** 10 - 1
        rho3 = (1 + e) ** 3 * (1 + u) ** 10 - 1
        b_dx = t.ag_inv * (
            rho1 * t.ad_m1  # rho_1 (|dy| + |m1|)
            + (1 + rho1) * e_m1 * t.c
            + rho3 * t.abs_x_hat_m2
            + (1 + rho3) * (times(t.abs_x_hat, e_m2) + times(t.abs_m2, e_d * inv) + times(e_d * inv, e_m2)) * t.c
        ) + 4 * tiny
        size = t.x64.size
        m = size // int(np.prod(gshape))  # elements summed into one gamma entry
        pg = gamma(m + 3, ua) + (gamma(6, u) if half else 0.0)
        per = (1 + e) * (times(pg * inv, t.ad_big) + times(e_d * inv, ad) + tiny * inv) + times(e, t.abs_d_x_hat)
        b_dgamma = reduce_to(np.broadcast_to(per, t.x64.shape), gshape) + tiny
        mb = size // int(np.prod(bshape))
        b_dbeta = reduce_to(gamma(mb, ua) * ad + tiny + (gamma(2, u) * ad if half else 0.0), bshape)
    nan_inf = lambda b: np.where(np.isnan(b), np.inf, b)  # noqa: E731
    return GradBound(nan_inf(np.broadcast_to(b_dx, t.x64.shape)), nan_inf(b_dgamma), nan_inf(b_dbeta))


def grad_bound(x, dy, axes, scale=1.0, epsilon=1e-3, *, offset=None, dtype=None, accumulation="float32", norm="standard", counted=None) -> GradBound:
    """Bounds on ``|dx - dx64|``, ``|dgamma - dgamma64|``, ``|dbeta - dbeta64|`` for a correct
    subject in ``dtype`` (default x's) under the ``accumulation`` contract (item 6): the
    model at ``dtype`` plus the model at float64. ``norm="rms"`` (item 9): the same model
    with the centre 0 (exact, ``E_mu = 0``) and the mean of squares for the variance.
    ``counted`` (item 10): the counted statistics of masked moments (``masked.MaskedStats``)."""
    dtype = np.dtype(dtype if dtype is not None else np.asarray(x).dtype)
    acc = accumulation_dtype(dtype, accumulation)
    x64 = np.asarray(x).astype(np.float64)
    d = np.asarray(dy).astype(np.float64)
    g = np.asarray(scale, dtype=np.float64)
    shapes = (np.shape(scale), np.shape(scale if offset is None else offset))
    terms = _GradTerms(x64, d, tuple(axes), g, float(epsilon), norm, counted)
    b = _model(terms, *shapes, dtype, acc)
    if dtype != np.float64:
        f64 = np.dtype(np.float64)
        b = b + _model(terms, *shapes, f64, f64)
    return b


def in_grad_domain(x, dy, axes, scale=1.0, epsilon=1e-3, *, offset=None, norm="standard", counted=None) -> bool:
    """True when the autodiff form's intermediates stay below max / 4 (module docstring), and
    so do the sums ``R_gamma(|dy x_hat|)`` and ``R_beta(|dy|)`` that are the results.
    ``counted``: masked moments' statistics (item 10) for the centre and the variance."""
    limit = float(finfo(np.asarray(x).dtype).max) / 4
    axes = tuple(axes)
    x64 = np.asarray(x).astype(np.float64)
    d = np.abs(np.asarray(dy).astype(np.float64))
    n = int(np.prod([x64.shape[a] for a in axes]))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        mu, spread = centre_and_spread(x64, axes, norm) if counted is None else (counted.mu, counted.var)
        inv = 1 / np.sqrt(spread + float(epsilon))
        big = np.abs(x64) + np.abs(mu)
        d_big = d * big
        p = d_big.mean(axis=axes, keepdims=True)
        worst = np.abs(np.asarray(scale, dtype=np.float64)) * inv**3 * n * p * big
        ok = (worst <= limit).all() and (n * p * inv <= limit).all() and (inv**3 <= limit).all()
        if ok:  # the sums, only when the rest holds
            sums = (reduce_to(np.broadcast_to(d_big * inv, x64.shape), np.shape(scale)), reduce_to(d, np.shape(scale if offset is None else offset)))
            ok = all((s <= limit).all() for s in sums)
    return bool(ok)


# --------------------------------------------------------------------------------------
# Drawing a case: a BN case plus an upstream gradient dy of the same shape and dtype
# --------------------------------------------------------------------------------------

_SIGNS = st.sampled_from((1.0, -1.0))  # built once, not per example
_EXPONENTS = st.integers(-3, 3)
DY_REGIMES = bst.regimes(kinds=("gaussian", "integers"), locations=(0.0, 1.0, -10.0), spreads=(1.0, 10.0))


def draw_dy(data, case, counted=None):
    """dy from a seeded generator like the data: a location (so that mean_A(dy) is not
    always ~0) plus Gaussian or integer noise, in x's dtype; the case kept only inside the
    gradient's domain (``counted``: masked moments' statistics, item 10)."""
    regime = data.draw(DY_REGIMES, label="dy regime")
    dy, _, _ = data.draw(bst.values(case.x.shape, case.axes, case.x.dtype.name, regime), label="dy")
    assume(in_grad_domain(case.x, dy, case.axes, case.gamma, case.epsilon, offset=case.offset, norm=case.norm, counted=counted))
    return dy


def grad_cases(data, subject, dtype="float32"):
    """Draw ``(case, dy)``: ``case`` from ``bn_cases`` on the axis sets the subject allows."""
    case = bst.draw_case(data, subject, dtype)
    return case, draw_dy(data, case)


@functools.lru_cache(maxsize=64)
def degenerate_cases(dtype="float32", axes_sets=None):
    """Cases with ``var = 0`` in every slice (item 7): N = 1 (``single_element_cases``), or
    small shapes with every slice constant; inside the forward's safe domain."""
    constant = bst.bn_cases(dtypes=(dtype,), shape_strategy=bst.shapes(max_dims=4), axes_sets=axes_sets).map(bst.with_constant_slices)
    safe = lambda c: in_safe_domain(c.x, c.axes, c.scale, c.offset, c.epsilon)  # noqa: E731
    return st.one_of(bst.single_element_cases(dtype, axes_sets), constant.filter(safe))


def degenerate_grad_cases(data, subject, dtype="float32"):
    """``(case, dy)`` with ``case`` from ``degenerate_cases``."""
    case = bst.draw_case(data, subject, dtype, strategy=degenerate_cases(dtype, subject.axes_sets))
    return case, draw_dy(data, case)


def scaled_grad_cases(data, subject, dtype="float32"):
    """``(case, scaled, a, dy)``: ``scaled`` is ``case`` with ``x -> a x`` and ``eps -> eps a^2``
    for ``a = +-2^k``, k in -3..3, kept only where the scaling is exact (no overflow,
    no lost subnormal bits) and both cases are inside the domains."""
    case, dy = grad_cases(data, subject, dtype)
    a = data.draw(_SIGNS, label="sign") * 2.0 ** data.draw(_EXPONENTS, label="k")
    with np.errstate(over="ignore", under="ignore"):
        x = (case.x.astype(np.float64) * a).astype(case.x.dtype)
    assume(np.array_equal(x.astype(np.float64) / a, case.x.astype(np.float64)))
    eps = case.epsilon * a * a
    assume(eps >= float(finfo(dtype).tiny))
    scaled = bst.replace(case, x=x, epsilon=eps)
    bst.assume_safe(scaled)
    assume(in_grad_domain(x, dy, case.axes, case.gamma, eps, offset=case.offset, norm=case.norm))
    return case, scaled, a, dy


# --------------------------------------------------------------------------------------
# Calling the subject's vjp and checking the contract's shapes
# --------------------------------------------------------------------------------------


def _vjp_of(subject):
    v = getattr(subject, "vjp", None)
    if v is None:
        raise TypeError(f"subject {subject!r} has no vjp (the gradient contract: vjp(x, dy, *, axes, scale, offset, epsilon))")
    return v


def vjp_call(subject, case, dy, label: str = "vjp(x, dy)", **extra):
    """``subject.vjp(x, dy, axes=, scale=, offset=, epsilon=)`` on private copies in the case's
    memory layout (``BNCase.laid_out``: x, dy and the scale/offset arrays), recorded for
    the repro and limited in time like a forward call; the result checked against the
    contract (a triple; ``dx`` of x's shape and dtype; ``dscale``/``doffset`` of the shapes of
    ``scale``/``offset``) and returned as three float64 arrays. ``extra``: further keywords
    passed as they are (a masked subject's ``mask``, already in the case's layout)."""
    kwargs = {**case.kwargs(), **extra}
    del kwargs["training"]
    checks.record_call(case.x, {"dy": dy, **kwargs}, label=label, function="vjp", layout=case.layout)
    out = _subject_call(_vjp_of(subject), case.laid_out(), case.laid_out(dy), **kwargs)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise AssertionError(f"vjp returned {type(out).__name__}, the contract requires a triple (dx, dscale, doffset)")
    dx, dg, db = out
    if np.shape(dx) != case.x.shape or np.asarray(dx).dtype != case.x.dtype:
        raise AssertionError(
            f"vjp: dx has shape {np.shape(dx)} dtype {np.asarray(dx).dtype}; the contract requires x's, {case.x.shape} {case.x.dtype}"
        )
    for name, got, param in (("dscale", dg, case.scale), ("doffset", db, case.offset)):
        if np.shape(got) != np.shape(param):
            raise AssertionError(f"vjp: {name} has shape {np.shape(got)}; the contract requires the shape of {name[1:]}, {np.shape(param)}")
    return tuple(np.asarray(t).astype(np.float64) for t in (dx, dg, db))


def accumulation_of(subject) -> str:
    """The gradient's contract (item 6) of the subject's: ``bn_elementwise = "float32"``
    (``"float32-once"``) is a contract of the forward pass's elementwise stage, and its
    reductions are the float32 contract's."""
    acc = getattr(subject, "accumulation", None) or getattr(subject, "bn_accumulation", "float32")
    return "float32" if acc == "float32-once" else acc


def _truth(subject, case, dy):
    """The float64 gradients of the case (its norm, gamma as the subject applies its scale)
    and their bounds."""
    want = analytic_grads(case.x, dy, case.axes, case.gamma, case.epsilon, offset=case.offset, norm=case.norm)
    tol = grad_bound(case.x, dy, case.axes, case.gamma, case.epsilon, offset=case.offset, accumulation=accumulation_of(subject), norm=case.norm)
    return want, tol


# --------------------------------------------------------------------------------------
# The laws
# --------------------------------------------------------------------------------------

DX_LAW = "dx = gamma inv (dy - mean_A dy - x_hat mean_A(dy x_hat))"
RMS_DX_LAW = "dx = gamma inv (dy - x_hat mean_A(dy x_hat)), x_hat = x inv, inv = 1/sqrt(ms + eps)"
DGAMMA_LAW = "dgamma = sum over A and gamma's broadcast axes of dy x_hat"
DBETA_LAW = "dbeta = sum over A and beta's broadcast axes of dy"


def check_dx_agreement(subject, case, dy) -> None:
    """|dx - dx64| <= B_dx elementwise."""
    (dx, _, _), ((want, _, _), tol) = vjp_call(subject, case, dy), _truth(subject, case, dy)
    checks.assert_within(dx, want, tol.dx, law=RMS_DX_LAW if case.norm == "rms" else DX_LAW, x=case.x)


def check_dgamma(subject, case, dy) -> None:
    """dgamma = R_gamma(dy x_hat) within B_dgamma (scale's shape)."""
    (_, dg, _), ((_, want, _), tol) = vjp_call(subject, case, dy), _truth(subject, case, dy)
    checks.assert_within(dg, want, tol.dgamma, law=DGAMMA_LAW)


def check_dbeta(subject, case, dy) -> None:
    """dbeta = R_beta(dy) within B_dbeta (offset's shape)."""
    (_, _, db), ((_, _, want), tol) = vjp_call(subject, case, dy), _truth(subject, case, dy)
    checks.assert_within(db, want, tol.dbeta, law=DBETA_LAW)


def _check_projection(dx, tol_dx, w, e_w, expected, e_expected, case, law) -> None:
    """``mean_A(dx w) = expected`` per slice: each dx_i is within B_i of the true dx_i, the
    float64 weights ``w`` within ``e_w`` of theirs, the product summed in float64; so
    ``|mean_A(dx w) - expected| <= mean_A(B |w|) + mean_A(|dx| e_w) + gamma_{N+1}(u64)
    mean_A(|dx w|) + e_expected``."""
    axes = case.axes
    u64 = unit_roundoff(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        got = (dx * w).mean(axis=axes, keepdims=True)
        slack = (
            times(tol_dx, np.abs(w)).mean(axis=axes, keepdims=True)
            + times(np.abs(dx), e_w).mean(axis=axes, keepdims=True)
            + times(gamma(case.n + 1, u64), np.abs(dx * w).mean(axis=axes, keepdims=True))
            + e_expected
        )
    checks.assert_within(got, np.broadcast_to(expected, got.shape), slack, law=law)


def check_dx_sums_to_zero(subject, case, dy) -> None:
    """mean_A dx = 0: BN(x + c) = BN(x) for c constant along A (weights 1, exact)."""
    dx = vjp_call(subject, case, dy)[0]
    _, tol = _truth(subject, case, dy)
    _check_projection(dx, tol.dx, 1.0, 0.0, 0.0, 0.0, case, law="sum_A dx = 0 (dx orthogonal to constants along A)")


def check_dx_orthogonal_to_x_hat(subject, case, dy) -> None:
    """mean_A(dx x_hat) = gamma eps inv^3 mean_A(dy x_hat) (item 8): zero up to the epsilon
    term. ``x_hat`` in float64 is within the float64 forward bound (``tolerance.bound`` at
    float64, gamma = 1, beta = 0); the right side, from float64 ``m2`` and ``inv``, within
    ``|gamma| eps inv^3 (gamma_12(u64) |m2| + mean_A(|dy| e_w) + gamma_{N+2}(u64) mean_A|dy x_hat|)``."""
    dx = vjp_call(subject, case, dy)[0]
    _, tol = _truth(subject, case, dy)
    axes, eps = case.axes, case.epsilon
    u64 = unit_roundoff(np.float64)
    x_hat = normalized(case.x, axes, eps)
    e_w = bound(case.x, axes, 1.0, 0.0, eps, np.float64)
    x64 = case.x.astype(np.float64)
    inv = 1 / np.sqrt(x64.var(axis=axes, keepdims=True) + eps)
    d = dy.astype(np.float64)
    g = np.asarray(case.scale, dtype=np.float64)
    m2 = (d * x_hat).mean(axis=axes, keepdims=True)
    expected = g * eps * inv**3 * m2
    e_expected = np.abs(g) * eps * inv**3 * (
        gamma(12, u64) * np.abs(m2) + (np.abs(d) * e_w).mean(axis=axes, keepdims=True) + gamma(case.n + 2, u64) * np.abs(d * x_hat).mean(axis=axes, keepdims=True)
    )
    _check_projection(dx, tol.dx, x_hat, e_w, expected, e_expected, case, law="mean_A(dx x_hat) = gamma eps inv^3 mean_A(dy x_hat) (dx orthogonal to x_hat up to eps)")


def check_dx_scaling(subject, case, scaled, a, dy) -> None:
    """dx(a x; eps a^2) |a| = dx(x; eps) and dgamma(a x; eps a^2) sign(a) = dgamma(x; eps),
    each side within its own bound (item 8)."""
    dx, dg, _ = vjp_call(subject, case, dy)
    dx_a, dg_a, _ = vjp_call(subject, scaled, dy, label=f"vjp(a x, dy) with eps a^2, a = {a:g}")
    _, tol = _truth(subject, case, dy)
    _, tol_a = _truth(subject, scaled, dy)
    s = abs(a)
    checks.assert_within(dx_a * s, dx, tol.dx + s * tol_a.dx, law=f"dx(a x; eps a^2) |a| = dx(x; eps), a = {a:g}", x=case.x)
    checks.assert_within(dg_a * np.sign(a), dg, tol.dgamma + tol_a.dgamma, law=f"dgamma(a x; eps a^2) sign(a) = dgamma(x; eps), a = {a:g}")


def check_degenerate_gradient(subject, case, dy) -> None:
    """var = 0 in every slice (N = 1 or constant slices): dx, dgamma, dbeta finite and equal to
    the reference's (``reference.batch_norm_vjp``: dx = gamma eps^-1/2 (dy - mean_A dy),
    dgamma = 0, dbeta = R_beta(dy)) within the bounds."""
    got = vjp_call(subject, case, dy)
    want, tol = _truth(subject, case, dy)
    for name, g in zip(("dx", "dscale", "doffset"), got):
        bad = ~np.isfinite(g)
        if bad.any():
            raise AssertionError(f"gradient of var = 0 slices (N = {case.n}): {name} has {int(bad.sum())} non-finite values, e.g. {g[bad].flat[0]!r}; the reference's is finite")
    laws = (DX_LAW + " = gamma eps^-1/2 (dy - mean_A dy) at var = 0", DGAMMA_LAW + " = 0 at var = 0", DBETA_LAW)
    for g, w, b, law in zip(got, want, (tol.dx, tol.dgamma, tol.dbeta), laws):
        checks.assert_within(g, w, b, law=law)
