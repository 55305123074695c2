"""The paper's update rule (section 5), on one parameter: the textbook twin of the layers.

    v <- momentum * v - weight_decay * lr * w - lr * dL/dw
    w <- w + v

with momentum 0.9 and weight decay 0.0005 in the paper. The learning rate sits *inside* the
velocity (PyTorch keeps it outside; ``tinyalex.optim`` explains when that differs). It lives
beside the layers because it is chosen the same way: every implementation (this package,
``tinyalex.fast``, ``tinyalex.cuda.layers``) has an ``sgd_update`` with these arguments, and
``tinyalex.optim.SGD`` calls the one of the network's implementation.
"""

from __future__ import annotations


def sgd_update(w, v, g, lr: float, momentum: float, weight_decay: float) -> None:
    """The paper's rule on one parameter, in place (w, v, g: arrays of one shape and dtype):

        v <- momentum * v - weight_decay * lr * w - lr * g
        w <- w + v
    """
    v *= momentum
    v -= weight_decay * lr * w
    v -= lr * g
    w += v
