"""Lesson 5, overlapping pooling: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing

from tinyalex.lessons import lesson05_overlapping_pooling as lesson


def maxpool_backward_overwriting(dout, x, size, stride):
    """= instead of +=: a pixel that is the maximum of two windows keeps only one gradient."""
    dx = np.zeros_like(x)
    N, C, OH, OW = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = x[n, c, i * stride : i * stride + size, j * stride : j * stride + size]
                    r, s = divmod(int(np.argmax(window)), size)
                    dx[n, c, i * stride + r, j * stride + s] = dout[n, c, i, j]
    return dx


def test_maxpool_backward_mistakes():
    assert "dx differs where windows overlap" in failing("maxpool_backward",
                                                         maxpool_backward_overwriting)

    def mask_of_maxima(dout, x, size, stride):  # the "x == max" trick: all tied maxima
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                rows = slice(i * stride, i * stride + size)
                cols = slice(j * stride, j * stride + size)
                window = x[:, :, rows, cols]
                mask = window == window.max(axis=(2, 3), keepdims=True)
                dx[:, :, rows, cols] += mask * dout[:, :, i : i + 1, j : j + 1]
        return dx

    assert "every tied maximum" in failing("maxpool_backward", mask_of_maxima)

    def average(dout, x, size, stride):
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                dx[:, :, i * stride : i * stride + size, j * stride : j * stride + size] += (
                    dout[:, :, i : i + 1, j : j + 1] / size**2)
        return dx

    assert "average pooling" in failing("maxpool_backward", average)


def test_maxpool_forward_and_coverage_mistakes():
    def non_overlapping(x, size, stride):
        return lesson.maxpool_forward(x, size, size)

    assert "non-overlapping" in failing("maxpool_forward", non_overlapping)

    def partial_windows(height, width, size, stride):
        counts = np.zeros((height, width), dtype=int)
        for i in range(0, height, stride):
            for j in range(0, width, stride):
                counts[i : i + size, j : j + size] += 1
        return counts

    assert "fit entirely" in failing("pool_coverage", partial_windows)
