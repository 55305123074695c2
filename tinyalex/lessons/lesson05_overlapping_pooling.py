"""Lesson 5, overlapping pooling (``notebooks/05_overlapping_pooling.ipynb``): exercises, figures.

Exercises: max-pooling forward and backward, and how many windows cover each pixel (section
3.4). Figures: the windows drawn on a grid, and where the gradient of a max goes back.
"""


from __future__ import annotations

import numpy as np

from tinyalex import layers
from tinyalex.lessons import plots
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    differs_only_where,
    dims,
    first_match,
    randn,
    register,
)

LESSON = Lesson(
    5, "05_overlapping_pooling.ipynb", "Overlapping pooling", ("3.4",),
    "windows drawn, the gradient's routing, overlapping against non-overlapping")


# ---- the lesson's figures ------------------------------------------------------------------

def draw_pool_windows(height: int, width: int, size: int, stride: int, title: str = ""):
    """The pooling windows drawn on a height x width grid, and how many cover each pixel."""
    plt = plots.pyplot()
    from matplotlib.patches import Rectangle

    OH, OW = layers.pool_output_size(height, size, stride), layers.pool_output_size(width, size,
                                                                                    stride)
    ones = np.ones((size * size, OH * OW))
    counts = layers.col2im(ones, (1, 1, height, width), size, size, stride, 0)[0, 0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.2))
    left.set(xlim=(-0.5, width - 0.5), ylim=(height - 0.5, -0.5), aspect="equal",
             xlabel="column (pixels)", ylabel="row (pixels)",
             title=f"{OH} x {OW} windows of {size}x{size}, stride {stride}")
    left.set_xticks(range(width))
    left.set_yticks(range(height))
    left.grid(color="lightgrey", lw=0.5)
    for k, (i, j) in enumerate(np.ndindex(OH, OW)):
        inset = 0.06 * (k % 3)  # nudge neighbours apart so shared edges stay visible
        left.add_patch(Rectangle((j * stride - 0.5 + inset, i * stride - 0.5 + inset), size - 0.1,
                                 size - 0.1, fill=False, lw=2, edgecolor=f"C{k % 10}"))
    plots.show_matrix(counts, ax=right, title="windows covering each pixel",
                      xlabel="column (pixels)", ylabel="row (pixels)", cmap="Oranges")
    fig.suptitle(title or ("overlapping" if stride < size else "non-overlapping")
                 + f" pooling: z = {size}, s = {stride}")
    fig.tight_layout()
    return fig


def plot_pool_routing(x, size: int, stride: int, dout=None):
    """One channel's input, its pooled output, and where the gradient goes back.

    x (H, W). dout (OH, OW), default all ones: then dx counts how many windows chose each
    pixel as their maximum.
    """
    plt = plots.pyplot()
    x = np.asarray(x, dtype=np.float64)
    out, cache = layers.maxpool_forward(x[None, None], size=size, stride=stride)
    dout = np.ones_like(out) if dout is None else np.asarray(dout, dtype=np.float64)[None, None]
    dx = layers.maxpool_backward(dout, cache)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.9), gridspec_kw=dict(
        width_ratios=[x.shape[1], out.shape[3] + 1, x.shape[1]]))
    ones = bool(np.all(dout == 1))
    plots.show_matrix(x, ax=axes[0], title="input x", xlabel="column", ylabel="row", fmt="{:.1f}")
    plots.show_matrix(out[0, 0], ax=axes[1], title=f"max-pool {size}/{stride}", xlabel="column",
                fmt="{:.1f}", cmap="Greens")
    plots.show_matrix(dx[0, 0], ax=axes[2], title="dx for dout = 1 everywhere" if ones else "dx",
                xlabel="column", fmt="{:.0f}" if ones else "{:.2f}", cmap="Oranges")
    fig.suptitle("the gradient of a max goes to the maximum; a pixel chosen by two windows "
                 "gets both")
    fig.tight_layout()
    return fig


# ---- the exercises -------------------------------------------------------------------------

