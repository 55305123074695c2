"""Fully connected layers for speed; equal to ``tinyalex.layers.linear``.

The same products, oriented the way OpenBLAS runs fastest: out = x @ w^T is computed as
(w @ x^T)^T and dx = dout @ w as (w^T @ dout^T)^T, with the big axis (4096 units) first
instead of the small batch -- the same sums, about 3x faster on 2 cores at fc6's shapes
(measured) -- and the results are written into pooled memory (``workspace.py``).

With several threads each product is cut into pieces along the big axis (the units, or the
inputs for dx) and the pieces run on tinyalex's pool with one-thread BLAS
(``parallel.for_each_part``, ``blas.py``): a thread descheduled by a busy machine then
holds up only its current piece.
"""

from __future__ import annotations

import numpy as np

from tinyalex.fast import parallel, workspace
from tinyalex.layers._checks import check_linear_args, check_same_shape

PIECES_PER_THREAD = 4  # pieces of each product per thread


def _in_pieces(fn, count: int) -> None:
    """fn(part) for slices covering range(count): one on one thread, else several per thread
    on the pool, with OpenBLAS at one thread each."""
    threads = parallel.threads()
    parallel.for_each_part(fn, parallel.split(count, 1 if threads == 1
                                              else PIECES_PER_THREAD * threads))


def linear_forward(x, w, b):
    """Equals ``tinyalex.layers.linear_forward`` (same out, same cache)."""
    check_linear_args("linear_forward", x, w, b)
    x2d = x.reshape(x.shape[0], -1)
    out = workspace.empty((x2d.shape[0], w.shape[0]), x.dtype)

    def units(part):  # the transposing copy back to (N, M) adds the bias
        np.add((w[part] @ x2d.T).T, b[part], out=out[:, part])

    _in_pieces(units, w.shape[0])
    return out, (x2d, w, x.shape)


def linear_backward(dout, cache):
    """Equals ``tinyalex.layers.linear_backward``: (dx, dw, db)."""
    x2d, w, x_shape = cache
    check_same_shape("linear_backward", "dout", dout, (x2d.shape[0], w.shape[0]))
    dx = workspace.empty((x2d.shape[0], w.shape[1]), dout.dtype)
    dw = workspace.empty(w.shape, dout.dtype)

    def inputs(part):  # dout @ w, big axis first
        dx[:, part] = (w[:, part].T @ dout.T).T

    def units(part):
        np.matmul(dout[:, part].T, x2d, out=dw[part])

    _in_pieces(inputs, w.shape[1])
    _in_pieces(units, w.shape[0])
    return dx.reshape(x_shape), dw, dout.sum(axis=0)
