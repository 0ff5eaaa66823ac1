"""The kernel examples (examples/triton_bn.py, pallas_bn.py, inductor_bn.py) pass the suite on
the CPU, and each one's planted bug is caught.

What the two runs cover, and what they do not (CI's budget: each example call costs
milliseconds to tenths of a second, and the first call of a shape compiles):

* ``test_kernel_examples_pass_the_suite``: the three correct kernels in ONE suite run (-n 2),
  every property that takes a subject, in every dtype each declares (Triton and inductor:
  float32, float64, float16, bfloat16; Pallas: float32, float16, bfloat16), forward and the
  gradient laws through each kernel's own backward. ``--bn-budget 1s`` gives every cell the
  budget's floor, ``MIN_EXAMPLES`` = 3 derandomized examples, from the shape buckets
  (``bn_compiles``: ``strategies.SIDE_BUCKETS``). A smoke pass of the whole contract, not a
  thorough one: the thorough check is ``bn-props check`` at its default 5-minute budget
  (docs/gpu-kernels.md).
* ``test_planted_bugs_are_caught``: the three planted bugs in one run of the agreement law
  (``test_agrees_with_float64_reference``) in every declared dtype, under the ``verdict``
  profile (ci's 200 derandomized examples, stopping at the first failure, no shrinking; no
  budget): each bug must fail the law in every dtype.
"""
import importlib.util
import os
import xml.etree.ElementTree as ET

import pytest

from .test_plugin import ROOT, run_pytest

pytestmark = [pytest.mark.meta, pytest.mark.slow]

CORRECT = {
    "examples.triton_bn:triton_norm": "triton",
    "examples.pallas_bn:pallas_norm": "jax",
    "examples.inductor_bn:compiled_norm": "torch",
}
PLANTED = {  # the bug variant -> its dtypes
    "examples.triton_bn:triton_norm_forgets_tail_mask": ("triton", ("float32", "float64", "float16", "bfloat16")),
    "examples.pallas_bn:pallas_norm_mean_over_padded_lanes": ("jax", ("float32", "float16", "bfloat16")),
    "examples.inductor_bn:compiled_norm_bessel": ("torch", ("float32", "float64", "float16", "bfloat16")),
}
ENV = {"PYTHONPATH": str(ROOT), "TRITON_INTERPRET": "1"}


def _runnable(needs: dict) -> list[str]:
    """The specs whose framework is installed (looked up, not imported: importing triton's
    native module into a process that holds TensorFlow aborts it, and the suite runs in a
    subprocess anyway); in CI (``CI`` set) a missing one fails."""
    specs = []
    for spec, module in needs.items():
        missing = [m for m in (module, "torch") if importlib.util.find_spec(m) is None]  # the interpreter runs on torch tensors
        if missing and os.environ.get("CI"):
            raise AssertionError(f"{spec}: {', '.join(missing)} not installed (CI must run every kernel example)")
        if not missing:
            specs.append(spec)
    return specs


def _cases(junit):
    return [(case.get("name", ""), case) for case in ET.parse(junit).iter("testcase")]


def test_kernel_examples_pass_the_suite(tmp_path):
    specs = _runnable(CORRECT)
    if not specs:
        pytest.skip("none of triton, jax, torch is installed")
    junit = tmp_path / "junit.xml"
    args = ["properties", "-m", "not meta", "-n", "2", "--bn-budget", "1s", f"--junitxml={junit}"]
    for spec in specs:
        args += ["--bn-impl", spec]
    r = run_pytest(tmp_path, *args, env_extra=ENV)
    assert r.returncode == 0, r.stdout[-4000:]
    assert "has no vjp" not in r.stdout, "every kernel example has a backward pass: the gradient laws must run"
    assert "n=3" in r.stdout and "median subject call:" in r.stdout  # the report says what each cell ran
    ran = [name for name, case in _cases(junit) if case.find("skipped") is None]
    for spec in specs:
        assert any(f"[{spec}-" in name for name in ran), f"{spec}: no property ran"
    missing = sorted(set(CORRECT) - set(specs))
    if missing:
        pytest.skip(f"not checked, their framework is not installed: {missing}")


def test_planted_bugs_are_caught(tmp_path):
    needs = {spec: module for spec, (module, _) in PLANTED.items()}
    specs = _runnable(needs)
    if not specs:
        pytest.skip("none of triton, jax, torch is installed")
    junit = tmp_path / "junit.xml"
    args = ["properties/test_agreement.py", "-k", "test_agrees_with_float64_reference", "-n", "2", "--bn-budget", "0",
            "--hypothesis-profile=verdict", f"--junitxml={junit}"]
    for spec in specs:
        args += ["--bn-impl", spec]
    r = run_pytest(tmp_path, *args, env_extra=ENV)
    assert r.returncode == 1, r.stdout[-4000:]
    failed = {name for name, case in _cases(junit) if case.find("failure") is not None}
    for spec in specs:
        for dtype in PLANTED[spec][1]:
            assert f"test_agrees_with_float64_reference[{spec}-{dtype}]" in failed, f"{spec} in {dtype}: the planted bug was not caught"
    missing = sorted(set(PLANTED) - set(specs))
    if missing:
        pytest.skip(f"not checked, their framework is not installed: {missing}")
