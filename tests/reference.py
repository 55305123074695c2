"""Slow, obviously correct loop implementations of the layers, for the tests only.

Each loops over every image, channel and output pixel and writes the textbook formula. They
are what the fast vectorised layers in tinyalex.layers are compared with.
"""

import numpy as np


def conv(x, w, b, stride, pad, groups):
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH = (H + 2 * pad - KH) // stride + 1
    OW = (W + 2 * pad - KW) // stride + 1
    out = np.zeros((N, F, OH, OW), dtype=x.dtype)
    per_group = F // groups
    for n in range(N):
        for f in range(F):
            g = f // per_group
            channels = slice(g * Cg, (g + 1) * Cg)
            for i in range(OH):
                for j in range(OW):
                    rows = slice(i * stride, i * stride + KH)
                    cols = slice(j * stride, j * stride + KW)
                    window = xp[n, channels, rows, cols]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def conv_grads(x, w, dout, stride, pad, groups):
    """dx, dw by scattering each output gradient back over its window."""
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    per_group = F // groups
    for n in range(N):
        for f in range(F):
            g = f // per_group
            channels = slice(g * Cg, (g + 1) * Cg)
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    rows = slice(i * stride, i * stride + KH)
                    cols = slice(j * stride, j * stride + KW)
                    dxp[n, channels, rows, cols] += dout[n, f, i, j] * w[f]
                    dw[f] += dout[n, f, i, j] * xp[n, channels, rows, cols]
    dx = dxp[:, :, pad : pad + H, pad : pad + W]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def lrn(x, n, k, alpha, beta):
    N, C, H, W = x.shape
    out = np.zeros_like(x)
    for b in range(N):
        for i in range(C):
            lo, hi = max(0, i - n // 2), min(C - 1, i + n // 2)
            for r in range(H):
                for c in range(W):
                    s = k + alpha * sum(x[b, j, r, c] ** 2 for j in range(lo, hi + 1))
                    out[b, i, r, c] = x[b, i, r, c] / s**beta
    return out


def maxpool(x, size, stride):
    N, C, H, W = x.shape
    OH, OW = (H - size) // stride + 1, (W - size) // stride + 1
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    dx_route = np.zeros((N, C, OH, OW, 2), dtype=np.int64)  # (row, col) of the first max
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    best = None
                    for a in range(size):
                        for b in range(size):
                            v = x[n, c, i * stride + a, j * stride + b]
                            if best is None or v > best:
                                best, where = v, (i * stride + a, j * stride + b)
                    out[n, c, i, j] = best
                    dx_route[n, c, i, j] = where
    return out, dx_route


def maxpool_grad(x_shape, route, dout):
    dx = np.zeros(x_shape, dtype=dout.dtype)
    N, C, OH, OW = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    r, q = route[n, c, i, j]
                    dx[n, c, r, q] += dout[n, c, i, j]
    return dx


def softmax_cross_entropy(logits, labels):
    N = logits.shape[0]
    loss = 0.0
    for n in range(N):
        z = logits[n].astype(np.float64)
        loss += np.log(np.sum(np.exp(z - z.max()))) + z.max() - z[labels[n]]
    return loss / N
