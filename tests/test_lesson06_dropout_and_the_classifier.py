"""Lesson 6, dropout, fully connected, softmax: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing

from tinyalex.lessons import lesson06_dropout_and_the_classifier as lesson


def test_dropout_mistakes():
    def not_rescaled(x, p, rng):
        mask = (rng.random(x.shape) >= p).astype(x.dtype)
        return x * mask, mask

    assert "not rescaled by 1/(1-p)" in failing("dropout_forward", not_rescaled)

    def keeps_with_probability_p(x, p, rng):
        mask = (rng.random(x.shape) < p) / (1 - p)
        return x * mask, mask

    assert "with probability p" in failing("dropout_forward", keeps_with_probability_p)

    def another_draw(x, p, rng):
        mask = rng.binomial(1, 1 - p, x.shape) / (1 - p)
        return x * mask, mask

    assert "another draw" in failing("dropout_forward", another_draw)


def test_linear_backward_mistakes():
    def transposed_dw(dout, x, w):
        dx, dw, db = lesson.linear_backward(dout, x, w)
        return dx, dw.T, db

    assert "w's layout" in failing("linear_backward", transposed_dw)

    def flat_dx(dout, x, w):
        _, dw, db = lesson.linear_backward(dout, x, w)
        return dout @ w, dw, db

    assert "x's shape" in failing("linear_backward", flat_dx)

    def mean_db(dout, x, w):
        dx, dw, _ = lesson.linear_backward(dout, x, w)
        return dx, dw, dout.mean(axis=0)

    assert "not a mean" in failing("linear_backward", mean_db)


def test_softmax_cross_entropy_mistakes():
    def unstable(logits, labels):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            e = np.exp(logits)
            p = e / e.sum(axis=1, keepdims=True)
            rows = np.arange(len(labels))
            d = p.copy()
            d[rows, labels] -= 1
            return -np.log(p[rows, labels]).mean(), d / len(labels)

    assert "subtract each row's maximum" in failing("softmax_cross_entropy", unstable)

    def not_divided(logits, labels):
        loss, d = lesson.softmax_cross_entropy(logits, labels)
        return loss, d * len(labels)

    assert "N times too large" in failing("softmax_cross_entropy", not_divided)

    def summed(logits, labels):
        loss, d = lesson.softmax_cross_entropy(logits, labels)
        return loss * len(labels), d

    assert "MEAN over the batch" in failing("softmax_cross_entropy", summed)
