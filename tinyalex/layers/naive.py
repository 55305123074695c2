"""Every layer as plain loops: the algorithmic definitions, slow and obviously right.

Each function loops over every image, channel and output position and writes the formula
of the paper as it stands, one number at a time. They have the same arguments and results
as the functions of ``tinyalex.layers`` (``conv_forward_naive`` <-> ``conv_forward``, ...,
including the ``(out, cache)`` / ``backward(dout, cache)`` pairing), so any implementation
can be checked against them, and the lessons' exercises are. Use them on small arrays only:
a Python loop costs about a microsecond per step.

Backward passes are written the way the chain rule reads: for every output element, add its
gradient times the derivative to every input that produced it.
"""

from __future__ import annotations

import itertools

import numpy as np


def _zero_pad(x, pad: int):
    """x (N, C, H, W) with ``pad`` zeros around each image."""
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


# ---- convolution (sections 3.2, 3.5) -------------------------------------------------------

def conv_forward_naive(x, w, b, stride: int = 1, pad: int = 0, groups: int = 1):
    """out[n, f, oh, ow] = b[f] + sum over the window of kernel f's group of w * x.

    x (N, C, H, W), w (F, C // groups, KH, KW), b (F,) -> out (N, F, OH, OW);
    cache = (x, w, b, stride, pad, groups).
    """
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    x_pad = _zero_pad(x, pad)
    OH, OW = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    out = np.zeros((N, F, OH, OW), dtype=x.dtype)
    for n, f, oh, ow in itertools.product(range(N), range(F), range(OH), range(OW)):
        group = f // (F // groups)  # kernel f sees input channels group*Cg .. group*Cg + Cg-1
        window = x_pad[n, group * Cg : (group + 1) * Cg,
                       oh * stride : oh * stride + KH, ow * stride : ow * stride + KW]
        out[n, f, oh, ow] = np.sum(window * w[f]) + b[f]
    return out, (x, w, b, stride, pad, groups)


def conv_backward_naive(dout, cache):
    """dx, dw, db of conv_forward_naive: each output's gradient flows back over its window."""
    x, w, b, stride, pad, groups = cache
    F, Cg, KH, KW = w.shape
    x_pad = _zero_pad(x, pad)
    dx_pad, dw, db = np.zeros_like(x_pad), np.zeros_like(w), np.zeros_like(b)
    N, _, OH, OW = dout.shape
    for n, f, oh, ow in itertools.product(range(N), range(F), range(OH), range(OW)):
        group = f // (F // groups)
        channels = slice(group * Cg, (group + 1) * Cg)
        rows, cols = slice(oh * stride, oh * stride + KH), slice(ow * stride, ow * stride + KW)
        g = dout[n, f, oh, ow]
        dx_pad[n, channels, rows, cols] += g * w[f]  # d out / d x = w
        dw[f] += g * x_pad[n, channels, rows, cols]  # d out / d w = x
        db[f] += g  # d out / d b = 1
    H, W = x.shape[2:]
    return dx_pad[:, :, pad : pad + H, pad : pad + W].copy(), dw, db


# ---- ReLU and tanh (section 3.1) ----------------------------------------------------------

def relu_forward_naive(x):
    """out = max(0, x), one element at a time; cache = x."""
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        out[index] = x[index] if x[index] > 0 else 0
    return out, x


def relu_backward_naive(dout, cache):
    """dx = dout where x > 0, else 0."""
    x = cache
    dx = np.zeros_like(dout)
    for index in np.ndindex(x.shape):
        dx[index] = dout[index] if x[index] > 0 else 0
    return dx


def tanh_forward_naive(x):
    """out = tanh(x) = (e^x - e^-x) / (e^x + e^-x), one element at a time; cache = out."""
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        out[index] = np.tanh(x[index])
    return out, out


def tanh_backward_naive(dout, cache):
    """dx = dout * (1 - tanh(x)^2), one element at a time."""
    out = cache
    dx = np.zeros_like(dout)
    for index in np.ndindex(out.shape):
        dx[index] = dout[index] * (1 - out[index] ** 2)
    return dx


# ---- local response normalization (section 3.3) --------------------------------------------

