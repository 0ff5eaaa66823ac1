"""The kill matrix: which property catches which subject.

Run the property suite once over many subjects (``run_suite``), read its JUnit XML back
as ``{subject spec: {property: outcome}}`` (``parse_junit``), and draw it as a text table
(``render``). ``tests/test_kill_matrix.py`` uses it to check that every mutant
in ``bn_reference.selftest.mutants`` is caught and every correct variant passes; a README table or
a benchmark can reuse the same three functions.

A *property* is a test function plus its parameters other than the subject and the dtype
(e.g. ``test_inference_returns_input[training=None]``). A subject declaring several
dtypes runs each property once per dtype; its cell aggregates them (``failed`` if any
dtype failed, then ``error``, then ``passed``, and ``skipped`` only if all were skipped).
``parse_cells`` keeps the per-dtype detail: outcome, first line of the message, worst
err/bound ratio.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bn_reference.mathematics.checks import RATIO_KEY
from bn_reference.harness.ids import split_id  # the one test-id parser (the crash handler uses it too)
from bn_reference.harness.profiles import draws_of

__all__ = [
    "OUTCOMES",
    "NO_SUBJECT",
    "Cell",
    "SuiteError",
    "run_suite",
    "parse_cells",
    "parse_junit",
    "aggregate",
    "render",
    "killers",
    "repo_root",
    "short_name",
]

OUTCOMES = ("failed", "error", "passed", "skipped")  # aggregation priority, first wins
NO_SUBJECT = "(no subject)"  # tests that are not parametrized over subjects
SYMBOLS = {"failed": "X", "error": "E", "passed": ".", "skipped": "s", None: " "}
PARTIAL_FAIL = "x"  # failed for some of the subject's dtypes, passed for others
RAN = ("passed", "failed")  # outcomes of a cell that ran (not skipped, not an xfail)
PROPERTIES = ("properties",)  # what run_suite runs by default ...
IGNORE = ("tests", "properties/test_seed_golden.py")  # ... and leaves out
TABLE_DOC = "docs/properties.md"  # the tables of what each property catches (--readme rewrites them)


class SuiteError(RuntimeError):
    """The child pytest did not produce a usable report (usage error, crash, timeout).
    ``returncode``: the child's exit status (None: it timed out)."""

    def __init__(self, message: str, returncode: int | None = None):
        super().__init__(message)
        self.returncode = returncode


@dataclass(frozen=True)
class Cell:
    """One test's outcome: a (subject, property, dtype) triple."""

    outcome: str
    message: str = ""
    ratio: float | None = None
    seconds: float = 0.0


def repo_root() -> Path:
    """The checkout this module lives in (``bn_reference``'s parent directory)."""
    return Path(__file__).resolve().parents[2]


