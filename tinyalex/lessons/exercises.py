"""Every exercise of the lessons: its random cases, tinyalex's answer, and what a wrong one means.

Each ``register(Exercise(...))`` below is one "your turn" cell of a lesson. The diagnoses
recognise the classic mistakes in two ways: by computing the known wrong answer on the same
case and seeing whether the student's equals it ("your LRN uses alpha/n"), and by looking at
where the answer is wrong ("dx differs only where windows overlap"). A diagnosis is a hint
about the most likely cause; the comparison itself is always with tinyalex's own function.
"""

from __future__ import annotations

import numpy as np

from tinyalex import layers
from tinyalex.lessons import experiments, solutions
from tinyalex.lessons.checking import Case, Exercise, close, matches, register
from tinyalex.optim import sgd_update as _paper_sgd_update


def _rand(shape, seed, scale=1.0):
    """float64 standard normal numbers of a shape, from a seed."""
    return np.random.default_rng(seed).standard_normal(shape) * scale


def _shape(a) -> str:
    """'2x3x7x5' for an array or a shape tuple."""
    shape = a if isinstance(a, tuple) else np.shape(a)
    return "x".join(str(s) for s in shape)


def _first_match(got, candidates) -> str | None:
    """The message of the first (message, wrong answer) pair that got equals."""
    for message, wrong in candidates:
        if matches(got, wrong):
            return message
    return None


