"""The HTML report (``harness.report_html``), without a browser: the page is well-formed,
fetches nothing, names every subject and property, carries each cell's figures and each
failure's repro; ``report.write`` picks it by suffix; docs/conformance.html's model gives a
finding's cell its cause. (The page in a real browser: browser/test_pages.py, tox -e browser.)"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import jsonschema
import pytest

from bn_reference.harness import report, report_html

pytestmark = pytest.mark.meta

VOID = {"meta", "br", "input", "img", "link", "hr", "stop", "rect", "path", "col", "wbr"}


class Page(HTMLParser):
    """Checks tag balance and collects what the tests look at."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.attrs, self.scripts = [], [], [], {}
        self._script = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.attrs.append((tag, a))
        if tag == "script":
            self._script = a.get("id", ""), []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.attrs.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "script" and self._script:
            self.scripts[self._script[0]] = "".join(self._script[1])
            self._script = None

    def handle_data(self, data):
        if self._script:
            self._script[1].append(data)


def parse(text: str) -> Page:
    p = Page()
    p.feed(text)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    return p


def _cells(tmp_path):
    repro = tmp_path / ".bn-props" / "repro" / "repro_test_zero_mean.py"
    repro.parent.mkdir(parents=True)
    repro.write_text("# the repro script\nprint('</script><b>not markup</b>')\n")
    failure = {
        "message": "zero mean: 1 of 3 elements outside the error model </script>\n  worst at [2]: err/bound = 4.2",
        "reproduce_failure": "@reproduce_failure('6.170.17', b'AAE=')",
        "falsifying_example": "Draw 1 (case): BNCase(x=float32 (3,) [0., 1., 2.])",
        "calls": [{"label": "BN(x)", "function": None, "x": {"dtype": "float32", "shape": [1], "hex": "0000803f"},
                   "kwargs": {"axes": [0], "scale": 1.0, "offset": 0.0, "epsilon": 0.001, "training": True}}],
        "repro": str(repro.relative_to(tmp_path)),
    }
    base = {"duration": 0.1, "failure": None, "examples": 200, "ratio": None}
    return {
        ("mine:bn", "test_zero_mean[float32]"): {**base, "outcome": "failed", "ratio": 4.2, "examples": 7, "failure": failure,
                                                 "nodeid": "test_moments.py::test_zero_mean[mine:bn-float32]", "covered": ["rank: 1", "slice size: 2-7"],
                                                 "law": "BN(x) has zero mean over the reduced axes."},
        ("mine:bn", "test_zero_mean[float64]"): {**base, "outcome": "passed", "ratio": 0.02, "nodeid": "n2", "covered": ["rank: 3"]},
        ("mine:bn", "test_unit_variance[float32]"): {**base, "outcome": "xfailed", "nodeid": "n3", "reason": "a known cause"},
        ("mine:bn", "test_momentum_update"): {**base, "outcome": "skipped", "nodeid": "n4", "examples": None, "reason": "no moving statistics"},
        ("ref", "test_zero_mean[float32]"): {**base, "outcome": "passed", "ratio": 0.3, "nodeid": "n5"},
        ("ref", "test_unit_variance[float32]"): {**base, "outcome": "xpassed", "nodeid": "n6"},
        ("torch_batch_norm", "test_single_element_slices_give_the_offset[float32]"): {**base, "outcome": "xfailed", "nodeid": "n8",
                                                                               "reason": "refused by design"},
        ("ref", "test_inference_returns_input[float32-training=None]"): {**base, "outcome": "error", "nodeid": "n7",
                                                                       "failure": report.failure_details("E   RuntimeError: boom")},
    }


