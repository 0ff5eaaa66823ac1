"""Shared pieces of the framework subjects (``pytorch``, ``jax_nn``, ``flax_linen``,
``onnxruntime_ops``, ``keras_backends``): importing an optional framework with a message
naming its extra, the layout every adapter uses, and the contract's affine step.

Layout. Every framework API reduces over a fixed part of its input (PyTorch
``batch_norm``: every axis but 1; ``layer_norm``: the trailing axes; ...). An adapter
reaches any reduced-axis set A of the contract by a transpose and a reshape: x's kept axes
go to the front (in order) and A to the back, ``kept_last(x, axes)`` returns that array as
``(K, *reduced sides)`` with K the product of the kept sides (1 if none) and ``undo``, which
maps a result of the same shape back to x's layout. Transposes and reshapes are exact, so
the adapter adds no rounding: what is checked is the framework's arithmetic.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import math

import numpy as np

__all__ = ["require", "install_hint", "library_version", "kept_last", "per_kept", "affine_after", "refuse_when", "FrameworkMissing"]


class FrameworkMissing(ImportError):
    """An optional framework is not installed; the message names the extra that installs it."""


def install_hint(module: str, extra: str) -> str:
    """``"tensorflow is not installed: pip install "bn-props[tensorflow]""``: what a missing
    framework's error or skip says."""
    return f'{module.split(".")[0]} is not installed: pip install "bn-props[{extra}]"'


def require(module: str, extra: str):
    """``import module``, or ``FrameworkMissing`` naming ``pip install "bn-props[extra]"``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise FrameworkMissing(f"this subject needs {install_hint(module, extra)} ({exc})") from exc


def library_version(distribution: str) -> str:
    """The installed version of a distribution (``torch``, ``jax``, ``flax``, ``onnxruntime``,
    ``keras``), or ``"not installed"``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def kept_last(x: np.ndarray, axes):
    """x transposed to (kept axes..., reduced axes...) and reshaped to ``(K, *reduced sides)``
    (K = product of the kept sides, 1 if none); returns ``(arranged, undo)``. ``undo(y)``
    maps an array of ``arranged``'s size back to x's shape and axis order."""
    kept = tuple(a for a in range(x.ndim) if a not in axes)
    perm = kept + tuple(axes)
    t = np.transpose(x, perm)
    k = math.prod(x.shape[a] for a in kept)
    inverse = np.argsort(perm)

    def undo(y):
        return np.transpose(np.asarray(y).reshape(t.shape), inverse)

    return np.ascontiguousarray(t).reshape((k,) + tuple(x.shape[a] for a in axes)), undo


def per_kept(v, shape, axes, dtype) -> np.ndarray:
    """The contract's ``scale``/``offset`` (a float, or an array with size 1 on every reduced
    axis) as a flat vector over the kept positions in C order (length K of ``kept_last``),
    rounded once from float64 to ``dtype``: a framework's per-channel weight when the kept
    positions are its channels."""
    a = np.asarray(v, dtype=np.float64)
    a = a.reshape((1,) * (len(shape) - a.ndim) + a.shape).squeeze(axis=tuple(axes))
    kept_shape = tuple(d for i, d in enumerate(shape) if i not in axes)
    return np.ascontiguousarray(np.broadcast_to(a, kept_shape).reshape(-1)).astype(dtype)


def affine_after(x_hat, scale, offset, dtype) -> np.ndarray:
    """``x_hat * scale + offset`` in ``dtype``, each parameter rounded once to ``dtype``: for
    APIs whose own weight and bias cannot hold the contract's per-feature parameters (a
    ``layer_norm`` weight is per reduced element). Two roundings, which the error model's
    affine step allows for."""
    d = np.dtype(dtype)
    p = lambda v: np.asarray(np.asarray(v, dtype=np.float64), dtype=d)  # noqa: E731
    return (np.asarray(x_hat).astype(d) * p(scale) + p(offset)).astype(d)


def refuse_when(predicate, message: str):
    """A ``bn_refuses(shape, axes)`` declaration: ``message`` (the error text the framework
    raises, matched as a substring) when ``predicate(shape, axes)``, else None."""

    def bn_refuses(shape, axes):
        return message if predicate(tuple(shape), tuple(axes)) else None

    bn_refuses.message = message
    return bn_refuses
