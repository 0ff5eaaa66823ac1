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

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .checks import count_example
from .tolerance import finfo, in_safe_domain

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
    "values",
    "affine",
    "epsilons",
    "bn_cases",
    "default_shapes",
    "draw_case",
    "assume_safe",
    "replace",
    "square_shapes",
    "spread_regimes",
    "epsilon_comparable_cases",
]

DTYPES = ("float32", "float64", "float16", "bfloat16")
LOCATIONS = (0.0, 1.0, -1.0, 1e2, -1e2, 1e3, -1e3, -1e4)
SPREADS = (1.0, 1e-2, 10.0, 1e-4)
KINDS = ("gaussian", "integers", "constant_slices", "tiny")
FAVOURED_EPSILONS = (1e-3, 1e-5)


@dataclass(frozen=True)
class Regime:
    """How the data is made: ``location + spread * z`` with ``z`` of the given kind.

    kinds: ``gaussian`` (z ~ N(0, 1)); ``integers`` (integer-valued data: location plus
    integers in [-k, k], k = max(1, round(spread))); ``constant_slices`` (Gaussian, but
    about half of the slices are constant, sigma = 0); ``tiny`` (magnitudes near the
    dtype's smallest normal number, down into the subnormals; location ignored).
    """

    kind: str = "gaussian"
    location: float = 0.0
    spread: float = 1.0

    def __str__(self) -> str:
        return f"{self.kind}(loc={self.location:g}, spread={self.spread:g})"


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

    def kwargs(self, **overrides) -> dict:
        kw = dict(axes=self.axes, scale=self.scale, offset=self.offset, epsilon=self.epsilon, training=self.training)
        kw.update(overrides)
        return kw

    @property
    def n(self) -> int:
        """Elements per slice: the reduction size N."""
        return int(np.prod([self.x.shape[a] for a in self.axes]))

    def __repr__(self) -> str:
        def show(v):
            if isinstance(v, np.ndarray):
                if v.size <= 64:
                    return f"np.array({np.array2string(v.astype(np.float64), separator=', ', floatmode='unique', threshold=10**6)}, dtype='{v.dtype}')"
                return f"<{v.dtype} array {v.shape}, min {np.min(v.astype(np.float64)):.6g}, max {np.max(v.astype(np.float64)):.6g}>"
            return repr(v)

        return (
            f"BNCase(x={show(self.x)}, axes={self.axes}, scale={show(self.scale)}, "
            f"offset={show(self.offset)}, epsilon={self.epsilon!r}, training={self.training!r}, "
            f"regime={self.regime}, seed={self.seed}, shape={self.x.shape}, N={self.n})"
        )


