"""The textbook layers against the loop references (tinyalex.layers.naive), numerical
gradients, and their error messages."""

import numpy as np
import pytest

from tinyalex.gradcheck import check_layer, numerical_gradient, rel_error
from tinyalex.layers import (
    conv_backward,
    conv_forward,
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    lrn_backward,
    lrn_forward,
    maxpool_backward,
    maxpool_forward,
    naive,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
)

GRAD_TOL = 1e-7  # float64 gradient checks


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# (N, C, H, W, F, K, stride, pad, groups): odd, non-square, strides 1/2/4, pads 0/1/2, groups 1/2
CONV_CASES = [
    (2, 3, 7, 9, 4, 3, 1, 0, 1),
    (2, 4, 8, 7, 6, 3, 2, 1, 2),
    (1, 3, 15, 13, 2, 5, 4, 2, 1),
    (2, 2, 11, 11, 4, 11, 4, 0, 2),
    (1, 6, 5, 6, 4, 3, 1, 1, 2),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_loop_reference(case):
    N, C, H, W, F, K, stride, pad, groups = case
    x, w, b = rand(N, C, H, W, seed=1), rand(F, C // groups, K, K, seed=2), rand(F, seed=3)
    out, cache = conv_forward(x, w, b, stride=stride, pad=pad, groups=groups)
    loop_out, loop_cache = naive.conv_forward_naive(x, w, b, stride, pad, groups)
    assert rel_error(out, loop_out) < 1e-12
    dout = rand(*out.shape, seed=4)
    for textbook, loops in zip(conv_backward(dout, cache),
                               naive.conv_backward_naive(dout, loop_cache), strict=True):
        assert textbook.shape == loops.shape
        assert rel_error(textbook, loops) < 1e-12


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_gradients(case):
    N, C, H, W, F, K, stride, pad, groups = case
    x, w, b = rand(N, C, H, W, seed=5), rand(F, C // groups, K, K, seed=6), rand(F, seed=7)
    errors = check_layer(conv_forward, conv_backward, [x, w, b],
                         dict(stride=stride, pad=pad, groups=groups))
    assert max(errors) < GRAD_TOL, errors


def test_grouped_conv_keeps_the_towers_apart():
    """With groups=2 the first half of the kernels must not see the second half of the maps."""
    x, w, b = rand(1, 4, 6, 6), rand(4, 2, 3, 3), np.zeros(4)
    out, _ = conv_forward(x, w, b, groups=2)
    x2 = x.copy()
    x2[:, 2:] += 100.0  # change only the second tower's input
    out2, _ = conv_forward(x2, w, b, groups=2)
    np.testing.assert_array_equal(out[:, :2], out2[:, :2])
    assert not np.allclose(out[:, 2:], out2[:, 2:])


def test_relu():
    x = rand(3, 5)
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(out, np.where(x > 0, x, 0))
    dout = rand(3, 5, seed=1)
    np.testing.assert_array_equal(relu_backward(dout, cache), np.where(x > 0, dout, 0))
    assert max(check_layer(relu_forward, relu_backward, [rand(2, 3, 4, 5)])) < GRAD_TOL


@pytest.mark.parametrize("n,k,alpha,beta", [(5, 2.0, 1e-4, 0.75), (3, 1.0, 0.5, 0.75),
                                            (5, 2.0, 0.1, 0.75), (1, 2.0, 0.3, 1.5)])
def test_lrn_matches_paper_formula(n, k, alpha, beta):
    x = rand(2, 7, 3, 4) * 3
    out, cache = lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)
    loop_out, loop_cache = naive.lrn_forward_naive(x, n, k, alpha, beta)
    assert rel_error(out, loop_out) < 1e-12
    dout = rand(*out.shape, seed=1)
    assert rel_error(lrn_backward(dout, cache), naive.lrn_backward_naive(dout, loop_cache)) < 1e-12


@pytest.mark.parametrize("alpha", [1e-4, 0.1, 0.5])
def test_lrn_gradients(alpha):
    """A large alpha makes the second term of the gradient big enough to see a wrong sign."""
    x = rand(2, 7, 3, 5) * 2
    errors = check_layer(lrn_forward, lrn_backward, [x], dict(n=5, k=2.0, alpha=alpha, beta=0.75))
    assert max(errors) < GRAD_TOL, errors


def test_lrn_second_gradient_term_matters():
    """A backward that forgets the cross-channel term must fail the large-alpha check."""
    x = rand(1, 6, 2, 2) * 2
    out, cache = lrn_forward(x, alpha=0.5)
    dout = rand(*out.shape, seed=1)
    scale = cache[2]
    first_term_only = dout * scale**-0.75
    numeric = numerical_gradient(lambda: lrn_forward(x, alpha=0.5)[0], x, dout)
    assert rel_error(first_term_only, numeric) > 1e-2
    assert rel_error(lrn_backward(dout, cache), numeric) < GRAD_TOL


def test_lrn_alpha_convention_against_hand_computed_value():
    """tinyalex alpha = PyTorch alpha / n. Channels 1, 2, 3 at one pixel, n = 3, k = 1.

    PyTorch's local_response_norm(x, size=3, alpha=0.3, beta=1, k=1) computes for the middle
    channel b = 2 / (1 + 0.3 * (1 + 4 + 9) / 3) = 2 / 2.4. The paper's formula gives the same
    with alpha = 0.3 / 3 = 0.1: 2 / (1 + 0.1 * 14) = 2 / 2.4.
    """
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    out, _ = lrn_forward(x, n=3, k=1.0, alpha=0.3 / 3, beta=1.0)
    assert out[0, 1, 0, 0] == pytest.approx(2 / 2.4, rel=1e-12)
    # the edge channel sees only channels 0..1: 1 / (1 + 0.1 * (1 + 4))
    assert out[0, 0, 0, 0] == pytest.approx(1 / 1.5, rel=1e-12)


@pytest.mark.parametrize("size,stride,shape", [(3, 2, (2, 3, 9, 7)), (2, 2, (2, 2, 8, 6)),
                                               (3, 1, (1, 2, 5, 6)), (3, 3, (1, 2, 10, 11))])
def test_maxpool_matches_reference(size, stride, shape):
    x = rand(*shape)
    out, cache = maxpool_forward(x, size=size, stride=stride)
    loop_out, loop_cache = naive.maxpool_forward_naive(x, size, stride)
    np.testing.assert_array_equal(out, loop_out)
    dout = rand(*out.shape, seed=1)
    np.testing.assert_allclose(maxpool_backward(dout, cache),
                               naive.maxpool_backward_naive(dout, loop_cache), rtol=0, atol=1e-14)
    assert max(check_layer(maxpool_forward, maxpool_backward, [x],
                           dict(size=size, stride=stride))) < GRAD_TOL


def test_maxpool_ties_go_to_the_first_maximum_and_overlaps_accumulate():
    x = np.zeros((1, 1, 5, 5))
    out, cache = maxpool_forward(x, size=3, stride=2)  # all ties: first window element wins
    dx = maxpool_backward(np.ones_like(out), cache)
    expected = np.zeros((5, 5))
    expected[[0, 0, 2, 2], [0, 2, 0, 2]] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)
    x[0, 0, 2, 2] = 1.0  # the centre pixel is in all four overlapping windows
    out, cache = maxpool_forward(x, size=3, stride=2)
    assert maxpool_backward(np.ones_like(out), cache)[0, 0, 2, 2] == 4


def test_dropout():
    x = rand(50, 80)
    out, mask = dropout_forward(x, p=0.5, rng=np.random.default_rng(0))
    kept = out != 0
    assert 0.45 < kept.mean() < 0.55
    np.testing.assert_allclose(out[kept], 2 * x[kept])  # inverted: scaled by 1 / (1 - p)
    dout = rand(50, 80, seed=1)
    np.testing.assert_array_equal(dropout_backward(dout, mask), dout * mask)
    test_out, cache = dropout_forward(x, p=0.5, train=False)
    np.testing.assert_array_equal(test_out, x)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)
    xs = rand(4, 6)
    errors = check_layer(lambda a: dropout_forward(a, 0.3, rng=np.random.default_rng(3)),
                         dropout_backward, [xs])
    assert max(errors) < GRAD_TOL


