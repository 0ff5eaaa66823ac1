r"""Masked moments (``bn_mask = True``): the reference, its error bound, its domain, the masks.

The contract (docs/subjects.md). A subject declaring ``bn_mask = True`` also takes the
keyword ``mask``: a bool array broadcastable to x by NumPy's rules, True = counted. For
reduced axes A and a kept position p, the slice's counted set is
``C_p = {i in slice p : mask_i}`` (the mask broadcast to x first), ``n_p = |C_p|``::

    mu_p      = (1/n_p) sum_{i in C_p} x_i
    sigma_p^2 = (1/n_p) sum_{i in C_p} (x_i - mu_p)^2         (biased)
    y_i       = (x_i - mu_p) / sqrt(sigma_p^2 + eps) * gamma + beta   for EVERY i of slice p

Uncounted elements are normalized too, with their slice's masked moments (Keras'
``BatchNormalization(mask=...)``, keras/src/layers/normalization/batch_normalization.py,
``_moments``: ``where(mask, x, 0)`` summed, divided by the summed mask; the output stage
``batch_normalization`` is applied to every element).

* **An empty slice** (``n_p = 0``): ``mu_p = 0``, ``sigma_p^2 = 0``, hence
  ``y_i = x_i / sqrt(eps) * gamma + beta``. This is what Keras gives (its divisions are
  ``sum / (count + 1e-7)``: ``0 / 1e-7 = 0``), what ``tf.nn.weighted_moments`` gives
  (``reciprocal_no_nan`` of the summed weights) and what a kernel dividing by
  ``max(n_p, 1)`` gives; a bare ``0 / 0`` (NaN) breaks the contract
  (``properties/test_masked.py::test_empty_slices_use_zero_moments``).
* **Uncounted values are never read by the moments**, finite or not: a NaN or inf at an
  uncounted position leaves every counted output unchanged (Keras' ``where``); weighting
  by a product, ``x * mask``, makes it ``NaN * 0 = NaN`` in the slice's moments.
* **No mask** (the keyword absent, or ``mask=None``): every element counted, i.e. the
  standard contract. The plain properties call a ``bn_mask`` subject without it, so the
  keyword must be optional (``mask=None`` in the signature; ``subjects.signature`` binds the
  contract's call without it).

The error bound (``masked_bound``). The counted elements of slice p are an ordinary slice
of ``n_p`` elements: any algorithm the error model (``tolerance``, items 1-7) admits for the
moments of a slice, run on them, is within items 1, 2 and 6 with N replaced by ``n_p`` and
``mu``, ``var``, ``D2``, ``max|x|`` the statistics of ``C_p``. A kernel that instead sums
over the whole slice with the uncounted terms replaced by exact zeros (``where(mask, x,
0)``, ``x * mask`` for finite x, ``(x - m)^2 * mask``) forms the same sums: adding an exact
zero to a partial sum is exact, so on any path from a summand to the total at most
``n_p - 1`` additions round (Higham's ``gamma_{n-1}`` argument counts roundings, and those
with a zero operand are not roundings), and the count ``n_p`` is an exact integer
(``n_p < 2^24`` in float32). ``gamma_k`` is increasing in k, so ``n_p`` in place of N is
the honest per-slice index; it differs from slice to slice, and ``tolerance.gamma`` takes
it as an array (one ``n_p`` per kept position). The output stage (item 4, item 7) is
per element and only needs the slice's moments and their errors: it applies to every
element, counted or not, with ``x_hat_i = (x_i - mu_p) inv_p`` (an uncounted outlier has a
large ``|x_hat_i|``, and its bound grows with it, as the rounding of its product does).
An empty slice's moments are exact zeros (a sum of nothing over ``max(0, 1)``), within the
``2 tiny`` floors the model keeps anyway. Every term is ``tolerance``'s own: this module
builds the counted statistics (``MaskedStats``, the attributes ``tolerance``'s slice
statistics carry) and hands them to ``tolerance``'s item 4 evaluation.

The domain (``masked_in_safe_domain``): item 5 with the counted statistics, and the
maxima over EVERY element of the slice where a masked kernel forms a product with a 0/1
weight (``x_i w_i``, ``(x_i - m)^2 w_i``): those must be finite for the weight to zero
them (``inf * 0`` is NaN). So, per slice, with ``N`` the slice's full size,
``M = max_i |x_i|`` and ``D2' = max_i (x_i - mu_p)^2`` over every element::

    N M <= L_a,  N (sigma_p^2 + 3 D2') <= L_a,  4 M^2 <= L_a,  sigma_p^2 + eps <= L_a,
    |x_i| + |mu_p| <= L_x,  (|x_i| + |mu_p|) inv_p max(|gamma|, 1) + |beta| <= L_x,
    inv_p max(|gamma|, 1) <= L_x.

Masks are drawn (``masks``) in every shape that broadcasts to x: x's full shape, size 1 on
every reduced axis (each slice all counted or all not: whole empty slices), size 1 on every
kept axis (one pattern shared by every slice), fewer leading dimensions (broadcast over the
leading axes), and a per-axis mixture of these. A broadcast mask is where a shipped bug
lived: the count taken from the mask BEFORE broadcasting (``mask.sum()`` of a (1, 6) mask
for a (8, 6) x reduced over axis 0 counts 1 where 8 are counted): statistics 5-40x wrong.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from bn_reference.mathematics import checks
from bn_reference.mathematics import gradients as gr
from bn_reference.mathematics import tolerance
from bn_reference.mathematics.describe import describe_value
from bn_reference.mathematics.strategies import BNCase, draw_case
from bn_reference.mathematics.validation import check_affine, check_mask

__all__ = [
    "check_mask",
    "MaskedStats",
    "counted_stats",
    "masked_moments",
    "masked_batch_norm",
    "masked_bound",
    "masked_in_safe_domain",
    "MASK_KINDS",
    "masks",
    "MaskedCase",
    "draw_masked_case",
    "empty_slices",
    "with_an_empty_slice",
    "counts",
    "cover",
    "masked_batch_norm_vjp",
    "masked_grad_bound",
    "check_masked_gradients",
]


def counts(mask: np.ndarray, shape, axes) -> np.ndarray:
    """``n_p``: counted elements per slice (keepdims), from the mask broadcast to ``shape``."""
    return np.broadcast_to(mask, tuple(shape)).sum(axis=tuple(axes), keepdims=True)


class MaskedStats:
    """The exact float64 statistics of the counted elements of each slice (keepdims), with
    the attributes ``tolerance``'s slice statistics carry (``x64``, ``axes``, ``n``, ``mu``,
    ``var``, ``d2``, ``x_max``, ``spread``) so that its item 4 evaluates on them; ``n`` is
    the per-slice count array ``n_p``. Empty slices: ``mu = var = d2 = x_max = 0``."""

    __slots__ = ("x64", "axes", "n", "mu", "var", "d2", "x_max", "spread", "full", "centred")

    def __init__(self, x64: np.ndarray, axes: tuple[int, ...], mask: np.ndarray):
        self.x64, self.axes = x64, tuple(axes)
        w = np.broadcast_to(mask, x64.shape)
        self.full = w
        self.n = w.sum(axis=self.axes, keepdims=True)
        denom = np.maximum(self.n, 1)
        xc = np.where(w, x64, 0.0)
        self.mu = xc.sum(axis=self.axes, keepdims=True) / denom
        dev2 = np.where(w, np.square(x64 - self.mu), 0.0)
        self.var = dev2.sum(axis=self.axes, keepdims=True) / denom
        self.d2 = dev2.max(axis=self.axes, keepdims=True, initial=0.0)
        self.x_max = np.abs(xc).max(axis=self.axes, keepdims=True, initial=0.0)
        self.spread = self.var + 3 * self.d2 + 2 * self.x_max * np.sqrt(self.d2)
        self.centred = True  # the standard norm's statistics (tolerance._SliceStats, item 8 is RMSNorm's)


def counted_stats(x, axes, mask) -> MaskedStats:
    """``MaskedStats`` of x (any float dtype) over ``axes`` with ``mask`` (checked): the one
    place they are built; non-finite or huge x gives inf/NaN statistics without a warning
    (the domain check rejects such x)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return MaskedStats(np.asarray(x).astype(np.float64), tuple(axes), check_mask(mask, np.shape(x)))


