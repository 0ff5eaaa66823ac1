"""A subject that declares no ``bn_dtypes`` is probed, one tiny call per dtype, and checked in
every dtype it accepts; the header names each refused dtype with the exception's first line
(``bn_reference.subjects.probe``, ``bn_reference.harness.dtypes``)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bn_reference.subjects.probe import probe

pytestmark = pytest.mark.meta

ROOT = Path(__file__).resolve().parents[1]

KERNELS = textwrap.dedent(
    '''
    import os
    import numpy as np

    def every(x, *, axes, scale, offset, epsilon, training):
        xf = x.astype(np.float32) if x.dtype.itemsize < 4 else x
        mean = xf.mean(axis=axes, keepdims=True)
        var = np.square(xf - mean).mean(axis=axes, keepdims=True)
        return ((xf - mean) / np.sqrt(var + epsilon) * scale + offset).astype(x.dtype)

    def no_half(x, *, axes, scale, offset, epsilon, training):
        if x.dtype.itemsize < 4:
            raise TypeError(f"can't convert np.ndarray of type {x.dtype.name}\\nsecond line")
        return every(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)

    def float16_kills(x, *, axes, scale, offset, epsilon, training):
        if x.dtype.name == "float16":
            os._exit(3)  # a crash in native code, as far as the caller can tell
        return every(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)
    '''
)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "kernels.py").write_text(KERNELS)
    return tmp_path


def test_a_kernel_that_accepts_every_dtype_is_probed_in_all(project):
    assert probe("kernels:every", cwd=str(project)) == {"float32": None, "float64": None, "float16": None, "bfloat16": None}


def test_a_refusal_is_the_exception_first_line(project):
    got = probe("kernels:no_half", cwd=str(project))
    assert got["float32"] is None and got["float64"] is None
    assert got["float16"] == "TypeError: can't convert np.ndarray of type float16"
    assert got["bfloat16"] == "TypeError: can't convert np.ndarray of type bfloat16"


def test_a_call_that_ends_the_process_refuses_that_dtype_only(project):
    got = probe("kernels:float16_kills", cwd=str(project))
    assert got["float16"] == "the call ended the process (exit code 3)"
    assert got["float32"] is None and got["float64"] is None and got["bfloat16"] is None


def test_the_run_is_parametrized_by_the_accepted_dtypes_and_says_why_not_the_others(project):
    env = {k: v for k, v in os.environ.items() if k not in ("BN_IMPL", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join([str(project), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
           "properties/test_contract.py", "-k", "test_output_shape", "--bn-impl", "kernels:no_half", "--bn-impl", "kernels:every"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert (
        "bn-props dtypes: kernels:no_half: float32, float64 (probed); float16 refused: TypeError: can't convert "
        "np.ndarray of type float16; bfloat16 refused: TypeError: can't convert np.ndarray of type bfloat16" in out
    ), out[:3000]
    assert "bn-props dtypes: kernels:every: float32, float64, float16, bfloat16 (probed: every dtype accepted)" in out
    ids = set(re.findall(r"test_output_shape_and_dtype\[([^\]]+)\]", out))
    assert ids == {"kernels:no_half-float32", "kernels:no_half-float64", *(f"kernels:every-{d}" for d in ("float32", "float64", "float16", "bfloat16"))}
