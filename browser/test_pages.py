"""The HTML reports in a real browser (Debian's chromium, headless, through Playwright's
Python package with ``executable_path``): ``tox -e browser``, not CI (it installs chromium
and runs the suite on a buggy kernel: minutes).

Two pages: the one ``bn-props check mybad:bn --report out.html`` writes for a kernel with
epsilon outside the square root (in a directory outside the checkout), and
docs/conformance.html. On each: every subject and property the run had (read from an
independent source: pytest's collection for the first, docs/conformance.md for the second)
is on the page, visible; clicking a failing cell opens its law, inputs and repro (for the
conformance page a deviation: its cause and smallest input); the page loads, runs its script
without an error and asks for nothing with the network off (every request that is not the
page's own file is aborted and counted; the context is offline too). A screenshot of each
page, a failure opened, goes to ``--screenshots DIR``.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (tox -e browser installs it)")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("BN_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

MYBAD = '''\
"""A buggy batch norm: epsilon added outside the square root."""
import numpy as np


def bn(x, *, axes, scale, offset, epsilon, training):
    if not training:
        return x.copy()
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    y = (x - mean) / (np.sqrt(var) + x.dtype.type(epsilon))  # the bug: sqrt(var) + eps
    return (y * np.asarray(scale, dtype=x.dtype) + np.asarray(offset, dtype=x.dtype)).astype(x.dtype)


bn.bn_dtypes = ("float32", "float64")
'''


@pytest.fixture(scope="session")
def browser_context():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium chromium-driver (tox -e browser does, as root)")
    with playwright.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=FLAGS, headless=True, viewport={"width": 1400, "height": 1000}
        )
        yield context
        context.close()


def open_offline(context, path: Path):
    """The page at ``path`` with the network off: returns (page, requests that were not the
    file itself, script errors)."""
    context.set_offline(True)
    asked, errors = [], []
    page = context.new_page()
    url = path.resolve().as_uri()

    def gate(route):
        if route.request.url.split("#")[0] != url:
            asked.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", gate)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url, wait_until="load")
    return page, asked, errors


def _row_key(nodeid: str, spec: str) -> str:
    """The page's row of a collected test: its function and its parameters but the subject
    and the dtype (``test_x[mybad:bn-float32-training=None]`` -> ``test_x[training=None]``)."""
    name, _, params = nodeid.split("::")[-1].partition("[")
    rest = [p for p in params.rstrip("]").removeprefix(spec).split("-") if p and p not in ("float32", "float64", "float16", "bfloat16")]
    return name + (f"[{'-'.join(rest)}]" if rest else "")


@pytest.fixture(scope="session")
def bad_run(tmp_path_factory):
    """``bn-props check mybad:bn --report out.html`` in a fresh directory outside the
    checkout; (exit status, the page, the properties pytest collects for it)."""
    here = tmp_path_factory.mktemp("project")
    (here / "mybad.py").write_text(MYBAD)
    env = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("BN_IMPL", None)
    cli = [sys.executable, "-m", "bn_reference.harness.cli", "check", "mybad:bn"]
    run = subprocess.run([*cli, "--profile", "ci", "-n", "2", "--report", "out.html"], cwd=here, env=env, capture_output=True, text=True)
    from bn_reference.harness.activation import suite_dir

    listed = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite_dir()), "-c", str(suite_dir() / "bn-props.ini"), "-p", "no:cacheprovider",
         "--bn-impl", "mybad:bn", "--collect-only", "-q"],
        cwd=here, env={**env, "PYTHONPATH": str(here)}, capture_output=True, text=True,
    )
    props = {_row_key(line, "mybad:bn") for line in listed.stdout.splitlines() if "::" in line}
    assert props, listed.stdout[-2000:] + listed.stderr[-2000:]
    return run, here / "out.html", props


def check_page(context, path: Path, subjects, properties, screenshot: Path, failing: str, expect: list[str]):
    """``subjects``: every one must be on the heat map, or listed under "Not on this page"
    with its reason (a conformance page rendered from a run of some groups says which it
    left out); at least one on the map."""
    page, asked, errors = open_offline(context, path)
    try:
        assert page.title()
        shown_subjects = set(page.locator("th.subj").evaluate_all("els => els.map(e => e.dataset.subject)"))
        not_run = set(page.locator("[data-not-run]").evaluate_all("els => els.map(e => e.dataset.notRun)"))
        assert shown_subjects and not shown_subjects & not_run
        assert shown_subjects | not_run == set(subjects), (sorted(set(subjects) - shown_subjects - not_run), sorted(shown_subjects - set(subjects)))
        subjects = sorted(shown_subjects)
        for s in subjects:
            assert page.locator(f'th.subj[data-subject="{s}"]').is_visible(), s
            assert page.locator(f'table.subjects tr[data-subject="{s}"]').is_visible(), s
        shown_props = set(page.locator("tr[data-property]").evaluate_all("els => els.map(e => e.dataset.property)"))
        assert shown_props == set(properties), (sorted(set(properties) - shown_props), sorted(shown_props - set(properties)))
        for p in properties:
            assert page.locator(f'tr[data-property="{p}"] th.prop').is_visible(), p
        panel = page.locator("#detail")
        assert not panel.is_visible()
        cells = page.locator(failing)
        assert cells.count() > 0, failing
        cells.first.click()
        assert panel.is_visible()
        text = panel.inner_text()
        for piece in expect:
            assert re.search(piece, text), (piece, text[:3000])
        assert re.fullmatch(r"#cell-\d+", page.evaluate("location.hash"))
        page.screenshot(path=str(screenshot))
        page.keyboard.press("Escape")
        assert not panel.is_visible()
        link = page.locator("section.list a.open").first  # the list below the map opens a cell too
        link.click()
        assert panel.is_visible()
        assert errors == [] and asked == [], (errors, asked)
    finally:
        page.close()


def test_bad_kernel_page(bad_run, browser_context, screenshots):
    run, path, props = bad_run
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert path.exists() and "bn-props report: out.html (HTML)" in run.stdout
    check_page(
        browser_context, path, ["mybad:bn"], props, screenshots / "report-example.png",
        failing='tr[data-property="test_epsilon_sensitivity"] td.m-fail',
        expect=[r"FAIL", r"epsilon", r"the subject received", r"repro script", r"bn-props repro for .*test_epsilon_sensitivity",
                r"reproduce_failure\(", r"worst err/bound", r"examples run", r"slice size: "],
    )


def conformance_doc():
    """Subjects and properties of docs/conformance.md (its summary and its matrix header)."""
    md = (ROOT / "docs" / "conformance.md").read_text()
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    subjects = re.findall(r"^\| `([a-z0-9_]+)` \| `", summary, re.M)
    matrix = md.split("## Every property", 1)[1]
    header = next(line for line in matrix.splitlines() if line.startswith("| subject |"))
    props = ["test_" + p for p in re.findall(r"`([^`]+)`", header)]
    return subjects, props


def test_conformance_page(browser_context, screenshots):
    path = ROOT / "docs" / "conformance.html"
    subjects, props = conformance_doc()
    assert len(subjects) >= 10 and len(props) >= 10
    check_page(
        browser_context, path, subjects, props, screenshots / "conformance.png",
        failing="td.cell.m-deviation",
        expect=[r"known deviation", r"cause", r"smallest falsifying input", r"BNCase\(", r"reproduce_failure\("],
    )


def test_the_network_gate_sees_a_fetch(browser_context, tmp_path):
    """The offline check is not vacuous: a page that asks for an image, a script and a
    stylesheet elsewhere has those requests seen and aborted."""
    page_file = tmp_path / "fetching.html"
    page_file.write_text('<!DOCTYPE html><html><head><link rel="stylesheet" href="https://example.com/s.css">'
                         '<script src="https://example.com/s.js"></script></head><body><img src="http://example.com/x.png"></body></html>')
    page, asked, _ = open_offline(browser_context, page_file)
    page.close()
    assert {u.split("/")[-1] for u in asked} == {"s.css", "s.js", "x.png"}, asked
