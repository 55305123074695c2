"""Overlapping max-pooling for speed; equal to ``tinyalex.layers.pool``.

The textbook stacks the size * size window elements into one array and takes argmax over
it. Here, with no stacked copy: first the maxima, a running maximum over the window
offsets; then their positions, scanning the offsets backwards so that on ties the earliest
offset is written last and wins (the same first-maximum rule). Tracking the position during
the first pass, with masked copies at every offset, was 2-3x slower. Both passes and the
backward run on a few images at a time on every core (``parallel.py``).
"""

from __future__ import annotations

import numpy as np

from tinyalex.fast import workspace
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
    argmax = workspace.empty((N, C, OH, OW), np.int32)

    def pool(images):  # the images in slice `images`, written into out and argmax
        xs, best, where = x[images], out[images], argmax[images]
        offsets = [divmod(k, size) for k in range(size * size)]  # k = i * size + j
        best[...] = _window_element(xs, 0, 0, stride, OH, OW)
        for i, j in offsets[1:]:
            np.maximum(best, _window_element(xs, i, j, stride, OH, OW), out=best)
        where[...] = 0  # (only NaN windows match no offset below)
        for k in reversed(range(size * size)):
            i, j = offsets[k]
            np.copyto(where, k, where=_window_element(xs, i, j, stride, OH, OW) == best)

    for_each_chunk(pool, x)
    return out, (x.shape, argmax, size, stride)


def maxpool_backward(dout, cache):
    """Equals ``tinyalex.layers.maxpool_backward``."""
    x_shape, argmax, size, stride = cache
    check_same_shape("maxpool_backward", "dout", dout, argmax.shape)
    OH, OW = argmax.shape[2:]
    dx = workspace.zeros(x_shape, dout.dtype)

    def route(images):  # dx of the images in slice `images`
        g, where, dxs = dout[images], argmax[images], dx[images]
        for i in range(size):
            for j in range(size):
                _window_element(dxs, i, j, stride, OH, OW)[...] += g * (where == i * size + j)

    for_each_chunk(route, dout)
    return dx
