"""Gradient adapters: a subject's ``vjp`` for free from a framework's automatic differentiation.

The gradient contract (``bn_reference.subjects``)::

    vjp(x, dy, *, axes, scale, offset, epsilon) -> (dx, dscale, doffset)

Each builder takes the subject's forward pass written on the framework's tensors,

    forward(x, scale, offset, *, axes, epsilon) -> y            (training mode)

with ``scale``/``offset`` given as tensors of x's dtype and of the shapes the contract
received (a Python float becomes a 0-d tensor), and returns that ``vjp``: the framework's
vector-Jacobian product with ``dy`` for the three inputs, as NumPy (``dx`` in x's dtype,
``dscale``/``doffset`` in the shapes given, a float for a float). Attach it with
``fn.vjp = torch_vjp(forward)`` or ``supports(..., vjp=torch_vjp(forward))``.

* ``tape_vjp``: TensorFlow, ``tf.GradientTape`` (constants watched with ``tape.watch``);
* ``torch_vjp``: PyTorch, ``torch.autograd.grad`` (any ``torch.autograd.Function``'s own
  ``backward`` is what it runs);
* ``jax_vjp``: JAX, ``jax.vjp`` (a ``jax.custom_vjp`` rule is what it runs).

The frameworks are imported on first use only, so a module attaching an adapter imports
without them.
"""
from __future__ import annotations

import numpy as np

__all__ = ["tape_vjp", "torch_vjp", "jax_vjp", "as_given"]


def as_given(grad, like):
    """A parameter's gradient in the form the contract wants: a Python float for a float
    parameter, else an ndarray of the parameter's shape."""
    g = np.asarray(grad)
    if np.ndim(like) == 0 and not isinstance(like, np.ndarray):
        return float(g.astype(np.float64).sum())
    return g.reshape(np.shape(like))


def _param64(v):
    return np.asarray(v, dtype=np.float64)


def tape_vjp(forward):
    """``vjp`` through ``tf.GradientTape``: ``forward(t, scale, offset, *, axes, epsilon)``
    on ``tf.Tensor``s."""

    def vjp(x, dy, *, axes, scale, offset, epsilon):
        from bn_reference.subjects._tf import tf

        x = np.asarray(x)
        t = tf.constant(x)
        g, b = (tf.constant(_param64(v).astype(x.dtype)) for v in (scale, offset))
        with tf.GradientTape() as tape:
            tape.watch([t, g, b])
            y = forward(t, g, b, axes=tuple(axes), epsilon=epsilon)
        dx, dg, db = tape.gradient(
            y, [t, g, b], output_gradients=tf.constant(np.asarray(dy, dtype=x.dtype)), unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        return dx.numpy().astype(x.dtype), as_given(dg.numpy(), scale), as_given(db.numpy(), offset)

    vjp.__doc__ = f"tf.GradientTape vector-Jacobian product of {getattr(forward, '__qualname__', forward)!s}"
    return vjp


_TORCH_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "bfloat16": "bfloat16"}


def _to_torch(a, dtype_name):
    import torch

    if dtype_name == "bfloat16":  # NumPy has no bfloat16: through float32, exactly
        return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float32))).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a).astype(dtype_name)))


def _from_torch(t, dtype):
    import torch

    if t.dtype == torch.bfloat16:
        return t.detach().to(torch.float32).numpy().astype(dtype)
    return t.detach().numpy().astype(dtype)


def torch_vjp(forward):
    """``vjp`` through ``torch.autograd.grad``: ``forward(x, scale, offset, *, axes,
    epsilon)`` on ``torch.Tensor``s (CPU)."""

    def vjp(x, dy, *, axes, scale, offset, epsilon):
        import torch

        x = np.asarray(x)
        name = _TORCH_DTYPES[x.dtype.name]
        t = _to_torch(x, name).requires_grad_(True)
        g, b = (_to_torch(_param64(v), name).requires_grad_(True) for v in (scale, offset))
        y = forward(t, g, b, axes=tuple(axes), epsilon=epsilon)
        dx, dg, db = torch.autograd.grad(y, (t, g, b), grad_outputs=_to_torch(dy, name), allow_unused=True)
        zero = torch.zeros_like
        dx, dg, db = (zero(p) if d is None else d for d, p in ((dx, t), (dg, g), (db, b)))
        return _from_torch(dx, x.dtype), as_given(_from_torch(dg, x.dtype), scale), as_given(_from_torch(db, x.dtype), offset)

    vjp.__doc__ = f"torch.autograd vector-Jacobian product of {getattr(forward, '__qualname__', forward)!s}"
    return vjp


def jax_vjp(forward, *, jit: bool = True):
    """``vjp`` through ``jax.vjp``: ``forward(x, scale, offset, *, axes, epsilon)`` on JAX
    arrays (CPU; float64 needs ``jax_enable_x64``). With ``jit`` the pullback is one
    ``jax.jit`` (``axes`` static; compiled once per shape, dtype and axes)."""
    state = {}

    def pullback(x, g, b, dy, axes, epsilon):
        import jax

        _, back = jax.vjp(lambda t, s, o: forward(t, s, o, axes=axes, epsilon=epsilon), x, g, b)
        return back(dy)

    def vjp(x, dy, *, axes, scale, offset, epsilon):
        import jax
        import jax.numpy as jnp

        if "run" not in state:
            state["run"] = jax.jit(pullback, static_argnames=("axes",)) if jit else pullback
        x = np.asarray(x)
        g, b = (jnp.asarray(_param64(v).astype(x.dtype)) for v in (scale, offset))
        dx, dg, db = state["run"](jnp.asarray(x), g, b, jnp.asarray(np.asarray(dy, dtype=x.dtype)), axes=tuple(axes), epsilon=epsilon)
        return np.asarray(dx).astype(x.dtype), as_given(np.asarray(dg), scale), as_given(np.asarray(db), offset)

    vjp.__doc__ = f"jax.vjp vector-Jacobian product of {getattr(forward, '__qualname__', forward)!s}"
    return vjp
