"""Deliberately wrong gradients (mutants), and one correct hand-written gradient, to test
the gradient properties (``properties/test_gradients.py``).

Every function is a gradient subject, ``grads(x, dy, *, axes, scale, offset, epsilon) ->
(dx, dscale, doffset)``. ``GRADIENT_MUTANTS`` maps a name to ``(function, laws)``: the
``GRADIENT_LAWS`` aimed at it, each of which must catch it. ``GRADIENT_CORRECT`` must pass
every law. ``tests/test_gradient_mutants.py`` checks both.

All but the first share one skeleton, ``_custom_bn``: a ``tf.custom_gradient`` forward
``y = x_hat gamma + beta`` whose backward pass is three pluggable rules; a mutant is one
wrong rule. The correct rules are the module docstring formulas of ``gradients``::

    dx = gamma inv (dy - mean_A dy - x_hat mean_A(dy x_hat)),  dgamma = R_gamma(dy x_hat),
    dbeta = R_beta(dy)
"""
from __future__ import annotations

from bn_reference.mathematics.gradients import tape_grads

__all__ = ["GRADIENT_MUTANTS", "GRADIENT_CORRECT"]


def _tf():
    from bn_reference.subjects._tf import tf

    return tf


def _reduce_to(a, shape):
    """``gradients.reduce_to`` in TensorFlow: sum over the axes ``shape`` is broadcast along."""
    tf = _tf()
    shape = tuple(int(s) for s in shape)
    full = (1,) * (len(a.shape) - len(shape)) + shape
    axes = [i for i, s in enumerate(full) if s == 1 and a.shape[i] != 1]
    return tf.reshape(tf.reduce_sum(a, axis=axes, keepdims=True) if axes else a, shape)


# Backward rules: (dy, x_hat, inv, gamma, axes) -> dx; (dy x_hat, gamma's shape, N) -> dgamma;
# (dy, beta's shape, N) -> dbeta.


def _dx_right(dy, x_hat, inv, g, axes):
    tf = _tf()
    m1 = tf.reduce_mean(dy, axes, keepdims=True)
    m2 = tf.reduce_mean(dy * x_hat, axes, keepdims=True)
    return g * inv * (dy - m1 - x_hat * m2)


def _dx_without_variance_term(dy, x_hat, inv, g, axes):
    """Forgets d var / d x: dx = gamma inv (dy - mean_A dy). Still sums to zero over A."""
    return g * inv * (dy - _tf().reduce_mean(dy, axes, keepdims=True))


def _dgamma_right(dy_x_hat, shape, n):
    return _reduce_to(dy_x_hat, shape)


def _dgamma_over_all_axes(dy_x_hat, shape, n):
    """Sums dy x_hat over every axis (as if gamma were one number) and broadcasts it to
    gamma's shape: right for a scalar gamma, wrong per feature."""
    tf = _tf()
    return tf.broadcast_to(tf.reduce_sum(dy_x_hat), tuple(int(s) for s in shape))


def _dbeta_right(dy, shape, n):
    return _reduce_to(dy, shape)


def _dbeta_mean(dy, shape, n):
    """mean_A instead of sum_A: off by the factor N (right only when N = 1)."""
    return _reduce_to(dy, shape) / n


def _custom_bn(dx_rule=_dx_right, dgamma_rule=_dgamma_right, dbeta_rule=_dbeta_right, doc=""):
    def grads(x, dy, *, axes, scale, offset, epsilon):
        tf = _tf()
        axes_l = list(axes)
        n = 1
        for a in axes:
            n *= x.shape[a]

        @tf.custom_gradient
        def bn(t, g, b):
            mean, var = tf.nn.moments(t, axes_l, keepdims=True)
            inv = tf.math.rsqrt(var + epsilon)
            x_hat = (t - mean) * inv

            def backward(up):
                return (
                    dx_rule(up, x_hat, inv, g, axes_l),
                    dgamma_rule(up * x_hat, g.shape, n),
                    dbeta_rule(up, b.shape, n),
                )

            return x_hat * g + b, backward

        return tuple(tape_grads(bn, x, dy, scale, offset))

    grads.__doc__ = doc
    return grads


def stop_gradient_moments(x, dy, *, axes, scale, offset, epsilon):
    """Moments under ``tf.stop_gradient``: dx = gamma inv dy, the mean and variance terms lost."""
    tf = _tf()

    def forward(t, g, b):
        mean, var = tf.nn.moments(t, list(axes), keepdims=True)
        return tf.nn.batch_normalization(t, tf.stop_gradient(mean), tf.stop_gradient(var), b, g, epsilon)

    return tuple(tape_grads(forward, x, dy, scale, offset))


custom_bn_right = _custom_bn(doc="Hand-written tf.custom_gradient with the right rules (must pass).")
no_variance_term = _custom_bn(dx_rule=_dx_without_variance_term, doc=_dx_without_variance_term.__doc__)
dgamma_over_all_axes = _custom_bn(dgamma_rule=_dgamma_over_all_axes, doc=_dgamma_over_all_axes.__doc__)
dbeta_mean = _custom_bn(dbeta_rule=_dbeta_mean, doc=_dbeta_mean.__doc__)

GRADIENT_MUTANTS = {
    "stop_gradient_moments": (stop_gradient_moments, ("dx_agreement", "dx_sums_to_zero")),
    "no_variance_term": (no_variance_term, ("dx_agreement",)),
    "dgamma_over_all_axes": (dgamma_over_all_axes, ("dgamma",)),
    "dbeta_mean": (dbeta_mean, ("dbeta",)),
}
GRADIENT_CORRECT = {"custom_bn_right": custom_bn_right}
