"""Convolution, with the paper's two-tower split as grouped convolution (sections 3.2, 3.5).

Shapes (everything C-contiguous):

    x      (N, C, H, W)            images, channels first
    w      (F, C // G, KH, KW)     F kernels; kernel f sees only the C/G input maps of its group
    out    (N, F, OH, OW)          P = OH * OW output positions per image

A convolution is a matrix product once every KH x KW window is unfolded into a column
("im2col"). tinyalex has two layouts for the unfolded windows:

1. The *per-image* layout of ``im2col`` / ``col2im``, the one the CUDA kernels produce
   (``tinyalex.cuda``, chosen by ``backend.kernel_ops``):

       cols  (N, C * KH * KW, P)   row (c, i, j) of image n holds
                                   x_padded[n, c, oh * stride + i, ow * stride + j] for every
                                   position p = oh * OW + ow; memory = (N, C, KH, KW, OH, OW).

   Group g's rows are one slab, cols.reshape(N, G, K, P)[:, g] with K = C/G * KH * KW, and
   the convolution is a batch of N small products w_g (F/G, K) @ cols_g (K, P) per group.

2. The *wide* layout of ``im2col_wide`` / ``col2im_wide``, used by the NumPy path:

       cols  (C * KH * KW, N * P)  the same rows, but all N images side by side in one row;
                                   memory = (C, KH, KW, N, OH, OW).

   Now each group is ONE big two-dimensional product over the whole batch,
   w_g (F/G, K) @ cols_g (K, N * P), and the weight gradient is one product too,
   dout_g (F/G, N * P) @ cols_g^T (N * P, K), which sums over images and positions inside
   the BLAS call. Big plain 2-d products are what a CPU BLAS runs fastest (a batch of small
   products, or a product that first has to transpose a big array, runs several times
   slower). The price is one transpose of out and of dout between (N, F, P) and (F, N, P),
   which are much smaller than cols.

Both layouts give the same numbers (tests/test_speed_paths.py checks it). The cache records
which one was used by the shape of cols: 3-d for per-image, 2-d for wide.

AlexNet's "two GPUs" (figure 2): conv2, conv4 and conv5 only connect kernels to the maps
on their own GPU, which is exactly groups=2.
"""

from __future__ import annotations