def _differs_only_where(got, want, mask) -> bool:
    """Whether every element where got and want differ has mask True (and some differ)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False
    bad = ~np.isclose(got, want, rtol=1e-5, atol=1e-6)
    return bool(bad.any()) and bool(np.all(np.broadcast_to(mask, bad.shape)[bad]))


OVERWRITE = ("dx differs only where windows overlap (pixels inside two or more windows): the "
             "gradient must add up there (+=), not overwrite (=)")

# ---- lesson 1: the tour ---------------------------------------------------------------------


def _size_cases():
    # (size, kernel, stride, pad): AlexNet's layers first, then odd ones
    values = [(227, 11, 4, 0), (27, 5, 1, 2), (13, 3, 1, 1), (224, 11, 4, 0), (63, 7, 2, 0),
              (10, 3, 2, 1), (9, 4, 3, 2), (31, 5, 3, 1)]
    return [Case(v, label=f"size={v[0]}, kernel={v[1]}, stride={v[2]}, pad={v[3]}")
            for v in values]


def _diagnose_size(case, got, want):
    size, kernel, stride, pad = case.args
    value = got["size"]
    if isinstance(value, float) and not float(value).is_integer():
        return "a size is a whole number of windows: use // (floor division), not /"
    return _first_match(value, [
        ("the padding is missing: the padded input is size + 2*pad pixels wide",
         (size - kernel) // stride + 1),
        ("the padding is on both sides: size + 2*pad, not size + pad",
         (size + pad - kernel) // stride + 1),
        ("the +1 is missing: the window at position 0 counts too",
         (size + 2 * pad - kernel) // stride),
        ("you rounded up (cuda-convnet's convention, which makes 55 out of 224); the paper's "
         "55 x 55 comes from 227 with rounding down: use //",
         -(-(size + 2 * pad - kernel) // stride) + 1),
    ])


register(Exercise(
    name="conv_output_size", lesson=1,
    task="the output size of a convolution along one axis",
    signature="def conv_output_size(size, kernel, stride, pad):",
    cases=_size_cases, outputs=("size",),
    reference=layers.conv_output_size, reference_name="tinyalex.layers.conv_output_size",
    solution=solutions.conv_output_size, diagnose=_diagnose_size,
    hint="Pad first (size + 2*pad), then count the positions where a whole window fits, "
         "stepping by stride: the first at 0, the last at most size + 2*pad - kernel."))


def _params_cases():
    values = [(3, 96, 11, 1), (96, 256, 5, 2), (256, 384, 3, 1), (384, 384, 3, 2),
              (384, 256, 3, 2), (6, 10, 3, 2), (12, 9, 5, 3)]
    return [Case(v, label=f"in={v[0]}, out={v[1]}, kernel={v[2]}, groups={v[3]}")
            for v in values]


def _own_conv_params(in_channels, out_channels, kernel, groups):
    return out_channels * (in_channels // groups) * kernel * kernel + out_channels


def _diagnose_params(case, got, want):
    c, f, k, g = case.args
    return _first_match(got["params"], [
        ("the biases are missing: one per kernel, out_channels of them", f * (c // g) * k * k),
        ("each kernel sees only the in_channels / groups channels of its own group (groups=2: "
         "the paper's two GPUs, section 3.2)", f * c * k * k + f),
        ("two mistakes: no biases, and groups ignored (each kernel sees in_channels / groups "
         "channels)", f * c * k * k),
    ])


register(Exercise(
    name="conv_params", lesson=1,
    task="the number of parameters (weights and biases) of a grouped convolution",
    signature="def conv_params(in_channels, out_channels, kernel, groups):",
    cases=_params_cases, outputs=("params",),
    reference=_own_conv_params, reference_name="tinyalex.model.layer_shapes",
    solution=solutions.conv_params, diagnose=_diagnose_params,
    hint="One kernel is kernel x kernel x (in_channels / groups) weights, plus one bias."))


def _macs_cases():
    values = [(3, 96, 11, 55, 1), (96, 256, 5, 27, 2), (256, 384, 3, 13, 1),
              (384, 384, 3, 13, 2), (6, 10, 3, 7, 2), (12, 9, 5, 4, 3)]
    return [Case(v, label=f"in={v[0]}, out={v[1]}, kernel={v[2]}, out_size={v[3]}, "
                          f"groups={v[4]}") for v in values]


def _own_conv_mult_adds(in_channels, out_channels, kernel, out_size, groups):
    return out_channels * out_size * out_size * (in_channels // groups) * kernel * kernel


def _diagnose_macs(case, got, want):
    c, f, k, s, g = case.args
    right = _own_conv_mult_adds(*case.args)
    return _first_match(got["mult_adds"], [
        ("each kernel sees only in_channels / groups channels: a grouped convolution does "
         "1/groups of the work", f * s * s * c * k * k),
        ("you counted multiplications and additions separately (that is FLOPs, 2x the "
         "multiply-adds)", 2 * right),
        ("adding the bias is not a multiply-add: count only the products of the window",
         right + f * s * s),
    ])


register(Exercise(
    name="conv_mult_adds", lesson=1,
    task="the multiply-adds of a convolution for one image",
    signature="def conv_mult_adds(in_channels, out_channels, kernel, out_size, groups):",
    cases=_macs_cases, outputs=("mult_adds",),
    reference=_own_conv_mult_adds, reference_name="tinyalex.model.layer_shapes",
    solution=solutions.conv_mult_adds, diagnose=_diagnose_macs,
    hint="Every output value is one dot product between a kernel and a window: how many "
         "output values are there, and how long is each dot product?"))

# ---- lesson 2: convolution ------------------------------------------------------------------

# (x shape, w shape, stride, pad): odd, non-square, overlapping and not
_CONV_SHAPES = [((2, 3, 7, 5), (4, 3, 3, 3), 1, 1), ((1, 2, 9, 8), (3, 2, 4, 3), 2, 0),
                ((2, 3, 11, 10), (2, 3, 5, 5), 3, 2), ((1, 1, 6, 6), (2, 1, 2, 2), 2, 0)]


def _conv_cases():
    cases = []
    for seed, (xs, ws, stride, pad) in enumerate(_CONV_SHAPES):
        x, w, b = _rand(xs, seed), _rand(ws, seed + 10), _rand(ws[:1], seed + 20)
        cases.append(Case((x, w, b, stride, pad), label=f"x {_shape(x)}, w {_shape(w)}, "
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
    return _first_match(out, [
        ("your output is a true convolution, with the kernel flipped; deep learning's "
         "'convolution' is a cross-correlation: out = sum w[f, c, i, j] x_pad[n, c, oh*s + i, "
         "ow*s + j], no flip", _own_conv_forward_loops(x, w[:, :, ::-1, ::-1].copy(), b,
                                                       stride, pad)),
        ("the bias b[f] is missing", _own_conv_forward_loops(x, w, 0 * b, stride, pad)),
        ("the bias is added once per window element; add b[f] once per output value",
         _own_conv_forward_loops(x, w, b * w[0].size, stride, pad)),
    ])


register(Exercise(
    name="conv_forward_loops", lesson=2,
    task="a convolution (one group) as plain loops over images, kernels and positions",
    signature="def conv_forward_loops(x, w, b, stride, pad):",
    cases=_conv_cases, outputs=("out",),
    reference=_own_conv_forward_loops, reference_name="tinyalex.layers.naive.conv_forward_naive",
    solution=solutions.conv_forward_loops, diagnose=_diagnose_conv_forward,
    hint="Pad x with np.pad, then out[n, f, i, j] = sum(window * w[f]) + b[f] with window = "
         "x_pad[n, :, i*stride : i*stride + KH, j*stride : j*stride + KW]."))


def _conv_backward_cases():
    cases = []
    for seed, (xs, ws, stride, pad) in enumerate(_CONV_SHAPES):
        x, w = _rand(xs, seed), _rand(ws, seed + 10)
        out, _ = layers.conv_forward(x, w, np.zeros(ws[0]), stride=stride, pad=pad)
        dout = _rand(out.shape, seed + 30)
        cases.append(Case((dout, x, w, stride, pad), label=f"x {_shape(x)}, w {_shape(w)}, "
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
        if _differs_only_where(dx, want["dx"], counts >= 2):
            return OVERWRITE
        return _first_match(dx, [("dx uses the kernel flipped; the backward pass of a "
                                  "cross-correlation adds g * w[f] onto the window, unflipped",
                                  _own_conv_backward(dout, x, w[:, :, ::-1, ::-1].copy(),
                                                     stride, pad)[0])])
    if not close(dw, want["dw"]):
        one_image = _own_conv_backward(dout[-1:], x[-1:], w, stride, pad)[1]
        if matches(dw, one_image):
            return "dw holds only the last image's part: add (+=) over every image and position"
        return None
    outputs = dout.shape[0] * dout.shape[2] * dout.shape[3]
    return _first_match(db, [
        ("db is a mean; it is the sum of dout over images and positions (b[f] was added to "
         "every output of kernel f)", want["db"] / outputs),
        ("db sums over positions but averages over the images; it is the plain sum",
         want["db"] / dout.shape[0])])


register(Exercise(
    name="conv_backward_loops", lesson=2,
    task="the gradients dx, dw, db of a convolution (one group), as plain loops",
    signature="def conv_backward_loops(dout, x, w, stride, pad):",
    cases=_conv_backward_cases, outputs=("dx", "dw", "db"),
    reference=_own_conv_backward, reference_name="tinyalex.layers.naive.conv_backward_naive",
    solution=solutions.conv_backward_loops, diagnose=_diagnose_conv_backward,
    hint="Walk the same loops as the forward pass; for each output value with gradient g add "
         "g * w[f] onto its window of dx_pad, and g * window onto dw[f]; db is a sum."))


def _im2col_cases():
    values = [((2, 3, 5, 6), 3, 2, 2, 1), ((1, 2, 7, 7), 3, 3, 2, 0), ((3, 1, 4, 5), 2, 2, 1, 1),
              ((2, 2, 9, 8), 4, 3, 3, 2)]
    return [Case((_rand(xs, seed), kh, kw, stride, pad),
                 label=f"x {_shape(xs)}, window {kh}x{kw}, stride {stride}, pad {pad}")
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
    message = _first_match(cols, [
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


register(Exercise(
    name="im2col", lesson=2,
    task="copy every window of x into a column: cols (C*KH*KW, N*OH*OW)",
    signature="def im2col(x, kh, kw, stride, pad):",
    cases=_im2col_cases, outputs=("cols",),
    reference=layers.im2col, reference_name="tinyalex.layers.im2col",
    solution=solutions.im2col, diagnose=_diagnose_im2col,
    hint="cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*stride + i, ow*stride + j]. Fill an "
         "array of shape (C, kh, kw, N, OH, OW) one (i, j) at a time with a strided slice, "
         "then reshape."))


def _col2im_cases():
    cases = []
    for case in _im2col_cases():
        x, kh, kw, stride, pad = case.args
        cols = _rand(layers.im2col(x, kh, kw, stride, pad).shape, 40 + len(cases))
        cases.append(Case((cols, x.shape, kh, kw, stride, pad), label=case.label))
    return cases


def _diagnose_col2im(case, got, want):
    cols, x_shape, kh, kw, stride, pad = case.args
    dx = np.asarray(got["dx"])
    N, C, H, W = x_shape
    if dx.shape == (N, C, H + 2 * pad, W + 2 * pad) and pad:
        return "dx has the padded shape: cut the padding off (dx_pad[:, :, pad:pad+H, pad:pad+W])"
    if _differs_only_where(dx, want["dx"], _window_counts(x_shape, kh, kw, stride, pad) >= 2):
        return OVERWRITE
    return None


register(Exercise(
    name="col2im", lesson=2,
    task="the adjoint of im2col: add every column entry back onto its pixel",
    signature="def col2im(cols, x_shape, kh, kw, stride, pad):",
    cases=_col2im_cases, outputs=("dx",),
    reference=layers.col2im, reference_name="tinyalex.layers.col2im",
    solution=solutions.col2im, diagnose=_diagnose_col2im,
    hint="Undo im2col's reshape to (C, kh, kw, N, OH, OW); for each (i, j) add the slab back "
         "onto a strided slice of a zero, padded dx; finally cut the padding off."))


def _grouped_cases():
    values = [((2, 4, 7, 6), (6, 2, 3, 3), 2, 1, 1), ((1, 6, 8, 5), (9, 2, 3, 2), 3, 2, 0),
              ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1, 1), ((1, 4, 9, 9), (4, 2, 5, 5), 2, 2, 2)]
    cases = []
    for seed, (xs, ws, groups, stride, pad) in enumerate(values):
        args = (_rand(xs, seed), _rand(ws, seed + 10), _rand(ws[:1], seed + 20), groups,
                stride, pad)
        cases.append(Case(args, label=f"x {_shape(xs)}, w {_shape(ws)}, groups {groups}, "
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
    return _first_match(got["out"], [
        ("kernel block g must see channel block g; yours see the channel blocks in reverse",
         _own_grouped_conv(flip, w, b, groups, stride, pad)),
        ("the biases of each group are the matching block of b (b[g*F/groups : (g+1)*F/groups])",
         _own_grouped_conv(x, w, np.tile(b[: F // groups], groups), groups, stride, pad)),
    ]) or f"split x into {groups} blocks of {C // groups} channels and w, b into {groups} " \
          f"blocks of {F // groups} kernels; convolve block g with block g; concatenate"


register(Exercise(
    name="grouped_conv", lesson=2,
    task="a grouped convolution (the paper's two GPUs) from one plain convolution per group",
    signature="def grouped_conv(x, w, b, groups, stride, pad):",
    cases=_grouped_cases, outputs=("out",),
    reference=_own_grouped_conv, reference_name="tinyalex.layers.conv_forward(..., groups=)",
    solution=solutions.grouped_conv, diagnose=_diagnose_grouped,
    hint="Call layers.conv_forward(x_g, w_g, b_g, stride=stride, pad=pad) on block g of the "
         "channels and block g of the kernels, then np.concatenate the outputs on axis 1."))

# ---- lesson 3: ReLU and tanh ----------------------------------------------------------------


def _activation_cases(with_zeros: bool):
    cases = []
    for seed, shape in enumerate([(2, 3, 4, 5), (7, 9), (1, 4, 3, 3)]):
        x = _rand(shape, seed)
        if with_zeros:
            x = np.round(x * 2) / 2  # many exact zeros: the gate at x == 0 matters
        dout = _rand(shape, seed + 50)
        cases.append(Case((dout, x), label=f"x {_shape(x)}, seed {seed}"))
    return cases


def _own_relu_backward(dout, x):
    return layers.relu_backward(dout, layers.relu_forward(x)[1])


def _diagnose_relu(case, got, want):
    dout, x = case.args
    dx = got["dx"]
    message = _first_match(dx, [
        ("you gated on the gradient (dout > 0); the gate is the forward input: pass dout "
         "where x > 0", dout * (dout > 0)),
        ("the gradient passed everywhere; a ReLU passes it only where x > 0", dout),
        ("you returned the gate itself; multiply it by dout (chain rule)", (x > 0) * 1.0),
    ])
    if message is None and _differs_only_where(dx, want["dx"], x == 0):
        message = ("at x == 0 the gradient should be 0 (x > 0, not x >= 0): the convention of "
                   "tinyalex and of every framework")
    return message


register(Exercise(
    name="relu_backward", lesson=3,
    task="the gradient of max(0, x)",
    signature="def relu_backward(dout, x):",
    cases=lambda: _activation_cases(True), outputs=("dx",),
    reference=_own_relu_backward, reference_name="tinyalex.layers.relu_backward",
    solution=solutions.relu_backward, diagnose=_diagnose_relu,
    hint="max(0, x) is x where x > 0 (slope 1) and 0 elsewhere (slope 0)."))


def _tanh_cases():
    cases = []
    for seed, shape in enumerate([(2, 3, 4, 5), (7, 9), (1, 4, 3, 3)]):
        out = np.tanh(2 * _rand(shape, seed))  # some units near saturation (|out| ~ 1)
        cases.append(Case((_rand(shape, seed + 50), out), label=f"out {_shape(out)}, seed {seed}"))
    return cases


def _diagnose_tanh(case, got, want):
    dout, out = case.args
    return _first_match(got["dx"], [
        ("the derivative is 1 - out**2, not 1 - out", dout * (1 - out)),
        ("the cache is tanh's OUTPUT already: the derivative is 1 - out**2, not "
         "1 - tanh(out)**2", dout * (1 - np.tanh(out) ** 2)),
        ("multiply the local derivative by dout (the chain rule)", 1 - out**2),
        ("d tanh/dx is 1 - tanh^2, not tanh^2 - 1 (mind the sign)", dout * (out**2 - 1)),
    ])


register(Exercise(
    name="tanh_backward", lesson=3,
    task="the gradient of tanh, from the forward output out = tanh(x)",
    signature="def tanh_backward(dout, out):",
    cases=_tanh_cases, outputs=("dx",),
    reference=layers.tanh_backward, reference_name="tinyalex.layers.tanh_backward",
    solution=solutions.tanh_backward, diagnose=_diagnose_tanh,
    hint="d tanh(x)/dx = 1 - tanh(x)^2, and tanh(x) is what the forward pass returned."))


def _steps_cases():
    rng = np.random.default_rng(3)
    noisy = np.clip(np.linspace(0.9, 0.05, 300) + rng.normal(0, 0.08, 300), 0, 1)
    flat = np.full(40, 0.5)
    bump = np.concatenate([np.full(10, 0.8), np.full(10, 0.1), np.full(10, 0.9)])
    values = [(noisy, 0.25, 20), (noisy, 0.5, 1), (flat, 0.5, 10), (bump, 0.45, 10),
              (noisy, 0.01, 20), (bump, 0.2, 5)]
    return [Case((list(errors), target, window),
                 label=f"{len(errors)} errors, target {target}, window {window}")
            for errors, target, window in values]


def _diagnose_steps(case, got, want):
    errors, target, window = case.args
    value, right = got["steps"], want["steps"]
    if right is None:
        return "the running error never reaches the target in this case: return None"
    if np.isclose(np.mean(errors[right - window : right]), target) and (value is None
                                                                       or value > right):
        return "'reached' means <= target, not < target"
    if value is None:
        return "the target is reached here: return the step count"
    if isinstance(value, (int, np.integer, float)):
        if value == right - 1:
            return ("one too few: steps count from 1, so the mean of errors[i - window + 1 : "
                    "i + 1] is reached after i + 1 steps")
        if value == right + 1:
            return "one too many: the window ending at errors[i] is complete after i + 1 steps"
        if value < window:
            return f"a running mean over {window} steps needs {window} errors: start there"
    return None


register(Exercise(
    name="steps_to_error", lesson=3,
    task="the steps a run needs until its running training error is at or below a target",
    signature="def steps_to_error(errors, target, window):",
    cases=_steps_cases, outputs=("steps",),
    reference=experiments.steps_to_error,
    reference_name="tinyalex.lessons.experiments.steps_to_error",
    solution=solutions.steps_to_error, diagnose=_diagnose_steps,
    hint="After step k (counting from 1) the last `window` errors are errors[k-window:k]; "
         "return the first k whose mean is <= target, or None."))

# ---- lesson 4: local response normalization -------------------------------------------------


def _lrn_cases():
    # (x shape, n, k, alpha, beta, scale of x): the paper's constants, then large alphas, where
    # the normalisation (and the gradient's second term) is big enough to see
    values = [((2, 7, 3, 4), 5, 2.0, 1e-4, 0.75, 3.0), ((1, 6, 2, 3), 3, 1.0, 0.3, 0.75, 1.0),
              ((2, 9, 2, 2), 5, 2.0, 0.1, 0.75, 1.5), ((1, 2, 3, 3), 5, 1.0, 0.5, 0.6, 1.0),
              ((1, 8, 3, 2), 5, 2.0, 0.2, 1.0, 1.0)]
    return [Case((_rand(xs, seed, scale), n, k, alpha, beta),
                 label=f"x {_shape(xs)}, n={n}, k={k}, alpha={alpha}, beta={beta}")
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
    return _first_match(got["out"], [
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


register(Exercise(
    name="lrn_forward", lesson=4,
    task="local response normalization across channels, the paper's formula (section 3.3)",
    signature="def lrn_forward(x, n, k, alpha, beta):",
    cases=_lrn_cases, outputs=("out",),
    reference=_own_lrn_forward, reference_name="tinyalex.layers.lrn_forward",
    solution=solutions.lrn_forward, diagnose=_diagnose_lrn_forward,
    hint="For each channel i sum x[:, j]**2 over j = max(0, i - n//2) .. min(C-1, i + n//2); "
         "then out = x / (k + alpha * sum)**beta, with alpha NOT divided by n."))


def _lrn_backward_cases():
    cases = []
    for case in _lrn_cases()[1:]:  # the large alphas: the second term is big enough to see
        x = case.args[0]
        dout = _rand(x.shape, len(cases) + 60)
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
    return _first_match(got["dx"], [
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


register(Exercise(
    name="lrn_backward", lesson=4,
    task="the gradient of local response normalization (both terms)",
    signature="def lrn_backward(dout, x, n, k, alpha, beta):",
    cases=_lrn_backward_cases, outputs=("dx",),
    reference=_own_lrn_backward, reference_name="tinyalex.layers.lrn_backward",
    solution=solutions.lrn_backward, diagnose=_diagnose_lrn_backward,
    hint="dx[j] = g[j] s[j]^-beta - 2 alpha beta x[j] sum_{i in window(j)} g[i] x[i] "
         "s[i]^(-beta-1), with s[i] = k + alpha * (window sum of x^2 at i)."))


def _pytorch_cases():
    values = [((2, 7, 3, 3), 5, 1e-4, 0.75, 1.0, 40.0), ((1, 6, 2, 4), 3, 0.6, 0.75, 1.0, 1.0),
              ((2, 9, 2, 2), 5, 0.5, 0.75, 2.0, 2.0), ((1, 5, 3, 2), 5, 1.0, 0.5, 1.5, 1.0)]
    return [Case((_rand(xs, seed, sc), size, alpha, beta, k),
                 label=f"x {_shape(xs)}, size={size}, alpha={alpha}, beta={beta}, k={k}")
            for seed, (xs, size, alpha, beta, k, sc) in enumerate(values)]


def _diagnose_pytorch(case, got, want):
    x, size, alpha, beta, k = case.args
    return _first_match(got["out"], [
        ("PyTorch's alpha multiplies the MEAN of the squares (sum / size): give tinyalex "
         "alpha / size", _own_lrn_forward(x, size, k, alpha, beta)),
        ("divide PyTorch's alpha by size; you multiplied", _own_lrn_forward(x, size, k,
                                                                            alpha * size, beta)),
        ("pass k through (PyTorch's default k is 1, the paper's 2)",
         _own_lrn_forward(x, size, 2.0, alpha / size, beta)),
    ])


register(Exercise(
    name="lrn_pytorch", lesson=4,
    task="PyTorch's local_response_norm(x, size, alpha, beta, k), with tinyalex's lrn_forward",
    signature="def lrn_pytorch(x, size, alpha, beta, k):",
    cases=_pytorch_cases, outputs=("out",),
    reference=solutions.lrn_pytorch, reference_name="tinyalex.layers.lrn_forward(alpha/size)",
    solution=solutions.lrn_pytorch, diagnose=_diagnose_pytorch,
    hint="PyTorch divides by (k + alpha/size * sum of squares)^beta."))

# ---- lesson 5: overlapping pooling ----------------------------------------------------------


def _pool_cases(ties: bool):
    values = [((2, 3, 9, 7), 3, 2), ((1, 2, 8, 6), 2, 2), ((1, 2, 7, 9), 3, 1),
              ((2, 1, 11, 11), 3, 2), ((1, 2, 9, 8), 2, 3)]
    cases = []
    for seed, (shape, size, stride) in enumerate(values):
        x = _rand(shape, seed)
        if ties:  # ReLU outputs: many exact zeros, so ties between maxima are real
            x = np.maximum(np.round(x * 2) / 2, 0)
        label = f"x {_shape(shape)}, window {size}, stride {stride}"
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
    return _first_match(out, [("that is average pooling: take the max of each window",
                               windows.mean(axis=0))])


register(Exercise(
    name="maxpool_forward", lesson=5,
    task="max-pooling: the max of every size x size window, windows stride apart",
    signature="def maxpool_forward(x, size, stride):",
    cases=lambda: _pool_cases(False), outputs=("out",),
    reference=_own_maxpool_forward, reference_name="tinyalex.layers.maxpool_forward",
    solution=solutions.maxpool_forward, diagnose=_diagnose_maxpool_forward,
    hint="OH = (H - size) // stride + 1; out[..., i, j] is the max of x[..., i*stride : "
         "i*stride + size, j*stride : j*stride + size]."))


def _maxpool_backward_cases():
    cases = []
    for case in _pool_cases(True):
        x, size, stride = case.args
        out = _own_maxpool_forward(x, size, stride)
        cases.append(Case((_rand(out.shape, len(cases) + 70), x, size, stride),
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
    if _differs_only_where(got["dx"], want["dx"], routed >= 2):
        return ("dx differs where windows overlap (a pixel that is the maximum of several "
                "windows): the gradient must add, not overwrite")
    ties, last, average = _pool_variants(dout, x, size, stride)
    return _first_match(got["dx"], [
        ("every tied maximum received the gradient; the forward pass picked ONE (the first in "
         "row-major order, as np.argmax does), and only it gets the gradient", ties),
        ("on ties the FIRST maximum in row-major order gets the gradient (np.argmax's "
         "choice), not the last", last),
        ("that is average pooling's gradient (dout / size^2 on the whole window); max-pooling "
         "routes all of it to the maximum", average),
    ])


register(Exercise(
    name="maxpool_backward", lesson=5,
    task="route each window's gradient to its maximum, adding where windows overlap",
    signature="def maxpool_backward(dout, x, size, stride):",
    cases=_maxpool_backward_cases, outputs=("dx",),
    reference=_own_maxpool_backward, reference_name="tinyalex.layers.maxpool_backward",
    solution=solutions.maxpool_backward, diagnose=_diagnose_maxpool_backward,
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
    if np.all(counts >= right) and _differs_only_where(counts, right, (rows > last_row)
                                                       | (cols > last_col)):
        return ("count only the windows that fit entirely, (H - size) // stride + 1 of them "
                "per axis; yours also counts windows that run past the edge")
    return None


def _own_coverage(height, width, size, stride):
    # col2im adds each column entry back onto its pixel: with all ones, the window count
    OH, OW = (layers.pool_output_size(d, size, stride) for d in (height, width))
    ones = np.ones((size * size, OH * OW))
    return layers.col2im(ones, (1, 1, height, width), size, size, stride, 0)[0, 0].astype(int)


register(Exercise(
    name="pool_coverage", lesson=5,
    task="how many pooling windows contain each pixel",
    signature="def pool_coverage(height, width, size, stride):",
    cases=_coverage_cases, outputs=("counts",),
    reference=_own_coverage, reference_name="tinyalex.layers.col2im of ones",
    solution=solutions.pool_coverage, diagnose=_diagnose_coverage,
    hint="Start from zeros (height, width) and add 1 over every window that fits."))

# ---- lesson 6: dropout, fully connected, softmax cross-entropy -------------------------------


def _dropout_cases():
    values = [((5, 13), 0.5), ((2, 3, 4, 5), 0.3), ((64, 40), 0.8), ((10, 7), 0.1)]
    return [Case((_rand(shape, seed), p), label=f"x {_shape(shape)}, p={p}",
                 extra=dict(seed=seed + 90)) for seed, (shape, p) in enumerate(values)]


def _call_dropout(fn, case):
    x, p = case.args
    return fn(x, p, np.random.default_rng(case.extra["seed"]))


def _diagnose_dropout(case, got, want):
    x, p = case.args
    u = np.random.default_rng(case.extra["seed"]).random(x.shape)
    out, mask = np.asarray(got["out"]), np.asarray(got["mask"])
    if out.shape != x.shape or mask.shape != x.shape:
        return None
    message = _first_match(mask, [
        ("dropout's kept units are not rescaled by 1/(1-p): inverted dropout divides the kept "
         "units by 1 - p at train time, so the expected output is x", (u >= p) * 1.0),
        ("your mask keeps a unit when u < p, i.e. with probability p; a unit is DROPPED with "
         "probability p: keep it when u >= p", (u < p) / (1 - p)),
        ("your mask keeps a unit with probability p (u < p) and scales by 1/p; drop with "
         "probability p: keep when u >= p, scale by 1/(1-p)", (u < p) / p),
        ("multiplying by 1 - p is the paper's TEST-time factor; inverted dropout divides the "
         "kept units by 1 - p at train time", (u >= p) * (1 - p)),
    ])
    if message is None and not close(out, x * mask):
        message = "out must be x * mask"
    if message is None:
        kept = np.mean(mask != 0)
        values = np.unique(np.round(mask[mask != 0], 6))
        if abs(kept - (1 - p)) < 0.2 and np.allclose(values, 1 / (1 - p)):
            message = ("your mask looks like a fair dropout mask but is another draw: draw "
                       "u = rng.random(x.shape) once and keep the units where u >= p, so the "
                       "checker can compare")
    return message


register(Exercise(
    name="dropout_forward", lesson=6,
    task="inverted dropout at train time: (out, mask)",
    signature="def dropout_forward(x, p, rng):",
    cases=_dropout_cases, outputs=("out", "mask"), call=_call_dropout,
    reference=solutions.dropout_forward,
    reference_name=("tinyalex.lessons.solutions.dropout_forward, which is "
                    "tinyalex.layers.dropout_forward with float64 draws"),
    solution=solutions.dropout_forward, diagnose=_diagnose_dropout,
    hint="u = rng.random(x.shape); mask = (u >= p) / (1 - p); out = x * mask."))


def _linear_cases():
    values = [((4, 9), 5), ((3, 2, 3, 5), 7), ((1, 6), 2), ((5, 4, 1, 1), 3)]
    cases = []
    for seed, (xs, m) in enumerate(values):
        x = _rand(xs, seed)
        w = _rand((m, int(np.prod(xs[1:]))), seed + 10)
        cases.append(Case((_rand((xs[0], m), seed + 20), x, w),
                          label=f"x {_shape(xs)}, w {_shape(w)}"))
    return cases


def _own_linear_backward(dout, x, w):
    _, cache = layers.linear_forward(x, w, np.zeros(w.shape[0], dtype=w.dtype))
    return layers.linear_backward(dout, cache)


def _diagnose_linear(case, got, want):
    dout, x, w = case.args
    dx, dw, db = (np.asarray(got[k]) for k in ("dx", "dw", "db"))
    if dx.shape != x.shape and dx.size == x.size:
        return f"dx must have x's shape {x.shape} (fc6 reads the flattened pool5): reshape"
    if dw.shape != w.shape and dw.shape == w.T.shape:
        return "dw has w's layout (M, D), one row per output unit: dout.T @ x, not x.T @ dout"
    return _first_match(db, [("db sums dout over the batch (each row added b once), not a "
                              "mean", dout.mean(axis=0))])


register(Exercise(
    name="linear_backward", lesson=6,
    task="the gradients dx, dw, db of a fully connected layer out = x w^T + b",
    signature="def linear_backward(dout, x, w):",
    cases=_linear_cases, outputs=("dx", "dw", "db"),
    reference=_own_linear_backward, reference_name="tinyalex.layers.linear_backward",
    solution=solutions.linear_backward, diagnose=_diagnose_linear,
    hint="Flatten x to (N, D); dx = dout @ w (then back to x's shape), dw = dout.T @ x, "
         "db = dout summed over the batch."))


def _softmax_cases():
    values = [((4, 5), 1.0, 0), ((3, 10), 5.0, 0), ((2, 3), 1.0, 1000.0), ((1, 2), 2.0, 0),
              ((6, 4), 3.0, -500.0)]
    cases = []
    for seed, (shape, spread, shift) in enumerate(values):
        logits = _rand(shape, seed, spread) + shift
        labels = np.random.default_rng(seed + 5).integers(0, shape[1], shape[0])
        cases.append(Case((logits, labels), label=f"logits {_shape(logits)}"
                          + (f" around {shift:g}" if shift else "")))
    return cases


def _diagnose_softmax(case, got, want):
    logits, labels = case.args
    loss, dlogits = np.asarray(got["loss"], dtype=np.float64), np.asarray(got["dlogits"])
    N = logits.shape[0]
    if not np.all(np.isfinite(loss)) or not np.all(np.isfinite(dlogits)):
        return ("exp overflowed: subtract each row's maximum from the logits first (softmax "
                "does not change, exp cannot overflow)")
    probs = layers.softmax(logits)
    onehot = np.eye(logits.shape[1])[labels]
    if not close(loss, want["loss"]):
        return _first_match(loss, [
            ("the loss is the MEAN over the batch of -log p[label], not the sum",
             want["loss"] * N)])
    return _first_match(dlogits, [
        ("dlogits is N times too large: the loss is a mean over the batch, so its gradient "
         "is (softmax - onehot) / N", probs - onehot),
        ("subtract 1 at the true class: the gradient is (softmax - onehot) / N",
         probs / N),
        ("the gradient's sign is flipped: (softmax - onehot) / N, not (onehot - softmax) / N",
         (onehot - probs) / N),
    ])


register(Exercise(
    name="softmax_cross_entropy", lesson=6,
    task="the mean cross-entropy loss of softmax(logits) and its gradient",
    signature="def softmax_cross_entropy(logits, labels):",
    cases=_softmax_cases, outputs=("loss", "dlogits"),
    reference=layers.softmax_cross_entropy, reference_name="tinyalex.layers.softmax_cross_entropy",
    solution=solutions.softmax_cross_entropy, diagnose=_diagnose_softmax,
    hint="Subtract the row max, take log-softmax, loss = -mean(log p[label]); the gradient "
         "is (p - onehot) / N."))

# ---- lesson 8: learning (section 5) ---------------------------------------------------------


def _sgd_cases():
    values = [((4, 3), 0.01, 0.9, 5e-4), ((7,), 0.1, 0.9, 5e-4), ((2, 3, 2, 2), 0.05, 0.5, 0.1),
              ((5, 5), 1.0, 0.0, 0.0)]
    return [Case((_rand(shape, seed), _rand(shape, seed + 1, 0.1), _rand(shape, seed + 2), lr,
                  momentum, wd),
                 label=f"w {_shape(shape)}, lr={lr}, momentum={momentum}, weight_decay={wd}")
            for seed, (shape, lr, momentum, wd) in enumerate(values)]


def _call_sgd(fn, case):
    """Run an in-place update on copies; return the new (w, v)."""
    w, v, g, lr, momentum, wd = case.args
    w_new, v_new = w.copy(), v.copy()
    fn(w_new, v_new, g, lr, momentum, wd)
    if np.array_equal(w_new, w) and np.array_equal(v_new, v):
        raise NotImplementedError  # nothing was updated: not done yet
    return w_new, v_new


def _diagnose_sgd(case, got, want):
    w, v, g, lr, m, wd = case.args
    w_new, v_new = np.asarray(got["w"]), np.asarray(got["v"])
    if np.array_equal(v_new, v):
        return ("v was not changed: update it in place (v *= momentum; v -= ...), not with "
                "v = ..., which only rebinds the local name")
    torch_v = m * v + g + wd * w
    return _first_match(w_new, [
        ("that is PyTorch's form, with the learning rate outside the velocity; the paper's: "
         "v = m v - wd lr w - lr g; w = w + v", w - lr * torch_v),
        ("weight decay is multiplied by the learning rate too: v = m v - wd * lr * w - lr * g",
         w + m * v - wd * w - lr * g),
        ("weight decay pulls w towards 0: subtract wd * lr * w", w + m * v + wd * lr * w - lr * g),
        ("w <- w + v: the velocity already carries the minus sign", w - (m * v - wd * lr * w
                                                                         - lr * g)),
    ])


def _own_sgd(w, v, g, lr, momentum, weight_decay):
    _paper_sgd_update(w, v, g, lr, momentum, weight_decay)


register(Exercise(
    name="sgd_update", lesson=8,
    task="the paper's momentum SGD step, in place (section 5)",
    signature="def sgd_update(w, v, g, lr, momentum, weight_decay):",
    cases=_sgd_cases, outputs=("w", "v"), call=_call_sgd,
    reference=_own_sgd, reference_name="tinyalex.optim.sgd_update",
    solution=solutions.sgd_update, diagnose=_diagnose_sgd,
    hint="v <- momentum v - weight_decay lr w - lr g; w <- w + v, both in place (v *= ..., "
         "w += ...)."))

# ---- lesson 7: data (sections 2, 4.1) -------------------------------------------------------

from tinyalex.data import augment as _augment  # noqa: E402  (lesson 7's reference functions)


def _crop_cases():
    # (batch, image side S, crop): windows up to the far edge (top = S - crop), odd sizes
    values = [(4, 9, 5), (3, 12, 7), (5, 8, 8), (6, 11, 4)]
    cases = []
    for seed, (batch, size, crop) in enumerate(values):
        rng = np.random.default_rng(seed + 100)
        images = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
        mean = (rng.random((3, size, size)) * 255).astype(np.float32)
        top = rng.integers(0, size - crop + 1, batch)
        left = rng.integers(0, size - crop + 1, batch)
        top[0], left[-1] = size - crop, size - crop  # one window at each far edge, always
        flip = np.arange(batch) % 2 == 1  # both kinds in every case
        cases.append(Case((images, mean, crop, top, left, flip),
                          label=f"{batch} images {size}x{size}, crop {crop}"))
    return cases


def _crop_variant(images, mean, crop, top, left, flip, *, mean_flipped=True, subtract=True,
                  axis=3, swap=False, mean_at=None):
    """crop_batch with one thing changed (the wrong answers the diagnosis recognises)."""
    x = images.astype(np.float64).transpose(0, 3, 1, 2)
    out = []
    for b in range(len(images)):
        t, lft = (left[b], top[b]) if swap else (top[b], left[b])
        window = x[b, :, t : t + crop, lft : lft + crop]
        mt, ml = (t, lft) if mean_at is None else mean_at
        m = mean[:, mt : mt + crop, ml : ml + crop].astype(np.float64)
        if flip[b]:
            window = np.flip(window, axis=axis - 1)
            m = np.flip(m, axis=axis - 1) if mean_flipped else m
        out.append(window - m if subtract else window)
    return np.stack(out)


def _diagnose_crop(case, got, want):
    images, mean, crop, top, left, flip = case.args
    out, B = np.asarray(got["x"]), len(images)
    if out.shape == (B, crop, crop, 3):
        return ("the result is in the images' HWC layout; the network reads (B, 3, crop, crop): "
                "move the channel axis to the front (transpose(0, 3, 1, 2))")
    if out.shape[:2] == (B, 3) and out.shape[2:] != (crop, crop):
        return (f"your windows are {out.shape[2]}x{out.shape[3]}, not {crop}x{crop}: the window "
                "at top t holds rows t .. t + crop - 1, the slice t : t + crop")
    if out.shape != want["x"].shape:
        return None
    center = _augment.center_offset(images.shape[1], crop)
    return _first_match(out, [
        ("the mean image is not subtracted (section 2: the only preprocessing)",
         _crop_variant(*case.args, subtract=False)),
        ("the mean's window must be the image's window, at the same (top, left) (the mean of "
         "the 256 x 256 images is subtracted before cropping)",
         _crop_variant(*case.args, mean_at=(0, 0))),
        ("you subtracted the mean's CENTRE window; subtract the window at the same (top, left) "
         "as the image's", _crop_variant(*case.args, mean_at=(center, center))),
        ("the image is flipped but its mean window is not: subtract first, then flip both "
         "together", _crop_variant(*case.args, mean_flipped=False)),
        ("your flip mirrors up-down; a horizontal reflection mirrors left-right (the last, W "
         "axis)", _crop_variant(*case.args, axis=2)),
        ("top and left are swapped: top is the first row of the window (the H axis), left its "
         "first column (the W axis)", _crop_variant(*case.args, swap=True)),
        ("no image was flipped: mirror image b left-right where flip[b] is True",
         _crop_variant(*case.args[:5], np.zeros(B, dtype=bool))),
    ])


register(Exercise(
    name="crop_batch", lesson=7,
    task="cut each image's crop window, subtract the mean image's same window, flip where asked",
    signature="def crop_batch(images, mean, crop_size, top, left, flip):",
    cases=_crop_cases, outputs=("x",),
    reference=_augment.crop_batch, reference_name="tinyalex.data.augment.crop_batch",
    solution=solutions.crop_batch, diagnose=_diagnose_crop,
    hint="Per image b: rows top[b] : top[b] + crop_size, the same columns from left[b]; subtract "
         "mean[:, rows, cols]; if flip[b], reverse the last axis; output (B, 3, crop, crop)."))


def _ten_crop_cases():
    values = [(256, 227), (256, 224), (27, 23), (12, 5), (10, 7), (9, 9)]
    return [Case(v, label=f"image {v[0]}, crop {v[1]}") for v in values]


def _own_ten_crop_windows(image_size, crop_size):
    return [tuple(map(int, w[:2])) + (bool(w[2]),)
            for w in _augment.ten_crop_windows(image_size, crop_size)]


def _diagnose_ten_crop(case, got, want):
    size, crop = case.args
    windows = np.asarray(got["windows"])
    right = np.asarray(want["windows"])
    if windows.shape != right.shape:
        return ("return ten (top, left, flip) triples: five windows unflipped, then the same "
                "five flipped" if windows.shape[:1] != (10,) else None)
    far, center = size - crop, (size - crop) // 2
    if set(map(tuple, windows.tolist())) == set(map(tuple, right.tolist())):
        return ("the right ten windows in another order: top-left, top-right, bottom-left, "
                "bottom-right, centre, then the same five flipped")
    corner = windows[:4, :2]
    if np.any(corner == far + 1):
        return (f"a corner window starts at {far + 1}: it would end one pixel past the image. The "
                f"last whole window starts at image_size - crop_size = {far}")
    if np.any(corner == far - 1) and far > 0:
        return (f"a far corner starts at {far - 1}, one pixel short of the edge: the last whole "
                f"window starts at image_size - crop_size = {far}")
    if not np.all(windows[[4, 9], :2] == center):
        return (f"the centre window starts at (image_size - crop_size) // 2 = {center} "
                "(rounded down: the extra pixel of an odd margin goes to the bottom and right)")
    if not np.array_equal(windows[:, 2].astype(bool), right[:, 2].astype(bool)):
        return "the first five windows are not flipped, the last five are"
    return None


register(Exercise(
    name="ten_crop_windows", lesson=7,
    task="the ten test windows (top, left, flip): four corners, the centre, and their reflections",
    signature="def ten_crop_windows(image_size, crop_size):",
    cases=_ten_crop_cases, outputs=("windows",),
    reference=_own_ten_crop_windows, reference_name="tinyalex.data.augment.ten_crop_windows",
    solution=solutions.ten_crop_windows, diagnose=_diagnose_ten_crop,
    hint="The last whole window starts at far = image_size - crop_size; the corners are (0, 0), "
         "(0, far), (far, 0), (far, far); the centre (far // 2, far // 2); then all five with "
         "flip True."))


def _lighting_cases():
    values = [(5, 0.1), (1, 0.1), (8, 0.3), (3, 1.0)]
    cases = []
    for seed, (batch, std) in enumerate(values):
        rng = np.random.default_rng(seed + 120)
        eigvecs, _ = np.linalg.qr(rng.standard_normal((3, 3)))  # orthonormal columns
        eigvals = np.sort(rng.random(3) * 3000)[::-1].copy()  # 0..255 units squared
        cases.append(Case((batch, eigvals.astype(np.float32), eigvecs.astype(np.float32), std),
                          label=f"batch {batch}, std {std}", extra=dict(seed=seed + 130)))
    return cases


def _call_lighting(fn, case):
    batch, eigvals, eigvecs, std = case.args
    return fn(np.random.default_rng(case.extra["seed"]), batch, eigvals, eigvecs, std)


def _diagnose_lighting(case, got, want):
    batch, eigvals, eigvecs, std = case.args
    offsets = np.asarray(got["offsets"])
    if offsets.shape == (3, batch) and batch != 3:
        return "one row per image: the result is (batch, 3), an RGB offset for each image"
    a = np.random.default_rng(case.extra["seed"]).normal(0.0, std, (batch, 3))
    l, P = eigvals.astype(np.float64), eigvecs.astype(np.float64)
    return _first_match(offsets, [
        ("255 times too large: the formula is applied to pixels in 0..1 (the eigenvalues are "
         "stored in 0..255 units squared), so the offset in 0..255 units is P (a * l) / 255",
         (a * l) @ P.T),
        ("the eigenvectors are the COLUMNS of eigvecs (p_i = eigvecs[:, i]); you used its rows",
         (a * l / 255) @ P),
        ("you scaled by the square roots of the eigenvalues (the standard deviations); the "
         "paper's formula multiplies a_i by the eigenvalue l_i itself",
         (a * np.sqrt(l) / 255) @ P.T),
        ("a_i ~ N(0, std^2) has standard deviation std: rng.normal(0.0, std, (batch, 3)), not "
         "std^2", (np.random.default_rng(case.extra["seed"]).normal(0.0, std**2, (batch, 3))
                   * l / 255) @ P.T),
    ])


register(Exercise(
    name="lighting_offsets", lesson=7,
    task="PCA lighting: one RGB offset per image, P [a1 l1, a2 l2, a3 l3]^T (in 0..255 units)",
    signature="def lighting_offsets(rng, batch, eigvals, eigvecs, std):",
    cases=_lighting_cases, outputs=("offsets",), call=_call_lighting,
    reference=_augment.lighting_offsets, reference_name="tinyalex.data.augment.lighting_offsets",
    solution=solutions.lighting_offsets, diagnose=_diagnose_lighting,
    hint="a = rng.normal(0.0, std, (batch, 3)); the offsets are (a * eigvals / 255) @ eigvecs.T "
         "(row b: sum over i of eigvecs[:, i] * a[b, i] * eigvals[i] / 255).",
    atol=1e-4, rtol=1e-4))

# ---- lesson 8: learning (section 5), continued ---------------------------------------------


def _own_pytorch_sgd(w, buf, g, lr, momentum, weight_decay):
    """torch.optim.SGD's update (dampening 0, no Nesterov), in place, written out."""
    buf *= momentum
    buf += g + weight_decay * w
    w -= lr * buf