def masked_moments(x: np.ndarray, axes, mask, *, stats: MaskedStats | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mu_p, sigma_p^2, n_p)`` in float64, keepdims: the moments of each slice's counted
    elements (two-pass), ``(0, 0)`` for an empty slice (module docstring). ``stats``: the
    ``counted_stats`` of these arguments, if already built."""
    st_ = counted_stats(x, axes, mask) if stats is None else stats
    return st_.mu, st_.var, st_.n


def masked_batch_norm(x: np.ndarray, axes, mask, scale=1.0, offset=0.0, epsilon: float = 1e-3, *, dtype=np.float64, stats: MaskedStats | None = None) -> np.ndarray:
    """The masked reference: every element normalized with its slice's masked moments, in
    float64, cast to ``dtype``."""
    mu, var, _ = masked_moments(x, axes, mask, stats=stats)
    gamma = check_affine("scale", scale, np.shape(x), tuple(axes))
    beta = check_affine("offset", offset, np.shape(x), tuple(axes))
    with np.errstate(divide="ignore", invalid="ignore"):
        y = (np.asarray(x).astype(np.float64) - mu) / np.sqrt(var + float(epsilon)) * gamma + beta
    return y.astype(dtype)


def masked_bound(x, axes, mask, scale=1.0, offset=0.0, epsilon=1e-3, dtype=None, accumulation: str = "float32", *, stats: MaskedStats | None = None) -> np.ndarray:
    """Per-element bound on ``|y_subject - masked_batch_norm|`` for a correct subject in
    ``dtype`` under ``accumulation``: ``tolerance``'s item 4 (6, 7) on the counted statistics
    with ``n_p`` per slice (module docstring), plus the float64 reference's own."""
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    x64 = np.asarray(x).astype(np.float64)
    gamma_ = np.asarray(scale, dtype=np.float64)
    beta = np.asarray(offset, dtype=np.float64)
    with np.errstate(over="ignore"):
        terms = tolerance._OutputTerms(counted_stats(x, axes, mask) if stats is None else stats, gamma_, beta, float(epsilon))
        b = tolerance._output_bound(terms, dtype, accumulation)
        if dtype != np.float64:
            b = b + tolerance._output_bound(terms, np.dtype(np.float64))
    return np.broadcast_to(b, x64.shape)


