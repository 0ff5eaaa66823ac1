"""The contract's call, checked once before any property runs.

Every property calls a subject as::

    f(x, axes=..., scale=..., offset=..., epsilon=..., training=...)

A subject whose parameters are named otherwise (``axis``, ``gamma``, ``eps``...) would fail
every property, each only after Hypothesis had shrunk its example: one ``TypeError``
reported eighteen times. ``check_signature`` finds it once, up front:

* a callable with an introspectable signature (Python functions, methods, ``__call__``
  objects, ``functools.partial``, most framework wrappers): the contract call is bound to
  it with ``inspect.Signature.bind``, which raises the very ``TypeError`` Python would
  raise at call time, without running the subject (a subject that hangs or kills its
  process is not run here either);
A replicas subject (``bn_replicas = R``) is held to its own contract's call, ``f(shards, *,
axes, ...)`` with ``shards`` a list of R arrays (``REPLICAS_CONTRACT``).

* otherwise (some C extensions): one contract call on a 2x1 float32 batch (cut into R
  shards for a replicas subject); a
  ``TypeError`` raised by the call itself, with no frame of the subject in its traceback,
  is the same mismatch. Any other outcome of that call is left to the properties to judge.
"""
from __future__ import annotations

import inspect

import numpy as np

__all__ = ["CONTRACT", "REPLICAS_CONTRACT", "check_signature"]

CONTRACT = "f(x, *, axes, scale, offset, epsilon, training)"
REPLICAS_CONTRACT = "f(shards, *, axes, scale, offset, epsilon, training) -> list of R outputs"


def _contract_args(replicas: int | None = None):
    x = np.array([[0.0], [1.0]], dtype=np.float32)
    first = x if replicas is None else np.array_split(x, replicas, axis=0)
    return (first,), dict(axes=(0,), scale=1.0, offset=0.0, epsilon=1e-3, training=True)


def mismatch(fn, replicas: int | None = None) -> str | None:
    """Why ``fn`` cannot be called as the contract says (the ``TypeError``'s text), or None;
    ``replicas``: as the replicas contract says, with that many shards."""
    args, kwargs = _contract_args(replicas)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read: make the call once
        try:
            fn(*args, **kwargs)
        except TypeError as exc:
            if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                return str(exc)
        except Exception:  # noqa: BLE001 - the properties report what the subject does wrong
            pass
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        params = signature.parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return str(exc)
        keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        unknown = [k for k in kwargs if k not in params or params[k].kind not in keyword]
        return f"no parameter named {', '.join(map(repr, unknown))} ({exc})" if unknown else str(exc)
    return None


def check_signature(subject) -> None:
    """Raise ``SubjectSpecError`` naming the mismatch if ``subject`` cannot take the
    contract's call (see the module docstring)."""
    from bn_reference.subjects import SubjectSpecError

    replicas = subject.replicas
    reason = mismatch(subject.fn, replicas)
    if reason is not None:
        contract = CONTRACT if replicas is None else REPLICAS_CONTRACT.replace("R outputs", f"{replicas} outputs")
        raise SubjectSpecError(f"subject {subject.spec!r} cannot be called as {contract}: {reason}")
