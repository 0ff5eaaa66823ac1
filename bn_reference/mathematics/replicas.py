r"""Statistics across replicas: synchronized batch norm, its shards and its error model.

The contract (``bn_replicas = R``): the batch is split into R shards along the FIRST
reduced axis ``a = axes[0]`` and the subject is called once with all of them::

    f(shards, *, axes, scale, offset, epsilon, training) -> [y_1, ..., y_R]

``shards`` a list of R NumPy arrays of one rank and dtype, equal on every axis but ``a``
(a shard may be empty along ``a``: a replica with no examples); ``axes`` the reduced axes
of the whole batch; ``y_i`` has shard i's shape and dtype. ``training=True``: every
replica normalizes with the moments of the WHOLE batch, ``concat_a(y_i) = BN(concat_a(
shards))``; ``False``/``None``: each shard comes back unchanged.

The merge bound. A correct subject computes each shard's moments (``m_i``, ``v_i``) as a
single-device kernel would, merges them (an all-gather of ``(n_i, m_i, v_i)`` and Chan's
formula, or an all-reduce of sums), and normalizes every shard with the merged ``(m, v)``.
Per slice, with ``w_i = n_i / n`` over the non-empty shards (an empty shard has weight 0
and no moments: it must not enter the merge), exact shard statistics ``mu_i``,
``var_i``, exact whole ones ``mu = sum w_i mu_i``, ``var = sum w_i var_i + sum w_i
(mu_i - mu)^2`` (the law of total variance):

1. Each shard's moments: ``|m_i - mu_i| <= E_i``, ``|v_i - var_i| <= V_i``, from
   ``tolerance.moment_error`` of the shard (items 1, 2 and 6; ``V_i`` the variance as it
   enters ``var + eps``, ``var_acc``). ``E = max E_i``.
2. The merged mean, exactly evaluated from the ``m_i``: ``|sum w_i m_i - mu| <= sum w_i
   E_i``. Its evaluation in the accumulation dtype (unit roundoff ``v``): Chan's step
   ``m <- m_a + (m_b - m_a) n_b / n`` rounds at most 5 times on quantities of size at most
   ``|m_a| + |m_b - m_a| <= 3 M`` (``M = max|x| + E`` bounds every computed mean), and an
   earlier step's error is carried with a weight ``n_a / n <= 1``; an all-reduce of the
   shards' sums adds the R sums (R - 1 roundings on at most ``n max|x|``) and divides once.
   Both are within ``R_m = gamma_{7R}(v) M`` over R - 1 merge steps. So
   ``E_m = sum w_i E_i + R_m``.
3. The merged variance, exactly evaluated from the computed moments: ``sum w_i v_i`` is off
   by ``sum w_i V_i``; the between-shard term ``sum w_i (m_i - m)^2`` uses deviations
   ``d_i = m_i - m`` within ``D = E + E_m`` of the exact ``delta_i = mu_i - mu``, and
   ``|d_i^2 - delta_i^2| <= 2 |delta_i| D + D^2``: at most ``2 s D + D^2`` in the weighted
   sum, ``s = max |mu_i - mu|`` (``laws.between_chunks_error``, the same term
   ``laws.check_parallel_merge`` bounds with computed means). Chan's variance step forms
   ``(n_a v_a + n_b v_b + delta^2 n_a n_b / n) / n`` from non-negative terms with at most
   8 roundings each and carries the earlier result with weight ``n_a / n``: relative error
   at most ``gamma_{8R}(v)`` over R - 1 steps. So
   ``E_v = sum w_i V_i + 2 s D + D^2 + gamma_{8R}(v) (var + sum w_i V_i + 2 s D + D^2)``.
4. Half precision (item 6): the merged float32 mean is rounded to x's dtype for the
   elementwise stage, ``E_mu = E_m + min(u (|mu| + E_m), d(mu) + E_m) + tiny`` (item 6's
   rounding of a float32 mean); the merged variance enters ``var + eps`` in float32.
   (Each ``E_i`` of item 6 already includes that rounding for the shard's mean: a
   subject that merges float32 means is inside the bound with room to spare.)
5. The output: item 4 of ``tolerance`` with ``E_mu``, ``E_v`` in place of one
   reduction's moment errors (``tolerance.bound(..., moments=...)``), plus the float64
   reference's own error. Nothing else differs from a single-device kernel: the
   elementwise stage is the same per element.

What it rejects: a merge that averages the shards' variances and forgets ``sum w_i
(m_i - m)^2`` (off by the between-shard variance: shards of different means); a merge
that weights the shards equally (off by ``sum (w_i - 1/R') m_i``: shards of different
sizes and means); an empty replica's moments in the merge (a mean over no element is NaN:
every output NaN); unsynchronized replicas (each shard's own moments).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from bn_reference.mathematics import checks
from bn_reference.mathematics.describe import describe_value
from bn_reference.mathematics.laws import between_chunks_error, call_with, expected_output
from bn_reference.mathematics.strategies import BNCase, draw_case
from bn_reference.mathematics.tolerance import (
    MomentError,
    accumulation_dtype,
    bound,
    finfo,
    gamma,
    moment_error,
    times,
    unit_roundoff,
)
from bn_reference.mathematics.validation import check_affine, check_epsilon, check_training, check_x, normalize_axes

__all__ = [
    "ReplicaCase",
    "shard_sizes",
    "draw_replica_case",
    "split",
    "check_replica_call",
    "merged_moment_error",
    "replica_bound",
    "call_replicas",
    "outputs_of",
    "check_merge",
    "check_split_independence",
]


def split(x: np.ndarray, axis: int, sizes) -> list[np.ndarray]:
    """``x`` cut along ``axis`` into consecutive shards of ``sizes`` (zeros allowed)."""
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@dataclass(frozen=True)
class ReplicaCase:
    """A drawn call of a replicas subject: the whole batch (``case``) and the shard sizes
    along its first reduced axis."""

    case: BNCase
    sizes: tuple[int, ...]

    @property
    def axis(self) -> int:
        return self.case.axes[0]

    def shards(self, sizes=None) -> list[np.ndarray]:
        """The shards, each a fresh array in the case's memory layout (what the subject gets)."""
        return [self.case.laid_out(s) for s in split(self.case.x, self.axis, self.sizes if sizes is None else sizes)]

    def __repr__(self) -> str:
        return f"ReplicaCase(sizes={describe_value(self.sizes)} along axis {self.axis}, case={self.case!r})"

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis' printer of falsifying examples
        p.text(repr(self))


