"""Subjects: the implementations under test, and how they are named and loaded.

The contract (every subject is called exactly this way)::

    f(x, *, axes, scale, offset, epsilon, training) -> ndarray (same shape and dtype as x)

``training=True`` normalizes with the batch's own moments; ``False``/``None`` return ``x``
unchanged; ``f`` must not modify ``x``. Optional attributes a subject may carry:

* ``bn_dtypes``: the dtype names it supports; without it, each of float32, float64, float16
  and bfloat16 is probed with one tiny call (``bn_reference.subjects.probe``) and the
  subject is checked in every dtype it accepts (float32 always);
* ``moments``: ``moments(x, *, axes) -> (mean, variance)`` with keepdims shapes, which
  lets the moment properties (decomposition, parallel merge) check them directly;
* ``bn_axes``: ``bn_axes(ndim) -> list of axes tuples`` the subject can express (e.g. a
  Keras ``BatchNormalization`` reduces over every axis but one); default: any axis set.
* ``bn_accumulation``: the error-model contract for float16/bfloat16 inputs
  (``bn_reference.mathematics.tolerance``, item 6): ``"float32"`` (default: reductions
  accumulated in float32, the elementwise stage in x's dtype, as every framework does) or
  ``"input"`` (a subject that really accumulates in its own dtype, held to the looser
  model with x's unit roundoff in the sums). float32/float64 are unaffected.
* ``bn_refuses``: ``bn_refuses(shape, axes) -> str | None``, the inputs the subject refuses
  by design (PyTorch's ``batch_norm`` in training with one value per channel): the error text
  it raises (a substring of the message) for a training call on x of ``shape`` reduced over
  ``axes``, or None. A declared refusal is checked once (``test_declared_refusal_is_a_clear_error``:
  such a call must raise an exception carrying that text, not return) and no other property
  draws those inputs (``strategies.draw_case``).
* ``vjp``: the gradient of the training-mode output (``properties/test_gradients.py``)::

      vjp(x, dy, *, axes, scale, offset, epsilon) -> (dx, dscale, doffset)

  NumPy in and out: ``dy`` has x's shape and dtype; ``dx`` has x's shape and dtype,
  ``dscale``/``doffset`` the shapes of ``scale``/``offset`` as given (a Python float gives a
  float: the sum over every element). Adapters: ``bn_reference.subjects.autodiff``
  (``tape_vjp``, ``torch_vjp``, ``jax_vjp``); without ``vjp`` the gradient laws skip.
* ``bn_stateful`` (moving statistics, ``properties/test_moving_statistics.py``)::

      bn_stateful(*, axes, momentum, epsilon, scale, offset, dtype) -> layer
      layer(x, training) -> ndarray;  layer.moving_mean, layer.moving_variance

  one value per kept position (any shape of that size, arrays or tensors), starting at 0
  and 1. ``training=True`` updates them and normalizes with the batch's moments;
  ``False``/``None`` normalize with them. Declared conventions: ``bn_momentum`` ``"keras"``
  (``moving <- m moving + (1 - m) batch``, the default) or ``"torch"`` (``running <- (1 -
  m) running + m batch``), ``bn_running_variance`` ``"biased"`` (default) or ``"unbiased"``
  (``N/(N-1)`` times the batch variance). ``momentum`` is passed in the declared convention.

* ``bn_compiles``: ``True`` for a subject that compiles per shape or whose every call is
  slow (a Triton kernel under the interpreter, Pallas, ``torch.compile``): shapes are drawn
  from a few buckets (``strategies.SIDE_BUCKETS``, default epsilons from
  ``EPSILON_BUCKETS``) and the run gets a time budget (5 minutes unless ``--bn-budget``;
  ``bn_reference.harness.budget``). Helpers for wrapping a row kernel:
  ``bn_reference.subjects.kernels``; examples: examples/triton_bn.py, pallas_bn.py,
  inductor_bn.py (docs/gpu-kernels.md).

* ``bn_output_dtype``: mixed precision: y's dtype, a dtype name or a callable from x's dtype
  name (Keras under a ``mixed_float16`` policy: ``"float16"``); the reductions' contract is
  x's, y is checked in that dtype (``tolerance`` item 9);
* The normalization family (``bn_reference.harness.applicability`` gives each property
  to the subjects of its family; docs/subjects.md states the three contracts):

  * ``bn_norm``: ``"standard"`` (default: ``(x - mu) / sqrt(sigma^2 + eps)``) or ``"rms"``
    (RMSNorm: ``x / sqrt(mean_A(x^2) + eps)``, no centring); ``bn_scale``: ``"plain"``
    (default: ``gamma = scale``) or ``"one_plus"`` (Gemma's ``gamma = 1 + scale``);
  * ``bn_mask = True``: the subject takes an extra keyword ``mask=None``, a bool array
    broadcastable to x (True = counted): each slice's mean and biased variance over its
    counted elements, EVERY element normalized with them, an empty slice at (0, 0); absent
    (the plain properties' call): every element counted (``bn_reference/mathematics/masked.py``);
  * ``bn_replicas = R``: the subject takes the batch as R shards and returns R outputs
    (moments synchronized across replicas).

A subject is named by a spec: a built-in name (``reference``, ``seed_layer``, ``tf_nn``)
or ``module:attr`` (``attr`` may be dotted) for anything importable.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bn_reference.mathematics.tolerance import ACCUMULATIONS
from bn_reference.subjects._framework import install_hint
from bn_reference.mathematics.validation import NORMS, check_affine, check_epsilon, check_training, check_x, normalize_axes

__all__ = [
    "Subject",
    "SubjectSpecError",
    "BUILTINS",
    "LAYER_SUBJECTS",
    "FRAMEWORK_SUBJECTS",
    "REPLICA_SUBJECTS",
    "default_specs",
    "load_subject",
    "supports",
    "check_call",
]

BUILTINS = {
    "reference": "bn_reference.mathematics.reference:reference",
    "seed_layer": "bn_reference.subjects.tensorflow:seed_layer",
    "tf_nn": "bn_reference.subjects.tensorflow:tf_nn",
}
# The framework each default built-in needs, and the extra that installs it: the core install
# has no framework, so without TensorFlow the default run checks ``reference`` alone.
BUILTIN_NEEDS = {"seed_layer": ("tensorflow", "tensorflow"), "tf_nn": ("tensorflow", "tensorflow")}
# Built-in subjects checked only on request (``--bn-impl NAME``, or ``tox -e layers``): the
# real Keras layers and fused kernels, slower per call than the default three.
LAYER_SUBJECTS: dict[str, str] = {
    name: f"bn_reference.subjects.keras_layers:{name}"
    for name in (
        "keras_batch_norm",
        "keras_masked_batch_norm",
        "keras_layer_norm",
        "keras_group_norm",
        "fused_batch_norm",
        "fused_batch_norm_nchw",
        "keras_batch_norm_mixed_float16",
        "keras_batch_norm_mixed_bfloat16",
    )
}
# Built-in subjects of other frameworks, each behind an optional extra (``pip install
# "bn-props[torch]"``, ``[jax]``, ``[flax]``, ``[onnxruntime]``; the Keras backends need
# ``[jax]``/``[torch]``); checked on request (``--bn-impl NAME``, or ``tox -e frameworks``,
# which regenerates docs/conformance.md). Loading one whose framework is missing fails with
# a one-line message naming the extra.
FRAMEWORK_SUBJECTS: dict[str, str] = {
    **{f"torch_{op}": f"bn_reference.subjects.pytorch:torch_{op}" for op in ("batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm")},
    **{f"inductor_{op}": f"bn_reference.subjects.inductor:inductor_{op}" for op in ("batch_norm", "layer_norm", "group_norm")},
    **{name: f"bn_reference.subjects.jax_nn:{name}" for name in ("jax_standardize", "jax_standardize_stable")},
    **{
        f"flax_{op}{variant}": f"bn_reference.subjects.flax_linen:flax_{op}{variant}"
        for op in ("layer_norm", "batch_norm", "group_norm")
        for variant in ("", "_two_pass")
    },
    "flax_rms_norm": "bn_reference.subjects.flax_linen:flax_rms_norm",
    **{f"ort_{op}": f"bn_reference.subjects.onnxruntime_ops:ort_{op}" for op in ("batch_norm", "layer_norm", "group_norm", "rms_norm")},
    **{
        f"keras_{backend}_{op}": f"bn_reference.subjects.keras_backends:keras_{backend}_{op}"
        for backend in ("jax", "torch")
        for op in ("batch_norm", "layer_norm", "rms_norm", "ops_rms_norm")
    },
    # Keras 3's RMSNorm on the TensorFlow backend, in this process (bn_reference.subjects._keras_rms)
    **{f"keras_tf_{op}": f"bn_reference.subjects.keras_layers:keras_tf_{op}" for op in ("rms_norm", "ops_rms_norm")},
    # Synchronized batch norm (bn_replicas = 2: called with the batch as 2 shards, each in a
    # child process of its own: XLA's and TF's host devices are configured before import)
    **{name: f"bn_reference.subjects.flax_replicas:{name}" for name in ("flax_sync_batch_norm", "flax_sync_batch_norm_two_pass")},
    "keras_tf_sync_batch_norm": "bn_reference.subjects.keras_replicas:keras_sync_batch_norm",
}
# The framework subjects called with shards (``bn_replicas``): their own conformance group.
REPLICA_SUBJECTS = ("flax_sync_batch_norm", "flax_sync_batch_norm_two_pass", "keras_tf_sync_batch_norm")
DEFAULT_DTYPES = ("float32",)
# ``{spec: {dtype: None (accepted) or why refused}}`` for subjects without ``bn_dtypes``:
# filled once per run by the harness (``bn_reference.subjects.probe``), read by ``Subject.dtypes``.
PROBED: dict[str, dict[str, str | None]] = {}
KNOWN_DTYPES = ("float32", "float64", "float16", "bfloat16")
DEFAULT_ACCUMULATION = "float32"


def default_specs() -> tuple[list[str], dict[str, str]]:
    """The built-in subjects a run without ``--bn-impl`` checks: those whose framework is
    installed (looked up, not imported), and ``{spec: why not}`` for the others."""
    specs, missing = [], {}
    for spec in BUILTINS:
        module, extra = BUILTIN_NEEDS.get(spec, (None, None))
        if module is None or importlib.util.find_spec(module) is not None:
            specs.append(spec)
        else:
            missing[spec] = install_hint(module, extra)
    return specs, missing


class SubjectSpecError(ValueError):
    """A ``--bn-impl`` spec that cannot be imported or is not callable."""


def _optional_callable(fn, name: str) -> Callable | None:
    """The subject's optional attribute ``name`` if it is callable, else None."""
    value = getattr(fn, name, None)
    return value if callable(value) else None