from tinyalex import workspace
from tinyalex.backend import get_array_module, kernel_ops
from tinyalex.layers._checks import check_array, check_positive_int, check_same_shape
from tinyalex.parallel import for_each_chunk


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length along one axis: floor((size + 2 pad - kernel) / stride) + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def _windows(x, kh: int, kw: int, stride: int, pad: int, image_axis_last: bool):
    """A strided *view* (no copy) of every kh x kw window of x, padded.

    windows[n, c, i, j, oh, ow] = x_padded[n, c, oh * stride + i, ow * stride + j]; with
    image_axis_last the axes are ordered (c, i, j, n, oh, ow) instead.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    OH = conv_output_size(H, kh, stride, pad)
    OW = conv_output_size(W, kw, stride, pad)
    if pad:
        padded = workspace.zeros((N, C, H + 2 * pad, W + 2 * pad), x.dtype, xp)
        padded[:, :, pad : pad + H, pad : pad + W] = x
        x = padded
    sN, sC, sH, sW = x.strides
    if image_axis_last:
        shape, strides = (C, kh, kw, N, OH, OW), (sC, sH, sW, sN, sH * stride, sW * stride)
    else:
        shape, strides = (N, C, kh, kw, OH, OW), (sN, sC, sH, sW, sH * stride, sW * stride)
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """Unfold every kh x kw window of x into a column, image by image.

    x (N, C, H, W) -> cols (N, C * kh * kw, OH * OW), layout 1 of the module docstring.
    A strided view enumerates the windows without copying; the single copy at the end lays
    them out for the matrix product.
    """
    xp = get_array_module(x)
    N, C = x.shape[:2]
    windows = _windows(x, kh, kw, stride, pad, image_axis_last=False)
    return xp.ascontiguousarray(windows).reshape(N, C * kh * kw, -1)


def im2col_wide(x, kh: int, kw: int, stride: int, pad: int):
    """Unfold every kh x kw window of x into a column, all images side by side.

    x (N, C, H, W) -> cols (C * kh * kw, N * OH * OW), layout 2 of the module docstring:
    cols[(c, i, j), (n, oh, ow)] = x_padded[n, c, oh * stride + i, ow * stride + j].
    Equal to im2col(x, ...).transpose(1, 0, 2).reshape(C * kh * kw, -1), with one copy.
    """
    xp = get_array_module(x)
    C = x.shape[1]
    windows = _windows(x, kh, kw, stride, pad, image_axis_last=True)
    cols = workspace.empty(windows.shape, x.dtype, xp)  # recycled memory, see workspace.py

    def copy_windows(images):  # axis 3 of windows and cols is the image axis
        cols[:, :, :, images] = windows[:, :, :, images]

    for_each_chunk(copy_windows, x)  # a few images at a time, on every core (parallel.py)
    return cols.reshape(C * kh * kw, -1)


def col2im(cols, x_shape, kh: int, kw: int, stride: int, pad: int):
    """The adjoint of im2col: add every column entry back onto the pixel it was read from.

    cols (N, C * kh * kw, OH * OW) -> dx (N, C, H, W). Loops over the kh * kw kernel offsets
    only; each step adds one whole (N, C, OH, OW) slab onto a strided slice of the padded image.
    Pixels covered by several windows (stride < kernel) accumulate one term per window.
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    OH = conv_output_size(H, kh, stride, pad)
    OW = conv_output_size(W, kw, stride, pad)
    cols6 = cols.reshape(N, C, kh, kw, OH, OW)
    dx_padded = xp.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx_padded[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride] += cols6[
                :, :, i, j
            ]
    return xp.ascontiguousarray(dx_padded[:, :, pad : pad + H, pad : pad + W])


