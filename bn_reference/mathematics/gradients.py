r"""Gradients of batch normalization: the float64 truth, an error model, the subjects.

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

The float64 reference is not exact either: each bound adds the same model at float64.
Nothing here is tuned; every term is a count of roundings times what is rounded.

Domain: the autodiff form's intermediates reach ``|gamma| inv^3 N P (|x| + |mu|)``
(``d var`` times ``x - mu``); ``in_grad_domain`` keeps them, and ``N P inv``, below
``max / 4``, as ``tolerance.in_safe_domain`` does for the forward pass.
"""
from __future__ import annotations

import numpy as np
from hypothesis import assume

from bn_reference.harness import checks
from bn_reference.mathematics.reference import normalized
from bn_reference.mathematics.strategies import bn_cases, regimes, values
from bn_reference.mathematics.tolerance import inv_relative_error  # tolerance item 3
from bn_reference.mathematics.tolerance import finfo, gamma, moment_error, times, unit_roundoff

__all__ = [
    "reduce_to",
    "analytic_grads",
    "GradBound",
    "grad_bound",
    "in_grad_domain",
    "grad_cases",
    "check_dx_agreement",
    "check_dx_sums_to_zero",
    "check_dgamma",
    "check_dbeta",
    "GRADIENT_LAWS",
    "GRADIENT_SUBJECTS",
    "GRADIENT_DTYPES",
    "tape_grads",
]

GRADIENT_DTYPES = ("float32",)


# --------------------------------------------------------------------------------------
# The mathematics (float64)
# --------------------------------------------------------------------------------------


def reduce_to(a: np.ndarray, shape) -> np.ndarray:
    """R_p: sum ``a`` over the axes along which an array of ``shape`` is broadcast to
    ``a.shape`` (leading axes it lacks, and its size-1 axes), giving ``shape``."""
    a = np.asarray(a)
    shape = tuple(shape)
    lead = a.ndim - len(shape)
    a = a.sum(axis=tuple(range(lead))) if lead else a
    ones = tuple(i for i, s in enumerate(shape) if s == 1 and a.shape[i] != 1)
    return (a.sum(axis=ones, keepdims=True) if ones else a).reshape(shape)


def analytic_grads(x, dy, axes, scale, epsilon, *, offset=None):
    """``(dx, dgamma, dbeta)`` in float64, exactly the formulas of the module docstring::

        dx     = gamma inv (dy - mean_A(dy) - x_hat mean_A(dy x_hat))
        dgamma = R_gamma(dy x_hat),  dbeta = R_beta(dy)

    ``dgamma`` has ``scale``'s shape, ``dbeta`` ``offset``'s (default: ``scale``'s)."""
    axes = tuple(axes)
    x_hat = normalized(np.asarray(x), axes, epsilon)
    inv = 1 / np.sqrt(np.asarray(x, dtype=np.float64).var(axis=axes, keepdims=True) + epsilon)
    g = np.asarray(scale, dtype=np.float64)
    d = np.asarray(dy, dtype=np.float64)
    m1 = d.mean(axis=axes, keepdims=True)
    m2 = (d * x_hat).mean(axis=axes, keepdims=True)
    dx = g * inv * (d - m1 - x_hat * m2)
    oshape = np.shape(scale if offset is None else offset)
    return dx, reduce_to(d * x_hat, np.shape(scale)), reduce_to(d, oshape)


# --------------------------------------------------------------------------------------
# The error model
# --------------------------------------------------------------------------------------


class GradBound:
    """Per-element bounds ``dx`` (x's shape), ``dgamma`` (scale's), ``dbeta`` (offset's)."""

    def __init__(self, dx, dgamma, dbeta):
        self.dx, self.dgamma, self.dbeta = dx, dgamma, dbeta

    def __add__(self, other):
        return GradBound(self.dx + other.dx, self.dgamma + other.dgamma, self.dbeta + other.dbeta)


