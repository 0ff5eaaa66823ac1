"""Hypothesis is pinned twice: pyproject.toml allows one minor series (bn-props uses Hypothesis
internals), tox.ini's ``[hypothesis]`` names the one version every tox env runs. A
``@reproduce_failure('VERSION', ...)`` blob replays only under the Hypothesis that printed
it, so each blob in docs/ must name the pinned version: moving the pin means regenerating
them (``tox -e frameworks`` rewrites docs/conformance.md)."""
import configparser
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

pytestmark = pytest.mark.meta

ROOT = Path(__file__).resolve().parents[1]
BLOB = re.compile(r"@reproduce_failure\(\s*['\"](\d[^'\"]*)['\"]")  # a version, not a placeholder


def pinned_hypothesis() -> str:
    """The version in tox.ini's ``[hypothesis] deps``, which must be exactly one ``==`` pin."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "tox.ini")
    (requirement,) = [Requirement(line) for line in ini["hypothesis"]["deps"].splitlines() if line.strip()]
    (spec,) = requirement.specifier
    assert requirement.name == "hypothesis" and spec.operator == "==", requirement
    return spec.version


def test_every_replay_blob_in_docs_names_the_pinned_hypothesis():
    pinned = pinned_hypothesis()
    blobs = [(path.name, version) for path in sorted((ROOT / "docs").glob("*.md")) for version in BLOB.findall(path.read_text())]
    assert blobs, "no @reproduce_failure blob found in docs/ (has their format changed?)"
    stale = sorted({f"{name}: {version}" for name, version in blobs if version != pinned})
    assert not stale, f"tox.ini pins hypothesis=={pinned}; regenerate the blobs made under another version: {stale}"


def test_the_install_range_is_the_pinned_minor_series():
    """pyproject.toml's hypothesis requirement admits the pinned version and nothing from the
    next minor release on."""
    pinned = Version(pinned_hypothesis())
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (requirement,) = [r for r in map(Requirement, dependencies) if r.name == "hypothesis"]
    assert requirement.specifier.contains(pinned)
    assert not requirement.specifier.contains(f"{pinned.major}.{pinned.minor + 1}.0")