@dataclass(frozen=True)
class Subject:
    spec: str
    fn: Callable

    def _declared(self, attr: str, default, allowed: tuple):
        """The subject's ``attr`` (``default`` when it declares none), which must be one of
        ``allowed``: anything else is one usage error naming the attribute and the choices."""
        value = getattr(self.fn, attr, default)
        if value not in allowed:
            raise SubjectSpecError(f"subject {self.spec!r}: {attr}={value!r}; choose one of {allowed}")
        return value

    @property
    def declares_dtypes(self) -> bool:
        """Whether the subject names its dtypes (``bn_dtypes``); if not, they are probed."""
        return getattr(self.fn, "bn_dtypes", None) is not None

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtypes the subject is checked in: those it declares (``bn_dtypes``), else those
        it accepted when probed (``PROBED``, filled by the harness: ``subjects.probe``), else
        float32; float32 is always checked."""
        declared = getattr(self.fn, "bn_dtypes", None)
        if declared is None:
            probed = PROBED.get(self.spec)
            declared = DEFAULT_DTYPES if probed is None else tuple(d for d, why in probed.items() if why is None)
        declared = tuple(declared)
        unknown = [d for d in declared if d not in KNOWN_DTYPES]
        if unknown:
            raise SubjectSpecError(f"subject {self.spec!r}: bn_dtypes names unknown dtypes {unknown}; known: {KNOWN_DTYPES}")
        return tuple(dict.fromkeys(("float32",) + declared))

    @property
    def refused_dtypes(self) -> dict[str, str]:
        """``{dtype: the exception's first line}`` for each dtype the probe found refused."""
        return {d: why for d, why in PROBED.get(self.spec, {}).items() if why is not None}

    @property
    def accumulation(self) -> str:
        """The half-precision contract it is held to (``tolerance`` items 6 and 7): its
        ``bn_accumulation`` (``"float32"`` default, or ``"input"``), or ``"float32-once"``
        when it declares ``bn_elementwise = "float32"`` (the elementwise stage in float32,
        rounded once)."""
        acc = self._declared("bn_accumulation", DEFAULT_ACCUMULATION, ("float32", "input"))
        elementwise = getattr(self.fn, "bn_elementwise", None)
        if elementwise is None:
            return acc
        if elementwise != "float32":
            raise SubjectSpecError(f"subject {self.spec!r}: bn_elementwise={elementwise!r}; the only stricter contract is 'float32'")
        if acc != "float32":
            raise SubjectSpecError(f"subject {self.spec!r}: bn_elementwise='float32' needs float32 reductions, not bn_accumulation={acc!r}")
        return "float32-once"

    def output_dtype(self, dtype) -> str:
        """The dtype of y for x of ``dtype`` (``bn_output_dtype``: a dtype name, or a callable
        from x's dtype name to one; default x's own)."""
        name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
        declared = getattr(self.fn, "bn_output_dtype", None)
        if declared is None:
            return name
        out = declared(name) if callable(declared) else declared
        out = getattr(out, "name", out)
        if out not in KNOWN_DTYPES:
            raise SubjectSpecError(f"subject {self.spec!r}: bn_output_dtype gives {out!r} for {name} input; known: {KNOWN_DTYPES}")
        return out

    @property
    def mixed(self) -> bool:
        """Whether y's dtype differs from x's in some dtype it is checked in (``bn_output_dtype``)."""
        return any(self.output_dtype(d) != d for d in self.dtypes)

    @property
    def norm(self) -> str:
        """Its normalization (``bn_norm``): ``"standard"`` (default) or ``"rms"``."""
        return self._declared("bn_norm", "standard", NORMS)

    @property
    def scale_convention(self) -> str:
        """How ``scale`` enters (``bn_scale``): ``"plain"`` (gamma = scale, default) or
        ``"one_plus"`` (gamma = 1 + scale, Gemma's RMSNorm)."""
        return self._declared("bn_scale", "plain", SCALE_CONVENTIONS)

    @property
    def masked(self) -> bool:
        """Whether it takes a ``mask`` keyword (``bn_mask = True``)."""
        value = getattr(self.fn, "bn_mask", False)
        if value not in (True, False):
            raise SubjectSpecError(f"subject {self.spec!r}: bn_mask={value!r}; declare bn_mask = True or leave it out")
        return bool(value)

    @property
    def replicas(self) -> int | None:
        """R for a subject called with the batch in R shards (``bn_replicas = R``), else None."""
        value = getattr(self.fn, "bn_replicas", None)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SubjectSpecError(f"subject {self.spec!r}: bn_replicas={value!r}; declare a positive int (the number of replicas)")
        return int(value)

    @property
    def families(self) -> frozenset[str]:
        """Its family tags, matched against each property's ``bn_family`` marker: its norm,
        plus ``"masked"`` and ``"replicas"`` when it declares them."""
        tags = {self.norm}
        self.scale_convention  # noqa: B018 - validated with the rest of the family
        if self.masked:
            tags.add("masked")
        if self.replicas is not None:
            tags.add("replicas")
        return frozenset(tags)

    @property
    def moments(self) -> Callable | None:
        return _optional_callable(self.fn, "moments")

    @property
    def axes_sets(self) -> Callable | None:
        """``bn_axes(ndim) -> [axes, ...]``, the reduced-axis sets the subject supports, or None (all)."""
        return _optional_callable(self.fn, "bn_axes")

    @property
    def vjp(self) -> Callable | None:
        """``vjp(x, dy, *, axes, scale, offset, epsilon) -> (dx, dscale, doffset)``, or None."""
        return _optional_callable(self.fn, "vjp")

    @property
    def stateful(self) -> Callable | None:
        """``bn_stateful(*, axes, momentum, epsilon, scale, offset, dtype) -> layer``, or None."""
        return _optional_callable(self.fn, "bn_stateful")

    @property
    def conventions(self) -> tuple[str, str]:
        """``(bn_momentum, bn_running_variance)`` as declared (default ``("keras", "biased")``)."""
        return self._declared("bn_momentum", "keras", MOMENTUM_CONVENTIONS), self._declared("bn_running_variance", "biased", RUNNING_VARIANCES)

    def refusal(self, shape, axes) -> str | None:
        """What the subject declares it refuses (``bn_refuses(shape, axes)``): the error text
        it raises by design for a training call on x of ``shape`` reduced over ``axes``, or
        None when it accepts such a call (and when it declares no refusal)."""
        r = getattr(self.fn, "bn_refuses", None)
        return r(tuple(shape), tuple(axes)) if callable(r) else None

    @property
    def refuses(self) -> bool:
        """Whether the subject declares refusals at all (``bn_refuses``)."""
        return callable(getattr(self.fn, "bn_refuses", None))

    def __call__(self, x, **kwargs):
        __tracebackhide__ = True  # a failure's traceback goes from the property to the subject's code
        return self.fn(x, **kwargs)

    def __repr__(self) -> str:
        return self.spec


SCALE_CONVENTIONS = ("plain", "one_plus")
MOMENTUM_CONVENTIONS = ("keras", "torch")
RUNNING_VARIANCES = ("biased", "unbiased")


def supports(
    *dtypes: str,
    moments: Callable | None = None,
    vjp: Callable | None = None,
    stateful: Callable | None = None,
    momentum: str | None = None,
    running_variance: str | None = None,
    accumulation: str | None = None,
):
    """Decorator for a subject: declare its dtypes (and optionally its moments, its gradient
    ``vjp``, its stateful factory ``bn_stateful`` and that factory's conventions, and its
    half-precision ``bn_accumulation`` contract)."""
    for name, value, allowed in (
        ("momentum", momentum, MOMENTUM_CONVENTIONS),
        ("running_variance", running_variance, RUNNING_VARIANCES),
        ("accumulation", accumulation, ("float32", "input")),
    ):
        if value is not None and value not in allowed:
            raise ValueError(f"supports({name}={value!r}): choose one of {allowed}")

    def mark(fn):
        fn.bn_dtypes = tuple(dtypes)
        if moments is not None:
            fn.moments = moments
        if vjp is not None:
            fn.vjp = vjp
        if stateful is not None:
            fn.bn_stateful = stateful
        if momentum is not None:
            fn.bn_momentum = momentum
        if running_variance is not None:
            fn.bn_running_variance = running_variance
        if accumulation is not None:
            fn.bn_accumulation = accumulation
        return fn

    return mark


def _not_found_hint(module_name: str, exc: Exception) -> str:
    """Where to look when the spec's top-level module or package is not on the import path
    (bn-props check and the plugin put the current directory first on it); nothing when it
    was found and failed to import (a dependency or a submodule missing: the error names it)."""
    top = module_name.split(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or exc.name != top:
        return ""
    return f"; run from the directory that holds {top}.py or {top}/, or add that directory to PYTHONPATH"


def load_subject(spec: str) -> Subject:
    """Resolve a spec (built-in name or ``module:attr``) to a callable ``Subject``."""
    target = BUILTINS.get(spec) or LAYER_SUBJECTS.get(spec) or FRAMEWORK_SUBJECTS.get(spec) or spec
    if ":" not in target:
        raise SubjectSpecError(
            f"subject {spec!r}: expected module:attr or one of {', '.join([*BUILTINS, *LAYER_SUBJECTS, *FRAMEWORK_SUBJECTS])}"
        )
    module_name, attr = target.split(":", 1)
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises on import
        raise SubjectSpecError(f"subject {spec!r}: cannot import module {module_name!r}: {exc!r}{_not_found_hint(module_name, exc)}") from exc
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
