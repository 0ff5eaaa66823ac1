"""When bn-props takes part in a pytest run.

Installed, the plugin is loaded into every pytest run of the environment (its ``pytest11``
entry point). It stays inert (no subjects, no parametrization, no Hypothesis profile
loaded, no header lines, no conformance matrix, no worker-restart or database changes)
unless the run is about bn-props:

* ``--bn-impl``/``BN_IMPL`` chooses subjects, or another bn-props option asks for
  something (``--bn-report``, ``--bn-repro-dir``, ``--bn-list``, ``--bn-db``);
* an argument names the property suite: ``--pyargs bn_reference.properties[.module]``
  (or ``--pyargs bn_reference``), or a path to the suite's directory or into it;
* the ini option ``bn_props_active = true``: bn-props' own checkout sets it in its
  pyproject.toml, so its self-tests run under the plugin's profiles too.

The decision is made in ``pytest_configure`` from the command line, before collection,
because Hypothesis reads its settings when a test module is imported.

With subjects chosen and no test path given (``pytest --bn-impl mybn:bn`` in a project),
the run is the installed property suite: the project's own tests take no subject and would
all be deselected.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

__all__ = ["INI", "suite_dir", "names_suite", "decide", "activate", "is_active", "header", "addini"]

INI = "bn_props_active"
SUITE = "bn_reference.properties"
_OPTIONS = ("bn_impl", "bn_report", "bn_repro_dir", "bn_list", "bn_db")
_ACTIVE = pytest.StashKey[bool]()
_REDIRECTED = pytest.StashKey[bool]()


def suite_dir() -> Path:
    """The directory of the property suite as this environment imports it (site-packages'
    ``bn_reference/properties``, or the checkout's ``properties/`` in an editable install)."""
    spec = importlib.util.find_spec(SUITE)
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def names_suite(config) -> bool:
    """Whether an argument of the command line names the suite or a part of it."""
    suite = suite_dir()
    for arg in config.args:
        target = str(arg).split("::", 1)[0]
        if config.option.pyargs and (target in ("bn_reference", SUITE) or target.startswith(SUITE + ".")):
            return True
        path = (config.invocation_params.dir / target).resolve()
        if path == suite or suite in path.parents:
            return True
    return False


def decide(config) -> bool:
    """Whether bn-props takes part in this run (see the module docstring)."""
    if config.getini(INI):
        return True
    if os.environ.get("BN_IMPL", "").strip():
        return True
    if any(config.getoption(name, None) for name in _OPTIONS):
        return True
    return names_suite(config)


def activate(config, subjects_chosen: bool) -> bool:
    """Decide, remember (``is_active``) and, when subjects are chosen without a test path
    outside bn-props' checkout, point the run at the installed suite. Returns the decision."""
    active = config.stash[_ACTIVE] = decide(config)
    if active and subjects_chosen and not config.getini(INI) and config.args_source != config.ArgsSource.ARGS:
        config.args = [str(suite_dir())]
        config.stash[_REDIRECTED] = True
    return active


def header(config) -> list[str]:
    """The report-header line saying that the run is the installed suite, if it was redirected."""
    if config.stash.get(_REDIRECTED, False):
        return [f"bn-props: no test path given, so the property suite runs: {suite_dir()}"]
    return []


def is_active(config) -> bool:
    """Whether bn-props takes part in this run (decided in the plugin's ``pytest_configure``)."""
    return config.stash.get(_ACTIVE, False)


def addini(parser) -> None:
    """Declare the ini option (called by the plugin's ``pytest_addoption``)."""
    parser.addini(
        INI,
        type="bool",
        default=False,
        help="bn-props takes part in every pytest run of this project (otherwise only when "
        "--bn-impl/BN_IMPL or another bn-props option is given, or the property suite is named)",
    )
