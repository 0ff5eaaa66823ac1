"""Keras 3 ``BatchNormalization``, ``LayerNormalization`` and RMSNorm on the JAX and PyTorch
backends (``pip install "bn-props[jax]"`` / ``"bn-props[torch]"``).

A Keras backend is fixed per process (``KERAS_BACKEND`` is read when Keras is first
imported, and this process's Keras serves TensorFlow), so each backend runs in a child
process of its own (``bn_reference.subjects._keras_worker``), started on the first call and
kept for the life of this process (one per pytest-xdist worker), talking pickle frames over
a pipe. A child that dies is restarted on the next call.

=======================  ===============================================================
subject                  call in the child (x rearranged to (K, *R) here)
=======================  ===============================================================
keras_jax_batch_norm     ``BatchNormalization(axis=0, momentum=0)``, gamma/beta = the
keras_torch_batch_norm   contract's scale/offset per kept position, ``training=True``
keras_jax_layer_norm     ``LayerNormalization(axis=[1..], center=False, scale=False)``,
keras_torch_layer_norm   then * scale + offset here, in x's dtype
keras_jax_rms_norm       ``RMSNormalization(axis=[1..])`` / ``ops.rms_normalization(axis=
keras_torch_rms_norm     [1..])``: RMSNorm (``bn_norm = "rms"``); where each takes the
keras_jax_ops_rms_norm   contract's scale: ``bn_reference.subjects._keras_rms`` (the same
keras_torch_ops_rms_norm adapters serve the TensorFlow backend, in ``keras_layers``)
=======================  ===============================================================

K is the product of the kept sides, R the reduced sides (``_framework.kept_last``): the
layers' own reductions are then exactly the contract's, for every axis set. ``moments``:
the BatchNormalization's moving statistics after one call with momentum 0 (an exact copy of
the batch moments), and ``keras.ops.moments`` for LayerNormalization (what it calls).
Errors in the child come back as ``KerasBackendError("TypeName: message")``.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import pickle
import subprocess
import sys
import threading

import numpy as np

from bn_reference.subjects import check_call
from bn_reference.subjects._framework import FrameworkMissing, affine_after, kept_last, per_kept
from bn_reference.subjects._keras_rms import rms_subject

__all__ = [
    "keras_jax_batch_norm",
    "keras_jax_layer_norm",
    "keras_torch_batch_norm",
    "keras_torch_layer_norm",
    "keras_jax_rms_norm",
    "keras_jax_ops_rms_norm",
    "keras_torch_rms_norm",
    "keras_torch_ops_rms_norm",
    "KerasBackendError",
    "worker",
    "LIBRARY",
]

LIBRARY = "keras"
_EXTRA = {"jax": "jax", "torch": "torch"}


class KerasBackendError(RuntimeError):
    """An exception raised in the Keras backend's child process (type and message kept)."""


