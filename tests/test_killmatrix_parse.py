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


def test_render_under_k_says_not_caught_instead_of_survived(junit):
    """A run narrowed with ``-k`` may not have run a mutant's killer: ``not caught``, not
    ``SURVIVED``."""
    specs = ["m:bad", "m:good"]
    matrix = killmatrix.parse_junit(junit, specs)
    expect = {"m:bad": "mutant", "m:good": "mutant"}
    assert "SURVIVED" in killmatrix.render(matrix, expect=expect)
    narrowed = killmatrix.render(matrix, expect=expect, every_property=False)
    assert "SURVIVED" not in narrowed and "not caught" in narrowed and "killed" in narrowed


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
    from bn_reference.selftest.killmatrix import unproven_claims

    claims = {"p1": {"half", "f32only"}, "p2": {"half"}}
    outcomes = {("m:half", "p1", "float16"): "failed", ("m:half", "p2", "float16"): "passed"}
    actual = {"p1": ["half"], "p2": []}
    assert unproven_claims(claims, actual, outcomes) == ["p2: half"]


# ---------------------------------------------------------------------------------------
# The command line: --mutant NAME and -k EXPR narrow the run (both catalogues)
# ---------------------------------------------------------------------------------------

CATALOGUES = {  # module -> (a mutant, a correct variant, a property)
    "killmatrix": ("bessel_variance", "welford", "unit_variance"),
    "grad_mutants": ("no_mean_term", "folded", "test_dx_sums_to_zero"),
}


def _module(name):
    from bn_reference.selftest import grad_mutants

    return {"killmatrix": killmatrix, "grad_mutants": grad_mutants}[name]


def _bn_impls(cmd) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--bn-impl"]


