"""The CPU speed path: the layers of ``tinyalex.layers``, arranged to run fast on NumPy.

Same function names, arguments and results as the textbook package (the test
``tests/test_implementations.py`` compares every pair on odd shapes, float32 and float64);
read the textbook first, then this package for what changes and why. What exists only
for speed lives here:

    workspace.py   a recycling pool for the big arrays (fresh memory costs page faults)
    parallel.py    memory-bound work a few images at a time on every core; products in
                   pieces on the same threads
    blas.py        OpenBLAS at one thread while tinyalex's threads share out the pieces
    kernels.c      the memory-bound loops in C (max-pool, LRN, SGD, im2col/col2im),
    compiled.py    ... compiled on first use and called through ctypes; without a C
                   compiler, or with TINYALEX_COMPILED=0, the NumPy code below runs instead
    conv.py        strided-view im2col, products into preallocated memory, the faster
                   OpenBLAS product orientations, conv1's weight-only gradient
    lrn.py         the channel window sum without a padded copy, chunked
    pool.py        a running maximum, then a backward scan for the positions
    activation.py  ReLU, chunked into pooled memory
    linear.py      the fc products with the big axis first
    optim.py       the SGD update, chunked

Dropout, tanh and the loss are the textbook's own (re-exported): they are cheap (tanh is
only there for the comparison of figure 1).
"""

from tinyalex.fast.activation import relu_backward, relu_forward
from tinyalex.fast.conv import col2im, conv_backward, conv_forward, conv_weight_grads, im2col
from tinyalex.fast.linear import linear_backward, linear_forward
from tinyalex.fast.lrn import lrn_backward, lrn_forward
from tinyalex.fast.optim import sgd_update
from tinyalex.fast.pool import maxpool_backward, maxpool_forward
from tinyalex.layers.activation import tanh_backward, tanh_forward
from tinyalex.layers.dropout import dropout_backward, dropout_forward
from tinyalex.layers.loss import log_softmax, softmax, softmax_cross_entropy

__all__ = [
    "col2im", "conv_backward", "conv_forward", "conv_weight_grads", "dropout_backward",
    "dropout_forward", "im2col", "linear_backward", "linear_forward", "log_softmax",
    "lrn_backward", "lrn_forward", "maxpool_backward", "maxpool_forward", "relu_backward",
    "relu_forward", "sgd_update", "softmax", "softmax_cross_entropy", "tanh_backward",
    "tanh_forward",
]