@st.composite
def shard_sizes(draw, length: int, replicas: int):
    """R non-negative sizes summing to ``length``, from R - 1 sorted cut points: as often
    (when ``length >= R``) distinct cuts in 1..length-1, every replica holding examples, as
    any cuts in 0..length (repeated cuts and cuts at the ends give empty shards; with
    R > length some shard is always empty). Measured on the default shapes (500 derandomized
    draws): an empty shard in 50% of them at R = 2, 61% at R = 3 (71% and 87% with any cuts
    alone); non-empty shards of unequal sizes in 46%. Shrinks toward non-empty shards, then
    toward every element in the last shard."""
    k = replicas - 1
    anywhere = st.lists(st.integers(0, length), min_size=k, max_size=k)
    if length >= replicas:
        anywhere = st.one_of(st.lists(st.integers(1, length - 1), min_size=k, max_size=k, unique=True), anywhere)
    cuts = sorted(draw(anywhere))
    edges = [0, *cuts, length]
    return tuple(b - a for a, b in zip(edges, edges[1:]))


def draw_replica_case(data, subject, dtype, label: str = "case") -> ReplicaCase:
    """A whole batch drawn as for any subject (``strategies.draw_case``: shapes, axes, data,
    layouts, the subject's contract), then its split into ``subject.replicas`` shards."""
    case = draw_case(data, subject, dtype, label=label)
    sizes = data.draw(shard_sizes(case.x.shape[case.axes[0]], subject.replicas), label="shard sizes")
    _cover(sizes)
    return ReplicaCase(case, sizes)


