"""PyTorch's normalization functions compiled by ``torch.compile`` (TorchInductor, CPU) as
subjects (``pip install "bn-props[torch]"`` and a C++ compiler).

=======================  ===================================================================
subject                  call
=======================  ===================================================================
inductor_batch_norm      ``torch.compile(F.batch_norm ...)``: ``pytorch.batch_norm_forward``
inductor_layer_norm      ``torch.compile(F.layer_norm ...)``: ``pytorch.layer_norm_forward``
inductor_group_norm      ``torch.compile(F.group_norm ...)``: ``pytorch.group_norm_forward``
=======================  ===================================================================

The same forward passes as the eager subjects (``bn_reference.subjects.pytorch``: the same
rearrangement, the same API call, the same refusals), each wrapped in
``torch.compile(fullgraph=True, dynamic=True)``. Inductor lowers the ops to its own
decompositions and generates C++ with its own (Welford) reductions, compiled with the
machine's compiler: NOT the eager ATen kernel. The gradient goes through the compiled
graph's backward (AOTAutograd + Inductor).

Compilation: one per rank, axis set, dtype, sizes of 0/1 (Inductor specializes them) and
epsilon (``F.layer_norm``'s ``eps`` is a C++ ``double`` in the ATen schema, so Dynamo
specializes on its value). Hence ``bn_compiles = True``: shapes and default epsilons from a
few buckets (``strategies.shape_buckets``). Dynamo's recompile limit is raised and hitting
it made an error (``fail_on_recompile_limit_hit``), so a call never falls back silently to
eager PyTorch: every verdict is about generated code.
"""
from __future__ import annotations

import functools

from bn_reference.subjects._framework import require
from bn_reference.subjects import pytorch
from bn_reference.subjects.autodiff import torch_vjp

torch = require("torch", "torch")

__all__ = ["inductor_batch_norm", "inductor_layer_norm", "inductor_group_norm", "LIBRARY"]

LIBRARY = "torch"

_dynamo = torch._dynamo.config
_dynamo.recompile_limit = max(getattr(_dynamo, "recompile_limit", 8), 4096)
_dynamo.accumulated_recompile_limit = max(getattr(_dynamo, "accumulated_recompile_limit", 256), 65536)
_dynamo.fail_on_recompile_limit_hit = True


def _compiled(name: str):
    eager = pytorch.FORWARDS[f"torch_{name}"]
    cache: dict = {}

    def forward(x, scale, offset, *, axes, epsilon):
        # axes and epsilon are constants of the compiled function (a closure), not its
        # arguments: with dynamic=True Dynamo makes int arguments symbolic, and then
        # ``a not in axes`` in the rearrangement traced wrong (a rank-1 x got the
        # permutation (0, 0)). Compiled once per (axes, epsilon), which Inductor's eps
        # specialization costs anyway.
        key = (tuple(int(a) for a in axes), float(epsilon))
        if key not in cache:
            cache[key] = torch.compile(functools.partial(eager, axes=key[0], epsilon=key[1]), fullgraph=True, dynamic=True)
        return cache[key](x, scale, offset)

    forward.__name__ = forward.__qualname__ = f"inductor_{name}_forward"
    forward.__doc__ = f"torch.compile (inductor, CPU) of: {eager.__doc__}"
    return forward


def _subject(name: str):
    eager = getattr(pytorch, f"torch_{name}")
    forward = _compiled(name)
    subject = pytorch._subject(f"inductor_{name}", forward, getattr(eager, "bn_refuses", None))
    subject.bn_api = f"torch.compile({pytorch._API['torch_' + name]})"
    subject.vjp = torch_vjp(forward)
    subject.bn_compiles = True
    return subject


pytorch._API.update({f"inductor_{n}": f"torch.compile({pytorch._API['torch_' + n]})" for n in ("batch_norm", "layer_norm", "group_norm")})
inductor_batch_norm = _subject("batch_norm")
inductor_layer_norm = _subject("layer_norm")
inductor_group_norm = _subject("group_norm")
