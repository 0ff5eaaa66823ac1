"""One failure, one screen: the text (and the data) of a falsified property.

When a property fails, the plugin (``pytest_runtest_makereport``) has the exception, the
subject calls of the minimal falsifying example (``checks.Tracker.calls``: Hypothesis runs
that example last, so these are exactly the inputs the subject received) and Hypothesis'
notes on it (the draws and the ``@reproduce_failure`` blob). ``compose`` turns them into::

    property: <first sentence of the property's docstring>
    <the law: k of n elements outside the error model; the worst, at [i]:>
      <got and truth, each named in the law's terms>  (e.g. BN(x + 1) = ..., BN(x) = ...)
      |err| = ... > bound ...: err/bound = ...
      inputs there: <each call's x at the worst element, when it has that shape>
    the subject received (n calls):
      BN(x + 1):  x = float32 (3,) [0.4643306, 0.4643306, 0.4643306]
      BN(x):      x = float32 (3,) [-0.5356694, -0.5356694, -0.5356694]
      both with axes=(0,), scale=1.0, offset=0.0, epsilon=0.001, training=True
    drawn (shrunk) example:
      Draw 1 (case): BNCase(float32 (3,), axes=(0,), ...)
      Draw 2 (c): 1.0
    repro: python <path>
    replay: @reproduce_failure('6.170.17', b'...')

Arrays print whole when small (``SMALL`` elements or fewer), summarized when large (range,
non-finite count, and, when every slice is constant, the slices' values). ``encode_call`` /
``decode_call`` carry each call as data for the JSON report: the array as the hex of its
exact bytes with dtype and shape, so a report reader can feed it back to the subject.
"""
from __future__ import annotations

import re

import numpy as np

from bn_reference.mathematics.checks import Call, LawViolation, plain
from bn_reference.mathematics.describe import SMALL, describe_array, describe_value

__all__ = [
    "SMALL",
    "first_sentence",
    "describe_array",
    "describe_value",
    "print_arrays_compactly",
    "blob_of",
    "draws_of",
    "compose",
    "encode_array",
    "decode_array",
    "encode_call",
    "decode_call",
]

_BLOB = re.compile(r"@reproduce_failure\([^)]*\)")


def first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, its wrapped lines joined (a
    formula is never cut at a line break): up to the first ``". "`` (not that of "e.g.",
    "i.e.", "etc.") or the paragraph's end."""
    paragraph = " ".join((doc or "").strip().split("\n\n", 1)[0].split())
    m = re.search(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)\.(\s|$)", paragraph)
    return paragraph[: m.start() + 1] if m else paragraph


def print_arrays_compactly() -> None:
    """Make Hypothesis' notes (``Draw 3 (dy): ...``, the falsifying example) print NumPy
    arrays as ``describe_array`` does, instead of ``repr``: a drawn 657-element ``dy`` took
    660 lines of a gradient failure. Printing only: what is drawn, and the ``@reproduce_failure``
    blob, are unchanged; the repro file holds the full arrays. Registered through the
    printer's own ``for_type_by_name`` by the plugin of an active bn-props run."""
    from hypothesis.vendor import pretty

    pretty.for_type_by_name("numpy", "ndarray", lambda obj, p, cycle: p.text(describe_array(obj)))


def _kwargs_text(kwargs: dict) -> str:
    axes = kwargs.get("axes")
    return ", ".join(f"{k}={describe_value(v, axes if k != 'axes' else None)}" for k, v in kwargs.items())


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    return type(a) is type(b) and a == b


def _call_name(call: Call) -> str:
    return call.label if call.function is None else f"{call.label} [subject.{call.function}]"


def _layout_text(call: Call) -> str:
    """``, Fortran-ordered`` when the call's arrays came in a layout other than C order."""
    layout = call.layout
    if layout is None or layout.kind == "C" or call.x.ndim == 0:
        return ""
    return f", {layout.describe(call.x.ndim)}"


def describe_calls(calls: list[Call]) -> list[str]:
    """The subject calls, one line each (label, x), and their other arguments: once if all
    calls share them, else on each call's line."""
    if not calls:
        return []
    width = max(len(_call_name(c)) for c in calls) + 1
    keys = list(calls[0].kwargs)
    shared = all(list(c.kwargs) == keys and all(_same(c.kwargs[k], calls[0].kwargs[k]) for k in keys) for c in calls)
    n = len(calls)
    lines = [f"the subject received ({n} call{'s' if n > 1 else ''}):"]
    for c in calls:
        line = f"  {_call_name(c) + ':':<{width}} x = {describe_array(c.x, c.kwargs.get('axes'))}{_layout_text(c)}"
        if not shared:
            line += f"; {_kwargs_text(c.kwargs)}"
        lines.append(line)
    if shared:
        lines.append(f"  {'both' if n == 2 else 'all' if n > 2 else 'with'}{' with' if n > 1 else ''} {_kwargs_text(calls[0].kwargs)}")
    return lines


