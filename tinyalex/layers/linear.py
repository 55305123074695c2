"""Fully connected layers fc6, fc7, fc8 (section 3.5): out = x w^T + b.

fc6 reads the flattened output of the last pool (256 x 6 x 6 = 9216 numbers in the paper),
fc7 the 4096 outputs of fc6, fc8 the 4096 of fc7, with one output per class.
"""

from __future__ import annotations

from tinyalex.layers._checks import check_linear_args, check_same_shape


def linear_forward(x, w, b):
    """Affine map.

    Inputs: x (N, D) or (N, C, H, W) (flattened to (N, C*H*W), C-order, as after pool5);
        w (M, D), one row per output unit (PyTorch's layout); b (M,).
    Returns: out (N, M); cache = (x2d, w, x_shape).
    """
    check_linear_args("linear_forward", x, w, b)
    x2d = x.reshape(x.shape[0], -1)
    return x2d @ w.T + b, (x2d, w, x.shape)


def linear_backward(dout, cache):
    """Gradients of linear_forward.

    Inputs: dout (N, M). Returns dx (x's original shape), dw (M, D), db (M,):
        dx = dout @ w,  dw = dout^T @ x,  db = sum over the batch of dout.
    """
    x2d, w, x_shape = cache
    check_same_shape("linear_backward", "dout", dout, (x2d.shape[0], w.shape[0]))
    return (dout @ w).reshape(x_shape), dout.T @ x2d, dout.sum(axis=0)
