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
         + tiny (2 inv |gamma| + |gamma| + 4)                # flush-to-zero (below)

   Flush-to-zero: every value formed in x's dtype that comes out subnormal may be flushed,
   losing less than ``tiny`` in its own units. The input x: ``tiny inv |gamma|`` at the
   output. The folded form then forms ``x (inv gamma)``, ``mu (inv gamma)``, ``beta -
   mu (inv gamma)`` and ``y``: four flushes of at most ``tiny`` each. The plain form forms
   ``x - mu`` (``tiny inv |gamma|`` at the output), ``(x - mu) inv`` (``tiny |gamma|``),
   times gamma and plus beta (``tiny`` each). ``tiny (2 inv |gamma| + |gamma| + 4)`` covers
   both (measured: TF's folded bfloat16 ``tf.nn.batch_normalization`` returns 0 for a
   reference of -1.8 tiny, both products flushed: x = -7.86e-38, mu = 9.2e-38,
   ``inv gamma = 0.125``).

The reference itself is float64, so it is not exact either: ``bound`` adds the same model
evaluated at float64 (negligible next to float32, not next to float64).

5. Domain. The model assumes no intermediate overflows. With ``L_a`` a quarter of the
   largest finite number of the accumulation dtype (item 6; x's dtype under the input
   contract) and ``L_x`` that of x's dtype, ``in_safe_domain`` requires, per slice:

   * ``N max|x| <= L_a``: the slice's sum, as a sum-then-divide mean forms it;
   * ``N (var + 3 D2) <= L_a``: the sums of squared deviations (two-pass about the mean,
     shifted one-pass about a sample K: ``(x - K)^2 <= 4 D2``);
   * ``4 max|x|^2 <= L_a``: Welford's raw ``delta^2``, ``delta = x_i - m_{i-1}`` with
     ``|delta| <= 2 max|x|`` (the running mean starts at 0, so the first ``delta`` is x
     itself: ``M2 += delta^2 (i-1)/i`` forms ``x_1^2`` and multiplies it by 0, which is NaN
     once ``x_1^2`` overflows; PyTorch's ``layer_norm`` on CPU, ``AddMoments`` in
     ``aten/src/ATen/native/cpu/moments_utils.h``, returns NaN for float32 ``x = [1.34e36]``
     and already for ``|x| >= 1e20``);
   * ``var + eps <= L_a`` (eps itself must be representable: 2^20 overflows float16);
   * ``|x| + |mu| <= L_x`` and ``(|x| + |mu|) inv max(|gamma|, 1) + |beta| <= L_x`` and
     ``inv max(|gamma|, 1) <= L_x``: the elementwise stage in x's dtype (``x - mu``, the
     folded form's products with gamma folded in or applied after, as a LayerNorm with unit
     scale followed by the affine step does, and ``inv gamma`` itself).

   So two-pass, shifted one-pass and Welford (with its raw ``delta^2``) are all inside the
   domain wherever they are correct algorithms; the naive ``E[x^2] - E[x]^2`` is inside it
   too and still caught, by its cancellation at large ``|mu| / sigma`` (item 2), not by an
   overflow. This is bn-props' documented overflow limit: inside it every subject must be
   right, and ``properties/test_edge_inputs.py::test_huge_values_up_to_the_overflow_limit``
   draws data scaled (by powers of two) to its edge. Beyond it a correct-looking kernel may
   return inf or NaN for a representable result (TF's ``reduce_mean`` overflows once
   ``N max|x| > max``: ``tests/test_overflow_limit.py`` shows it).

