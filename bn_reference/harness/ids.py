"""Test ids of subject properties: which subject, dtype and property a test id names.

The plugin parametrizes each property as ``test_f[spec-dtype-other]``: the subject's spec
exactly as given, then the dtype (when the property takes one), then any other
parameters, joined by ``-``. ``split_id`` reads such an id back; the crash handler and the
kill matrix both use it.
"""
from __future__ import annotations

from bn_reference.subjects import BUILTINS, KNOWN_DTYPES, LAYER_SUBJECTS

__all__ = ["split_id"]


def split_id(name: str, specs) -> tuple[str, str | None, str | None]:
    """``test_f[spec-dtype-other]`` -> (property, subject spec, dtype).

    With ``specs`` known, the longest spec that the id starts with is the subject;
    otherwise the subject is everything before the first known dtype component (or the
    first component, if it looks like a spec). Property = function name plus the remaining
    parameters. A name that is not a subject test gives ``(name, None, None)``.
    """
    func, sep, params = name.partition("[")
    if not sep:
        return func, None, None
    params = params[:-1] if params.endswith("]") else params
    subject = None
    rest = params
    for spec in sorted(specs or (), key=len, reverse=True):
        if params == spec or params.startswith(spec + "-"):
            subject, rest = spec, params[len(spec) + 1 :]
            break
    parts = rest.split("-") if rest else []
    if subject is None and not specs:
        comps = params.split("-")
        cut = next((i for i, c in enumerate(comps) if c in KNOWN_DTYPES and i > 0), None)
        if cut is not None:
            subject, parts = "-".join(comps[:cut]), comps[cut:]
        elif ":" in comps[0] or comps[0] in BUILTINS or comps[0] in LAYER_SUBJECTS:
            subject, parts = comps[0], comps[1:]
    if subject is None:  # specs were given and none matches: not a subject test
        return name, None, None
    dtype = None
    if parts and parts[0] in KNOWN_DTYPES:
        dtype, parts = parts[0], parts[1:]
    prop = func + (f"[{'-'.join(parts)}]" if parts else "")
    return prop, subject, dtype
