"""Hostile subjects: implementations that break the harness's assumptions rather than the
mathematics. The self-test ``test_hostile_subjects.py`` runs them next to ``reference``
(``PYTHONPATH=tests pytest --bn-impl hostile:hangs -n 1`` to try one by hand).

Each computes a correct result with the float64 reference (where it returns at all), so
every failure it causes is about the contract, not the numbers. TensorFlow is imported
with the module (seconds), not in the first call, which would count against the
per-call timeout.
"""
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
