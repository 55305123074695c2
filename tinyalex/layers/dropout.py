"""Dropout (section 4.2): each hidden unit is zeroed with probability p during training.

"The neurons which are dropped out in this way do not contribute to the forward pass and do
not participate in back-propagation": every training case sees a different thinned network,
so a unit cannot rely on particular other units being present. AlexNet drops the outputs of
fc6 and fc7 with p = 0.5.

tinyalex uses *inverted* dropout: at train time the kept units are scaled by 1 / (1 - p), so
at test time the layer is the identity. The paper instead multiplies the outputs by 0.5 at
test time; both give the same expected activation.
"""

from __future__ import annotations

import numpy as np

from tinyalex.backend import get_array_module
from tinyalex.layers._checks import check_array, check_dropout_p, check_same_shape


def dropout_forward(x, p: float = 0.5, train: bool = True, rng=None):
    """Inverted dropout.

    Inputs: x any shape; p the drop probability in [0, 1); train: False makes it the identity;
        rng: where the randomness comes from: anything with ``random(shape, dtype)``
        returning uniform numbers in [0, 1) -- a ``numpy.random.Generator``, or the model's
        counter-based noise; None uses a fresh, unseeded NumPy generator.
    Returns: out (same shape); cache = mask (x's dtype, values 0 or 1/(1-p)), or None when the
        layer was the identity.
    """
    check_array("dropout_forward", "x", x, tuple(range(1, 9)))
    check_dropout_p("dropout_forward", p)
    if not train or p == 0:
        return x.copy(), None
    xp = get_array_module(x)
    rng = np.random.default_rng() if rng is None else rng
    keep = xp.asarray(rng.random(x.shape, dtype=np.float32)) >= p  # each unit kept w.p. 1 - p
    mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - p))  # 0 or 1/(1-p)
    return x * mask, mask


def dropout_backward(dout, cache):
    """dx = dout * mask (the identity, as a copy, when forward was the identity)."""
    mask = cache
    if mask is None:
        return dout.copy()
    check_same_shape("dropout_backward", "dout", dout, mask.shape)
    return dout * mask