def _diagnose_pytorch_sgd(case, got, want):
    w, v, g, lr, m, wd = case.args
    w_new = np.asarray(got["w"])
    if np.array_equal(np.asarray(got["v"]), v):
        return ("buf was not changed: update it in place (buf *= momentum; buf += ...), not "
                "with buf = ..., which only rebinds the local name")
    return _first_match(w_new, [
        ("that is the paper's form, with the learning rate inside the velocity; PyTorch's: "
         "buf = m buf + g + wd w; w = w - lr buf", w + m * v - wd * lr * w - lr * g),
        ("PyTorch adds the decay to the gradient before the momentum: buf = m buf + (g + wd w)",
         w - lr * (m * v + g)),
        ("you applied the decay to w directly (w -= wd * w); PyTorch adds it to the gradient "
         "inside the buffer, and lr multiplies the whole buffer: buf = m buf + g + wd w; "
         "w = w - lr buf", w - lr * (m * v + g) - wd * w),
    ])


register(Exercise(
    name="pytorch_sgd_update", lesson=8,
    task="PyTorch's momentum SGD step, in place: the learning rate outside the buffer",
    signature="def pytorch_sgd_update(w, buf, g, lr, momentum, weight_decay):",
    cases=_sgd_cases, outputs=("w", "v"), call=_call_sgd,
    reference=_own_pytorch_sgd, reference_name="torch.optim.SGD (its documented update)",
    solution=solutions.pytorch_sgd_update, diagnose=_diagnose_pytorch_sgd,
    hint="buf <- momentum buf + (g + weight_decay w); w <- w - lr buf, both in place."))


