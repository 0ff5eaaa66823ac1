"""The examples in examples/ work as documented: any function with the contract's signature
is checked by the whole suite, unchanged.

All the example subjects go through ONE run of the suite (one ``--bn-impl`` each, ``-n 2``):
the same properties and examples per subject as one run each, with the workers, their
imports (PyTorch's) and xdist's scheduling shared instead of paid three times."""
import os
import xml.etree.ElementTree as ET

import pytest

from .test_plugin import ROOT, run_pytest

pytestmark = [pytest.mark.meta, pytest.mark.slow]

# spec -> the framework it wraps (None: NumPy only)
EXAMPLES = {
    "examples.numpy_bn:batch_norm": None,
    "examples.torch_bn:torch_batch_norm": "torch",
    "examples.torch_bn:custom_backward_bn": "torch",  # a torch.autograd.Function's own backward
    "examples.torch_rms_norm:rms_norm": "torch",  # RMSNorm (bn_norm = "rms"), Hugging Face style, own backward
}


def _runnable() -> list[str]:
    """The example specs whose framework is installed. In CI every framework extra is
    installed, and a missing one fails (a skip there is a test that never ran)."""
    specs = []
    for spec, needs in EXAMPLES.items():
        if needs and os.environ.get("CI"):
            __import__(needs)
        elif needs:
            try:
                __import__(needs)
            except ImportError:
                continue
        specs.append(spec)
    return specs


def test_example_subjects_pass_the_suite(tmp_path):
    """Each example subject passes every property (exit 0, no failure), and each has a
    backward pass, so the gradient laws ran on it rather than skipping."""
    specs = _runnable()
    junit = tmp_path / "junit.xml"
    args = ["properties", "-m", "not meta", "-n", "2", "-rs", f"--junitxml={junit}"]
    for spec in specs:
        args += ["--bn-impl", spec]
    r = run_pytest(tmp_path, *args, env_extra={"PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stdout[-4000:]
    assert " failed" not in r.stdout.splitlines()[-1]
    assert "has no vjp" not in r.stdout, "every example has a backward pass (vjp): the gradient laws must run, not skip"
    ran = [case.get("name", "") for case in ET.parse(junit).iter("testcase") if case.find("skipped") is None]
    for spec in specs:  # each subject really ran (one run: a subject dropped from it would pass silently)
        assert any(f"[{spec}-" in name or f"[{spec}]" in name for name in ran), f"{spec}: no property ran"
    missing = sorted(set(EXAMPLES) - set(specs))
    if missing:
        pytest.skip(f"not checked, their framework is not installed: {missing}")
