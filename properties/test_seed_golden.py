"""Golden tests: the seed notebook's printed outputs (TF 2.1.0), checked on TF 2.21.

Provenance: ``../shared/seed-notebook.txt`` (beside this repository). Each ``IN<n>`` constant is the printed
output of cell ``In [n]``, copied literally (layout only: blank lines dropped). TF prints
float32 in shortest-repr form, so ``np.float32(text)`` is exactly the value TF 2.1
computed. Every test's docstring names the cells it uses; every failure message names
the cell of the element that failed.

Every comparison goes through ``bn_reference.mathematics.checks.assert_within`` with a bound from
the error model (``bn_reference.mathematics.tolerance``):

* reproduction: today's result (TF 2.21) and the printed one (TF 2.1) are each within
  ``B`` of the float64 truth, so ``|ours - printed| <= 2 B``;
* validation: the printed value is within ``B`` of the float64 reference, so TF 2.1's
  own numbers test the error model.

``B`` is ``tolerance.bound`` for outputs and ``tolerance.moment_error`` (float32 plus the
float64 reference's own) for moments.

The notebook's "Dismantling" cells check the layer against a hand formula that puts
epsilon OUTSIDE the square root, ``(x - mu) / (sqrt(var) + 0.001) * scale + offset``,
and call the match confirmed because ``tf.round(x - xhat)`` is zero. The two formulas
differ by 7 to 230 times the float32 rounding bound on these inputs (except at sigma =
0.5, where sqrt(sigma^2 + eps) ~ sigma + eps): the ``test_hand_formula_*`` tests show the
printed hand values are that formula (within its own rounding bound,
``eps_outside_bound``), not batch norm.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest

from bn_reference import batch_norm, bound, moments
from bn_reference.subjects._framework import install_hint

pytest.importorskip("tensorflow", reason=install_hint("tensorflow", "tensorflow"))  # the laws of the built-in TF layers

from bn_reference.subjects._tf import tf
from bn_reference.mathematics.checks import assert_within
from bn_reference.subjects.seed_notebook import SeedBatchNorm
from bn_reference.mathematics.tolerance import finfo, moment_error, unit_roundoff

SCALE, OFFSET, EPSILON = 2, 1, 0.001  # In [6], In [16]; the seed layer's hard-coded variance_epsilon


def f32(v) -> np.ndarray:
    """A printed float32 array: the shortest-repr text is the exact value."""
    return np.array(v, dtype=np.float32)


def full(shape, value) -> np.ndarray:
    """A printed float32 array whose every element is ``value``."""
    return np.full(shape, value, dtype=np.float32)


# ---------------------------------------------------------------------------------------
# Inputs
A = np.arange(1, 7, dtype=np.float32).reshape(2, 3)  # In [4]: [[1, 2, 3], [4, 5, 6]]
X4 = np.arange(24, dtype=np.float32).reshape(2, 2, 3, 2)  # In [25]: [batch, height, width, channels]

# ---------------------------------------------------------------------------------------
# Printed tensors: the layer (custom_bn(scale=2, offset=1, axes) with training=True, or
# None in In [7]), the hand formula (epsilon outside the sqrt; In [18] and In [19] print
# the same) and the dismantled moments In [46], [47], [56].
IN7 = f32(  # In [7]
    [[1., 2., 3.],
     [4., 5., 6.]]
)

IN8 = f32(  # In [8]
    [[-0.9995558, -0.9995556, -0.9995558],
     [ 2.9995556,  2.999556 ,  2.9995556]]
)

IN10 = f32(  # In [10]
    [[-1.4476547,  1.       ,  3.4476547],
     [-1.4476547,  1.       ,  3.4476547]]
)

IN18 = f32(  # In [18]
    [[-0.9986675, -0.9986675, -0.9986675],
     [ 2.9986675,  2.9986675,  2.9986675]]
)

IN24 = f32(  # In [24]
    [[-1.4464934,  1.       ,  3.4464934],
     [-1.4464934,  1.       ,  3.4464934]]
)

IN26 = f32(  # In [26]
    [[[[-0.9999721 , -0.9999721 ],
       [-0.99997216, -0.9999722 ],
       [-0.9999722 , -0.9999722 ]],
      [[-0.9999721 , -0.9999721 ],
       [-0.9999721 , -0.9999721 ],
       [-0.9999721 , -0.9999721 ]]],
     [[[ 2.999972  ,  2.999972  ],
       [ 2.999972  ,  2.999972  ],
       [ 2.999972  ,  2.999972  ]],
      [[ 2.9999723 ,  2.9999723 ],
       [ 2.9999723 ,  2.9999723 ],
       [ 2.9999723 ,  2.9999723 ]]]]
)

IN28 = f32(  # In [28]
    [[[[-0.9996669, -0.9996669],
       [-0.9996669, -0.9996669],
       [-0.9996669, -0.9996669]],
      [[-0.9996669, -0.9996669],
       [-0.9996667, -0.9996667],
       [-0.9996667, -0.9996667]]],
     [[[ 2.999667 ,  2.999667 ],
       [ 2.999667 ,  2.999667 ],
       [ 2.999667 ,  2.999667 ]],
      [[ 2.999667 ,  2.999667 ],
       [ 2.9996667,  2.9996667],
       [ 2.9996667,  2.9996667]]]]
)

IN30 = f32(  # In [30]
    [[[[-0.9998889 , -0.99988884],
       [-0.9998888 , -0.9998889 ],
       [-0.99988866, -0.9998889 ]],
      [[ 2.999889  ,  2.9998887 ],
       [ 2.999889  ,  2.999889  ],
       [ 2.999889  ,  2.999889  ]]],
     [[[-0.9998884 , -0.9998884 ],
       [-0.9998894 , -0.9998894 ],
       [-0.9998884 , -0.9998884 ]],
      [[ 2.9998894 ,  2.9998884 ],
       [ 2.9998884 ,  2.9998884 ],
       [ 2.9998894 ,  2.9998894 ]]]]
)

IN32 = f32(  # In [32]
    [[[[-0.99933374, -0.99933374],
       [-0.99933374, -0.99933374],
       [-0.99933374, -0.99933374]],
      [[ 2.9993339 ,  2.9993339 ],
       [ 2.9993339 ,  2.9993339 ],
       [ 2.9993339 ,  2.9993339 ]]],
     [[[-0.99933374, -0.99933374],
       [-0.9993336 , -0.9993336 ],
       [-0.9993336 , -0.9993336 ]],
      [[ 2.9993339 ,  2.9993339 ],
       [ 2.9993336 ,  2.9993336 ],
       [ 2.9993336 ,  2.9993336 ]]]]
)

IN34 = f32(  # In [34]
    [[[[-1.4490306, -1.4490305],
       [ 1.       ,  1.       ],
       [ 3.4490306,  3.4490309]],
      [[-1.4490309, -1.4490299],
       [ 1.       ,  1.       ],
       [ 3.4490309,  3.4490309]]],
     [[[-1.4490318, -1.4490299],
       [ 1.       ,  1.       ],
       [ 3.44903  ,  3.4490318]],
      [[-1.4490318, -1.4490299],
       [ 1.       ,  1.       ],
       [ 3.44903  ,  3.4490318]]]]
)

IN36 = f32(  # In [36]
    [[[[-1.4479907, -1.4479907],
       [ 1.       ,  1.       ],
       [ 3.4479907,  3.4479907]],
      [[-1.4479907, -1.4479907],
       [ 1.       ,  1.       ],
       [ 3.4479907,  3.4479907]]],
     [[[-1.4479907, -1.4479907],
       [ 1.       ,  1.       ],
       [ 3.4479907,  3.4479907]],
      [[-1.4479907, -1.4479907],
       [ 1.       ,  1.       ],
       [ 3.4479907,  3.4479907]]]]
)

IN38 = f32(  # In [38]
    [[[[-0.99601173,  2.9960117 ],
       [-0.99601173,  2.9960117 ],
       [-0.99601173,  2.9960117 ]],
      [[-0.99601173,  2.9960117 ],
       [-0.9960098 ,  2.9960136 ],
       [-0.9960098 ,  2.9960136 ]]],
     [[[-0.9960098 ,  2.9960136 ],
       [-0.9960098 ,  2.9960136 ],
       [-0.99601364,  2.9960098 ]],
      [[-0.9960098 ,  2.9960098 ],
       [-0.9960098 ,  2.9960098 ],
       [-0.9960098 ,  2.9960175 ]]]]
)

IN40 = f32(  # In [40]
    [[[[-0.99600804,  2.996008  ],
       [-0.99600804,  2.996008  ],
       [-0.99600804,  2.996008  ]],
      [[-0.99600804,  2.996008  ],
       [-0.99600804,  2.996008  ],
       [-0.99600804,  2.996008  ]]],
     [[[-0.99600804,  2.996008  ],
       [-0.99600804,  2.996008  ],
       [-0.99600804,  2.996008  ]],
      [[-0.99600804,  2.996008  ],
       [-0.99600804,  2.996008  ],
       [-0.99600804,  2.996008  ]]]]
)

IN42 = f32(  # In [42]
    [[[[-1.5730367 , -1.5730367 ],
       [-0.9297775 , -0.92977744],
       [-0.28651834, -0.28651834]],
      [[-1.5730368 , -1.5730367 ],
       [-0.9297776 , -0.9297776 ],
       [-0.28651857, -0.28651834]]],
     [[[ 2.2865183 ,  2.2865186 ],
       [ 2.9297776 ,  2.9297776 ],
       [ 3.5730367 ,  3.5730367 ]],
      [[ 2.286518  ,  2.286518  ],
       [ 2.9297771 ,  2.9297776 ],
       [ 3.5730367 ,  3.5730367 ]]]]
)

IN46 = f32(  # In [46]
    [[[[38.666668, 38.666668]],
      [[38.666668, 38.666668]]]]
)

IN47 = f32(  # In [47]
    [[[[ 8.,  9.]],
      [[14., 15.]]]]
)

IN49 = f32(  # In [49]
    [[[[-1.5726564 , -1.5726564 ],
       [-0.92949235, -0.92949235],
       [-0.2863282 , -0.2863282 ]],
      [[-1.5726564 , -1.5726564 ],
       [-0.92949235, -0.92949235],
       [-0.2863282 , -0.2863282 ]]],
     [[[ 2.2863283 ,  2.2863283 ],
       [ 2.9294925 ,  2.9294925 ],
       [ 3.5726564 ,  3.5726564 ]],
      [[ 2.2863283 ,  2.2863283 ],
       [ 2.9294925 ,  2.9294925 ],
       [ 3.5726564 ,  3.5726564 ]]]]
)

IN51 = f32(  # In [51]
    [[[[-2.1864765 , -2.1864765 ],
       [-1.6071172 , -1.6071172 ],
       [-1.0277578 , -1.0277579 ]],
      [[-0.44839835, -0.4483986 ],
       [ 0.13096094,  0.13096094],
       [ 0.71032023,  0.71032023]]],
     [[[ 1.2896798 ,  1.2896795 ],
       [ 1.8690388 ,  1.869039  ],
       [ 2.4483984 ,  2.448398  ]],
      [[ 3.027758  ,  3.0277576 ],
       [ 3.607117  ,  3.6071172 ],
       [ 4.1864767 ,  4.186476  ]]]]
)

IN56 = f32(  # In [56]
    [[[[47.666668, 47.666668],
       [47.666668, 47.666668],
       [47.666668, 47.666668]],
      [[47.666668, 47.666668],
       [47.666668, 47.666668],
       [47.666668, 47.666668]]]]
)

IN59 = f32(  # In [59]
    [[[[-2.1860485 , -2.1860485 ],
       [-1.6067669 , -1.6067669 ],
       [-1.0274854 , -1.0274854 ]],
      [[-0.44820392, -0.44820392],
       [ 0.13107765,  0.13107765],
       [ 0.7103592 ,  0.7103592 ]]],
     [[[ 1.2896408 ,  1.2896408 ],
       [ 1.8689224 ,  1.8689224 ],
       [ 2.448204  ,  2.448204  ]],
      [[ 3.0274854 ,  3.0274854 ],
       [ 3.606767  ,  3.606767  ],
       [ 4.1860485 ,  4.1860485 ]]]]
)

# ---------------------------------------------------------------------------------------
# Printed moments (tf.nn.moments; keepdims=True unless noted).
IN12_MEAN, IN12_VAR = f32([2.5, 3.5, 4.5]), f32([2.25, 2.25, 2.25])  # In [12], keepdims=False
IN13_MEAN, IN13_VAR = f32([[2.5, 3.5, 4.5]]), f32([[2.25, 2.25, 2.25]])  # In [13]
IN20_MEAN, IN20_VAR = f32([[2.], [5.]]), f32([[0.6666667], [0.6666667]])  # In [20]
MEAN0 = f32([[[[6., 7.], [8., 9.], [10., 11.]], [[12., 13.], [14., 15.], [16., 17.]]]])  # In [27], [43], [52]
VAR0 = full((1, 2, 3, 2), 36.)  # In [27], [43], [52]
IN31_MEAN = f32([[[[3., 4.], [5., 6.], [7., 8.]]], [[[15., 16.], [17., 18.], [19., 20.]]]])
IN31_VAR = full((2, 1, 3, 2), 9.)
IN35_MEAN = f32([[[[2., 3.]], [[8., 9.]]], [[[14., 15.]], [[20., 21.]]]])
IN35_VAR = full((2, 2, 1, 2), 2.6666667)
IN39_MEAN = f32(
    [[[[0.5], [2.5], [4.5]], [[6.5], [8.5], [10.5]]], [[[12.5], [14.5], [16.5]], [[18.5], [20.5], [22.5]]]]
)
IN39_VAR = full((2, 2, 3, 1), 0.25)
MEAN_MEAN, VARIANCE_MEAN = f32([[[[8., 9.]], [[14., 15.]]]]), full((1, 2, 1, 2), 2.6666667)  # In [44]: moments(MEAN0, [2])
MEAN_VAR, VAR_VAR = full((1, 2, 1, 2), 36.), full((1, 2, 1, 2), 0.)  # In [45]: moments(VAR0, [2])
IN48_MEAN, IN48_VAR = f32([[[[8., 9.]], [[14., 15.]]]]), full((1, 2, 1, 2), 38.666668)  # In [48]: axes [0, 2]
MEAN1, VAR1 = f32([[[[9., 10.], [11., 12.], [13., 14.]]]]), full((1, 1, 3, 2), 9.)  # In [53]: moments(MEAN0, [1])
MEAN2, VAR2 = f32([[[[11., 12.]]]]), f32([[[[2.6666667, 2.6666667]]]])  # In [54]: moments(MEAN1, [2])
IN55 = f32([[[[11., 12.]]]])  # In [55]: mean = mean2
IN57 = f32([47.666668, 47.666668])  # In [57]: tf.reduce_mean(IN56, axis=[0, 1, 2])
IN58_MEAN, IN58_VAR = f32([[[[11., 12.]]]]), f32([[[[47.666668, 47.666668]]]])  # In [58]: axes [0, 1, 2]


# ---------------------------------------------------------------------------------------
# Cases


def _id(name, axes) -> str:
    return f"{name}-axes=[{','.join(map(str, axes))}]"


@dataclass(frozen=True)
class Output:
    """One input and axes: the layer's printed output and the hand formula's."""

    name: str
    x: np.ndarray
    axes: tuple[int, ...]
    layer_cell: str
    layer: np.ndarray
    hand_cell: str
    hand: np.ndarray
    hand_visible: bool = True  # is the hand formula's epsilon placement outside B here?


OUTPUTS = [
    Output("a", A, (0,), "In [8]", IN8, "In [18]", IN18),
    Output("a", A, (1,), "In [10]", IN10, "In [24]", IN24),
    Output("x4", X4, (0,), "In [26]", IN26, "In [28]", IN28),
    Output("x4", X4, (1,), "In [30]", IN30, "In [32]", IN32),
    Output("x4", X4, (2,), "In [34]", IN34, "In [36]", IN36),
    Output("x4", X4, (3,), "In [38]", IN38, "In [40]", IN40, hand_visible=False),  # sigma = 0.5
    Output("x4", X4, (0, 2), "In [42]", IN42, "In [49]", IN49),
    Output("x4", X4, (0, 1, 2), "In [51]", IN51, "In [59]", IN59),
]
OUTPUT_IDS = [_id(o.name, o.axes) for o in OUTPUTS]
HAND_VISIBLE = [o for o in OUTPUTS if o.hand_visible]


@dataclass(frozen=True)
class Moments:
    """One printed ``tf.nn.moments(x, axes, keepdims)`` call."""

    cell: str
    name: str
    x: np.ndarray
    axes: tuple[int, ...]
    mean: np.ndarray
    var: np.ndarray
    keepdims: bool = True


MOMENTS = [
    Moments("In [12]", "a", A, (0,), IN12_MEAN, IN12_VAR, keepdims=False),
    Moments("In [13]", "a", A, (0,), IN13_MEAN, IN13_VAR),
    Moments("In [20]", "a", A, (1,), IN20_MEAN, IN20_VAR),
    Moments("In [27], [43], [52]", "x4", X4, (0,), MEAN0, VAR0),
    Moments("In [31]", "x4", X4, (1,), IN31_MEAN, IN31_VAR),
    Moments("In [35]", "x4", X4, (2,), IN35_MEAN, IN35_VAR),
    Moments("In [39]", "x4", X4, (3,), IN39_MEAN, IN39_VAR),
    Moments("In [48]", "x4", X4, (0, 2), IN48_MEAN, IN48_VAR),
    Moments("In [58]", "x4", X4, (0, 1, 2), IN58_MEAN, IN58_VAR),
    # the dismantling: moments of printed moments
    Moments("In [44]", "mean0", MEAN0, (2,), MEAN_MEAN, VARIANCE_MEAN),
    Moments("In [45]", "var0", VAR0, (2,), MEAN_VAR, VAR_VAR),
    Moments("In [53]", "mean0", MEAN0, (1,), MEAN1, VAR1),
    Moments("In [54]", "mean1", MEAN1, (2,), MEAN2, VAR2),
]
MOMENT_IDS = [_id(m.name, m.axes) + ("" if m.keepdims else "-keepdims=False") for m in MOMENTS]


@dataclass(frozen=True)
class Dismantled:
    """The notebook's law of total variance over ``axes`` of X4: printed parts, their
    printed sum, the printed total (after ``reduce_mean``), the printed mean, and the
    printed direct ``tf.nn.moments(X4, axes)``."""

    cells: str
    axes: tuple[int, ...]
    parts: tuple[np.ndarray, ...]
    printed_sum: np.ndarray
    printed_total: np.ndarray
    printed_mean: np.ndarray
    direct_mean: np.ndarray
    direct_var: np.ndarray


DISMANTLED = [
    # variance = mean_var + variance_mean (In [46]); mean = mean_mean (In [47])
    Dismantled("In [43]-[48]", (0, 2), (MEAN_VAR, VARIANCE_MEAN), IN46, IN46, IN47, IN48_MEAN, IN48_VAR),
    # variance = reduce_mean(var0 + var1 + var2) (In [56], [57]); mean = mean2 (In [55])
    Dismantled("In [52]-[58]", (0, 1, 2), (VAR0, VAR1, VAR2), IN56, IN57, IN55, IN58_MEAN, IN58_VAR),
]


# ---------------------------------------------------------------------------------------
# Bounds and the epsilon-outside formula


def _output_bound(o: Output) -> np.ndarray:
    return bound(o.x, o.axes, SCALE, OFFSET, EPSILON, np.float32)


def _truth(o: Output) -> np.ndarray:
    return batch_norm(o.x, o.axes, SCALE, OFFSET, EPSILON, dtype=np.float64)


def _moment_bounds(x, axes, shape):
    """(E_mu, E_var) for float32 moments plus the float64 reference's own, as ``shape``."""
    e32, e64 = (moment_error(x, tuple(axes), dt) for dt in (np.float32, np.float64))
    return np.reshape(e32.mean + e64.mean, shape), np.reshape(e32.var + e64.var, shape)


