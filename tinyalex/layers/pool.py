"""Overlapping max-pooling (section 3.4): window z = 3, stride s = 2 in AlexNet.

No padding and floor mode: OH = (H - size) // stride + 1. With stride < size neighbouring
windows share pixels ("overlapping"), which the paper found reduces overfitting slightly.
"""

from __future__ import annotations

from tinyalex.backend import get_array_module, kernel_ops
from tinyalex.layers._checks import check_array, check_positive_int, check_same_shape


def pool_output_size(size: int, window: int, stride: int) -> int:
    """floor((size - window) / stride) + 1: windows that fit entirely, no padding."""
    return (size - window) // stride + 1


def _window_slice(offset: int, stride: int, count: int) -> slice:
    """The input rows (or columns) at window offset `offset` of `count` consecutive windows."""
    return slice(offset, offset + stride * count, stride)


def maxpool_forward(x, size: int = 3, stride: int = 2):
    """Max over each size x size window, windows `stride` apart.

    Inputs: x (N, C, H, W).
    Returns: out (N, C, OH, OW); cache = (x_shape, argmax, size, stride) with
        argmax int32 (N, C, OH, OW): the position i * size + j of the maximum inside its
        window; on ties the first in row-major order.
    Loops over the size * size window offsets only: each step compares one strided slab
    (N, C, OH, OW) with the running maximum.
    """
    layer = "maxpool_forward"
    check_array(layer, "x", x, 4)
    check_positive_int(layer, "size", size)
    check_positive_int(layer, "stride", stride)
    N, C, H, W = x.shape
    if size > H or size > W:
        raise ValueError(f"{layer}: window {size}x{size} is larger than the input {H}x{W} "
                         f"(x {tuple(x.shape)}); use a smaller window or a larger input")
    ops = kernel_ops(x)
    if ops:
        out, argmax = ops.maxpool_forward(x, size, stride)
        return out, (x.shape, argmax, size, stride)

    xp = get_array_module(x)
    OH, OW = pool_output_size(H, size, stride), pool_output_size(W, size, stride)
    out = x[:, :, _window_slice(0, stride, OH), _window_slice(0, stride, OW)].copy()
    argmax = xp.zeros((N, C, OH, OW), dtype=xp.int32)
    for i in range(size):
        for j in range(size):
            if i == j == 0:
                continue
            candidate = x[:, :, _window_slice(i, stride, OH), _window_slice(j, stride, OW)]
            better = candidate > out  # strictly greater: the first maximum wins ties
            xp.copyto(out, candidate, where=better)
            argmax[better] = i * size + j
    return out, (x.shape, argmax, size, stride)


def maxpool_backward(dout, cache):
    """Route each output gradient to the argmax of its window, adding where windows overlap.

    Inputs: dout (N, C, OH, OW); cache from maxpool_forward. Returns dx (N, C, H, W).
    """
    x_shape, argmax, size, stride = cache
    check_same_shape("maxpool_backward", "dout", dout, argmax.shape)
    ops = kernel_ops(dout)
    if ops:
        return ops.maxpool_backward(dout, argmax, x_shape, size, stride)
    xp = get_array_module(dout)
    OH, OW = argmax.shape[2:]
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    for i in range(size):
        for j in range(size):
            rows, cols = _window_slice(i, stride, OH), _window_slice(j, stride, OW)
            dx[:, :, rows, cols] += dout * (argmax == i * size + j)
    return dx