def _inputs_there(exc: BaseException, calls: list[Call]) -> str | None:
    if not isinstance(exc, LawViolation) or not exc.index:
        return None
    parts = [
        f"{_call_name(c)}: x[{', '.join(map(str, exc.index))}] = {plain(c.x[exc.index])}"
        for c in calls
        if c.x.shape == exc.shape
    ]
    return "  inputs there: " + ";  ".join(parts) if parts else None


def blob_of(notes) -> str | None:
    """The ``@reproduce_failure(...)`` line among Hypothesis' notes on the exception."""
    for note in notes or ():
        m = _BLOB.search(note)
        if m:
            return m.group(0)
    return None


def draws_of(notes) -> list[str]:
    """Hypothesis' ``Draw n (label): value`` notes (the shrunk example's draws)."""
    return [note.strip() for note in notes or () if note.lstrip().startswith("Draw ")]


def _message_lines(exc: BaseException, limit: int = 12) -> list[str]:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    if not isinstance(exc, AssertionError):
        lines[0] = f"{type(exc).__name__}: {lines[0]}"
    return lines[:limit] + ([f"  ... ({len(lines) - limit} more lines)"] if len(lines) > limit else [])


def compose(exc: BaseException, calls: list[Call], *, property_doc: str | None = None, repro_path=None, notes=None) -> str:
    """The one-screen failure text (module docstring)."""
    notes = getattr(exc, "__notes__", None) if notes is None else notes
    out = []
    summary = first_sentence(property_doc)
    if summary:
        out.append(f"property: {summary}")
    out += _message_lines(exc)
    there = _inputs_there(exc, calls)
    if there:
        out.append(there)
    out += describe_calls(calls)
    draws = draws_of(notes)
    if draws:
        out.append("drawn (shrunk) example:")
        out += ["  " + line for d in draws for line in d.splitlines()]
    if repro_path:
        out.append(f"repro: python {repro_path}")
    blob = blob_of(notes)
    if blob:
        out.append(f"replay: {blob}  (above the property, with this subject)")
    return "\n".join(out)


# -- as data (the JSON report) -------------------------------------------------------


def encode_array(a) -> dict:
    """An array as exact data: ``{"dtype", "shape", "hex"}`` (the hex of its C-order bytes)."""
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "hex": a.tobytes().hex()}


def decode_array(d: dict) -> np.ndarray:
    """Inverse of ``encode_array`` (bit for bit; bfloat16 needs ``ml_dtypes``)."""
    if d["dtype"] == "bfloat16":
        import ml_dtypes

        dtype = np.dtype(ml_dtypes.bfloat16)
    else:
        dtype = np.dtype(d["dtype"])
    return np.frombuffer(bytes.fromhex(d["hex"]), dtype=dtype).reshape(d["shape"]).copy()


def _encode(v):
    if isinstance(v, np.ndarray):
        return {"array": encode_array(v)}
    if isinstance(v, tuple):
        return [_encode(k) for k in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _decode(v, key):
    if isinstance(v, dict) and "array" in v:
        return decode_array(v["array"])
    if key == "axes" and isinstance(v, list):
        return tuple(v)
    return v


def encode_call(call: Call) -> dict:
    """A subject call as JSON data (see the report's schema)."""
    return {
        "label": call.label,
        "function": call.function,
        "x": encode_array(call.x),
        "kwargs": {k: _encode(v) for k, v in call.kwargs.items()},
        # the memory layout of the call's arrays, as source (``bn_reference.mathematics.layouts.Layout``)
        "layout": repr(call.layout) if call.layout is not None else "Layout('C')",
        # a replicas subject's call: x was passed cut along ``axis`` into shards of ``sizes``
        "shards": None if call.shards is None else {"axis": int(call.shards[0]), "sizes": [int(k) for k in call.shards[1]]},
    }


def decode_call(d: dict) -> tuple[str | None, np.ndarray, dict]:
    """``(function, x, kwargs)`` of an ``encode_call`` record: call
    ``getattr(subject, function) if function else subject`` with ``(x, **kwargs)``."""
    return d["function"], decode_array(d["x"]), {k: _decode(v, k) for k, v in d["kwargs"].items()}
