"""Lesson 4, local response normalization (``notebooks/04_local_response_normalization.ipynb``).

Exercises: LRN's forward and backward passes (section 3.3's formula) and PyTorch's alpha
convention converted to the paper's.
"""


from __future__ import annotations

import numpy as np

from tinyalex import layers
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    dims,
    first_match,
    randn,
    register,
)

LESSON = Lesson(
    4, "04_local_response_normalization.ipynb", "Local response normalization",
    ("3.3",),
    "the formula and its backward pass, the three alpha conventions, a gradient check "
    "with a large alpha, an ablation")


# ---- the exercises -------------------------------------------------------------------------

def _lrn_cases():
    # (x shape, n, k, alpha, beta, scale of x): the paper's constants, then large alphas, where
    # the normalisation (and the gradient's second term) is big enough to see
    values = [((2, 7, 3, 4), 5, 2.0, 1e-4, 0.75, 3.0), ((1, 6, 2, 3), 3, 1.0, 0.3, 0.75, 1.0),
              ((2, 9, 2, 2), 5, 2.0, 0.1, 0.75, 1.5), ((1, 2, 3, 3), 5, 1.0, 0.5, 0.6, 1.0),
              ((1, 8, 3, 2), 5, 2.0, 0.2, 1.0, 1.0)]
    return [Case((randn(xs, seed, scale), n, k, alpha, beta),
                 label=f"x {dims(xs)}, n={n}, k={k}, alpha={alpha}, beta={beta}")
            for seed, (xs, n, k, alpha, beta, scale) in enumerate(values)]


def _own_lrn_forward(x, n, k, alpha, beta):
    return layers.lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)[0]


def _lrn_window_sums(x, lows, highs):
    """sum over channels lows[i] .. highs[i] of x^2 for every channel i (no clipping done)."""
    C = x.shape[1]
    return np.stack([(x**2)[:, lows[i] : highs[i] + 1].sum(axis=1) for i in range(C)], axis=1)


def _diagnose_lrn_forward(case, got, want):
    x, n, k, alpha, beta = case.args
    C, half = x.shape[1], n // 2
    clip = [max(0, i - half) for i in range(C)], [min(C - 1, i + half) for i in range(C)]
    wrapped = sum(np.roll(x**2, shift, axis=1) for shift in range(-half, half + 1))
    wide = _lrn_window_sums(x, [max(0, i - n) for i in range(C)], [min(C - 1, i + n)
                                                                   for i in range(C)])
    ahead = _lrn_window_sums(x, list(range(C)), [min(C - 1, i + n - 1) for i in range(C)])
    s = _lrn_window_sums(x, *clip)
    return first_match(got["out"], [
        ("your LRN uses alpha/n (the PyTorch/Caffe convention); the paper's alpha multiplies "
         "the plain sum of squares", _own_lrn_forward(x, n, k, alpha / n, beta)),
        ("your channel window wraps around; it stops at the first and last channel: "
         "max(0, i - n//2) .. min(C - 1, i + n//2)", x / (k + alpha * wrapped) ** beta),
        ("your window spans n channels on EACH side; it spans n in all, n//2 on each side",
         x / (k + alpha * wide) ** beta),
        ("your window starts at channel i; it is centred on i (i - n//2 .. i + n//2)",
         x / (k + alpha * ahead) ** beta),
        ("the denominator is raised to the power beta: (k + alpha * sum)^beta",
         x / (k + alpha * s)),
        ("k is missing: (k + alpha * sum)^beta", x / (alpha * s) ** beta),
        ("the sum is over the squares a[j]^2 of the neighbours",
         x / (k + alpha * _lrn_window_sums(np.sqrt(np.abs(x)), *clip)) ** beta),
        ("the window holds the neighbours AND channel i itself",
         x / (k + alpha * (s - x**2)) ** beta),
    ])


def lrn_forward(x, n, k, alpha, beta):
    N, C, H, W = x.shape
    squares = x**2
    window_sum = np.zeros_like(x)
    for i in range(C):
        low, high = max(0, i - n // 2), min(C - 1, i + n // 2)  # clipped at the edges
        window_sum[:, i] = squares[:, low : high + 1].sum(axis=1)
    return x / (k + alpha * window_sum) ** beta  # the paper's alpha: no division by n


register(Exercise(
    name="lrn_forward", lesson=4,
    answers=(layers.lrn.channel_window_sum, layers.lrn_forward,),
    task="local response normalization across channels, the paper's formula (section 3.3)",
    signature="def lrn_forward(x, n, k, alpha, beta):",
    cases=_lrn_cases, outputs=("out",),
    reference=_own_lrn_forward, reference_name="tinyalex.layers.lrn_forward",
    solution=lrn_forward, diagnose=_diagnose_lrn_forward,
    hint="For each channel i sum x[:, j]**2 over j = max(0, i - n//2) .. min(C-1, i + n//2); "
         "then out = x / (k + alpha * sum)**beta, with alpha NOT divided by n."))


def _lrn_backward_cases():
    cases = []
    for case in _lrn_cases()[1:]:  # the large alphas: the second term is big enough to see
        x = case.args[0]
        dout = randn(x.shape, len(cases) + 60)
        cases.append(Case((dout, *case.args), label=case.label))
    return cases


def _own_lrn_backward(dout, x, n, k, alpha, beta):
    return layers.lrn_backward(dout, layers.lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)[1])