def eps_outside_sqrt(x, axes, scale, offset, epsilon) -> np.ndarray:
    """The notebook's hand formula in float64: (x - mu) / (sqrt(var) + eps) * scale + offset."""
    mu, var = moments(x, axes, dtype=np.float64)
    return (x.astype(np.float64) - mu) / (np.sqrt(var) + epsilon) * scale + offset


def _eps_outside_one(x, axes, g, b, eps, dtype) -> np.ndarray:
    u, fi = unit_roundoff(dtype), finfo(dtype)
    me = moment_error(x, tuple(axes), dtype)  # mean, var off by at most E_mu, E_var
    s = np.sqrt(me.sigma2)
    t = s + eps
    with np.errstate(divide="ignore"):
        ds = np.minimum(np.sqrt(me.var), np.where(s > 0, me.var / s, np.inf))  # |sqrt(var_hat) - s|
    ds = ds + u * (s + ds)  # sqrt rounded
    dt = ds + u * eps + float(fi.smallest_subnormal) + u * (t + ds + u * eps)  # eps stored, add rounded
    r = dt / t
    e_inv = np.where(r < 1, r / np.maximum(1 - r, 1e-300), np.inf)  # relative error of 1 / t_hat
    d = np.abs(x.astype(np.float64) - me.mu)
    dn = me.mean + u * (d + me.mean)  # x - mu_hat, rounded
    q = d / t
    eq = (dn / t * (1 + e_inv) + q * e_inv) * (1 + u) + u * q  # the quotient, rounded
    y = np.abs((x.astype(np.float64) - me.mu) / t * g + b)
    ey = abs(g) * (eq * (1 + 2 * u) + 2 * u * q)  # scale stored, product rounded
    return (ey + u * abs(b) + u * y) / (1 - u) + float(fi.tiny) * (1 + abs(g) / t)  # offset, final add