class _Worker:
    """One child process running Keras on ``backend``; ``call(op, *payload)`` is one round trip."""

    def __init__(self, backend: str):
        self.backend = backend
        self.label = f"Keras {backend}"  # how an error names the child (flax_replicas' worker names itself)
        self.proc = None
        self.lock = threading.Lock()

    def _start(self):
        env = {**os.environ, "KERAS_BACKEND": self.backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
        if self.backend == "jax":
            env["JAX_ENABLE_X64"] = "1"  # float64 inputs stay float64
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bn_reference.subjects._keras_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def call(self, op: str, *payload):
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                pickle.dump((op, payload), self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self.proc.stdin.flush()
                status, value = pickle.load(self.proc.stdout)
            except (EOFError, BrokenPipeError, pickle.UnpicklingError) as exc:
                code = self.proc.poll()
                self.proc = None
                raise KerasBackendError(f"the {self.label} worker died (exit code {code}) during {op!r}: {exc!r}") from None
        if status == "error":
            raise KerasBackendError(value)
        return value

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc is not None:
            self.proc.stdout.close()  # else a ResourceWarning (unclosed file) at exit
        self.proc = None


_WORKERS: dict[str, _Worker] = {}


def worker(backend: str) -> _Worker:
    """The (lazily started) child process for ``backend``; its framework must be installed."""
    if backend not in _WORKERS:
        for module, extra in ((backend, _EXTRA[backend]), ("keras", "keras")):  # checked, not imported: Keras runs in the child only
            if importlib.util.find_spec(module) is None:
                raise FrameworkMissing(f'keras_{backend}_* need {module}, which is not installed: pip install "bn-props[{extra}]"')
        _WORKERS[backend] = _Worker(backend)
    return _WORKERS[backend]


@atexit.register
def _close_all():
    for w in _WORKERS.values():
        w.close()


def _keep(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _worker_moments(backend, op):
    """``moments(x, *, axes)`` computed by the backend's child process (``op``), keepdims shapes."""

    def moments(x, *, axes):
        x = np.asarray(x)
        a, _ = kept_last(x, tuple(axes))
        mean, var = worker(backend).call(op, a)
        return mean.reshape(_keep(x.shape, axes)), var.reshape(_keep(x.shape, axes))

    return moments


def _batch_norm(backend):
    moments = _worker_moments(backend, "bn_moments")
    def subject(x, *, axes, scale, offset, epsilon, training):
        x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
        if not train:
            return x.copy()
        a, undo = kept_last(x, axes)
        gamma, beta = per_kept(scale, x.shape, axes, x.dtype), per_kept(offset, x.shape, axes, x.dtype)
        return undo(worker(backend).call("batch_norm", a, gamma, beta, epsilon))

    subject.__name__ = subject.__qualname__ = f"keras_{backend}_batch_norm"
    subject.__doc__ = (
        f"Keras 3 ``BatchNormalization(axis=0, momentum=0)`` on the {backend} backend (child process), "
        "on x rearranged to (K, *R), gamma/beta per kept position; ``training`` False/None returns x."
    )
    subject.moments = moments
    subject.bn_api = f"keras.layers.BatchNormalization (KERAS_BACKEND={backend})"
    return subject


def _layer_norm(backend):
    moments = _worker_moments(backend, "ln_moments")
    def subject(x, *, axes, scale, offset, epsilon, training):
        x, axes, epsilon, train = check_call(x, axes, scale, offset, epsilon, training)
        if not train:
            return x.copy()
        a, undo = kept_last(x, axes)
        y = undo(worker(backend).call("layer_norm", a, None, None, epsilon))
        return affine_after(y, scale, offset, x.dtype)

    subject.__name__ = subject.__qualname__ = f"keras_{backend}_layer_norm"
    subject.__doc__ = (
        f"Keras 3 ``LayerNormalization(axis=[1..], center=False, scale=False)`` on the {backend} backend "
        "(child process), on x rearranged to (K, *R), then * scale + offset; ``training`` False/None returns x."
    )
    subject.moments = moments
    subject.bn_api = f"keras.layers.LayerNormalization (KERAS_BACKEND={backend})"
    return subject


keras_jax_batch_norm = _batch_norm("jax")
keras_jax_layer_norm = _layer_norm("jax")
keras_torch_batch_norm = _batch_norm("torch")
keras_torch_layer_norm = _layer_norm("torch")
for _f, _backend in ((keras_jax_batch_norm, "jax"), (keras_jax_layer_norm, "jax"), (keras_torch_batch_norm, "torch"), (keras_torch_layer_norm, "torch")):
    _f.bn_dtypes = ("float32", "float64", "float16", "bfloat16")
    _f.bn_library = (LIBRARY, _backend)  # Keras' API, run on the backend's distribution

def _rms(backend: str, op: str):
    """The RMSNorm subject ``keras_{backend}_{op}`` (``_keras_rms.OPS``), run in the backend's child."""
    return rms_subject(f"keras_{backend}_{op}", op, lambda *call: worker(backend).call(*call), backend=backend, library=LIBRARY)


keras_jax_rms_norm, keras_jax_ops_rms_norm = _rms("jax", "rms_norm"), _rms("jax", "ops_rms_norm")
keras_torch_rms_norm, keras_torch_ops_rms_norm = _rms("torch", "rms_norm"), _rms("torch", "ops_rms_norm")


# On the JAX backend each new shape compiles (XLA): shapes from a few buckets (bn_reference.harness.budget).
keras_jax_batch_norm.bn_compiles = keras_jax_layer_norm.bn_compiles = True
keras_jax_rms_norm.bn_compiles = keras_jax_ops_rms_norm.bn_compiles = True
