"""Subjects: the implementations under test, and how they are named and loaded.

The contract (every subject is called exactly this way)::

    f(x, *, axes, scale, offset, epsilon, training) -> ndarray (same shape and dtype as x)

``training=True`` normalizes with the batch's own moments; ``False``/``None`` return ``x``
unchanged; ``f`` must not modify ``x``. Optional attributes a subject may carry:

* ``bn_dtypes``: the dtype names it supports (default ``("float32",)``);
* ``moments``: ``moments(x, *, axes) -> (mean, variance)`` with keepdims shapes, which
  lets the moment properties (decomposition, parallel merge) check them directly;
* ``bn_axes``: ``bn_axes(ndim) -> list of axes tuples`` the subject can express (e.g. a
  Keras ``BatchNormalization`` reduces over every axis but one); default: any axis set.

A subject is named by a spec: a built-in name (``reference``, ``seed_layer``, ``tf_nn``)
or ``module:attr`` (``attr`` may be dotted) for anything importable.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bn_reference.mathematics.validation import check_affine, check_epsilon, check_training, check_x, normalize_axes

__all__ = ["Subject", "SubjectSpecError", "BUILTINS", "LAYER_SUBJECTS", "load_subject", "supports", "check_call"]

BUILTINS = {
    "reference": "bn_reference.mathematics.reference:reference",
    "seed_layer": "bn_reference.subjects.tensorflow:seed_layer",
    "tf_nn": "bn_reference.subjects.tensorflow:tf_nn",
}
# Built-in subjects checked only on request (``--bn-impl NAME``, or ``tox -e layers``): the
# real Keras layers and fused kernels, slower per call than the default three.
LAYER_SUBJECTS: dict[str, str] = {
    name: f"bn_reference.subjects.keras_layers:{name}"
    for name in ("keras_batch_norm", "keras_layer_norm", "keras_group_norm", "fused_batch_norm", "fused_batch_norm_nchw")
}
DEFAULT_DTYPES = ("float32",)
KNOWN_DTYPES = ("float32", "float64", "float16", "bfloat16")


class SubjectSpecError(ValueError):
    """A ``--bn-impl`` spec that cannot be imported or is not callable."""


@dataclass(frozen=True)
class Subject:
    spec: str
    fn: Callable

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtypes the subject declares (``bn_dtypes``); float32 is always checked."""
        declared = tuple(getattr(self.fn, "bn_dtypes", DEFAULT_DTYPES))
        unknown = [d for d in declared if d not in KNOWN_DTYPES]
        if unknown:
            raise SubjectSpecError(f"subject {self.spec!r}: bn_dtypes names unknown dtypes {unknown}; known: {KNOWN_DTYPES}")
        return tuple(dict.fromkeys(("float32",) + declared))

    @property
    def moments(self) -> Callable | None:
        m = getattr(self.fn, "moments", None)
        return m if callable(m) else None

    @property
    def axes_sets(self) -> Callable | None:
        """``bn_axes(ndim) -> [axes, ...]``, the reduced-axis sets the subject supports, or None (all)."""
        a = getattr(self.fn, "bn_axes", None)
        return a if callable(a) else None

    def __call__(self, x, **kwargs):
        return self.fn(x, **kwargs)

    def __repr__(self) -> str:
        return self.spec


def supports(*dtypes: str, moments: Callable | None = None):
    """Decorator for a subject: declare its dtypes (and optionally its moments)."""

    def mark(fn):
        fn.bn_dtypes = tuple(dtypes)
        if moments is not None:
            fn.moments = moments
        return fn

    return mark


def load_subject(spec: str) -> Subject:
    """Resolve a spec (built-in name or ``module:attr``) to a callable ``Subject``."""
    target = BUILTINS.get(spec) or LAYER_SUBJECTS.get(spec) or spec
    if ":" not in target:
        raise SubjectSpecError(
            f"subject {spec!r}: expected module:attr or one of {', '.join([*BUILTINS, *LAYER_SUBJECTS])}"
        )
    module_name, attr = target.split(":", 1)
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises on import
        raise SubjectSpecError(f"subject {spec!r}: cannot import module {module_name!r}: {exc!r}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SubjectSpecError(f"subject {spec!r}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise SubjectSpecError(f"subject {spec!r}: {attr!r} is a {type(obj).__name__}, not callable")
    return Subject(spec, obj)


def check_call(x, axes, scale, offset, epsilon, training):
    """Validate the contract's arguments (errors name the argument); returns
    ``(x, axes, epsilon, normalize?)``."""
    x = check_x(x)
    axes = normalize_axes(axes, x.ndim)
    check_affine("scale", scale, x.shape, axes)
    check_affine("offset", offset, x.shape, axes)
    return x, axes, check_epsilon(epsilon), check_training(training)
