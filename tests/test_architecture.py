"""The package's layers, and the core install's independence from any framework.

``bn_reference/mathematics`` (the reference, the error model, the laws, the strategies)
imports no framework and nothing above it; ``subjects`` imports no ``harness`` or
``selftest``; ``harness`` imports no ``selftest``. The arrows point one way:
mathematics <- subjects <- harness <- selftest. Checked twice: statically, every import
statement of each module (top level or inside a function), and at run time, what importing
every mathematics module and checking a NumPy kernel's first example loads.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.meta

PACKAGE = Path(__file__).resolve().parents[1] / "bn_reference"
FRAMEWORKS = ("tensorflow", "keras", "torch", "jax", "jaxlib", "flax", "onnxruntime", "onnx", "triton")
# layer -> the bn_reference layers it must not import (the ones above it)
ABOVE = {
    "mathematics": ("subjects", "harness", "selftest", "properties"),
    "subjects": ("harness", "selftest", "properties"),
    "harness": ("selftest",),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import statement in the file, wherever it stands."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def violations(layer: str) -> list[str]:
    forbidden = [f"bn_reference.{above}" for above in ABOVE[layer]]
    if layer == "mathematics":
        forbidden += list(FRAMEWORKS)
    bad = []
    for path in sorted((PACKAGE / layer).glob("*.py")):
        for line, module in imported_modules(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    return sorted(set(bad))


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_imports_point_down(layer):
    assert violations(layer) == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The static check is not vacuous: a mathematics module importing the harness, or
    TensorFlow inside a function, is reported."""
    fake = tmp_path / "bn_reference"
    (fake / "mathematics").mkdir(parents=True)
    (fake / "mathematics" / "up.py").write_text("from bn_reference.harness import checks\n")
    (fake / "mathematics" / "lazy.py").write_text("def f():\n    import tensorflow as tf\n    return tf\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = violations("mathematics")
    assert any("up.py:1 imports bn_reference.harness" in v for v in found), found
    assert any("lazy.py:2 imports tensorflow" in v for v in found), found


def test_a_numpy_kernel_loads_no_framework(tmp_path):
    """Importing every mathematics module, loading a NumPy subject and running one
    property's first examples in-process imports no framework and, from the mathematics,
    nothing of the harness."""
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        import bn_reference.mathematics as m
        for info in pkgutil.iter_modules(m.__path__):
            importlib.import_module("bn_reference.mathematics." + info.name)
        upward = sorted(k for k in sys.modules if k.startswith(("bn_reference.harness", "bn_reference.selftest")))
        import pytest
        code = pytest.main(["-q", "-p", "no:cacheprovider", "--hypothesis-profile=ci", "{PACKAGE.parent / 'properties' / 'test_agreement.py'}",
                            "--bn-impl", "bn_reference.mathematics.reference:reference", "-k", "float32", "-x"])
        loaded = sorted(k for k in sys.modules if k.split(".")[0] in {FRAMEWORKS!r})
        print("UPWARD", upward)
        print("FRAMEWORKS", loaded)
        sys.exit(code)
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "UPWARD []" in r.stdout, r.stdout
    assert "FRAMEWORKS []" in r.stdout, r.stdout


def test_built_in_law_modules_are_the_ones_without_a_subject():
    """``properties.BUILT_IN_LAW_MODULES`` (not collected when --bn-impl picks subjects) are
    exactly the suite's modules in which no test takes a ``subject``: a module missing from
    the list costs a user a TensorFlow import, a module wrongly in it hides properties."""
    from bn_reference.properties import BUILT_IN_LAW_MODULES

    without = []
    for path in sorted((PACKAGE.parent / "properties").glob("test_*.py")):
        tests = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
        if not any("subject" in [a.arg for a in t.args.args + t.args.kwonlyargs] for t in tests):
            without.append(path.name)
    assert sorted(BUILT_IN_LAW_MODULES) == without