def eps_outside_bound(x, axes, scale, offset, epsilon, dtype=np.float32) -> np.ndarray:
    """Per-element bound on |hand formula in ``dtype`` - hand formula in float64|.

    Same bookkeeping as ``tolerance.bound``: the moments are off by at most E_mu, E_var
    (``moment_error``); ``sqrt(var_hat)`` is off by at most min(sqrt(E_var), E_var/sigma);
    then one rounding each for sqrt, storing eps, the add, ``x - mu``, the divide, storing
    scale, the multiply, storing offset and the final add. Plus the float64 evaluation's own.
    """
    args = (x, axes, float(scale), float(offset), float(epsilon))
    return _eps_outside_one(*args, np.dtype(dtype)) + _eps_outside_one(*args, np.dtype(np.float64))


# ---------------------------------------------------------------------------------------
# Tests


def test_training_none_returns_input():
    """seed notebook In [7]: ``custom_bn_layer(a)`` (training left at None) printed ``a``
    unchanged; the modernised layer returns it bit for bit."""
    y = SeedBatchNorm(scale=SCALE, offset=OFFSET, axes=[0], epsilon=EPSILON)(A)
    assert_within(np.asarray(y), IN7, 0.0, law="seed notebook In [7]: training=None returns the input")


@pytest.mark.parametrize("o", OUTPUTS, ids=OUTPUT_IDS)
def test_layer_reproduces_notebook(o):
    """seed notebook In [8], [10], [26], [30], [34], [38], [42], [51]: SeedBatchNorm(scale=2,
    offset=1, axes, epsilon=0.001)(x, training=True) on TF 2.21 is within 2B of the printed
    TF 2.1 output (each within B of the float64 truth)."""
    ours = SeedBatchNorm(scale=SCALE, offset=OFFSET, axes=o.axes, epsilon=EPSILON)(o.x, training=True).numpy()
    assert_within(ours, o.layer, 2 * _output_bound(o), law=f"TF 2.21 layer vs seed notebook {o.layer_cell}", x=o.x)


