"""The layers on tinyalex's CUDA kernels: on a GPU for CuPy arrays, on the CPU emulator for NumPy.

Same function names, arguments and results as ``tinyalex.layers`` (the test
``tests/test_implementations.py`` compares every pair), float32 only. What runs where:

    im2col, col2im         kernels/im2col.cu   (one thread per output element)
    LRN forward/backward   kernels/lrn.cu
    max-pool fwd/backward  kernels/maxpool.cu
    matrix products        cuBLAS through CuPy (``xp.matmul``); NumPy's BLAS on the emulator
    dropout's numbers      kernels/philox.cu (chosen by the model: see tinyalex.noise)
    ReLU, tanh, dropout,   the textbook's array code, which CuPy runs as its own elementwise
    fc                     and cuBLAS kernels
    loss                   the textbook's arithmetic, with the label check moved off the GPU
    SGD update             kernels/sgd.cu: one pass instead of six (``sgd_update``)

The convolution is the textbook's arithmetic with im2col and col2im swapped for kernels: with
the (C*KH*KW, N*OH*OW) column layout each group is ONE plain 2-d product for the output, one
for the weight gradient and one for the input gradient, over the whole batch -- the shape
cuBLAS runs fastest. On NumPy arrays (``impl="cuda"`` on a CPU, or ``TINYALEX_KERNELS=emulate``)
the kernels run through ``tinyalex.cuda.emulator``: slow, but the very same CUDA source, so a
laptop can check and step through what a GPU runs.

Memory traffic per convolution beyond the products, on a GPU: im2col writes the columns once;
the forward writes the product kernel-axis first, (F, N*OH*OW), and ONE elementwise pass adds
the bias while it transposes that into the network's (N, F, OH, OW); the backward makes ONE
transposed copy of dout, (F, N*OH*OW), which serves the bias gradient (a row sum of
contiguous rows) and both products. cuBLAS reads transposed operands (``.T`` views) in place,
without copies. Nothing here reads a value back to the host: a training step on a GPU only
queues work (see tinyalex.cuda.staging for the batches and the running loss).
"""

from __future__ import annotations

import numpy as np

from tinyalex.backend import get_array_module, is_gpu_array
from tinyalex.cuda import ops
from tinyalex.layers._checks import (
    check_array,
    check_conv_args,
    check_lrn_args,
    check_pool_args,
    check_same_shape,
)

# ReLU, tanh, dropout and the fully connected layers are the textbook's code: on CuPy arrays
# each is a CuPy elementwise kernel or a cuBLAS product already.
from tinyalex.layers.activation import relu_backward, relu_forward, tanh_backward, tanh_forward
from tinyalex.layers.conv import conv_output_size
from tinyalex.layers.dropout import dropout_backward, dropout_forward
from tinyalex.layers.linear import linear_backward, linear_forward
from tinyalex.layers.loss import check_labels, cross_entropy, log_softmax, softmax

__all__ = [
    "col2im", "conv_backward", "conv_forward", "conv_weight_grads", "dropout_backward",
    "dropout_forward", "im2col", "linear_backward", "linear_forward", "log_softmax",
    "lrn_backward", "lrn_forward", "maxpool_backward", "maxpool_forward", "relu_backward",
    "relu_forward", "set_tf32", "sgd_update", "softmax", "softmax_cross_entropy",
    "tanh_backward", "tanh_forward",
]


def set_tf32(enabled: bool) -> None:
    """Let cuBLAS round float32 inputs of every matrix product to TF32 (True) or not (False).

    TF32 keeps float32's range but 10 bits of mantissa (about 3 decimal digits) inside the
    tensor cores of Ampere and newer GPUs, for several times the float32 product rate; the
    results differ from float32 in the fourth digit. A process-wide CuPy setting (like
    PyTorch's ``torch.backends.cuda.matmul.allow_tf32``), off by default: call it where a
    program starts, never on import. The kernels of kernels/*.cu are float32 either way.
    """
    import cupy
    linalg = cupy._core._routines_linalg  # where CuPy keeps its compute types

    compute_type = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
    cupy._core.set_compute_type(np.float32, compute_type)


def sgd_update(w, v, g, lr: float, momentum: float, weight_decay: float) -> None:
    """Equals ``tinyalex.layers.sgd_update`` bit for bit, in one pass (kernels/sgd.cu): in place."""
    ops.for_array(w).sgd_update(w, v, g, lr, momentum, weight_decay)


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """Equals ``tinyalex.layers.im2col``; kernels/im2col.cu."""
    return ops.for_array(x).im2col(x, kh, kw, stride, pad)


def col2im(cols, x_shape, kh: int, kw: int, stride: int, pad: int):
    """Equals ``tinyalex.layers.col2im``; kernels/im2col.cu."""
    return ops.for_array(cols).col2im(cols, x_shape, kh, kw, stride, pad)


