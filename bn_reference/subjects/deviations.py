"""Known, deliberate differences between a built-in subject and the textbook law.

Each entry becomes a ``strict`` xfail on exactly that (subject, property[, dtype]) test:
if the subject ever stops deviating, the xfail turns into a failure (XPASS strict) and the
entry must go. The reason names the behaviour and its source. Prefer modelling a
difference exactly in a property; list it here only when the law itself is what the
subject knowingly breaks.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Deviation", "KNOWN_DEVIATIONS", "deviation_for"]


@dataclass(frozen=True)
class Deviation:
    subject: str  # the spec as given (built-in name or module:attr)
    prop: str  # the test function's name, e.g. "test_unit_variance"
    reason: str  # the behaviour, and where it is documented or observed
    dtype: str | None = None  # None: every dtype


_KERAS_BN_INFERENCE = (
    "Keras BatchNormalization's inference mode (training False or None) normalizes with its "
    "MOVING statistics, y = (x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta; "
    "fresh ones (mean 0, variance 1) give y = x / sqrt(1 + eps) * gamma + beta, not x "
    "(keras/src/layers/normalization/batch_normalization.py, call(): `if training and "
    "self.trainable: ... else: mean = moving_mean`; the seed notebook's In [86] printed "
    "1.9990008 = 2 / sqrt(1.001) for x = 1, gamma = 2). Checked against that law in "
    "properties/test_layers.py::test_keras_bn_inference_uses_moving_statistics."
)

_KERAS_GN_EMPTY_CHANNELS = (
    "Keras GroupNormalization cannot be built for a channel axis of size 0: build() sets "
    "groups = dim for groups=-1 and then `dim % self.groups` raises ZeroDivisionError; with "
    "groups=1 it raises ValueError 'Number of groups (1) cannot be more than the number of "
    "channels (0)' (keras/src/layers/normalization/group_normalization.py, build(), lines "
    "113-122 in Keras 3.15). The reference returns an empty output of x's shape."
)

KNOWN_DEVIATIONS: list[Deviation] = [
    *(
        Deviation(spec, "test_inference_returns_input", _KERAS_BN_INFERENCE)
        for spec in ("keras_batch_norm", "bn_reference.subjects.keras_layers:keras_batch_norm")
    ),
    *(
        Deviation(spec, "test_zero_size_dimensions_give_an_empty_output", _KERAS_GN_EMPTY_CHANNELS)
        for spec in ("keras_group_norm", "bn_reference.subjects.keras_layers:keras_group_norm")
    ),
]


def deviation_for(subject: str, prop: str, dtype: str | None) -> Deviation | None:
    for d in KNOWN_DEVIATIONS:
        if d.subject == subject and d.prop == prop and (d.dtype is None or d.dtype == dtype):
            return d
    return None