def _diagnose_lrn_backward(case, got, want):
    dout, x, n, k, alpha, beta = case.args
    scale = k + alpha * layers.lrn.channel_window_sum(x * x, n)
    first = dout * scale**-beta
    second = want["dx"] - first  # -2 alpha beta a[j] sum_i g[i] a[i] s[i]^(-beta-1)
    own_scale = -2 * alpha * beta * x * layers.lrn.channel_window_sum(dout * x, n) \
        * scale ** (-beta - 1)
    return first_match(got["dx"], [
        ("the second (cross-channel) term of the LRN gradient is missing: a[j] also changes "
         "the scale s[i] of every neighbour i whose window holds it", first),
        ("the second term has the wrong sign: dx[j] = g[j] s[j]^-beta MINUS 2 alpha beta a[j] "
         "sum_i g[i] a[i] s[i]^(-beta-1)", first - second),
        ("the first term g[j] s[j]^-beta is missing", second),
        ("the factor 2 is missing from the second term (d a^2 / da = 2a)", first + second / 2),
        ("beta is missing from the second term (d s^-beta / ds = -beta s^(-beta-1))",
         first + second / beta),
        ("your gradient uses alpha/n (the PyTorch/Caffe convention); the paper's alpha "
         "multiplies the plain sum", _own_lrn_backward(dout, x, n, k, alpha / n, beta)),
        ("the second term sums over the neighbours i of j, not only i = j",
         first - 2 * alpha * beta * x * dout * x * scale ** (-beta - 1)),
        ("inside the second term's sum each neighbour's own scale s[i] appears, not s[j]",
         first + own_scale),
    ])


def lrn_backward(dout, x, n, k, alpha, beta):
    N, C, H, W = x.shape
    squares = x**2
    scale = np.zeros_like(x)
    for i in range(C):
        low, high = max(0, i - n // 2), min(C - 1, i + n // 2)
        scale[:, i] = k + alpha * squares[:, low : high + 1].sum(axis=1)
    # dx[j] = g[j] s[j]^-beta - 2 alpha beta x[j] sum_{i in window(j)} g[i] x[i] s[i]^(-beta-1)
    term = dout * x * scale ** (-beta - 1)
    neighbours = np.zeros_like(x)
    for j in range(C):
        low, high = max(0, j - n // 2), min(C - 1, j + n // 2)  # the window is symmetric
        neighbours[:, j] = term[:, low : high + 1].sum(axis=1)
    return dout * scale**-beta - 2 * alpha * beta * x * neighbours


register(Exercise(
    name="lrn_backward", lesson=4,
    answers=(layers.lrn_backward,),
    task="the gradient of local response normalization (both terms)",
    signature="def lrn_backward(dout, x, n, k, alpha, beta):",
    cases=_lrn_backward_cases, outputs=("dx",),
    reference=_own_lrn_backward, reference_name="tinyalex.layers.lrn_backward",
    solution=lrn_backward, diagnose=_diagnose_lrn_backward,
    hint="dx[j] = g[j] s[j]^-beta - 2 alpha beta x[j] sum_{i in window(j)} g[i] x[i] "
         "s[i]^(-beta-1), with s[i] = k + alpha * (window sum of x^2 at i)."))


def _pytorch_cases():
    values = [((2, 7, 3, 3), 5, 1e-4, 0.75, 1.0, 40.0), ((1, 6, 2, 4), 3, 0.6, 0.75, 1.0, 1.0),
              ((2, 9, 2, 2), 5, 0.5, 0.75, 2.0, 2.0), ((1, 5, 3, 2), 5, 1.0, 0.5, 1.5, 1.0)]
    return [Case((randn(xs, seed, sc), size, alpha, beta, k),
                 label=f"x {dims(xs)}, size={size}, alpha={alpha}, beta={beta}, k={k}")
            for seed, (xs, size, alpha, beta, k, sc) in enumerate(values)]


def _diagnose_pytorch(case, got, want):
    x, size, alpha, beta, k = case.args
    return first_match(got["out"], [
        ("PyTorch's alpha multiplies the MEAN of the squares (sum / size): give tinyalex "
         "alpha / size", _own_lrn_forward(x, size, k, alpha, beta)),
        ("divide PyTorch's alpha by size; you multiplied", _own_lrn_forward(x, size, k,
                                                                            alpha * size, beta)),
        ("pass k through (PyTorch's default k is 1, the paper's 2)",
         _own_lrn_forward(x, size, 2.0, alpha / size, beta)),
    ])


def lrn_pytorch(x, size, alpha, beta, k):
    # PyTorch's local_response_norm(x, size, alpha, beta, k) averages the squares over the
    # window: its alpha multiplies sum / size. tinyalex's (the paper's) multiplies the sum.
    return layers.lrn_forward(x, n=size, k=k, alpha=alpha / size, beta=beta)[0]


register(Exercise(
    name="lrn_pytorch", lesson=4,
    task="PyTorch's local_response_norm(x, size, alpha, beta, k), with tinyalex's lrn_forward",
    signature="def lrn_pytorch(x, size, alpha, beta, k):",
    cases=_pytorch_cases, outputs=("out",),
    reference=lrn_pytorch, reference_name="tinyalex.layers.lrn_forward(alpha/size)",
    solution=lrn_pytorch, diagnose=_diagnose_pytorch,
    hint="PyTorch divides by (k + alpha/size * sum of squares)^beta."))
