"""Rectified linear units, f(x) = max(0, x) (section 3.1)."""

from __future__ import annotations

from tinyalex import workspace
from tinyalex.backend import get_array_module
from tinyalex.layers._checks import check_array, check_same_shape
from tinyalex.parallel import for_each_chunk


def relu_forward(x):
    """out = max(0, x) elementwise. x: any shape. Returns (out, cache) with cache = out."""
    check_array("relu_forward", "x", x, tuple(range(1, 9)))
    xp = get_array_module(x)
    out = workspace.empty(x.shape, x.dtype, xp)  # recycled memory, see workspace.py
    for_each_chunk(lambda rows: xp.maximum(x[rows], 0, out=out[rows]), x)  # see parallel.py
    return out, out


def relu_backward(dout, cache):
    """dx = dout where the unit was active (out > 0), else 0. Shapes as in the forward pass."""
    out = cache
    check_same_shape("relu_backward", "dout", dout, out.shape)
    xp = get_array_module(dout)
    dx = workspace.empty(dout.shape, dout.dtype, xp)
    for_each_chunk(lambda rows: xp.multiply(dout[rows], out[rows] > 0, out=dx[rows]), dout)
    return dx
