"""Lesson 12, the paper and the code that won (``notebooks/12_paper_and_code.ipynb``).

The Computer History Museum released the code that won ILSVRC-2012 (GitHub
``computerhistory/AlexNet-Source-Code``: cuda-convnet's C++/CUDA with its Python front end,
the ``layers/*.cfg`` network definitions and the ``layer-params-*.cfg`` learning settings).
Three of its choices differ from the paper's text, and tinyalex can follow either:

    LRN        the code divides its configured scale by the window size, and its additive
               constant (minDiv) is 1: k = 1, alpha = 1e-4 / 5 in the paper's terms
               -> config.replace(lrn_k=1.0, lrn_alpha=1e-4 / 5)
    order      conv1 -> ReLU -> max-pool -> LRN (the paper normalises first)
               -> ConvSpec(..., pool_before_lrn=True)
    rates      lowered by hand, conv1 and conv2 separately and then to 0 late in training
               -> SGD(..., lr_scale={"conv1.w": 0.0, ...}), opt.set_lr_scale(...) mid-run

``code_2012_config`` applies the first two to any config; ``RATE_HISTORY`` holds the third
as the configuration's comments tell it.

Exercises: cuda-convnet's cmrnorm layer with tinyalex's
lrn_forward, the 2012 code's first block, the SGD step with per-layer rate factors. Figures:
the hand-written rate history, update sizes with a freeze.
"""


from __future__ import annotations

import dataclasses
import time

import numpy as np

from tinyalex import layers
from tinyalex.lessons import plots
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    dims,
    first_match,
    randn,
    rebinding,
    register,
)
from tinyalex.model import AlexNetConfig, get_config
from tinyalex.optim import SGD

LESSON = Lesson(
    12, "12_paper_and_code.ipynb", "The paper and the code that won",
    ("3.3", "3.4", "3.5", "5"),
    "the paper against the 2012 source (computerhistory/AlexNet-Source-Code): LRN's "
    "alpha / n with k = 1, pooling before LRN, rates lowered by hand and conv1-conv2 "
    "frozen; what tinyalex follows and the switches")


# ---- the lesson's helpers ------------------------------------------------------------------

# The weight learning rate ("epsw") as the comments of layer-params-120-2012-full.cfg record
# it: (epoch, layers, new rate). "all" is every layer. Only the changes the comments quote
# are listed; the first line is the starting rate, the paper's 0.01.
RATE_HISTORY = (
    (0, "all", 0.01),
    (23, "all", 0.001),
    (49, "all", 0.0001),
    (66, "conv1,conv2", 0.00001),
    (73, "conv1,conv2", 0.0),
)


def rate_2012(epoch: int, layer: str) -> float:
    """The weight learning rate of ``layer`` (e.g. "conv1", "fc6") in ``epoch``, by RATE_HISTORY."""
    rate = RATE_HISTORY[0][2]
    for start, which, value in RATE_HISTORY:
        if epoch >= start and (which == "all" or layer in which.split(",")):
            rate = value
    return rate


def code_2012_config(config: str | AlexNetConfig = "paper", lrn: bool = True,
                     order: bool = True) -> AlexNetConfig:
    """``config`` switched to the 2012 code's LRN constants (lrn) and conv1 order (order).

    LRN: the code's ``scale`` 1e-4 divided by ``size`` 5, and k = minDiv's default 1. Order:
    the first convolution pools before it normalises. The other blocks keep the paper's order
    (the code's conv2 normalises, applies a second, contrast-normalising layer that tinyalex
    does not have, and then pools).
    """
    config = get_config(config)
    changes = {}
    if lrn:
        changes.update(lrn_k=1.0, lrn_alpha=1e-4 / config.lrn_n)
    if order:
        first = config.convs[0]
        if not (first.lrn and first.pool):
            raise ValueError("code_2012_config: the first block has no LRN and pool to swap")
        changes["convs"] = (dataclasses.replace(first, pool_before_lrn=True), *config.convs[1:])
    return config.replace(name=f"{config.name}-2012-code", **changes)


def train_with_freeze(net, x, y, steps: int, freeze_at: int, frozen=("conv1", "conv2"),
                      lr: float = 0.02, batch_size: int = 32, seed: int = 0) -> dict:
    """Train with the paper's SGD; from step ``freeze_at`` the ``frozen`` layers' factor is 0.

    Returns {"update": {layer: [|w after - w before| / |w| per step]}, "loss": [per step],
    "seconds": float}; layer is each conv/fc name, its weights ``<layer>.w``.
    """
    from tinyalex.lessons.experiments import batches

    opt = SGD(net.params, lr=lr, momentum=0.9, weight_decay=5e-4, impl=net.impl)
    names = [n[:-2] for n in net.params if n.endswith(".w")]
    update = {n: [] for n in names}
    losses = []
    start = time.perf_counter()
    for step, index in enumerate(batches(len(x), batch_size, steps, seed)):
        if step == freeze_at:
            opt.set_lr_scale({f"{n}.{p}": 0.0 for n in frozen for p in "wb"})
        before = {n: net.params[f"{n}.w"].copy() for n in names}
        loss, _, dlogits = net.loss(x[index], y[index], train=True)
        opt.step(net.params, net.backward(dlogits))
        losses.append(float(loss))
        for n in names:
            w = net.params[f"{n}.w"]
            update[n].append(float(np.linalg.norm(w - before[n]) / np.linalg.norm(w)))
    return {"update": update, "loss": losses, "seconds": time.perf_counter() - start}


