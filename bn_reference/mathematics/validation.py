"""Argument checks shared by the reference and the built-in subjects.

Every check raises with a message that names the offending argument, so bad input
never turns into a silently wrong answer.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

__all__ = [
    "check_x",
    "normalize_axes",
    "check_affine",
    "check_epsilon",
    "check_training",
    "check_mask",
    "NORMS",
]

# The normalizations the contract states (``bn_norm``): (x - mean)/sqrt(var + eps), and RMSNorm.
NORMS = ("standard", "rms")


def check_x(x) -> np.ndarray:
    """``x`` must be a NumPy array of a floating dtype (bfloat16 included)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
    if not (np.issubdtype(x.dtype, np.floating) or x.dtype.name == "bfloat16"):
        raise TypeError(f"x must have a floating dtype, got dtype {x.dtype}")
    return x


def normalize_axes(axes, ndim: int) -> tuple[int, ...]:
    """Return ``axes`` as a sorted tuple of non-negative ints.

    Negative axes count from the end (``-1`` is ``ndim - 1``). Raises ``ValueError``
    naming ``axes`` when they are empty, duplicated, out of range or not integers.
    """
    if isinstance(axes, (numbers.Integral, np.integer)) and not isinstance(axes, bool):
        axes = (axes,)
    if not isinstance(axes, Iterable) or isinstance(axes, (str, bytes)):
        raise ValueError(f"axes must be a sequence of ints, got {axes!r}")
    axes = tuple(axes)
    if not axes:
        raise ValueError("axes must not be empty: name at least one axis to reduce over")
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (numbers.Integral, np.integer)):
            raise ValueError(f"axes must contain only ints, got {a!r} in axes={axes!r}")
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axes={axes!r}: axis {a} is out of range for an array of rank {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axes={axes!r} names an axis twice")
    return tuple(sorted(out))


def check_affine(name: str, value, shape: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
    """Check ``scale`` or ``offset`` and return it as a float64 array.

    It must be a real number or an array that broadcasts to ``shape`` and has size 1
    on every reduced axis (one value per kept-axes position, i.e. per feature).
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a numpy array, got a bool")
    if isinstance(value, numbers.Real):
        arr = np.asarray(float(value))
    elif isinstance(value, (np.ndarray, np.generic)):
        if not (np.issubdtype(value.dtype, np.number) or value.dtype.name == "bfloat16"):
            raise TypeError(f"{name} must be numeric, got dtype {value.dtype}")
        arr = np.asarray(value, dtype=np.float64)
    else:
        raise TypeError(f"{name} must be a float or a numpy array, got {type(value).__name__}")
    if arr.ndim > len(shape):
        raise ValueError(f"{name} of shape {arr.shape} has more dimensions than x of shape {shape}")
    try:
        if np.broadcast_shapes(arr.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} of shape {arr.shape} does not broadcast to x of shape {shape}") from None
    padded = (1,) * (len(shape) - arr.ndim) + arr.shape
    wrong = [a for a in axes if padded[a] != 1]
    if wrong:
        raise ValueError(
            f"{name} of shape {arr.shape} must have size 1 on every reduced axis; "
            f"it has size {padded[wrong[0]]} on reduced axis {wrong[0]}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def check_epsilon(epsilon) -> float:
    """``epsilon`` must be a finite real number >= 0."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"epsilon must be a real number, got {type(epsilon).__name__}")
    eps = float(epsilon)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon!r}")
    return eps


def check_training(training) -> bool:
    """``training`` must be ``True``, ``False`` or ``None``; returns whether to normalize."""
    if training is None or isinstance(training, (bool, np.bool_)):
        return bool(training)
    raise TypeError(f"training must be True, False or None, got {training!r}")


def check_mask(mask, shape) -> np.ndarray:
    """``mask`` must be a bool NumPy array broadcastable to ``shape`` (x's): returns it
    broadcast to ``shape`` (a read-only view). Errors name ``mask``."""
    if not isinstance(mask, (np.ndarray, np.bool_)) or np.asarray(mask).dtype != np.bool_:
        what = f"dtype {mask.dtype}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"mask must be a bool numpy array (True = counted), got {what}")
    mask = np.asarray(mask)
    if mask.ndim > len(shape):
        raise ValueError(f"mask of shape {mask.shape} has more dimensions than x of shape {tuple(shape)}")
    try:
        return np.broadcast_to(mask, tuple(shape))
    except ValueError:
        raise ValueError(f"mask of shape {mask.shape} does not broadcast to x of shape {tuple(shape)}") from None