@pytest.fixture
def no_suite(monkeypatch):
    """Any attempt to run the property suite fails the test (a usage error must come first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the property suite ran")

    monkeypatch.setattr(killmatrix, "run_suite", refuse)


@pytest.mark.parametrize("module", CATALOGUES)
def test_mutant_and_k_narrow_the_pytest_command(module, tmp_path):
    """``--mutant NAME -k EXPR``: one ``--bn-impl``, that one, and pytest's ``-k EXPR``; a
    repeated ``--mutant`` adds a subject; without either, the whole catalogue runs, no -k."""
    catalogue = _module(module).catalogue()
    mutant, correct, prop = CATALOGUES[module]
    narrowed = killmatrix.plan(catalogue, killmatrix.parse(killmatrix.parser(catalogue), ["--mutant", mutant, "-k", prop]))
    cmd = narrowed.command(tmp_path / "junit.xml")
    assert _bn_impls(cmd) == catalogue.specs([mutant])
    assert cmd[cmd.index("-k") + 1] == prop
    assert [a for a in cmd if a.startswith("properties")] == list(catalogue.paths)
    assert (narrowed.wrong, narrowed.right, narrowed.every_property) == (catalogue.specs([mutant]), [], False)
    two = killmatrix.plan(catalogue, killmatrix.parse(killmatrix.parser(catalogue), ["--mutant", correct, "--mutant", mutant]))
    assert (two.wrong, two.right, two.every_property) == (catalogue.specs([mutant]), catalogue.specs([correct]), True)
    whole = killmatrix.plan(catalogue, killmatrix.parse(killmatrix.parser(catalogue), []))
    assert _bn_impls(whole.command(tmp_path / "junit.xml")) == catalogue.specs([*catalogue.mutants, *catalogue.correct])
    assert "-k" not in whole.command(tmp_path / "junit.xml")


@pytest.mark.parametrize("module", CATALOGUES)
def test_unknown_mutant_is_a_one_line_usage_error(module, capsys, no_suite):
    """An unknown ``--mutant`` name: exit 2, one line naming it and listing the choices."""
    catalogue = _module(module).catalogue()
    with pytest.raises(SystemExit) as exit_:
        _module(module).main(["--mutant", "no_such_mutant"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "invalid choice: 'no_such_mutant'" in err
    assert all(f"'{name}'" in err for name in (*catalogue.mutants, *catalogue.correct))


@pytest.mark.parametrize("module", CATALOGUES)
@pytest.mark.parametrize("narrowing", [["--mutant", "MUTANT"], ["-k", "PROPERTY"]])
def test_readme_refuses_a_narrowed_run(module, narrowing, capsys, no_suite):
    """``--readme`` rewrites the whole table: from a narrowed run it would drop rows and
    catches, so it is a usage error (exit 2, one line), before anything runs."""
    mutant, _, prop = CATALOGUES[module]
    argv = ["--readme", *(a.replace("MUTANT", mutant).replace("PROPERTY", prop) for a in narrowing)]
    with pytest.raises(SystemExit) as exit_:
        _module(module).main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"--readme rewrites the whole table in {killmatrix.TABLE_DOC}" in err


def test_k_selecting_nothing_is_a_usage_error(monkeypatch, capsys):
    """pytest's "no tests ran" (exit 5) under ``-k``: the expression selects no property."""

    def nothing_ran(*args, **kwargs):
        raise killmatrix.SuiteError("property suite exited with status 5; log: x", 5)

    monkeypatch.setattr(killmatrix, "run_suite", nothing_ran)
    with pytest.raises(SystemExit) as exit_:
        killmatrix.main(["--mutant", "bessel_variance", "-k", "no_such_property"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "-k 'no_such_property' selects no property" in err


def _plan(wrong, right, every_property):
    return killmatrix.Plan(wrong, right, "ci", (), 2, killmatrix.PROPERTIES, every_property)


def test_a_narrowed_run_judges_only_what_ran():
    """Under ``-k`` a mutant the selected properties do not fail is not a survivor (its killer
    may be deselected), and one they all skipped is not judged at all; a correct variant that
    fails is a false alarm, and a claim of the table about a mutant that ran and was not
    caught is not borne out. Without ``-k`` every uncaught mutant is a survivor."""
    C = killmatrix.Cell
    cells = {
        "m:caught": {"p1": {"float32": C("failed")}},
        "m:missed": {"p1": {"float32": C("passed")}},
        "m:skipped": {"p1": {"float32": C("skipped")}},
        "m:good": {"p1": {"float32": C("failed")}},
    }
    wrong, right = ["m:caught", "m:missed", "m:skipped"], ["m:good"]
    claims = {"p1": {"caught", "missed", "skipped"}, "p2": {"missed"}}
    narrowed = killmatrix.judge(_plan(wrong, right, False), cells, claims)
    assert (narrowed.caught, narrowed.survivors, narrowed.uncaught, narrowed.not_run) == (["m:caught"], [], ["m:missed"], ["m:skipped"])
    assert narrowed.false_alarms == ["m:good"]
    assert narrowed.unproven == ["p1: missed"]
    assert narrowed.failed
    whole = killmatrix.judge(_plan(wrong, [], True), cells, {})
    assert (whole.survivors, whole.uncaught, whole.not_run, whole.failed) == (["m:missed", "m:skipped"], [], [], True)
    only_caught = killmatrix.judge(_plan(["m:caught", "m:missed"], [], False), cells, {"p1": {"caught"}})
    assert not only_caught.failed


def test_a_narrowed_run_reports_the_mutant_caught(capsys):
    """The real thing, narrowed to one mutant and one property (profile ci, one worker): the
    matrix has that row and that column only, and the verdict says it was caught."""
    code = killmatrix.main(["--mutant", "bessel_variance", "-k", "unit_variance", "--profile", "ci", "-n", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "caught: bessel_variance\nsurvivors: none; false alarms: none" in out
    rows = [line for line in out.splitlines() if line.startswith("|") and "subject" not in line and "-+-" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["bessel_variance"]
    assert "  1  unit_variance" in out and "  2  " not in out


@pytest.mark.parametrize("module", CATALOGUES)
def test_claims_are_judged_only_under_the_tables_draws(module):
    """The table's claims hold for the profile its header names (``ci``): a run under another
    profile, a ``--seed`` or one that rewrites the table does not judge them."""
    catalogue = _module(module).catalogue()
    text = (killmatrix.repo_root() / killmatrix.TABLE_DOC).read_text()

    def judged(*argv):
        return killmatrix.claims_to_judge(text, catalogue.markers, killmatrix.parse(killmatrix.parser(catalogue), list(argv)))

    assert judged() == killmatrix.readme_claims(text, markers=catalogue.markers) != {}
    assert judged("-k", "x") == judged()
    assert judged("--profile", "dev") == judged("--seed", "1") == judged("--readme") == {}
