"""Local response normalization across channels (section 3.3), the paper's formula.

    b[i] = a[i] / (k + alpha * sum_{j = max(0, i - n//2)}^{min(N - 1, i + n//2)} a[j]^2) ^ beta

for every image and pixel (x, y), over the N channels; the paper uses k = 2, n = 5,
alpha = 1e-4, beta = 0.75. A strongly active map damps its neighbours' response at the same
position: "lateral inhibition", as real neurons do.

The alpha convention: here alpha multiplies the plain *sum* of squares, as in the paper,
Chainer and TensorFlow's ``lrn``. Caffe, cuda-convnet and PyTorch's ``local_response_norm``
divide their alpha by n (their window term is an average), so

    tinyalex alpha = PyTorch alpha / n        (PyTorch alpha = paper alpha * n = 5e-4)

and PyTorch's default k is 1, not the paper's 2.

The backward pass. With s[i] = k + alpha * sum_{j in window(i)} a[j]^2 (the "scale") and a
window that is symmetric (j is in window(i) exactly when i is in window(j)),

    da[j] = g[j] s[j]^-beta  -  2 alpha beta a[j] sum_{i in window(j)} g[i] a[i] s[i]^(-beta-1)

The first term treats the scale as a constant; the second is how a[j] changes the scale of
every neighbour i whose window holds it. a[i] s[i]^(-beta-1) is b[i] / s[i], so the forward
pass's output and scale are all the backward pass needs.
"""

from __future__ import annotations

from tinyalex.backend import get_array_module
from tinyalex.layers._checks import check_array, check_lrn_args, check_same_shape


def channel_window_sum(a, n: int):
    """sum_{j = i - n//2}^{i + n//2} a[:, j] for every channel i, zero outside [0, C).

    a (N, C, H, W) -> (N, C, H, W): pad the channel axis with n//2 zeros on each side and
    add up the n shifted copies.
    """
    xp = get_array_module(a)
    C, half = a.shape[1], n // 2
    padded = xp.pad(a, ((0, 0), (half, half), (0, 0), (0, 0)))
    return sum(padded[:, offset : offset + C] for offset in range(n))


def lrn_forward(x, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
    """Local response normalization across channels, paper section 3.3.

    Inputs: x (N, C, H, W); n odd window size (channels); k, alpha, beta the paper's constants
        (alpha NOT divided by n; see the module docstring to convert from PyTorch/Caffe).
    Returns: out (N, C, H, W); cache = (x, out, scale, n, alpha, beta) with
        scale = k + alpha * (window sum of x^2), so that out = x * scale^-beta.
    """
    check_array("lrn_forward", "x", x, 4)
    check_lrn_args("lrn_forward", n, k, alpha, beta)
    scale = k + alpha * channel_window_sum(x * x, n)
    out = x * scale**-beta
    return out, (x, out, scale, n, alpha, beta)


def lrn_backward(dout, cache):
    """Gradient of lrn_forward (the formula of the module docstring).

    Inputs: dout (N, C, H, W); cache from lrn_forward. Returns dx (N, C, H, W).
    """
    x, out, scale, n, alpha, beta = cache
    check_same_shape("lrn_backward", "dout", dout, x.shape)
    neighbours = channel_window_sum(dout * out / scale, n)  # sum_i g[i] a[i] s[i]^(-beta-1)
    return dout * scale**-beta - 2 * alpha * beta * x * neighbours
