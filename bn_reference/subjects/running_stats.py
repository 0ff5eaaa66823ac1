"""Stateful adapters (the contract's ``bn_stateful``) for framework layers with running
statistics, beyond Keras' (``keras_layers.KerasMovingBN``).

``bn_stateful(*, axes, momentum, epsilon, scale, offset, dtype) -> layer`` with
``layer(x, training) -> ndarray`` and ``layer.moving_mean`` / ``layer.moving_variance`` (one
value per kept position). See ``bn_reference.subjects`` for the declared conventions.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TorchRunningBN"]


class TorchRunningBN:
    """``torch.nn.BatchNorm1d(C, eps, momentum)`` for one kept axis k (C = x.shape[k]): x is
    rearranged to (R0, C, R1*R2*...) (k moved to axis 1, the reduced axes around it), which
    BatchNorm1d reduces over axes 0 and 2, i.e. over A. weight/bias are set from scale and
    offset. PyTorch's conventions (declare ``bn_momentum = "torch"``, ``bn_running_variance =
    "unbiased"``): ``running = (1 - momentum) running + momentum batch``, with the unbiased
    batch variance (``torch/nn/modules/batchnorm.py``; ``torch.batch_norm`` updates
    ``running_var`` with ``var * n / (n - 1)``). ``training`` False/None: eval mode, the
    running statistics."""

    def __init__(self, *, axes, momentum, epsilon, scale, offset, dtype):
        self.axes, self.momentum, self.epsilon = tuple(axes), float(momentum), float(epsilon)
        self.scale, self.offset, self.dtype = scale, offset, np.dtype(dtype)
        self.module = None

    def _layout(self, x):
        (k,) = [a for a in range(x.ndim) if a not in self.axes]
        moved = np.moveaxis(x, k, 1)
        # a fresh C-ordered, aligned, writeable copy whatever x's layout: torch.from_numpy refuses
        # negative strides and warns on read-only memory
        return k, moved, np.array(moved, order="C", copy=True).reshape(moved.shape[0], moved.shape[1], -1)

    def __call__(self, x, training):
        import torch

        x = np.asarray(x)
        k, moved, a = self._layout(x)
        if self.module is None:
            c = x.shape[k]
            self.module = torch.nn.BatchNorm1d(c, eps=self.epsilon, momentum=self.momentum, dtype=getattr(torch, self.dtype.name))
            shape = [1] * x.ndim
            shape[k] = c
            with torch.no_grad():
                for param, v in ((self.module.weight, self.scale), (self.module.bias, self.offset)):
                    param.copy_(torch.from_numpy(np.broadcast_to(np.asarray(v, dtype=self.dtype), shape).reshape(-1).copy()))
        self.module.train(bool(training))
        with torch.no_grad():
            y = self.module(torch.from_numpy(a)).numpy()
        return np.moveaxis(y.reshape(moved.shape), 1, k)

    @property
    def moving_mean(self):
        return self.module.running_mean

    @property
    def moving_variance(self):
        return self.module.running_var
