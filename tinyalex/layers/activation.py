"""Rectified linear units, f(x) = max(0, x), and the tanh units they replaced (section 3.1).

The paper's first reason for its speed: a ReLU does not saturate, so its gradient is 1
wherever the unit is active, and deep nets with ReLUs train several times faster than
with tanh units (figure 1). tanh is here for that comparison: its gradient, 1 - tanh(x)^2,
falls towards 0 as |x| grows (the unit "saturates"), which slows gradient descent.
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


def tanh_forward(x):
    """out = tanh(x) elementwise, in (-1, 1). x: any shape. Returns (out, cache = out)."""
    check_array("tanh_forward", "x", x, tuple(range(1, 9)))
    out = get_array_module(x).tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """dx = dout * (1 - out^2): d tanh(x) / dx = 1 - tanh(x)^2, read from the cached output."""
    out = cache
    check_same_shape("tanh_backward", "dout", dout, out.shape)
    return dout * (1 - out * out)
