"""Convolution, with the paper's two-tower split as grouped convolution (sections 3.2, 3.5).

Memory layout (everything C-contiguous):

    x      (N, C, H, W)            images, channels first
    w      (F, C // G, KH, KW)     F kernels; kernel f sees only the C/G input maps of its group
    cols   (N, C * KH * KW, P)     im2col: P = OH * OW output positions; row (c, i, j) holds
                                   x_padded[n, c, oh * stride + i, ow * stride + j] for every
                                   position p = oh * OW + ow. Its memory is the C-contiguous
                                   array (N, C, KH, KW, OH, OW).

Because a group's channels are consecutive, the rows of group g are one slab:
cols.reshape(N, G, C/G * KH * KW, P)[:, g]. The convolution of group g is then one matrix
product, w_g (F/G, K) @ cols_g (K, P) -> (F/G, P) per image, and the result
(N, G, F/G, P) already *is* the output (N, F, OH, OW) in memory -- no transpose needed.

AlexNet's "two GPUs" (figure 2): conv2, conv4 and conv5 only connect kernels to the maps
on their own GPU, which is exactly groups=2.
"""

from __future__ import annotations

from tinyalex.backend import get_array_module, kernel_ops
from tinyalex.layers._checks import check_array, check_positive_int, check_same_shape


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length along one axis: floor((size + 2 pad - kernel) / stride) + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """Unfold every kh x kw window of x into a column.

    x (N, C, H, W) -> cols (N, C * kh * kw, OH * OW), layout described in the module docstring.
    A strided view enumerates the windows without copying; the single reshape at the end is
    the one copy that lays them out for the matrix product.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    OH = conv_output_size(H, kh, stride, pad)
    OW = conv_output_size(W, kw, stride, pad)
    if pad:
        x = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    sN, sC, sH, sW = x.strides
    # windows[n, c, i, j, oh, ow] = x[n, c, oh * stride + i, ow * stride + j]
    windows = xp.lib.stride_tricks.as_strided(
        x, shape=(N, C, kh, kw, OH, OW), strides=(sN, sC, sH, sW, sH * stride, sW * stride)
    )
    return xp.ascontiguousarray(windows).reshape(N, C * kh * kw, OH * OW)


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
        cache = (x_shape, w, cols, stride, pad, groups), cols the im2col matrix (N, C*KH*KW, P).
    """
    _check_conv_args(x, w, b, stride, pad, groups)
    xp = get_array_module(x)
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH = conv_output_size(H, KH, stride, pad)
    OW = conv_output_size(W, KW, stride, pad)
    G, K, P = groups, Cg * KH * KW, OH * OW

    ops = kernel_ops(x)  # raw CUDA kernels (GPU or CPU emulator), or None for array code
    cols = (ops.im2col if ops else im2col)(x, KH, KW, stride, pad)  # (N, C*KH*KW, P)
    # (G, F/G, K) @ (N, G, K, P) -> (N, G, F/G, P): one product per group, batched over images
    out = xp.matmul(w.reshape(G, F // G, K), cols.reshape(N, G, K, P))
    out = out.reshape(N, F, OH, OW)
    out += b.reshape(1, F, 1, 1)
    return out, (x.shape, w, cols, stride, pad, groups)


def conv_backward(dout, cache):
    """Gradients of conv_forward.

    Inputs: dout (N, F, OH, OW); cache from conv_forward.
    Returns: dx (N, C, H, W), dw (F, C // groups, KH, KW), db (F,).

        db[f]     = sum over n, oh, ow of dout[n, f, oh, ow]
        dw_g      = sum over images of dout_g (F/G, P) @ cols_g^T (P, K)   (one product per group)
        dcols_g   = w_g^T (K, F/G) @ dout_g (F/G, P), then col2im scatters it back onto dx.
    """
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

    dout_g = dout.reshape(N, G, F // G, P)
    cols_g = cols.reshape(N, G, K, P)
    db = dout.sum(axis=(0, 2, 3))
    dw = xp.empty((G, F // G, K), dtype=w.dtype)
    for g in range(G):
        # contract over images and positions: (N, F/G, P) x (N, K, P) -> (F/G, K)
        dw[g] = xp.tensordot(dout_g[:, g], cols_g[:, g], axes=([0, 2], [0, 2]))
    # (G, K, F/G) @ (N, G, F/G, P) -> (N, G, K, P) == (N, C*KH*KW, P)
    dcols = xp.matmul(w.reshape(G, F // G, K).transpose(0, 2, 1), dout_g).reshape(N, G * K, P)
    ops = kernel_ops(dcols)
    dx = (ops.col2im if ops else col2im)(dcols, x_shape, KH, KW, stride, pad)
    return dx, dw.reshape(w.shape), db
