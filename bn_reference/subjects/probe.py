"""Which dtypes a subject accepts, when it does not say (no ``bn_dtypes``).

A subject that declares nothing is checked in every dtype it accepts, not in float32 alone:
half precision is where normalization kernels break. ``probe(spec)`` makes one tiny
training call per dtype (``x`` a 2 x 3 array of that dtype, ``axes=(0,)``) and reports each
dtype as accepted (the call returned) or refused (it raised: the exception's first line).
Whether the result is *right* is not its business: the properties check every accepted dtype.
A replicas subject (``bn_replicas = R``) gets the same 2 x 3 batch as its contract says, cut
into R shards along axis 0 (``numpy.array_split``: with R > 2, some shards are empty).

The calls run in a child process (``python -m bn_reference.subjects.probe SPEC``), so that
a subject which crashes the interpreter, exits or hangs in native code costs a refusal, not
the run: a dtype whose call kills the child is refused with how it died, and the child is
started again for the dtypes left. A hang is cut at ``timeout`` seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np

__all__ = ["probe", "probe_in_process", "PROBE_DTYPES"]

PROBE_DTYPES = ("float32", "float64", "float16", "bfloat16")
_VALUES = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]


def _probe_input(dtype_name: str) -> np.ndarray:
    if dtype_name == "bfloat16":
        import ml_dtypes

        return np.asarray(_VALUES, dtype=np.float64).astype(ml_dtypes.bfloat16)
    return np.asarray(_VALUES, dtype=dtype_name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


def probe_in_process(fn, dtypes=PROBE_DTYPES, replicas: int | None = None):
    """Yield ``(dtype, None if accepted else the refusal's first line)``, one call per dtype,
    here; ``replicas``: call with the input cut into that many shards (module docstring)."""
    for name in dtypes:
        x = _probe_input(name)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                fn(x if replicas is None else np.array_split(x, replicas, axis=0), axes=(0,), scale=1.0, offset=0.0, epsilon=1e-3, training=True)
            refused = None
        except Exception as exc:  # noqa: BLE001 - any refusal is a refusal
            refused = _first_line(exc)
        yield name, refused


def probe(spec: str, *, cwd: str | None = None, timeout: float = 120.0) -> dict[str, str | None]:
    """``{dtype: None (accepted) or why refused}`` for the subject ``spec``, probed in a
    child process (module docstring) started in ``cwd`` (where ``module:attr`` imports from)."""
    env = dict(os.environ)
    here = cwd or os.getcwd()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results: dict[str, str | None] = {}
    left = list(PROBE_DTYPES)
    while left:
        cmd = [sys.executable, "-m", "bn_reference.subjects.probe", spec, *left]
        try:
            done = subprocess.run(cmd, cwd=here, env=env, capture_output=True, text=True, timeout=timeout)
            lines, code = done.stdout.splitlines(), done.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            lines, code = out.splitlines(), None
        for line in lines:
            if line.startswith("{"):
                record = json.loads(line)
                results[record["dtype"]] = record["refused"]
        left = [d for d in left if d not in results]
        if not left:
            break
        if code == 0:  # the child ended normally without answering: it could not load the subject
            reason = (done.stderr.strip().splitlines() or ["the probe could not load the subject"])[-1]
            results.update({d: reason for d in left})
            break
        how = f"timed out after {timeout:g} s" if code is None else f"the call ended the process (exit code {code})"
        results[left.pop(0)] = how
    return results


def _main(argv: list[str]) -> int:
    from bn_reference.subjects import SubjectSpecError, load_subject

    spec, dtypes = argv[0], argv[1:] or list(PROBE_DTYPES)
    try:
        subject = load_subject(spec)
        replicas = subject.replicas
    except SubjectSpecError as exc:
        print(exc, file=sys.stderr)
        return 0
    for name, refused in probe_in_process(subject.fn, dtypes, replicas):
        print(json.dumps({"dtype": name, "refused": refused}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
