"""Hostile subjects (``tests/hostile.py``) are reported per subject, and the run
goes on for the others.

One pytest run in a subprocess (``-n 2``, profile ``ci``, three property files, a short
``--bn-call-timeout``) checks ``reference`` next to all six hostile subjects. What each
should produce:

* ``raises``: every property fails with the subject's ``RuntimeError`` text;
* ``returns_tensor`` / ``returns_list``: a non-ndarray result is a contract failure, so
  ``test_output_shape_and_dtype`` (and ``test_inference_returns_input``, which checks the
  result is exactly ``x``) fail with "the contract requires numpy.ndarray"; the
  mathematical properties convert the result with ``np.asarray`` (``checks.as_output``) so
  their verdict stays about the numbers: ``test_agrees_with_float64_reference`` passes;
* ``wrong_shape``: the shape is named in the contract and agreement failures;
* ``hangs``: each property fails with ``SubjectTimeout`` naming the test id, the subject
  and the limit (``bn_reference.harness.watchdog``);
* ``dies``: the test in which it killed its xdist worker fails with the crash and the
  subject named, its other tests are skipped as "not run" (``bn_reference.harness.crashes``), and
  the run does not hit xdist's "maximum crashed workers reached" although the limit
  (``--max-worker-restart=2``) is below the number of its tests.

A second run, without xdist, checks the isolation mode (``--bn-isolate``,
``bn_reference.harness.isolation``) on the subjects nothing else contains: ``native_hang``
(blocked in native code, where SIGALRM cannot reach it), ``dies``/``exits``/``segfaults``
(the process killed by SIGKILL, ``os._exit(3)``, SIGSEGV: without xdist and without
isolation, pytest itself would die) and ``hoards`` (allocates without bound), next to
``reference``, ``raises`` and the ``modifies_input`` mutant (its write into x must still be
seen through the child process). Each hostile property fails with the hang's limit, the
signal or exit status, or the memory limit, naming test, subject and call; the run goes on.

The watchdog's own mechanics (timer restored, outer timer honoured, no shrinking) are
checked in-process below, without a subprocess.
"""
import fcntl
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bn_reference.mathematics import watchdog

from .test_plugin import run_pytest

pytestmark = pytest.mark.meta

HERE = Path(__file__).resolve().parent  # hostile.py is importable as ``hostile`` from here
FILES = ("properties/test_contract.py", "properties/test_agreement.py", "properties/test_training_flag.py")
TIMEOUT_S = 10  # the hang's limit: short, but well above a first TF call on a loaded 2-core CI machine
# Below the 5 tests of ``dies``: the run survives because its later tests are not run, not
# because of xdist's headroom. With 2 workers, at most 2 of its tests can be running when
# the first crash is noted.
RESTARTS = 2
HOSTILE = ("raises", "returns_tensor", "returns_list", "wrong_shape", "hangs", "dies")

SHAPE = "test_output_shape_and_dtype[float32]"
INPUT = "test_input_not_modified[float32]"
AGREE = "test_agrees_with_float64_reference[float32]"
INFER = ("test_inference_returns_input[float32-training=None]", "test_inference_returns_input[float32-training=False]")
PROPERTIES = (SHAPE, INPUT, AGREE, *INFER)
# The declared-refusal property skips every subject here (none declares a refusal): left out.
NOT_REFUSAL = ("-k", "not test_declared_refusal_is_a_clear_error")


def _everywhere(outcome, fragment):
    return {p: (outcome, fragment) for p in PROPERTIES}


# property -> (outcome, text the failure message must contain; None for a pass).
# "{nodeid}" stands for the test's own node id.
EXPECTED = {
    "raises": _everywhere("failed", "RuntimeError: hostile subject: raises on every call"),
    "returns_tensor": {
        SHAPE: ("failed", "returned EagerTensor; the contract requires numpy.ndarray"),
        INPUT: ("passed", None),
        AGREE: ("passed", None),
        **{p: ("failed", "returned EagerTensor, the contract requires numpy.ndarray") for p in INFER},
    },
    "returns_list": {
        SHAPE: ("failed", "returned list; the contract requires numpy.ndarray"),
        INPUT: ("passed", None),
        AGREE: ("passed", None),
        **{p: ("failed", "returned list, the contract requires numpy.ndarray") for p in INFER},
    },
    "wrong_shape": {
        SHAPE: ("failed", "output shape (1, "),
        INPUT: ("passed", None),
        AGREE: ("failed", "agreement with the float64 reference: shape (1, "),
        **{p: ("failed", "returned shape (1, ") for p in INFER},
    },
    "hangs": _everywhere(
        "failed", f"SubjectTimeout: {{nodeid}}: subject 'hostile:hangs' did not return within {TIMEOUT_S} s"
    ),
}


