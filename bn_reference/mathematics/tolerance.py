r"""The error model: how far a correct implementation in ``dtype`` may be from the truth.

Notation, per slice (the N elements that share one kept-axes position):
``u`` = unit roundoff of ``dtype`` (2^-24 for float32), ``tiny`` = its smallest normal
number, ``gamma_k = k u / (1 - k u)`` (Higham's bound for k chained roundings).
Exact float64 statistics of the given ``x``: ``mu``, ``var`` (biased), ``max|x|``,
``D2 = max (x - mu)^2``; ``inv = 1 / sqrt(var + eps)``; ``x_hat = (x - mu) inv``.

1. Mean. Any summation order obeys ``|sum_hat - sum| <= gamma_{N-1} sum |x_i|``; dividing
   by N adds two roundings. Welford's running mean ``m_i = m_{i-1} + (x_i - m_{i-1}) / i``
   adds at most ``3u max|x|`` per step and damps the inherited error by ``(1 - 1/i)``, so
   its error stays below ``1.5 (N + 1) u max|x|``. TF on CPU flushes subnormals to zero:
   the flushed inputs move the mean by at most ``tiny`` in all, and a mean that comes out
   subnormal is itself flushed (another ``tiny``). Covering all of it::

       E_mu = 1.5 gamma_{N+2} max|x| + 2 tiny

   The bound grows with N and with ``max|x| / sigma``: that is the conditioning of the
   mean relative to the spread that the output is divided by.

2. Variance. A stable algorithm (two-pass about the computed mean, a one-pass shifted by
   a sample ``K`` of the slice) sums squares of deviations of at most
   ``|x - K| <= 2 sqrt(D2)``: error at most ``gamma_{N+3} (var + 3 D2)``. Welford's
   update ``M2 += (x_i - m_{i-1})(x_i - m_i)`` multiplies deviations (at most ``D =
   sqrt(D2)``) by running means that are off by up to ``1.5 (i + 1) u max|x|`` (item 1):
   summed over the N steps and divided by N, at most ``2 gamma_{N+3} max|x| D`` more
   (this is the known ``N u kappa`` accuracy of updating algorithms, kappa ~ |mu|/sigma).
   So::

       E_var = gamma_{N+3} * (var + 3 D2 + 2 max|x| D) + E_mu^2 + 3 tiny

   (``E_mu^2`` because the two-pass variance about ``mu_hat`` is ``var + (mu_hat - mu)^2``;
   ``2 tiny`` for squares flushed to zero, one more for a subnormal result flushed). The naive one-pass ``E[x^2] - E[x]^2`` errs by
   ``~ gamma_N (var + mu^2)``: when ``|mu| >> sigma`` (mu^2 >> max|x| D) it is far outside
   this bound, and so it should be: that cancellation is a bug class the suite must catch.

3. ``inv``. ``var + eps`` is off by at most ``Delta = E_var + d_eps`` where ``d_eps =
   u eps + denorm_min`` is the cost of storing eps in ``dtype``. With ``r = Delta / (var +
   eps)`` the computed inverse square root has relative error at most::

       e_inv = max(1/sqrt(1 - r) - 1, 1 - 1/sqrt(1 + r)) (1 + 3u) + 3u   (infinite if r >= 1)

   (add, sqrt, reciprocal: three roundings).

4. Output. Implementations evaluate either ``((x - mu) inv) gamma + beta`` or the folded
   ``x (inv gamma) + (beta - mu (inv gamma))`` of ``tf.nn.batch_normalization``. The folded
   form rounds ``x inv gamma`` and ``mu inv gamma`` separately and then subtracts them:
   the rounding is relative to ``|x|`` and ``|mu|``, not to ``|x - mu|``, which is the
   cancellation when ``|mu| >> sigma``. Bounding both forms at once::

       B = |gamma x_hat| (e_inv + 4u)                        # inv's error, scale stored in dtype
         + E_mu inv |gamma| (1 + e_inv)                      # the mean's error
         + 3u (|x| + |mu|) inv |gamma| (1 + e_inv)           # products rounded before cancelling
         + 2u (|beta| + |y|)                                 # offset stored, final add and cast
         + tiny (1 + inv |gamma|)                            # flush-to-zero of input and output

The reference itself is float64, so it is not exact either: ``bound`` adds the same model
evaluated at float64 (negligible next to float32, not next to float64).

5. Domain. The model assumes no intermediate overflows: with ``max`` the dtype's largest
   finite number, ``in_safe_domain`` requires ``N max|x| <= max / 4`` (the slice's sum, as
   a sum-then-divide mean forms it), ``(|x| + |mu|) inv max(|gamma|, 1) + |beta| <= max / 4``
   (the folded form's products, with gamma folded in or applied after, as a LayerNorm
   with unit scale followed by the affine step does), ``N (var + 3 D2) <= max / 4`` (sums of squares) and
   ``var + eps <= max / 4`` (eps itself must be representable: 2^20 overflows float16).
   This is bn-props' documented overflow limit: inside it every subject must be right, and
   ``properties/test_edge_inputs.py::test_huge_values_up_to_the_overflow_limit`` draws
   data scaled (by powers of two) to its edge. Beyond it a correct-looking kernel may
   return inf or NaN for a representable result (TF's ``reduce_mean`` overflows once
   ``N max|x| > max``: ``tests/test_overflow_limit.py`` shows it).

Nothing here is tuned: every term is a count of roundings times the size of what is
rounded. A subject that stays inside ``B`` everywhere is indistinguishable from a correct
implementation in ``dtype``; ``err / B`` is the margin reported per property.
"""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = ["finfo", "unit_roundoff", "gamma", "MomentError", "moment_error", "bound", "in_safe_domain", "times", "inv_relative_error"]


