"""Runnable reproductions of falsified properties.

While a property runs, every subject call of the current example is recorded (the input
``x`` exactly, and the keyword arguments). When the property fails, Hypothesis has just
re-run the minimal falsifying example, so the record holds exactly its calls. ``snippet``
turns that into a self-contained script:

1. the falsifying input(s) as ``np.frombuffer`` of their bytes (bit-exact) and the call of
   the subject with its arguments, printing the output;
2. the property's own check on exactly that example, replayed through Hypothesis'
   ``reproduce_failure`` blob, which raises the same ``AssertionError``.

Run it wherever bn-props is installed: ``python repro.py``. The property comes from the
installed ``bn_reference.properties``; a ``module:attr`` subject is imported from the
current directory, else from the directory the check ran in (recorded in the script).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

__all__ = ["literal", "snippet", "load_property", "file_name"]

_BLOB = re.compile(r"@reproduce_failure\((['\"][^'\"]+['\"]), (b['\"][^'\"]*['\"])\)")


def literal(v) -> str:
    """Python source that rebuilds ``v`` exactly (arrays bit for bit)."""
    if isinstance(v, np.ndarray):
        dtype = "ml_dtypes.bfloat16" if v.dtype.name == "bfloat16" else f"np.{v.dtype.name}"
        data = np.ascontiguousarray(v).tobytes().hex()
        return f"np.frombuffer(bytes.fromhex('{data}'), dtype={dtype}).reshape({tuple(v.shape)!r}).copy()"
    if isinstance(v, (np.floating, float)):
        return repr(float(v))
    return repr(v)


def _in_layout(v, layout) -> str:
    """``literal(v)``, rebuilt in ``layout`` when ``v`` is an array and a layout is given (a
    call whose arrays came in that memory layout)."""
    if layout is not None and isinstance(v, np.ndarray) and v.ndim:
        return f"{layout!r}.apply({literal(v)})"
    return literal(v)


def load_property(path: str, name: str):
    """The property function ``name`` of the suite's module at ``path`` (a test's node-id
    path: ``properties/test_moments.py`` in the checkout, ``test_moments.py`` from
    ``bn-props check``), imported as ``bn_reference.properties.test_moments``: from the
    installed package, wherever the repro runs."""
    import importlib

    return getattr(importlib.import_module(f"bn_reference.properties.{Path(path).stem}"), name)


def snippet(nodeid: str, spec: str, params: dict, calls: list, longrepr: str) -> str:
    """The repro script for a failed property (see the module docstring): ``calls`` are the
    example's ``checks.Call``s; ``longrepr`` is any text holding the ``@reproduce_failure``
    line (the failure's text, or the line itself)."""
    path, _, rest = nodeid.partition("::")
    name = rest.split("[", 1)[0]
    lines = [
        f'"""bn-props repro for {nodeid}.',
        "",
        "Run wherever bn-props is installed: python <this file>. Part 1 calls the subject on the",
        "falsifying input; part 2 replays the property's check on exactly that example.",
        '"""',
        "import os",
        "import sys",
        "",
        "import ml_dtypes  # noqa: F401  (bfloat16 arrays)",
        "import numpy as np",
        "from hypothesis import reproduce_failure",
        "",
        "from bn_reference.harness.repro import load_property",
        "from bn_reference.mathematics.layouts import Layout  # noqa: F401  (inputs in a memory layout)",
        "from bn_reference.subjects import load_subject",
        "",
        f"sys.path[:0] = [os.getcwd(), {os.getcwd()!r}]  # the subject's module: from here, or where the check ran",
        f"subject = load_subject({spec!r})",
        "",
        "# 1. The falsifying example's subject calls, in order:",
    ]
    for i, c in enumerate(calls, 1):
        laid_out = c.layout is not None and c.layout.kind != "C"
        args = ", ".join(f"{k}={_in_layout(v, c.layout if laid_out else None)}" for k, v in c.kwargs.items())
        fn = "subject" if c.function is None else f"subject.{c.function}"
        lines += [f"# {c.label}" + (f" (arrays in memory as: {c.layout.describe(c.x.ndim)})" if laid_out else "")]
        if c.shards is not None:  # a replicas subject: the batch cut into shards (bn_replicas)
            axis, sizes = c.shards
            cuts = [int(k) for k in np.cumsum(sizes)[:-1]]
            layout = c.layout if laid_out else None
            lines += [
                f"x{i} = {literal(c.x)}",
                f"shards{i} = [{layout!r}.apply(s) for s in np.split(x{i}, {cuts}, axis={axis})]" if layout else f"shards{i} = [s.copy() for s in np.split(x{i}, {cuts}, axis={axis})]",
                f"y{i} = {fn}(shards{i}, {args})",
            ]
        elif laid_out:
            lines += [f"x{i} = {c.layout!r}.apply({literal(c.x)})", f"y{i} = {fn}(x{i}, {args})"]
        else:
            lines += [f"x{i} = {literal(c.x)}", f"y{i} = {fn}(x{i}.copy(), {args})"]
        lines += [f"print({c.label + ' ='!r}, y{i})"]
    blob = _BLOB.search(longrepr)
    lines += ["", "# 2. The property's check on that example (raises the AssertionError):"]
    if blob:
        call_args = ", ".join(f"{k}={literal(v)}" for k, v in params.items() if k != "subject")
        lines += [
            f"test = load_property({path!r}, {name!r})",
            f"reproduce_failure({blob.group(1)}, {blob.group(2)})(test)(subject=subject{', ' if call_args else ''}{call_args})",
        ]
    else:
        lines.append("# (no @reproduce_failure blob was printed; run the test with --hypothesis-profile=ci)")
    return "\n".join(lines) + "\n"


def file_name(nodeid: str) -> str:
    """A file name for a node id: ``test_zero_mean[tf_nn-float32]`` -> ``repro_test_zero_mean_tf_nn-float32.py``."""
    name = nodeid.split("::", 1)[-1]
    return "repro_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".py"
