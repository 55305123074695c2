"""The layers of AlexNet as functional forward/backward pairs (CS231n style).

Every forward returns ``(out, cache)``; every backward takes ``(dout, cache)`` and returns the
gradients with respect to forward's array arguments, in their order. Nothing is stored in
objects, and backward never modifies ``dout`` or the cache. All functions accept NumPy and
CuPy arrays, float32 and float64, and return the input's array type and dtype.

| function pair                          | paper           |
|----------------------------------------|-----------------|
| conv_forward / conv_backward           | 3.5, fig. 2 (groups = the two-GPU split) |
| relu_forward / relu_backward           | 3.1             |
| lrn_forward / lrn_backward             | 3.3             |
| maxpool_forward / maxpool_backward     | 3.4             |
| dropout_forward / dropout_backward     | 4.2             |
| linear_forward / linear_backward       | 3.5             |
| softmax_cross_entropy                  | 3.5 (1000-way softmax), 5 |
"""

from tinyalex.layers.activation import relu_backward, relu_forward
from tinyalex.layers.conv import (
    col2im,
    col2im_wide,
    conv_backward,
    conv_forward,
    conv_output_size,
    conv_weight_grads,
    im2col,
    im2col_wide,
)
from tinyalex.layers.dropout import dropout_backward, dropout_forward
from tinyalex.layers.linear import linear_backward, linear_forward
from tinyalex.layers.loss import log_softmax, softmax, softmax_cross_entropy
from tinyalex.layers.lrn import channel_window_sum, lrn_backward, lrn_forward
from tinyalex.layers.pool import maxpool_backward, maxpool_forward, pool_output_size

__all__ = [
    "channel_window_sum",
    "col2im",
    "col2im_wide",
    "conv_backward",
    "conv_forward",
    "conv_output_size",
    "conv_weight_grads",
    "dropout_backward",
    "dropout_forward",
    "im2col",
    "im2col_wide",
    "linear_backward",
    "linear_forward",
    "log_softmax",
    "lrn_backward",
    "lrn_forward",
    "maxpool_backward",
    "maxpool_forward",
    "pool_output_size",
    "relu_backward",
    "relu_forward",
    "softmax",
    "softmax_cross_entropy",
]