def _plateau_cases():
    values = [([0.5, 0.4, 0.41, 0.42, 0.43, 0.3, 0.3, 0.3, 0.3], 0.01, 2, 3),
              ([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9], 0.1, 1, 2),
              ([0.8, 0.7, 0.6, 0.5, 0.4], 0.01, 0, 3),
              ([0.5, 0.5, 0.49995, 0.5, 0.5, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], 1.0, 2, 3),
              ([0.6, 0.5, 0.55, 0.52, 0.51, 0.505, 0.5, 0.49], 0.01, 1, 3)]
    return [Case(v, label=f"{len(v[0])} epochs, lr {v[1]}, patience {v[2]}, "
                          f"at most {v[3]} reductions") for v in values]


def _own_plateau_rates(val_errors, lr, patience, max_reductions):
    from tinyalex.optim import ReduceOnPlateau

    schedule = ReduceOnPlateau(lr, factor=0.1, patience=patience, max_reductions=max_reductions)
    return [lr] + [schedule.step(error) for error in val_errors]


def _plateau_variant(val_errors, lr, patience, max_reductions, *, wait=None, reset=True,
                     limit=True, against_last=False, delta=1e-4):
    """The schedule with one rule changed (wait: a reduction when bad > wait)."""
    wait = patience if wait is None else wait
    rates, best, bad, reductions, last = [lr], float("inf"), 0, 0, float("inf")
    for error in val_errors:
        reference = last if against_last else best
        if error < reference - delta:
            best, bad = min(best, error), 0
        else:
            bad += 1
            if bad > wait and (reductions < max_reductions or not limit):
                lr, reductions = lr * 0.1, reductions + 1
                bad = 0 if reset else bad
        last = error
        rates.append(lr)
    return rates


