"""Hypothesis strategies for batch-norm inputs: one module, composable pieces.

Every strategy shrinks toward the simplest failing input: small shapes before long
reductions, axis 0 before other axis sets, location 0 and spread 1 before hard
conditioning, Gaussian data before integers, constant slices and tiny magnitudes,
``scale=1.0, offset=0.0`` before per-feature arrays, ``epsilon=1e-3`` first.

Array *values* come from ``numpy.random.default_rng(seed)`` with the seed drawn by
Hypothesis: a few thousand elements cost microseconds instead of the milliseconds that
element-by-element drawing costs, and the draw stays replayable (the seed is part of the
example and of the ``@reproduce_failure`` blob).
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import itertools
import math
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bn_reference.mathematics.checks import count_example
from bn_reference.mathematics.describe import describe_value
from bn_reference.mathematics.layouts import C_ORDER, KINDS as LAYOUT_KINDS, Layout
from bn_reference.mathematics.reference import effective_scale, first_of_each_slice, first_of_each_slice_index
from bn_reference.mathematics.tolerance import finfo, in_safe_domain, unit_roundoff

__all__ = [
    "BNCase",
    "Regime",
    "LOCATIONS",
    "SPREADS",
    "KINDS",
    "DTYPES",
    "shapes",
    "long_shapes",
    "reduced_axes",
    "axis_splits",
    "regimes",
    "max_condition",
    "resolvable_offset",
    "resolvable_constant_slices",
    "values",
    "affine",
    "epsilons",
    "bn_cases",
    "default_shapes",
    "draw_case",
    "assume_safe",
    "replace",
    "with_constant_slices",
    "square_shapes",
    "spread_regimes",
    "epsilon_comparable_cases",
    "PoisonedCase",
    "poisoned_cases",
    "single_element_cases",
    "zero_size_cases",
    "huge_cases",
    "refused_cases",
    "layouts",
    "boundary_shapes",
    "BOUNDARY_SIZES",
    "at_block_boundary",
    "very_long_cases",
    "BEYOND_16_BITS",
    "SIDE_BUCKETS",
    "bucketed",
    "shape_buckets",
]

DTYPES = ("float32", "float64", "float16", "bfloat16")
LOCATIONS = (0.0, 1.0, -1.0, 1e2, -1e2, 1e3, -1e3, -1e4)
SPREADS = (1.0, 1e-2, 10.0, 1e-4)
KINDS = ("gaussian", "integers", "constant_slices", "tiny")
FAVOURED_EPSILONS = (1e-3, 1e-5)

# Strategy objects are built once per distinct arguments, not once per example: building
# and validating a Hypothesis strategy costs more than drawing from it (the benchmark saw
# strategy construction take ~40% of each example). Bounded, since callers may pass fresh
# strategy objects (new keys) per example.
def _cached(build):
    """``build`` memoized on its arguments (LRU, 512 entries each way): by the arguments
    themselves when they key by themselves (``functools.lru_cache``, the common and fast
    case), else by ``_key``; unhashable arguments (a list) build afresh."""
    plain = functools.lru_cache(maxsize=512)(build)  # arguments that key by themselves
    memo: collections.OrderedDict = collections.OrderedDict()  # the others, by _key

    @functools.wraps(build)
    def get(*args, **kwargs):
        try:
            if _STRUCTURAL.isdisjoint(map(type, args)) and _STRUCTURAL.isdisjoint(map(type, kwargs.values())):
                return plain(*args, **kwargs)
            key = (tuple(map(_key, args)), tuple((k, _key(v)) for k, v in sorted(kwargs.items())))
            built = memo.get(key)
        except TypeError as exc:
            if "unhashable" not in str(exc):
                raise
            return build(*args, **kwargs)
        if built is None:
            built = memo[key] = build(*args, **kwargs)
            if len(memo) > 512:
                memo.popitem(last=False)
        else:
            memo.move_to_end(key)
        return built

    def cache_clear():
        plain.cache_clear()
        memo.clear()

    get.cache_clear = cache_clear
    return get


def _key(arg):
    """What ``_cached`` keys an argument on: the argument itself (strategies by identity),
    except for the strategies properties build afresh for each example out of constant
    parts (``st.one_of(bst.shapes(min_side=2), bst.long_shapes())``, ``st.just(0.0)``, an
    epsilon-comparable case's ``st.just(regime)``), which would miss every time (~1.3 ms
    per example: the composite, its rank filter and their validation built again):

    * ``st.just(v)`` (no ``.map``/``.filter``) of a float, int, bool, None or str: keyed by
      ``v``'s type and repr (so ``0.0``, ``-0.0`` and ``0`` stay apart), of a ``Regime`` by
      its fields the same way. It draws nothing and returns ``v``: same key, same strategy.
    * ``st.one_of(a, b, ...)``: keyed by its parts, in order, each keyed by ``_key``. A
      ``one_of`` draws its branch index, then from that branch: its behaviour is that of
      its parts. The key holds the parts it names by identity, so their ids are never reused
      while the entry lives.
    * a ``Regime``: by its fields' types and reprs (its ``==`` would equate 0.0 and -0.0).

    Anything else (unknown strategy types, or Hypothesis reorganised) keys by itself, as
    before: a miss, never a wrong hit."""
    kind = type(arg)
    if kind is Regime:
        return (Regime, arg.kind, type(arg.location), repr(arg.location), type(arg.spread), repr(arg.spread))
    if kind is _ONE_OF:
        parts = getattr(arg, "original_strategies", None)
        return arg if parts is None else (_ONE_OF, *map(_key, parts))
    if kind is _JUST and not getattr(arg, "_transformations", True):
        value = arg.value
        if type(value) is Regime:
            return (_JUST, _key(value))
        if value is None or type(value) in (float, int, bool, str):
            return (_JUST, type(value), repr(value))
    return arg


_SEEDS = st.integers(0, 2**32 - 1)
_BOOLS = st.booleans()
_SCALE_MAGNITUDES = st.floats(0.1, 10.0)
_OFFSETS = st.floats(-10.0, 10.0)
_SIGNS = st.sampled_from([1.0, -1.0])
_POISONS = st.sampled_from((math.nan, math.inf, -math.inf))
_SIMPLE = {"scale": st.sampled_from((1.0, 2.0, 0.5, -1.5)), "offset": st.sampled_from((0.0, 1.0, -3.0, 0.25))}


@_cached
def _sampled(options: tuple):
    return st.sampled_from(options)


@_cached
def _min_rank(shape_strategy, min_axes: int):
    return shape_strategy.filter(_RankAtLeast(min_axes))


class _RankAtLeast:
    """The shape filter ``len(s) >= k``, as an object rather than a lambda. Hypothesis (6.170)
    validates a filtered strategy again on every draw (``FilteredStrategy.do_validate``
    re-initialises the strategy, which clears its "validated" flag), and each validation
    tries to rewrite a filter on a list's length into the list's ``min_size`` by reading
    the predicate's source with ``ast`` (~0.1 ms per example). A lambda over a variable is
    never rewritten; a callable without ``__name__`` is not even read. Same filter, same
    strategy, same draws."""

    __slots__ = ("k",)

    def __init__(self, k: int):
        self.k = k

    def __call__(self, shape) -> bool:
        return len(shape) >= self.k

    def __repr__(self) -> str:
        return f"rank_at_least({self.k})"


class _RankIn:
    """The shape filter ``len(s) in ranks`` (see ``_RankAtLeast`` for why an object)."""

    __slots__ = ("ranks",)

    def __init__(self, ranks):
        self.ranks = ranks

    def __call__(self, shape) -> bool:
        return len(shape) in self.ranks

    def __repr__(self) -> str:
        return f"rank_in({list(self.ranks)})"


@dataclass(frozen=True)
class Regime:
    """How the data is made: ``location + spread * z`` with ``z`` of the given kind.

    kinds: ``gaussian`` (z ~ N(0, 1)); ``integers`` (integer-valued data: location plus
    integers in [-k, k], k = max(1, round(spread))); ``constant_slices`` (Gaussian, but
    about half of the slices are constant, sigma = 0); ``tiny`` (magnitudes near the
    dtype's smallest normal number, down into the subnormals; location ignored; in half
    precision only magnitudes a correct kernel can resolve, ``TINY_MAGNITUDES``).
    """

    kind: str = "gaussian"
    location: float = 0.0
    spread: float = 1.0

    def __str__(self) -> str:
        return f"{self.kind}(loc={self.location:g}, spread={self.spread:g})"

    def __repr__(self) -> str:
        return f"Regime({self.kind!r}, location={float(self.location)!r}, spread={float(self.spread)!r})"

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis' printer of falsifying examples
        p.text(repr(self))


_ONE_OF = type(st.one_of(st.none(), st.none()))
_JUST = type(st.just(0))
_STRUCTURAL = frozenset((_ONE_OF, _JUST, Regime))  # the argument types _key does not key by themselves


@dataclass(frozen=True)
class BNCase:
    """One drawn call: ``subject(x, axes=..., scale=..., offset=..., epsilon=..., training=...)``."""

    x: np.ndarray
    axes: tuple[int, ...]
    scale: float | np.ndarray = 1.0
    offset: float | np.ndarray = 0.0
    epsilon: float = 1e-3
    training: bool | None = True
    regime: Regime = field(default_factory=Regime)
    seed: int = 0
    accumulation: str = "float32"  # the contract the bound holds the subject to (its bn_accumulation)
    layout: Layout = C_ORDER  # how the arrays handed to the subject sit in memory (``layouts``)
    norm: str = "standard"  # the subject's normalization (bn_norm): "standard" or "rms"
    scale_convention: str = "plain"  # how it applies scale (bn_scale): gamma = scale, or 1 + scale
    output_dtype: str | None = None  # y's dtype when not x's (bn_output_dtype: mixed precision)

    @property
    def out_dtype(self) -> np.dtype:
        """The dtype y comes back in: ``output_dtype``, or x's."""
        return np.dtype(self.output_dtype) if self.output_dtype is not None else self.x.dtype

    @property
    def gamma(self):
        """gamma as the subject applies ``scale`` (``reference.effective_scale``)."""
        return effective_scale(self.scale, self.scale_convention)

    @property
    def unit_scale(self) -> float:
        """The ``scale`` that makes gamma = 1: 1.0, or 0.0 under ``one_plus``."""
        return 0.0 if self.scale_convention == "one_plus" else 1.0

    def kwargs(self, **overrides) -> dict:
        """The call's keyword arguments; ``scale``/``offset`` arrays in the case's layout."""
        kw = dict(axes=self.axes, scale=self.scale, offset=self.offset, epsilon=self.epsilon, training=self.training)
        kw.update(overrides)
        for name in ("scale", "offset"):
            if isinstance(kw[name], np.ndarray) and kw[name].ndim:
                kw[name] = self.layout.apply(kw[name])
        return kw

    def laid_out(self, a=None) -> np.ndarray:
        """``a`` (default: x) as a fresh array in the case's layout: what the subject receives."""
        return self.layout.apply(self.x if a is None else a)

    @property
    def n(self) -> int:
        """Elements per slice: the reduction size N."""
        return int(np.prod([self.x.shape[a] for a in self.axes]))

    def __repr__(self) -> str:
        """One line, plain numbers: x as ``dtype shape`` and its values when small, a summary
        when large (``describe.describe_array``), then the arguments and how x was made."""
        return (
            f"BNCase(x={describe_value(self.x, self.axes)}, axes={describe_value(self.axes)}, "
            f"scale={describe_value(self.scale)}, offset={describe_value(self.offset)}, "
            f"epsilon={describe_value(self.epsilon)}, training={self.training!r}, N={self.n}, "
            f"regime={self.regime}, seed={self.seed}"
            + (f", accumulation={self.accumulation!r}" if self.accumulation != "float32" else "")
            + (f", norm={self.norm!r}" if self.norm != "standard" else "")
            + (f", scale_convention={self.scale_convention!r}" if self.scale_convention != "plain" else "")
            + (f", output_dtype={self.output_dtype!r}" if self.output_dtype is not None else "")
            + (f", layout={self.layout!r})" if self.layout != C_ORDER else ")")
        )

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis' printer of falsifying examples
        p.text(repr(self))


