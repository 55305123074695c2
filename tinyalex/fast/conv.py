"""Convolution for speed on a CPU; equal to ``tinyalex.layers.conv`` (same layout, same results).

Read ``tinyalex/layers/conv.py`` first: the column layout, the products and the backward pass
are the same. What is different here, and why (measured on a 2-core AVX-512 machine with
OpenBLAS, AlexNet's shapes):

- im2col copies through a *strided view* that enumerates every window without a copy
  (windows[c, i, j, n, oh, ow] = x_pad[n, c, oh*s + i, ow*s + j] by stride arithmetic), a
  few images at a time on every core (``parallel.py``), into memory from a recycling pool
  (``workspace.py``): fresh memory costs a page fault per page on first touch, about as
  long as the products themselves.
- The products write into preallocated slices (``out=``) instead of concatenating.
- The transposes between (F, N, P) and (N, F, P), with the bias added during the copy,
  run chunked on every core too.
- The weight gradient dout_g @ cols_g^T is computed as its transpose cols_g @ dout_g^T:
  the same sums, but OpenBLAS ran that orientation 2-3x faster at AlexNet's shapes (it
  splits a product with the larger output axis first better across the cores).
- ``conv_weight_grads`` skips the input gradient entirely (conv1: the images need none);
  it was the costliest part of conv1's backward.
- With the compiled kernels (``compiled.py``) im2col and col2im are C loops over the
  images of a chunk: im2col never builds the padded copy (each output row is zeros, a
  strided copy, zeros), col2im adds the kh * kw column rows of one (H, W) plane while the
  plane stays in the L1 cache. Where the output rows are as long as the image's (stride 1,
  "same" padding: conv2-conv5) each column row is one shifted copy of the whole plane, not
  a copy per row (mini's 6 x 6 maps, one thread: im2col 2.2 -> 1.2 ms, col2im 2.1 -> 1.7).
- The weight gradient is a sum over pieces of the batch, each piece's share made from its
  own columns and dout and the shares added in a fixed order (the same result on every
  run). Pieces of dw's rows instead re-read the whole dout each: mini's conv1 backward took
  three times as long with two threads as with one.
- With several threads the products are cut into pieces of whole images that run on
  tinyalex's pool with one-thread OpenBLAS (``parallel.for_each_part``); each
  input-gradient piece runs its col2im straight after its product, while its columns are
  still in the cache, and the whole-batch dcols matrix is never made (less memory).
"""

from __future__ import annotations

import functools

import numpy as np

from tinyalex.fast import compiled, parallel, workspace
from tinyalex.fast.parallel import for_each_chunk
from tinyalex.layers._checks import check_conv_args, check_same_shape
from tinyalex.layers.conv import conv_output_size

PIECES_PER_THREAD = 4  # pieces of each product per thread (see parallel.for_each_part)
SMALL_SHARES = 1 << 20  # bytes: the weight gradient's per-piece shares, all together


def _windows(x, kh: int, kw: int, stride: int, pad: int):
    """windows[c, i, j, n, oh, ow] = x_pad[n, c, oh*stride + i, ow*stride + j]: a strided
    *view* (no copy) of every window of the padded images, axes in the column layout's order."""
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
    if pad:
        padded = workspace.zeros((N, C, H + 2 * pad, W + 2 * pad), x.dtype)
        padded[:, :, pad : pad + H, pad : pad + W] = x
        x = padded
    sN, sC, sH, sW = x.strides
    return np.lib.stride_tricks.as_strided(
        x, shape=(C, kh, kw, N, OH, OW), strides=(sC, sH, sW, sN, sH * stride, sW * stride))


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """Equals ``tinyalex.layers.im2col``: x (N, C, H, W) -> cols (C*kh*kw, N*OH*OW)."""
    kernels = compiled.for_arrays(x)
    if kernels is not None:
        N, C, H, W = x.shape
        OH, OW = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
        cols = workspace.empty((C * kh * kw, N * OH * OW), x.dtype)

        def copy_compiled(images):  # the columns of these images: cols[:, first*P:]
            first, count = compiled.span(images, N)
            kernels.im2col(compiled.address(x, first),
                           cols.ctypes.data + first * OH * OW * cols.itemsize, cols.shape[1],
                           count, C, H, W, kh, kw, stride, pad, OH, OW)

        for_each_chunk(copy_compiled, x)
        return cols
    windows = _windows(x, kh, kw, stride, pad)
    cols = workspace.empty(windows.shape, x.dtype)

    def copy_windows(images):  # axis 3 of windows and cols is the image axis
        cols[:, :, :, images] = windows[:, :, :, images]

    for_each_chunk(copy_windows, x)
    return cols.reshape(x.shape[1] * kh * kw, -1)