def _diagnose_plateau(case, got, want):
    errors, lr, patience, most = case.args
    rates = np.asarray(got["rates"], dtype=np.float64)
    if rates.shape == (len(errors),):
        return ("return one rate more than there are epochs measured: the first epoch's rate "
                "(lr), then the rate chosen after each validation error")
    return _first_match(rates, [
        ("you lowered the rate after `patience` epochs without improvement; the paper waits "
         "until the error has not improved for MORE than patience epochs (bad > patience)",
         _plateau_variant(*case.args, wait=patience - 1)),
        ("after a reduction the count of epochs without improvement starts again at 0",
         _plateau_variant(*case.args, reset=False)),
        ("the rate is divided at most max_reductions times (the paper: three times in all)",
         _plateau_variant(*case.args, limit=False)),
        ("an improvement is measured against the BEST error so far, not the last epoch's",
         _plateau_variant(*case.args, against_last=True)),
        ("an improvement must be larger than min_delta = 1e-4 (a change in the fifth decimal "
         "is noise)", _plateau_variant(*case.args, delta=0.0)),
    ])


register(Exercise(
    name="plateau_rates", lesson=8,
    task="the paper's schedule: divide the rate by 10 when validation error stops improving",
    signature="def plateau_rates(val_errors, lr, patience, max_reductions):",
    cases=_plateau_cases, outputs=("rates",),
    reference=_own_plateau_rates, reference_name="tinyalex.optim.ReduceOnPlateau",
    solution=solutions.plateau_rates, diagnose=_diagnose_plateau,
    hint="Keep the best error and a count of epochs without an improvement of more than 1e-4; "
         "when the count exceeds patience (and fewer than max_reductions were made), multiply "
         "the rate by 0.1 and reset the count. Return [lr, rate after epoch 1, ...]."))