def _cover(sizes) -> None:
    if 0 in sizes:
        checks.cover("replicas: an empty shard")
    if len({s for s in sizes if s}) > 1:
        checks.cover("replicas: shards of unequal sizes")


def check_replica_call(shards, replicas: int, axes, scale, offset, epsilon, training):
    """Validate a replicas call (errors name the argument): ``shards`` a list or tuple of
    ``replicas`` arrays of one floating dtype and rank, equal on every axis but the first
    reduced one; then the contract's checks on the whole batch's shape. Returns ``(shards,
    axes, epsilon, normalize?)``."""
    if not isinstance(shards, (list, tuple)):
        raise TypeError(f"shards must be a list of {replicas} numpy arrays, got {type(shards).__name__}")
    if len(shards) != replicas:
        raise ValueError(f"shards must hold {replicas} arrays (bn_replicas = {replicas}), got {len(shards)}")
    for i, s in enumerate(shards):
        try:
            check_x(s)
        except TypeError as exc:
            raise TypeError(f"shards[{i}]: {exc}") from None
    first = shards[0]
    axes = normalize_axes(axes, first.ndim)
    a = axes[0]
    for i, s in enumerate(shards):
        if s.dtype != first.dtype or s.ndim != first.ndim or any(s.shape[k] != first.shape[k] for k in range(s.ndim) if k != a):
            raise ValueError(
                f"shards[{i}] is {s.dtype} {s.shape}, shards[0] {first.dtype} {first.shape}: shards must share dtype and "
                f"shape except along the first reduced axis {a}"
            )
    whole = list(first.shape)
    whole[a] = sum(s.shape[a] for s in shards)
    check_affine("scale", scale, tuple(whole), axes)
    check_affine("offset", offset, tuple(whole), axes)
    return list(shards), axes, check_epsilon(epsilon), check_training(training)


