"""bn-props used as a new user would: the wheel, installed into a fresh virtualenv, run from
a project directory outside the checkout.

One module-scoped install: ``pip wheel`` builds the distribution from a clean copy of this
checkout (setuptools builds in the source tree, and a stale ``build/`` could leak old
modules into the wheel), ``python -m venv`` makes an empty environment, ``pip install
<wheel>`` installs it with its dependencies (from the package index pip is configured
with; ``--no-compile``: no bytecode up front; the time it took is printed). The
environment is removed at the end.

Then, in a temporary project directory holding ``mybn.py`` (the README's example, a
correct NumPy batch norm, copied from the README; the same with epsilon outside the square
root; one with another library's signature), the commands the README and
docs/ci-recipe.md document:

* ``bn-props check mybn:bn -n 2`` exits 0 and prints the conformance matrix;
* ``bn-props check mybn:bn_eps_outside --repro-dir repros`` exits 1 naming the epsilon
  law, and the saved repro, run with ``python repro_....py`` in ``repros/``, raises that
  law's violation again;
* a spec that does not import, a subject with the wrong signature, and an unknown profile
  each exit 2 with one line on stderr and nothing run;
* ``pytest --pyargs bn_reference.properties --bn-impl mybn:bn`` works too;
* in an unrelated pytest run of the same environment the plugin is inert: same Hypothesis
  settings (also in CI, where Hypothesis loads its own ``ci`` profile) and same output as
  with the plugin disabled, a fixture named ``subject`` left alone.

The core install (no extra) holds no framework: no TensorFlow, PyTorch or JAX, and the
environment stays under 500 MB (its size is printed).

The property runs use ``--profile explore`` (100 examples, no shrinking) with a fixed
``--hypothesis-seed`` passed through to pytest, so they are quick and deterministic.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.meta, pytest.mark.slow, pytest.mark.xdist_group("test_install")]  # one worker builds the venv (tox -e tests: --dist loadgroup)

ROOT = Path(__file__).resolve().parents[1]
SEED = ["--", "--hypothesis-seed=0"]
# Not copied to build the wheel from: VCS data, environments, build and run leftovers.
UNSHIPPED = (".git", ".tox", ".ci-venv", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".bn-props", ".pytest_cache")

MORE = textwrap.dedent(
    '''


    def bn_eps_outside(x, *, axes, scale, offset, epsilon, training):
        """The README's example with the classic slip: (x - mu) / (sqrt(var) + eps)."""
        if not training:
            return x.copy()
        mean = x.mean(axis=axes, keepdims=True)
        var = np.square(x - mean).mean(axis=axes, keepdims=True)
        return ((x - mean) / (np.sqrt(var) + epsilon) * scale + offset).astype(x.dtype)


    def bn_torch_style(x, axis, weight, bias, eps, training):
        """Another library's parameter names: not the contract's."""
        return x
    '''
)

UNRELATED = textwrap.dedent(
    '''
    import json
    import os

    import pytest
    from hypothesis import given, settings, strategies as st


    @pytest.fixture
    def subject():
        return "mine"


    def test_fixture_named_subject(subject):
        assert subject == "mine"


    @given(st.integers())
    def test_records_settings(n):
        with open(os.environ["SETTINGS_OUT"], "w") as f:
            json.dump({"profile": settings.get_current_profile_name(), "settings": repr(settings.default)}, f)
    '''
)


def readme_example() -> str:
    """The README's ``mybn.py`` (the first python block after "## Check your own kernel")."""
    text = (ROOT / "README.md").read_text().split("## Check your own kernel", 1)[1]
    return text.split("```python\n", 1)[1].split("```", 1)[0]


class Installed:
    """A fresh virtualenv with the wheel installed, and a project directory beside it."""

    def __init__(self, venv: Path, project: Path):
        self.venv, self.project = venv, project
        self.bin = venv / "bin"

    def env(self, **extra) -> dict[str, str]:
        drop = ("PYTHONPATH", "BN_IMPL", "BN_DB", "PYTEST_ADDOPTS", "HYPOTHESIS_PROFILE", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST")
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_XDIST")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env

    def run(self, *cmd, cwd=None, timeout=900, **env) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / cmd[0]), *cmd[1:]], cwd=cwd or self.project, env=self.env(**env),
            capture_output=True, text=True, timeout=timeout,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = Path(tempfile.mkdtemp(prefix="bn-props-install-"))  # removed at the end, not kept by pytest
    try:
        started = time.monotonic()
        source = work / "source"
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*UNSHIPPED))
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(work / "dist"), str(source)],
            check=True, capture_output=True, text=True, timeout=600,
        )
        wheel = next((work / "dist").glob("bn_props-*.whl"))
        built = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=300)
        r = subprocess.run(
            [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(wheel)],
            capture_output=True, text=True, timeout=1800,
        )
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        print(f"\nbn-props wheel built in {built - started:.0f} s; fresh venv with its dependencies in {time.monotonic() - built:.0f} s")
        project = tmp_path_factory.mktemp("project")
        (project / "mybn.py").write_text(readme_example() + MORE)
        yield Installed(work / "venv", project)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def one_line_usage_error(r, *needles):
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("bn-props check: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "test session starts" not in r.stdout  # nothing ran


FRAMEWORKS = ("tensorflow", "keras", "torch", "jax", "flax", "onnxruntime")
CORE_LIMIT_MB = 500


def _megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def test_the_core_install_holds_no_framework(installed):
    """``pip install bn-props`` with no extra: no framework importable in the environment,
    and the environment under 500 MB (TensorFlow alone was 2.2 GB)."""
    probe = "import importlib.util as u; print([m for m in %r if u.find_spec(m)])" % (FRAMEWORKS,)
    r = installed.run("python", "-c", probe)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout
    size = _megabytes(installed.venv)
    print(f"\ncore install: {size:.0f} MB in the venv")
    assert size < CORE_LIMIT_MB, f"the core install takes {size:.0f} MB"


def test_the_installed_package_is_the_one_imported(installed):
    r = installed.run("python", "-c", "import bn_reference.properties as p; print(p.__file__)")
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).is_relative_to(installed.venv), r.stdout  # not the checkout


def test_correct_subject_exits_0_with_the_matrix(installed):
    r = installed.run("bn-props", "check", "mybn:bn", "-n", "2", "--profile", "explore", "--report", "report.json", *SEED)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "bn-props conformance matrix" in out
    assert "bn-props subjects (chosen with --bn-impl/BN_IMPL): mybn:bn" in out
    report = json.loads((installed.project / "report.json").read_text())
    outcomes = {row["property"]: row["outcome"] for row in report["results"]}
    assert outcomes["test_agrees_with_float64_reference[float32]"] == "passed"
    assert set(outcomes.values()) <= {"passed", "skipped"}, outcomes


def test_buggy_subject_exits_1_naming_the_law_and_its_repro_runs(installed):
    r = installed.run("bn-props", "check", "mybn:bn_eps_outside", "--profile", "explore", "--repro-dir", "repros", *SEED)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-4000:]
    assert "test_moments.py::test_epsilon_sensitivity[mybn:bn_eps_outside-float32]" in out, out[-4000:]
    assert "FAILED" in out and "bn-props conformance matrix" in out
    repros = installed.project / "repros"
    script = repros / "repro_test_epsilon_sensitivity_mybn_bn_eps_outside-float32.py"
    assert script.exists(), sorted(p.name for p in repros.iterdir())
    replay = installed.run("python", script.name, cwd=repros, timeout=300)
    assert replay.returncode == 1, replay.stdout[-2000:] + replay.stderr[-2000:]
    assert "LawViolation: epsilon sensitivity" in replay.stderr, replay.stderr[-3000:]


def test_bad_spec_exits_2_with_one_line(installed):
    one_line_usage_error(installed.run("bn-props", "check", "nosuchmodule:bn"), "'nosuchmodule:bn'", "cannot import module")


def test_wrong_signature_exits_2_with_one_line(installed):
    r = installed.run("bn-props", "check", "mybn:bn_torch_style")
    one_line_usage_error(r, "'mybn:bn_torch_style'", "cannot be called as f(x, *, axes, scale, offset, epsilon, training)", "'axes'")


def test_unknown_profile_exits_2_with_one_line(installed):
    one_line_usage_error(installed.run("bn-props", "check", "mybn:bn", "--profile", "nightly"), "--profile", "'nightly'")


def test_pytest_pyargs_runs_the_installed_suite(installed):
    r = installed.run(
        "pytest", "--pyargs", "bn_reference.properties", "--bn-impl", "mybn:bn", "-k", "zero_mean or unit_variance",
        "--hypothesis-profile=explore", "--hypothesis-seed=0", "-p", "no:cacheprovider",
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    # two laws in the four dtypes the README's kernel accepts (it declares none: probed)
    assert "8 passed" in out and "bn-props conformance matrix" in out, out[-3000:]


def assert_inert(pytest_run, directory: Path) -> None:
    """``pytest_run(*args, cwd=, **env)`` runs pytest in an environment where bn-props is
    installed; in ``directory`` (outside the checkout) an unrelated test module sees the
    same Hypothesis settings with and without the plugin, also in CI (where Hypothesis loads
    its own ``ci`` profile), keeps its own ``subject`` fixture, and the output has no
    bn-props header line or matrix."""
    (directory / "test_mine.py").write_text(UNRELATED)
    runs = {}
    for name, extra in (("with", ()), ("without", ("-p", "no:bn_reference.harness.plugin"))):
        out = directory / f"settings-{name}.json"
        r = pytest_run("-p", "no:cacheprovider", *extra, cwd=directory, SETTINGS_OUT=str(out), CI="true")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        runs[name] = (json.loads(out.read_text()), r.stdout)
    assert runs["with"][0] == runs["without"][0]  # same profile, same settings
    noise = [line for line in runs["with"][1].splitlines() if line.startswith("bn-props") or "conformance" in line]
    assert not noise  # no header lines, no matrix


def test_plugin_is_inert_in_an_unrelated_run(installed, tmp_path):
    assert_inert(lambda *args, **kw: installed.run("pytest", *args, **kw), tmp_path)