@_cached
def shapes(*, min_dims: int = 1, max_dims: int = 5, min_side: int = 1, max_side: int = 6):
    """Array shapes of rank ``min_dims..max_dims`` with every dimension in min_side..max_side
    (at most 6**5 = 7776 elements). Shrinks toward ``(min_side,)``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@_cached
def long_shapes(*, min_n: int = 64, max_n: int = 4096, min_c: int = 1):
    """Shapes with one long axis for large reduction sizes: ``(n, c)`` with
    n in min_n..max_n and c in min_c..4, so that reducing over axis 0 has N = n."""
    return st.tuples(st.integers(min_n, max_n), st.integers(min_c, 4))


# Block boundaries: a blocked or tiled reduction (a CUDA/Triton kernel's 256-lane block, a
# vector loop's 32 or 1024) breaks at N just below, at and just above a multiple of its block
# size: a dropped or double-counted tail, an unmasked last lane. ``boundary_shapes`` puts one
# axis at k * 2^p - 1, k * 2^p or k * 2^p + 1 for p = 5..12 and k = 1, 3 (31 .. 12289).
BLOCK_EXPONENTS = tuple(range(5, 13))
BLOCK_MULTIPLES = (1, 3)
BOUNDARY_SIZES = tuple(sorted({k * 2**p + d for p in BLOCK_EXPONENTS for k in BLOCK_MULTIPLES for d in (-1, 0, 1)}))


def at_block_boundary(n: int) -> bool:
    """Whether ``n`` is one of ``BOUNDARY_SIZES`` (k * 2^p + {-1, 0, 1})."""
    return n in _BOUNDARY_SET


_BOUNDARY_SET = frozenset(BOUNDARY_SIZES)


@_cached
def boundary_shapes(sizes=BOUNDARY_SIZES, *, rank1: bool = True):
    """Shapes with one axis of a size in ``sizes`` (default ``BOUNDARY_SIZES``): ``(n,)``
    (unless not ``rank1``), ``(n, c)`` or ``(c, n)`` with c in 1..2, so that every axis set
    of rank 1 and two of the three of rank 2 reduce over it (N = n, or a reduced extent n)."""
    n, c = st.sampled_from(sizes), st.integers(1, 2)
    rank2 = (st.tuples(n, c), st.tuples(c, n))
    return st.one_of(st.tuples(n), *rank2) if rank1 else st.one_of(*rank2)


# Beyond 16 bits: a count or an index kept in 16 bits (a uint16 lane index, a float16 count,
# whose largest integer is 65504) wraps or rounds once a slice holds more than 65,536 elements.
BEYOND_16_BITS = (65537, 98305, 131073)


class _Containing:
    """``bn_axes``-like: the axis sets (of a subject's ``axes_sets``, or all) that contain
    ``axis`` (an object, so that ``_cached`` keys strategies by it)."""

    __slots__ = ("axis", "axes_sets")

    def __init__(self, axis: int, axes_sets=None):
        self.axis, self.axes_sets = axis, axes_sets

    def __call__(self, ndim: int) -> list[tuple[int, ...]]:
        if self.axes_sets is not None:
            sets = [tuple(a) for a in self.axes_sets(ndim)]
        else:
            sets = [c for k in range(1, ndim + 1) for c in itertools.combinations(range(ndim), k)]
        return [a for a in sets if self.axis in a]

    def __eq__(self, other) -> bool:
        return isinstance(other, _Containing) and (self.axis, self.axes_sets) == (other.axis, other.axes_sets)

    def __hash__(self) -> int:
        return hash((self.axis, self.axes_sets))


def very_long_cases(dtype, axes_sets=None, accumulation="float32"):
    """``bn_cases`` whose slices hold N in ``BEYOND_16_BITS`` (> 65,536) elements: x of shape
    ``(N, c)`` (or ``(c, N)`` for a subject that reduces over no rank-2 axis set holding axis
    0), c in 1..2, always reduced over the long axis; None when the subject (its
    ``axes_sets``) reduces over neither axis of a rank-2 x."""
    n, c = st.sampled_from(BEYOND_16_BITS), st.integers(1, 2)
    for axis, shape in ((0, st.tuples(n, c)), (1, st.tuples(c, n))):
        containing = _Containing(axis, axes_sets)
        if containing(2):
            return bn_cases(dtypes=(dtype,), shape_strategy=shape, axes_sets=containing, accumulation=accumulation)
    return None


@_cached
def reduced_axes(ndim: int, *, min_size: int = 1, max_size: int | None = None):
    """Non-empty sorted tuples of unique axes in ``range(ndim)``; shrinks toward ``(0,)``.

    One choice per draw (``sampled_from`` the subsets ordered by size, then
    lexicographically) instead of a list of unique integers (~2 choices per axis plus
    rejections): fewer choices make every example cheaper to generate and to shrink."""
    max_size = ndim if max_size is None else min(max_size, ndim)
    subsets = [c for k in range(max(min_size, 1), max_size + 1) for c in itertools.combinations(range(ndim), k)]
    return st.sampled_from(subsets)


@_cached
def axis_splits(axes: tuple[int, ...]):
    """Splits ``A = A1 | A2`` of a reduced-axis set into two non-empty disjoint sets."""
    if len(axes) < 2:
        raise ValueError(f"axis_splits needs at least two axes, got axes={axes!r}")
    return (
        st.lists(st.sampled_from(axes), min_size=1, max_size=len(axes) - 1, unique=True)
        .map(lambda a1: (tuple(sorted(a1)), tuple(a for a in axes if a not in a1)))
    )


_LAYOUT_KINDS = st.sampled_from(LAYOUT_KINDS)


@_cached
@st.composite
def layouts(draw, ndim: int):
    """A memory ``Layout`` (``bn_reference.mathematics.layouts``) for arrays of rank ``ndim``:
    each kind equally often, a permutation of the axes for ``"permuted"``; shrinks toward
    C order."""
    kind = draw(_LAYOUT_KINDS)
    if kind == "permuted":
        return Layout(kind, tuple(draw(st.permutations(range(ndim)))))
    return Layout(kind)


@_cached
def regimes(*, kinds=KINDS, locations=LOCATIONS, spreads=SPREADS, dtype=None):
    """Value regimes; shrink toward ``gaussian(loc=0, spread=1)``. With a half-precision
    ``dtype``, only the (location, spread) pairs with ``|location| / spread <=
    max_condition(dtype)`` (spread at least 1 for ``integers``, whose steps are 1) and a
    ``resolvable_spread`` (float16 drops spreads 1e-2 and 1e-4)."""
    if dtype is None or np.dtype(dtype).name not in HALF_DTYPES:
        return st.builds(Regime, st.sampled_from(kinds), st.sampled_from(locations), st.sampled_from(spreads))
    limit = max_condition(dtype)

    def kept(kind, loc, sp):
        if kind == "tiny":  # location and spread unused: one pair
            return (loc, sp) == (locations[0], spreads[0])
        if kind == "integers":  # steps of 1: the spread is at least 1
            return abs(loc) <= limit * max(sp, 1.0)
        return abs(loc) <= limit * sp and resolvable_spread(dtype, sp)

    pairs = {kind: [(loc, sp) for loc in locations for sp in spreads if kept(kind, loc, sp)] for kind in kinds}
    # The strategy each kind expands to, built once here rather than by flatmap on every
    # draw (the same sampled_from(...).map(...) either way, so the same draws).
    expanded = {kind: st.sampled_from(pairs[kind]).map(functools.partial(_regime_of, kind)) for kind in kinds if pairs[kind]}
    return st.sampled_from([k for k in kinds if pairs[k]]).flatmap(lambda kind: expanded[kind])


def _regime_of(kind: str, pair) -> Regime:
    return Regime(kind, *pair)


def max_condition(dtype) -> float:
    """The largest ``|location| / spread`` drawn in half precision: ``1 / (60 u)``, u the
    dtype's unit roundoff (34 in float16, 4.3 in bfloat16).

    Why: any elementwise stage in x's dtype (the folded form ``x (inv gamma) - mu (inv
    gamma)``, tolerance item 4) rounds products of size ``(|x| + |mu|) inv |gamma|``, so a
    correct kernel errs by up to ``3u (|x| + |mu|) inv |gamma| ~ 6u |mu| |gamma| / sigma``,
    while the output spans ``ptp(y) = |gamma| ptp(x) inv >= 2 |gamma|`` (Popoviciu:
    ``sigma <= ptp(x) / 2``). Their ratio is at most ``3u |mu| / sigma``; keeping it at or
    below 0.05 (half of the 10% at which a bound says nothing) gives ``|mu| / sigma <=
    1 / (60 u)``. Beyond that the half-precision data are themselves quantized at a spacing
    ``u |mu|`` comparable to sigma, and no correct kernel, hence no bound, can resolve the
    output. float32 and float64 keep every regime: there ``1 / (60 u)`` is 2.8e5 and more,
    and their ill-conditioned regimes are where the naive one-pass variance is caught."""
    return 1 / (60 * unit_roundoff(dtype))


def resolvable_spread(dtype, sigma: float) -> bool:
    """Whether a half-precision slice of std ``sigma`` has a variance the strict contract
    can resolve: ``sigma^2 + eps_min >= 40 tiny``, tiny the dtype's smallest normal number,
    eps_min = max(1e-12, tiny) the smallest epsilon drawn (``epsilons``).

    Why: squares formed in x's dtype (admitted by tolerance item 6, TF's bfloat16 moments do
    it) are flushed below ``tiny``, which costs ``2 tiny`` in ``E_var``; the inverse square
    root then errs by ``~ r / 2``, ``r = 2 tiny / (sigma^2 + eps)``, so ``r <= 0.05`` keeps it
    at about 2.5% of the output. In float16 (tiny = 6.1e-5) this asks sigma >= 0.049; in
    bfloat16 (tiny = 1.2e-38) eps_min = 1e-12 already meets it for any sigma."""
    tiny = float(finfo(dtype).tiny)
    return sigma * sigma + max(1e-12, tiny) >= 40 * tiny


def resolvable_constant_slices(x: np.ndarray, axes, epsilon) -> np.ndarray:
    """``x`` with the value of every constant slice (N = 1 included) clipped to
    ``|c| <= max_condition(dtype) sqrt(eps)``. For half-precision x only.

    Why: a constant slice has ``sigma = 0``, so ``inv = 1 / sqrt(eps)`` and the folded form's
    products ``x (inv gamma)``, ``mu (inv gamma)`` (tolerance item 4) are rounded at
    ``u |c| |gamma| / sqrt(eps)`` each before they cancel to ``y = beta``; against the
    ``2 |gamma|`` the other slices' outputs span that is ``max_condition``'s ratio with
    ``sqrt(eps)`` in place of sigma (e.g. ``c = 100``, ``eps = 1e-3`` in float16: the folded
    form may miss ``beta`` by ``1.5 |gamma|``)."""
    if x.size == 0:
        return x
    limit = max_condition(x.dtype) * math.sqrt(float(epsilon))
    x64 = x.astype(np.float64)
    constant = np.all(x64 == first_of_each_slice(x64, axes), axis=tuple(axes), keepdims=True)
    if not constant.any():
        return x
    return np.where(constant, np.clip(x64, -limit, limit), x64).astype(x.dtype)


def resolvable_offset(offset, scale, x: np.ndarray, axes, epsilon):
    """``offset`` (beta) clipped, per feature, to ``|beta| <= max_condition(dtype) |gamma| s``,
    ``s = sigma / sqrt(sigma^2 + eps)`` the slice's (``s = 1`` for a constant slice); a
    Python float (or an array that cannot hold one value per feature) to the smallest limit.
    For half-precision x only.

    Why: the output ``y = gamma x_hat + beta`` is rounded in x's dtype (the elementwise stage,
    tolerance item 6), so a correct kernel errs by ``~ 3u |beta|`` (beta's own rounding, the
    addition, the result), while the part of the output that carries the normalization,
    ``gamma x_hat``, spans ``|gamma| ptp(x) / sqrt(sigma^2 + eps) >= 2 |gamma| s`` per slice
    (Popoviciu). Their ratio is at most ``1.5 u |beta| / (|gamma| s)``; the limit keeps it at
    2.5% (``1.5 u / (60 u)``), as ``max_condition`` does for the data. Beyond it y is
    ``beta`` quantized at ``u |beta|``, and ``eps >> sigma^2`` (``s`` small) moves y from
    ``beta`` by less than that: no correct kernel, hence no bound, resolves the output.
    float32 and float64 keep every offset (their limit is 2.8e5 and more)."""
    if x.size == 0:
        return offset
    limit = max_condition(x.dtype)
    x64 = x.astype(np.float64)
    var = x64.var(axis=tuple(axes), keepdims=True)
    # Divide only where var > 0: a constant slice drawn with eps = 0 (test_idempotence) would
    # be 0 / 0 there, a NaN that np.where discarded, with a RuntimeWarning.
    s = np.sqrt(np.divide(var, var + float(epsilon), out=np.ones_like(var), where=var > 0))
    allowed = limit * np.abs(np.asarray(scale, np.float64)) * s  # per feature (x's rank, 1 on axes)
    if not isinstance(offset, np.ndarray):
        return float(np.clip(offset, -allowed.min(), allowed.min()))
    beta = offset.astype(np.float64)
    lead = allowed.ndim - beta.ndim
    shape = (1,) * lead + beta.shape
    keep = tuple(i for i, (b, a) in enumerate(zip(shape, allowed.shape)) if b == 1 and a != 1)
    per_feature = allowed.min(axis=keep, keepdims=True) if keep else allowed
    per_feature = per_feature.reshape(per_feature.shape[lead:]) if lead else per_feature
    return np.clip(beta, -per_feature, per_feature).astype(offset.dtype)


# "tiny" data: magnitudes (times the dtype's smallest normal number) drawn per array. At 1
# and 2^-6 a flush-to-zero kernel (TF on CPU) may lose the whole signal (tolerance's floor
# ``tiny (2 inv |gamma| + |gamma| + 4)``, item 4, is then the output's size): kept in
# float32/float64, where they check that such data give no inf/NaN. In half precision 2^10
# and 2^6, those with a ``resolvable_spread`` (float16: 2^10 only, x ~ 0.06; bfloat16:
# both): still some subnormal inputs (|z| < 2^-10 or 2^-6), squares below the half dtype's
# range (the float32 accumulation is what keeps sigma^2), but each flush costs at most
# tiny / ptp(x) <= 1/128 of the output's spread.
TINY_MAGNITUDES = {"default": (2.0**20, 1.0, 2.0**-6), "half": (2.0**10, 2.0**6)}


@functools.lru_cache(maxsize=None)
def _tiny_magnitudes(dtype) -> tuple[float, ...]:
    if np.dtype(dtype).name not in HALF_DTYPES:
        return TINY_MAGNITUDES["default"]
    tiny = float(finfo(dtype).tiny)
    return tuple(m for m in TINY_MAGNITUDES["half"] if resolvable_spread(dtype, m * tiny))


def _make_values(rng: np.random.Generator, shape, axes, dtype, regime: Regime) -> np.ndarray:
    loc, spread = regime.location, regime.spread
    if regime.kind == "integers":
        k = max(1, round(spread))
        x64 = round(loc) + rng.integers(-k, k + 1, size=shape).astype(np.float64)
    elif regime.kind == "tiny":
        fi = finfo(dtype)
        magnitude = float(fi.tiny) * rng.choice(_tiny_magnitudes(np.dtype(dtype).name))
        x64 = magnitude * rng.standard_normal(shape)
    else:
        x64 = loc + spread * rng.standard_normal(shape)
        if regime.kind == "constant_slices":
            kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
            constant = rng.random(kept) < 0.5
            level = loc + spread * rng.standard_normal(kept)
            x64 = np.where(constant, level, x64)
    return x64.astype(dtype)


def _draw_values(draw, shape, axes, dtype, regime: Regime):
    seed = draw(_SEEDS)
    return _make_values(np.random.default_rng(seed), shape, axes, np.dtype(dtype), regime), regime, seed


@_cached
@st.composite
def values(draw, shape, axes, dtype="float32", regime: Regime | None = None):
    """An array of ``shape`` and ``dtype`` in ``regime`` (drawn if not given); returns
    ``(x, regime, seed)``."""
    return _draw_values(draw, shape, axes, dtype, draw(regimes(dtype=np.dtype(dtype).name)) if regime is None else regime)


def _feature_shape(shape, axes, drop_leading: bool) -> tuple[int, ...]:
    kept = [1 if i in axes else d for i, d in enumerate(shape)]
    if drop_leading:
        while kept and kept[0] == 1:
            kept.pop(0)
    return tuple(kept)


def _draw_affine(draw, shape, axes, dtype, role: str, per_feature: bool):
    if per_feature or draw(_BOOLS):
        rng = np.random.default_rng(draw(_SEEDS))
        fshape = _feature_shape(shape, axes, draw(_BOOLS))
        if role == "scale":
            v = rng.choice([-1.0, 1.0], fshape) * np.exp(rng.uniform(math.log(0.1), math.log(10.0), fshape))
        else:
            v = rng.uniform(-10.0, 10.0, fshape)
        return np.asarray(v).astype(dtype)
    if draw(_BOOLS):
        if role == "scale":
            return draw(_SIGNS) * draw(_SCALE_MAGNITUDES)
        return draw(_OFFSETS)
    return draw(_SIMPLE[role])


@_cached
@st.composite
def affine(draw, shape, axes, dtype="float32", *, role: str = "scale", per_feature: bool = False):
    """``scale`` (gamma) or ``offset`` (beta): a Python float, or a per-feature array of
    ``dtype`` with size 1 on every reduced axis (full rank, or with the leading size-1
    axes dropped as NumPy broadcasting allows). Scale magnitudes are in [0.1, 10] with
    either sign; offsets in [-10, 10]. Shrinks toward 1.0 (scale) or 0.0 (offset).
    ``per_feature=True`` always gives an array with distinct values per feature."""
    return _draw_affine(draw, shape, axes, dtype, role, per_feature)


@_cached
def epsilons(dtype="float32"):
    """epsilon in (0, 1]: 1e-3 and 1e-5 first, then any float from max(1e-12, the dtype's
    smallest normal number) up to 1 (1e-12 is the smallest epsilon in common use; below the
    smallest normal TF on CPU flushes epsilon to zero)."""
    lo = max(1e-12, float(finfo(dtype).tiny))
    return st.one_of(st.sampled_from(FAVOURED_EPSILONS), st.floats(lo, 1.0))


HALF_DTYPES = ("float16", "bfloat16")
# Half precision is where long reductions break (a float16/bfloat16 running sum stops
# growing near N = 2048 / 256): for those dtypes ``bn_cases`` draws, besides the default
# shapes, one long axis of 1024..4096 elements (the N of a 16 x 16 x 16 batch x H x W).
HALF_LONG = dict(min_n=1024, max_n=4096)


@_cached
def default_shapes(min_axes: int = 1, axes_sets=None):
    """``bn_cases``' shapes: rank ``min_axes..5`` (sides 1..6), or one long axis (rank 2).
    With ``axes_sets`` (a subject's ``bn_axes``) only ranks at which the subject expresses an
    axis set of at least ``min_axes`` axes are drawn, by construction rather than by
    rejection (Keras' BatchNormalization has none at rank 1, and none with two reduced
    axes below rank 3: rejecting those shapes one by one trips Hypothesis' filter health
    check, on top of the float16 safe-domain rejections)."""
    if axes_sets is None:
        return st.one_of(shapes(min_dims=min_axes), _long_or_boundary(min_axes))
    ranks = [r for r in range(max(min_axes, 1), 6) if any(len(a) >= min_axes for a in axes_sets(r))]
    if not ranks:
        raise ValueError(f"axes_sets expresses no axis set of {min_axes} or more axes at ranks 1..5")
    small = shapes(min_dims=ranks[0], max_dims=ranks[-1])
    if len(ranks) < ranks[-1] - ranks[0] + 1:  # gaps: reject the ranks in between
        small = small.filter(_RankIn(ranks))
    return st.one_of(small, _long_or_boundary(min_axes, axes_sets)) if 2 in ranks else small


@_cached
def _long_or_boundary(min_axes: int, axes_sets=None):
    """The large-reduction half of ``default_shapes``: as often, one long axis of 64..4096
    (``long_shapes``) or an axis at a block boundary (``boundary_shapes``; its rank-1 shapes
    only where rank 1 is drawn)."""
    rank1 = min_axes <= 1 and (axes_sets is None or any(len(a) >= min_axes for a in axes_sets(1)))
    return st.one_of(long_shapes(), boundary_shapes(rank1=rank1))


@_cached
@st.composite
def bn_cases(
    draw,
    *,
    dtypes=("float32",),
    min_axes: int = 1,
    shape_strategy=None,
    regime_strategy=None,
    epsilon_strategy=None,
    training=True,
    safe_domain: bool = True,
    axes_sets=None,
    accumulation: str = "float32",
    resolvable_constants: bool = True,
):
    """A whole call: dtype, shape, reduced axes, data, scale, offset, epsilon.

    Shapes are mostly small (rank 1..5, sides 1..6); sometimes one long axis
    (N up to 4096) for the large-reduction regime; in float16 and bfloat16 also, as often,
    one axis of 1024..4096 elements (``HALF_LONG``: half precision is where long reductions
    break, and a bound built for them must be tested there). ``axes_sets(ndim)``, if given, lists
    the axis sets to draw from (a subject's ``bn_axes``). With ``safe_domain`` (the default)
    only inputs inside the error model's domain are kept (``tolerance.in_safe_domain``:
    no intermediate of a correct evaluation order overflows the dtype), under the
    ``accumulation`` contract the subject is held to (``BNCase.accumulation``). In float16
    and bfloat16, offsets are clipped to what the output resolves (``resolvable_offset``),
    and with ``resolvable_constants`` (the default) constant slices too
    (``resolvable_constant_slices``).
    """
    dtype = np.dtype(draw(_sampled(tuple(dtypes))))
    if shape_strategy is None:
        shape_strategy = default_shapes(min_axes, axes_sets)
        if dtype.name in HALF_DTYPES and _draws_long_axis(min_axes, axes_sets):
            shape_strategy = _with_long_half(shape_strategy)
    shape = draw(_min_rank(shape_strategy, min_axes))
    if _BUCKETED.get():
        shape = bucketed(shape)
    if axes_sets is None:
        axes = draw(reduced_axes(len(shape), min_size=min_axes))
    else:  # the subject can express only some axis sets
        allowed = tuple(tuple(a) for a in axes_sets(len(shape)) if len(a) >= min_axes)
        assume(allowed)
        axes = draw(_sampled(allowed))
    x, regime, seed = _draw_values(draw, shape, axes, dtype, draw(regimes(dtype=dtype.name) if regime_strategy is None else regime_strategy))
    scale = _draw_affine(draw, shape, axes, dtype, "scale", False)
    offset = _draw_affine(draw, shape, axes, dtype, "offset", False)
    if epsilon_strategy is None:
        epsilon_strategy = _sampled(EPSILON_BUCKETS) if _BUCKETED.get() else epsilons(dtype)
    epsilon = draw(epsilon_strategy)
    layout = draw(layouts(len(shape)))
    if dtype.name in HALF_DTYPES:
        if resolvable_constants:
            x = resolvable_constant_slices(x, axes, epsilon)
        offset = resolvable_offset(offset, scale, x, axes, epsilon)
    case = BNCase(
        x=x,
        axes=axes,
        scale=scale,
        offset=offset,
        epsilon=epsilon,
        training=training,
        regime=regime,
        seed=seed,
        accumulation=accumulation,
        layout=layout,
    )
    if safe_domain:
        assume_safe(case)
    return case


# Shape buckets, for subjects that compile per shape (``bn_compiles = True``): every side
# drawn is snapped DOWN to the largest of these, so a subject sees few distinct shapes and
# compiles once per bucket. Snapping keeps the rank and every side of 0, 1, 2, 3 (zero-size
# and single-element slices, the smallest reductions), keeps sides equal where they were equal
# (``square_shapes``), and keeps each strategy's minimum (``min_side=2``, ``long_shapes``'
# 64, ``HALF_LONG``'s 1024), so every size class the suite draws is still drawn: N = 0, 1,
# small (2, 3, 5 per side, products of up to five sides), a power of two (64, 1024) and the
# block boundaries 2^p - 1 and 2^p + 1 (127, 1025, 4095: a tail of one lane, or all but one)
# past which tiled kernels go wrong, and the long half-precision reductions (1024..4095).
SIDE_BUCKETS = (0, 1, 2, 3, 5, 64, 127, 1024, 1025, 4095)
# Their default epsilons too: a compiler bakes epsilon into the generated code as a constant
# (torch.compile specializes on F.layer_norm's float eps: one compilation per epsilon). The
# favoured values and the two ends of ``epsilons``' range that matter (0.1: eps comparable
# to the variance of small-spread data; 1.0, its top). Properties that draw their own
# epsilons (epsilon sensitivity, eps = 0) keep them.
EPSILON_BUCKETS = FAVOURED_EPSILONS + (0.1, 1.0)
_BUCKETED: ContextVar[bool] = ContextVar("bn_shape_buckets", default=False)


@contextlib.contextmanager
def shape_buckets(on: bool = True):
    """Inside the block, ``bn_cases`` draws bucketed shapes (``SIDE_BUCKETS``) and, unless
    given an epsilon strategy, epsilons from ``EPSILON_BUCKETS``."""
    token = _BUCKETED.set(on)
    try:
        yield
    finally:
        _BUCKETED.reset(token)


def bucketed(shape) -> tuple[int, ...]:
    """``shape`` with each side snapped down to the largest ``SIDE_BUCKETS`` entry not above it."""
    return tuple(max(b for b in SIDE_BUCKETS if b <= s) for s in shape)


@_cached
def _draws_long_axis(min_axes: int, axes_sets) -> bool:
    """Whether ``default_shapes`` offers ``long_shapes`` (rank 2) for these arguments."""
    return min_axes <= 2 and (axes_sets is None or any(len(a) >= min_axes for a in axes_sets(2)))


@_cached
def _with_long_half(shape_strategy):
    """``shape_strategy`` or (as often) one long axis of ``HALF_LONG`` elements."""
    return st.one_of(shape_strategy, long_shapes(**HALF_LONG))


def is_safe(case: BNCase) -> bool:
    """Whether ``case`` is inside the error model's domain, for its norm and gamma."""
    return in_safe_domain(
        case.x, case.axes, case.gamma, case.offset, case.epsilon, accumulation=case.accumulation, norm=case.norm, output_dtype=case.output_dtype
    )


def assume_safe(case: BNCase) -> None:
    """Reject (``hypothesis.assume``) a case outside the error model's domain; properties call
    it on the transformed inputs they build (shifted, scaled, made constant)."""
    assume(is_safe(case))


def of_family(drawn, subject):
    """``drawn`` (a BNCase, or a PoisonedCase and its clean case) for ``subject``'s family:
    its norm (``bn_norm``) and scale convention (``bn_scale``). A case of the standard plain
    family is returned as drawn; another is kept only inside its own domain (item 8 of
    ``tolerance`` for RMSNorm; gamma = 1 + scale under ``one_plus``)."""
    norm, convention = getattr(subject, "norm", "standard"), getattr(subject, "scale_convention", "plain")
    x = drawn.case.x if isinstance(drawn, PoisonedCase) else drawn.x
    out = subject.output_dtype(x.dtype) if hasattr(subject, "output_dtype") else x.dtype.name
    output_dtype = out if out != x.dtype.name else None
    if (norm, convention, output_dtype) == ("standard", "plain", None):
        return drawn
    family = dict(norm=norm, scale_convention=convention, output_dtype=output_dtype)
    if isinstance(drawn, PoisonedCase):
        clean = of_family(drawn.clean, subject)
        return dataclasses.replace(drawn, case=replace(drawn.case, **family), clean=clean)
    case = replace(drawn, **family)
    if case.x.size and np.isfinite(case.x.astype(np.float64)).all():
        assume_safe(case)
    return case


def replace(case: BNCase, **changes) -> BNCase:
    """``case`` with some fields changed (a transformed input for a metamorphic law)."""
    return dataclasses.replace(case, **changes)


# Locations, in units of the output dtype's largest number, at which a mixed-precision case
# is shifted: x beyond y's range, y still of order 1 (float32 values in 6e4..7e4 into float16).
BEYOND_OUTPUT = (1.0, 1.07, 0.92, 16.0)


def beyond_output_range(case: BNCase):
    """For a case whose y dtype has a smaller range than x's (float32 x, float16 y): a
    strategy of the same case with x shifted by ``c`` = a multiple of y's largest number
    (``BEYOND_OUTPUT``), so that x lies beyond y's range while ``x - mu``, hence y, does not;
    kept inside the domain (``tolerance`` item 9). None when y's range is not smaller."""
    out = case.out_dtype
    if case.output_dtype is None or float(finfo(out).max) >= float(finfo(case.x.dtype).max):
        return None
    top = float(finfo(out).max)

    def shifted(k):
        with np.errstate(over="ignore"):
            return replace(case, x=(case.x.astype(np.float64) + k * top).astype(case.x.dtype))

    return _sampled(BEYOND_OUTPUT).map(shifted).filter(is_safe)


def draw_case(data, subject, dtype, label: str = "case", strategy=None, **kwargs) -> BNCase:
    """Draw a ``bn_cases(dtypes=(dtype,), axes_sets=subject.axes_sets, **kwargs)`` inside a
    test that got ``data=st.data()`` (subject and dtype come from pytest parametrization, so
    they cannot be known at decoration time). ``strategy`` replaces ``bn_cases`` entirely.
    ``bn_cases`` gets the subject's ``accumulation`` contract. Counts the example for the report. An input the subject declares it refuses
    (``Subject.refusal``, its ``bn_refuses``) is rejected: the refusal is checked once, by
    ``test_declared_refusal_is_a_clear_error``, not as a failure of every law."""
    if strategy is None:
        if subject is not None:
            kwargs = {"axes_sets": subject.axes_sets, "accumulation": subject.accumulation, **kwargs}
        strategy = bn_cases(dtypes=(dtype,), **kwargs)
    case = data.draw(strategy, label=label)
    if subject is not None and isinstance(case, (BNCase, PoisonedCase)):
        case = of_family(case, subject)
        beyond = beyond_output_range(case) if isinstance(case, BNCase) and case.x.size else None
        if beyond is not None and data.draw(_BOOLS, label="x beyond y's range"):
            case = data.draw(beyond, label="shifted beyond y's range")
    if getattr(subject, "refuses", False):
        drawn = getattr(case, "case", case)  # a PoisonedCase carries its BNCase
        assume(subject.refusal(drawn.x.shape, drawn.axes) is None)
    count_example()
    return case


@_cached
def square_shapes(*, min_dims: int = 2, max_dims: int = 4):
    """Shapes whose axes all have the same length (2..5): a transposed or mis-broadcast
    per-feature parameter has the right size and only its values can betray it."""
    return st.tuples(st.integers(2, 5), st.integers(min_dims, max_dims)).map(lambda t: (t[0],) * t[1])


@_cached
def spread_regimes():
    """Regimes in which every slice with N >= 2 has sigma > 0 and sigma^2 is far above the
    dtype's tiny (no constant slices, no tiny magnitudes)."""
    return regimes(kinds=("gaussian",), spreads=(1.0, 10.0, 1e-2))


@_cached
@st.composite
def epsilon_comparable_cases(draw, dtype="float32", axes_sets=None, accumulation="float32", locations=(0.0, 1.0, -3.0)):
    """Cases with sigma^2 comparable to epsilon (data = loc + sqrt(r eps) z, r in {1/4, 1, 4}):
    the regime where sigma^2/(sigma^2 + eps) is far from 1, so epsilon's place shows.
    ``locations=(0.0,)`` makes the mean of squares comparable to epsilon too (RMSNorm)."""
    eps = draw(st.sampled_from((1e-3, 1e-2, 1e-1, 1.0)))
    r = draw(st.sampled_from((1.0, 0.25, 4.0)))
    loc = draw(st.sampled_from(tuple(locations)))
    regime = Regime("gaussian", loc, math.sqrt(r * eps))
    return draw(
        bn_cases(
            dtypes=(dtype,),
            shape_strategy=shapes(max_dims=3),
            regime_strategy=st.just(regime),
            epsilon_strategy=st.just(eps),
            axes_sets=axes_sets,
            accumulation=accumulation,
        )
    )


# --------------------------------------------------------------------------------------
# Edge inputs: non-finite values, single-element slices, zero-size dimensions, huge values
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoisonedCase:
    """``case`` is ``clean`` with one element replaced by ``value`` (NaN or +-inf) at ``index``."""

    case: BNCase
    clean: BNCase
    index: tuple[int, ...]
    value: float

    def __repr__(self) -> str:
        return f"PoisonedCase(x{list(self.index)} = {self.value} in clean={self.clean!r})"

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis' printer of falsifying examples
        p.text(repr(self))

    @property
    def affected(self) -> np.ndarray:
        """Boolean mask (x's shape) of the poisoned slice: the elements that share the
        index's kept-axes coordinates."""
        x = self.case.x
        grids = np.indices(x.shape, sparse=True)
        mask = np.ones(x.shape, dtype=bool)
        for axis, i in enumerate(self.index):
            if axis not in self.case.axes:
                mask = mask & (grids[axis] == i)
        return mask


@_cached
@st.composite
def poisoned_cases(draw, dtype="float32", axes_sets=None, accumulation="float32"):
    """A safe case (small shapes) with one element set to NaN, +inf or -inf (shrinks to NaN
    at the first element)."""
    clean = draw(bn_cases(dtypes=(dtype,), shape_strategy=shapes(max_dims=4, max_side=5), axes_sets=axes_sets, accumulation=accumulation))
    index = tuple(draw(st.integers(0, d - 1)) for d in clean.x.shape)
    value = draw(_POISONS)
    x = clean.x.copy()
    x[index] = value
    return PoisonedCase(replace(clean, x=x), clean, index, value)


def with_constant_slices(case: BNCase) -> BNCase:
    """``case`` with every slice constant: x's first element of each slice, repeated over the
    slice (sigma^2 = 0 exactly, in every dtype)."""
    return replace(case, x=np.broadcast_to(first_of_each_slice(case.x, case.axes), case.x.shape).copy())


def _kept_only(case: BNCase, index) -> BNCase:
    """``case`` restricted to ``x[index]`` (a tuple of slices), with per-feature scale and
    offset restricted the same way on the axes where they are not broadcast."""

    def cut(p):
        if not isinstance(p, np.ndarray) or p.ndim == 0:
            return p
        lead = case.x.ndim - p.ndim
        return p[tuple(s if p.shape[i] > 1 else slice(None) for i, s in enumerate(index[lead:]))].copy()

    return replace(case, x=case.x[index].copy(), scale=cut(case.scale), offset=cut(case.offset))


@_cached
def single_element_cases(dtype="float32", axes_sets=None, accumulation="float32"):
    """Cases whose reduced axes all have size 1 (N = 1): the first element along each."""

    def one(case):
        return _kept_only(case, first_of_each_slice_index(case.x.ndim, case.axes))

    def safe(case):  # sigma^2 = 0 now: inv = 1/sqrt(eps) may push the products out of the domain
        return in_safe_domain(case.x, case.axes, case.scale, case.offset, case.epsilon, accumulation=case.accumulation)

    return bn_cases(dtypes=(dtype,), shape_strategy=shapes(max_dims=4), axes_sets=axes_sets, accumulation=accumulation).map(one).filter(safe)


@_cached
@st.composite
def zero_size_cases(draw, dtype="float32", axes_sets=None, accumulation="float32"):
    """Cases with one dimension of size 0, reduced (N = 0) or kept (no slices); shapes
    otherwise small. scale/offset per feature are cut to match."""
    case = draw(bn_cases(dtypes=(dtype,), shape_strategy=shapes(max_dims=4, max_side=4), axes_sets=axes_sets, accumulation=accumulation))
    axis = draw(st.integers(0, case.x.ndim - 1))
    return _kept_only(case, tuple(slice(0, 0) if a == axis else slice(None) for a in range(case.x.ndim)))


def _scaled(case: BNCase, k: int) -> BNCase:
    """``case`` with x multiplied by 2^k (exact unless it overflows)."""
    r = case.regime
    with np.errstate(over="ignore"):
        x = np.ldexp(case.x.astype(np.float64), k).astype(case.x.dtype)
        loc, spread = (float(np.ldexp(v, k)) for v in (r.location, r.spread))
    return replace(case, x=x, regime=Regime(r.kind, loc, spread))


def _largest_safe_exponent(case: BNCase) -> int:
    """The largest k >= 0 with ``case`` scaled by 2^k inside the safe domain (the model's
    conditions are monotone in k), by bisection."""
    x_max = float(np.max(np.abs(case.x.astype(np.float64))))
    if x_max == 0:
        return 0
    lo, hi = 0, max(0, math.ceil(math.log2(float(finfo(case.x.dtype).max)) - math.log2(x_max)))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if in_safe_domain(_scaled(case, mid).x, case.axes, case.scale, case.offset, case.epsilon, accumulation=case.accumulation):
            lo = mid
        else:
            hi = mid - 1
    return lo


@_cached
@st.composite
def huge_cases(draw, dtype="float32", axes_sets=None, accumulation="float32"):
    """Cases at the edge of the documented overflow limit (``tolerance.in_safe_domain``):
    a safe case, optionally made flat (every slice constant, so only the sum and the folded
    products limit it and |x| gets within a few powers of two of max/N), scaled by the
    largest power of two 2^k that keeps it safe, then backed off by 0..3 binades. Scaling
    by 2^k is exact, so the data keep their drawn pattern. Constant slices keep their drawn
    values in half precision too (``resolvable_constants=False``, so the scaled slices start
    from every drawn magnitude, not only from those below ``max_condition sqrt(eps)``):
    magnitudes are this strategy's point, and a large constant slice is where a one-pass
    variance in float32 goes negative (``E[x^2] - E[x]^2 ~ -2^-24 c^2 < -eps``) and returns
    NaN; there the folded form's bound is coarse (``u |c| |gamma| / sqrt(eps)``), but a NaN
    fails any bound."""
    case = draw(
        bn_cases(
            dtypes=(dtype,),
            shape_strategy=shapes(max_dims=4),
            regime_strategy=regimes(kinds=("gaussian", "integers", "constant_slices")),
            axes_sets=axes_sets,
            accumulation=accumulation,
            resolvable_constants=False,
        )
    )
    if draw(st.booleans()):
        case = with_constant_slices(case)
    k = max(0, _largest_safe_exponent(case) - draw(st.integers(0, 3)))
    huge = _scaled(case, k)
    assume_safe(huge)
    return huge


@_cached
def refused_cases(dtype, axes_sets, refusal):
    """Cases a subject declares it refuses (``refusal(shape, axes)`` not None; a subject's
    ``Subject.refusal``): drawn from single-element slices (N = 1) and from tiny shapes
    (sides 1..2, so that an input of one element in all comes up too), filtered. Only
    ``test_declared_refusal_is_a_clear_error`` draws them; ``draw_case`` rejects them."""
    candidates = st.one_of(
        single_element_cases(dtype, axes_sets),
        bn_cases(dtypes=(dtype,), shape_strategy=shapes(max_dims=3, max_side=2), axes_sets=axes_sets),
    )
    return candidates.filter(lambda case: refusal(case.x.shape, case.axes) is not None)