def shapes(*, min_dims: int = 1, max_dims: int = 5, min_side: int = 1, max_side: int = 6):
    """Array shapes of rank ``min_dims..max_dims`` with every dimension in min_side..max_side
    (at most 6**5 = 7776 elements). Shrinks toward ``(min_side,)``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def long_shapes(*, min_n: int = 64, max_n: int = 4096, min_c: int = 1):
    """Shapes with one long axis for large reduction sizes: ``(n, c)`` with
    n in min_n..max_n and c in min_c..4, so that reducing over axis 0 has N = n."""
    return st.tuples(st.integers(min_n, max_n), st.integers(min_c, 4))


def reduced_axes(ndim: int, *, min_size: int = 1, max_size: int | None = None):
    """Non-empty sorted tuples of unique axes in ``range(ndim)``; shrinks toward ``(0,)``."""
    max_size = ndim if max_size is None else min(max_size, ndim)
    return st.lists(st.integers(0, ndim - 1), min_size=min_size, max_size=max_size, unique=True).map(
        lambda a: tuple(sorted(a))
    )


def axis_splits(axes: tuple[int, ...]):
    """Splits ``A = A1 | A2`` of a reduced-axis set into two non-empty disjoint sets."""
    if len(axes) < 2:
        raise ValueError(f"axis_splits needs at least two axes, got axes={axes!r}")
    return (
        st.lists(st.sampled_from(axes), min_size=1, max_size=len(axes) - 1, unique=True)
        .map(lambda a1: (tuple(sorted(a1)), tuple(a for a in axes if a not in a1)))
    )


def regimes(*, kinds=KINDS, locations=LOCATIONS, spreads=SPREADS):
    """Value regimes; shrink toward ``gaussian(loc=0, spread=1)``."""
    return st.builds(Regime, st.sampled_from(kinds), st.sampled_from(locations), st.sampled_from(spreads))


def _make_values(rng: np.random.Generator, shape, axes, dtype, regime: Regime) -> np.ndarray:
    loc, spread = regime.location, regime.spread
    if regime.kind == "integers":
        k = max(1, round(spread))
        x64 = round(loc) + rng.integers(-k, k + 1, size=shape).astype(np.float64)
    elif regime.kind == "tiny":
        fi = finfo(dtype)
        magnitude = float(fi.tiny) * rng.choice([2.0**20, 1.0, 2.0**-6])
        x64 = magnitude * rng.standard_normal(shape)
    else:
        x64 = loc + spread * rng.standard_normal(shape)
        if regime.kind == "constant_slices":
            kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
            constant = rng.random(kept) < 0.5
            level = loc + spread * rng.standard_normal(kept)
            x64 = np.where(constant, level, x64)
    return x64.astype(dtype)


@st.composite
def values(draw, shape, axes, dtype="float32", regime: Regime | None = None):
    """An array of ``shape`` and ``dtype`` in ``regime`` (drawn if not given); returns
    ``(x, regime, seed)``."""
    regime = draw(regimes()) if regime is None else regime
    seed = draw(st.integers(0, 2**32 - 1))
    return _make_values(np.random.default_rng(seed), shape, axes, np.dtype(dtype), regime), regime, seed


def _feature_shape(shape, axes, drop_leading: bool) -> tuple[int, ...]:
    kept = [1 if i in axes else d for i, d in enumerate(shape)]
    if drop_leading:
        while kept and kept[0] == 1:
            kept.pop(0)
    return tuple(kept)


@st.composite
def affine(draw, shape, axes, dtype="float32", *, role: str = "scale", per_feature: bool = False):
    """``scale`` (gamma) or ``offset`` (beta): a Python float, or a per-feature array of
    ``dtype`` with size 1 on every reduced axis (full rank, or with the leading size-1
    axes dropped as NumPy broadcasting allows). Scale magnitudes are in [0.1, 10] with
    either sign; offsets in [-10, 10]. Shrinks toward 1.0 (scale) or 0.0 (offset).
    ``per_feature=True`` always gives an array with distinct values per feature."""
    simple = (1.0, 2.0, 0.5, -1.5) if role == "scale" else (0.0, 1.0, -3.0, 0.25)
    if per_feature or draw(st.booleans()):
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        fshape = _feature_shape(shape, axes, draw(st.booleans()))
        if role == "scale":
            v = rng.choice([-1.0, 1.0], fshape) * np.exp(rng.uniform(math.log(0.1), math.log(10.0), fshape))
        else:
            v = rng.uniform(-10.0, 10.0, fshape)
        return np.asarray(v).astype(dtype)
    if draw(st.booleans()):
        mag = draw(st.floats(0.1, 10.0)) if role == "scale" else draw(st.floats(-10.0, 10.0))
        sign = draw(st.sampled_from([1.0, -1.0])) if role == "scale" else 1.0
        return sign * mag
    return draw(st.sampled_from(simple))


def epsilons(dtype="float32"):
    """epsilon in (0, 1]: 1e-3 and 1e-5 first, then any float from max(1e-12, the dtype's
    smallest normal number) up to 1 (1e-12 is the smallest epsilon in common use; below the
    smallest normal TF on CPU flushes epsilon to zero)."""
    lo = max(1e-12, float(finfo(dtype).tiny))
    return st.one_of(st.sampled_from(FAVOURED_EPSILONS), st.floats(lo, 1.0))


def default_shapes(min_axes: int = 1, axes_sets=None):
    """``bn_cases``' shapes: rank ``min_axes..5`` (sides 1..6), or one long axis (rank 2).
    With ``axes_sets`` (a subject's ``bn_axes``) only ranks at which the subject expresses an
    axis set of at least ``min_axes`` axes are drawn, by construction rather than by
    rejection (Keras' BatchNormalization has none at rank 1, and none with two reduced
    axes below rank 3: rejecting those shapes one by one trips Hypothesis' filter health
    check, on top of the float16 safe-domain rejections)."""
    if axes_sets is None:
        return st.one_of(shapes(min_dims=min_axes), long_shapes())
    ranks = [r for r in range(max(min_axes, 1), 6) if any(len(a) >= min_axes for a in axes_sets(r))]
    if not ranks:
        raise ValueError(f"axes_sets expresses no axis set of {min_axes} or more axes at ranks 1..5")
    small = shapes(min_dims=ranks[0], max_dims=ranks[-1])
    if len(ranks) < ranks[-1] - ranks[0] + 1:  # gaps: reject the ranks in between
        small = small.filter(lambda s: len(s) in ranks)
    return st.one_of(small, long_shapes()) if 2 in ranks else small


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
):
    """A whole call: dtype, shape, reduced axes, data, scale, offset, epsilon.

    Shapes are mostly small (rank 1..5, sides 1..6); sometimes one long axis
    (N up to 4096) for the large-reduction regime. ``axes_sets(ndim)``, if given, lists
    the axis sets to draw from (a subject's ``bn_axes``). With ``safe_domain`` (the default)
    only inputs inside the error model's domain are kept (``tolerance.in_safe_domain``:
    no intermediate of a correct evaluation order overflows the dtype).
    """
    dtype = np.dtype(draw(st.sampled_from(tuple(dtypes))))
    if shape_strategy is None:
        shape_strategy = default_shapes(min_axes, axes_sets)
    shape = draw(shape_strategy.filter(lambda s: len(s) >= min_axes))
    if axes_sets is None:
        axes = draw(reduced_axes(len(shape), min_size=min_axes))
    else:  # the subject can express only some axis sets
        allowed = [tuple(a) for a in axes_sets(len(shape)) if len(a) >= min_axes]
        assume(allowed)
        axes = draw(st.sampled_from(allowed))
    x, regime, seed = draw(values(shape, axes, dtype, draw(regimes() if regime_strategy is None else regime_strategy)))
    case = BNCase(
        x=x,
        axes=axes,
        scale=draw(affine(shape, axes, dtype, role="scale")),
        offset=draw(affine(shape, axes, dtype, role="offset")),
        epsilon=draw(epsilons(dtype) if epsilon_strategy is None else epsilon_strategy),
        training=training,
        regime=regime,
        seed=seed,
    )
    if safe_domain:
        assume_safe(case)
    return case


def assume_safe(case: BNCase) -> None:
    """Reject (``hypothesis.assume``) a case outside the error model's domain; properties call
    it on the transformed inputs they build (shifted, scaled, made constant)."""
    assume(in_safe_domain(case.x, case.axes, case.scale, case.offset, case.epsilon))


def replace(case: BNCase, **changes) -> BNCase:
    """``case`` with some fields changed (a transformed input for a metamorphic law)."""
    return dataclasses.replace(case, **changes)


def draw_case(data, subject, dtype, label: str = "case", strategy=None, **kwargs) -> BNCase:
    """Draw a ``bn_cases(dtypes=(dtype,), axes_sets=subject.axes_sets, **kwargs)`` inside a
    test that got ``data=st.data()`` (subject and dtype come from pytest parametrization, so
    they cannot be known at decoration time). ``strategy`` replaces ``bn_cases`` entirely.
    Counts the example for the report."""
    if strategy is None:
        strategy = bn_cases(dtypes=(dtype,), axes_sets=subject.axes_sets, **kwargs)
    case = data.draw(strategy, label=label)
    count_example()
    return case


def square_shapes(*, min_dims: int = 2, max_dims: int = 4):
    """Shapes whose axes all have the same length (2..5): a transposed or mis-broadcast
    per-feature parameter has the right size and only its values can betray it."""
    return st.tuples(st.integers(2, 5), st.integers(min_dims, max_dims)).map(lambda t: (t[0],) * t[1])


def spread_regimes():
    """Regimes in which every slice with N >= 2 has sigma > 0 and sigma^2 is far above the
    dtype's tiny (no constant slices, no tiny magnitudes)."""
    return regimes(kinds=("gaussian",), spreads=(1.0, 10.0, 1e-2))


@st.composite
def epsilon_comparable_cases(draw, dtype="float32", axes_sets=None):
    """Cases with sigma^2 comparable to epsilon (data = loc + sqrt(r eps) z, r in {1/4, 1, 4}):
    the regime where sigma^2/(sigma^2 + eps) is far from 1, so epsilon's place shows."""
    eps = draw(st.sampled_from((1e-3, 1e-2, 1e-1, 1.0)))
    r = draw(st.sampled_from((1.0, 0.25, 4.0)))
    loc = draw(st.sampled_from((0.0, 1.0, -3.0)))
    regime = Regime("gaussian", loc, math.sqrt(r * eps))
    return draw(
        bn_cases(
            dtypes=(dtype,),
            shape_strategy=shapes(max_dims=3),
            regime_strategy=st.just(regime),
            epsilon_strategy=st.just(eps),
            axes_sets=axes_sets,
        )
    )