def _model(x64, d, axes, g, eps, gshape, bshape, dtype) -> GradBound:
    fi = finfo(dtype)
    u, tiny = unit_roundoff(dtype), float(fi.tiny)
    me = moment_error(x64, axes, dtype)
    n = me.n
    denom = me.sigma2 + eps
    with np.errstate(divide="ignore"):
        inv = 1 / np.sqrt(denom)
    e = inv_relative_error(me.var + u * eps + float(fi.smallest_subnormal), denom, u)
    e_d = me.mean + tiny
    ad = np.abs(d)
    big = np.abs(x64) + np.abs(me.mu)  # |x| + |mu|
    with np.errstate(invalid="ignore", over="ignore"):
        x_hat = (x64 - me.mu) * inv
        m1 = d.mean(axis=axes, keepdims=True)
        m2 = (d * x_hat).mean(axis=axes, keepdims=True)
        e_m1 = moment_error(d, axes, dtype).mean
        e_m2 = (
            times(gamma(n + 2, u) * inv, (ad * big).mean(axis=axes, keepdims=True))
            + times(e_d * inv, ad.mean(axis=axes, keepdims=True))
            + tiny * inv
        )
        rho1 = (1 + e) * (1 + u) ** 10 - 1
        rho3 = (1 + e) ** 3 * (1 + u) ** 10 - 1
        ag = np.abs(g)
        b_dx = ag * inv * (
            rho1 * (ad + np.abs(m1))
            + (1 + rho1) * e_m1
            + rho3 * np.abs(x_hat * m2)
            + (1 + rho3) * (times(np.abs(x_hat), e_m2) + times(np.abs(m2), e_d * inv) + times(e_d * inv, e_m2))
        ) + 4 * tiny
        m = x64.size // int(np.prod(gshape))  # elements summed into one gamma entry
        per = (1 + e) * (times(gamma(m + 3, u) * inv, ad * big) + times(e_d * inv, ad) + tiny * inv) + times(e, np.abs(d * x_hat))
        b_dgamma = reduce_to(np.broadcast_to(per, x64.shape), gshape) + tiny
        mb = x64.size // int(np.prod(bshape))
        b_dbeta = reduce_to(gamma(mb, u) * ad + tiny, bshape)
    nan_inf = lambda b: np.where(np.isnan(b), np.inf, b)  # noqa: E731
    return GradBound(nan_inf(np.broadcast_to(b_dx, x64.shape)), nan_inf(b_dgamma), nan_inf(b_dbeta))


def grad_bound(x, dy, axes, scale=1.0, epsilon=1e-3, *, offset=None, dtype=None) -> GradBound:
    """Bounds on ``|dx - dx64|``, ``|dgamma - dgamma64|``, ``|dbeta - dbeta64|`` for a correct
    subject in ``dtype`` (default x's): the model at ``dtype`` plus the model at float64."""
    dtype = np.dtype(dtype if dtype is not None else np.asarray(x).dtype)
    x64 = np.asarray(x).astype(np.float64)
    d = np.asarray(dy).astype(np.float64)
    g = np.asarray(scale, dtype=np.float64)
    shapes = (np.shape(scale), np.shape(scale if offset is None else offset))
    b = _model(x64, d, tuple(axes), g, float(epsilon), *shapes, dtype)
    if dtype != np.float64:
        b = b + _model(x64, d, tuple(axes), g, float(epsilon), *shapes, np.dtype(np.float64))
    return b


def in_grad_domain(x, dy, axes, scale=1.0, epsilon=1e-3) -> bool:
    """True when the autodiff form's intermediates stay below max / 4 (module docstring)."""
    limit = float(finfo(np.asarray(x).dtype).max) / 4
    x64 = np.asarray(x, dtype=np.float64)
    n = int(np.prod([x64.shape[a] for a in axes]))
    mu = x64.mean(axis=tuple(axes), keepdims=True)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = 1 / np.sqrt(x64.var(axis=tuple(axes), keepdims=True) + float(epsilon))
        big = np.abs(x64) + np.abs(mu)
        p = (np.abs(np.asarray(dy, dtype=np.float64)) * big).mean(axis=tuple(axes), keepdims=True)
        worst = np.abs(np.asarray(scale, dtype=np.float64)) * inv**3 * n * p * big
        ok = np.all(worst <= limit) and np.all(n * p * inv <= limit)
    return bool(ok)