@pytest.mark.parametrize("o", OUTPUTS, ids=OUTPUT_IDS)
def test_notebook_output_within_error_model(o):
    """seed notebook In [8], [10], [26], [30], [34], [38], [42], [51]: TF 2.1's printed layer
    output is within B of the float64 reference (TF 2.1's numbers validate the bound)."""
    assert_within(o.layer, _truth(o), _output_bound(o), law=f"seed notebook {o.layer_cell} vs float64 reference", x=o.x)


@pytest.mark.parametrize("o", OUTPUTS, ids=OUTPUT_IDS)
def test_hand_formula_puts_epsilon_outside_sqrt(o):
    """seed notebook In [18]/[19], [24], [28], [32], [36], [40], [49], [59] (hand formula) and
    In [29], [33], [37], [41], [50], [60] (``tf.round(x - xhat)`` all zero: "Confirms").

    The printed hand values are (x - mu) / (sqrt(var) + eps) * scale + offset, within that
    formula's own rounding bound; and the notebook's check against the layer rounds their
    difference to zero."""
    assert_within(
        o.hand,
        eps_outside_sqrt(o.x, o.axes, SCALE, OFFSET, EPSILON),
        eps_outside_bound(o.x, o.axes, SCALE, OFFSET, EPSILON),
        law=f"seed notebook {o.hand_cell} vs epsilon-outside-sqrt formula",
        x=o.x,
    )
    assert_within(np.round(o.layer - o.hand), np.zeros(o.x.shape), 0.0, law=f"tf.round({o.layer_cell} - {o.hand_cell}) == 0")