def finfo(dtype):
    """``numpy.finfo`` that also knows bfloat16 (through ``ml_dtypes``)."""
    return ml_dtypes.finfo(np.dtype(dtype))


def unit_roundoff(dtype) -> float:
    """u = eps / 2: the largest relative error of one rounding to nearest."""
    return float(finfo(dtype).eps) / 2


def gamma(k, u: float):
    """gamma_k = k u / (1 - k u); infinite once k u >= 1 (the bound says nothing)."""
    ku = np.asarray(k, dtype=np.float64) * u
    with np.errstate(divide="ignore"):
        return np.where(ku < 1, ku / np.maximum(1 - ku, 0), np.inf)


@dataclass(frozen=True)
class MomentError:
    """Bounds on |mu_hat - mu| and |var_hat - var| per slice (keepdims shape), plus the
    exact float64 statistics they were derived from."""

    mean: np.ndarray
    var: np.ndarray
    mu: np.ndarray
    sigma2: np.ndarray
    n: int


def times(g, t):
    """g * t with 0 * inf = 0 (either way round): a vacuous bound times an exact zero is zero."""
    with np.errstate(invalid="ignore"):
        return np.where((np.asarray(g) == 0) | (np.asarray(t) == 0), 0.0, g * t)


def _stats(x64: np.ndarray, axes: tuple[int, ...]):
    mu = x64.mean(axis=axes, keepdims=True)
    dev2 = np.square(x64 - mu)
    return mu, dev2.mean(axis=axes, keepdims=True), dev2.max(axis=axes, keepdims=True)


def moment_error(x: np.ndarray, axes: tuple[int, ...], dtype=None) -> MomentError:
    """E_mu and E_var (items 1 and 2 of the module docstring) for moments in ``dtype``."""
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    fi = finfo(dtype)
    u, tiny = unit_roundoff(dtype), float(fi.tiny)
    x64 = x.astype(np.float64)
    n = int(np.prod([x.shape[a] for a in axes]))
    mu, var, d2 = _stats(x64, axes)
    x_max = np.abs(x64).max(axis=axes, keepdims=True)
    e_mu = times(1.5 * gamma(n + 2, u), x_max) + 2 * tiny
    e_var = times(gamma(n + 3, u), var + 3 * d2 + 2 * x_max * np.sqrt(d2)) + np.square(e_mu) + 3 * tiny
    return MomentError(mean=e_mu, var=e_var, mu=mu, sigma2=var, n=n)


