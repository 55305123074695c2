"""Lesson 2, convolution (``notebooks/02_convolution.ipynb``): its exercises and figure.

Exercises: the convolution as loops and its backward pass, im2col and col2im, grouped
convolution (the two GPUs of section 3.2). Figure: im2col drawn, one window followed into
its column.
"""


from __future__ import annotations

import numpy as np

from tinyalex import layers
from tinyalex.layers import naive
from tinyalex.lessons import plots
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    close,
    differs_only_where,
    dims,
    first_match,
    matches,
    randn,
    register,
)

LESSON = Lesson(
    2, "02_convolution.ipynb", "Convolution", ("3.2", "3.5"),
    "loops first, then im2col and one matrix product, the backward pass derived, "
    "grouped convolution as the two GPUs")


# ---- the lesson's figures ------------------------------------------------------------------

def draw_im2col(x, kh: int, kw: int, stride: int, pad: int, window=(0, 0)):
    """One image's channels (numbered pixels) and its im2col matrix, one window highlighted.

    x (1, C, H, W) with small C, H, W. Left: the padded input, with the window at output
    position ``window`` = (oh, ow) outlined; right: cols (C*kh*kw, OH*OW), that window's
    column outlined. The numbers are x's values, so each can be followed across.
    """
    plt = plots.pyplot()
    from matplotlib.patches import Rectangle

    x = np.asarray(x)
    C = x.shape[1]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))[0]
    cols = layers.im2col(x, kh, kw, stride, pad)
    OW = layers.conv_output_size(x.shape[3], kw, stride, pad)
    fig = plt.figure(figsize=(3 * C + 0.6 * cols.shape[1] + 1, max(3.5, 0.35 * cols.shape[0] + 1)))
    grid = fig.add_gridspec(1, C + 1, width_ratios=[x_pad.shape[2]] * C + [cols.shape[1]])
    oh, ow = window
    for c in range(C):
        ax = fig.add_subplot(grid[0, c])
        plots.show_matrix(x_pad[c], ax=ax, title=f"channel {c} (padded by {pad})",
                    xlabel="column", ylabel="row" if c == 0 else "", aspect="equal")
        ax.add_patch(Rectangle((ow * stride - 0.5, oh * stride - 0.5), kw, kh, fill=False,
                               edgecolor="red", linewidth=2.5))
    ax = fig.add_subplot(grid[0, C])
    ylabels = [f"c{c} ({i},{j})" for c in range(C) for i in range(kh) for j in range(kw)]
    plots.show_matrix(cols, ax=ax, title=f"cols = im2col(x): {cols.shape[0]} x {cols.shape[1]}",
                xlabel="window (oh, ow) = column", yticks=ylabels,
                xticks=[f"{k // OW},{k % OW}" for k in range(cols.shape[1])])
    ax.add_patch(Rectangle((oh * OW + ow - 0.5, -0.5), 1, cols.shape[0], fill=False,
                           edgecolor="red", linewidth=2.5))
    fig.suptitle(f"im2col: every {kh}x{kw} window (stride {stride}) becomes one column")
    fig.tight_layout()
    return fig


# ---- the exercises -------------------------------------------------------------------------

OVERWRITE = ("dx differs only where windows overlap (pixels inside two or more windows): the "
             "gradient must add up there (+=), not overwrite (=)")


# (x shape, w shape, stride, pad): odd, non-square, overlapping and not
_CONV_SHAPES = [((2, 3, 7, 5), (4, 3, 3, 3), 1, 1), ((1, 2, 9, 8), (3, 2, 4, 3), 2, 0),
                ((2, 3, 11, 10), (2, 3, 5, 5), 3, 2), ((1, 1, 6, 6), (2, 1, 2, 2), 2, 0)]