# ---- the lesson's figures ------------------------------------------------------------------

def plot_rate_history(rate_of, layers_: dict, epochs: int, title: str = ""):
    """The weight learning rate per epoch of some layers, on a log scale (0 drawn at the bottom).

    rate_of(epoch, layer) -> rate; layers_: {label: layer name}.
    """
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    epoch = np.arange(epochs + 1)
    floor = 1e-6  # where a rate of 0 is drawn on the log axis
    for k, (label, layer) in enumerate(layers_.items()):
        rates = np.array([rate_of(e, layer) for e in epoch])
        ax.step(epoch, np.maximum(rates, floor), where="post", lw=2.5 - k, label=label)
    ax.set_yscale("log")
    ax.axhline(floor, color="grey", lw=0.8, ls=":")
    ax.annotate("rate 0 (frozen)", (1, floor * 1.3), fontsize=8, color="grey")
    ax.set(xlabel="epoch", ylabel="weight learning rate (log scale)",
           title=title or "the learning rates, set by hand")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_update_sizes(update: dict, freeze_at: int | None = None, window: int = 5,
                      title: str = "how far each step moves each layer"):
    """|w_after - w_before| / |w| per SGD step, one line per layer, log scale.

    update: {layer: [value per step]} (``paper_code.train_with_freeze``); a running mean over
    ``window`` steps smooths the lines; zeros are drawn at the bottom of the axis.
    """
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, (layer, values) in enumerate(update.items()):
        values = np.asarray(values, dtype=np.float64)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, window + len(smooth)), np.maximum(smooth, 1e-12),
                color=f"C{k}", lw=1.6, label=layer)
    if freeze_at is not None:
        ax.axvline(freeze_at, color="black", ls="--", lw=1, label=f"freeze at step {freeze_at}")
    ax.set_yscale("log")
    ax.set(xlabel="SGD step", ylabel=f"relative change of w (mean of {window} steps)",
           title=title, ylim=(1e-9, None))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


# ---- the exercises -------------------------------------------------------------------------

def _lrn_2012_cases():
    values = [((2, 7, 3, 3), 5, 1e-4, 0.75, 60.0), ((1, 6, 2, 4), 3, 0.6, 0.75, 1.0),
              ((2, 9, 2, 2), 5, 2.0, 0.75, 1.0), ((1, 5, 3, 2), 5, 1.0, 0.5, 1.5)]
    return [Case((randn(xs, seed, sc), size, scale, power),
                 label=f"x {dims(xs)}, size={size}, scale={scale}, pow={power}")
            for seed, (xs, size, scale, power, sc) in enumerate(values)]


def _lrn(x, n, k, alpha, beta):
    return layers.lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)[0]


def _diagnose_lrn_2012(case, got, want):
    x, size, scale, power = case.args
    return first_match(got["out"], [
        ("the code divides its scale by size before use (layer.py: scale /= size): alpha is "
         "scale / size, not scale", _lrn(x, size, 1.0, scale, power)),
        ("k is the code's minDiv, which defaults to 1 and is not set in the 2012 definitions; "
         "k = 2 is the paper's", _lrn(x, size, 2.0, scale / size, power)),
        ("that is the paper's formula with the code's number: the code divides the scale by "
         "size, and its k (minDiv) is 1, not 2", _lrn(x, size, 2.0, scale, power)),
        ("divide the scale by size; you multiplied", _lrn(x, size, 1.0, scale * size, power)),
    ])


def lrn_2012(x, size, scale, power):
    # cuda-convnet's cmrnorm layer: layer.py divides the configured scale by size, and the
    # additive constant (minDiv) is 1 when a definition does not set it (the 2012 ones do
    # not): out = x / (1 + scale/size * sum of squares)^power. In tinyalex's (the paper's)
    # terms: k = 1, alpha = scale / size.
    return layers.lrn_forward(x, n=size, k=1.0, alpha=scale / size, beta=power)[0]