@pytest.mark.parametrize("o", HAND_VISIBLE, ids=[_id(o.name, o.axes) for o in HAND_VISIBLE])
def test_hand_formula_is_not_batch_norm(o):
    """seed notebook In [18]/[19], [24], [28], [32], [36], [49], [59]: the printed hand values
    are outside the error model of batch norm at every element with x != mu (where x = mu
    both give the offset exactly): the difference tf.round(x - xhat) could not see (the
    previous test) is 7 to 230 times the rounding bound."""
    mu, _ = moments(o.x, o.axes, dtype=np.float64)
    n_off = int(np.count_nonzero(np.broadcast_to(o.x != mu, o.x.shape)))
    with pytest.raises(AssertionError, match=f": {n_off} of {o.x.size} elements outside the error model"):
        assert_within(o.hand, _truth(o), _output_bound(o), law=f"seed notebook {o.hand_cell} vs batch norm", x=o.x)


def test_hand_formula_invisible_at_sigma_one_half():
    """seed notebook In [38], [40] (axes [3]: every slice is a pair of consecutive integers,
    sigma = 0.5). Then sqrt(sigma^2 + eps) = sigma + eps - eps^2 / (8 sigma^3) + ...: the two
    formulas coincide to first order, the printed hand values are within 2B of batch norm,
    and even the reproduction test's 2B could not tell the epsilon placement apart here."""
    (o,) = [o for o in OUTPUTS if not o.hand_visible]
    assert_within(o.hand, _truth(o), 2 * _output_bound(o), law=f"seed notebook {o.hand_cell} vs batch norm", x=o.x)


