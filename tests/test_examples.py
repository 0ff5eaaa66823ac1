"""The examples in examples/ work as documented: any function with the contract's signature
is checked by the whole suite, unchanged."""
import os

import pytest

from .test_plugin import ROOT, run_pytest

pytestmark = [pytest.mark.meta, pytest.mark.slow]


@pytest.mark.parametrize(
    "spec,needs",
    [
        ("examples.numpy_bn:batch_norm", None),
        ("examples.torch_bn:torch_batch_norm", "torch"),
        ("examples.torch_bn:custom_backward_bn", "torch"),  # a torch.autograd.Function's own backward
    ],
    ids=["numpy", "torch", "torch_custom_backward"],
)
def test_example_subject_passes_the_suite(tmp_path, spec, needs):
    """The example subject passes every property (exit 0, no failure)."""
    if needs and os.environ.get("CI"):  # CI installs every framework extra: a skip there is a test that never ran
        __import__(needs)
    elif needs:
        pytest.importorskip(needs, reason=f'{spec} wraps {needs}, which is not installed: pip install "bn-props[{needs}]"')
    r = run_pytest(tmp_path, "properties", "-m", "not meta", "-n", "2", "-rs", "--bn-impl", spec, env_extra={"PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stdout[-4000:]
    assert " failed" not in r.stdout.splitlines()[-1]
    assert "has no vjp" not in r.stdout, "every example has a backward pass (vjp): the gradient laws must run, not skip"
