"""Dropout (section 4.2): each hidden unit is zeroed with probability p during training.

tinyalex uses *inverted* dropout: at train time the kept units are scaled by 1 / (1 - p), so
at test time the layer is the identity. The paper instead multiplies the outputs by 0.5 at
test time; both give the same expected activation.
"""

from __future__ import annotations

import numpy as np

from tinyalex.backend import get_array_module
from tinyalex.layers._checks import check_array, check_same_shape


def dropout_forward(x, p: float = 0.5, train: bool = True, rng=None):
    """Inverted dropout.

    Inputs: x any shape; p the drop probability in [0, 1); train: False makes it the identity;
        rng: a numpy.random.Generator (or cupy.random.Generator) drawing the mask; None uses a
        fresh unseeded NumPy generator. A NumPy generator also works for CuPy arrays: the mask
        is drawn on the host and copied over, which keeps CPU and GPU runs identical.
    Returns: out (same shape); cache = mask (x's dtype, values 0 or 1/(1-p)), or None when the
        layer was the identity.
    """
    layer = "dropout_forward"
    check_array(layer, "x", x, tuple(range(1, 9)))
    if not (isinstance(p, (int, float)) and 0 <= p < 1):
        raise ValueError(f"{layer}: p is the drop probability and must be in [0, 1), got {p!r}")
    if not train or p == 0:
        return x.copy(), None
    xp = get_array_module(x)
    rng = np.random.default_rng() if rng is None else rng
    keep = rng.random(x.shape, dtype=np.float32) >= p
    mask = xp.asarray(keep).astype(x.dtype) * x.dtype.type(1 / (1 - p))
    return x * mask, mask


def dropout_backward(dout, cache):
    """dx = dout * mask (the identity, as a copy, when forward was the identity)."""
    mask = cache
    if mask is None:
        return dout.copy()
    check_same_shape("dropout_backward", "dout", dout, mask.shape)
    return dout * mask