def col2im_wide(cols, x_shape, kh: int, kw: int, stride: int, pad: int, out=None):
    """The adjoint of im2col_wide: cols (C * kh * kw, N * OH * OW) -> dx (N, C, H, W).

    As col2im, one slab add per kernel offset, but the sums are kept image axis second,
    (C, N, H + 2 pad, W + 2 pad), so that every add reads and writes in the same order as
    cols (the fast way through memory); one transposing copy at the end gives (N, C, H, W).
    The images are done a few at a time, on every core (parallel.py): a chunk's sums stay
    in the CPU cache across the kh * kw adds.
    out: an (N, C, H, W) array (or view) to write dx into, instead of a new one.
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    OH = conv_output_size(H, kh, stride, pad)
    OW = conv_output_size(W, kw, stride, pad)
    cols6 = cols.reshape(C, kh, kw, N, OH, OW)
    if out is None:
        out = workspace.empty(x_shape, cols.dtype, xp)

    def add_windows(images):  # dx of the images in slice `images`
        count = len(range(N)[images])
        sums = xp.zeros((C, count, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)  # padded
        for i in range(kh):
            for j in range(kw):
                rows = slice(i, i + stride * OH, stride)
                columns = slice(j, j + stride * OW, stride)
                sums[:, :, rows, columns] += cols6[:, i, j, images]
        out[images] = sums[:, :, pad : pad + H, pad : pad + W].transpose(1, 0, 2, 3)

    for_each_chunk(add_windows, out)
    return out


def _check_conv_args(x, w, b, stride, pad, groups):
    layer = "conv_forward"
    check_array(layer, "x", x, 4)
    check_array(layer, "w", w, 4)
    check_array(layer, "b", b, 1)
    check_positive_int(layer, "stride", stride)
    check_positive_int(layer, "pad", pad, minimum=0)
    check_positive_int(layer, "groups", groups)
    if not (x.dtype == w.dtype == b.dtype):
        raise ValueError(
            f"{layer}: x, w and b must share one dtype, got {x.dtype}, {w.dtype}, {b.dtype}"
        )
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    if C % groups or F % groups:
        raise ValueError(
            f"{layer}: groups={groups} must divide the input channels C={C} and the kernel "
            f"count F={F} (x {tuple(x.shape)}, w {tuple(w.shape)})"
        )
    if Cg != C // groups:
        raise ValueError(
            f"{layer}: w {tuple(w.shape)} expects {Cg * groups} input channels with "
            f"groups={groups} (w is (F, C // groups, KH, KW)), but x {tuple(x.shape)} has C={C}"
        )
    if b.shape != (F,):
        raise ValueError(f"{layer}: b must have shape ({F},) for w {tuple(w.shape)}, got {b.shape}")
    if KH > H + 2 * pad or KW > W + 2 * pad:
        raise ValueError(
            f"{layer}: kernel {KH}x{KW} is larger than the padded input "
            f"{H + 2 * pad}x{W + 2 * pad} (x {tuple(x.shape)}, pad={pad})"
        )


def conv_forward(x, w, b, stride: int = 1, pad: int = 0, groups: int = 1):
    """Grouped 2-d convolution (cross-correlation, as in every deep learning framework).

    Inputs:
        x (N, C, H, W); w (F, C // groups, KH, KW); b (F,); all float32 or all float64.
        stride, pad: the same along both axes; zero padding.
        groups: the input channels and the kernels are split into `groups` consecutive
            blocks; kernel block g sees only input block g. AlexNet: groups=2 on conv2, 4, 5.
    Returns:
        out (N, F, OH, OW) with OH = (H + 2 pad - KH) // stride + 1 (likewise OW);
        cache = (x_shape, w, cols, stride, pad, groups), cols the unfolded windows: wide
        (C*KH*KW, N*P) on the array path, per-image (N, C*KH*KW, P) on the kernel path.
    """
    _check_conv_args(x, w, b, stride, pad, groups)
    xp = get_array_module(x)
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH = conv_output_size(H, KH, stride, pad)
    OW = conv_output_size(W, KW, stride, pad)
    G, K, P = groups, Cg * KH * KW, OH * OW
    w_g = w.reshape(G, F // G, K)  # kernel block g as one (F/G, K) matrix

    ops = kernel_ops(x)  # raw CUDA kernels (GPU or CPU emulator), or None for array code
    if ops:
        cols = ops.im2col(x, KH, KW, stride, pad)  # (N, C*KH*KW, P), layout 1
        # (G, F/G, K) @ (N, G, K, P) -> (N, G, F/G, P), which *is* (N, F, OH, OW) in memory
        out = xp.matmul(w_g, cols.reshape(N, G, K, P)).reshape(N, F, OH, OW)
        out += b.reshape(1, F, 1, 1)
        return out, (x.shape, w, cols, stride, pad, groups)

    cols = im2col_wide(x, KH, KW, stride, pad)  # (G * K, N * P), layout 2
    out_t = workspace.empty((F, N * P), x.dtype, xp)  # the output with the kernel axis first
    for g in range(G):
        rows = slice(g * K, (g + 1) * K)
        kernels = slice(g * F // G, (g + 1) * F // G)
        xp.matmul(w_g[g], cols[rows], out=out_t[kernels])  # (F/G, K) @ (K, N*P)
    # (F, N, P) -> (N, F, P), adding the bias during the transposing copy
    out = workspace.empty((N, F, P), x.dtype, xp)
    out_t = out_t.reshape(F, N, P)
    for_each_chunk(lambda images: xp.add(out_t[:, images].transpose(1, 0, 2),
                                         b.reshape(1, F, 1), out=out[images]), out)
    return out.reshape(N, F, OH, OW), (x.shape, w, cols, stride, pad, groups)


def _conv_grads(dout, cache, need_dx: bool):
    """dx (or None unless need_dx), dw, db of conv_forward; see conv_backward."""
    x_shape, w, cols, stride, pad, groups = cache
    xp = get_array_module(dout)
    N, C, H, W = x_shape
    F, Cg, KH, KW = w.shape
    G, K = groups, Cg * KH * KW
    OH = conv_output_size(H, KH, stride, pad)
    OW = conv_output_size(W, KW, stride, pad)
    P = OH * OW
    check_array("conv_backward", "dout", dout, 4)
    check_same_shape("conv_backward", "dout", dout, (N, F, OH, OW))
    w_g = w.reshape(G, F // G, K)

    if cols.ndim == 3:  # per-image layout 1, from the kernel path
        dout_g = dout.reshape(N, G, F // G, P)
        cols_g = cols.reshape(N, G, K, P)
        db = dout.sum(axis=(0, 2, 3))
        dw = xp.empty((G, F // G, K), dtype=w.dtype)
        for g in range(G):
            # contract over images and positions: (N, F/G, P) x (N, K, P) -> (F/G, K)
            dw[g] = xp.tensordot(dout_g[:, g], cols_g[:, g], axes=([0, 2], [0, 2]))
        dx = None
        if need_dx:
            # (G, K, F/G) @ (N, G, F/G, P) -> (N, G, K, P) == (N, C*KH*KW, P)
            dcols = xp.matmul(w_g.transpose(0, 2, 1), dout_g).reshape(N, G * K, P)
            ops = kernel_ops(dcols)
            dx = (ops.col2im if ops else col2im)(dcols, x_shape, KH, KW, stride, pad)
        return dx, dw.reshape(w.shape), db

    # wide layout 2: every product below is one 2-d matrix product over the whole batch
    dout_t = workspace.empty((F, N, P), dout.dtype, xp)  # dout with the kernel axis first
    dout3 = dout.reshape(N, F, P)
    for_each_chunk(lambda images: xp.copyto(dout_t[:, images],
                                            dout3[images].transpose(1, 0, 2)), dout3)
    dout_t = dout_t.reshape(F, N * P)
    db = dout_t.sum(axis=1)
    dw = xp.empty((G, F // G, K), dtype=w.dtype)
    dx = workspace.empty(x_shape, dout.dtype, xp) if need_dx else None
    dcols = workspace.empty((K, N * P), dout.dtype, xp) if need_dx else None  # for each group
    for g in range(G):
        cols_g = cols[g * K : (g + 1) * K]  # (K, N*P)
        dout_g = dout_t[g * F // G : (g + 1) * F // G]  # (F/G, N*P)
        # dw_g = dout_g @ cols_g^T, computed as its transpose cols_g @ dout_g^T (K, F/G):
        # the same sums, but OpenBLAS ran this orientation 2-3x faster at AlexNet's shapes
        # on 2 cores (measured; it apparently splits a product with the larger output
        # axis first better across the cores).
        dw[g] = xp.matmul(cols_g, dout_g.T).T
        if need_dx:
            xp.matmul(w_g[g].T, dout_g, out=dcols)  # (K, F/G) @ (F/G, N*P) -> (K, N*P)
            col2im_wide(dcols, (N, Cg, H, W), KH, KW, stride, pad,
                        out=dx[:, g * Cg : (g + 1) * Cg])
    return dx, dw.reshape(w.shape), db


def conv_backward(dout, cache):
    """Gradients of conv_forward.

    Inputs: dout (N, F, OH, OW); cache from conv_forward.
    Returns: dx (N, C, H, W), dw (F, C // groups, KH, KW), db (F,).

        db[f]     = sum over n, oh, ow of dout[n, f, oh, ow]
        dw_g      = sum over images of dout_g (F/G, P) @ cols_g^T (P, K)   (one product per group)
        dcols_g   = w_g^T (K, F/G) @ dout_g (F/G, P), then col2im scatters it back onto dx.
    """
    return _conv_grads(dout, cache, need_dx=True)


def conv_weight_grads(dout, cache):
    """(dw, db) of conv_forward without dx: for the first layer, whose input (the images)
    needs no gradient. Skips the dx product and col2im, the costliest part of conv1's backward.
    """
    _, dw, db = _conv_grads(dout, cache, need_dx=False)
    return dw, db