def _whole_batch(fn, x) -> None:
    fn(slice(None))


def _col2im_into(out, cols, x_shape, kh: int, kw: int, stride: int, pad: int,
                 chunked: bool = True):
    """col2im written into ``out`` (N, C, H, W), which may be a view of a bigger array;
    ``chunked=False``: all in the calling thread (it is itself one of the pool's pieces).

    The sums are kept image axis second, (C, n, H + 2 pad, W + 2 pad), so every add reads and
    writes in cols' memory order; a chunk of images at a time, so a chunk's sums stay in the
    CPU cache across the kh * kw adds; one transposing copy per chunk at the end.
    """
    N, C, H, W = x_shape
    OH, OW = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
    kernels = compiled.for_arrays(cols)
    if kernels is not None and out.strides[1:] == (H * W * out.itemsize, W * out.itemsize,
                                                   out.itemsize):
        # each image's channels are consecutive planes (out may be a group's channels)
        def add_compiled(images):
            first, count = compiled.span(images, N)
            kernels.col2im(cols.ctypes.data + first * OH * OW * cols.itemsize,
                           out.ctypes.data + first * out.strides[0], cols.shape[1],
                           out.strides[0] // out.itemsize, count, C, H, W, kh, kw, stride,
                           pad, OH, OW)

        (for_each_chunk if chunked else _whole_batch)(add_compiled, out)
        return out
    cols6 = cols.reshape(C, kh, kw, N, OH, OW)

    def add_windows(images):  # dx of the images in slice `images`
        count = len(range(N)[images])
        sums = np.zeros((C, count, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                sums[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride] += (
                    cols6[:, i, j, images])
        out[images] = sums[:, :, pad : pad + H, pad : pad + W].transpose(1, 0, 2, 3)

    (for_each_chunk if chunked else _whole_batch)(add_windows, out)
    return out


def col2im(cols, x_shape, kh: int, kw: int, stride: int, pad: int):
    """Equals ``tinyalex.layers.col2im``: cols (C*kh*kw, N*OH*OW) -> dx (N, C, H, W)."""
    return _col2im_into(workspace.empty(x_shape, cols.dtype), cols, x_shape, kh, kw, stride, pad)


def _image_parts(N: int):
    """The batch cut into pieces of whole images for the products: one piece on one thread,
    PIECES_PER_THREAD per thread otherwise (see ``parallel.for_each_part``)."""
    threads = parallel.threads()
    return parallel.split(N, 1 if threads == 1 else PIECES_PER_THREAD * threads)


def conv_forward(x, w, b, stride: int = 1, pad: int = 0, groups: int = 1):
    """Equals ``tinyalex.layers.conv_forward`` (same out, same cache)."""
    check_conv_args("conv_forward", x, w, b, stride, pad, groups)
    N, _, H, W = x.shape
    F, Cg, KH, KW = w.shape
    G, K = groups, Cg * KH * KW
    OH, OW = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    P = OH * OW
    cols = im2col(x, KH, KW, stride, pad)  # (G*K, N*P)
    w_rows = w.reshape(G, F // G, K)
    out_t = workspace.empty((F, N * P), x.dtype)  # the output, kernel axis first
    out = workspace.empty((N, F, P), x.dtype)

    def product(images):  # the products of these images' columns, then their copy to out
        columns = slice(images.start * P, images.stop * P)
        for g in range(G):
            np.matmul(w_rows[g], cols[g * K : (g + 1) * K, columns],
                      out=out_t[g * F // G : (g + 1) * F // G, columns])
        part = out_t[:, columns].reshape(F, -1, P)
        np.add(part.transpose(1, 0, 2), b.reshape(1, F, 1), out=out[images])

    parallel.for_each_part(product, _image_parts(N))
    return out.reshape(N, F, OH, OW), (x.shape, w, cols, stride, pad, groups)


def _conv_grads(dout, cache, need_dx: bool):
    """(dx or None, dw, db) of conv_forward; see the module docstring."""
    x_shape, w, cols, stride, pad, groups = cache
    (N, _, H, W), (F, Cg, KH, KW) = x_shape, w.shape
    G, K = groups, Cg * KH * KW
    OH, OW = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    P = OH * OW
    check_same_shape("conv_backward", "dout", dout, (N, F, OH, OW))
    dout3, dout_t = dout.reshape(N, F, P), workspace.empty((F, N, P), dout.dtype)
    for_each_chunk(lambda images: np.copyto(dout_t[:, images],
                                            dout3[images].transpose(1, 0, 2)), dout3)
    dout_t = dout_t.reshape(F, -1)  # (F, N*P): the column order of cols
    db = dout_t.sum(axis=1)
    w_rows = w.reshape(G, F // G, K)
    dx = workspace.empty(x_shape, dout.dtype) if need_dx else None
    # dw transposed (the faster orientation), as a sum over pieces of the batch: partial[i]
    # is piece i's share; each piece reads its columns and its dout once. (Pieces of dw's
    # rows instead re-read the whole dout each: mini's conv1 took 3x as long at two threads.)
    # As many pieces as the products have where the shares are small; else one per thread,
    # so that the shares add little memory (paper conv3: 3.5 MB each).
    image_parts = _image_parts(N)
    share_bytes = G * K * (F // G) * w.itemsize
    weight_parts = (image_parts if len(image_parts) * share_bytes <= SMALL_SHARES
                    else parallel.split(N, parallel.threads()))
    partial = np.empty((len(weight_parts), G, K, F // G), w.dtype)

    def weight_gradient(i):  # partial[i] = cols_g[:, piece] @ dout_g[:, piece]^T, every g
        columns = slice(weight_parts[i].start * P, weight_parts[i].stop * P)
        for g in range(G):
            np.matmul(cols[g * K : (g + 1) * K, columns],
                      dout_t[g * F // G : (g + 1) * F // G, columns].T, out=partial[i, g])

    def input_gradient(images):  # dx of these images: dcols = w_g^T @ dout_g, then col2im
        columns = slice(images.start * P, images.stop * P)
        dcols = workspace.empty((K, columns.stop - columns.start), dout.dtype)
        for g in range(G):
            np.matmul(w_rows[g].T, dout_t[g * F // G : (g + 1) * F // G, columns], out=dcols)
            _col2im_into(dx[images, g * Cg : (g + 1) * Cg], dcols,
                         (images.stop - images.start, Cg, H, W), KH, KW, stride, pad,
                         chunked=False)

    tasks = [functools.partial(weight_gradient, i) for i in range(len(weight_parts))]
    if need_dx:
        tasks += [functools.partial(input_gradient, images) for images in image_parts]
    parallel.for_each_part(lambda task: task(), tasks)
    dw_t = partial[0]
    for share in partial[1:]:  # in a fixed order: the same sums on every run
        dw_t += share
    return dx, dw_t.transpose(0, 2, 1).reshape(w.shape), db


def conv_backward(dout, cache):
    """Equals ``tinyalex.layers.conv_backward``: (dx, dw, db)."""
    return _conv_grads(dout, cache, need_dx=True)


def conv_weight_grads(dout, cache):
    """Equals ``tinyalex.layers.conv_weight_grads``: (dw, db), never computing dx."""
    _, dw, db = _conv_grads(dout, cache, need_dx=False)
    return dw, db
