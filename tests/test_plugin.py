"""The pytest plugin end to end: a user's broken subject fails with the property named, the
falsifying example and a replay blob shown; bad specs are usage errors naming the spec."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.meta

ROOT = Path(__file__).resolve().parents[1]

BROKEN = textwrap.dedent(
    '''
    import numpy as np

    def broken(x, *, axes, scale, offset, epsilon, training):
        """Bessel-corrected variance (ddof=1): a classic."""
        if not training:
            return x.copy()
        x64 = x.astype(np.float64)
        mu = x64.mean(axis=axes, keepdims=True)
        n = np.prod([x.shape[a] for a in axes])
        var = np.square(x64 - mu).sum(axis=axes, keepdims=True) / max(n - 1, 1)
        return ((x64 - mu) / np.sqrt(var + epsilon) * scale + offset).astype(x.dtype)

    broken.bn_dtypes = ("float32",)  # the plugin's plumbing, not dtype probing (tests/test_dtype_probe.py)
    not_callable = 42
    '''
)


def run_pytest(tmp_path, *args, env_extra=None, path=(), unset=()):
    """pytest in a subprocess from the checkout, with ``usermod`` (``BROKEN``) importable from
    ``tmp_path`` and the directories ``path`` put first on ``PYTHONPATH``; the variables in
    ``unset`` (e.g. ``CI``) removed from its environment, with the bn-props ones."""
    (tmp_path / "usermod.py").write_text(BROKEN)
    drop = {"BN_IMPL", "BN_DB", "BN_CALL_TIMEOUT", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS", *unset}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path), str(tmp_path), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--hypothesis-profile=ci", *args]
    if not any(str(a).startswith("--bn-repro-dir") for a in args):  # repros of failures: here, not in the checkout
        cmd.append(f"--bn-repro-dir={tmp_path / 'repro'}")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_broken_subject_fails_and_is_explained(tmp_path):
    """exit 1; the report header names the subject; the failing test id is
    test_agrees_with_float64_reference[usermod:broken-float32]; the input the subject
    received, the shrunk example, the repro path and the @reproduce_failure blob are printed
    (the rest of the one-screen format: tests/test_failure_output.py)."""
    r = run_pytest(tmp_path, "properties/test_agreement.py", "--bn-impl", "usermod:broken")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-3000:]
    assert "bn-props subjects (chosen with --bn-impl/BN_IMPL): usermod:broken" in out
    assert "FAILED properties/test_agreement.py::test_agrees_with_float64_reference[usermod:broken-float32]" in out
    assert "the subject received (1 call):" in out and "drawn (shrunk) example:" in out
    assert "@reproduce_failure(" in out and "repro: python " in out
    assert "outside the error model" in out


def test_bn_impl_env_is_comma_separated(tmp_path):
    """BN_IMPL=a,b selects both subjects, each with its own test id."""
    r = run_pytest(tmp_path, "properties/test_contract.py", "--collect-only", "-q", env_extra={"BN_IMPL": "reference, tf_nn"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test_output_shape_and_dtype[reference-float32]" in r.stdout
    assert "test_output_shape_and_dtype[tf_nn-float32]" in r.stdout
    assert "seed_layer" not in r.stdout


@pytest.mark.parametrize(
    "spec,message",
    [("usermod:missing", "has no attribute"), ("nosuchmodule:f", "cannot import module"), ("usermod:not_callable", "not callable")],
)
def test_bad_spec_is_a_usage_error(tmp_path, spec, message):
    """An unimportable or non-callable --bn-impl is a usage error (exit 4) naming the spec."""
    r = run_pytest(tmp_path, "properties/test_contract.py", "--bn-impl", spec)
    assert r.returncode == 4, r.stdout + r.stderr
    assert spec in r.stderr and message in r.stderr


def test_repro_script_reproduces_the_failure(tmp_path):
    """--bn-repro-dir saves, for the falsified property, a script that calls the subject on
    the exact falsifying input and replays the property's check; the failure prints its
    path. Run on its own (no pytest) it fails with the same law."""
    repros = tmp_path / "repros"
    r = run_pytest(tmp_path, "properties/test_agreement.py", "--bn-impl", "usermod:broken", f"--bn-repro-dir={repros}")
    assert r.returncode == 1, r.stdout[-3000:]
    (script,) = repros.glob("repro_*.py")
    assert f"repro: python {script}" in r.stdout
    assert "np.frombuffer(bytes.fromhex(" in script.read_text()
    env = {k: v for k, v in os.environ.items() if k != "BN_IMPL"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "BN(x) =" in run.stdout
    assert "agreement with the float64 reference" in run.stderr and "outside the error model" in run.stderr


def test_bn_list_prints_whole_sentences_and_exits_cleanly(tmp_path):
    """--bn-list (even with -n 2) prints each property with the whole first sentence of its
    docstring, aligned, and exits 0 without pytest's "Exit" banner."""
    r = run_pytest(tmp_path, "properties/test_metamorphic.py", "--bn-impl", "usermod:broken", "--bn-list", "-n", "2",
                   env_extra={"COLUMNS": "200"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Exit" not in out and "!!!!" not in out and "PASSED" not in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("test_translation_invariance"))
    assert line.rstrip().endswith("BN(x + c) = BN(x) for any c constant over each slice (here a scalar)."), line
    starts = {ln.index(ln.split()[1]) for ln in out.splitlines() if ln.startswith("  test_")}
    assert len(starts) == 1, f"summaries not aligned: {starts}"


@pytest.mark.parametrize("how", ["option", "env"])
def test_unknown_profile_is_a_usage_error(tmp_path, how):
    """An unknown Hypothesis profile is one line naming it and the choices, exit 4 (pytest's
    usage-error status, like an unknown option or a bad --bn-impl), not an INTERNALERROR."""
    args = ["--hypothesis-profile=bogus"] if how == "option" else []
    env = {"HYPOTHESIS_PROFILE": "bogus"} if how == "env" else {}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "properties/test_contract.py", *args],
        cwd=ROOT, env={**{k: v for k, v in os.environ.items() if k not in ("BN_IMPL", "HYPOTHESIS_PROFILE")}, **env},
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 4, r.stdout + r.stderr
    assert "INTERNALERROR" not in r.stdout + r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and "bogus" in errors[0] and "ci" in errors[0], r.stderr


# Every warning raised in a bn_reference module an error: an ini line, whose module field is a
# regular expression matched at the start of the module's name (-W would match it exactly).
OWN_WARNINGS_ARE_ERRORS = "filterwarnings=error:::bn_reference"
# Mutants whose bugs give inf and NaN: in their own steps, and in the moments the laws then
# compute with (each one raised warnings before: mutants.py, laws.py, tolerance.py, strategies.py).
NONFINITE_MUTANTS = ("forgotten_upcast_float16", "rsqrt_in_float16", "float16_moments", "naive_one_pass_variance",
                     "rescaled_by_global_max", "epsilon_ignored")


def test_no_warning_from_bn_props_own_code(tmp_path):
    """A slice of the suite (the metamorphic and moment laws that met inf and NaN) on the
    reference subject and on mutants whose bugs give inf and NaN, with every warning from a
    bn_reference module an error: the reference passes, and each mutant fails by a law, never
    by a warning of ours (the idempotence law's eps = 0 draws once made strategies divide 0 by 0)."""
    mutants = [a for name in NONFINITE_MUTANTS for a in ("--bn-impl", f"bn_reference.selftest.mutants:{name}")]
    laws = "idempotence or scale_identity or unit_variance or decomposition or parallel_merge"
    r = run_pytest(tmp_path, "properties/test_metamorphic.py", "properties/test_moments.py", "-k", laws,
                   "--bn-impl", "reference", *mutants, "-n", "2", "-o", OWN_WARNINGS_ARE_ERRORS)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and " passed" in out, out[-3000:]
    assert "Warning" not in out, out[-3000:]
    assert "[reference-" not in "".join(line for line in out.splitlines() if line.startswith("FAILED")), out[-3000:]


def test_x_under_xdist_exits_1(tmp_path):
    """-x with -n 2 on a broken subject: the first failure stops the run and pytest exits 1
    (tests failed), as without xdist, not 2 (xdist's ``Interrupted``); the matrix is shown."""
    r = run_pytest(tmp_path, "properties/test_agreement.py", "--bn-impl", "usermod:broken", "-n", "2", "-x")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-3000:]
    assert "stopping after 1 failures" in out and "Interrupted" not in out
    assert "bn-props conformance matrix" in out