def masked_in_safe_domain(x, axes, mask, scale=1.0, offset=0.0, epsilon=1e-3, dtype=None, accumulation: str = "float32", *, stats: MaskedStats | None = None) -> bool:
    """Item 5 for masked moments (module docstring): no intermediate of a correct masked
    evaluation in ``dtype`` (reductions in ``accumulation_dtype``) can overflow."""
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    limit_x = float(tolerance.finfo(dtype).max) / 4
    limit_a = float(tolerance.finfo(tolerance.accumulation_dtype(dtype, accumulation)).max) / 4
    x64 = np.asarray(x).astype(np.float64)
    axes = tuple(axes)
    n_full = math.prod(x64.shape[a] for a in axes)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # inf or NaN: not safe
        st_ = counted_stats(x, axes, mask) if stats is None else stats
        inv = 1 / np.sqrt(st_.var + float(epsilon))
        g = np.maximum(np.abs(np.asarray(scale, dtype=np.float64)), 1)
        abs_x = np.abs(x64)
        centred = abs_x + np.abs(st_.mu)
        products = centred * inv * g + np.abs(np.asarray(offset, dtype=np.float64))
        m = abs_x.max(axis=axes, keepdims=True, initial=0.0)
        d2_all = np.square(x64 - st_.mu).max(axis=axes, keepdims=True, initial=0.0)
        return bool(
            (n_full * m <= limit_a).all()
            and (n_full * (st_.var + 3 * d2_all) <= limit_a).all()
            and (4 * np.square(m) <= limit_a).all()
            and (st_.var + float(epsilon) <= limit_a).all()
            and (centred <= limit_x).all()
            and (products <= limit_x).all()
            and (inv * g <= limit_x).all()
        )


# --------------------------------------------------------------------------------------
# Drawing masks
# --------------------------------------------------------------------------------------

# How the mask's shape relates to x's (module docstring). Shrinks toward "full".
MASK_KINDS = ("full", "size 1 on reduced axes", "size 1 on kept axes", "fewer leading dims", "mixed")
# P(counted): about half first, then mostly counted (padding), rarely counted, all, none.
MASK_DENSITIES = (0.5, 0.9, 0.2, 1.0, 0.0)


