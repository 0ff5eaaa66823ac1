"""The machine-readable report (``--bn-report PATH``): the conformance matrix as JSON, with
a Markdown rendering written next to it (``PATH`` with its suffix replaced by ``.md``).

Schema (``SCHEMA``, JSON Schema draft 2020-12)::

    {
      "schema": "bn-props-report/2",
      "created": "2026-11-25T18:00:00+00:00",       # UTC, ISO 8601
      "hypothesis_profile": "dev",
      "subjects": ["reference", "mypkg.bn:my_bn"],  # specs exactly as given
      "contracts": {"reference": "float32-accumulation"},  # optional: the half-precision
                                                    # contract each subject was held to
                                                    # (tolerance item 6, bn_accumulation)
      "coverage": {"reference": {                   # optional: what each subject was checked on
          "dtypes": ["float32", ...], "dtypes_from": "declared" | "probed",
          "refused": {"bfloat16": "TypeError: ..."},  # probed dtypes it refused
          "layouts": ["C", "F", ...], "block_boundary_sizes": [31, 32, ...], "beyond_16_bits": [65537, ...]}},
      "seed": "derandomized",                       # optional: how examples were drawn
                                                    # (or "--hypothesis-seed=N", "random ...")
      "versions": {"python": "3.11.7", "numpy": "2.3.1", ...},  # optional
      "subject_info": {"reference": {"dtypes": ["float32"], "api": null}},  # optional
      "results": [
        {
          "subject": "mypkg.bn:my_bn",
          "property": "test_zero_mean[float32]",     # test name + non-subject parameters
          "nodeid": "properties/test_moments.py::test_zero_mean[mypkg.bn:my_bn-float32]",
          "outcome": "passed" | "failed" | "skipped" | "xfailed" | "xpassed" | "error",
          "examples": 100,                           # examples drawn (null if none counted)
          "worst_ratio": 0.31,                       # see "worst_ratio" below
          "duration_s": 0.42,
          "covered": ["rank: 2", "slice size: 8-63"],  # optional: "kind: value" labels the
                                                     # examples reached (checks.cover)
          "law": "BN(x) has zero mean over the reduced axes.",  # optional: the docstring's
                                                     # first sentence
          "reason": null,                            # optional: a known deviation's cause
                                                     # (xfailed/xpassed), a skip's reason
          "failure": null | {
            "message": "...",                        # the whole failure text, as printed
            "reproduce_failure": "@reproduce_failure('6.170.17', b'...')",  # replays it
            "falsifying_example": "Draw 1 (case): BNCase(...)",  # Hypothesis' draws
            "calls": [                               # what the subject received, in order
              {"label": "BN(x + 1)",                 # the call's name in the law
               "function": null,                     # null: subject(...); else subject.<function>(...)
               "x": {"dtype": "float32", "shape": [3], "hex": "bebced3e..."},  # exact bytes, C order
               "kwargs": {"axes": [0], "scale": 1.0, "offset": 0.0, "epsilon": 0.001, "training": true},
               "layout": "Layout('F')",                # the memory layout x and the array kwargs came in
               "shards": null}                         # replicas: {"axis": 0, "sizes": [2, 0, 3]}, x cut so
            ],                                       # an array argument: {"array": {dtype, shape, hex}}
            "repro": ".bn-props/repro/repro_test_x.py"  # the runnable repro script
          }
        }
      ]
    }

Suffixes: ``PATH`` ending in ``.html``/``.htm`` gets the same report as one self-contained
HTML page instead (``harness.report_html``); any other ``PATH`` the JSON and its Markdown twin.

``worst_ratio`` has one definition, shared with the failure message: the largest err/bound
(|subject - truth| / bound, over the elements compared by the property's ``assert_within``
checks) of the examples the verdict rests on. For a passed property that is every example
drawn; for a failed one, the minimal falsifying example only, i.e. exactly the ``err/bound``
its message prints (to 6 digits). Examples tried before shrinking do not count: their
ratios say how bad unshrunk inputs were, not what the report shows. ``null``: no bound was
checked (contract-only properties), or the falsifying example's worst is not finite (a NaN
or inf where a finite value was due; the message says so).

A failure's ``calls`` replay without bn-props: ``failure.decode_call`` gives ``(function, x,
kwargs)``, and ``(getattr(subject, function) if function else subject)(x, **kwargs)`` is the
exact call the subject failed on. A failure that did not come from a property's subject
calls (a worker crash, an error in setup) has ``calls`` and ``repro`` null.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

__all__ = ["SCHEMA", "SCHEMA_ID", "OPTION_HELP", "CONTRACTS", "HTML_SUFFIXES", "contracts", "contracts_line", "environment", "failure_details", "build", "to_markdown", "write"]

SCHEMA_ID = "bn-props-report/2"
# The help of --bn-report and of bn-props check's --report: what ``write`` writes.
OPTION_HELP = (
    "write the conformance matrix as JSON to PATH and as Markdown to PATH with its suffix "
    "replaced by .md (e.g. out.json and out.md; schema: bn_reference.harness.report.SCHEMA); "
    "a PATH ending in .html: one self-contained HTML page (heat map, failures with their repro); repeatable"
)
HTML_SUFFIXES = (".html", ".htm")
# bn_accumulation -> the contract's name (``tolerance`` item 6); float32/float64 are held to
# the same model under both.
CONTRACTS = {"float32": "float32-accumulation", "input": "input-accumulation", "float32-once": "float32-elementwise"}
CONTRACT_TEXT = {
    "float32-accumulation": "float16/bfloat16 reductions in float32, elementwise in x's dtype (strict)",
    "input-accumulation": "float16/bfloat16 reductions in x's dtype (bn_accumulation='input', looser)",
    "float32-elementwise": "float16/bfloat16 computed in float32, rounded once to x's dtype (bn_elementwise='float32', stricter)",
}
OUTCOMES = ["passed", "failed", "skipped", "xfailed", "xpassed", "error"]

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "bn-props conformance report",
    "$defs": {
        "array": {
            "type": "object",
            "required": ["dtype", "shape", "hex"],
            "additionalProperties": False,
            "properties": {
                "dtype": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "hex": {"type": "string", "pattern": "^([0-9a-f]{2})*$"},
            },
        },
        "call": {
            "type": "object",
            "required": ["label", "function", "x", "kwargs"],
            "additionalProperties": False,
            "properties": {
                "label": {"type": "string"},
                "function": {"type": ["string", "null"]},
                "x": {"$ref": "#/$defs/array"},
                "layout": {"type": "string"},  # the memory layout, as source: "Layout('F')" (mathematics/layouts.py)
                "shards": {  # a replicas subject's call: x cut along axis into shards of sizes (null otherwise)
                    "anyOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["axis", "sizes"],
                            "additionalProperties": False,
                            "properties": {"axis": {"type": "integer"}, "sizes": {"type": "array", "items": {"type": "integer", "minimum": 0}}},
                        },
                    ]
                },
                "kwargs": {
                    "type": "object",
                    "additionalProperties": {
                        "anyOf": [
                            {"type": ["number", "boolean", "null", "string"]},
                            {"type": "array", "items": {"type": "integer"}},
                            {"type": "object", "required": ["array"], "additionalProperties": False, "properties": {"array": {"$ref": "#/$defs/array"}}},
                        ]
                    },
                },
            },
        },
    },
    "type": "object",
    "required": ["schema", "created", "hypothesis_profile", "subjects", "results"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "created": {"type": "string"},
        "hypothesis_profile": {"type": "string"},
        "subjects": {"type": "array", "items": {"type": "string"}},
        "contracts": {"type": "object", "additionalProperties": {"enum": sorted(CONTRACTS.values())}},
        "coverage": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["dtypes", "dtypes_from", "refused", "layouts", "block_boundary_sizes", "beyond_16_bits"],
                "properties": {
                    "dtypes": {"type": "array", "items": {"type": "string"}},
                    "dtypes_from": {"enum": ["declared", "probed"]},
                    "refused": {"type": "object", "additionalProperties": {"type": "string"}},
                    "layouts": {"type": "array", "items": {"type": "string"}},
                    "block_boundary_sizes": {"type": "array", "items": {"type": "integer"}},
                    "beyond_16_bits": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
        "seed": {"type": "string"},
        "versions": {"type": "object", "additionalProperties": {"type": "string"}},
        "subject_info": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["dtypes"],
                "additionalProperties": False,
                "properties": {"dtypes": {"type": "array", "items": {"type": "string"}}, "api": {"type": ["string", "null"]}},
            },
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["subject", "property", "nodeid", "outcome", "examples", "worst_ratio", "duration_s", "failure"],
                "additionalProperties": False,
                "properties": {
                    "subject": {"type": "string"},
                    "property": {"type": "string"},
                    "nodeid": {"type": "string"},
                    "outcome": {"enum": OUTCOMES},
                    "examples": {"type": ["integer", "null"], "minimum": 0},
                    "worst_ratio": {"type": ["number", "null"], "minimum": 0},
                    "duration_s": {"type": "number", "minimum": 0},
                    "covered": {"type": "array", "items": {"type": "string"}},
                    "law": {"type": ["string", "null"]},
                    "reason": {"type": ["string", "null"]},
                    "failure": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "required": ["message", "reproduce_failure", "falsifying_example", "calls", "repro"],
                                "additionalProperties": False,
                                "properties": {
                                    "message": {"type": "string"},
                                    "reproduce_failure": {"type": ["string", "null"]},
                                    "falsifying_example": {"type": ["string", "null"]},
                                    "calls": {"oneOf": [{"type": "null"}, {"type": "array", "items": {"$ref": "#/$defs/call"}}]},
                                    "repro": {"type": ["string", "null"]},
                                },
                            },
                        ]
                    },
                },
            },
        },
    },
}

_BLOB = re.compile(r"@reproduce_failure\([^)]*\)")
_DRAW = re.compile(r"^Draw \d+ .*$", re.M)


def failure_details(longrepr: str) -> dict:
    """A ``failure`` record out of a failed test's report text alone, for failures the
    plugin did not compose (a worker crash, an error outside a property's call): the whole
    message (pytest's ``E`` lines, else the whole text), the replay blob, Hypothesis'
    draws; no calls, no repro."""
    marked = [ln[2:].strip() for ln in longrepr.splitlines() if ln.startswith("E ")]
    message = "\n".join(marked).strip() or longrepr.strip()
    blob = _BLOB.search(longrepr)
    draws = _DRAW.findall(message)
    return {
        "message": message,
        "reproduce_failure": blob.group(0) if blob else None,
        "falsifying_example": "\n".join(draws) or None,
        "calls": None,
        "repro": None,
    }


def contracts(subjects) -> dict[str, str]:
    """``{spec: contract name}`` of loaded subjects (their ``accumulation``)."""
    return {s.spec: CONTRACTS[s.accumulation] for s in subjects}


def contracts_line(by_spec: dict[str, str]) -> str:
    """One line: each contract and the subjects held to it."""
    groups: dict[str, list[str]] = {}
    for spec, name in by_spec.items():
        groups.setdefault(name, []).append(spec)
    return "; ".join(f"{', '.join(specs)}: {CONTRACT_TEXT[name]}" for name, specs in groups.items()) or "-"


_VERSIONED = ("numpy", "hypothesis", "ml_dtypes", "torch", "jax", "flax", "onnxruntime", "tensorflow", "keras", "triton")


def environment(subjects) -> dict:
    """``{"versions": ..., "subject_info": ...}`` for the report's header: Python, the
    platform, bn-props and the libraries the run imported (of ``_VERSIONED``); each loaded
    subject's dtypes and the API it wraps (``bn_api``, when it says)."""
    import importlib.metadata
    import platform
    import sys

    versions = {"python": platform.python_version(), "platform": f"{platform.system()} {platform.machine()}"}
    for dist in ("bn-props", *_VERSIONED):
        if dist == "bn-props" or dist.replace("-", "_") in sys.modules:
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                pass
    info = {s.spec: {"dtypes": list(s.dtypes), "api": getattr(s.fn, "bn_api", None)} for s in subjects}
    return {"versions": versions, "subject_info": info}


def build(cells: dict, subjects: list[str], profile: str, contracts: dict[str, str] | None = None, coverage: dict | None = None, *, seed: str | None = None, environment: dict | None = None) -> dict:
    """The report dict from the plugin's matrix cells ``{(subject, property): cell}``."""
    results = []
    for (subject, prop), cell in sorted(cells.items()):
        results.append(
            {
                "subject": subject,
                "property": prop,
                "nodeid": cell["nodeid"],
                "outcome": cell["outcome"],
                "examples": cell.get("examples"),
                "worst_ratio": cell.get("ratio"),
                "duration_s": round(float(cell.get("duration", 0.0)), 6),
                "failure": cell.get("failure"),
                "covered": list(cell.get("covered") or []),
                "law": cell.get("law"),
                "reason": cell.get("reason"),
            }
        )
    report = {
        "schema": SCHEMA_ID,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hypothesis_profile": profile,
        "subjects": list(subjects),
        "results": results,
    }
    if contracts:
        report["contracts"] = dict(contracts)
    if coverage:
        report["coverage"] = dict(coverage)
    if seed is not None:
        report["seed"] = seed
    report.update(environment or {})
    return report


def to_markdown(report: dict) -> str:
    """The matrix as a Markdown table (with the worst err/bound of passed and failed cells),
    then one section per failure: its whole message, its repro script and replay blob."""
    subjects = report["subjects"]
    props = sorted({r["property"] for r in report["results"]})
    by = {(r["subject"], r["property"]): r for r in report["results"]}
    out = [f"# bn-props conformance ({report['created']}, profile `{report['hypothesis_profile']}`)", ""]
    if report.get("contracts"):
        out += ["Half-precision contract (error model item 6): " + contracts_line(report["contracts"]) + ".", ""]
    out.append("| property | " + " | ".join(f"`{s}`" for s in subjects) + " |")
    out.append("|---|" + "---|" * len(subjects))
    for p in props:
        row = []
        for s in subjects:
            r = by.get((s, p))
            if r is None:
                row.append("")
            elif r["outcome"] in ("passed", "failed") and r["worst_ratio"] is not None:
                row.append(f"{'pass' if r['outcome'] == 'passed' else '**FAIL**'} ({r['worst_ratio']:.2g})")
            else:
                row.append({"passed": "pass", "failed": "**FAIL**"}.get(r["outcome"], r["outcome"]))
        out.append(f"| `{p}` | " + " | ".join(row) + " |")
    failures = [r for r in report["results"] if r["failure"]]
    if failures:
        out += ["", "## Failures", ""]
        for r in failures:
            f = r["failure"]
            out += [f"### `{r['nodeid']}`", "", "```", f["message"], "```"]
            if f.get("repro") and f["repro"] not in f["message"]:
                out += ["", f"Repro script: `python {f['repro']}` (the subject's calls, bit for bit, then the property's check)."]
            if f["reproduce_failure"] and f["reproduce_failure"] not in f["message"]:
                out += ["", f"Replay: add `{f['reproduce_failure']}` above the test function."]
            out.append("")
    return "\n".join(out) + "\n"


def write(path, report: dict) -> list[tuple[Path, str]]:
    """Write the report; return ``[(path, kind)]`` of the files written. ``path`` ending in
    ``.html``/``.htm``: one self-contained page (``report_html.page``); otherwise ``path``
    (JSON) and ``path`` with suffix ``.md`` (Markdown)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in HTML_SUFFIXES:
        from bn_reference.harness import report_html

        path.write_text(report_html.page(report_html.from_report(report)), encoding="utf-8")
        return [(path, "HTML")]
    path.write_text(json.dumps(report, indent=2) + "\n")
    md = path.with_suffix(".md")
    md.write_text(to_markdown(report))
    return [(path, "JSON"), (md, "Markdown")]
