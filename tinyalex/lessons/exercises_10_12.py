"""The exercises of lessons 10 to 12: what the network learned, real images, the paper against
the 2012 code. Registered like those of ``exercises.py`` (same checker, same kind of
diagnoses: the known wrong answer is computed on the same case and compared)."""

from __future__ import annotations

import numpy as np

from tinyalex import layers
from tinyalex.lessons import solutions
from tinyalex.lessons.checking import Case, Exercise, register
from tinyalex.lessons.exercises import _first_match, _rand, _shape
from tinyalex.optim import SGD

# ---- lesson 12: the paper and the code that won ------------------------------------------


def _lrn_2012_cases():
    values = [((2, 7, 3, 3), 5, 1e-4, 0.75, 60.0), ((1, 6, 2, 4), 3, 0.6, 0.75, 1.0),
              ((2, 9, 2, 2), 5, 2.0, 0.75, 1.0), ((1, 5, 3, 2), 5, 1.0, 0.5, 1.5)]
    return [Case((_rand(xs, seed, sc), size, scale, power),
                 label=f"x {_shape(xs)}, size={size}, scale={scale}, pow={power}")
            for seed, (xs, size, scale, power, sc) in enumerate(values)]


def _lrn(x, n, k, alpha, beta):
    return layers.lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)[0]


def _diagnose_lrn_2012(case, got, want):
    x, size, scale, power = case.args
    return _first_match(got["out"], [
        ("the code divides its scale by size before use (layer.py: scale /= size): alpha is "
         "scale / size, not scale", _lrn(x, size, 1.0, scale, power)),
        ("k is the code's minDiv, which defaults to 1 and is not set in the 2012 definitions; "
         "k = 2 is the paper's", _lrn(x, size, 2.0, scale / size, power)),
        ("that is the paper's formula with the code's number: the code divides the scale by "
         "size, and its k (minDiv) is 1, not 2", _lrn(x, size, 2.0, scale, power)),
        ("divide the scale by size; you multiplied", _lrn(x, size, 1.0, scale * size, power)),
    ])


register(Exercise(
    name="lrn_2012", lesson=12,
    task="the 2012 code's cmrnorm layer (scale, size, pow; minDiv unset) with lrn_forward",
    signature="def lrn_2012(x, size, scale, power):",
    cases=_lrn_2012_cases, outputs=("out",),
    reference=solutions.lrn_2012,
    reference_name="tinyalex.layers.lrn_forward(k=1, alpha=scale/size)",
    solution=solutions.lrn_2012, diagnose=_diagnose_lrn_2012,
    hint="Two conversions: the code's alpha is its scale divided by size, and its additive "
         "constant is 1 (minDiv's default)."))


def _conv1_2012_cases():
    values = [((2, 3, 13, 13), (6, 3, 3, 3), 1, 1, 0.5), ((1, 3, 15, 15), (8, 3, 5, 5), 2, 0, 1.0),
              ((2, 2, 12, 11), (5, 2, 3, 3), 1, 0, 0.2), ((1, 3, 19, 19), (4, 3, 7, 7), 2, 1, 2.0)]
    cases = []
    for seed, (xs, ws, stride, pad, alpha) in enumerate(values):
        x, w, b = _rand(xs, seed), _rand(ws, seed + 10), _rand(ws[:1], seed + 20, 0.5)
        conv = dict(stride=stride, pad=pad)
        lrn = dict(n=3 if seed % 2 else 5, k=1.0, alpha=alpha, beta=0.75)
        pool = dict(size=3, stride=2)
        cases.append(Case((x, w, b, conv, lrn, pool), label=f"x {_shape(x)}, w {_shape(w)}, "
                          f"stride {stride}, pad {pad}, LRN n={lrn['n']} alpha={alpha}"))
    return cases


def _diagnose_conv1_2012(case, got, want):
    x, w, b, conv, lrn, pool = case.args
    y = layers.conv_forward(x, w, b, **conv)[0]
    relu = layers.relu_forward(y)[0]
    if np.shape(got["out"]) == layers.lrn_forward(relu, **lrn)[0].shape and \
            np.shape(got["out"]) != np.shape(want["out"]):
        return "the max-pool is missing: conv -> ReLU -> max-pool -> LRN"
    return _first_match(got["out"], [
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


register(Exercise(
    name="conv1_2012", lesson=12,
    task="the 2012 code's first block: conv -> ReLU -> max-pool -> LRN, from tinyalex's layers",
    signature="def conv1_2012(x, w, b, conv, lrn, pool):",
    cases=_conv1_2012_cases, outputs=("out",),
    reference=solutions.conv1_2012,
    reference_name="AlexNet with ConvSpec(pool_before_lrn=True), built from tinyalex.layers",
    solution=solutions.conv1_2012, diagnose=_diagnose_conv1_2012,
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
    """Run the student's in-place step on copies; return (params, velocity) flattened in order."""
    params, velocity, grads, lr, m, wd, scale = case.args
    p = {n: a.copy() for n, a in params.items()}
    v = {n: a.copy() for n, a in velocity.items()}
    fn(p, v, {n: a.copy() for n, a in grads.items()}, lr, m, wd, dict(scale))
    if all(np.array_equal(p[n], params[n]) and np.array_equal(v[n], velocity[n]) for n in p):
        raise NotImplementedError  # nothing was updated: not done yet
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

    return _first_match(got["params"], [
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


register(Exercise(
    name="sgd_step_scaled", lesson=12,
    task="the paper's SGD step over a dict of parameters, each at lr times its lr_scale factor",
    signature="def sgd_step_scaled(params, velocity, grads, lr, momentum, weight_decay, "
              "lr_scale):",
    cases=_sgd_scaled_cases, outputs=("params", "velocity"), call=_call_sgd_scaled,
    reference=_own_sgd_scaled, reference_name="tinyalex.optim.SGD(..., lr_scale=...)",
    solution=solutions.sgd_step_scaled, diagnose=_diagnose_sgd_scaled,
    hint="For each name: rate = lr * lr_scale.get(name, 1.0); decay only for names ending in "
         "'.w'; then v *= momentum; v -= decay * rate * w; v -= rate * g; w += v (in place)."))
