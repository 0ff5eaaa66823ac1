"""The installed plugin takes part only in runs about bn-props (``bn_reference.harness.activation``).

The checkout is installed in the environment running these tests (editable, with its
``pytest11`` entry point), so a pytest started here from a directory outside the checkout
loads the plugin as any user's run would. ``tests/test_install.py`` repeats the inertness
check on the built wheel in a fresh virtualenv (slow); this one takes seconds.
"""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bn_reference.harness.activation import names_suite, suite_dir

from .test_install import assert_inert

pytestmark = pytest.mark.meta


def run_pytest_here(*args, cwd, **env):
    drop = ("PYTHONPATH", "BN_IMPL", "BN_DB", "PYTEST_ADDOPTS", "HYPOTHESIS_PROFILE", "PYTEST_CURRENT_TEST")
    environ = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_XDIST")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def test_plugin_is_inert_in_an_unrelated_run(tmp_path):
    assert_inert(run_pytest_here, tmp_path)


def config_of(*args, pyargs=False, here: Path):
    return SimpleNamespace(args=list(args), option=SimpleNamespace(pyargs=pyargs), invocation_params=SimpleNamespace(dir=here))


@pytest.mark.parametrize(
    "args, pyargs, named",
    [
        (("bn_reference.properties",), True, True),
        (("bn_reference.properties.test_moments::test_zero_mean",), True, True),
        (("bn_reference",), True, True),
        (("bn_reference.propertiesX",), True, False),
        (("mypkg.tests",), True, False),
        (("{suite}",), False, True),
        (("{suite}/test_moments.py::test_zero_mean",), False, True),
        (("tests", "{parent}"), False, False),  # a directory above the suite (a project holding its venv) is not the suite
    ],
)
def test_an_argument_names_the_suite(tmp_path, args, pyargs, named):
    suite = suite_dir()
    args = [a.format(suite=suite, parent=suite.parent.parent) for a in args]
    assert names_suite(config_of(*args, pyargs=pyargs, here=tmp_path)) is named