def conv_forward(x, w, b, stride: int = 1, pad: int = 0, groups: int = 1):
    """Equals ``tinyalex.layers.conv_forward`` (same out, same cache), im2col on a kernel."""
    check_conv_args("conv_forward", x, w, b, stride, pad, groups)
    xp = get_array_module(x)
    N, _, H, W = x.shape
    F, Cg, KH, KW = w.shape
    G, K = groups, Cg * KH * KW
    OH, OW = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    cols = im2col(x, KH, KW, stride, pad)  # (G*K, N*OH*OW)
    w_rows = w.reshape(G, F // G, K)
    out_t = xp.empty((F, N * OH * OW), dtype=x.dtype)  # the output, kernel axis first
    for g in range(G):  # one (F/G, K) @ (K, N*OH*OW) product per group
        xp.matmul(w_rows[g], cols[g * K : (g + 1) * K], out=out_t[g * F // G : (g + 1) * F // G])
    out = xp.empty((N, F, OH, OW), dtype=x.dtype)
    # One pass: read (F, N, OH, OW) in place as (N, F, OH, OW), add the bias, write NCHW.
    xp.add(out_t.reshape(F, N, OH, OW).transpose(1, 0, 2, 3), b.reshape(1, F, 1, 1), out=out)
    return out, (x.shape, w, cols, stride, pad, groups)


def _conv_grads(dout, cache, need_dx: bool):
    """(dx or None, dw, db) of conv_forward: three plain products per group, col2im on a kernel."""
    x_shape, w, cols, stride, pad, groups = cache
    (N, _, H, W), (F, Cg, KH, KW) = x_shape, w.shape
    G, K = groups, Cg * KH * KW
    OH, OW = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    check_same_shape("conv_backward", "dout", dout, (N, F, OH, OW))
    xp = get_array_module(dout)
    dout_t = xp.ascontiguousarray(dout.transpose(1, 0, 2, 3)).reshape(F, -1)  # (F, N*P)
    db = dout_t.sum(axis=1)  # (F,): a sum along contiguous rows
    w_rows = w.reshape(G, F // G, K)
    dw = xp.empty((G, F // G, K), dtype=w.dtype)
    dcols = xp.empty((G * K, dout_t.shape[1]), dtype=dout.dtype) if need_dx else None
    for g in range(G):
        dout_g = dout_t[g * F // G : (g + 1) * F // G]  # (F/G, N*P)
        xp.matmul(dout_g, cols[g * K : (g + 1) * K].T, out=dw[g])  # (F/G, K)
        if need_dx:
            xp.matmul(w_rows[g].T, dout_g, out=dcols[g * K : (g + 1) * K])  # (K, N*P)
    dx = col2im(dcols, x_shape, KH, KW, stride, pad) if need_dx else None
    return dx, dw.reshape(w.shape), db


def conv_backward(dout, cache):
    """Equals ``tinyalex.layers.conv_backward``: (dx, dw, db)."""
    return _conv_grads(dout, cache, need_dx=True)


def conv_weight_grads(dout, cache):
    """Equals ``tinyalex.layers.conv_weight_grads``: (dw, db), never computing dx."""
    _, dw, db = _conv_grads(dout, cache, need_dx=False)
    return dw, db


def lrn_forward(x, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
    """Equals ``tinyalex.layers.lrn_forward`` (same out, same cache); kernels/lrn.cu."""
    check_array("lrn_forward", "x", x, 4)
    check_lrn_args("lrn_forward", n, k, alpha, beta)
    out, scale = ops.for_array(x).lrn_forward(x, n, k, alpha, beta)
    return out, (x, out, scale, n, alpha, beta)


def lrn_backward(dout, cache):
    """Equals ``tinyalex.layers.lrn_backward``; kernels/lrn.cu."""
    x, out, scale, n, alpha, beta = cache
    check_same_shape("lrn_backward", "dout", dout, x.shape)
    return ops.for_array(dout).lrn_backward(dout, x, out, scale, n, alpha, beta)


def maxpool_forward(x, size: int = 3, stride: int = 2):
    """Equals ``tinyalex.layers.maxpool_forward`` (same out, same cache); kernels/maxpool.cu."""
    check_pool_args("maxpool_forward", x, size, stride)
    out, argmax = ops.for_array(x).maxpool_forward(x, size, stride)
    return out, (x.shape, argmax, size, stride)


def maxpool_backward(dout, cache):
    """Equals ``tinyalex.layers.maxpool_backward``; kernels/maxpool.cu."""
    x_shape, argmax, size, stride = cache
    check_same_shape("maxpool_backward", "dout", dout, argmax.shape)
    return ops.for_array(dout).maxpool_backward(dout, argmax, x_shape, size, stride)



def softmax_cross_entropy(logits, labels):
    """Equals ``tinyalex.layers.softmax_cross_entropy`` (loss, dlogits), without a GPU read-back.

    The textbook checks the labels' range by reading their minimum and maximum, which on a
    GPU waits for every queued kernel. Here labels given as a NumPy array are checked on the
    host (the same one-line ValueError), then copied; labels already on the GPU are checked
    there without a read: an out-of-range label makes the loss NaN, which the training loop
    reports (``tinyalex.cuda.staging`` checks its labels on the host before the copy).
    The arithmetic is the textbook's (``cross_entropy``).
    """
    layer = "softmax_cross_entropy"
    check_array(layer, "logits", logits, 2)
    xp = get_array_module(logits)
    labels = labels if hasattr(labels, "dtype") else np.asarray(labels)
    on_gpu = is_gpu_array(labels)
    check_labels(layer, labels, *logits.shape, check_range=not on_gpu)
    if not on_gpu:  # checked on the host: copy
        return cross_entropy(logits, xp.asarray(labels))
    classes = logits.shape[1]
    out_of_range = ((labels < 0) | (labels >= classes)).any()  # a 0-d flag, never read here
    loss, dlogits = cross_entropy(logits, labels.clip(0, classes - 1))  # indexing stays inside
    return xp.where(out_of_range, loss.dtype.type(np.nan), loss), dlogits