def _he_cases():
    values = [(96, 3, 11, 11), (256, 48, 5, 5), (4096, 9216), (10, 64), (384, 192, 3, 3),
              (16, 3, 5, 5)]
    return [Case((v,), label=f"w {_shape(v)}") for v in values]


def _own_he_std(w_shape):
    return float(np.sqrt(2.0 / np.prod(w_shape[1:])))


def _diagnose_he(case, got, want):
    (shape,) = case.args
    fan_in, fan_out = np.prod(shape[1:]), shape[0] * np.prod(shape[2:])
    return _first_match(got["std"], [
        ("that is the variance 2 / fan_in; the standard deviation is its square root",
         2.0 / fan_in),
        ("1 / fan_in is LeCun's variance (right for tanh); a ReLU zeroes half of its inputs, so "
         "He's keeps the signal's size with 2 / fan_in", np.sqrt(1.0 / fan_in)),
        ("you used the fan-out (out_channels * KH * KW); the fan-in is what one output unit "
         "reads: in_channels * KH * KW (or D for a fully connected layer)",
         np.sqrt(2.0 / fan_out)),
        ("the fan-in counts every weight of one kernel: in_channels * KH * KW, not in_channels",
         np.sqrt(2.0 / shape[1])),
        ("that is the paper's fixed 0.01; He's depends on the layer: sqrt(2 / fan_in)", 0.01),
    ])


