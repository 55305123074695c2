"""Overlapping max-pooling for speed; equal to ``tinyalex.layers.pool``.

The textbook stacks the size * size window elements into one array and takes argmax over
it. Here, with no stacked copy: first the maxima, a running maximum over the window
offsets; then their positions, scanning the offsets backwards so that on ties the earliest
offset is written last and wins (the same first-maximum rule). Tracking the position during
the first pass, with masked copies at every offset, was 2-3x slower. Both passes and the
backward run on a few images at a time on every core (``parallel.py``).

With the compiled kernels (``compiled.py``) both directions are C loops instead: the forward
separably (the maximum along each row segment, then down the columns of those, each one long
compare-and-select sweep over a plane that the compiler vectorises), the position stored in
one byte (``uint8``: a 3 x 3 window has 9 positions) instead of four. Measured on the paper's
pool1, batch 32, one thread: forward 92 ms (NumPy) -> 13 ms, backward 53 -> 5 ms.
"""

from __future__ import annotations

import numpy as np

from tinyalex.fast import compiled, workspace
from tinyalex.fast.parallel import for_each_chunk
from tinyalex.layers._checks import check_pool_args, check_same_shape
from tinyalex.layers.pool import pool_output_size


def _window_element(x, i: int, j: int, stride: int, OH: int, OW: int):
    """Element (i, j) of every window, as one strided view (n, C, OH, OW) of x."""
    return x[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride]


def maxpool_forward(x, size: int = 3, stride: int = 2):
    """Equals ``tinyalex.layers.maxpool_forward`` (same out, same cache)."""
    check_pool_args("maxpool_forward", x, size, stride)
    N, C, H, W = x.shape
    OH, OW = pool_output_size(H, size, stride), pool_output_size(W, size, stride)
    out = workspace.empty((N, C, OH, OW), x.dtype)
    # the position of the maximum in its window, 0 .. size*size - 1: one byte when it fits
    argmax = workspace.empty((N, C, OH, OW), np.uint8 if size * size <= 256 else np.int32)
    kernels = compiled.for_arrays(x) if argmax.dtype == np.uint8 else None
    if kernels is not None:
        def pool_compiled(images):
            first, count = compiled.span(images, N)
            kernels.maxpool_forward(compiled.address(x, first), compiled.address(out, first),
                                    compiled.address(argmax, first), count * C, H, W, OH, OW,
                                    size, stride)

        for_each_chunk(pool_compiled, x)
        return out, (x.shape, argmax, size, stride)

    def pool(images):  # the images in slice `images`, written into out and argmax
        xs, best, where = x[images], out[images], argmax[images]
        offsets = [divmod(k, size) for k in range(size * size)]  # k = i * size + j
        best[...] = _window_element(xs, 0, 0, stride, OH, OW)
        for i, j in offsets[1:]:
            np.maximum(best, _window_element(xs, i, j, stride, OH, OW), out=best)
        where[...] = 0
        nan_windows = bool(np.isnan(best).any())  # a NaN's window: its first NaN, as argmax
        for k in reversed(range(size * size)):
            i, j = offsets[k]
            element = _window_element(xs, i, j, stride, OH, OW)
            found = element == best
            if nan_windows:
                found |= np.isnan(element)
            np.copyto(where, k, where=found)

    for_each_chunk(pool, x)
    return out, (x.shape, argmax, size, stride)


def maxpool_backward(dout, cache):
    """Equals ``tinyalex.layers.maxpool_backward``."""
    x_shape, argmax, size, stride = cache
    check_same_shape("maxpool_backward", "dout", dout, argmax.shape)
    N, C, H, W = x_shape
    OH, OW = argmax.shape[2:]
    kernels = compiled.for_arrays(dout) if argmax.dtype == np.uint8 else None
    if kernels is not None:
        dx = workspace.empty(x_shape, dout.dtype)  # the kernel zeroes each plane first

        def route_compiled(images):
            first, count = compiled.span(images, N)
            kernels.maxpool_backward(compiled.address(dout, first),
                                     compiled.address(argmax, first),
                                     compiled.address(dx, first), count * C, H, W, OH, OW,
                                     size, stride)

        for_each_chunk(route_compiled, dout)
        return dx
    dx = workspace.zeros(x_shape, dout.dtype)

    def route(images):  # dx of the images in slice `images`
        g, where, dxs = dout[images], argmax[images], dx[images]
        for i in range(size):
            for j in range(size):
                _window_element(dxs, i, j, stride, OH, OW)[...] += g * (where == i * size + j)

    for_each_chunk(route, dout)
    return dx