# --------------------------------------------------------------------------------------
# Drawing a case: a BN case plus an upstream gradient dy of the same shape and dtype
# --------------------------------------------------------------------------------------

DY_REGIMES = regimes(kinds=("gaussian", "integers"), locations=(0.0, 1.0, -10.0), spreads=(1.0, 10.0))


def grad_cases(data, fn, dtype="float32"):
    """Draw ``(case, dy)``: ``case`` from ``bn_cases`` on the axis sets ``fn.bn_axes``
    allows, ``dy`` from a seeded generator like the data (a location, so that mean_A(dy) is
    not always ~0, plus Gaussian or integer noise), in the gradient's domain."""
    case = data.draw(bn_cases(dtypes=(dtype,), axes_sets=getattr(fn, "bn_axes", None)), label="case")
    dy, regime, seed = data.draw(values(case.x.shape, case.axes, dtype, data.draw(DY_REGIMES, label="dy regime")), label="dy")
    assume(in_grad_domain(case.x, dy, case.axes, case.scale, case.epsilon))
    return case, dy


def _call(fn, case, dy):
    dx, dg, db = fn(case.x.copy(), dy.copy(), axes=case.axes, scale=case.scale, offset=case.offset, epsilon=case.epsilon)
    return tuple(np.asarray(t, dtype=np.float64) for t in (dx, dg, db))


def _truth(case, dy):
    want = analytic_grads(case.x, dy, case.axes, case.scale, case.epsilon, offset=case.offset)
    tol = grad_bound(case.x, dy, case.axes, case.scale, case.epsilon, offset=case.offset)
    return want, tol


def check_dx_agreement(fn, case, dy) -> None:
    """|dx - dx64| <= B_dx elementwise."""
    (dx, _, _), ((want, _, _), tol) = _call(fn, case, dy), _truth(case, dy)
    checks.assert_within(dx, want, tol.dx, law="dx = gamma inv (dy - mean_A dy - x_hat mean_A(dy x_hat))", x=case.x)


def check_dx_sums_to_zero(fn, case, dy) -> None:
    """|mean_A dx| <= mean_A(B_dx) + float64 summation: each dx_i is within B_i of a vector
    whose mean over A is exactly 0."""
    dx = _call(fn, case, dy)[0]
    _, tol = _truth(case, dy)
    got = dx.mean(axis=case.axes, keepdims=True)
    slack = tol.dx.mean(axis=case.axes, keepdims=True)
    slack = slack + times(gamma(case.n + 1, unit_roundoff(np.float64)), np.abs(dx).mean(axis=case.axes, keepdims=True))
    checks.assert_within(got, np.zeros_like(got), slack, law="sum_A dx = 0 (dx orthogonal to constants along A)")


def check_dgamma(fn, case, dy) -> None:
    """dgamma = R_gamma(dy x_hat) within B_dgamma (scale's shape)."""
    (_, dg, _), ((_, want, _), tol) = _call(fn, case, dy), _truth(case, dy)
    checks.assert_within(dg, want, tol.dgamma, law="dgamma = sum over A and gamma's broadcast axes of dy x_hat")


def check_dbeta(fn, case, dy) -> None:
    """dbeta = R_beta(dy) within B_dbeta (offset's shape)."""
    (_, _, db), ((_, _, want), tol) = _call(fn, case, dy), _truth(case, dy)
    checks.assert_within(db, want, tol.dbeta, law="dbeta = sum over A and beta's broadcast axes of dy")


GRADIENT_LAWS = {
    "dx_agreement": check_dx_agreement,
    "dx_sums_to_zero": check_dx_sums_to_zero,
    "dgamma": check_dgamma,
    "dbeta": check_dbeta,
}


# --------------------------------------------------------------------------------------
# Gradient subjects: grads(x, dy, *, axes, scale, offset, epsilon) -> (dx, dscale, doffset)
# --------------------------------------------------------------------------------------