def _conv_cases():
    cases = []
    for seed, (xs, ws, stride, pad) in enumerate(_CONV_SHAPES):
        x, w, b = randn(xs, seed), randn(ws, seed + 10), randn(ws[:1], seed + 20)
        cases.append(Case((x, w, b, stride, pad), label=f"x {dims(x)}, w {dims(w)}, "
                          f"stride {stride}, pad {pad}, seed {seed}"))
    return cases


def _own_conv_forward_loops(x, w, b, stride, pad):
    return layers.conv_forward(x, w, b, stride=stride, pad=pad)[0]


def _conv_shape_problem(got_shape, x, w, stride, pad):
    N, F = x.shape[0], w.shape[0]
    for message, (s, p) in [
            ("the padding is missing: pad x with `pad` zeros on every side first", (stride, 0)),
            ("the stride is ignored: windows start `stride` pixels apart, so OH = "
             "(H + 2 pad - KH) // stride + 1", (1, pad))]:
        OH = layers.conv_output_size(x.shape[2], w.shape[2], s, p)
        OW = layers.conv_output_size(x.shape[3], w.shape[3], s, p)
        if tuple(got_shape) == (N, F, OH, OW):
            return message
    return None


def _diagnose_conv_forward(case, got, want):
    x, w, b, stride, pad = case.args
    out = np.asarray(got["out"])
    if out.shape != want["out"].shape:
        return _conv_shape_problem(out.shape, x, w, stride, pad)
    return first_match(out, [
        ("your output is a true convolution, with the kernel flipped; deep learning's "
         "'convolution' is a cross-correlation: out = sum w[f, c, i, j] x_pad[n, c, oh*s + i, "
         "ow*s + j], no flip", _own_conv_forward_loops(x, w[:, :, ::-1, ::-1].copy(), b,
                                                       stride, pad)),
        ("the bias b[f] is missing", _own_conv_forward_loops(x, w, 0 * b, stride, pad)),
        ("the bias is added once per window element; add b[f] once per output value",
         _own_conv_forward_loops(x, w, b * w[0].size, stride, pad)),
    ])


