"""The dtypes each subject is checked in: declared (``bn_dtypes``) or probed, and said so.

A subject without ``bn_dtypes`` is probed once per run, in the controller (or the only
process), by ``bn_reference.subjects.probe``; xdist workers receive the result through
their ``workerinput`` instead of probing again. ``header_lines`` puts it on screen, per
subject: which dtypes are checked, and each refused one with the exception's first line.
"""
from __future__ import annotations

import json

from bn_reference.subjects import PROBED
from bn_reference.subjects.probe import probe

__all__ = ["settle", "to_worker", "header_lines", "coverage", "coverage_record", "INPUTS_LINE"]

# What every subject's inputs range over (``bn_reference.mathematics.strategies``): said once
# in the header and in the JSON report, so that a pass states what it covered.
INPUTS_LINE = (
    "every array in a drawn memory layout (C, Fortran, permuted view, step-2 slice, negative strides, "
    "read-only, unaligned); shapes of rank 1..5 (sides 1..6), one long axis (64..4096), an axis at a block "
    "boundary k*2^p-1, k*2^p, k*2^p+1 (p = 5..12, k = 1, 3), and N > 65,536 in test_agrees_beyond_16_bit_counts"
)

_INPUT_KEY = "bn_probed_dtypes"  # workerinput entry: json of ``subjects.PROBED``


def settle(config, subjects) -> None:
    """Fill ``subjects.PROBED`` for the subjects that declare no dtypes: from the controller's
    probe in an xdist worker, else by probing now."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _INPUT_KEY in workerinput:
        PROBED.update(json.loads(workerinput[_INPUT_KEY]))
        return
    cwd = str(config.invocation_params.dir)
    for subject in subjects:
        if not subject.declares_dtypes and subject.spec not in PROBED:
            PROBED[subject.spec] = probe(subject.spec, cwd=cwd)


def to_worker(node) -> None:
    """The probe's results into an xdist worker's ``workerinput`` (``pytest_configure_node``)."""
    node.workerinput[_INPUT_KEY] = json.dumps(PROBED)


def coverage(subject) -> str:
    """``float32, float64 (declared)`` or ``float32, float16 (probed; float64 refused: ...)``."""
    checked = ", ".join(subject.dtypes)
    if subject.declares_dtypes:
        return f"{checked} (declared bn_dtypes)"
    refused = subject.refused_dtypes
    if not refused:
        return f"{checked} (probed: every dtype accepted)"
    return f"{checked} (probed); " + "; ".join(f"{d} refused: {why}" for d, why in refused.items())


def coverage_record(subject) -> dict:
    """The JSON report's ``coverage`` entry of a subject."""
    from bn_reference.mathematics.layouts import KINDS
    from bn_reference.mathematics.strategies import BEYOND_16_BITS, BOUNDARY_SIZES

    return {
        "dtypes": list(subject.dtypes),
        "dtypes_from": "declared" if subject.declares_dtypes else "probed",
        "refused": dict(subject.refused_dtypes),
        "layouts": list(KINDS),
        "block_boundary_sizes": list(BOUNDARY_SIZES),
        "beyond_16_bits": list(BEYOND_16_BITS),
        "family": family(subject),
    }


def family(subject) -> str:
    """The contract's family in words: ``standard (x - mu)/sqrt(var + eps)``, ``RMSNorm ...``,
    plus the mask and replicas extensions when declared."""
    text = "RMSNorm x/sqrt(mean(x^2) + eps)" if subject.norm == "rms" else "standard (x - mu)/sqrt(var + eps)"
    if subject.scale_convention == "one_plus":
        text += ", gamma = 1 + scale"
    if subject.masked:
        text += ", masked moments (mask=)"
    if subject.replicas is not None:
        text += f", moments across {subject.replicas} replicas"
    return text


def header_lines(subjects) -> list[str]:
    """One line per subject: the dtypes it is checked in, and why any other is not; then
    what the inputs range over."""
    lines = [f"bn-props dtypes: {s.spec}: {coverage(s)}" for s in subjects]
    lines += [f"bn-props family: {s.spec}: {family(s)}" for s in subjects if s.families != {"standard"} or s.scale_convention != "plain"]
    return lines + [f"bn-props inputs: {INPUTS_LINE}"]
