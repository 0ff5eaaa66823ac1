"""The framework subjects (``bn_reference.subjects.FRAMEWORK_SUBJECTS``) and declared refusals.

* every framework subject loads and agrees with the float64 reference of its family
  (``bn_norm``: the RMSNorm subjects with the RMSNorm reference) on a well-conditioned input; the one-pass variance settings (jax.nn.standardize's ``algorithm="fast"``, Flax's
  ``use_fast_variance=True``) fail agreement at |mean|/std = 1e4 where their two-pass
  settings pass: the finding of ``docs/conformance.md`` on one fixed input;
* a missing framework gives one message naming the extra that installs it;
* a declared refusal (``bn_refuses``) is checked by ``check_refusal`` (it bites a subject
  that declares a refusal but returns a value, or raises another error), and ``draw_case``
  keeps refused inputs away from the other properties (a subject that raises on N = 1
  passes agreement once it declares that, and fails it when it does not).

In CI every framework extra is installed (``tox -e tests``), so nothing here skips there.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bn_reference.mathematics.laws import check_agreement, check_refusal
from bn_reference.mathematics.reference import batch_norm
from bn_reference.mathematics.strategies import BNCase
from bn_reference.subjects import FRAMEWORK_SUBJECTS, REPLICA_SUBJECTS, Subject, SubjectSpecError, load_subject
from bn_reference.subjects._framework import FrameworkMissing, require

pytestmark = pytest.mark.meta

_NEEDS = {
    "torch_": "torch", "jax_": "jax", "flax_": "flax", "ort_": "onnxruntime", "keras_jax_": "jax", "keras_torch_": "torch",
    "keras_tf_": "tensorflow", "inductor_": "torch",
}


def _needs(name: str) -> str:
    return _NEEDS[max((p for p in _NEEDS if name.startswith(p)), key=len)]


def _load(name: str) -> Subject:
    module = _needs(name)
    if not os.environ.get("CI"):  # CI installs every extra: there a missing framework fails
        pytest.importorskip(module, reason=f'{name} needs {module}: pip install "bn-props[{_needs(name)}]"')
    return load_subject(name)


RNG = np.random.default_rng(20261126)
X = (3.0 + 2.0 * RNG.standard_normal((4, 3, 5))).astype(np.float32)
GAMMA = np.array([[[2.0], [-0.5], [1.5]]])  # per feature of axes (0, 2): kept axis 1
BETA = np.array([[[0.25], [1.0], [-3.0]]])


# torch.compile (the inductor subjects) imports triton's native module, which aborts a process
# that already holds TensorFlow (an xdist worker of this suite): those subjects are checked the
# same way in a fresh interpreter.
_IN_A_FRESH_PROCESS = """
import sys
sys.path.insert(0, {root!r})
from tests.test_framework_subjects import _check_plain_input
_check_plain_input({name!r})
"""


# The synchronized ones (called with shards) are checked on fixed batches by tests/test_framework_replicas.py.
@pytest.mark.parametrize("name", [n for n in FRAMEWORK_SUBJECTS if n not in REPLICA_SUBJECTS])
def test_framework_subject_agrees_on_a_plain_input(name):
    if name.startswith("inductor_"):
        _load(name.replace("inductor_", "torch_"))  # skips (or, in CI, fails) without torch
        code = _IN_A_FRESH_PROCESS.format(root=str(Path(__file__).resolve().parents[1]), name=name)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
        return
    _check_plain_input(name)


def _check_plain_input(name):
    subject = _load(name)
    case = BNCase(
        x=X, axes=(0, 2), scale=GAMMA.astype(np.float32), offset=BETA.astype(np.float32), epsilon=1e-3,
        norm=subject.norm, scale_convention=subject.scale_convention,  # an RMSNorm subject against the RMSNorm reference
    )
    y = subject(X.copy(), **case.kwargs())
    assert y.shape == X.shape and y.dtype == X.dtype
    check_agreement(np.asarray(y, dtype=np.float64), case)


ONE_PASS = {"jax_standardize": "jax_standardize_stable", **{f"flax_{op}": f"flax_{op}_two_pass" for op in ("layer_norm", "batch_norm", "group_norm")}}


@pytest.mark.parametrize("fast,two_pass", list(ONE_PASS.items()))
def test_one_pass_variance_fails_where_two_pass_passes(fast, two_pass):
    """x = 1e4 + 1e0 z in float32 (|mean|/std = 1e4): E[x^2] - E[x]^2 cancels 8 of float32's
    7 digits, so the one-pass setting's output is off by O(1); two passes are within B."""
    x = (1e4 + RNG.standard_normal((64, 3))).astype(np.float32)
    case = BNCase(x=x, axes=(0,), epsilon=1e-3)
    check_agreement(np.asarray(_load(two_pass)(x.copy(), **case.kwargs()), np.float64), case)
    with pytest.raises(AssertionError):
        check_agreement(np.asarray(_load(fast)(x.copy(), **case.kwargs()), np.float64), case)


