"""Overlapping max-pooling (section 3.4): window z = 3, stride s = 2 in AlexNet.

Each output is the maximum of a size x size window; windows start ``stride`` pixels apart.
No padding and floor mode: OH = (H - size) // stride + 1. With stride < size neighbouring
windows share pixels ("overlapping"), which the paper found reduces overfitting slightly
(top-1 error 0.4% lower than non-overlapping 2/2 pooling).

The gradient of a maximum goes to the element that was the maximum, and nowhere else. A
pixel that is the maximum of several overlapping windows receives the sum of their gradients.
"""

from __future__ import annotations

from tinyalex.backend import get_array_module
from tinyalex.layers._checks import check_pool_args, check_same_shape


def pool_output_size(size: int, window: int, stride: int) -> int:
    """floor((size - window) / stride) + 1: windows that fit entirely, no padding."""
    return (size - window) // stride + 1


def _window_element(x, i: int, j: int, stride: int, OH: int, OW: int):
    """Element (i, j) of every window, as one strided view (N, C, OH, OW) of x."""
    return x[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride]


def maxpool_forward(x, size: int = 3, stride: int = 2):
    """Max over each size x size window, windows `stride` apart.

    Inputs: x (N, C, H, W).
    Returns: out (N, C, OH, OW); cache = (x_shape, argmax, size, stride) with
        argmax int32 (N, C, OH, OW): the position i * size + j of the maximum inside its
        window (row i, column j); on ties the first in row-major order.
    """
    check_pool_args("maxpool_forward", x, size, stride)
    xp = get_array_module(x)
    OH, OW = (pool_output_size(d, size, stride) for d in x.shape[2:])
    # (size*size, N, C, OH, OW): element k = i * size + j of every window
    windows = xp.stack([_window_element(x, i, j, stride, OH, OW)
                        for i in range(size) for j in range(size)])
    argmax = windows.argmax(axis=0).astype(xp.int32)  # argmax picks the first maximum
    out = windows.max(axis=0)
    return out, (x.shape, argmax, size, stride)


def maxpool_backward(dout, cache):
    """Route each output gradient to the argmax of its window, adding where windows overlap.

    Inputs: dout (N, C, OH, OW); cache from maxpool_forward. Returns dx (N, C, H, W).
    """
    x_shape, argmax, size, stride = cache
    check_same_shape("maxpool_backward", "dout", dout, argmax.shape)
    xp = get_array_module(dout)
    OH, OW = argmax.shape[2:]
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    for i in range(size):
        for j in range(size):
            _window_element(dx, i, j, stride, OH, OW)[...] += dout * (argmax == i * size + j)
    return dx
