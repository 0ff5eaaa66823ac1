"""``examples/torch_sync_bn.py``, synchronized batch norm over torch.distributed (gloo, one
process per replica), passes the replicas laws; its process group is started once, reused
by every call, and gone after shutdown.

Cheap on purpose: the laws run with the ``conformance`` profile (20 examples per cell, 20
cells), one pytest process, no xdist (the group's processes are the parallelism)."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from .test_plugin import ROOT, run_pytest

pytestmark = pytest.mark.meta

SPEC = "examples.torch_sync_bn:torch_sync_bn"


def _torch():
    """torch, or a skip where it is not installed (in CI it is: a missing one fails)."""
    if os.environ.get("CI"):
        return __import__("torch")
    return pytest.importorskip("torch")


def test_torch_sync_bn_passes_the_replicas_laws(tmp_path):
    _torch()
    junit = tmp_path / "junit.xml"
    r = run_pytest(
        tmp_path, "properties/test_replicas.py", "--bn-impl", SPEC, "-n", "0", "--hypothesis-profile=conformance",
        f"--junitxml={junit}", env_extra={"PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    cases = list(ET.parse(junit).iter("testcase"))
    ran = [c.get("name") for c in cases if c.find("skipped") is None and c.find("failure") is None]
    assert len(ran) == len(cases) == 20, [c.get("name") for c in cases]  # 5 laws x 4 dtypes, none skipped
    assert all(f"[{SPEC}-" in name for name in ran)


def test_the_group_is_started_once_and_shut_down(monkeypatch):
    _torch()
    # examples/ is not a package on the import path of an installed or CI run: put the checkout
    # first, as the suite's subprocess runs do (their PYTHONPATH); spawned workers inherit it.
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    from examples import torch_sync_bn as m

    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    kwargs = dict(axes=(0,), scale=1.0, offset=0.0, epsilon=1e-3, training=True)
    try:
        first = m.torch_sync_bn([x[:4], x[4:]], **kwargs)
        procs = list(m._group.procs)
        second = m.torch_sync_bn([x[:0], x], **kwargs)  # an empty replica: the same result
        assert m._group.procs == procs and all(p.is_alive() for p in procs)
        np.testing.assert_array_equal(np.concatenate(first), np.concatenate(second))
    finally:
        m.shutdown()
    assert m._group is None and not any(p.is_alive() for p in procs)