register(Exercise(
    name="he_std", lesson=8,
    task="the standard deviation of He initialisation for a weight of a given shape",
    signature="def he_std(w_shape):",
    cases=_he_cases, outputs=("std",),
    reference=_own_he_std, reference_name="tinyalex.model.init_params (init 'he')",
    solution=solutions.he_std, diagnose=_diagnose_he,
    hint="fan_in is the product of every axis but the first (C * KH * KW for a convolution, D "
         "for a fully connected layer); the standard deviation is sqrt(2 / fan_in)."))

# ---- lesson 9: the CUDA kernels -------------------------------------------------------------


def _coords_cases():
    values = [(2 * 3, 4, 5), (1, 7, 3), (5, 1, 6), (4, 6, 6)]
    return [Case((np.arange(nc * oh * ow), oh, ow), label=f"N*C={nc}, OH={oh}, OW={ow}")
            for nc, oh, ow in values]


def _own_thread_coords(index, OH, OW):
    # np.unravel_index is the definition of "row-major order"
    return np.unravel_index(index, (int(index.max()) // (OH * OW) + 1, OH, OW))


def _diagnose_coords(case, got, want):
    index, OH, OW = case.args
    nc, oh, ow = (np.asarray(got[k]) for k in ("nc", "oh", "ow"))
    if matches(ow, index % OH) and OH != OW:
        return "ow is index % OW (the width): the last axis varies fastest"
    if matches(oh, index // OW) and len(index) > OH * OW:
        return ("oh is (index // OW) % OH: without the % OH it keeps counting into the next "
                "(n, c) plane")
    if matches(nc, index // OW) and OH > 1:
        return "nc is index // (OW * OH): one (n, c) plane holds OH * OW outputs"
    if matches(oh, index % OH) and matches(ow, index // OH % OW):
        return ("you made oh vary fastest (column-major); in row-major (N, C, OH, OW) memory the "
                "LAST axis, ow, varies fastest")
    return None


register(Exercise(
    name="thread_coords", lesson=9,
    task="which output (nc, oh, ow) a thread with a flat index computes (maxpool.cu's first lines)",
    signature="def thread_coords(index, OH, OW):",
    cases=_coords_cases, outputs=("nc", "oh", "ow"),
    reference=_own_thread_coords, reference_name="np.unravel_index(index, (NC, OH, OW))",
    solution=solutions.thread_coords, diagnose=_diagnose_coords,
    hint="Row-major: ow = index % OW; oh = (index // OW) % OH; nc = index // (OW * OH)."))


def _blocks_cases():
    values = [(1000, 256), (1024, 256), (1, 256), (255, 256), (257, 256), (100000, 128),
              (9216, 1024)]
    return [Case(v, label=f"{v[0]} elements, {v[1]} threads a block") for v in values]


def _own_grid_blocks(total, block):
    return -(-total // block)


def _diagnose_blocks(case, got, want):
    total, block = case.args
    value = got["blocks"]
    if isinstance(value, float) and not float(value).is_integer():
        return "a number of blocks is a whole number: round up, in integers"
    return _first_match(value, [
        ("total // block rounds DOWN: the last total % block elements get no thread (the "
         "launch must cover every element; the kernel's `if (index >= total) return;` "
         "idles the extra threads)", total // block),
        ("total // block + 1 launches a whole useless block when total is a multiple of "
         "block: use (total + block - 1) // block", total // block + 1),
    ])


register(Exercise(
    name="grid_blocks", lesson=9,
    task="how many blocks of `block` threads give one thread to each of `total` elements",
    signature="def grid_blocks(total, block):",
    cases=_blocks_cases, outputs=("blocks",),
    reference=_own_grid_blocks, reference_name="tinyalex.cuda.ops (the launchers)",
    solution=solutions.grid_blocks, diagnose=_diagnose_blocks,
    hint="ceil(total / block), in integers: (total + block - 1) // block."))


def _containing_cases():
    values = [(27, 3, 2), (13, 3, 2), (12, 2, 2), (10, 4, 3), (9, 3, 1), (11, 5, 2)]
    cases = []
    for H, size, stride in values:
        count = (H - size) // stride + 1
        covered = (count - 1) * stride + size  # rows past this are in no window
        cases.append(Case((np.arange(covered), size, stride, count),
                          label=f"{covered} rows, window {size}, stride {stride}"))
    return cases


def _own_windows_containing(h, size, stride, count):
    # by brute force: every window o, and whether it holds row h
    starts = np.arange(count)[None, :] * stride
    holds = (starts <= h[:, None]) & (h[:, None] <= starts + size - 1)  # (rows, windows)
    first = np.argmax(holds, axis=1)
    last = count - 1 - np.argmax(holds[:, ::-1], axis=1)
    return first, last


def _diagnose_containing(case, got, want):
    h, size, stride, count = case.args
    first, last = np.asarray(got["first"]), np.asarray(got["last"])
    if not matches(first, want["first"]):
        if matches(first, np.maximum(0, (h - size) // stride + 1)) or matches(
                first, np.maximum(0, (h - size + 1) // stride)):
            return ("first is a ceiling: the first window o with o*stride + size - 1 >= h is "
                    "ceil((h - size + 1) / stride), i.e. -(-(h - size + 1) // stride); floor "
                    "division rounds the wrong way")
        if np.any(first < 0):
            return "first is clipped at 0: rows near the top are in window 0 first"
        return None
    if np.any(last > count - 1):
        return f"last is clipped at count - 1 = {count - 1}: there is no window past the last"
    if matches(last, np.minimum(count - 1, (h + 1) // stride)):
        return "last is h // stride: the last window starting at or before row h"
    return None


register(Exercise(
    name="windows_containing", lesson=9,
    task="the first and last pooling window that holds each row h (maxpool.cu's backward)",
    signature="def windows_containing(h, size, stride, count):",
    cases=_containing_cases, outputs=("first", "last"),
    reference=_own_windows_containing, reference_name="the windows counted one by one",
    solution=solutions.windows_containing, diagnose=_diagnose_containing,
    hint="Window o covers rows o*stride .. o*stride + size - 1. The last one that holds h starts "
         "at or before h: h // stride (at most count - 1); the first one ends at or after h: "
         "ceil((h - size + 1) / stride) (at least 0)."))