def merged_moment_error(x: np.ndarray, axes, sizes, dtype=None, accumulation: str = "float32") -> MomentError:
    """``E_mu`` and ``E_v`` (``var_acc``) of moments merged from the shards of ``x`` cut
    along ``axes[0]`` into ``sizes`` (module docstring, items 1-4), per slice."""
    dtype = np.dtype(dtype if dtype is not None else x.dtype)
    axes = tuple(axes)
    shards = [s for s in split(x, axes[0], sizes) if s.shape[axes[0]]]
    errors = [moment_error(s, axes, dtype, accumulation) for s in shards]
    n = sum(e.n for e in errors)
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=axes, keepdims=True)
    var = np.square(x64 - mu).mean(axis=axes, keepdims=True)
    acc = accumulation_dtype(dtype, accumulation)
    v = unit_roundoff(acc)
    r = len(shards)
    e_max = np.max([e.mean for e in errors], axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        x_max = np.abs(x64).max(axis=axes, keepdims=True)
        rounding = times(gamma(7 * r, v), x_max + e_max)  # item 2: R_m
        e_m = sum(e.n * e.mean for e in errors) / n + rounding
        s = np.max([np.abs(e.mu - mu) for e in errors], axis=0)
        within = sum(e.n * e.var_acc for e in errors) / n + between_chunks_error(s, e_max + e_m)  # item 3
        e_v = within + times(gamma(8 * r, v), var + within)
        e_mu = e_m
        if acc != dtype and accumulation != "float32-once":  # item 4: the merged mean rounded to x's dtype
            u, tiny = unit_roundoff(dtype), float(finfo(dtype).tiny)
            off_grid = np.abs(mu - mu.astype(dtype).astype(np.float64))
            e_mu = e_m + np.minimum(u * (np.abs(mu) + e_m), np.where(np.isfinite(off_grid), off_grid, np.inf) + e_m) + tiny
    return MomentError(mean=e_mu, var=e_v, mu=mu, sigma2=var, n=n, var_acc=e_v)


def replica_bound(case: BNCase, sizes) -> np.ndarray:
    """The per-element bound on |concat(y_i) - BN(x)| for a correct replicas subject (item 5)."""
    merged = merged_moment_error(case.x, case.axes, sizes, case.x.dtype, case.accumulation)
    return bound(case.x, case.axes, case.scale, case.offset, case.epsilon, case.x.dtype, case.accumulation, moments=merged)


def call_replicas(subject, rcase: ReplicaCase, sizes=None, *, label: str | None = None, shards=None, **overrides):
    """Call the subject on the shards of ``rcase`` (``sizes``: another split of the same
    batch; ``shards``: these very arrays), recorded as one call on the whole batch named by
    its split (the failure report and the repro), timed and limited in time."""
    __tracebackhide__ = True
    sizes = tuple(rcase.sizes if sizes is None else sizes)
    shards = rcase.shards(sizes) if shards is None else shards
    label = label or f"BN(shards of sizes {list(sizes)} along axis {rcase.axis})"
    return call_with(subject, shards, rcase.case, label=label, record=rcase.case.x, shards=(rcase.axis, sizes), **overrides)


def outputs_of(out, rcase: ReplicaCase, sizes=None) -> list:
    """The subject's R outputs, checked to be R (a list or tuple), each of its shard's shape
    (the contract test checks their type and dtype too)."""
    __tracebackhide__ = True
    sizes = tuple(rcase.sizes if sizes is None else sizes)
    if not isinstance(out, (list, tuple)) or len(out) != len(sizes):
        got = f"{type(out).__name__} of {len(out)}" if isinstance(out, (list, tuple)) else type(out).__name__
        raise AssertionError(f"replicas contract: expected a list of {len(sizes)} outputs (one per shard), got {got}")
    shapes = [s.shape for s in split(rcase.case.x, rcase.axis, sizes)]
    for i, (y, shape) in enumerate(zip(out, shapes)):
        if np.shape(y) != shape:
            raise AssertionError(f"replicas contract: output {i} has shape {np.shape(y)}, its shard {shape}")
    return list(out)


def _concatenated(out, rcase: ReplicaCase, sizes=None) -> np.ndarray:
    return np.concatenate([checks.as_output(y) for y in outputs_of(out, rcase, sizes)], axis=rcase.axis)


MERGE_LAW = "synchronized batch norm: the replicas' outputs, concatenated, = BN of the concatenated batch"
SPLIT_LAW = "synchronized batch norm: the output does not depend on how the batch is split"


def check_merge(out, rcase: ReplicaCase) -> None:
    """``|concat(y_i) - BN(x)| <= B_merged`` elementwise (module docstring, item 5)."""
    __tracebackhide__ = True
    checks.assert_within(
        _concatenated(out, rcase), expected_output(rcase.case), replica_bound(rcase.case, rcase.sizes),
        law=MERGE_LAW, x=rcase.case.x, got="concat of the replicas' outputs", want="float64 reference",
    )


def check_split_independence(out_a, out_b, rcase: ReplicaCase, sizes_b) -> None:
    """Two splits of one batch: each concatenation is within its merged bound of the exact
    BN (item 5), so they are within the sum of the two bounds of each other."""
    __tracebackhide__ = True
    tol = replica_bound(rcase.case, rcase.sizes) + replica_bound(rcase.case, sizes_b)
    checks.assert_within(
        _concatenated(out_a, rcase), _concatenated(out_b, rcase, sizes_b), tol, law=SPLIT_LAW, x=rcase.case.x,
        got=f"concat of BN(shards {list(rcase.sizes)})", want=f"concat of BN(shards {list(sizes_b)})",
    )