def _pool_cases(ties: bool):
    values = [((2, 3, 9, 7), 3, 2), ((1, 2, 8, 6), 2, 2), ((1, 2, 7, 9), 3, 1),
              ((2, 1, 11, 11), 3, 2), ((1, 2, 9, 8), 2, 3)]
    cases = []
    for seed, (shape, size, stride) in enumerate(values):
        x = randn(shape, seed)
        if ties:  # ReLU outputs: many exact zeros, so ties between maxima are real
            x = np.maximum(np.round(x * 2) / 2, 0)
        label = f"x {dims(shape)}, window {size}, stride {stride}"
        cases.append(Case((x, size, stride), label=label + (" (ties)" if ties else "")))
    return cases


def _own_maxpool_forward(x, size, stride):
    return layers.maxpool_forward(x, size=size, stride=stride)[0]


def _diagnose_maxpool_forward(case, got, want):
    x, size, stride = case.args
    out = np.asarray(got["out"])
    H, W = x.shape[2:]
    if out.shape != want["out"].shape:
        if out.shape[2:] == ((H - size) // size + 1, (W - size) // size + 1):
            return ("windows start `stride` pixels apart; yours moved by the window size "
                    "(non-overlapping)")
        if out.shape[2:] == (-(-(H - size) // stride) + 1, -(-(W - size) // stride) + 1):
            return "only windows that fit entirely count: (H - size) // stride + 1"
        return None
    windows = np.stack([x[:, :, i : i + stride * out.shape[2] : stride,
                          j : j + stride * out.shape[3] : stride]
                        for i in range(size) for j in range(size)])
    return first_match(out, [("that is average pooling: take the max of each window",
                               windows.mean(axis=0))])


def maxpool_forward(x, size, stride):
    N, C, H, W = x.shape
    OH, OW = (H - size) // stride + 1, (W - size) // stride + 1
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for i in range(OH):
        for j in range(OW):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out


register(Exercise(
    name="maxpool_forward", lesson=5,
    answers=(layers.maxpool_forward,),
    task="max-pooling: the max of every size x size window, windows stride apart",
    signature="def maxpool_forward(x, size, stride):",
    cases=lambda: _pool_cases(False), outputs=("out",),
    reference=_own_maxpool_forward, reference_name="tinyalex.layers.maxpool_forward",
    solution=maxpool_forward, diagnose=_diagnose_maxpool_forward,
    hint="OH = (H - size) // stride + 1; out[..., i, j] is the max of x[..., i*stride : "
         "i*stride + size, j*stride : j*stride + size]."))


def _maxpool_backward_cases():
    cases = []
    for case in _pool_cases(True):
        x, size, stride = case.args
        out = _own_maxpool_forward(x, size, stride)
        cases.append(Case((randn(out.shape, len(cases) + 70), x, size, stride),
                          label=case.label))
    return cases


def _own_maxpool_backward(dout, x, size, stride):
    return layers.maxpool_backward(dout, layers.maxpool_forward(x, size=size, stride=stride)[1])


def _pool_variants(dout, x, size, stride):
    """Wrong answers: every tied maximum, the last maximum, average pooling's gradient."""
    N, C, OH, OW = dout.shape
    ties, last, average = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    for i in range(OH):
        for j in range(OW):
            rows, cols = slice(i * stride, i * stride + size), slice(j * stride, j * stride + size)
            window = x[:, :, rows, cols]
            is_max = window == window.max(axis=(2, 3), keepdims=True)
            g = dout[:, :, i, j][:, :, None, None]
            ties[:, :, rows, cols] += g * is_max
            flat = is_max.reshape(N, C, -1)
            last_k = flat.shape[2] - 1 - np.argmax(flat[:, :, ::-1], axis=2)
            one = np.zeros_like(flat, dtype=x.dtype)
            np.put_along_axis(one, last_k[:, :, None], 1.0, axis=2)
            last[:, :, rows, cols] += g * one.reshape(window.shape)
            average[:, :, rows, cols] += g / (size * size)
    return ties, last, average


def _diagnose_maxpool_backward(case, got, want):
    dout, x, size, stride = case.args
    routed = _own_maxpool_backward(np.ones_like(dout), x, size, stride)  # windows per pixel
    if differs_only_where(got["dx"], want["dx"], routed >= 2):
        return ("dx differs where windows overlap (a pixel that is the maximum of several "
                "windows): the gradient must add, not overwrite")
    ties, last, average = _pool_variants(dout, x, size, stride)
    return first_match(got["dx"], [
        ("every tied maximum received the gradient; the forward pass picked ONE (the first in "
         "row-major order, as np.argmax does), and only it gets the gradient", ties),
        ("on ties the FIRST maximum in row-major order gets the gradient (np.argmax's "
         "choice), not the last", last),
        ("that is average pooling's gradient (dout / size^2 on the whole window); max-pooling "
         "routes all of it to the maximum", average),
    ])


def maxpool_backward(dout, x, size, stride):
    N, C, OH, OW = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = x[n, c, i * stride : i * stride + size, j * stride : j * stride + size]
                    r, s = np.unravel_index(np.argmax(window), window.shape)  # the first max
                    dx[n, c, i * stride + r, j * stride + s] += dout[n, c, i, j]  # add up
    return dx


register(Exercise(
    name="maxpool_backward", lesson=5,
    answers=(layers.maxpool_backward,),
    task="route each window's gradient to its maximum, adding where windows overlap",
    signature="def maxpool_backward(dout, x, size, stride):",
    cases=_maxpool_backward_cases, outputs=("dx",),
    reference=_own_maxpool_backward, reference_name="tinyalex.layers.maxpool_backward",
    solution=maxpool_backward, diagnose=_diagnose_maxpool_backward,
    hint="For every window find the first maximum (np.argmax, then np.unravel_index) and add "
         "dout there with +=."))


def _coverage_cases():
    values = [(7, 7, 3, 2), (8, 6, 2, 2), (9, 5, 3, 1), (10, 11, 2, 3), (27, 27, 3, 2)]
    return [Case(v, label=f"{v[0]}x{v[1]}, window {v[2]}, stride {v[3]}") for v in values]


def _diagnose_coverage(case, got, want):
    height, width, size, stride = case.args
    counts = np.asarray(got["counts"])
    if counts.shape == (width, height) and height != width:
        return "the result has shape (width, height); it is (height, width), like an image"
    right = want["counts"]
    if counts.shape != right.shape:
        return None
    # windows that run past the bottom or right edge add counts only beyond the last
    # start of a whole window
    last_row = (layers.pool_output_size(height, size, stride) - 1) * stride
    last_col = (layers.pool_output_size(width, size, stride) - 1) * stride
    rows, cols = np.indices(counts.shape)
    if np.all(counts >= right) and differs_only_where(counts, right, (rows > last_row)
                                                       | (cols > last_col)):
        return ("count only the windows that fit entirely, (H - size) // stride + 1 of them "
                "per axis; yours also counts windows that run past the edge")
    return None


def _own_coverage(height, width, size, stride):
    # col2im adds each column entry back onto its pixel: with all ones, the window count
    OH, OW = (layers.pool_output_size(d, size, stride) for d in (height, width))
    ones = np.ones((size * size, OH * OW))
    return layers.col2im(ones, (1, 1, height, width), size, size, stride, 0)[0, 0].astype(int)


def pool_coverage(height, width, size, stride):
    # How many windows contain each pixel: add 1 over every window that fits.
    counts = np.zeros((height, width), dtype=np.int64)
    for i in range((height - size) // stride + 1):
        for j in range((width - size) // stride + 1):
            counts[i * stride : i * stride + size, j * stride : j * stride + size] += 1
    return counts


register(Exercise(
    name="pool_coverage", lesson=5,
    task="how many pooling windows contain each pixel",
    signature="def pool_coverage(height, width, size, stride):",
    cases=_coverage_cases, outputs=("counts",),
    reference=_own_coverage, reference_name="tinyalex.layers.col2im of ones",
    solution=pool_coverage, diagnose=_diagnose_coverage,
    hint="Start from zeros (height, width) and add 1 over every window that fits."))
