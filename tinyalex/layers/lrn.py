"""Local response normalization across channels (section 3.3), the paper's formula.

    b[i] = a[i] / (k + alpha * sum_{j = max(0, i - n//2)}^{min(N - 1, i + n//2)} a[j]^2) ^ beta

for every image and pixel (x, y), over the N channels; the paper uses k = 2, n = 5,
alpha = 1e-4, beta = 0.75.

The alpha convention: here alpha multiplies the plain *sum* of squares, as in the paper,
Chainer and TensorFlow's `lrn`. Caffe, cuda-convnet and PyTorch's `local_response_norm`
divide their alpha by n (their window term is an average), so

    tinyalex alpha = PyTorch alpha / n        (PyTorch alpha = paper alpha * n = 5e-4)

and PyTorch's default k is 1, not the paper's 2.
"""

from __future__ import annotations

from tinyalex import workspace
from tinyalex.backend import get_array_module, kernel_ops
from tinyalex.layers._checks import check_array, check_positive_int, check_same_shape
from tinyalex.parallel import for_each_chunk


def channel_window_sum(a, n: int, out=None):
    """sum_{j = i - n//2}^{i + n//2} a[:, j] for every channel i, zero outside [0, C).

    a (N, C, H, W) -> (N, C, H, W), written into ``out`` when given. Starts from a copy of a
    (the window centre) and adds the channel slabs `offset` below and above, for
    offset = 1 .. n//2: a loop over window offsets only. Channels near the edges simply get
    fewer terms, which is the zero padding without building a padded copy.
    (A running sum via cumsum would need fewer passes, but subtracting two large running
    totals loses float32 precision; n = 5 costs only four adds.)
    """
    xp = get_array_module(a)
    if out is None:
        out = xp.empty_like(a)
    out[...] = a
    for offset in range(1, n // 2 + 1):
        out[:, offset:] += a[:, :-offset]  # channel i gets a[i - offset]
        out[:, :-offset] += a[:, offset:]  # channel i gets a[i + offset]
    return out


def lrn_forward(x, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
    """Local response normalization across channels, paper section 3.3.

    Inputs: x (N, C, H, W); n odd window size (channels); k, alpha, beta the paper's constants
        (alpha NOT divided by n; see the module docstring to convert from PyTorch/Caffe).
    Returns: out (N, C, H, W); cache = (x, out, scale, n, alpha, beta) where
        scale = k + alpha * (window sum of x^2), so that out = x * scale^-beta.
    """
    layer = "lrn_forward"
    check_array(layer, "x", x, 4)
    check_positive_int(layer, "n", n)
    if n % 2 == 0:
        raise ValueError(
            f"{layer}: n={n} is even; the window i - n//2 .. i + n//2 is symmetric only for "
            "odd n (the paper uses n=5)"
        )
    if k <= 0 or alpha < 0 or beta < 0:
        raise ValueError(f"{layer}: need k > 0, alpha >= 0, beta >= 0; got k={k}, "
                         f"alpha={alpha}, beta={beta}")
    ops = kernel_ops(x)
    if ops:
        out, scale = ops.lrn_forward(x, n, k, alpha, beta)
        return out, (x, out, scale, n, alpha, beta)

    xp = get_array_module(x)
    out = workspace.empty(x.shape, x.dtype, xp)  # recycled memory, see workspace.py
    scale = workspace.empty(x.shape, x.dtype, xp)

    def normalize(images):  # the images in slice `images`, written into out and scale
        xs, s = x[images], scale[images]
        channel_window_sum(xs * xs, n, out=s)
        s *= alpha
        s += k  # s = k + alpha * (window sum of x^2)
        xp.multiply(xs, s**-beta, out=out[images])

    for_each_chunk(normalize, x)  # a few images at a time, on every core (see parallel.py)
    return out, (x, out, scale, n, alpha, beta)


def lrn_backward(dout, cache):
    """Gradient of lrn_forward.

    With s[i] = scale[i] and the symmetric window (j is in window(i) iff i is in window(j)):

        dx[j] = dout[j] * s[j]^-beta
                - 2 alpha beta x[j] * sum_{i in window(j)} dout[i] * x[i] * s[i]^(-beta - 1)

    and x[i] * s[i]^(-beta-1) = out[i] / s[i], so no extra power is needed.
    Inputs: dout (N, C, H, W); cache from lrn_forward. Returns dx (N, C, H, W).
    """
    x, out, scale, n, alpha, beta = cache
    check_same_shape("lrn_backward", "dout", dout, x.shape)
    ops = kernel_ops(dout)
    if ops:
        return ops.lrn_backward(dout, x, out, scale, n, alpha, beta)

    xp = get_array_module(dout)
    dx = workspace.empty(dout.shape, dout.dtype, xp)

    def gradient(images):  # dx of the images in slice `images`
        g, o, s, xs = dout[images], out[images], scale[images], x[images]
        spread = channel_window_sum(g * o / s, n)  # sum over window(j) of g x s^(-beta-1)
        spread *= xs
        spread *= 2 * alpha * beta
        xp.subtract(g * s**-beta, spread, out=dx[images])

    for_each_chunk(gradient, dout)
    return dx