@pytest.mark.parametrize("m", MOMENTS, ids=MOMENT_IDS)
def test_moments_reproduce_notebook(m):
    """seed notebook In [12], [13], [20], [27]/[43]/[52], [31], [35], [39], [48], [58], and the
    dismantling's moments of moments In [44], [45], [53], [54]: tf.nn.moments on TF 2.21 is
    within 2E (E_mu, E_var of ``moment_error``) of the printed mean and variance."""
    mean, var = tf.nn.moments(tf.constant(m.x), list(m.axes), keepdims=m.keepdims)
    e_mu, e_var = _moment_bounds(m.x, m.axes, m.mean.shape)
    assert_within(mean.numpy(), m.mean, 2 * e_mu, law=f"TF 2.21 mean vs seed notebook {m.cell}", x=m.x)
    assert_within(var.numpy(), m.var, 2 * e_var, law=f"TF 2.21 variance vs seed notebook {m.cell}", x=m.x)


@pytest.mark.parametrize("m", MOMENTS, ids=MOMENT_IDS)
def test_notebook_moments_within_error_model(m):
    """seed notebook In [12], [13], [20], [27]/[43]/[52], [31], [35], [39], [44], [45], [48],
    [53], [54], [58]: the printed mean and variance are within E_mu, E_var of the float64
    moments of the same input."""
    mean64, var64 = moments(m.x, m.axes, keepdims=m.keepdims, dtype=np.float64)
    e_mu, e_var = _moment_bounds(m.x, m.axes, m.mean.shape)
    assert_within(m.mean, mean64, e_mu, law=f"seed notebook {m.cell} mean vs float64 reference")
    assert_within(m.var, var64, e_var, law=f"seed notebook {m.cell} variance vs float64 reference")


