"""Lesson 4, local response normalization: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
import pytest
from lesson_checks import failing

from tinyalex import layers
from tinyalex.lessons import lesson04_local_response_normalization as lesson


def lrn_pytorch_style(x, n, k, alpha, beta):
    """A student who learnt LRN from PyTorch's docs: the window term is an average."""
    C = x.shape[1]
    out = np.empty_like(x)
    for i in range(C):
        lo, hi = max(0, i - n // 2), min(C, i + n // 2 + 1)
        out[:, i] = x[:, i] / (k + alpha / n * (x[:, lo:hi] ** 2).sum(axis=1)) ** beta
    return out


def test_lrn_forward_mistakes():
    message = failing("lrn_forward", lrn_pytorch_style)
    assert "alpha/n (the PyTorch/Caffe convention)" in message
    assert "plain sum" in message

    def wrapping(x, n, k, alpha, beta):
        squares = sum(np.roll(x**2, s, axis=1) for s in range(-(n // 2), n // 2 + 1))
        return x / (k + alpha * squares) ** beta

    assert "wraps around" in failing("lrn_forward", wrapping)

    def no_beta(x, n, k, alpha, beta):
        return lesson.lrn_forward(x, n, k, alpha, 1.0)

    assert "power beta" in failing("lrn_forward", no_beta)


def lrn_backward_first_term_only(dout, x, n, k, alpha, beta):
    """Treats the scale as a constant: forgets that a[j] is inside its neighbours' scales."""
    _, cache = layers.lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)
    scale = cache[2]
    return dout * scale**-beta


def test_lrn_backward_mistakes():
    message = failing("lrn_backward", lrn_backward_first_term_only)
    assert "second (cross-channel) term of the LRN gradient is missing" in message

    def wrong_sign(dout, x, n, k, alpha, beta):
        first = lrn_backward_first_term_only(dout, x, n, k, alpha, beta)
        return 2 * first - lesson.lrn_backward(dout, x, n, k, alpha, beta)

    assert "wrong sign" in failing("lrn_backward", wrong_sign)

    def alpha_over_n(dout, x, n, k, alpha, beta):
        return lesson.lrn_backward(dout, x, n, k, alpha / n, beta)

    assert "alpha/n" in failing("lrn_backward", alpha_over_n)

    def no_factor_two(dout, x, n, k, alpha, beta):
        first = lrn_backward_first_term_only(dout, x, n, k, alpha, beta)
        return first + (lesson.lrn_backward(dout, x, n, k, alpha, beta) - first) / 2

    assert "factor 2" in failing("lrn_backward", no_factor_two)


def test_lrn_from_pytorch_mistakes():
    def forgot_to_divide(x, size, alpha, beta, k):
        return layers.lrn_forward(x, n=size, k=k, alpha=alpha, beta=beta)[0]

    assert "MEAN of the squares" in failing("lrn_pytorch", forgot_to_divide)

    def paper_k(x, size, alpha, beta, k):
        return layers.lrn_forward(x, n=size, k=2.0, alpha=alpha / size, beta=beta)[0]

    assert "pass k through" in failing("lrn_pytorch", paper_k)


def test_lrn_pytorch_solution_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 7, 3, 4))
    want = torch.nn.functional.local_response_norm(torch.from_numpy(x), 5, alpha=0.3, beta=0.75,
                                                   k=1.5).numpy()
    np.testing.assert_allclose(lesson.lrn_pytorch(x, 5, 0.3, 0.75, 1.5), want, rtol=1e-10)