def conv_forward_loops(x, w, b, stride, pad):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    out = np.zeros((N, F, OH, OW), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    window = x_pad[n, :, i * stride : i * stride + KH, j * stride : j * stride + KW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


register(Exercise(
    name="conv_forward_loops", lesson=2,
    answers=(naive.conv_forward_naive,),
    task="a convolution (one group) as plain loops over images, kernels and positions",
    signature="def conv_forward_loops(x, w, b, stride, pad):",
    cases=_conv_cases, outputs=("out",),
    reference=_own_conv_forward_loops, reference_name="tinyalex.layers.naive.conv_forward_naive",
    solution=conv_forward_loops, diagnose=_diagnose_conv_forward,
    hint="Pad x with np.pad, then out[n, f, i, j] = sum(window * w[f]) + b[f] with window = "
         "x_pad[n, :, i*stride : i*stride + KH, j*stride : j*stride + KW]."))


def _conv_backward_cases():
    cases = []
    for seed, (xs, ws, stride, pad) in enumerate(_CONV_SHAPES):
        x, w = randn(xs, seed), randn(ws, seed + 10)
        out, _ = layers.conv_forward(x, w, np.zeros(ws[0]), stride=stride, pad=pad)
        dout = randn(out.shape, seed + 30)
        cases.append(Case((dout, x, w, stride, pad), label=f"x {dims(x)}, w {dims(w)}, "
                          f"stride {stride}, pad {pad}, seed {seed}"))
    return cases


def _own_conv_backward(dout, x, w, stride, pad):
    _, cache = layers.conv_forward(x, w, np.zeros(w.shape[0], dtype=x.dtype), stride=stride,
                                   pad=pad)
    return layers.conv_backward(dout, cache)


def _window_counts(x_shape, kh, kw, stride, pad):
    """How many windows hold each pixel: col2im of all ones, (N, C, H, W)."""
    OH = layers.conv_output_size(x_shape[2], kh, stride, pad)
    OW = layers.conv_output_size(x_shape[3], kw, stride, pad)
    ones = np.ones((x_shape[1] * kh * kw, x_shape[0] * OH * OW))
    return layers.col2im(ones, x_shape, kh, kw, stride, pad)


def _diagnose_conv_backward(case, got, want):
    dout, x, w, stride, pad = case.args
    dx, dw, db = (np.asarray(got[k]) for k in ("dx", "dw", "db"))
    N, C, H, W = x.shape
    if dx.shape == (N, C, H + 2 * pad, W + 2 * pad) and pad:
        return "dx has the padded shape: cut the padding off (dx_pad[:, :, pad:pad+H, pad:pad+W])"
    if not close(dx, want["dx"]):
        counts = _window_counts(x.shape, w.shape[2], w.shape[3], stride, pad)
        if differs_only_where(dx, want["dx"], counts >= 2):
            return OVERWRITE
        return first_match(dx, [("dx uses the kernel flipped; the backward pass of a "
                                  "cross-correlation adds g * w[f] onto the window, unflipped",
                                  _own_conv_backward(dout, x, w[:, :, ::-1, ::-1].copy(),
                                                     stride, pad)[0])])
    if not close(dw, want["dw"]):
        one_image = _own_conv_backward(dout[-1:], x[-1:], w, stride, pad)[1]
        if matches(dw, one_image):
            return "dw holds only the last image's part: add (+=) over every image and position"
        return None
    outputs = dout.shape[0] * dout.shape[2] * dout.shape[3]
    return first_match(db, [
        ("db is a mean; it is the sum of dout over images and positions (b[f] was added to "
         "every output of kernel f)", want["db"] / outputs),
        ("db sums over positions but averages over the images; it is the plain sum",
         want["db"] / dout.shape[0])])


def conv_backward_loops(dout, x, w, stride, pad):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))  # each bias was added to every output of its kernel
    _, _, OH, OW = dout.shape
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    rows = slice(i * stride, i * stride + KH)
                    cols = slice(j * stride, j * stride + KW)
                    g = dout[n, f, i, j]
                    dw[f] += g * x_pad[n, :, rows, cols]  # d out / d w = the window
                    dx_pad[n, :, rows, cols] += g * w[f]  # += : windows overlap
    return dx_pad[:, :, pad : pad + H, pad : pad + W], dw, db


register(Exercise(
    name="conv_backward_loops", lesson=2,
    answers=(naive.conv_backward_naive,),
    task="the gradients dx, dw, db of a convolution (one group), as plain loops",
    signature="def conv_backward_loops(dout, x, w, stride, pad):",
    cases=_conv_backward_cases, outputs=("dx", "dw", "db"),
    reference=_own_conv_backward, reference_name="tinyalex.layers.naive.conv_backward_naive",
    solution=conv_backward_loops, diagnose=_diagnose_conv_backward,
    hint="Walk the same loops as the forward pass; for each output value with gradient g add "
         "g * w[f] onto its window of dx_pad, and g * window onto dw[f]; db is a sum."))


def _im2col_cases():
    values = [((2, 3, 5, 6), 3, 2, 2, 1), ((1, 2, 7, 7), 3, 3, 2, 0), ((3, 1, 4, 5), 2, 2, 1, 1),
              ((2, 2, 9, 8), 4, 3, 3, 2)]
    return [Case((randn(xs, seed), kh, kw, stride, pad),
                 label=f"x {dims(xs)}, window {kh}x{kw}, stride {stride}, pad {pad}")
            for seed, (xs, kh, kw, stride, pad) in enumerate(values)]