@pytest.mark.parametrize("d", DISMANTLED, ids=[_id("x4", d.axes) for d in DISMANTLED])
def test_dismantled_moments_recombine(d):
    """seed notebook In [43]-[48] (axes [0, 2]: variance = mean_var + variance_mean = 38.666668)
    and In [52]-[58] (axes [0, 1, 2]: variance = reduce_mean(var0 + var1 + var2) = 47.666668).

    The dismantling is a grouped variance algorithm for the whole axes (law of total
    variance), so E_mu, E_var for moments over those axes bound it: TF 2.21 redoing the sums
    from the printed parts is within 2E of the printed sums; the printed total and mean are
    within E of the float64 moments and within 2E of the printed direct tf.nn.moments."""
    e_mu, e_var = _moment_bounds(X4, d.axes, d.direct_var.shape)
    mean64, var64 = moments(X4, d.axes, dtype=np.float64)
    ours_sum = functools.reduce(tf.add, [tf.constant(p) for p in d.parts])
    ours_total = tf.reduce_mean(ours_sum, axis=list(d.axes), keepdims=True).numpy()
    total = d.printed_total.reshape(d.direct_var.shape)
    assert_within(ours_sum.numpy(), d.printed_sum, 2 * e_var, law=f"TF 2.21 sum of parts vs seed notebook {d.cells}")
    assert_within(ours_total, total, 2 * e_var, law=f"TF 2.21 total variance vs seed notebook {d.cells}")
    for what, dismantled, direct, truth, e in (
        ("mean", d.printed_mean, d.direct_mean, mean64, e_mu),
        ("variance", total, d.direct_var, var64, e_var),
    ):
        assert_within(dismantled, truth, e, law=f"seed notebook {d.cells}: dismantled {what} vs float64 {what}")
        assert_within(dismantled, direct, 2 * e, law=f"seed notebook {d.cells}: dismantled vs direct {what}")