# The isolated run (no xdist): a hard deadline, a memory limit, and what each subject gives.
ISO_FILES = ("properties/test_contract.py", "properties/test_agreement.py")
ISO_TIMEOUT_S = 5  # the native hang's limit; the child's start is not counted against it
ISO_MEMORY_MB = 256
MODIFIES = "bn_reference.selftest.mutants:modifies_input"
ISO_PROPERTIES = (SHAPE, INPUT, AGREE)
_ISO_CALL = "in isolated call "
ISO_EXPECTED = {
    "hostile:native_hang": (
        "SubjectTimeout: {nodeid}: subject 'hostile:native_hang' did not return within "
        f"{ISO_TIMEOUT_S} s {_ISO_CALL}"
    ),
    "hostile:dies": "SubjectCrashed: {nodeid}: subject 'hostile:dies': its isolated process killed by signal SIGKILL (9) " + _ISO_CALL,
    "hostile:exits": "SubjectCrashed: {nodeid}: subject 'hostile:exits': its isolated process exited with status 3 " + _ISO_CALL,
    "hostile:segfaults": "SubjectCrashed: {nodeid}: subject 'hostile:segfaults': its isolated process killed by signal SIGSEGV (11) " + _ISO_CALL,
    "hostile:hoards": (
        "SubjectMemoryLimit: {nodeid}: subject 'hostile:hoards' allocated past the isolation memory limit of "
        f"{ISO_MEMORY_MB} MB"
    ),
    "hostile:raises": "RuntimeError: hostile subject: raises on every call",
}


@dataclass
class Run:
    returncode: int
    out: str
    report: dict | None

    def results(self, spec: str) -> dict[str, dict]:
        return {r["property"]: r for r in self.report["results"] if r["subject"] == spec}


def _hostile_run(tmp: Path) -> Run:
    """reference and the six hostile subjects, in one run under xdist."""
    path = tmp / "report.json"
    subjects = [f"--bn-impl=hostile:{name}" for name in HOSTILE]
    started = time.monotonic()
    r = run_pytest(
        tmp, *FILES, "--bn-impl=reference", *subjects, f"--bn-call-timeout={TIMEOUT_S}", "-n", "2", "-rs",
        f"--max-worker-restart={RESTARTS}", f"--bn-report={path}", *NOT_REFUSAL, path=[HERE],
    )
    print(f"hostile run: {time.monotonic() - started:.1f} s")
    return Run(r.returncode, r.stdout + r.stderr, json.loads(path.read_text()) if path.exists() else None)


def _isolated_run(tmp: Path) -> Run:
    """reference, the isolated-only hostile subjects and an input-modifying mutant, in one
    run with ``--bn-isolate`` and without xdist."""
    path = tmp / "report.json"
    subjects = [f"--bn-impl={spec}" for spec in ("reference", *ISO_EXPECTED, MODIFIES)]
    started = time.monotonic()
    r = run_pytest(
        tmp, *ISO_FILES, *subjects, "--bn-isolate", f"--bn-call-timeout={ISO_TIMEOUT_S}",
        f"--bn-memory-limit={ISO_MEMORY_MB}", "-p", "no:xdist", "-rs", f"--bn-report={path}", *NOT_REFUSAL, path=[HERE],
    )
    print(f"isolated run: {time.monotonic() - started:.1f} s")
    return Run(r.returncode, r.stdout + r.stderr, json.loads(path.read_text()) if path.exists() else None)


