"""Fully connected layers fc6, fc7, fc8 (section 3.5): out = x w^T + b."""

from __future__ import annotations

from tinyalex import workspace
from tinyalex.backend import get_array_module
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
    xp = get_array_module(x)
    # out = x @ w^T, computed as (w @ x^T)^T: the same sums, but with the big M (not the
    # small batch) as the first axis OpenBLAS ran it about 3x faster on 2 cores at fc6's
    # shapes (measured). The transposing copy back to (N, M) adds the bias.
    out = workspace.empty((x2d.shape[0], M), x.dtype, xp)  # recycled memory, see workspace.py
    xp.add((w @ x2d.T).T, b, out=out)
    return out, (x2d, w, x.shape)


def linear_backward(dout, cache):
    """Gradients of linear_forward.

    Inputs: dout (N, M). Returns dx (x's original shape), dw (M, D), db (M,):
        dx = dout @ w,  dw = dout^T @ x,  db = sum over the batch of dout.
    """
    x2d, w, x_shape = cache
    check_same_shape("linear_backward", "dout", dout, (x2d.shape[0], w.shape[0]))
    xp = get_array_module(dout)
    dx = workspace.empty((x2d.shape[0], w.shape[1]), dout.dtype, xp)
    dx[...] = (w.T @ dout.T).T  # dout @ w, big axis first as in linear_forward
    dx = dx.reshape(x_shape)
    dw = xp.matmul(dout.T, x2d, out=workspace.empty(w.shape, dout.dtype, xp))
    db = dout.sum(axis=0)
    return dx, dw, db
