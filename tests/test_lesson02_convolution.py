"""Lesson 2, convolution: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing

from tinyalex.lessons import lesson02_convolution as lesson


def test_convolution_with_a_flipped_kernel_or_no_bias():
    def true_convolution(x, w, b, stride, pad):
        return lesson.conv_forward_loops(x, np.flip(w, axis=(2, 3)), b, stride, pad)

    assert "kernel flipped" in failing("conv_forward_loops", true_convolution)

    def no_bias(x, w, b, stride, pad):
        return lesson.conv_forward_loops(x, w, np.zeros_like(b), stride, pad)

    assert "bias b[f] is missing" in failing("conv_forward_loops", no_bias)

    def unpadded(x, w, b, stride, pad):
        return lesson.conv_forward_loops(x, w, b, stride, 0)

    assert "padding is missing" in failing("conv_forward_loops", unpadded)

    def stride_one(x, w, b, stride, pad):
        return lesson.conv_forward_loops(x, w, b, 1, pad)

    assert "stride is ignored" in failing("conv_forward_loops", stride_one)


def conv_backward_overwriting(dout, x, w, stride, pad):
    """dx written with = : wrong wherever two windows share a pixel."""
    F, _, KH, KW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for n in range(dout.shape[0]):
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                rows, cols = slice(i * stride, i * stride + KH), slice(j * stride, j * stride + KW)
                dx_pad[n, :, rows, cols] = np.einsum("f,fchw->chw", dout[n, :, i, j], w)
                dw += np.einsum("f,chw->fchw", dout[n, :, i, j], x_pad[n, :, rows, cols])
    H, W = x.shape[2:]
    return dx_pad[:, :, pad : pad + H, pad : pad + W], dw, dout.sum(axis=(0, 2, 3))


def test_convolution_backward_mistakes():
    assert "windows overlap" in failing("conv_backward_loops", conv_backward_overwriting)

    def mean_db(dout, x, w, stride, pad):
        dx, dw, db = lesson.conv_backward_loops(dout, x, w, stride, pad)
        return dx, dw, dout.mean(axis=(0, 2, 3))

    assert "db is a mean" in failing("conv_backward_loops", mean_db)

    def padded_dx(dout, x, w, stride, pad):
        _, dw, db = lesson.conv_backward_loops(dout, x, w, stride, pad)
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        return np.zeros_like(x_pad), dw, db

    assert "padded shape" in failing("conv_backward_loops", padded_dx)


def test_im2col_layout_mistakes():
    def transposed(x, kh, kw, stride, pad):
        return lesson.im2col(x, kh, kw, stride, pad).T

    assert "transpose" in failing("im2col", transposed)

    def rows_ijc(x, kh, kw, stride, pad):  # a student's loop that puts the channel innermost
        N, C, H, W = x.shape
        OH, OW = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        cols = np.zeros((kh * kw * C, N * OH * OW))
        for i in range(kh):
            for j in range(kw):
                for c in range(C):
                    patch = x_pad[:, c, i : i + stride * OH : stride, j : j + stride * OW : stride]
                    cols[(i * kw + j) * C + c] = patch.reshape(-1)
        return cols

    assert "rows are ordered (i, j, c)" in failing("im2col", rows_ijc)

    def columns_window_first(x, kh, kw, stride, pad):
        N, C = x.shape[:2]
        cols = lesson.im2col(x, kh, kw, stride, pad)
        return cols.reshape(len(cols), N, -1).transpose(0, 2, 1).reshape(len(cols), -1)

    assert "columns are ordered (oh, ow, n)" in failing("im2col", columns_window_first)


def test_col2im_that_overwrites():
    def col2im_overwriting(cols, x_shape, kh, kw, stride, pad):
        N, C, H, W = x_shape
        OH, OW = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
        cols = cols.reshape(C, kh, kw, N, OH, OW)
        dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
        for i in range(kh):
            for j in range(kw):
                dx_pad[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride] = (
                    cols[:, i, j].transpose(1, 0, 2, 3))
        return dx_pad[:, :, pad : pad + H, pad : pad + W]

    assert "dx differs only where windows overlap" in failing("col2im", col2im_overwriting)


def test_grouped_convolution_mistakes():
    def one_bias_block(x, w, b, groups, stride, pad):
        F = w.shape[0]
        return lesson.grouped_conv(x, w, np.tile(b[: F // groups], groups), groups, stride, pad)

    assert "biases of each group" in failing("grouped_conv", one_bias_block)