def _once(tmp_path_factory, name: str, run) -> Run:
    """``run(tmp)``, once per session even when these tests are spread over xdist workers:
    the first worker runs it under a lock, the others read its result."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this session's, either way
    done = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            tmp = shared / name
            tmp.mkdir(exist_ok=True)
            done.write_text(json.dumps(asdict(run(tmp))))
    return Run(**json.loads(done.read_text()))


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Run:
    """``_hostile_run``, once per session."""
    return _once(tmp_path_factory, "hostile-run", _hostile_run)


@pytest.fixture(scope="module")
def isolated_run(tmp_path_factory) -> Run:
    """``_isolated_run``, once per session."""
    return _once(tmp_path_factory, "isolated-run", _isolated_run)


@pytest.mark.slow
def test_run_finishes_and_names_every_subject(hostile_run):
    """Exit code 1 (tests failed), not an internal error, usage error or interruption; xdist
    did not give up on crashed workers; the report and the matrix list every subject."""
    tail = hostile_run.out[-4000:]
    assert hostile_run.returncode == 1, tail
    assert "maximum crashed workers reached" not in hostile_run.out, tail
    assert "INTERNALERROR" not in hostile_run.out, tail
    assert hostile_run.report is not None, tail
    assert hostile_run.report["subjects"] == ["reference", *(f"hostile:{n}" for n in HOSTILE)]
    assert {r["subject"] for r in hostile_run.report["results"]} == set(hostile_run.report["subjects"])
    assert "bn-props conformance matrix" in hostile_run.out


@pytest.mark.slow
def test_reference_passes_everything(hostile_run):
    """The correct subject's 20 tests (5 per dtype, 4 dtypes) all pass next to the hostile ones."""
    results = hostile_run.results("reference")
    assert len(results) == 20, sorted(results)
    assert {p: r["outcome"] for p, r in results.items() if r["outcome"] != "passed"} == {}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_subject_fails_for_its_reason(hostile_run, name):
    """Each property of the subject has the expected outcome, a failure carrying the
    expected message (see the module docstring)."""
    results = hostile_run.results(f"hostile:{name}")
    assert sorted(results) == sorted(PROPERTIES)
    for prop, (outcome, fragment) in EXPECTED[name].items():
        r = results[prop]
        assert r["outcome"] == outcome, (prop, r)
        if fragment is not None:
            assert fragment.format(nodeid=r["nodeid"]) in r["failure"]["message"], (prop, r["failure"])


@pytest.mark.slow
def test_dying_subject_is_reported_and_the_rest_of_it_not_run(hostile_run):
    """The test that killed its worker fails with xdist's crash message and the subject
    named (matrix: ERROR); its other tests are skipped with a reason naming the crash.
    (Two crashes are possible: a test of it may already run on the other worker.)"""
    results = hostile_run.results("hostile:dies")
    crashed = {p: r for p, r in results.items() if r["outcome"] == "error"}
    skipped = {p: r for p, r in results.items() if r["outcome"] == "skipped"}
    assert crashed and skipped and len(crashed) + len(skipped) == len(PROPERTIES), results
    for r in crashed.values():
        assert f"crashed while running '{r['nodeid']}'" in r["failure"]["message"]
        assert "subject 'hostile:dies' killed its worker process" in r["failure"]["message"]
    reasons = [line for line in hostile_run.out.splitlines() if "not run: subject 'hostile:dies' killed its worker process in" in line]
    assert reasons and all(any(r["nodeid"] in line for r in crashed.values()) for line in reasons), reasons
    matrix = hostile_run.out.split("bn-props conformance matrix", 1)[1].split("bn-props report:", 1)[0]
    for prop in crashed:
        assert any(prop in line and "ERROR" in line for line in matrix.splitlines()), matrix


# -- isolation mode, without xdist ---------------------------------------------------------


@pytest.mark.slow
def test_isolated_run_survives_hangs_crashes_and_hoarding(isolated_run):
    """Without xdist, a native hang, three kinds of process death and a runaway allocation
    leave the run standing: exit 1 (tests failed), every subject in the report, the
    isolation named in the header, and ``reference`` passing everything next to them."""
    tail = isolated_run.out[-4000:]
    assert isolated_run.returncode == 1, tail
    assert "INTERNALERROR" not in isolated_run.out, tail
    assert isolated_run.report is not None, tail
    assert "bn-props isolation: each subject call in a child process" in isolated_run.out, tail
    assert f"memory limit {ISO_MEMORY_MB} MB" in isolated_run.out, tail
    assert isolated_run.report["subjects"] == ["reference", *ISO_EXPECTED, MODIFIES]
    reference = isolated_run.results("reference")
    assert len(reference) >= 12, sorted(reference)
    assert {p: r["outcome"] for p, r in reference.items() if r["outcome"] not in ("passed", "skipped")} == {}


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted(ISO_EXPECTED))
def test_isolated_subject_fails_each_property_with_its_cause(isolated_run, spec):
    """Each property of a hostile subject fails on its own, with the cause: the limit it
    hung past, the signal or exit status, the memory limit, or its own exception, naming the
    test, the subject and the call."""
    results = isolated_run.results(spec)
    assert set(ISO_PROPERTIES) <= set(results), sorted(results)
    for prop in ISO_PROPERTIES:
        r = results[prop]
        assert r["outcome"] == "failed", (prop, r)
        assert ISO_EXPECTED[spec].format(nodeid=r["nodeid"]) in r["failure"]["message"], (prop, r["failure"])