def _window(i: int, n: int, C: int) -> range:
    """The channels max(0, i - n//2) .. min(C - 1, i + n//2)."""
    return range(max(0, i - n // 2), min(C - 1, i + n // 2) + 1)


def lrn_forward_naive(x, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
    """b[i] = a[i] / (k + alpha * sum_{j in window(i)} a[j]^2)^beta, at every (image, y, x).

    x (N, C, H, W) -> out (N, C, H, W); cache = (x, n, k, alpha, beta).
    """
    N, C, H, W = x.shape
    out = np.zeros_like(x)
    for image, i, r, c in itertools.product(range(N), range(C), range(H), range(W)):
        s = k + alpha * sum(x[image, j, r, c] ** 2 for j in _window(i, n, C))
        out[image, i, r, c] = x[image, i, r, c] / s**beta
    return out, (x, n, k, alpha, beta)


def lrn_backward_naive(dout, cache):
    """dx[j] = sum over the outputs i whose window holds j of dout[i] * d b[i] / d a[j].

    With s[i] = k + alpha * sum_{window(i)} a^2:  d b[i] / d a[j] =
        [i == j] s[i]^-beta  -  2 alpha beta a[i] a[j] s[i]^(-beta - 1).
    """
    x, n, k, alpha, beta = cache
    N, C, H, W = x.shape
    dx = np.zeros_like(x)
    for image, i, r, c in itertools.product(range(N), range(C), range(H), range(W)):
        a = x[image, :, r, c]
        s = k + alpha * sum(a[j] ** 2 for j in _window(i, n, C))
        for j in _window(i, n, C):  # the inputs that output i depends on
            derivative = -2 * alpha * beta * a[i] * a[j] * s ** (-beta - 1)
            if j == i:
                derivative += s**-beta
            dx[image, j, r, c] += dout[image, i, r, c] * derivative
    return dx


# ---- overlapping max-pooling (section 3.4) -------------------------------------------------

def maxpool_forward_naive(x, size: int = 3, stride: int = 2):
    """out = max over each size x size window; cache = (x, size, stride)."""
    N, C, H, W = x.shape
    OH, OW = (H - size) // stride + 1, (W - size) // stride + 1
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n, c, oh, ow in itertools.product(range(N), range(C), range(OH), range(OW)):
        out[n, c, oh, ow] = x[n, c, oh * stride : oh * stride + size,
                              ow * stride : ow * stride + size].max()
    return out, (x, size, stride)


def maxpool_backward_naive(dout, cache):
    """Each window's gradient goes to its first maximum; overlapping windows add up."""
    x, size, stride = cache
    dx = np.zeros_like(x)
    N, C, OH, OW = dout.shape
    for n, c, oh, ow in itertools.product(range(N), range(C), range(OH), range(OW)):
        window = x[n, c, oh * stride : oh * stride + size, ow * stride : ow * stride + size]
        i, j = np.unravel_index(np.argmax(window), window.shape)  # the first maximum
        dx[n, c, oh * stride + i, ow * stride + j] += dout[n, c, oh, ow]
    return dx


# ---- dropout (section 4.2) -----------------------------------------------------------------

def dropout_forward_naive(x, p: float = 0.5, train: bool = True, rng=None):
    """Each unit is kept when its uniform draw u >= p, and then scaled by 1 / (1 - p).

    Draws ``rng.random(x.shape, dtype=float32)`` exactly as ``dropout_forward`` does, so the
    same generator state gives the same mask. cache = the mask (None when not training).
    """
    if not train or p == 0:
        return x.copy(), None
    rng = np.random.default_rng() if rng is None else rng
    u = rng.random(x.shape, dtype=np.float32)
    mask = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        mask[index] = 1 / (1 - p) if u[index] >= p else 0
    return x * mask, mask


def dropout_backward_naive(dout, cache):
    """dx = dout * mask, one element at a time."""
    mask = cache
    dx = dout.copy()
    if mask is not None:
        for index in np.ndindex(dout.shape):
            dx[index] = dout[index] * mask[index]
    return dx


# ---- fully connected (section 3.5) ---------------------------------------------------------

def linear_forward_naive(x, w, b):
    """out[n, m] = b[m] + sum_d x[n, d] w[m, d], with x flattened to (N, D); cache = (x, w)."""
    x2d = x.reshape(x.shape[0], -1)
    out = np.zeros((x2d.shape[0], w.shape[0]), dtype=x.dtype)
    for n, m in itertools.product(range(out.shape[0]), range(out.shape[1])):
        out[n, m] = b[m] + sum(x2d[n, d] * w[m, d] for d in range(w.shape[1]))
    return out, (x, w)


def linear_backward_naive(dout, cache):
    """dx[n, d] = sum_m dout[n, m] w[m, d]; dw[m, d] = sum_n dout[n, m] x[n, d]; db = sum_n dout."""
    x, w = cache
    x2d = x.reshape(x.shape[0], -1)
    dx, dw = np.zeros_like(x2d), np.zeros_like(w)
    db = np.zeros(w.shape[0], dtype=w.dtype)
    for n, m in itertools.product(range(dout.shape[0]), range(dout.shape[1])):
        for d in range(w.shape[1]):
            dx[n, d] += dout[n, m] * w[m, d]
            dw[m, d] += dout[n, m] * x2d[n, d]
        db[m] += dout[n, m]
    return dx.reshape(x.shape), dw, db


# ---- softmax cross-entropy (sections 3.5, 5) -----------------------------------------------

def softmax_cross_entropy_naive(logits, labels):
    """Mean over the batch of -log softmax(logits[n])[labels[n]], and d loss / d logits.

    Row by row: p = exp(z - max z) / sum exp(z - max z); loss_n = -log p[label];
    d loss_n / d z = p - onehot(label); both averaged over the N rows.
    """
    N, classes = logits.shape
    loss = 0.0
    dlogits = np.zeros_like(logits)
    for n in range(N):
        z = logits[n]
        e = np.exp(z - z.max())  # subtracting the max changes nothing but avoids overflow
        p = e / e.sum()
        loss += -np.log(p[labels[n]])
        for c in range(classes):
            dlogits[n, c] = (p[c] - (1.0 if c == labels[n] else 0.0)) / N
    return logits.dtype.type(loss / N), dlogits