def _child_env(environ=None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    # The child picks its subjects from --bn-impl only, and must not think it is an
    # xdist worker of the parent run.
    for key in list(env):
        if key == "BN_IMPL" or key.startswith("PYTEST_XDIST") or key == "PYTEST_CURRENT_TEST":
            env.pop(key)
    return env


def run_suite(
    specs,
    profile: str = "ci",
    extra_args=(),
    *,
    junit_path: str | os.PathLike | None = None,
    workers: int | str | None = 2,
    paths=PROPERTIES,
    ignore=IGNORE,
    root: str | os.PathLike | None = None,
    timeout: float | None = 3600,
    env: dict | None = None,
) -> Path:
    """Run the property suite once in a subprocess over ``specs`` (one ``--bn-impl`` each)
    and return the path of its JUnit XML report.

    The child runs ``sys.executable -m pytest`` in ``root`` (default: this checkout) with
    ``--hypothesis-profile=profile``, ``-p xdist -n workers`` (``workers=None``: no xdist),
    without ``BN_IMPL`` in its environment, plus the variables in ``env`` (e.g.
    ``PYTHONHASHSEED``). Its combined stdout/stderr is written next to
    the report (``<junit>.log``). Test failures are the point (exit status 1); any other
    non-zero status without a report raises ``SuiteError`` with the log's tail.
    """
    root = Path(root) if root is not None else repo_root()
    if junit_path is None:
        junit_path = Path(tempfile.mkdtemp(prefix="bn-killmatrix-")) / "junit.xml"
    junit_path = Path(junit_path).resolve()
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = junit_path.with_name(junit_path.name + ".log")
    cmd = suite_command(specs, profile, extra_args, junit_path=junit_path, workers=workers, paths=paths, ignore=ignore)
    started = time.monotonic()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        try:
            proc = subprocess.run(cmd, cwd=root, env={**_child_env(), **(env or {})}, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SuiteError(f"property suite timed out after {timeout} s; log: {log_path}\n{_tail(log_path)}") from None
        log.write(f"\n[bn-killmatrix] exit status {proc.returncode} after {time.monotonic() - started:.1f} s\n")
    # 0: all passed, 1: some failed; anything else (interrupted, internal/usage error,
    # nothing collected) means there is no matrix to read.
    if proc.returncode not in (0, 1) or not junit_path.exists():
        raise SuiteError(
            f"property suite exited with status {proc.returncode}; log: {log_path}\n{_tail(log_path)}", proc.returncode
        )
    return junit_path


def suite_command(specs, profile: str, extra_args, *, junit_path: Path, workers, paths, ignore) -> list[str]:
    """The child's command line (``run_suite``): pytest over ``paths`` with one ``--bn-impl``
    per spec, then ``extra_args``."""
    cmd = [sys.executable, "-m", "pytest", *map(str, paths)]
    cmd += [f"--ignore={p}" for p in ignore]
    if workers is not None:
        cmd += ["-p", "xdist", "-n", str(workers)]
    cmd += [f"--hypothesis-profile={profile}", "-q", "-p", "no:cacheprovider", f"--junitxml={junit_path}"]
    cmd += [f"--bn-repro-dir={junit_path.parent / 'repro'}"]  # mutants' repros beside the report, not in the checkout
    for spec in specs:
        cmd += ["--bn-impl", spec]
    return cmd + list(extra_args)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------
# Reading the report
# ---------------------------------------------------------------------------------------


def _outcome(case: ET.Element) -> tuple[str, str]:
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        el = case.find(tag)
        if el is not None:
            text = el.get("message") or (el.text or "")
            first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
            return outcome, first
    return "passed", ""


def parse_cells(path, specs=None) -> dict[str, dict[str, dict[str | None, Cell]]]:
    """``{subject: {property: {dtype: Cell}}}`` from a JUnit XML report.

    ``specs`` (optional) are the subject specs the suite ran with: they make splitting a
    test id unambiguous. Tests with no subject parameter (harness self-tests, collection
    errors) are filed under the subject ``NO_SUBJECT``, keyed by module::name.
    """
    root = ET.parse(path).getroot()
    cells: dict[str, dict[str, dict[str | None, Cell]]] = {}
    for case in root.iter("testcase"):
        name = case.get("name", "")
        classname = case.get("classname", "")
        prop, subject, dtype = split_id(name, specs)
        if subject is None:
            subject, prop = NO_SUBJECT, f"{classname}::{name}" if classname else name
        outcome, message = _outcome(case)
        ratio = None
        for p in case.iter("property"):
            if p.get("name") == RATIO_KEY:
                try:
                    ratio = float(p.get("value"))
                except (TypeError, ValueError):
                    pass
        try:
            seconds = float(case.get("time", 0.0))
        except ValueError:
            seconds = 0.0
        row = cells.setdefault(subject, {}).setdefault(prop, {})
        previous = row.get(dtype)
        cell = Cell(outcome, message, ratio, seconds)
        # A test reported twice (an error in teardown after a pass) keeps the worse outcome.
        if previous is None or OUTCOMES.index(outcome) < OUTCOMES.index(previous.outcome):
            row[dtype] = cell
    return cells


def aggregate(outcomes) -> str:
    """One outcome for several dtypes: failed > error > passed > skipped."""
    outcomes = list(outcomes)
    for o in OUTCOMES:
        if o in outcomes:
            return o
    return "skipped"


def parse_junit(path, specs=None) -> dict[str, dict[str, str]]:
    """The kill matrix ``{subject spec: {property: outcome}}`` of a JUnit XML report, with
    outcome one of ``failed``, ``error``, ``passed``, ``skipped`` (aggregated over dtypes)."""
    return matrix_of(parse_cells(path, specs))


def matrix_of(cells) -> dict[str, dict[str, str]]:
    """The kill matrix of ``parse_cells``' nested cells (``parse_junit``)."""
    return {
        subject: {prop: aggregate(c.outcome for c in by_dtype.values()) for prop, by_dtype in row.items()}
        for subject, row in cells.items()
    }


def caught_in(by_prop: dict) -> list[str]:
    """The dtypes in which some property failed a subject (its ``parse_cells`` row), in
    ``KNOWN_DTYPES`` order: a half-precision mutant is caught in the dtype it targets."""
    from bn_reference.subjects import KNOWN_DTYPES

    failed = {d for by_dtype in by_prop.values() for d, c in by_dtype.items() if c.outcome == "failed"}
    return [d for d in KNOWN_DTYPES if d in failed] + sorted(str(d) for d in failed if d not in KNOWN_DTYPES)


def killers(row: dict[str, str]) -> list[str]:
    """The properties that fail a subject (its row of the matrix)."""
    return [p for p, o in row.items() if o == "failed"]


# ---------------------------------------------------------------------------------------
# Drawing it
# ---------------------------------------------------------------------------------------


def short_name(spec: str) -> str:
    """A subject's name without its module (``module:attr`` -> ``attr``)."""
    return spec.split(":", 1)[1] if ":" in spec else spec


def _prop_label(prop: str) -> str:
    return prop[5:] if prop.startswith("test_") else prop


def render(matrix, *, expect=None, cells=None, width: int = 200, every_property: bool = True) -> str:
    """The matrix as a plain-text table: one row per subject, one numbered column per
    property (legend below).

    ``X`` failed (the property catches the subject), ``x`` failed for some of its dtypes
    only (needs ``cells`` from ``parse_cells``), ``.`` passed, ``s`` skipped, ``E`` error,
    blank: not run. ``expect`` maps a spec to ``"mutant"`` or ``"correct"`` and adds a
    verdict column: ``killed``/``SURVIVED`` for mutants, ``ok``/``FALSE ALARM`` for correct
    variants; ``every_property=False`` (a run narrowed with ``-k``) says ``not caught`` instead
    of ``SURVIVED`` (the property that kills it may not have run). Subjects without a subject
    parameter (``NO_SUBJECT``) are listed below the table.
    """
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    expect = dict(expect or {})
    subjects = [s for s in matrix if s != NO_SUBJECT]
    order = {"mutant": 0, "correct": 1}
    subjects.sort(key=lambda s: (order.get(expect.get(s), 2), list(expect).index(s) if s in expect else 0, s))
    props = sorted({p for s in subjects for p in matrix[s]})
    table = Table(box=box.ASCII, show_lines=False, pad_edge=False)
    table.add_column("subject", no_wrap=True)
    for i, _ in enumerate(props, 1):
        table.add_column(str(i), justify="center", no_wrap=True)
    table.add_column("kills", justify="right")
    if cells is not None:
        table.add_column("caught in", no_wrap=True)  # the dtypes in which some property failed it
    if expect:
        table.add_column("verdict", no_wrap=True)
    for s in subjects:
        row = matrix[s]
        marks = []
        for p in props:
            o = row.get(p)
            mark = SYMBOLS.get(o, "?")
            if o == "failed" and cells is not None:
                by_dtype = cells.get(s, {}).get(p, {})
                if any(c.outcome == "passed" for c in by_dtype.values()):
                    mark = PARTIAL_FAIL
            marks.append(mark)
        n = len(killers(row))
        extra = [str(n)]
        if cells is not None:
            extra.append(",".join(caught_in(cells.get(s, {}))) or "-")
        if expect:
            kind = expect.get(s)
            if kind == "mutant":
                extra.append("killed" if n else "SURVIVED" if every_property else "not caught")
            elif kind == "correct":
                extra.append("FALSE ALARM" if n or "error" in row.values() else "ok")
            else:
                extra.append("")
        label = short_name(s) + ("  (correct)" if expect.get(s) == "correct" else "")
        table.add_row(*(Text(c) for c in (label, *marks, *extra)))
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(table)
    lines = [out.getvalue().rstrip("\n"), ""]
    lines.append("X failed (caught)  x failed for some dtypes  . passed  s skipped  E error")
    for i, p in enumerate(props, 1):
        lines.append(f"{i:>3}  {_prop_label(p)}")
    other = matrix.get(NO_SUBJECT)
    if other:
        bad = {p: o for p, o in other.items() if o in ("failed", "error")}
        lines.append("")
        lines.append(f"tests without a subject: {len(other)} ({len(bad)} failed or errored)")
        for p, o in sorted(bad.items()):
            lines.append(f"  {o}: {p}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# The README's "what each property catches" table
# ---------------------------------------------------------------------------------------

README_START = "<!-- kill-matrix:start -->"
README_END = "<!-- kill-matrix:end -->"


def catches(matrix, mutant_specs) -> dict[str, list[str]]:
    """``{property: [mutant names it fails]}`` for every property in the matrix."""
    props = sorted({p for s in matrix if s != NO_SUBJECT for p in matrix[s]})
    return {p: [short_name(s) for s in mutant_specs if matrix.get(s, {}).get(p) == "failed"] for p in props}


def markdown_catches(matrix, mutant_specs, profile: str, *, markers=(README_START, README_END), catalogue="bn_reference/selftest/mutants.py") -> str:
    """The Markdown table for the README (between ``markers``, default ``README_START`` and
    ``README_END``; the gradient mutants' table has its own, ``grad_mutants.MARKERS``)."""
    lines = [
        markers[0],
        f"| property | mutants it catches (`{catalogue}`, profile `{profile}`) |",
        "|---|---|",
    ]
    for prop, names in catches(matrix, mutant_specs).items():
        lines.append(f"| `{prop}` | {', '.join(f'`{n}`' for n in names) or '-'} |")
    lines.append(markers[1])
    return "\n".join(lines)


def readme_claims(readme_text: str, *, markers=(README_START, README_END)) -> dict[str, set[str]]:
    """Parse the README table (between ``markers``) back into ``{property: {mutant names}}``."""
    start, end = readme_text.index(markers[0]), readme_text.index(markers[1])
    claims = {}
    for line in readme_text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            claims[cells[0].strip("`")] = {n.strip().strip("`") for n in cells[1].split(",") if n.strip() not in ("", "-")}
    return claims


def outcomes_of(cells) -> dict[tuple[str, str, str], str]:
    """``{(subject, property, dtype): outcome}`` of ``parse_cells``' nested cells."""
    return {(s, p, str(d)): c.outcome for s, row in cells.items() for p, by in row.items() for d, c in by.items()}


def unproven_claims(claims: dict, actual: dict, outcomes: dict) -> list[str]:
    """``"property: mutant"`` for each claim of the table (``claims``, ``{property: {mutant
    names}}``) that this run's catches (``actual``) do not bear out. A run narrowed with
    ``-k`` checks only the claims of the properties and mutants it ran (a mutant with no
    cell run is not judged; a mutant whose cells ran but did not fail is)."""
    ran = {short_name(s) for (s, _p, _d), o in outcomes.items() if o in RAN}
    return sorted(
        f"{prop}: {name}"
        for prop, claimed in claims.items()
        if prop in actual
        for name in claimed - set(actual[prop])
        if name in ran
    )


# ---------------------------------------------------------------------------------------
# The command line, shared by the catalogues (mutants.py here, grad_mutants.py)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """A catalogue of mutants and correct variants as the command line runs it: its ``python
    -m`` module, its source file (named in its table), the names in it, how a name becomes a
    ``--bn-impl`` spec, the property files it runs and the markers of its table in
    ``TABLE_DOC``."""

    module: str
    source: str
    mutants: tuple[str, ...]
    correct: tuple[str, ...]
    specs: Callable[[list[str]], list[str]]
    paths: tuple[str, ...] = PROPERTIES
    markers: tuple[str, str] = (README_START, README_END)


@dataclass(frozen=True)
class Plan:
    """One kill-matrix run: the mutants' and correct variants' specs, the pytest arguments
    after them, and whether ``-k`` left properties out."""

    wrong: list[str]
    right: list[str]
    profile: str
    extra: tuple[str, ...]
    workers: int
    paths: tuple[str, ...]
    every_property: bool

    @property
    def specs(self) -> list[str]:
        return self.wrong + self.right

    def command(self, junit_path: Path) -> list[str]:
        """The pytest command ``run`` starts."""
        return suite_command(self.specs, self.profile, self.extra, **self._where(junit_path))

    def run(self, junit_path: Path) -> Path:
        return run_suite(self.specs, self.profile, self.extra, **self._where(junit_path))

    def _where(self, junit_path: Path) -> dict:
        return {"junit_path": junit_path, "workers": self.workers, "paths": self.paths, "ignore": IGNORE}


def parser(catalogue: Catalogue):
    """The options: ``--readme``, ``--profile``, ``--seed``, ``-n``, and the narrowing ones,
    ``--mutant NAME`` (repeatable) and ``-k EXPR``. Usage errors are one line, exit 2."""
    from bn_reference.harness.cli import _Parser  # argparse with one-line usage errors

    p = _Parser(prog=f"python -m {catalogue.module}", description=f"Run the property suite over {catalogue.source} and print the kill matrix.")
    p.add_argument("--readme", action="store_true", help=f"rewrite the table in {TABLE_DOC} from this run (a whole run only)")
    p.add_argument("--profile", default="ci", help="Hypothesis profile (default: ci)")
    p.add_argument("--seed", type=int, default=None, help="--hypothesis-seed for the run (with a non-derandomized profile)")
    p.add_argument("-n", dest="workers", type=int, default=2, metavar="N", help="pytest-xdist workers (default: 2)")
    p.add_argument(
        "--mutant", action="append", dest="names", metavar="NAME", choices=(*catalogue.mutants, *catalogue.correct),
        help=f"run only this mutant or correct variant of {catalogue.source} (repeatable)",
    )
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="run only the properties pytest's -k EXPR selects")
    return p


def parse(p, argv=None):
    """The options ``p`` (``parser``) parses from ``argv``; ``--readme`` from a narrowed run
    is a usage error (its table would lose the rows and catches of what did not run)."""
    args = p.parse_args(argv)
    if args.readme and (args.names or args.keyword):
        p.error(f"--readme rewrites the whole table in {TABLE_DOC}; run it without --mutant and -k")
    return args


def plan(catalogue: Catalogue, args) -> Plan:
    """What to run: the named subjects (default: the whole catalogue), ``-k`` and the seed."""
    keep = set(args.names or (*catalogue.mutants, *catalogue.correct))
    extra = (*(("-k", args.keyword) if args.keyword else ()), *(() if args.seed is None else (f"--hypothesis-seed={args.seed}",)))
    return Plan(
        wrong=catalogue.specs([n for n in catalogue.mutants if n in keep]),
        right=catalogue.specs([n for n in catalogue.correct if n in keep]),
        profile=args.profile,
        extra=extra,
        workers=args.workers,
        paths=catalogue.paths,
        every_property=not args.keyword,
    )


@dataclass(frozen=True)
class Verdict:
    """What a run says about the subjects it ran. ``survivors`` (mutants no property failed)
    are judged only when every property ran; under ``-k``, ``uncaught`` lists the mutants the
    selected properties did not fail, and ``not_run`` those they all skipped: neither fails the
    run. ``unproven`` are the table's claims about what ran that this run contradicts."""

    caught: list[str]
    survivors: list[str]
    uncaught: list[str]
    not_run: list[str]
    false_alarms: list[str]
    unproven: list[str]

    @property
    def failed(self) -> bool:
        return bool(self.survivors or self.false_alarms or self.unproven)

    def summary(self) -> str:
        def names(specs):
            return ", ".join(short_name(s) for s in specs) or "none"

        lines = [f"caught: {names(self.caught)}", f"survivors: {names(self.survivors)}; false alarms: {names(self.false_alarms)}"]
        if self.uncaught:
            lines.append(f"not caught by the properties -k selected (not judged): {names(self.uncaught)}")
        if self.not_run:
            lines.append(f"not run (every selected property skipped or deselected it): {names(self.not_run)}")
        lines.append(f"claims of {TABLE_DOC} not borne out: {', '.join(self.unproven) or 'none'}")
        return "\n".join(lines)


def judge(plan: Plan, cells, claims: dict) -> Verdict:
    """The verdict on ``plan``'s run (its ``parse_cells``), against the table's ``claims``
    (``readme_claims``; empty: not judged)."""
    matrix = matrix_of(cells)
    outcomes = outcomes_of(cells)
    ran = {s for (s, _p, _d), o in outcomes.items() if o in RAN}
    caught = [s for s in plan.wrong if killers(matrix.get(s, {}))]
    missed = [s for s in plan.wrong if s not in caught]
    return Verdict(
        caught=caught,
        survivors=missed if plan.every_property else [],
        uncaught=[] if plan.every_property else [s for s in missed if s in ran],
        not_run=[] if plan.every_property else [s for s in missed if s not in ran],
        false_alarms=[s for s in plan.right if killers(matrix.get(s, {}))],
        unproven=unproven_claims(claims, catches(matrix, plan.wrong), outcomes),
    )


def claims_to_judge(doc_text: str, markers, args) -> dict[str, set[str]]:
    """The claims of the table between ``markers`` if this run draws what the table was made
    from (the profile its header names, or one drawing the same examples: ``ci`` and
    ``verdict``; no ``--seed``) and does not rewrite it; else none."""
    claims = readme_claims(doc_text, markers=markers)
    made_with = re.search(r"profile `([^`]+)`", doc_text[doc_text.index(markers[0]) : doc_text.index(markers[1])])
    # ``verdict`` draws ``ci``'s examples (profiles.draws_of): a table made under either is judged under both
    same_draws = made_with is not None and draws_of(made_with.group(1)) == draws_of(args.profile) and args.seed is None
    return claims if same_draws and not args.readme else {}


def rewrite_table(doc: Path, table: str, markers) -> None:
    """Replace the text between ``markers`` (both included) in ``doc`` with ``table``."""
    text = doc.read_text()
    start, end = text.index(markers[0]), text.index(markers[1]) + len(markers[1])
    doc.write_text(text[:start] + table + text[end:])


def command(catalogue: Catalogue, argv=None) -> int:
    """Run ``catalogue`` as the options say, print its matrix and verdict; with ``--readme``
    rewrite its table in ``TABLE_DOC``. Exit 0, 1 (a survivor, a false alarm, a claim of the
    table not borne out: ``claims_to_judge``) or 2 (a usage error)."""
    usage = parser(catalogue)
    args = parse(usage, argv)
    run = plan(catalogue, args)
    doc = repo_root() / TABLE_DOC
    with tempfile.TemporaryDirectory() as tmp:
        try:
            junit = run.run(Path(tmp) / "junit.xml")
        except SuiteError as exc:
            if exc.returncode == 5 and args.keyword:  # pytest: no tests ran
                usage.error(f"-k {args.keyword!r} selects no property")
            raise
        cells = parse_cells(junit, run.specs)
    matrix = matrix_of(cells)
    expect = {**{s: "mutant" for s in run.wrong}, **{s: "correct" for s in run.right}}
    print(render(matrix, expect=expect, cells=cells, every_property=run.every_property))
    verdict = judge(run, cells, claims_to_judge(doc.read_text(), catalogue.markers, args))
    print(verdict.summary())
    if args.readme:
        rewrite_table(doc, markdown_catches(matrix, run.wrong, args.profile, markers=catalogue.markers, catalogue=catalogue.source), catalogue.markers)
        print(f"rewrote the table in {doc}")
    return 1 if verdict.failed else 0


def main(argv=None) -> int:
    """``python -m bn_reference.selftest.killmatrix [--readme] [--mutant NAME]... [-k EXPR]``:
    run the property suite over the mutant catalogue (``mutants.py``; narrowed to the named
    subjects and to the properties ``-k`` selects), print the matrix and the verdict, and with
    ``--readme`` rewrite the table in ``docs/properties.md`` (a whole run only)."""
    return command(catalogue(), argv)


def catalogue() -> Catalogue:
    """``mutants.py``'s catalogue as the command line runs it."""
    from bn_reference.selftest import mutants

    return Catalogue("bn_reference.selftest.killmatrix", "bn_reference/selftest/mutants.py", tuple(mutants.MUTANTS), tuple(mutants.CORRECT), mutants.specs)


if __name__ == "__main__":
    raise SystemExit(main())