6. Half precision: the accumulation contract. Every framework a float16/bfloat16 model is
   compared against accumulates its statistics in float32 (``tf.nn.moments`` upcasts
   float16; TF's CPU reductions accumulate bfloat16 in float32; Keras 3 on every backend;
   PyTorch's ``acc_type``; ``jnp.mean``/``jnp.var``). A kernel that sums in half
   precision loses the mean once ``N u >= 1`` (N ~ 256 in bfloat16, ~2048 in float16): the
   model with x's ``u`` in ``gamma_N`` is then as large as the output and sees nothing. So
   for x in float16 or bfloat16 the default contract (``accumulation="float32"``, the
   subject attribute ``bn_accumulation``) is:

   * reductions accumulated in float32: the sums behind mu and sigma^2 (unit roundoff
     ``v = 2^-24``, smallest normal ``tiny_a``), with the summands (``x - m``, its square)
     rounded at most as finely as x's dtype (``u``), ``m`` the mean in float32 or rounded
     to x's dtype; ``var + eps`` and the inverse square root in float32;
   * the elementwise stage in x's dtype: the mean and ``inv`` each rounded once to x's
     dtype, then ``x - mu``, times ``inv``, times gamma, plus beta, the final rounding.

   Items 1-4 with these two precisions. The mean, as returned or used::

       e_a  = 1.5 gamma_{N+2}(v) max|x| + 2 tiny_a          # item 1 in float32
       E_mu = e_a + min(u (|mu| + e_a), d(mu) + e_a) + tiny  # rounded to x's dtype (flushed)

   Rounding the float32 mean ``m`` (``|m - mu| <= e_a``) to the nearest number of x's dtype
   moves it by at most ``u |m|``, and by no more than the distance from ``m`` to any
   number of that dtype, in particular to the one nearest ``mu``: ``d(mu) + e_a``, ``d(mu)``
   the distance from ``mu`` to x's dtype (0 for a constant slice, whose mean is one of its
   values: its mean is then exact to ``2 e_a``, not ``u |mu|``).

   The variance: each summand ``(x_i - m)^2`` with ``|m - mu| <= E_mu`` and at most three
   roundings in x's dtype (the deviation, the square, its conversion) is within
   ``gamma_3(u)`` of ``(x_i - m)^2``, whose mean is ``var + (m - mu)^2``; summed in float32
   as in item 2; squares flushed to zero in x's dtype cost ``2 tiny``, and never more than
   all the squares together, whose mean is at most ``(1 + u)^2 (sigma + E_mu)^2``
   (``|x_i - m| <= |x_i - mu| + E_mu``, and ``mean |x_i - mu| <= sigma``): ``F = min(2 tiny,
   (1 + u)^2 (sigma + E_mu)^2)``, which is what keeps a constant slice (``sigma = 0``) with
   ``eps`` below ``2 tiny`` (float16's favoured 1e-5) resolvable. Then rounded to x's
   dtype when returned::

       E_var_a = gamma_3(u) (var + E_mu^2) + (1 + gamma_3(u)) gamma_{N+3}(v) (var + 3 D2
                 + 2 max|x| D) + E_mu^2 + 3 tiny_a + F
       E_var   = E_var_a (1 + u) + u var + tiny              # as returned in x's dtype

   ``inv``: item 3 in float32 from the unrounded variance (``Delta = E_var_a + v eps +
   denorm_min``, ``e_inv`` with ``v``), then one rounding to x's dtype:
   ``e_inv' = e_inv + u (1 + e_inv)``. The output
   bound is item 4 with ``E_mu``, ``e_inv'`` and x's ``u`` and ``tiny`` in every other
   term. The domain (item 5) puts the reductions' limits at float32's range (``L_a``) and
   the elementwise stage's at x's dtype's (``L_x``).

   What it admits: float32 two-pass, shifted one-pass or Welford moments; TF's bfloat16
   ``tf.nn.moments`` (a float32-accumulated mean rounded to bfloat16, deviations squared in
   bfloat16); the folded form in half precision from float32 ``inv``. What it rejects: the
   forgotten upcast (``gamma_N(u)`` error, far above ``gamma_N(v)`` at realistic N); a
   float32 variance clipped to float16's range, or cast to float16, before ``var + eps``
   and the inverse square root (Keras 3's jax ``moments`` clips at 65504, for bfloat16
   too: a slice with std > 256, inside the domain since x itself is representable, comes
   out under-normalized; an rsqrt in float16 overflows to ``inv = 0``). TF's float16 path
   (``tf.nn.moments`` casts the variance to float16, ``tf.nn.batch_normalization`` adds eps
   and takes the rsqrt in float16) is rejected the same way: a strict xfail with its cause
   in ``bn_reference/subjects/deviations.py``.

   A subject that really accumulates in its own dtype declares ``bn_accumulation =
   "input"`` and is held to items 1-5 with x's ``u``, ``tiny`` and range everywhere, the
   looser model. float32 and float64 are their own accumulation dtype: for them both
   contracts are items 1-5 unchanged.

7. The stricter elementwise contract, opt-in (``accumulation="float32-once"``, the subject
   attribute ``bn_elementwise = "float32"``). PyTorch's CPU and CUDA normalization kernels
   (``at::opmath_type``), cuDNN-style fused kernels, Triton kernels and Keras with its
   float32 upcast compute the elementwise stage in float32 too and round once, at the end, to
   x's dtype. For such a kernel on float16/bfloat16 x, ``t``, its float32 result before the
   final conversion, is a float32 computation of every step (item 6's reductions, item 4's
   elementwise stage at float32's ``v`` and ``tiny_a``): ``|t - y| <= B_32``, item 4 at
   float32 on the same (exactly representable) inputs. One rounding to nearest in x's dtype
   then moves it by at most ``u |t| + s/2``, ``s`` the spacing of x's dtype at zero (its
   smallest subnormal), and ``|t| <= |y| + B_32``::

       B_once = B_32 + u (|y| + B_32) + s/2

   About ``u |y|`` where today's contract allows ``4u |gamma x_hat| + 3u (|x| + |mu|) inv
   |gamma| + 2u (|beta| + |y|)``: an elementwise stage left in half precision (several
   roundings in x's dtype, ``x - mu`` among them) fails it at large |mu| / sigma or several
   accumulated roundings, and a final conversion that truncates (round toward zero: up to
   ``2u |t|``) fails it wherever ``t`` lies in the upper half of its ulp. The domain is item
   6's (a subset of what this contract could allow). float32/float64 x: the elementwise stage
   already runs in x's dtype, and the contract is items 1-5 unchanged.

8. RMSNorm (``norm="rms"``: ``y = x / sqrt(ms + eps) gamma + beta``, ``ms = mean_A(x^2)``,
   nothing centred). Items 1-7 with the centre fixed at 0 and the variance replaced by the
   mean of squares:

   * no mean is computed: ``E_mu = 0``; ``x - 0`` is exact, so the elementwise stage is item 4
     with ``mu = 0`` (``x_hat = x inv``, ``|x| + |mu| = |x|``);
   * ``ms``: the summands ``x_i^2`` are non-negative, so any summation order errs by at most
     ``gamma_{N-1} sum x_i^2`` (no cancellation: the spread that item 2 bounds by ``var + 3
     D2 + 2 max|x| D`` is ``ms`` itself); squaring and dividing by N add two roundings::

         E_ms = gamma_{N+3} ms + 3 tiny_a            (items 1-2; gamma_{N+1} would do)

     and in half precision (item 6) each square may be rounded to x's precision first (the
     ``gamma_3(u)`` of item 6 covers it), summed in float32, flushed squares costing at most
     ``min(2 tiny, (1 + u)^2 ms)``: item 6's ``E_var_a`` with ``var = ms``, ``E_mu = 0`` and
     the spread ``ms``.
   * ``inv`` and the output: items 3-4 (and 7 under ``bn_elementwise = "float32"``) with
     ``var + eps`` replaced by ``ms + eps``.
   * Domain (item 5): the sum of squares ``N ms`` (every partial sum is at most the whole)
     within the accumulation dtype's ``L_a``, ``ms + eps <= L_a``, and the elementwise stage
     ``|x| inv max(|gamma|, 1) + |beta| <= L_x``. No bound on ``x^2`` in x's dtype: under the
     float32 contract a float16 x of 300 (``x^2 = 9e4 > 65504``) is inside the domain, and a
     kernel that squares in float16 (``inf``, then ``y = 0``) fails there, as it should.

   ``gamma`` in every item is the scale as the subject applies it: ``1 + scale`` for a
   ``bn_scale = "one_plus"`` subject, whose ``1 + scale`` is one more rounding in x's
   dtype: ``u |gamma x_hat|`` more (``laws.output_bound``).

9. Mixed precision (the subject attribute ``bn_output_dtype``: y in an output dtype ``o``
   other than x's, as Keras layers under a ``mixed_float16``/``mixed_bfloat16`` policy and
   torch autocast regions return). The reductions' contract is x's, unchanged (float32 x:
   float32 moments). A correct kernel centres in x's dtype, ``x - mu`` (an ``x`` beyond
   ``o``'s range is no reason for an overflow: float32 values in 6e4..7e4 normalize into
   float16 values of order 1), and may run everything after it in ``o``: ``x - mu`` rounded
   to ``o``, ``inv`` rounded to ``o``, the two products, ``gamma`` and ``beta`` stored in
   ``o``, the sum, the final conversion: at most five roundings of the normalized part and
   two of ``|beta| + |y|``, at ``o``'s unit roundoff ``u_o``, on a value already within
   ``B_x`` (items 1-8 in x's dtype) of the truth::

       B_o = (1 + u_o) B_x + 5 u_o |gamma x_hat| (1 + e_inv) + 2 u_o (|beta| + |y|)
             + tiny_o (2 inv |gamma| + |gamma| + 4)          (flushed in o, item 4's floor)

   (``e_inv`` as in item 3). A kernel that computes in x's dtype and rounds once to ``o``
   is inside it. The domain adds ``o``'s limits (``L_o``) on what is formed in ``o``:
   ``|x - mu| <= L_o``, ``|x - mu| inv max(|gamma|, 1) + |beta| <= L_o`` and ``inv
   max(|gamma|, 1) <= L_o`` per slice, and nothing on ``|x|``: a kernel that casts x to
   ``o`` before taking the moments (``inf`` for float16 past 65504) fails there.

Nothing here is tuned: every term is a count of roundings times the size of what is
rounded. A subject that stays inside ``B`` everywhere is indistinguishable from a correct
implementation in ``dtype``; ``err / B`` is the margin reported per property.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from bn_reference.mathematics.validation import NORMS

__all__ = [
    "ACCUMULATIONS",
    "finfo",
    "unit_roundoff",
    "gamma",
    "accumulation_dtype",
    "contract_name",
    "MomentError",
    "moment_error",
    "bound",
    "in_safe_domain",
    "times",
    "inv_relative_error",
    "flush_to_zero_floor",
]

# The accumulation contracts (item 6): "float32" (default: half precision reduced in
# float32) or "input" (reductions in x's own dtype, the looser model).
ACCUMULATIONS = ("float32", "input", "float32-once")  # the last: item 7 (bn_elementwise = "float32")
HALF = ("float16", "bfloat16")


# finfo, unit_roundoff and accumulation_dtype are asked for the same few dtypes millions of
# times in a run (each bound, each domain check): memoized on their arguments, which are
# dtypes, dtype names or scalar types (all hashable, and each names one dtype for good).
@functools.lru_cache(maxsize=None)
def finfo(dtype):
    """``numpy.finfo`` that also knows bfloat16 (through ``ml_dtypes``)."""
    return ml_dtypes.finfo(np.dtype(dtype))


@functools.lru_cache(maxsize=None)
def unit_roundoff(dtype) -> float:
    """u = eps / 2: the largest relative error of one rounding to nearest."""
    return float(finfo(dtype).eps) / 2


def gamma(k, u: float):
    """gamma_k = k u / (1 - k u); infinite once k u >= 1 (the bound says nothing)."""
    if type(k) is int and type(u) is float:  # the common scalar case, without the array machinery
        ku = float(k) * u  # exactly the float64 product the array path forms
        return np.float64(ku / (1 - ku) if ku < 1 else np.inf)
    ku = np.asarray(k, dtype=np.float64) * u
    with np.errstate(divide="ignore"):
        return np.where(ku < 1, ku / np.maximum(1 - ku, 0), np.inf)


@functools.lru_cache(maxsize=None)
def _accumulation_dtype(dtype: np.dtype, accumulation: str) -> np.dtype:
    if accumulation not in ACCUMULATIONS:
        raise ValueError(f"accumulation={accumulation!r}: choose one of {ACCUMULATIONS}")
    return np.dtype(np.float32) if accumulation != "input" and dtype.name in HALF else dtype


def accumulation_dtype(dtype, accumulation: str = "float32") -> np.dtype:
    """The dtype the reductions of a correct subject run in (item 6): float32 for a
    float16/bfloat16 x under the default contract, x's own dtype otherwise."""
    return _accumulation_dtype(np.dtype(dtype), accumulation)


def contract_name(dtype, accumulation: str = "float32") -> str:
    """How a (dtype, accumulation) pair is held, in words (report header, matrix)."""
    acc = accumulation_dtype(dtype, accumulation)
    dtype = np.dtype(dtype)
    return f"{dtype.name}: reductions in {acc.name}" + (", elementwise in " + dtype.name if acc != dtype else "")


@dataclass(frozen=True)
class MomentError:
    """Bounds on |mu_hat - mu| and |var_hat - var| per slice (keepdims shape), plus the
    exact float64 statistics they were derived from. ``var_acc`` bounds the variance as it
    enters ``var + eps`` (before any rounding to x's dtype; equal to ``var`` when the
    reductions run in x's dtype)."""

    mean: np.ndarray
    var: np.ndarray
    mu: np.ndarray
    sigma2: np.ndarray
    n: int
    var_acc: np.ndarray | None = None


def times(g, t):
    """g * t with 0 * inf = 0 (either way round): a vacuous bound times an exact zero is zero."""
    if type(g) in (float, np.float64) and g != 0 and math.isfinite(g):
        # g a finite non-zero number: only t's zeros need the rule (and g * t forms no 0 * inf)
        return np.where(np.asarray(t) == 0, 0.0, g * t)
    with np.errstate(invalid="ignore"):
        return np.where((np.asarray(g) == 0) | (np.asarray(t) == 0), 0.0, g * t)


def _stats(x64: np.ndarray, axes: tuple[int, ...], norm: str = "standard"):
    """``(centre, spread, D2)`` per slice: ``(mu, var, max (x - mu)^2)``, or for RMSNorm
    (item 8) ``(0, ms, max x^2)``."""
    if norm == "rms":
        sq = np.square(x64)
        return np.zeros((1,) * x64.ndim), sq.mean(axis=axes, keepdims=True), sq.max(axis=axes, keepdims=True, initial=0.0)
    if norm != "standard":
        raise ValueError(f"norm={norm!r}: choose one of {NORMS}")
    mu = x64.mean(axis=axes, keepdims=True)
    dev2 = np.square(x64 - mu)
    return mu, dev2.mean(axis=axes, keepdims=True), dev2.max(axis=axes, keepdims=True)


class _SliceStats:
    """The exact float64 statistics of x per slice that every bound of x starts from
    (module docstring: ``mu``, ``var``, ``D2``, ``max|x|``, N), computed once per x and
    shared by the bound's two evaluations (x's dtype and float64)."""

    __slots__ = ("x64", "axes", "n", "mu", "var", "d2", "x_max", "spread", "centred")

    def __init__(self, x64: np.ndarray, axes: tuple[int, ...], norm: str = "standard"):
        self.x64, self.axes = x64, axes
        self.n = int(np.prod([x64.shape[a] for a in axes]))
        self.mu, self.var, self.d2 = _stats(x64, axes, norm)
        self.x_max = np.abs(x64).max(axis=axes, keepdims=True)
        self.centred = norm == "standard"
        # What the sum of squares is rounded relative to (items 2 and 8): with cancellation
        # for the centred variance, the mean of squares itself for RMSNorm.
        self.spread = self.var + 3 * self.d2 + 2 * self.x_max * np.sqrt(self.d2) if self.centred else self.var


def moment_error(x: np.ndarray, axes: tuple[int, ...], dtype=None, accumulation: str = "float32", norm: str = "standard") -> MomentError:
    """E_mu and E_var for moments of x in ``dtype`` (returned in ``dtype``): items 1 and 2
    of the module docstring when the reductions run in ``dtype``, item 6 when they run in
    float32 (``accumulation_dtype``); for ``norm="rms"``, E_mu = 0 and E_ms (item 8)."""
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    return _moment_error(_SliceStats(np.asarray(x).astype(np.float64), axes, norm), dtype, accumulation)


def _moment_error(st: _SliceStats, dtype: np.dtype, accumulation: str) -> MomentError:
    acc = accumulation_dtype(dtype, accumulation)
    v, tiny_a = unit_roundoff(acc), float(finfo(acc).tiny)
    n, mu, var, x_max, spread = st.n, st.mu, st.var, st.x_max, st.spread
    # item 8: RMSNorm computes no mean (its centre, 0, is exact)
    e_a = times(1.5 * gamma(n + 2, v), x_max) + 2 * tiny_a if st.centred else np.zeros_like(var)
    if acc == dtype:  # items 1 and 2
        e_var = times(gamma(n + 3, v), spread) + np.square(e_a) + 3 * tiny_a
        return MomentError(mean=e_a, var=e_var, mu=mu, sigma2=var, n=n, var_acc=e_var)
    u, tiny = unit_roundoff(dtype), float(finfo(dtype).tiny)  # item 6
    g3 = float(gamma(3, u))
    with np.errstate(over="ignore", invalid="ignore"):
        off_grid = np.abs(mu - mu.astype(dtype).astype(np.float64))  # mu to the nearest number of x's dtype
    e_mu = e_a + np.minimum(u * (np.abs(mu) + e_a), np.where(np.isfinite(off_grid), off_grid, np.inf) + e_a) + tiny if st.centred else e_a
    flushed = np.minimum(2 * tiny, (1 + u) ** 2 * np.square(np.sqrt(var) + e_mu))  # no more than all the squares
    e_var_a = g3 * (var + np.square(e_mu)) + (1 + g3) * times(gamma(n + 3, v), spread) + np.square(e_mu) + 3 * tiny_a + flushed
    e_var = e_var_a * (1 + u) + u * var + tiny
    return MomentError(mean=e_mu, var=e_var, mu=mu, sigma2=var, n=n, var_acc=e_var_a)


def inv_relative_error(delta: np.ndarray, denom: np.ndarray, u: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(denom > 0, delta / denom, np.inf)
        up = np.where(r < 1, 1 / np.sqrt(np.maximum(1 - r, 0)) - 1, np.inf)
    down = 1 - 1 / np.sqrt(1 + np.where(np.isfinite(r), r, 0))
    return np.where(np.isfinite(up), np.maximum(up, down) * (1 + 3 * u) + 3 * u, np.inf)


def flush_to_zero_floor(tiny: float, inv, gamma_abs):
    """Item 4's floor ``tiny (2 inv |gamma| + |gamma| + 4)``: the input and every value formed
    in x's dtype may be flushed to zero, each losing less than ``tiny`` in its own units."""
    return tiny * (2 * inv * gamma_abs + gamma_abs + 4)


class _OutputTerms:
    """What item 4's bound needs beyond the precision: the slice statistics and the exact
    float64 quantities of the output (``inv``, ``x_hat``, ``y`` and the magnitudes they
    enter the bound through), the same for x's dtype and for float64, so computed once."""

    __slots__ = ("st", "eps", "denom", "inv", "g", "abs_g_x_hat", "big", "beta_y", "abs_y", "floor")

    def __init__(self, st: _SliceStats, gamma_, beta, eps: float):
        self.st, self.eps = st, eps
        self.denom = st.var + eps
        with np.errstate(divide="ignore"):
            self.inv = 1 / np.sqrt(self.denom)  # inf for a constant slice with eps = 0
        inv = self.inv
        self.g = g = np.abs(gamma_)
        with np.errstate(invalid="ignore"):
            x_hat = (st.x64 - st.mu) * inv
            y = x_hat * gamma_ + beta
            self.abs_g_x_hat = np.abs(gamma_ * x_hat)
            self.big = np.abs(st.x64) + np.abs(st.mu)
            self.abs_y = np.abs(y)
            self.beta_y = np.abs(beta) + self.abs_y
            self.floor = 2 * inv * g + g + 4  # flush_to_zero_floor's factor of tiny


def _mixed_output_bound(terms: _OutputTerms, dtype: np.dtype, accumulation: str, out: np.dtype) -> np.ndarray:
    """Item 9: y in ``out``, everything up to ``x - mu`` as a kernel in x's ``dtype``."""
    b_x = _output_bound(terms, dtype, accumulation)
    acc = accumulation_dtype(dtype, accumulation)
    me = _moment_error(terms.st, dtype, accumulation)
    e_inv = inv_relative_error(me.var_acc + unit_roundoff(acc) * terms.eps + float(finfo(acc).smallest_subnormal), terms.denom, unit_roundoff(acc))
    u_o, tiny_o = unit_roundoff(out), float(finfo(out).tiny)
    with np.errstate(invalid="ignore"):
        b = (1 + u_o) * b_x + 5 * u_o * terms.abs_g_x_hat * (1 + e_inv) + 2 * u_o * terms.beta_y + tiny_o * terms.floor
    return np.where(np.isnan(b), np.inf, b)


def _output_bound(terms: _OutputTerms, dtype: np.dtype, accumulation="float32", moments: MomentError | None = None) -> np.ndarray:
    """Item 4 (with item 6's precisions) at ``dtype``; item 7 under ``"float32-once"``.
    ``moments``: the moments' errors when they are not items 1, 2 and 6's of one reduction
    (moments merged across replicas: ``replicas.merged_moment_error``)."""
    if accumulation == "float32-once" and dtype.name in HALF:  # item 7: float32 throughout, one rounding
        b32 = _output_bound(terms, _FLOAT32, "float32", moments)
        u = unit_roundoff(dtype)
        with np.errstate(invalid="ignore"):
            b = b32 + u * (terms.abs_y + b32) + float(finfo(dtype).smallest_subnormal) / 2
        return np.where(np.isnan(b), np.inf, b)
    u, tiny = unit_roundoff(dtype), float(finfo(dtype).tiny)
    acc = accumulation_dtype(dtype, accumulation)
    v = unit_roundoff(acc)
    me = _moment_error(terms.st, dtype, accumulation) if moments is None else moments
    inv, g = terms.inv, terms.g
    d_eps = v * terms.eps + float(finfo(acc).smallest_subnormal)
    e_inv = inv_relative_error(me.var_acc + d_eps, terms.denom, v)
    if acc != dtype:  # item 6: inv computed in float32, rounded once to x's dtype
        e_inv = e_inv + u * (1 + e_inv)
    with np.errstate(invalid="ignore"):
        b = (
            terms.abs_g_x_hat * (e_inv + 4 * u)  # |gamma x_hat| (e_inv + 4u)
            + me.mean * inv * g * (1 + e_inv)
            + 3 * u * terms.big * inv * g * (1 + e_inv)  # 3u (|x| + |mu|) inv |gamma| (1 + e_inv)
            + 2 * u * terms.beta_y  # 2u (|beta| + |y|)
            + tiny * terms.floor  # flush_to_zero_floor(tiny, inv, |gamma|)
        )
    return np.where(np.isnan(b), np.inf, b)


def bound(x, axes, scale=1.0, offset=0.0, epsilon=1e-3, dtype=None, accumulation: str = "float32", norm: str = "standard", output_dtype=None, moments: MomentError | None = None) -> np.ndarray:
    """Per-element bound on |y_subject - y_float64| for a correct subject in ``dtype``
    held to ``accumulation`` (item 6: ``"float32"``, the default, or ``"input"``), of the
    ``norm`` it computes (item 8 for ``"rms"``); ``scale`` is gamma as the subject applies it.
    ``output_dtype`` (item 9): y returned in that dtype rather than x's.

    ``B(dtype) + B(float64)``: the subject's rounding plus the reference's own. See the
    module docstring for every term. ``moments`` replaces the subject's moment errors
    (items 1, 2, 6) in item 4 when its moments come from elsewhere (merged across replicas).
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
        terms = _OutputTerms(_SliceStats(x64, axes, norm), gamma_, beta, eps)
        out = np.dtype(output_dtype) if output_dtype is not None else dtype
        b = _mixed_output_bound(terms, dtype, accumulation, out) if out != dtype else _output_bound(terms, dtype, accumulation, moments)
        if dtype != np.float64 or moments is not None:  # the reference's own error (float64: with merged moments the subject's bound is not the reference's)
            b = b + _output_bound(terms, _FLOAT64)
    return np.broadcast_to(b, x64.shape)


_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)


def _output_domain(x, axes, scale, offset, epsilon, norm: str, out: np.dtype) -> bool:
    """Item 9's limits: what a correct mixed kernel forms in ``out`` stays below ``L_o``."""
    limit = float(finfo(out).max) / 4
    x64 = np.asarray(x).astype(np.float64)
    axes = tuple(axes)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        mu, var, _ = _stats(x64, axes, norm)
        inv = 1 / np.sqrt(var + float(epsilon))
        g = np.maximum(np.abs(np.asarray(scale, dtype=np.float64)), 1)
        centred = np.abs(x64 - mu)
        return bool(
            (centred <= limit).all()
            and (centred * inv * g + np.abs(np.asarray(offset, dtype=np.float64)) <= limit).all()
            and (inv * g <= limit).all()
        )


def in_safe_domain(x, axes, scale=1.0, offset=0.0, epsilon=1e-3, dtype=None, accumulation: str = "float32", norm: str = "standard", output_dtype=None) -> bool:
    """True when no intermediate of a correct evaluation in ``dtype``, with its reductions
    in ``accumulation_dtype(dtype, accumulation)``, can overflow (items 5 and 6; item 8's
    domain for ``norm="rms"``; item 9's output limits for an ``output_dtype``)."""
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    if output_dtype is not None and np.dtype(output_dtype) != dtype:
        return in_safe_domain(x, axes, scale, offset, epsilon, dtype, accumulation, norm) and _output_domain(x, axes, scale, offset, epsilon, norm, np.dtype(output_dtype))
    limit_x = float(finfo(dtype).max) / 4
    limit_a = float(finfo(accumulation_dtype(dtype, accumulation)).max) / 4
    x64 = np.asarray(x).astype(np.float64)
    axes = tuple(axes)
    n = int(np.prod([x64.shape[a] for a in axes]))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # inf or NaN: not safe
        mu, var, d2 = _stats(x64, axes, norm)
        inv = 1 / np.sqrt(var + float(epsilon))
        g = np.maximum(np.abs(np.asarray(scale, dtype=np.float64)), 1)
        abs_x = np.abs(x64)
        centred = abs_x + np.abs(mu)
        products = centred * inv * g + np.abs(np.asarray(offset, dtype=np.float64))
        x_max = abs_x.max(axis=axes, keepdims=True) if x64.size else np.zeros(())
        if norm == "rms":  # item 8: only the sum of squares, non-negative partial sums
            squares, sums, deltas = n * var, np.zeros(()), np.zeros(())
        else:
            squares = n * (var + 3 * d2)
            sums = n * x_max
            deltas = 4 * np.square(x_max)  # Welford's raw delta^2
        return bool(
            (sums <= limit_a).all()
            and (squares <= limit_a).all()
            and (deltas <= limit_a).all()
            and (var + float(epsilon) <= limit_a).all()
            and (centred <= limit_x).all()
            and (products <= limit_x).all()
            and (inv * g <= limit_x).all()
        )