def _mask_shape(draw, kind: str, shape, axes) -> tuple[int, ...]:
    ndim = len(shape)
    if kind == "full":
        return tuple(shape)
    if kind == "size 1 on reduced axes":
        return tuple(1 if a in axes else s for a, s in enumerate(shape))
    if kind == "size 1 on kept axes":
        return tuple(s if a in axes else 1 for a, s in enumerate(shape))
    if kind == "fewer leading dims":  # x's trailing sides, broadcast over the leading ones
        return tuple(shape[draw(st.integers(1, ndim), label="leading dims dropped"):])
    ones = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim), label="size-1 axes")
    mixed = tuple(1 if one else s for one, s in zip(ones, shape))
    lead = 0
    while lead < ndim and mixed[lead] == 1:
        lead += 1
    return mixed[draw(st.integers(0, lead), label="leading dims dropped"):]


@st.composite
def masks(draw, shape, axes, *, densities=MASK_DENSITIES):
    """A bool mask broadcastable to ``shape``, of a drawn kind (``MASK_KINDS``) and density
    (P(counted), ``densities``), values from ``numpy.random.default_rng(seed)``. Returns
    ``(mask, kind)``."""
    kind = draw(st.sampled_from(MASK_KINDS), label="mask kind")
    mshape = _mask_shape(draw, kind, tuple(shape), tuple(axes))
    p = draw(st.sampled_from(densities), label="P(counted)")
    seed = draw(st.integers(0, 2**32 - 1), label="mask seed")
    return np.random.default_rng(seed).random(mshape) < p, kind


def empty_slices(mask, shape, axes) -> np.ndarray:
    """Whether each slice has no counted element (keepdims bool)."""
    return counts(mask, shape, axes) == 0


def with_an_empty_slice(mask: np.ndarray, shape, axes, rng_index: int) -> np.ndarray:
    """``mask`` (same shape) with every counted element of one slice cleared: the slice at
    kept position ``rng_index`` (modulo the mask's kept sides; on a size-1 kept axis of the
    mask the whole axis, so more slices may empty)."""
    m = np.array(mask, copy=True)
    lead = len(shape) - m.ndim
    index, k = [], rng_index
    for i, side in enumerate(m.shape):
        if i + lead in axes:
            index.append(slice(None))
        else:
            index.append(k % side)
            k //= side
    m[tuple(index)] = False
    return m


@dataclass(frozen=True)
class MaskedCase:
    """A drawn call with a mask: ``case`` (x and the contract's arguments) and ``mask``,
    broadcastable to x, with the kind of shape it was drawn in."""

    case: BNCase
    mask: np.ndarray
    kind: str = "full"

    @property
    def laid_out_mask(self) -> np.ndarray:
        """The mask as the subject receives it: in the case's memory layout."""
        return self.case.laid_out(self.mask)

    @functools.cached_property
    def stats(self) -> MaskedStats:
        """The counted statistics, built once for the domain, the reference and the bounds."""
        return counted_stats(self.case.x, self.case.axes, self.mask)

    def with_mask(self, mask) -> "MaskedCase":
        return dataclasses.replace(self, mask=mask)

    def with_x(self, x) -> "MaskedCase":
        return dataclasses.replace(self, case=dataclasses.replace(self.case, x=x))

    def in_safe_domain(self) -> bool:
        c = self.case
        return masked_in_safe_domain(c.x, c.axes, self.mask, c.scale, c.offset, c.epsilon, accumulation=c.accumulation, stats=self.stats)

    def expected(self) -> np.ndarray:
        c = self.case
        return masked_batch_norm(c.x, c.axes, self.mask, c.scale, c.offset, c.epsilon, stats=self.stats)

    def bound(self) -> np.ndarray:
        c = self.case
        return masked_bound(c.x, c.axes, self.mask, c.scale, c.offset, c.epsilon, c.x.dtype, c.accumulation, stats=self.stats)

    def __repr__(self) -> str:
        return f"MaskedCase(mask={describe_value(self.mask)} ({self.kind}), case={self.case!r})"

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis' printer of falsifying examples
        p.text(repr(self))


def draw_masked_case(data, subject, dtype, *, densities=MASK_DENSITIES, label: str = "masked case") -> MaskedCase:
    """A ``draw_case`` (the subject's axis sets and contract), then a mask for it
    (``masks``); rejected outside the masked domain. Notes the mask's kind, whether it has
    an empty slice and whether it leaves an element uncounted (the report's coverage)."""
    case = draw_case(data, subject, dtype, label=label)
    mask, kind = data.draw(masks(case.x.shape, case.axes, densities=densities), label="mask")
    mc = MaskedCase(case, mask, kind)
    assume(mc.in_safe_domain())
    cover(mc)
    return mc