def test_a_collection_error_under_xdist_x_keeps_exit_2(tmp_path):
    """A module that fails to import, with -n 2 -x: still an interrupted run, exit 2."""
    (tmp_path / "test_unimportable.py").write_text("import nosuchmodule_anywhere\n\ndef test_never():\n    pass\n")
    r = run_pytest(tmp_path, str(tmp_path / "test_unimportable.py"), "properties/test_agreement.py",
                   "--bn-impl", "usermod:broken", "-n", "2", "-x")
    out = r.stdout + r.stderr
    assert r.returncode == 2, out[-3000:]
    assert "nosuchmodule_anywhere" in out


def test_only_xdist_stopping_at_maxfail_counts_as_failed():
    """``maxfail.stopped_by_maxfail``: xdist's ``Interrupted`` once pytest counted --maxfail
    failures, with no collection error; never a Ctrl-C (a plain KeyboardInterrupt)."""
    from xdist.dsession import Interrupted

    from bn_reference.harness.maxfail import stopped_by_maxfail

    assert stopped_by_maxfail(Interrupted("stopping after 1 failures"), "stopping after 1 failures", 0)
    assert not stopped_by_maxfail(KeyboardInterrupt(), "stopping after 1 failures", 0)
    assert not stopped_by_maxfail(Interrupted("gw0 received keyboard-interrupt"), False, 0)
    assert not stopped_by_maxfail(Interrupted("stopping after 1 failures"), "stopping after 1 failures", 1)
