"""Fully connected layers fc6, fc7, fc8 (section 3.5): out = x w^T + b."""

from __future__ import annotations

from tinyalex.layers._checks import check_array, check_same_shape


def linear_forward(x, w, b):
    """Affine map.

    Inputs: x (N, D) or (N, C, H, W) (flattened to (N, C*H*W), C-order, as after maxpool5);
        w (M, D), PyTorch's layout (one row per output unit); b (M,).
    Returns: out (N, M); cache = (x2d, w, x_shape).
    """
    layer = "linear_forward"
    check_array(layer, "x", x, (2, 4))
    check_array(layer, "w", w, 2)
    check_array(layer, "b", b, 1)
    if not (x.dtype == w.dtype == b.dtype):
        raise ValueError(f"{layer}: x, w and b must share one dtype, got "
                         f"{x.dtype}, {w.dtype}, {b.dtype}")
    x2d = x.reshape(x.shape[0], -1)
    M, D = w.shape
    if x2d.shape[1] != D:
        raise ValueError(f"{layer}: x {tuple(x.shape)} has {x2d.shape[1]} features per sample, "
                         f"but w {tuple(w.shape)} expects D={D}")
    if b.shape != (M,):
        raise ValueError(f"{layer}: b must have shape ({M},) for w {tuple(w.shape)}, got {b.shape}")
    out = x2d @ w.T
    out += b
    return out, (x2d, w, x.shape)


def linear_backward(dout, cache):
    """Gradients of linear_forward.

    Inputs: dout (N, M). Returns dx (x's original shape), dw (M, D), db (M,):
        dx = dout @ w,  dw = dout^T @ x,  db = sum over the batch of dout.
    """
    x2d, w, x_shape = cache
    check_same_shape("linear_backward", "dout", dout, (x2d.shape[0], w.shape[0]))
    dx = (dout @ w).reshape(x_shape)
    dw = dout.T @ x2d
    db = dout.sum(axis=0)
    return dx, dw, db
