r"""Moving statistics of any subject with the stateful contract (``bn_stateful``, see
``bn_reference.subjects``): the laws, their error model, and the checks
(``properties/test_moving_statistics.py`` calls them on every subject providing it, and on
the real ``keras.layers.BatchNormalization`` in a ``keras.Model``;
``tests/test_moving_statistics_mutants.py`` on broken and mis-declared ones).

Conventions a subject declares (``bn_momentum``, ``bn_running_variance``); the case draws
``m`` in Keras' convention and passes the subject ``m`` (``"keras"``) or ``1 - m``
(``"torch"``), so both describe the same average; an ``"unbiased"`` running variance is fed
``N/(N - 1) var_A(x)`` (cases then have N >= 2).

The update (Keras convention, momentum ``m``), per feature, on each training-mode call::

    moving_mean <- m moving_mean + (1 - m) mean_A(x)
    moving_var  <- m moving_var  + (1 - m) var_A(x)          (biased: ddof = 0)

starting from ``moving_mean = 0``, ``moving_var = 1``. PyTorch writes the same average with
the opposite momentum, ``running <- (1 - m_t) running + m_t batch`` (``m_t = 1 - m``), and
feeds ``running_var`` the *unbiased* variance. Measured on Keras 3.15.1 / TF 2.21:
``BatchNormalization(momentum=0)`` after one training call on a (5, 3) float32 batch holds
``moving_variance = [6.311206, 1.2594854, 1.9406884]``; the batch's biased variances are
``[6.3112061, 1.2594854, 1.9406883]``, the unbiased ``[7.889, 1.574, 2.426]``: Keras uses the
biased variance (``tf.nn.moments``), as its source says.

Inference (``training=False`` or ``None``) normalizes with the moving statistics::

    y = (x - moving_mean) / sqrt(moving_var + eps) * gamma + beta

Error model (``u``, ``gamma_k``, ``E_mu``, ``E_var`` as in ``tolerance``).

1. One update ``fl(fl(a fl(m)) + fl(s fl(1 - m)))`` from a computed previous average ``a``
   (``|a - A| <= e``) and a computed batch statistic ``s`` (``|s - S| <= E``, ``E`` =
   ``E_mu`` or ``E_var`` of that batch): each of the two terms carries three roundings
   (the stored constant, the product, the sum), and each of the two products and the sum
   may be flushed to zero when subnormal (TF on CPU: ``0.01 * -1.5e-38`` gives 0), an
   absolute error below ``tiny`` each, so the new error is at most::

       e' = m e + (1 - m) E + gamma_3 (m (|A| + e) + (1 - m) (|S| + E)) + 3 tiny

   applied k times from ``e_0 = 0`` (the initial 0 and 1 are exact); the float64
   reference's own recursion is bounded by the same model at float64 and added. An
   unbiased running variance multiplies the computed variance by ``N/(N - 1)`` (the factor
   stored, the product: two roundings): ``E_u = E N/(N - 1) + gamma_2 |S| N/(N - 1)``
   replaces ``E``, and ``S N/(N - 1)`` replaces ``S``.

2. Inference with stored statistics (read back from the layer, so exact inputs): tolerance
   item 4 with ``E_mu = 0``, and item 3 with ``E_var = 0`` (only eps's storage), i.e.::

       B = |gamma x_hat| (e_inv + 4u) + 3u (|x| + |mm|) inv |gamma| (1 + e_inv)
         + 2u (|beta| + |y|) + tiny (2 inv |gamma| + |gamma| + 4)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from bn_reference.mathematics import checks
from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.layouts import C_ORDER, Layout
from bn_reference.mathematics.reference import batch_norm
from bn_reference.mathematics.tolerance import inv_relative_error  # tolerance item 3
from bn_reference.mathematics.tolerance import bound, finfo, flush_to_zero_floor, gamma, in_safe_domain, moment_error, unit_roundoff

__all__ = [
    "MovingCase",
    "moving_cases",
    "new_stateful",
    "stateful_cases",
    "stored",
    "expected_moving",
    "moving_bound",
    "inference_output",
    "inference_bound",
    "check_momentum_update",
    "check_inference_uses_moving_stats",
    "check_moving_statistics",
    "check_inference_output",
    "check_batch_statistics",
]

MOMENTA = (0.99, 0.9, 0.0, 0.3, 0.5)


@dataclass(frozen=True)
class MovingCase:
    """Training batches (same shape), a test batch, the Keras ``axis`` (the one kept axis),
    momentum, epsilon, and per-feature gamma/beta of shape (C,)."""

    batches: tuple
    x_test: np.ndarray
    axis: int
    momentum: float
    epsilon: float
    gamma: np.ndarray
    beta: np.ndarray
    layout: Layout = C_ORDER  # the memory layout of every batch the layer receives

    @property
    def axes(self) -> tuple[int, ...]:
        return tuple(a for a in range(self.x_test.ndim) if a != self.axis)

    def kept(self, v: np.ndarray) -> np.ndarray:
        """A (C,) vector reshaped to broadcast against a batch (size 1 on the reduced axes)."""
        return np.asarray(v, dtype=np.float64).reshape([-1 if a == self.axis else 1 for a in range(self.x_test.ndim)])

    def __repr__(self) -> str:
        return (
            f"MovingCase(shape={self.x_test.shape}, axis={self.axis}, k={len(self.batches)}, "
            f"momentum={self.momentum!r}, epsilon={self.epsilon!r}, gamma={self.gamma.tolist()}, beta={self.beta.tolist()}"
            + (f", layout={self.layout!r})" if self.layout != C_ORDER else ")")
        )


@st.composite
def moving_cases(draw, *, max_batches: int = 4, min_axis: int = 0, axes_sets=None, min_n: int = 1):
    """Shapes of rank 2..4 (sides 1..5; axis 0 of size >= 2 when ``min_axis`` > 0 so a model
    sees a real batch), the kept axis in ``min_axis..ndim-1`` (one whose complement is in a
    subject's ``axes_sets(ndim)`` if given), N >= ``min_n`` elements per slice, 1..max_batches
    batches each in its own value regime, all inside the error model's domain."""
    shape = draw(bst.shapes(min_dims=2, max_dims=4, max_side=5).filter(lambda s: min_axis == 0 or s[0] >= 2), label="shape")
    allowed = [
        k
        for k in range(min_axis, len(shape))
        if (axes_sets is None or tuple(a for a in range(len(shape)) if a != k) in [tuple(x) for x in axes_sets(len(shape))])
        and int(np.prod(shape)) // shape[k] >= min_n
    ]
    assume(allowed)
    axis = draw(st.sampled_from(allowed), label="axis")
    axes = tuple(a for a in range(len(shape)) if a != axis)
    k = draw(st.integers(1, max_batches), label="k")
    batches = tuple(draw(bst.values(shape, axes, "float32"))[0] for _ in range(k))
    x_test = draw(bst.values(shape, axes, "float32"), label="x_test")[0]
    kept = [1 if a in axes else d for a, d in enumerate(shape)]
    gamma_, beta_ = (
        np.broadcast_to(draw(bst.affine(shape, axes, "float32", role=role, per_feature=True), label=role), kept).reshape(-1)
        for role in ("scale", "offset")
    )
    case = MovingCase(
        batches=batches,
        x_test=x_test,
        axis=axis,
        momentum=draw(st.sampled_from(MOMENTA), label="momentum"),
        epsilon=draw(bst.epsilons("float32"), label="epsilon"),
        gamma=gamma_,
        beta=beta_,
        layout=draw(bst.layouts(len(shape)), label="layout"),
    )
    for b in (*batches, x_test):
        assume(in_safe_domain(b, axes, case.kept(gamma_), case.kept(beta_), case.epsilon))
    return case


def stateful_cases(subject, **kwargs):
    """``moving_cases`` for a stateful subject: its axis sets, N >= 2 for an unbiased running
    variance or a declared refusal of N = 1 (``bn_refuses``), other refused shapes rejected."""
    refusal = subject.refusal if getattr(subject, "refuses", False) else None
    one_refused = refusal is not None and refusal((2, 1), (1,)) is not None
    min_n = 2 if subject.conventions[1] == "unbiased" or one_refused else 1
    strategy = moving_cases(axes_sets=subject.axes_sets, min_n=min_n, **kwargs)
    return strategy if refusal is None else strategy.filter(lambda c: refusal(c.x_test.shape, c.axes) is None)


def _bessel(batch, axes) -> float:
    n = int(np.prod([batch.shape[a] for a in axes]))
    return n / (n - 1)


def expected_moving(batches, axes, momentum, *, unbiased: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(moving_mean, moving_var) of shape (C,) after the updates above (k >= 1 batches), in
    float64; ``unbiased``: the running variance is fed N/(N - 1) var_A(x)."""
    mm, mv = 0.0, 1.0
    for b in batches:
        x = b.astype(np.float64)
        mm = momentum * mm + (1 - momentum) * x.mean(axis=axes)
        mv = momentum * mv + (1 - momentum) * x.var(axis=axes) * (_bessel(b, axes) if unbiased else 1.0)
    return np.asarray(mm), np.asarray(mv)


def _ema_error(batches, axes, m, dtype, unbiased=False):
    u, tiny = unit_roundoff(dtype), float(finfo(dtype).tiny)
    g3 = float(gamma(3, u))
    a_m, a_v, e_m, e_v = 0.0, 1.0, 0.0, 0.0
    for b in batches:
        me = moment_error(b, axes, dtype)
        s_m, s_v = me.mu.reshape(-1), me.sigma2.reshape(-1)
        big_m, big_v = me.mean.reshape(-1), me.var.reshape(-1)
        if unbiased:  # item 1: the factor N/(N - 1), stored and multiplied
            f = _bessel(b, axes)
            s_v, big_v = s_v * f, big_v * f + float(gamma(2, u)) * np.abs(s_v * f)
        e_m = m * e_m + (1 - m) * big_m + g3 * (m * (abs(a_m) + e_m) + (1 - m) * (np.abs(s_m) + big_m)) + 3 * tiny
        e_v = m * e_v + (1 - m) * big_v + g3 * (m * (abs(a_v) + e_v) + (1 - m) * (np.abs(s_v) + big_v)) + 3 * tiny
        a_m, a_v = m * a_m + (1 - m) * s_m, m * a_v + (1 - m) * s_v
    return e_m, e_v


def moving_bound(batches, axes, momentum, dtype=np.float32, *, unbiased: bool = False):
    """Bounds on |moving_mean - expected| and |moving_var - expected| (item 1), model at
    ``dtype`` plus model at float64 (the reference)."""
    e = _ema_error(batches, axes, momentum, np.dtype(dtype), unbiased)
    e64 = _ema_error(batches, axes, momentum, np.dtype(np.float64), unbiased)
    return e[0] + e64[0], e[1] + e64[1]


def inference_output(x, mean, var, gamma_, beta, epsilon) -> np.ndarray:
    """y = (x - mean) / sqrt(var + eps) * gamma + beta in float64 (arguments broadcastable)."""
    return (x.astype(np.float64) - mean) / np.sqrt(var + epsilon) * gamma_ + beta


def _inference_model(x64, mean, var, g, beta, eps, dtype):
    fi = finfo(dtype)
    u, tiny = unit_roundoff(dtype), float(fi.tiny)
    denom = var + eps
    with np.errstate(divide="ignore"):
        inv = 1 / np.sqrt(denom)
    e = inv_relative_error(np.broadcast_to(u * eps + float(fi.smallest_subnormal), np.shape(denom)), denom, u)
    ag = np.abs(g)
    with np.errstate(invalid="ignore"):
        x_hat = (x64 - mean) * inv
        y = x_hat * g + beta
        b = (
            np.abs(g * x_hat) * (e + 4 * u)
            + 3 * u * (np.abs(x64) + np.abs(mean)) * inv * ag * (1 + e)
            + 2 * u * (np.abs(beta) + np.abs(y))
            + flush_to_zero_floor(tiny, inv, ag)
        )
    return np.where(np.isnan(b), np.inf, b)


def inference_bound(x, mean, var, gamma_, beta, epsilon, dtype=np.float32) -> np.ndarray:
    """Item 2: the bound for inference with given (stored, exact) statistics."""
    x64 = np.asarray(x, dtype=np.float64)
    args = (x64, mean, var, gamma_, beta, float(epsilon))
    return _inference_model(*args, np.dtype(dtype)) + _inference_model(*args, np.dtype(np.float64))


# --------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------


def check_moving_statistics(layer, batches, case: MovingCase, *, law: str, unbiased: bool = False, read=None) -> None:
    mm, mv = (read or stored)(layer)
    want_m, want_v = expected_moving(batches, case.axes, case.momentum, unbiased=unbiased)
    tol_m, tol_v = moving_bound(batches, case.axes, case.momentum, unbiased=unbiased)
    var = "N/(N-1) var_A(x) (unbiased)" if unbiased else "var_A(x) (biased)"
    checks.assert_within(mm, want_m, tol_m, law=f"{law}: moving_mean = m moving_mean + (1 - m) mean_A(x)")
    checks.assert_within(mv, want_v, tol_v, law=f"{law}: moving_var = m moving_var + (1 - m) {var}")


def check_inference_output(y, layer, case: MovingCase, *, law: str, read=None) -> None:
    mm, mv = (case.kept(s) for s in (read or stored)(layer))
    g, b = case.kept(case.gamma), case.kept(case.beta)
    want = inference_output(case.x_test, mm, mv, g, b, case.epsilon)
    tol = inference_bound(case.x_test, mm, mv, g, b, case.epsilon)
    checks.assert_within(np.asarray(y), want, tol, law=f"{law}: y = (x - moving_mean)/sqrt(moving_var + eps) gamma + beta", x=case.x_test)


def check_batch_statistics(y, case: MovingCase, *, law: str) -> None:
    g, b = case.kept(case.gamma), case.kept(case.beta)
    want = batch_norm(case.x_test, case.axes, g, b, case.epsilon, dtype=np.float64)
    tol = bound(case.x_test, case.axes, g, b, case.epsilon)
    checks.assert_within(np.asarray(y), want, tol, law=f"{law}: y normalized with the batch's own moments", x=case.x_test)


def _as_array(v) -> np.ndarray:
    """A stored statistic (ndarray, tf.Variable, torch tensor, jax array) as float64."""
    if hasattr(v, "detach"):  # torch
        v = v.detach().cpu().numpy()
    elif hasattr(v, "numpy"):  # tf.Variable / tf.Tensor
        v = v.numpy()
    return np.asarray(v, dtype=np.float64)


def stored(layer, channels: int | None = None):
    """``(moving_mean, moving_variance)`` of a stateful subject's object, flattened to one value
    per kept position (the contract allows any shape of that size)."""
    out = []
    for name in ("moving_mean", "moving_variance"):
        v = _as_array(getattr(layer, name)).reshape(-1)
        if channels is not None and v.size != channels:
            raise AssertionError(f"{name} holds {v.size} values; the contract requires one per kept position ({channels})")
        out.append(v)
    return tuple(out)


def new_stateful(subject, case: MovingCase):
    """``subject.bn_stateful(axes=, momentum=, epsilon=, scale=, offset=, dtype="float32")``
    with the case's per-feature gamma/beta in the contract's form (size 1 on the reduced
    axes) and its momentum ``m`` in the subject's declared convention (``1 - m`` for
    ``"torch"``)."""
    convention, _ = subject.conventions
    momentum = case.momentum if convention == "keras" else 1.0 - case.momentum
    scale, offset = (case.kept(v).astype(np.float32) for v in (case.gamma, case.beta))
    return subject.stateful(axes=case.axes, momentum=momentum, epsilon=case.epsilon, scale=scale, offset=offset, dtype="float32")


def _trained(subject, case: MovingCase):
    layer = new_stateful(subject, case)
    for b in case.batches:
        layer(case.layout.apply(b), training=True)
    return layer


def check_momentum_update(subject, case: MovingCase) -> None:
    """After k training-mode calls the moving statistics are the k-fold update in the
    subject's declared conventions (``bn_momentum``, ``bn_running_variance``)."""
    layer = _trained(subject, case)
    read = lambda obj: stored(obj, case.gamma.size)  # noqa: E731
    unbiased = subject.conventions[1] == "unbiased"
    check_moving_statistics(layer, case.batches, case, law=f"after {len(case.batches)} training calls", unbiased=unbiased, read=read)


def check_inference_uses_moving_stats(subject, case: MovingCase, training) -> None:
    """After the training calls, ``layer(x, training=training)`` (False or None) normalizes
    with the moving statistics the layer holds, and leaves them unchanged."""
    layer = _trained(subject, case)
    read = lambda obj: stored(obj, case.gamma.size)  # noqa: E731
    before = read(layer)
    y = layer(case.layout.apply(case.x_test), training=training)
    check_inference_output(y, layer, case, law=f"layer(x, training={training})", read=read)
    after = read(layer)
    assert all(np.array_equal(p, q) for p, q in zip(before, after)), f"training={training} changed the moving statistics"
