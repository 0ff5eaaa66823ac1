"""A third-party subject: PyTorch's ``torch.nn.functional.batch_norm`` wrapped to the contract.

``F.batch_norm`` normalizes an (N, C, ...) tensor over every axis but the channel axis 1.
The wrapper moves the contract's kept axes together into that channel axis and the
reduced axes into N, so any axis set works::

    pytest --bn-impl examples.torch_bn:torch_batch_norm -n auto

PyTorch is not a bn-props dependency: without it, importing this module raises
ImportError (and ``--bn-impl`` says so); ``tests/test_examples.py`` skips with
that reason.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bn_reference.subjects import check_call, supports


@supports("float32", "float64")
def torch_batch_norm(x, *, axes, scale, offset, epsilon, training):
    x, axes, epsilon, normalize = check_call(x, axes, scale, offset, epsilon, training)
    if not normalize:
        return x.copy()
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, list(axes) + kept)
    n = int(np.prod([x.shape[a] for a in axes]))
    c = int(np.prod([x.shape[a] for a in kept]))
    t = torch.from_numpy(np.ascontiguousarray(moved).reshape(n, c))
    y = F.batch_norm(t, None, None, training=True, eps=epsilon).numpy()
    y = np.transpose(y.reshape(moved.shape), np.argsort(list(axes) + kept))
    return (y * np.asarray(scale, dtype=x.dtype) + np.asarray(offset, dtype=x.dtype)).astype(x.dtype)