register(Exercise(
    name="lrn_2012", lesson=12,
    task="the 2012 code's cmrnorm layer (scale, size, pow; minDiv unset) with lrn_forward",
    signature="def lrn_2012(x, size, scale, power):",
    cases=_lrn_2012_cases, outputs=("out",),
    reference=lrn_2012,
    reference_name="tinyalex.layers.lrn_forward(k=1, alpha=scale/size)",
    solution=lrn_2012, diagnose=_diagnose_lrn_2012,
    hint="Two conversions: the code's alpha is its scale divided by size, and its additive "
         "constant is 1 (minDiv's default)."))


def _conv1_2012_cases():
    values = [((2, 3, 13, 13), (6, 3, 3, 3), 1, 1, 0.5), ((1, 3, 15, 15), (8, 3, 5, 5), 2, 0, 1.0),
              ((2, 2, 12, 11), (5, 2, 3, 3), 1, 0, 0.2), ((1, 3, 19, 19), (4, 3, 7, 7), 2, 1, 2.0)]
    cases = []
    for seed, (xs, ws, stride, pad, alpha) in enumerate(values):
        x, w, b = randn(xs, seed), randn(ws, seed + 10), randn(ws[:1], seed + 20, 0.5)
        conv = dict(stride=stride, pad=pad)
        lrn = dict(n=3 if seed % 2 else 5, k=1.0, alpha=alpha, beta=0.75)
        pool = dict(size=3, stride=2)
        cases.append(Case((x, w, b, conv, lrn, pool), label=f"x {dims(x)}, w {dims(w)}, "
                          f"stride {stride}, pad {pad}, LRN n={lrn['n']} alpha={alpha}"))
    return cases


def _diagnose_conv1_2012(case, got, want):
    x, w, b, conv, lrn, pool = case.args
    y = layers.conv_forward(x, w, b, **conv)[0]
    relu = layers.relu_forward(y)[0]
    if np.shape(got["out"]) == layers.lrn_forward(relu, **lrn)[0].shape and \
            np.shape(got["out"]) != np.shape(want["out"]):
        return "the max-pool is missing: conv -> ReLU -> max-pool -> LRN"
    return first_match(got["out"], [
        ("that is the paper's order (LRN, then max-pool); the 2012 code pools conv1's ReLU "
         "outputs first and normalises the pooled maps",
         layers.maxpool_forward(layers.lrn_forward(relu, **lrn)[0], **pool)[0]),
        ("the ReLU comes right after the convolution: LRN's window sums the squares of the "
         "negative values too if the ReLU comes later",
         layers.relu_forward(layers.lrn_forward(layers.maxpool_forward(y, **pool)[0],
                                                **lrn)[0])[0]),
        ("the ReLU is missing (conv -> ReLU -> max-pool -> LRN)",
         layers.lrn_forward(layers.maxpool_forward(y, **pool)[0], **lrn)[0]),
    ])


def conv1_2012(x, w, b, conv, lrn, pool):
    # The 2012 code's first block: conv -> ReLU -> max-pool -> LRN (the paper: LRN, then pool).
    out = layers.conv_forward(x, w, b, **conv)[0]
    out = layers.relu_forward(out)[0]
    out = layers.maxpool_forward(out, **pool)[0]
    return layers.lrn_forward(out, **lrn)[0]


register(Exercise(
    name="conv1_2012", lesson=12,
    task="the 2012 code's first block: conv -> ReLU -> max-pool -> LRN, from tinyalex's layers",
    signature="def conv1_2012(x, w, b, conv, lrn, pool):",
    cases=_conv1_2012_cases, outputs=("out",),
    reference=conv1_2012,
    reference_name="AlexNet with ConvSpec(pool_before_lrn=True), built from tinyalex.layers",
    solution=conv1_2012, diagnose=_diagnose_conv1_2012,
    hint="Four layer calls, each taking the previous output: layers.conv_forward(x, w, b, "
         "**conv)[0], then relu_forward, maxpool_forward(**pool), lrn_forward(**lrn)."))


_SGD_NAMES = ("conv1.w", "conv1.b", "conv2.w", "fc3.w", "fc3.b")


def _sgd_scaled_cases():
    shapes = {"conv1.w": (3, 2, 2, 2), "conv1.b": (3,), "conv2.w": (4, 3, 1, 1),
              "fc3.w": (2, 5), "fc3.b": (2,)}
    values = [({"conv1.w": 0.0, "conv1.b": 0.0}, 0.1, 0.9, 5e-4),
              ({"conv1.w": 0.1, "conv2.w": 0.0}, 0.5, 0.9, 0.05),
              ({"conv1.w": 0.0, "conv1.b": 0.0, "conv2.w": 0.0}, 0.2, 0.5, 0.1),
              ({"fc3.w": 2.0, "fc3.b": 0.0}, 0.05, 0.9, 0.2)]
    cases = []
    for seed, (scale, lr, m, wd) in enumerate(values):
        rng = np.random.default_rng(seed + 200)
        params = {n: rng.standard_normal(shapes[n]) for n in _SGD_NAMES}
        velocity = {n: 0.1 * rng.standard_normal(shapes[n]) for n in _SGD_NAMES}
        grads = {n: rng.standard_normal(shapes[n]) for n in _SGD_NAMES}
        cases.append(Case((params, velocity, grads, lr, m, wd, scale),
                          label=f"lr={lr}, momentum={m}, weight_decay={wd}, lr_scale={scale}"))
    return cases