def _cols_layouts(x, kh, kw, stride, pad):
    """tinyalex's cols, as (C, kh, kw, N, OH, OW)."""
    cols = layers.im2col(x, kh, kw, stride, pad)
    N, C = x.shape[:2]
    return cols.reshape(C, kh, kw, N, -1, cols.shape[1] // N)


def _diagnose_im2col(case, got, want):
    x, kh, kw, stride, pad = case.args
    cols, right = np.asarray(got["cols"]), want["cols"]
    if cols.shape == right.T.shape and cols.shape != right.shape:
        return ("you returned the transpose, (N*OH*OW, C*KH*KW); tinyalex's layout is "
                "(C*KH*KW, N*OH*OW): one ROW per (channel, window position), one COLUMN per "
                "window")
    if cols.shape != right.shape:
        return None
    six = _cols_layouts(x, kh, kw, stride, pad)  # (C, kh, kw, N, OH, OW)
    C, N = x.shape[1], x.shape[0]
    message = first_match(cols, [
        ("the rows are ordered (i, j, c); tinyalex's are (c, i, j): row (c*KH + i)*KW + j "
         "holds pixel (i, j) of channel c", six.transpose(1, 2, 0, 3, 4, 5).reshape(right.shape)),
        ("the columns are ordered (oh, ow, n); tinyalex's are (n, oh, ow): column "
         "(n*OH + oh)*OW + ow is window (oh, ow) of image n",
         six.transpose(0, 1, 2, 4, 5, 3).reshape(right.shape)),
        ("rows AND columns are in another order: rows (c, i, j), columns (n, oh, ow)",
         six.transpose(1, 2, 0, 4, 5, 3).reshape(right.shape)),
    ])
    if message is None and np.allclose(np.sort(cols, axis=None), np.sort(right, axis=None)):
        message = ("your matrix holds the right numbers in other places: check the order of "
                   f"the rows (c, i, j) and of the columns (n, oh, ow) (C={C}, N={N})")
    return message


def im2col(x, kh, kw, stride, pad):
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.zeros((C, kh, kw, N, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # pixel (i, j) of every window, of every image and channel: a strided slice
            patch = x_pad[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride]
            cols[:, i, j] = patch.transpose(1, 0, 2, 3)  # (N, C, OH, OW) -> (C, N, OH, OW)
    return cols.reshape(C * kh * kw, N * OH * OW)


register(Exercise(
    name="im2col", lesson=2,
    answers=(layers.im2col,),
    task="copy every window of x into a column: cols (C*KH*KW, N*OH*OW)",
    signature="def im2col(x, kh, kw, stride, pad):",
    cases=_im2col_cases, outputs=("cols",),
    reference=layers.im2col, reference_name="tinyalex.layers.im2col",
    solution=im2col, diagnose=_diagnose_im2col,
    hint="cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*stride + i, ow*stride + j]. Fill an "
         "array of shape (C, kh, kw, N, OH, OW) one (i, j) at a time with a strided slice, "
         "then reshape."))


def _col2im_cases():
    cases = []
    for case in _im2col_cases():
        x, kh, kw, stride, pad = case.args
        cols = randn(layers.im2col(x, kh, kw, stride, pad).shape, 40 + len(cases))
        cases.append(Case((cols, x.shape, kh, kw, stride, pad), label=case.label))
    return cases


def _diagnose_col2im(case, got, want):
    cols, x_shape, kh, kw, stride, pad = case.args
    dx = np.asarray(got["dx"])
    N, C, H, W = x_shape
    if dx.shape == (N, C, H + 2 * pad, W + 2 * pad) and pad:
        return "dx has the padded shape: cut the padding off (dx_pad[:, :, pad:pad+H, pad:pad+W])"
    if differs_only_where(dx, want["dx"], _window_counts(x_shape, kh, kw, stride, pad) >= 2):
        return OVERWRITE
    return None


def col2im(cols, x_shape, kh, kw, stride, pad):
    N, C, H, W = x_shape
    OH, OW = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    cols = cols.reshape(C, kh, kw, N, OH, OW)
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # += , not = : a pixel inside several windows gets one term from each
            dx_pad[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride] += (
                cols[:, i, j].transpose(1, 0, 2, 3))
    return dx_pad[:, :, pad : pad + H, pad : pad + W]


register(Exercise(
    name="col2im", lesson=2,
    answers=(layers.col2im,),
    task="the adjoint of im2col: add every column entry back onto its pixel",
    signature="def col2im(cols, x_shape, kh, kw, stride, pad):",
    cases=_col2im_cases, outputs=("dx",),
    reference=layers.col2im, reference_name="tinyalex.layers.col2im",
    solution=col2im, diagnose=_diagnose_col2im,
    hint="Undo im2col's reshape to (C, kh, kw, N, OH, OW); for each (i, j) add the slab back "
         "onto a strided slice of a zero, padded dx; finally cut the padding off."))


def _grouped_cases():
    values = [((2, 4, 7, 6), (6, 2, 3, 3), 2, 1, 1), ((1, 6, 8, 5), (9, 2, 3, 2), 3, 2, 0),
              ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1, 1), ((1, 4, 9, 9), (4, 2, 5, 5), 2, 2, 2)]
    cases = []
    for seed, (xs, ws, groups, stride, pad) in enumerate(values):
        args = (randn(xs, seed), randn(ws, seed + 10), randn(ws[:1], seed + 20), groups,
                stride, pad)
        cases.append(Case(args, label=f"x {dims(xs)}, w {dims(ws)}, groups {groups}, "
                                      f"stride {stride}, pad {pad}"))
    return cases


def _own_grouped_conv(x, w, b, groups, stride, pad):
    return layers.conv_forward(x, w, b, stride=stride, pad=pad, groups=groups)[0]


def _diagnose_grouped(case, got, want):
    x, w, b, groups, stride, pad = case.args
    if groups == 1:
        return None
    C, F = x.shape[1], w.shape[0]
    flip = np.concatenate([np.split(x, groups, axis=1)[g] for g in reversed(range(groups))], 1)
    return first_match(got["out"], [
        ("kernel block g must see channel block g; yours see the channel blocks in reverse",
         _own_grouped_conv(flip, w, b, groups, stride, pad)),
        ("the biases of each group are the matching block of b (b[g*F/groups : (g+1)*F/groups])",
         _own_grouped_conv(x, w, np.tile(b[: F // groups], groups), groups, stride, pad)),
    ]) or f"split x into {groups} blocks of {C // groups} channels and w, b into {groups} " \
          f"blocks of {F // groups} kernels; convolve block g with block g; concatenate"


def grouped_conv(x, w, b, groups, stride, pad):
    # Kernel block g (F/groups kernels) sees only channel block g: one plain convolution
    # per group, outputs stacked along the channel axis. (groups=2: the paper's two GPUs.)
    Cg, Fg = x.shape[1] // groups, w.shape[0] // groups  # channels, kernels per group
    outputs = []
    for g in range(groups):
        x_g = x[:, g * Cg : (g + 1) * Cg]
        w_g, b_g = w[g * Fg : (g + 1) * Fg], b[g * Fg : (g + 1) * Fg]
        out_g, _ = layers.conv_forward(x_g, w_g, b_g, stride=stride, pad=pad)
        outputs.append(out_g)
    return np.concatenate(outputs, axis=1)


register(Exercise(
    name="grouped_conv", lesson=2,
    task="a grouped convolution (the paper's two GPUs) from one plain convolution per group",
    signature="def grouped_conv(x, w, b, groups, stride, pad):",
    cases=_grouped_cases, outputs=("out",),
    reference=_own_grouped_conv, reference_name="tinyalex.layers.conv_forward(..., groups=)",
    solution=grouped_conv, diagnose=_diagnose_grouped,
    hint="Call layers.conv_forward(x_g, w_g, b_g, stride=stride, pad=pad) on block g of the "
         "channels and block g of the kernels, then np.concatenate the outputs on axis 1."))