def test_missing_framework_names_its_extra(monkeypatch):
    with pytest.raises(FrameworkMissing, match=r'pip install "bn-props\[torch\]"'):
        require("bn_props_no_such_framework", "torch")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.delitem(sys.modules, "bn_reference.subjects.pytorch", raising=False)
    with pytest.raises(SubjectSpecError, match=r'bn-props\[torch\]'):
        load_subject("torch_batch_norm")


# --------------------------------------------------------------------------------------
# Declared refusals
# --------------------------------------------------------------------------------------

_MESSAGE = "one value per slice is refused"


def _n(shape, axes):
    return int(np.prod([shape[a] for a in axes]))


def refuses_n1(shape, axes):
    return _MESSAGE if _n(shape, axes) == 1 else None


def raising_on_n1(x, *, axes, scale, offset, epsilon, training):
    """The reference, except that N = 1 raises (as PyTorch's batch_norm does)."""
    if training and _n(x.shape, axes) == 1:
        raise ValueError(_MESSAGE)
    if not training:
        return x.copy()
    return batch_norm(x, axes, scale, offset, epsilon, dtype=x.dtype)


def declared(x, **kw):
    return raising_on_n1(x, **kw)


declared.bn_refuses = refuses_n1


def declared_but_returns(x, *, axes, scale, offset, epsilon, training):
    """BROKEN: declares the N = 1 refusal, but returns an output (garbage or not)."""
    return x.copy()


declared_but_returns.bn_refuses = refuses_n1


def declared_but_other_error(x, *, axes, scale, offset, epsilon, training):
    """BROKEN: declares one refusal, raises something else."""
    raise RuntimeError("unrelated failure")


declared_but_other_error.bn_refuses = refuses_n1

N1 = BNCase(x=np.array([[1.5, -2.0]], np.float32), axes=(0,))


def test_declared_refusal_holds_for_a_refusing_subject():
    check_refusal(Subject("declared", declared), N1)


@pytest.mark.parametrize("broken", [declared_but_returns, declared_but_other_error])
def test_declared_refusal_bites(broken):
    with pytest.raises(AssertionError, match="declared refusal"):
        check_refusal(Subject(broken.__name__, broken), N1)


def test_pytorch_refusals_are_clear_errors():
    for name, case in (("torch_batch_norm", N1), ("torch_instance_norm", N1), ("torch_group_norm", BNCase(x=np.ones((1, 1), np.float32), axes=(1,)))):
        check_refusal(_load(name), case)


def test_refused_inputs_are_not_drawn_by_other_properties():
    """The agreement property on a subject raising on N = 1: passes when the refusal is
    declared (no N = 1 input is drawn), fails when it is not (the filter is what passes it)."""
    from bn_reference.properties.test_agreement import test_agrees_with_float64_reference as prop

    prop(subject=Subject("declared", declared), dtype="float32")
    with pytest.raises(ValueError, match=_MESSAGE):
        prop(subject=Subject("undeclared", raising_on_n1), dtype="float32")


# torch.compile's subjects are left out for the reason above (triton beside TensorFlow); they
# reuse pytorch.py's declaration.
@pytest.mark.parametrize("name", [n for n in FRAMEWORK_SUBJECTS if not n.startswith("inductor_")])
def test_framework_subject_names_its_distributions(name):
    """docs/conformance.md shows each API with the versions of ``bn_library``: a distribution,
    or the API's and then its backend's (Keras on JAX: ``("keras", "jax")``)."""
    from bn_reference.selftest.conformance import versions_of

    library = _load(name).fn.bn_library
    libraries = (library,) if isinstance(library, str) else library
    assert libraries and all(isinstance(d, str) for d in libraries)
    if name.startswith("keras_"):
        backend = "tensorflow" if name.startswith("keras_tf_") else name.split("_")[1]
        assert tuple(libraries) == ("keras", backend)
    assert "not installed" not in versions_of(library)
