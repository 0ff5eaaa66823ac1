"""Fast unit tests of ``bn_reference.selftest.killmatrix``'s JUnit parsing and rendering."""
from __future__ import annotations

import pytest

from bn_reference.selftest import killmatrix

pytestmark = pytest.mark.meta

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="2" skipped="1" tests="8" time="1.0">
  <testcase classname="properties.test_agreement" name="test_agrees_with_float64_reference[m:bad-float32]" time="0.5">
    <properties><property name="bn_worst_ratio" value="3.5" /></properties>
    <failure message="AssertionError: agreement: 3 of 4 elements outside the error model&#10;more">trace</failure>
  </testcase>
  <testcase classname="properties.test_agreement" name="test_agrees_with_float64_reference[m:bad-float64]" time="0.1" />
  <testcase classname="properties.test_agreement" name="test_agrees_with_float64_reference[m:good-float32]" time="0.1">
    <properties><property name="bn_worst_ratio" value="0.25" /></properties>
  </testcase>
  <testcase classname="properties.test_moments" name="test_moment_decomposition[m:good-float32]" time="0.0">
    <skipped type="pytest.skip" message="m:good exposes no moments">skip</skipped>
  </testcase>
  <testcase classname="properties.test_training_flag" name="test_inference_returns_input[m:bad-float32-training=None]" time="0.0">
    <failure message="ValueError: None">trace</failure>
  </testcase>
  <testcase classname="properties.test_training_flag" name="test_inference_returns_input[m:bad-float32-training=False]" time="0.0" />
  <testcase classname="properties.test_training_flag" name="test_inference_returns_input[m:good-float32-training=None]" time="0.0">
    <error message="failed on setup with &quot;boom&quot;">trace</error>
  </testcase>
  <testcase classname="properties.test_seed_golden" name="test_golden[x0]" time="0.0" />
</testsuite></testsuites>
"""


@pytest.fixture
def junit(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    return path


def test_parse_junit_builds_subject_by_property_matrix(junit):
    matrix = killmatrix.parse_junit(junit, ["m:bad", "m:good"])
    assert matrix["m:bad"] == {
        "test_agrees_with_float64_reference": "failed",  # failed in float32, passed in float64
        "test_inference_returns_input[training=None]": "failed",
        "test_inference_returns_input[training=False]": "passed",
    }
    assert matrix["m:good"] == {
        "test_agrees_with_float64_reference": "passed",
        "test_moment_decomposition": "skipped",
        "test_inference_returns_input[training=None]": "error",
    }
    assert matrix[killmatrix.NO_SUBJECT] == {"properties.test_seed_golden::test_golden[x0]": "passed"}
    assert killmatrix.killers(matrix["m:bad"]) == [
        "test_agrees_with_float64_reference",
        "test_inference_returns_input[training=None]",
    ]


def test_parse_junit_without_specs_splits_on_the_dtype(junit):
    assert killmatrix.parse_junit(junit) == killmatrix.parse_junit(junit, ["m:bad", "m:good"])


def test_parse_cells_keeps_dtype_message_and_ratio(junit):
    cells = killmatrix.parse_cells(junit, ["m:bad", "m:good"])
    bad = cells["m:bad"]["test_agrees_with_float64_reference"]
    assert set(bad) == {"float32", "float64"}
    assert bad["float32"].outcome == "failed"
    assert bad["float32"].message == "AssertionError: agreement: 3 of 4 elements outside the error model"
    assert bad["float32"].ratio == 3.5
    assert bad["float64"] == killmatrix.Cell("passed", "", None, 0.1)


def test_render_marks_partial_kills_and_verdicts(junit):
    specs = ["m:bad", "m:good"]
    text = killmatrix.render(
        killmatrix.parse_junit(junit, specs),
        expect={"m:bad": "mutant", "m:good": "correct"},
        cells=killmatrix.parse_cells(junit, specs),
    )
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in text.splitlines() if line.startswith("|") and "subject" not in line and "-+-" not in line}
    # columns: agrees, inference[training=False], inference[training=None], moment_decomposition
    # then kills, the dtypes it was caught in, the verdict
    assert rows["bad"] == ["x", ".", "X", "", "2", "float32", "killed"]
    assert rows["good  (correct)"] == [".", "", "E", "s", "0", "-", "FALSE ALARM"]
    assert "  1  agrees_with_float64_reference" in text
    assert "tests without a subject: 1 (0 failed or errored)" in text


def test_escaped_lists_mutant_dtypes_no_property_failed():
    """The flakiness guard's escape check: a (mutant, dtype) pair that ran and failed nothing;
    skipped cells and dtypes a mutant does not run in do not count."""
    from bn_reference.selftest.flakiness import escaped

    outcomes = {
        ("m:bad", "p1", "float16"): "passed",
        ("m:bad", "p2", "float16"): "failed",
        ("m:bad", "p1", "bfloat16"): "passed",
        ("m:bad", "p2", "bfloat16"): "skipped",
        ("m:other", "p1", "float32"): "skipped",
        ("m:good", "p1", "float16"): "passed",
    }
    assert escaped(outcomes, ["m:bad", "m:other"]) == ["bad [bfloat16]"]


def test_unproven_claims_judge_only_the_mutants_a_narrowed_run_ran():
    """A claim breaks when its mutant ran and no longer fails the property; a mutant a
    ``-k`` run left out entirely is not judged."""
    from bn_reference.selftest.flakiness import unproven_claims

    claims = {"p1": {"half", "f32only"}, "p2": {"half"}}
    outcomes = {("m:half", "p1", "float16"): "failed", ("m:half", "p2", "float16"): "passed"}
    actual = {"p1": ["half"], "p2": []}
    assert unproven_claims(claims, actual, outcomes) == ["p2: half"]