def cover(mc: MaskedCase) -> None:
    """Record what a masked case reaches: its mask kind, empty slices, uncounted elements."""
    shape, axes = mc.case.x.shape, mc.case.axes
    full = np.broadcast_to(mc.mask, shape)
    checks.cover(
        f"mask: {mc.kind}",
        *(["mask: an empty slice"] if full.size and empty_slices(mc.mask, shape, axes).any() else []),
        *(["mask: an uncounted element"] if full.size and not full.all() else []),
    )


# --------------------------------------------------------------------------------------
# Gradients (a masked subject with a ``vjp``: ``vjp(x, dy, *, axes, scale, offset, epsilon,
# mask=None)``)
# --------------------------------------------------------------------------------------


def masked_batch_norm_vjp(x, dy, axes, mask, scale=1.0, epsilon=1e-3, *, offset=None, stats: MaskedStats | None = None):
    """``(dx, dgamma, dbeta)`` of the masked batch norm in float64 (``gradients`` item 10)::

        dx = gamma inv (dy - c (m1 + x_hat m2)),  m1 = sum_A(dy) / n,  m2 = sum_A(dy x_hat) / n

    ``c`` the mask broadcast to x, ``n`` the count (``max(n, 1)``: an empty slice's moments
    are constants), the sums over every element of the slice (every output reads the
    moments); ``dgamma = R_gamma(dy x_hat)``, ``dbeta = R_beta(dy)``. With every element
    counted: ``reference.batch_norm_vjp``."""
    axes = tuple(axes)
    x64 = np.asarray(x).astype(np.float64)
    stats = counted_stats(x, axes, mask) if stats is None else stats
    g = np.asarray(scale, dtype=np.float64)
    d = np.asarray(dy).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = 1 / np.sqrt(stats.var + float(epsilon))
        x_hat = (x64 - stats.mu) * inv
        n = np.maximum(stats.n, 1)
        m1 = d.sum(axis=axes, keepdims=True) / n
        m2 = (d * x_hat).sum(axis=axes, keepdims=True) / n
        dx = g * inv * (d - stats.full * (m1 + x_hat * m2))
        oshape = np.shape(scale if offset is None else offset)
        return dx, gr.reduce_to(d * x_hat, np.shape(scale)), gr.reduce_to(d, oshape)


def masked_grad_bound(x, dy, axes, mask, scale=1.0, epsilon=1e-3, *, offset=None, accumulation="float32", stats: MaskedStats | None = None) -> "gr.GradBound":
    """Bounds on the masked gradients of a correct subject in x's dtype: ``gradients`` item 10."""
    counted = counted_stats(x, axes, mask) if stats is None else stats
    return gr.grad_bound(x, dy, axes, scale, epsilon, offset=offset, accumulation=accumulation, counted=counted)


def draw_masked_grad_case(data, subject, dtype) -> tuple[MaskedCase, np.ndarray]:
    """A masked case and an upstream ``dy`` (``gradients``' dy regimes), kept inside the
    gradient's domain with the counted moments."""
    mc = draw_masked_case(data, subject, dtype)
    return mc, gr.draw_dy(data, mc.case, counted=mc.stats)


MASKED_DX_LAW = "dx = gamma inv (dy - c (sum_A dy + x_hat sum_A(dy x_hat)) / n), c = mask, n = count"


def check_masked_gradients(subject, mc: MaskedCase, dy) -> None:
    """The subject's ``vjp`` with the mask against ``masked_batch_norm_vjp``: dx, dgamma and
    dbeta each within ``masked_grad_bound``."""
    c = mc.case
    got = gr.vjp_call(subject, c, dy, label="vjp(x, dy; m)", mask=mc.laid_out_mask)
    want = masked_batch_norm_vjp(c.x, dy, c.axes, mc.mask, c.gamma, c.epsilon, offset=c.offset, stats=mc.stats)
    tol = masked_grad_bound(c.x, dy, c.axes, mc.mask, c.gamma, c.epsilon, offset=c.offset, accumulation=gr.accumulation_of(subject), stats=mc.stats)
    laws = (MASKED_DX_LAW, gr.DGAMMA_LAW + " (x_hat with the masked moments)", gr.DBETA_LAW)
    for g, w, b, law in zip(got, want, (tol.dx, tol.dgamma, tol.dbeta), laws):
        checks.assert_within(g, w, b, law=law, **({"x": c.x} if law is MASKED_DX_LAW else {}))