def test_linear():
    x, w, b = rand(3, 2, 2, 3), rand(5, 12, seed=1), rand(5, seed=2)
    out, cache = linear_forward(x, w, b)
    np.testing.assert_allclose(out, x.reshape(3, 12) @ w.T + b)
    dx, dw, db = linear_backward(rand(3, 5, seed=3), cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert max(check_layer(linear_forward, linear_backward, [x, w, b])) < GRAD_TOL


def test_softmax_cross_entropy():
    logits, labels = rand(6, 4) * 3, np.array([0, 3, 1, 1, 2, 0])
    loss, dlogits = softmax_cross_entropy(logits, labels)
    loop_loss, loop_dlogits = naive.softmax_cross_entropy_naive(logits, labels)
    assert float(loss) == pytest.approx(float(loop_loss), rel=1e-12)
    assert rel_error(dlogits, loop_dlogits) < 1e-12
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    assert rel_error(dlogits, numeric) < GRAD_TOL
    # stable for huge logits, where a naive exp overflows
    big_loss, big_grad = softmax_cross_entropy(logits * 1e4, labels)
    assert np.isfinite(big_loss) and np.all(np.isfinite(big_grad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_preserved(dtype):
    x = rand(2, 4, 9, 9, dtype=dtype)
    checks = [
        (conv_forward, conv_backward, [x, rand(4, 2, 3, 3, dtype=dtype), rand(4, dtype=dtype)],
         dict(groups=2, pad=1)),
        (relu_forward, relu_backward, [x], {}),
        (lrn_forward, lrn_backward, [x], {}),
        (maxpool_forward, maxpool_backward, [x], {}),
        (dropout_forward, dropout_backward, [x], dict(rng=np.random.default_rng(0))),
        (linear_forward, linear_backward, [x, rand(3, 324, dtype=dtype), rand(3, dtype=dtype)], {}),
    ]
    for forward, backward, args, kwargs in checks:
        out, cache = forward(*args, **kwargs)
        assert out.dtype == dtype, forward.__name__
        dout = np.ones_like(out)
        dout_before = dout.copy()
        grads = backward(dout, cache)
        for grad in grads if isinstance(grads, tuple) else (grads,):
            assert grad.dtype == dtype, backward.__name__
        np.testing.assert_array_equal(dout, dout_before)  # backward never writes to dout
    loss, dlogits = softmax_cross_entropy(rand(3, 4, dtype=dtype), np.array([0, 1, 2]))
    assert loss.dtype == dtype and dlogits.dtype == dtype


def test_backward_leaves_the_cache_alone():
    x, w, b = rand(2, 4, 7, 7), rand(6, 2, 3, 3), rand(6)
    out, cache = conv_forward(x, w, b, pad=1, groups=2)
    snapshot = [c.copy() if isinstance(c, np.ndarray) else c for c in cache]
    conv_backward(rand(*out.shape), cache)
    for before, after in zip(snapshot, cache, strict=True):
        if isinstance(before, np.ndarray):
            np.testing.assert_array_equal(before, after)
    out, cache = lrn_forward(x, alpha=0.2)
    snapshot = [c.copy() if isinstance(c, np.ndarray) else c for c in cache]
    lrn_backward(rand(*out.shape), cache)
    for before, after in zip(snapshot, cache, strict=True):
        if isinstance(before, np.ndarray):
            np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("call,message", [
    (lambda: conv_forward(rand(2, 3, 8), rand(4, 3, 3, 3), rand(4)), "x must be 4-d"),
    (lambda: conv_forward(rand(2, 3, 8, 8), rand(4, 2, 3, 3), rand(4)), "expects 2 input channels"),
    (lambda: conv_forward(rand(2, 3, 8, 8), rand(4, 1, 3, 3), rand(4), groups=2),
     "groups=2 must divide"),
    (lambda: conv_forward(rand(2, 4, 8, 8), rand(3, 2, 3, 3), rand(3), groups=2),
     "groups=2 must divide"),
    (lambda: conv_forward(rand(1, 3, 4, 4), rand(2, 3, 7, 7), rand(2), pad=1),
     "larger than the padded input"),
    (lambda: conv_forward(rand(1, 3, 8, 8), rand(2, 3, 3, 3), rand(3)), "b must have shape"),
    (lambda: maxpool_forward(rand(1, 1, 2, 2), size=3), "larger than the input"),
    (lambda: lrn_forward(rand(1, 4, 2, 2), n=4), "n=4 is even"),
    (lambda: dropout_forward(rand(3, 3), p=1.0), "must be in [0, 1)"),
    (lambda: dropout_forward(rand(3, 3), p=-0.1), "must be in [0, 1)"),
    (lambda: linear_forward(rand(2, 5), rand(3, 4), rand(3)), "expects D=4"),
    (lambda: softmax_cross_entropy(rand(3, 4), np.array([0, 1, 4])), "must be in [0, 4)"),
    (lambda: softmax_cross_entropy(rand(3, 4), np.array([0, 1])), "labels must have shape (3,)"),
    (lambda: softmax_cross_entropy(rand(3, 4), np.array([0.0, 1.0, 2.0])), "must be integers"),
])
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        call()