def inv_relative_error(delta: np.ndarray, denom: np.ndarray, u: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(denom > 0, delta / denom, np.inf)
        up = np.where(r < 1, 1 / np.sqrt(np.maximum(1 - r, 0)) - 1, np.inf)
    down = 1 - 1 / np.sqrt(1 + np.where(np.isfinite(r), r, 0))
    return np.where(np.isfinite(up), np.maximum(up, down) * (1 + 3 * u) + 3 * u, np.inf)


def _output_bound(x64, axes, gamma_, beta, eps, dtype) -> np.ndarray:
    fi = finfo(dtype)
    u, tiny = unit_roundoff(dtype), float(fi.tiny)
    me = moment_error(x64, axes, dtype)
    denom = me.sigma2 + eps
    with np.errstate(divide="ignore"):
        inv = 1 / np.sqrt(denom)  # inf for a constant slice with eps = 0
    d_eps = u * eps + float(fi.smallest_subnormal)
    e_inv = inv_relative_error(me.var + d_eps, denom, u)
    g = np.abs(gamma_)
    with np.errstate(invalid="ignore"):
        x_hat = (x64 - me.mu) * inv
        y = x_hat * gamma_ + beta
        b = (
            np.abs(gamma_ * x_hat) * (e_inv + 4 * u)
            + me.mean * inv * g * (1 + e_inv)
            + 3 * u * (np.abs(x64) + np.abs(me.mu)) * inv * g * (1 + e_inv)
            + 2 * u * (np.abs(beta) + np.abs(y))
            + tiny * (1 + inv * g)
        )
    return np.where(np.isnan(b), np.inf, b)


def bound(x, axes, scale=1.0, offset=0.0, epsilon=1e-3, dtype=None) -> np.ndarray:
    """Per-element bound on |y_subject - y_float64| for a correct subject in ``dtype``.

    ``B(dtype) + B(float64)``: the subject's rounding plus the reference's own. See the
    module docstring for every term.
    """
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    x64 = np.asarray(x).astype(np.float64)
    axes = tuple(axes)
    gamma_ = np.asarray(scale, dtype=np.float64)
    beta = np.asarray(offset, dtype=np.float64)
    eps = float(epsilon)
    # A term past float64's range (max|x| D for float64 data near the overflow limit) is
    # inf: the bound is vacuous there, but a NaN or inf output still fails (err/bound NaN).
    with np.errstate(over="ignore"):
        b = _output_bound(x64, axes, gamma_, beta, eps, dtype)
        if dtype != np.float64:
            b = b + _output_bound(x64, axes, gamma_, beta, eps, np.dtype(np.float64))
    return np.broadcast_to(b, x64.shape)


def in_safe_domain(x, axes, scale=1.0, offset=0.0, epsilon=1e-3, dtype=None) -> bool:
    """True when no intermediate of a correct evaluation in ``dtype`` can overflow (item 5)."""
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    limit = float(finfo(dtype).max) / 4
    x64 = np.asarray(x).astype(np.float64)
    axes = tuple(axes)
    n = int(np.prod([x64.shape[a] for a in axes]))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # inf or NaN: not safe
        mu, var, d2 = _stats(x64, axes)
        inv = 1 / np.sqrt(var + float(epsilon))
        products = (np.abs(x64) + np.abs(mu)) * inv * np.maximum(np.abs(np.asarray(scale, dtype=np.float64)), 1) + np.abs(
            np.asarray(offset, dtype=np.float64)
        )
        squares = n * (var + 3 * d2)
        sums = n * np.abs(x64).max(axis=axes, keepdims=True)
    return bool(
        np.all(sums <= limit)
        and np.all(products <= limit)
        and np.all(squares <= limit)
        and np.all(var + float(epsilon) <= limit)
    )
