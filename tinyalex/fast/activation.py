"""ReLU for speed; equal to ``tinyalex.layers.activation``.

The same ``maximum(x, 0)`` and ``dout * (out > 0)``, written into pooled memory
(``workspace.py``) a few images at a time on every core (``parallel.py``): NumPy's
elementwise loops use one core, and on AlexNet's large activations the page faults of fresh
output arrays cost as much as the arithmetic.
"""

from __future__ import annotations

import numpy as np

from tinyalex.fast import workspace
from tinyalex.fast.parallel import for_each_chunk
from tinyalex.layers._checks import check_array, check_same_shape


def relu_forward(x):
    """Equals ``tinyalex.layers.relu_forward``: (out, cache = out)."""
    check_array("relu_forward", "x", x, tuple(range(1, 9)))
    out = workspace.empty(x.shape, x.dtype)
    for_each_chunk(lambda rows: np.maximum(x[rows], 0, out=out[rows]), x)
    return out, out


def relu_backward(dout, cache):
    """Equals ``tinyalex.layers.relu_backward``."""
    out = cache
    check_same_shape("relu_backward", "dout", dout, out.shape)
    dx = workspace.empty(dout.shape, dout.dtype)
    for_each_chunk(lambda rows: np.multiply(dout[rows], out[rows] > 0, out=dx[rows]), dout)
    return dx
