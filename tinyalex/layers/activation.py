"""Rectified linear units, f(x) = max(0, x) (section 3.1).

The paper's first reason for its speed: a ReLU does not saturate, so its gradient is 1
wherever the unit is active, and deep nets with ReLUs train several times faster than
with tanh units (figure 1).
"""

from __future__ import annotations

from tinyalex.backend import get_array_module
from tinyalex.layers._checks import check_array, check_same_shape


def relu_forward(x):
    """out = max(0, x) elementwise. x: any shape. Returns (out, cache) with cache = out."""
    check_array("relu_forward", "x", x, tuple(range(1, 9)))
    out = get_array_module(x).maximum(x, 0)
    return out, out


def relu_backward(dout, cache):
    """dx = dout where the unit was active (out > 0), else 0. Shapes as in the forward pass."""
    out = cache
    check_same_shape("relu_backward", "dout", dout, out.shape)
    return dout * (out > 0)
