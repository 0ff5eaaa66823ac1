"""bn-props: property-based verification of batch normalization implementations.

``moments`` and ``batch_norm`` are the float64 reference; ``bound`` is the error model;
``strategies`` draws inputs; ``subjects`` loads implementations under test.
"""
from .reference import batch_norm, moments, normalized, reference
from .subjects import Subject, load_subject, supports
from .tolerance import bound

__all__ = ["batch_norm", "moments", "normalized", "reference", "bound", "Subject", "load_subject", "supports"]
