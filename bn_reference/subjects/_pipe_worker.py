"""The request loop of bn-props' child processes (``_keras_worker``, ``_keras_replicas_worker``,
``_flax_replicas_worker``): a framework that must be configured before it is imported (a Keras
backend, XLA's host device count) runs in a child of its own, answering pickle frames.

Protocol: the parent writes ``(op, payload)`` to the child's stdin; the child answers
``("ok", ops[op](*payload))`` or ``("error", "TypeName: message")`` on the file descriptor it
was started with as stdout. ``run`` moves the child's own ``sys.stdout`` to stderr first, so
nothing the framework prints can corrupt a frame. Imports nothing heavy: each worker imports
its framework inside its ``make_ops``.
"""
from __future__ import annotations

import os
import pickle
import sys
import traceback
from typing import Callable

__all__ = ["serve", "run"]


def serve(ops: dict[str, Callable], inp, out) -> None:
    """Answer requests on ``inp`` with ``ops`` until the parent closes the pipe."""
    while True:
        try:
            op, payload = pickle.load(inp)
        except EOFError:
            return
        try:
            answer = ("ok", ops[op](*payload))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
            traceback.print_exc(file=sys.stderr)
            answer = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


def run(make_ops: Callable[[], dict[str, Callable]]) -> None:
    """The child's main: keep the real stdout for frames, send prints to stderr, build the
    ops (importing the framework) and serve them."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed from here on goes to stderr
    serve(make_ops(), sys.stdin.buffer, out)
