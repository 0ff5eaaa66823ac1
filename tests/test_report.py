"""``--bn-report``: the JSON report validates against its schema (with and without xdist),
records a failure with its replay blob, and has a Markdown twin."""
import json

import jsonschema
import pytest

from bn_reference.harness.report import SCHEMA, SCHEMA_ID, failure_details

from .test_plugin import run_pytest

pytestmark = pytest.mark.meta


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["no-xdist", "n2"])
def test_report_validates(tmp_path, workers):
    """A run with a correct and a broken subject writes a report that validates, lists both
    subjects, counts examples, and carries the broken one's failure with its replay blob."""
    path = tmp_path / "out" / "report.json"
    r = run_pytest(
        tmp_path, "properties/test_agreement.py", "--bn-impl", "reference", "--bn-impl", "usermod:broken",
        f"--bn-report={path}", *workers,
    )
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads(path.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["subjects"] == ["reference", "usermod:broken"]
    by_subject = {(x["subject"], x["outcome"]) for x in report["results"]}
    assert ("reference", "passed") in by_subject and ("usermod:broken", "failed") in by_subject
    broken = [x for x in report["results"] if x["subject"] == "usermod:broken"][0]
    assert broken["failure"]["reproduce_failure"].startswith("@reproduce_failure(")
    assert "outside the error model" in broken["failure"]["message"]
    assert broken["failure"]["calls"] and broken["failure"]["repro"].endswith(".py")
    assert f"err/bound = {broken['worst_ratio']:.6g}" in broken["failure"]["message"]
    passed = [x for x in report["results"] if x["outcome"] == "passed"][0]
    assert passed["examples"] > 0 and passed["worst_ratio"] is not None
    md = path.with_suffix(".md").read_text()
    assert "**FAIL**" in md and "@reproduce_failure(" in md


def test_schema_rejects_a_wrong_report():
    """The schema is not vacuous: an unknown outcome or a missing field is rejected."""
    good = {"schema": SCHEMA_ID, "created": "t", "hypothesis_profile": "dev", "subjects": [], "results": []}
    jsonschema.validate(good, SCHEMA)
    row = {"subject": "s", "property": "p", "nodeid": "n", "outcome": "maybe", "examples": 1, "worst_ratio": 0.1, "duration_s": 0.0, "failure": None}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "results": [row]}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in good.items() if k != "subjects"}, SCHEMA)


def test_failure_details_extracts_blob_and_example():
    """The fallback record (a failure the plugin did not compose): whole message, blob,
    draws; no calls or repro."""
    text = (
        "E   AssertionError: agreement: 1 of 2 elements outside\nE   Failing test case: test_x(\nE       subject=s,\n"
        "E   )\nE   Draw 1 (case): BNCase(x=float32 (1,) [0.5])\nE   @reproduce_failure('6.1', b'AX==')\n"
    )
    d = failure_details(text)
    assert d["reproduce_failure"] == "@reproduce_failure('6.1', b'AX==')"
    assert d["message"].startswith("AssertionError: agreement") and d["message"].endswith("b'AX==')")
    assert d["falsifying_example"] == "Draw 1 (case): BNCase(x=float32 (1,) [0.5])"
    assert d["calls"] is None and d["repro"] is None
