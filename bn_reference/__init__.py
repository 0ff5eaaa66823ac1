"""bn-props: property-based verification of batch normalization implementations.

``moments`` and ``batch_norm`` are the float64 reference; ``bound`` is the error model;
``strategies`` draws inputs; ``subjects`` loads implementations under test.
"""
from bn_reference.mathematics.reference import batch_norm, moments, normalized, reference
from bn_reference.subjects import Subject, load_subject, supports
from bn_reference.mathematics.tolerance import bound

__all__ = ["batch_norm", "moments", "normalized", "reference", "bound", "Subject", "load_subject", "supports"]
