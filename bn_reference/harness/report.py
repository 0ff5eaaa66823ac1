"""The machine-readable report (``--bn-report PATH``): the conformance matrix as JSON, with
a Markdown rendering written next to it (``PATH`` with suffix ``.md``).

Schema (``SCHEMA``, JSON Schema draft 2020-12)::

    {
      "schema": "bn-props-report/1",
      "created": "2026-11-25T18:00:00+00:00",       # UTC, ISO 8601
      "hypothesis_profile": "dev",
      "subjects": ["reference", "mypkg.bn:my_bn"],  # specs exactly as given
      "results": [
        {
          "subject": "mypkg.bn:my_bn",
          "property": "test_zero_mean[float32]",     # test name + non-subject parameters
          "nodeid": "properties/test_moments.py::test_zero_mean[mypkg.bn:my_bn-float32]",
          "outcome": "passed" | "failed" | "skipped" | "xfailed" | "xpassed" | "error",
          "examples": 100,                           # examples drawn (null if none counted)
          "worst_ratio": 0.31,                       # worst err/bound seen (null if no bound)
          "duration_s": 0.42,
          "failure": null | {
            "message": "...",                        # the assertion's first lines
            "reproduce_failure": "@reproduce_failure('6.170.17', b'...')",  # replays it
            "falsifying_example": "..."              # as Hypothesis printed it
          }
        }
      ]
    }
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

__all__ = ["SCHEMA", "SCHEMA_ID", "failure_details", "build", "to_markdown", "write"]

SCHEMA_ID = "bn-props-report/1"
OUTCOMES = ["passed", "failed", "skipped", "xfailed", "xpassed", "error"]

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "bn-props conformance report",
    "type": "object",
    "required": ["schema", "created", "hypothesis_profile", "subjects", "results"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "created": {"type": "string"},
        "hypothesis_profile": {"type": "string"},
        "subjects": {"type": "array", "items": {"type": "string"}},
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
                    "failure": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "required": ["message", "reproduce_failure", "falsifying_example"],
                                "additionalProperties": False,
                                "properties": {
                                    "message": {"type": "string"},
                                    "reproduce_failure": {"type": ["string", "null"]},
                                    "falsifying_example": {"type": ["string", "null"]},
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
_EXAMPLE = re.compile(r"(?:Falsifying example|Failing test case): (.*?)(?:\n\S|\Z)", re.S)


def failure_details(longrepr: str) -> dict:
    """Message, replay blob and falsifying example out of a failed test's report text."""
    lines = [ln[2:].rstrip() if ln.startswith("E ") else None for ln in longrepr.splitlines()]
    message = "\n".join(ln.strip() for ln in lines if ln is not None)
    blob = _BLOB.search(longrepr)
    example = _EXAMPLE.search(message)
    first = [ln for ln in message.splitlines() if ln.strip()][:6]
    return {
        "message": "\n".join(first),
        "reproduce_failure": blob.group(0) if blob else None,
        "falsifying_example": example.group(1).strip() if example else None,
    }


def build(cells: dict, subjects: list[str], profile: str) -> dict:
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
            }
        )
    return {
        "schema": SCHEMA_ID,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hypothesis_profile": profile,
        "subjects": list(subjects),
        "results": results,
    }


def to_markdown(report: dict) -> str:
    """The matrix as a Markdown table, then one section per failure with its replay blob."""
    subjects = report["subjects"]
    props = sorted({r["property"] for r in report["results"]})
    by = {(r["subject"], r["property"]): r for r in report["results"]}
    out = [f"# bn-props conformance ({report['created']}, profile `{report['hypothesis_profile']}`)", ""]
    out.append("| property | " + " | ".join(f"`{s}`" for s in subjects) + " |")
    out.append("|---|" + "---|" * len(subjects))
    for p in props:
        row = []
        for s in subjects:
            r = by.get((s, p))
            if r is None:
                row.append("")
            elif r["outcome"] == "passed" and r["worst_ratio"] is not None:
                row.append(f"pass ({r['worst_ratio']:.2g})")
            else:
                row.append({"passed": "pass", "failed": "**FAIL**"}.get(r["outcome"], r["outcome"]))
        out.append(f"| `{p}` | " + " | ".join(row) + " |")
    failures = [r for r in report["results"] if r["failure"]]
    if failures:
        out += ["", "## Failures", ""]
        for r in failures:
            f = r["failure"]
            out += [f"### `{r['nodeid']}`", "", "```", f["message"], "```"]
            if f["reproduce_failure"]:
                out += ["", f"Replay: add `{f['reproduce_failure']}` above the test function."]
            out.append("")
    return "\n".join(out) + "\n"


def write(path, report: dict) -> tuple[Path, Path]:
    """Write ``path`` (JSON) and ``path`` with suffix ``.md`` (Markdown); return both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    md = path.with_suffix(".md")
    md.write_text(to_markdown(report))
    return path, md