def test_page_is_well_formed_self_contained_and_complete(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = report.build(_cells(tmp_path), ["mine:bn", "ref", "torch_batch_norm"], "ci", contracts={"mine:bn": "float32-accumulation"}, seed="derandomized",
                         environment={"versions": {"python": "3.11"}, "subject_info": {"mine:bn": {"dtypes": ["float32", "float64"], "api": None}}})
    jsonschema.validate(built, report.SCHEMA)
    [(path, kind)] = report.write(tmp_path / "out.html", built)
    assert kind == "HTML" and not (tmp_path / "out.json").exists()
    text = path.read_text(encoding="utf-8")
    page = parse(text)

    # self-contained: no element loads anything; links stay in the page
    for tag, attrs in page.attrs:
        assert "src" not in attrs, (tag, attrs)
        if "href" in attrs:
            assert attrs["href"].startswith("#"), attrs
    assert not re.search(r"https?:|//[a-z]|url\((?!#)|@import", text), "a fetchable address"

    subjects = {a["data-subject"] for t, a in page.attrs if t == "th" and "data-subject" in a}
    assert subjects == {"mine:bn", "ref", "torch_batch_norm"}
    rows = {a["data-property"] for t, a in page.attrs if t == "tr" and "data-property" in a}
    assert rows == {"test_zero_mean", "test_unit_variance", "test_momentum_update", "test_inference_returns_input[training=None]",
                    "test_single_element_slices_give_the_offset"}
    marks = {c.split()[1] for t, a in page.attrs if t == "td" and "data-i" in a for c in [a["class"]]}
    assert marks == {"m-fail", "m-pass", "m-deviation", "m-refusal", "m-skip", "m-xpass", "m-error"}  # a refusal finding: R

    data = json.loads(page.scripts["bn-data"])  # "</script>" in a message did not end the script
    fail = next(c for c in data["cells"] if c["mark"] == "fail")
    assert fail["failure"]["repro_text"].startswith("# the repro script") and "</script>" in fail["failure"]["message"]
    assert (fail["ratio"], fail["examples"], [data["labels"][i] for i in fail["covered"]]) == (4.2, 7, ["rank: 1", "slice size: 2-7"])
    assert data["laws"][fail["row"]] == "BN(x) has zero mean over the reduced axes."
    assert next(c for c in data["cells"] if c["mark"] == "deviation")["note"] == "a known cause"
    failing_link = [a for t, a in page.attrs if t == "a" and a.get("data-i") == str(data["cells"].index(fail))]
    assert failing_link and failing_link[0]["href"] == f"#cell-{data['cells'].index(fail)}"
    assert "derandomized" in text and "python 3.11" in text


def test_json_and_markdown_keep_their_meaning(tmp_path):
    written = report.write(tmp_path / "r.json", report.build({}, [], "ci"))
    assert [k for _, k in written] == ["JSON", "Markdown"]
    assert json.loads((tmp_path / "r.json").read_text())["schema"] == report.SCHEMA_ID


def test_colour_scale_orders_ratios():
    """Pass colours move from green toward yellow as err/bound nears 1; beyond 1 is red."""
    hue = lambda r: int(re.match(r"hsl\((\d+)", report_html.ratio_colour(r)).group(1))  # noqa: E731
    assert hue(1e-4) == hue(1e-3) > hue(0.01) > hue(0.1) > hue(1.0) > hue(2.0) == 0


def test_conformance_page_gives_a_finding_its_cause(tmp_path):
    """docs/conformance.html's model: a failure explained by a finding is a deviation cell
    whose note is the finding's cause; an unexplained one is a FAIL; subjects get a family."""
    from bn_reference.selftest import conformance
    from bn_reference.subjects.framework_findings import FINDINGS, specs_of

    finding = next(f for f in FINDINGS if f.kind == "deviation" and f.dtypes is None)
    subject = specs_of(finding.subjects[0])[0]
    failure = report.failure_details("E   AssertionError: outside\nE   Draw 1 (case): BNCase(x=float32 (2,) [0., 1.])")
    rows = [
        {"subject": subject, "property": f"{finding.prop}[float32]", "nodeid": "a", "outcome": "failed", "examples": 3,
         "worst_ratio": 9.0, "duration_s": 0.1, "failure": failure},
        {"subject": subject, "property": "test_no_such_law[float32]", "nodeid": "b", "outcome": "failed", "examples": 3,
         "worst_ratio": 2.0, "duration_s": 0.1, "failure": failure},
        {"subject": subject, "property": "test_zero_mean[float64]", "nodeid": "c", "outcome": "passed", "examples": 20,
         "worst_ratio": 0.1, "duration_s": 0.1, "failure": None},
    ]
    (tmp_path / "g.json").write_text(json.dumps(report.build({}, [subject], "conformance") | {"results": rows}))
    model = conformance.page_model(tmp_path)
    marks = {c["property"]: (c["mark"], c["note"]) for c in model["cells"]}
    assert marks[f"{finding.prop}[float32]"] == ("deviation", finding.cause)
    assert marks["test_no_such_law[float32]"][0] == "fail"
    assert marks["test_zero_mean[float64]"][0] == "pass"
    assert model["subjects"][0]["group"] == conformance.family(subject) != "other"
    not_run = {r["subject"] for r in model["not_run"]}  # the other groups: said so, not silently absent
    assert subject not in not_run and not_run | {subject} == set(name for g in conformance.GROUPS.values() for name in g.subjects)
    page = parse(report_html.page(model))
    assert {a["data-subject"] for t, a in page.attrs if t == "th" and "data-subject" in a} == {subject}


def test_cli_report_is_repeatable(tmp_path):
    """``bn-props check --report out.json --report out.html``: both reach pytest's
    ``--bn-report``, in order (JSON for tools, the page for people)."""
    from types import SimpleNamespace

    from bn_reference.harness import cli

    options = SimpleNamespace(specs=["a:f"], workers=None, report=["out.json", "out.html"], repro_dir=None, db=None)
    args = cli.pytest_args(options, here=tmp_path)
    assert [args[i + 1] for i, a in enumerate(args) if a == "--bn-report"] == ["out.json", "out.html"]
    parsed = cli._parser().parse_args(["check", "a:f", "--report", "out.json", "--report", "out.html"])
    assert parsed.report == ["out.json", "out.html"]


def test_conformance_markdown_opens_with_causes_and_keeps_lines_short(tmp_path):
    """docs/conformance.md: a causes table first (one id per cause), each finding one line
    citing its cause's id, each cause in full once with its smallest input, and no line past
    200 characters (the long cause texts and printed arrays are wrapped)."""
    from bn_reference.selftest import conformance
    from bn_reference.subjects.framework_findings import FINDINGS, specs_of

    finding = next(f for f in FINDINGS if f.kind == "deviation" and f.dtypes is None)
    subject = specs_of(finding.subjects[0])[0]
    long_input = "Draw 1 (case): BNCase(x=float32 (64,) [" + ", ".join(["0.123456"] * 60) + "])"
    failure = report.failure_details(f"E   AssertionError: outside\nE   {long_input}")
    rows = [
        {"subject": subject, "property": f"{finding.prop}[{d}]", "nodeid": f"n{d}", "outcome": "failed", "examples": 7,
         "worst_ratio": 9.0, "duration_s": 0.1, "failure": failure}
        for d in ("float32", "float16")
    ] + [
        {"subject": subject, "property": "test_zero_mean[float64]", "nodeid": "c", "outcome": "passed", "examples": 200,
         "worst_ratio": 0.1, "duration_s": 0.1, "failure": None},
    ]
    (tmp_path / "pytorch.json").write_text(json.dumps(report.build({}, [subject], "ci") | {"results": rows}))
    text, problems = conformance.render(tmp_path)
    assert problems == 0
    assert text.index("## Causes") < text.index("## Summary") < text.index("## Findings")
    assert "| C1 |" in text
    assert " ".join(text.split()).count(" ".join(finding.cause.split())) == 1  # in full once; elsewhere cited by its id
    assert f"* `{subject}` `{finding.prop.removeprefix('test_')}` (float32, float16): deviation, C1" in text
    assert text.count("### C1:") == 1 and "Smallest falsifying input" in text
    assert max(len(line) for line in text.splitlines()) <= 200
    assert "| pytorch | `ci` | 200 | 7 |" in text  # the profile's examples and the median of the cells' counts, by group


def test_conformance_runs_say_whether_xla_started_cold(tmp_path):
    """A JAX group's seconds depend on XLA's persistent compilation cache: the Runs table says
    what each run started with (recorded by ``conformance.run``; blank for the groups without
    JAX and for runs that did not record it)."""
    from bn_reference.selftest import conformance

    cache = tmp_path / "jax-cache"
    assert conformance.xla_cache_entries(cache) == 0  # no cache directory yet: a cold start
    cache.mkdir()
    for i in range(3):
        (cache / f"entry{i}").write_text("")
    assert conformance.xla_cache_entries(cache) == 3
    runs = {
        "flax": {"exit": 1, "seconds": 500, "pytest_args": ["-n", "2"], "xla_cache_entries_at_start": 0},
        "keras_jax": {"exit": 1, "seconds": 160, "pytest_args": ["-n", "2"], "xla_cache_entries_at_start": 28152},
        "pytorch": {"exit": 1, "seconds": 150, "pytest_args": ["-n", "2"]},
    }
    (tmp_path / "meta.json").write_text(json.dumps({"subjects": {}, "missing": {}, "runs": runs}))
    text, _ = conformance.render(tmp_path)
    assert "| flax | 500 | cold (empty) | `-n 2` |" in text
    assert "| keras_jax | 160 | warm (28,152 entries) | `-n 2` |" in text
    assert "| pytorch | 150 |  | `-n 2` |" in text
