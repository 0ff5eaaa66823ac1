"""Which properties a subject is checked against: its family against the property's.

A property states the family it is a law of with the marker ``bn_family``::

    @pytest.mark.bn_family("standard", "rms")   # a law of both norms
    @pytest.mark.bn_family("masked")            # needs a subject with bn_mask = True
    @pytest.mark.bn_family("replicas")          # needs a subject with bn_replicas = R

Unmarked, a property is a law of the standard (centring) normalization. A subject's tags
are ``Subject.families``: its norm (``bn_norm``: ``"standard"`` or ``"rms"``), plus
``"masked"`` and ``"replicas"`` when declared. A property applies to a subject when

* the subject's norm is among the norms the marker names (``"standard"`` if it names none);
* the subject has every other tag the marker names (``"masked"``, ``"replicas"``);
* and a ``bn_replicas`` subject, called with shards rather than x, gets only the properties
  marked ``"replicas"``.

A property that does not apply is not generated for that subject (no skipped cell: the
mathematics does not say it, e.g. zero mean of an RMSNorm).
"""
from __future__ import annotations

NORM_TAGS = ("standard", "rms")
NEED_TAGS = ("masked", "replicas")
MARKER = "bn_family"
MARKER_LINE = (
    f"{MARKER}(*tags): the family a property is a law of: norms 'standard' (default) and 'rms', "
    "and 'masked'/'replicas' for subjects declaring bn_mask/bn_replicas (bn_reference.harness.applicability)"
)

__all__ = ["applies", "describe", "require_vjp", "tags_of", "MARKER", "MARKER_LINE"]


def tags_of(definition) -> tuple[str, ...]:
    """The tags of the ``bn_family`` marker on a test function's definition (() if unmarked)."""
    marker = definition.get_closest_marker(MARKER) if definition is not None else None
    if marker is None:
        return ()
    unknown = [t for t in marker.args if t not in NORM_TAGS + NEED_TAGS]
    if unknown:
        raise ValueError(f"@pytest.mark.{MARKER}{marker.args}: unknown tags {unknown}; known: {NORM_TAGS + NEED_TAGS}")
    return tuple(marker.args)


def applies(subject, tags: tuple[str, ...]) -> bool:
    """Whether a property marked with ``tags`` is a law of ``subject`` (module docstring)."""
    families = subject.families
    norms = [t for t in tags if t in NORM_TAGS] or ["standard"]
    needs = {t for t in tags if t in NEED_TAGS}
    if "replicas" in families and "replicas" not in needs:
        return False
    return subject.norm in norms and needs <= families


def describe(tags: tuple[str, ...]) -> str:
    """The family of a property in words: ``"the standard norm"``, ``"the rms norm with masked"``."""
    norms = [t for t in tags if t in NORM_TAGS] or ["standard"]
    needs = [t for t in tags if t in NEED_TAGS]
    return " or ".join(f"the {n} norm" for n in norms) + (f" ({', '.join(needs)})" if needs else "")


def require_vjp(subject) -> None:
    """Skip the calling test unless ``subject`` states its gradient: a ``vjp`` (the gradient
    contract), and y in x's dtype (the gradient laws are not stated for ``bn_output_dtype``)."""
    import pytest

    if subject.vjp is None:
        pytest.skip(f"{subject.spec} has no vjp(x, dy, *, axes, scale, offset, epsilon) (the gradient contract)")
    if subject.mixed:
        pytest.skip(f"{subject.spec} declares bn_output_dtype: the gradient laws are stated for y in x's dtype only")
