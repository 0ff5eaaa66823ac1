"""Hostile subjects: implementations that break the harness's assumptions rather than the
mathematics. The self-test ``test_hostile_subjects.py`` runs them next to ``reference``
(``PYTHONPATH=tests pytest --bn-impl hostile:hangs -n 1`` to try one by hand).

Each computes a correct result with the float64 reference (where it returns at all), so
every failure it causes is about the contract, not the numbers. TensorFlow is imported
with the module (seconds), not in the first call, which would count against the
per-call timeout.
"""
import ctypes
import os
import signal
import time

import numpy as np

from bn_reference.subjects._tf import tf
from bn_reference.mathematics.reference import reference


def raises(x, *, axes, scale, offset, epsilon, training):
    """Raises on every call."""
    raise RuntimeError("hostile subject: raises on every call")


def returns_tensor(x, *, axes, scale, offset, epsilon, training):
    """The right values as a tf.Tensor, not an ndarray."""
    return tf.constant(reference(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training))


def returns_list(x, *, axes, scale, offset, epsilon, training):
    """The right values as a nested Python list."""
    return reference(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training).tolist()


def wrong_shape(x, *, axes, scale, offset, epsilon, training):
    """The right values with an extra leading axis: shape (1, *x.shape)."""
    return reference(x, axes=axes, scale=scale, offset=offset, epsilon=epsilon, training=training)[np.newaxis]


def hangs(x, *, axes, scale, offset, epsilon, training):
    """Never returns (sleeps; interruptible by a signal handler)."""
    while True:
        time.sleep(3600)


def dies(x, *, axes, scale, offset, epsilon, training):
    """Kills its own process with SIGKILL: no exception, no cleanup, no report."""
    os.kill(os.getpid(), signal.SIGKILL)


# The subjects below are checked only with ``--bn-isolate`` (``bn_reference.harness.isolation``):
# in-process, the first would hang pytest for good and the last would take the machine's memory.


def native_hang(x, *, axes, scale, offset, epsilon, training):
    """Never returns, inside native code: locks a pthread mutex it already holds (a
    self-deadlock, as in a deadlocked kernel). ctypes releases the GIL and the thread never
    comes back to the interpreter, so a Python-level SIGALRM handler never runs; only a
    process kill ends it."""
    libc = ctypes.CDLL(None, use_errno=True)
    mutex = ctypes.create_string_buffer(64)  # pthread_mutex_t (40 bytes on x86-64 glibc), zeroed = PTHREAD_MUTEX_INITIALIZER
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)  # a default (non-recursive) mutex: blocks forever
    raise AssertionError("unreachable: the second lock of a held default mutex returned")


def exits(x, *, axes, scale, offset, epsilon, training):
    """Ends its process with ``os._exit(3)``: no exception, no cleanup."""
    os._exit(3)


def segfaults(x, *, axes, scale, offset, epsilon, training):
    """Reads address 0 through ctypes: SIGSEGV in native code."""
    ctypes.string_at(0)


def hoards(x, *, axes, scale, offset, epsilon, training):
    """Allocates without bound (64 MB at a time, every page written), never returns."""
    kept = []
    while True:
        kept.append(np.ones(8 << 20))


# Hostility, not dtype probing, is what these are for: float32 only, declared, so that no
# probe call (tests/test_dtype_probe.py) meets a hang, a crash or an exit before the run.
for _f in (raises, returns_tensor, returns_list, wrong_shape, hangs, dies, native_hang, exits, segfaults, hoards):
    _f.bn_dtypes = ("float32",)
