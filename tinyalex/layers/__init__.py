"""The layers of AlexNet, the textbook way: one file per mechanism of the paper.

Functional pairs in the style of CS231n: every forward returns ``(out, cache)``; every
backward takes ``(dout, cache)`` and returns the gradients with respect to forward's array
arguments, in their order. Nothing is stored in objects, and backward never modifies
``dout`` or the cache. The functions take NumPy or CuPy arrays (``xp``), float32 or float64,
and return the input's array type and dtype.

| file          | functions                                   | paper           |
|---------------|---------------------------------------------|-----------------|
| conv.py       | conv_forward / conv_backward (im2col)       | 3.2, 3.5, fig. 2 |
| activation.py | relu_* (and tanh_*, for figure 1)           | 3.1             |
| lrn.py        | lrn_forward / lrn_backward                  | 3.3             |
| pool.py       | maxpool_forward / maxpool_backward          | 3.4             |
| dropout.py    | dropout_forward / dropout_backward          | 4.2             |
| linear.py     | linear_forward / linear_backward            | 3.5             |
| loss.py       | softmax_cross_entropy                       | 3.5, 5          |
| sgd.py        | sgd_update, the update of one parameter     | 5               |
| naive.py      | the same, as plain loops (``*_naive``)      |                 |

This package is written to be read beside the paper; nothing in it exists for speed. The
same functions, arranged for speed, are in ``tinyalex.fast`` (CPU) and ``tinyalex.cuda.layers``
(the CUDA kernels); ``AlexNet(..., impl=...)`` chooses which ones a network calls.
"""

from tinyalex.layers.activation import relu_backward, relu_forward, tanh_backward, tanh_forward
from tinyalex.layers.conv import (
    col2im,
    conv_backward,
    conv_forward,
    conv_output_size,
    conv_weight_grads,
    im2col,
)
from tinyalex.layers.dropout import dropout_backward, dropout_forward
from tinyalex.layers.linear import linear_backward, linear_forward
from tinyalex.layers.loss import log_softmax, softmax, softmax_cross_entropy
from tinyalex.layers.lrn import lrn_backward, lrn_forward
from tinyalex.layers.pool import maxpool_backward, maxpool_forward, pool_output_size
from tinyalex.layers.sgd import sgd_update

# The functions every implementation (this package, tinyalex.fast, tinyalex.cuda.layers)
# provides with the same arguments and results.
LAYER_FUNCTIONS = (
    "conv_forward", "conv_backward", "conv_weight_grads", "im2col", "col2im",
    "relu_forward", "relu_backward", "tanh_forward", "tanh_backward", "lrn_forward", "lrn_backward",
    "maxpool_forward", "maxpool_backward", "dropout_forward", "dropout_backward",
    "linear_forward", "linear_backward", "softmax_cross_entropy", "softmax", "log_softmax",
    "sgd_update",
)

__all__ = [
    "LAYER_FUNCTIONS", "col2im", "conv_backward", "conv_forward", "conv_output_size",
    "conv_weight_grads", "dropout_backward", "dropout_forward", "im2col", "linear_backward",
    "linear_forward", "log_softmax", "lrn_backward", "lrn_forward", "maxpool_backward",
    "maxpool_forward", "pool_output_size", "relu_backward", "relu_forward", "sgd_update",
    "softmax", "softmax_cross_entropy", "tanh_backward", "tanh_forward",
]