@pytest.mark.slow
def test_isolated_subject_writing_into_its_input_is_still_caught(isolated_run):
    """The child writes back what a subject wrote into its arguments: ``modifies_input``
    still fails ``test_input_not_modified`` under isolation."""
    r = isolated_run.results(MODIFIES)[INPUT]
    assert r["outcome"] == "failed", r
    assert "modified its input" in r["failure"]["message"], r["failure"]


# -- the watchdog in-process ----------------------------------------------------------------


@pytest.fixture
def limit():
    """Set the per-call limit for one test, restoring the run's own afterwards."""
    before = watchdog._seconds
    yield watchdog.configure
    watchdog.configure(before)


def hang():
    while True:
        time.sleep(60)


def test_timeout_interrupts_a_hang_and_disarms(limit):
    """A hanging call raises SubjectTimeout (a BaseException, not an Exception) naming the
    callable and the limit; afterwards no timer is armed and the SIGALRM handler is back."""
    limit(0.2)
    handler = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    with pytest.raises(watchdog.SubjectTimeout) as info:
        watchdog.call(hang)
    assert 0.15 < time.monotonic() - started < 5
    assert not isinstance(info.value, Exception)
    assert "subject 'hang' did not return within 0.2 s" in str(info.value)
    assert "--bn-call-timeout" in str(info.value)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is handler


def test_zero_disables_and_fast_calls_pass_through(limit):
    """A call that returns in time returns its value and leaves no timer; 0 sets none."""
    limit(5)
    assert watchdog.call(lambda a, *, b: a + b, 1, b=2) == 3
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    limit(0)
    seen = []
    watchdog.call(lambda: seen.append(signal.getitimer(signal.ITIMER_REAL)))
    assert seen == [(0.0, 0.0)]


class Outer(Exception):
    pass


outer_fired = []


def _raise_outer(signum, frame):
    outer_fired.append(time.monotonic())
    raise Outer("the outer timer fired")


@pytest.fixture
def outer_timer():
    """An outer SIGALRM timer (as pytest-timeout's signal method arms), removed afterwards."""
    before = signal.signal(signal.SIGALRM, _raise_outer)
    outer_fired.clear()

    def arm(seconds):
        signal.setitimer(signal.ITIMER_REAL, seconds)

    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, before)


def test_outer_timer_is_rearmed_with_what_is_left(limit, outer_timer):
    """A later outer deadline is displaced during the call and re-armed with what is left."""
    limit(10)
    outer_timer(30)
    watchdog.call(time.sleep, 0.05)
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 29 < left < 30
    assert signal.getsignal(signal.SIGALRM) is _raise_outer


def test_earlier_outer_deadline_wins(limit, outer_timer):
    """An outer timer due before our limit fires with its own handler, not SubjectTimeout,
    once: it is not re-armed after it fired."""
    limit(10)
    outer_timer(0.2)
    with pytest.raises(Outer):
        watchdog.call(hang)
    time.sleep(0.05)
    assert len(outer_fired) == 1
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_hypothesis_does_not_shrink_a_timeout(limit):
    """The reason SubjectTimeout is a BaseException: Hypothesis re-raises it at once. With an
    Exception it would shrink, re-running the hanging example (one timeout per attempt)."""
    limit(0.2)
    hanging_calls = []

    def subject(i):
        if i >= 3:
            hanging_calls.append(i)
            hang()
        return i

    @settings(database=None, derandomize=True, max_examples=100)
    @given(st.integers(0, 1000))
    def prop(i):
        watchdog.call(subject, i)

    with pytest.raises(watchdog.SubjectTimeout):
        prop()
    assert len(hanging_calls) == 1, hanging_calls


@pytest.mark.parametrize(
    "args,env,message",
    [(["--bn-call-timeout=-1"], {}, "is negative"), ([], {"BN_CALL_TIMEOUT": "soon"}, "is not a number of seconds")],
    ids=["negative-option", "env-not-a-number"],
)
def test_bad_timeout_is_a_usage_error(tmp_path, args, env, message):
    """A negative or non-numeric limit is a usage error (exit 4) naming the option."""
    r = run_pytest(tmp_path, "properties/test_contract.py", "--collect-only", "-q", *args, env_extra=env)
    assert r.returncode == 4, r.stdout[-2000:] + r.stderr[-2000:]
    assert "--bn-call-timeout/BN_CALL_TIMEOUT" in r.stderr and message in r.stderr
