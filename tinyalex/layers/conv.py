"""Convolution, with the paper's two GPUs as grouped convolution (sections 3.2 and 3.5).

A convolutional layer slides F kernels over the image. With zero padding ``pad`` and stride
``s``, kernel f at output position (oh, ow) computes

    out[n, f, oh, ow] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, oh*s + i, ow*s + j]

where c runs over the input channels of f's group. AlexNet's "two GPUs" (figure 2): conv2,
conv4 and conv5 connect each kernel only to the maps on its own GPU, which is ``groups=2``:
the first F/2 kernels see the first C/2 channels, the last F/2 the last C/2.

im2col turns the sum into ONE matrix product. Copy every window into a column:

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*s + i, ow*s + j]      (C*KH*KW, N*OH*OW)

Then ``w.reshape(F, C*KH*KW) @ cols`` is every output of every image at once, (F, N*OH*OW):
row f is kernel f, column (n, oh, ow) is one window. A group is a block of rows of w and a
block of rows of cols (its channels), so a grouped convolution is one product per group.

The backward pass is the same products run backwards (with ``dout_t`` the output gradient in
cols' column order, (F, N*OH*OW)):

    db = dout summed over images and positions
    dw = dout_t @ cols^T                 every window, weighted by its output's gradient
    dcols = w^T @ dout_t                 the gradient of every column entry ...
    dx = col2im(dcols)                   ... added back onto the pixel it was copied from

``tinyalex.layers.naive`` has the same layer written as loops; ``tinyalex.fast`` the same
arithmetic arranged for speed; ``kernels/im2col.cu`` im2col and col2im as CUDA kernels. All
three use this module's column layout.
"""

from __future__ import annotations

from tinyalex.backend import get_array_module
from tinyalex.layers._checks import check_conv_args, check_same_shape


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length along one axis: floor((size + 2 pad - kernel) / stride) + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """Copy every kh x kw window of x into a column: x (N, C, H, W) -> cols (C*kh*kw, N*OH*OW).

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*stride + i, ow*stride + j]. The loop runs
    over the kh * kw positions inside a window; each step copies that position of every
    window of every image at once: a strided slice of the padded images.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = xp.empty((C, kh, kw, N, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # pixel (i, j) of window (oh, ow) is x_pad[..., oh*stride + i, ow*stride + j]
            window_pixels = x_pad[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride]
            cols[:, i, j] = window_pixels.transpose(1, 0, 2, 3)  # (N, C, ..) -> (C, N, ..)
    return cols.reshape(C * kh * kw, N * OH * OW)


def col2im(cols, x_shape, kh: int, kw: int, stride: int, pad: int):
    """The adjoint of im2col: add every column entry back onto the pixel it was copied from.

    cols (C*kh*kw, N*OH*OW) -> dx (N, C, H, W). A pixel inside several windows (stride <
    kernel) receives one term per window: the gradient adds up, it is not overwritten.
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    OH, OW = conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)
    cols = cols.reshape(C, kh, kw, N, OH, OW)
    dx_pad = xp.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx_pad[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride] += (
                cols[:, i, j].transpose(1, 0, 2, 3))
    return xp.ascontiguousarray(dx_pad[:, :, pad : pad + H, pad : pad + W])


def conv_forward(x, w, b, stride: int = 1, pad: int = 0, groups: int = 1):
    """Grouped 2-d convolution (cross-correlation, as in every deep learning framework).

    Inputs: x (N, C, H, W); w (F, C // groups, KH, KW); b (F,); one float dtype.
        stride, pad: the same along both axes (zero padding). groups: kernel block g sees
        only input-channel block g (AlexNet: groups=2 on conv2, conv4, conv5).
    Returns: out (N, F, OH, OW) with OH = (H + 2 pad - KH) // stride + 1 (likewise OW);
        cache = (x_shape, w, cols, stride, pad, groups), cols = im2col(x) (C*KH*KW, N*OH*OW).
    """
    check_conv_args("conv_forward", x, w, b, stride, pad, groups)
    xp = get_array_module(x)
    N = x.shape[0]
    F, Cg, KH, KW = w.shape
    G, K = groups, Cg * KH * KW  # K: the rows of cols (and columns of w) of one group
    cols = im2col(x, KH, KW, stride, pad)  # (G*K, N*OH*OW)
    w_rows = w.reshape(G, F // G, K)  # kernel block g as one (F/G, K) matrix
    out = xp.concatenate([w_rows[g] @ cols[g * K : (g + 1) * K] for g in range(G)])  # (F, N*P)
    OH = conv_output_size(x.shape[2], KH, stride, pad)
    out = out.reshape(F, N, OH, -1).transpose(1, 0, 2, 3) + b.reshape(1, F, 1, 1)
    return xp.ascontiguousarray(out), (x.shape, w, cols, stride, pad, groups)


def conv_backward(dout, cache):
    """Gradients of conv_forward.

    Inputs: dout (N, F, OH, OW); cache from conv_forward.
    Returns: dx (N, C, H, W), dw (F, C // groups, KH, KW), db (F,).
    """
    x_shape, w, cols, stride, pad, groups = cache
    (N, _, H, W), (F, Cg, KH, KW) = x_shape, w.shape
    G, K = groups, Cg * KH * KW
    OH, OW = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    check_same_shape("conv_backward", "dout", dout, (N, F, OH, OW))
    xp = get_array_module(dout)
    db = dout.sum(axis=(0, 2, 3))
    dout_t = dout.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, N*P): the column order of cols
    w_rows = w.reshape(G, F // G, K)
    dw, dcols = [], []
    for g in range(G):
        dout_g = dout_t[g * F // G : (g + 1) * F // G]  # (F/G, N*P)
        dw.append(dout_g @ cols[g * K : (g + 1) * K].T)  # (F/G, K)
        dcols.append(w_rows[g].T @ dout_g)  # (K, N*P)
    dx = col2im(xp.concatenate(dcols), x_shape, KH, KW, stride, pad)
    return dx, xp.concatenate(dw).reshape(w.shape), db


def conv_weight_grads(dout, cache):
    """(dw, db) of conv_forward, for a first layer: its input, the images, needs no gradient.

    Here simply conv_backward without dx; ``tinyalex.fast`` skips computing dx altogether.
    """
    _, dw, db = conv_backward(dout, cache)
    return dw, db