def _call_sgd_scaled(fn, case):
    """Run the student's in-place step on copies; return (params, velocity) flattened in order,
    as the caller sees them (a step that rebinds its names leaves them as they were)."""
    params, velocity, grads, lr, m, wd, scale = case.args
    p = {n: a.copy() for n, a in params.items()}
    v = {n: a.copy() for n, a in velocity.items()}
    fn(p, v, {n: a.copy() for n, a in grads.items()}, lr, m, wd, dict(scale))
    return (np.concatenate([p[n].ravel() for n in _SGD_NAMES]),
            np.concatenate([v[n].ravel() for n in _SGD_NAMES]))


def _own_sgd_scaled(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
    opt = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, impl="textbook",
              lr_scale=lr_scale)
    for name, v in velocity.items():
        opt.velocity[name][...] = v
    opt.step(params, grads)
    for name, v in velocity.items():
        v[...] = opt.velocity[name]


def _sgd_variant(case, rate_of, decay_rate_of=None, skip_zero=False, bias_decay=False):
    """The update of a case with another rule; rate_of(name) -> the rate of the gradient term."""
    params, velocity, grads, lr, m, wd, scale = case.args
    ws, vs = [], []
    for n in _SGD_NAMES:
        w, v = params[n].copy(), velocity[n].copy()
        if not (skip_zero and scale.get(n, 1.0) == 0):
            decay = wd if (n.endswith(".w") or bias_decay) else 0.0
            v = m * v - decay * (decay_rate_of or rate_of)(n) * w - rate_of(n) * grads[n]
            w = w + v
        ws.append(w.ravel())
        vs.append(v.ravel())
    return np.concatenate(ws)


def _diagnose_sgd_scaled(case, got, want):
    params, velocity, grads, lr, m, wd, scale = case.args

    def scaled(n):
        return lr * scale.get(n, 1.0)

    flat = {"w": np.concatenate([params[n].ravel() for n in _SGD_NAMES]),
            "v": np.concatenate([velocity[n].ravel() for n in _SGD_NAMES])}
    rebound = rebinding(flat, {"w": got["params"], "v": got["velocity"]},
                        {"w": want["params"], "v": want["velocity"]})
    if rebound:
        return rebound
    return first_match(got["params"], [
        ("a parameter with factor 0 was skipped: with the paper's rule at rate 0 the velocity "
         "still decays (v = momentum v) and still moves w (w += v); only new steps stop",
         _sgd_variant(case, scaled, skip_zero=True)),
        ("the factors are ignored: each parameter's rate is lr * lr_scale.get(name, 1.0)",
         _sgd_variant(case, lambda n: lr)),
        ("weight decay must use the scaled rate too (v -= weight_decay * rate * w): a frozen "
         "layer should not keep shrinking", _sgd_variant(case, scaled, lambda n: lr)),
        ("the biases (*.b) get no weight decay (as in the 2012 code and tinyalex's SGD)",
         _sgd_variant(case, scaled, bias_decay=True)),
    ])


def sgd_step_scaled(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
    # The paper's update for every parameter, at the rate lr * (its factor, default 1); weight
    # decay on the weights (*.w) only. A factor of 0 still runs the rule: v = momentum v.
    for name, w in params.items():
        rate = lr * lr_scale.get(name, 1.0)
        decay = weight_decay if name.endswith(".w") else 0.0
        v = velocity[name]
        v *= momentum
        v -= decay * rate * w
        v -= rate * grads[name]
        w += v


register(Exercise(
    name="sgd_step_scaled", lesson=12,
    answers=(SGD.step,),
    task="the paper's SGD step over a dict of parameters, each at lr times its lr_scale factor",
    signature="def sgd_step_scaled(params, velocity, grads, lr, momentum, weight_decay, "
              "lr_scale):",
    cases=_sgd_scaled_cases, outputs=("params", "velocity"), call=_call_sgd_scaled,
    reference=_own_sgd_scaled, reference_name="tinyalex.optim.SGD(..., lr_scale=...)",
    solution=sgd_step_scaled, diagnose=_diagnose_sgd_scaled,
    hint="Loop over the parameters: each has its own rate, lr times its factor (1 when it "
         "has none), and weight decay only if it is a weight (a name ending in '.w'); then the "
         "paper's update at that rate, changing the arrays in place."))
