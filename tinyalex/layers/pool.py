"""Overlapping max-pooling (section 3.4): window z = 3, stride s = 2 in AlexNet.

No padding and floor mode: OH = (H - size) // stride + 1. With stride < size neighbouring
windows share pixels ("overlapping"), which the paper found reduces overfitting slightly.
"""

from __future__ import annotations

from tinyalex import workspace
from tinyalex.backend import get_array_module, kernel_ops
from tinyalex.layers._checks import check_array, check_positive_int, check_same_shape
from tinyalex.parallel import for_each_chunk


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
    out = workspace.empty((N, C, OH, OW), x.dtype, xp)  # recycled memory, see workspace.py
    argmax = workspace.empty((N, C, OH, OW), xp.int32, xp)

    def pool(images):  # the images in slice `images`, written into out and argmax
        xs, best, where = x[images], out[images], argmax[images]

        def window_offset(k):  # the (N, C, OH, OW) slab of every window's element k
            i, j = divmod(k, size)
            return xs[:, :, _window_slice(i, stride, OH), _window_slice(j, stride, OW)]

        # First the maxima, a plain running maximum over the size * size offsets; then
        # their positions, scanning the offsets backwards so that on ties the earliest
        # offset is written last and wins. (Tracking the position during the first pass,
        # with masked copies at every offset, was 2-3x slower.)
        best[...] = window_offset(0)
        for k in range(1, size * size):
            xp.maximum(best, window_offset(k), out=best)
        where[...] = 0  # (only NaN windows match no offset below)
        for k in reversed(range(size * size)):
            xp.copyto(where, k, where=window_offset(k) == best)

    for_each_chunk(pool, x)  # a few images at a time, on every core (see parallel.py)
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
    dx = workspace.zeros(x_shape, dout.dtype, xp)

    def route(images):  # dx of the images in slice `images`
        g, where, dxs = dout[images], argmax[images], dx[images]
        for i in range(size):
            for j in range(size):
                rows, cols = _window_slice(i, stride, OH), _window_slice(j, stride, OW)
                dxs[:, :, rows, cols] += g * (where == i * size + j)

    for_each_chunk(route, dout)
    return dx