def _param(v, dtype):
    from bn_reference.subjects._tf import tf

    return tf.constant(np.asarray(v, dtype=np.float64).astype(dtype))


def tape_grads(forward, x, dy, scale, offset, variables=()):
    """Run ``y = forward(x_t, scale_t, offset_t)`` under a ``tf.GradientTape`` watching the
    three tensors (constants, so ``tape.watch``) and return the vector-Jacobian product with
    ``dy`` for them, plus for ``variables`` if given: ``[dx, dscale, doffset, *dvars]``."""
    from bn_reference.subjects._tf import tf

    t, g, b = tf.constant(x), _param(scale, x.dtype), _param(offset, x.dtype)
    with tf.GradientTape() as tape:
        tape.watch([t, g, b])
        y = forward(t, g, b)
    out = tape.gradient(
        y, [t, g, b, *variables], output_gradients=tf.constant(dy), unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    return [np.asarray(o) for o in out]


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def seed_layer_grads(x, dy, *, axes, scale, offset, epsilon):
    """The seed layer (``SeedBatchNorm``, training=True) with scale and offset passed as
    watched tensors."""
    from bn_reference.subjects.seed_notebook import SeedBatchNorm

    def forward(t, g, b):
        return SeedBatchNorm(scale=g, offset=b, axes=axes, epsilon=epsilon, dtype=x.dtype.name)(t, training=True)

    return tuple(tape_grads(forward, x, dy, scale, offset))


def tf_nn_grads(x, dy, *, axes, scale, offset, epsilon):
    """``tf.nn.moments(keepdims=True)`` + ``tf.nn.batch_normalization``."""
    from bn_reference.subjects._tf import tf

    def forward(t, g, b):
        mean, var = tf.nn.moments(t, list(axes), keepdims=True)
        return tf.nn.batch_normalization(t, mean, var, b, g, epsilon)

    return tuple(tape_grads(forward, x, dy, scale, offset))


def keras_bn_grads(x, dy, *, axes, scale, offset, epsilon):
    """``keras.layers.BatchNormalization(axis=k)`` called with training=True, k the one kept
    axis; its per-feature gamma/beta are set to scale/offset broadcast to the k axis, and
    their gradients reduced back to scale's and offset's shapes (R_gamma, R_beta)."""
    from bn_reference.subjects._tf import keras

    (k,) = [i for i in range(x.ndim) if i not in axes]
    kept = _kept_shape(x.shape, axes)
    layer = keras.layers.BatchNormalization(axis=k, epsilon=epsilon, dtype=x.dtype.name)
    layer.build(x.shape)
    layer.gamma.assign(np.broadcast_to(np.asarray(scale, dtype=x.dtype), kept).reshape(-1))
    layer.beta.assign(np.broadcast_to(np.asarray(offset, dtype=x.dtype), kept).reshape(-1))
    dx, _, _, dg, db = tape_grads(
        lambda t, g, b: layer(t, training=True), x, dy, scale, offset, variables=[layer.gamma, layer.beta]
    )
    return dx, reduce_to(dg.reshape(kept), np.shape(scale)), reduce_to(db.reshape(kept), np.shape(offset))


keras_bn_grads.bn_axes = lambda ndim: [tuple(a for a in range(ndim) if a != k) for k in range(ndim)] if ndim >= 2 else []


def keras_ln_grads(x, dy, *, axes, scale, offset, epsilon):
    """``keras.layers.LayerNormalization(axis=axes, center=False, scale=False)`` (its own
    gamma/beta are per element of the reduced axes, not per feature), then ``* scale +
    offset`` applied outside on the watched tensors."""
    from bn_reference.subjects._tf import keras

    layer = keras.layers.LayerNormalization(axis=list(axes), epsilon=epsilon, center=False, scale=False, dtype=x.dtype.name)
    return tuple(tape_grads(lambda t, g, b: layer(t) * g + b, x, dy, scale, offset))


GRADIENT_SUBJECTS = {
    "seed_layer": seed_layer_grads,
    "tf_nn": tf_nn_grads,
    "keras_bn": keras_bn_grads,
    "keras_ln": keras_ln_grads,
}
