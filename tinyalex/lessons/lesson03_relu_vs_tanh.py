"""Lesson 3, ReLU against tanh (``notebooks/03_relu_vs_tanh.ipynb``): figure 1's race, exercises.

Figure 1's network (four learned layers, no regularization) in two settings, the paper's and
a modern one, each activation at its own learning rate; the units drawn with their
derivatives. Exercises: the backward passes of ReLU and tanh, and figure 1's measure (steps
to a training error).
"""


from __future__ import annotations

import numpy as np

from tinyalex import layers
from tinyalex.lessons import experiments, plots
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
from tinyalex.model import AlexNetConfig, ConvSpec

LESSON = Lesson(
    3, "03_relu_vs_tanh.ipynb", "ReLU against tanh", ("3.1",),
    "figure 1 redone: the same small net trained with each, steps to a fixed training "
    "error, the 'six times faster' measured")


# ---- the lesson's helpers ------------------------------------------------------------------

def figure1_config(size: int = 24, init: str = "paper", input_scale: float = 1.0,
                   widths: tuple[int, int, int] = (16, 32, 32)) -> AlexNetConfig:
    """Figure 1's kind of network: four learned layers (three convolutions and the classifier).

    conv 5x5 -> act -> pool 3/2; conv 5x5 -> act -> pool; conv 3x3 -> act -> pool; fc. No
    LRN, no dropout ("no regularization of any kind"). init "paper" with input_scale 1 is
    section 5's N(0, 0.01^2) weights on raw centred pixels (section 2); init "he" with
    input_scale 1/64 the mini preset's modern scaling.
    """
    c1, c2, c3 = widths
    return AlexNetConfig(
        name="figure1", image_size=size, input_size=size, input_scale=input_scale,
        convs=(ConvSpec(c1, 5, pad=2, pool=True), ConvSpec(c2, 5, pad=2, pool=True),
               ConvSpec(c3, 3, pad=1, pool=True)),
        hidden=(), num_classes=10, dropout=0.0, init=init, bias_one=())


# Figure 1's race in two settings, with each activation's learning rate chosen by a sweep
# over the candidates below: seed 0, 600 steps, the rate with the lowest running training
# error at the end (lesson 3 reruns the sweep when FULL_RUN is on).
#   "paper":  section 5's N(0, 0.01^2) weights on raw centred pixels (section 2)
#   "modern": He (ReLU) or LeCun (tanh) scaled weights on pixels scaled to unit variance
RACE_SETTINGS = {
    "paper": dict(init="paper", input_scale=1.0, lrs={"relu": 0.002, "tanh": 0.02},
                  sweep={"relu": (0.001, 0.002, 0.004), "tanh": (0.01, 0.02, 0.04, 0.08)}),
    "modern": dict(init="he", input_scale=1 / 64, lrs={"relu": 0.005, "tanh": 0.02},
                   sweep={"relu": (0.005, 0.01, 0.02, 0.04), "tanh": (0.01, 0.02, 0.04, 0.08)}),
}


def race_net(setting: str, activation: str, seed: int, size: int = 24) -> experiments.ExperimentNet:
    """Figure 1's network in a setting of RACE_SETTINGS, with the given activation."""
    options = RACE_SETTINGS[setting]
    config = figure1_config(size=size, init=options["init"], input_scale=options["input_scale"])
    init = "lecun" if (activation == "tanh" and options["init"] == "he") else "config"
    return experiments.ExperimentNet(config, activation=activation, seed=seed, init=init)


def relu_tanh_race(x, y, setting: str, steps: int, seeds, lrs: dict | None = None,
                   size: int = 24, **train_args) -> dict[str, list[experiments.Run]]:
    """Train figure 1's network with each activation, at its own learning rate, per seed.

    setting: a key of RACE_SETTINGS; lrs: {activation: rate} (default: the setting's). Each
    seed draws the initial weights and the batches. Returns {activation: [Run per seed]}.
    """
    lrs = lrs or RACE_SETTINGS[setting]["lrs"]
    return {activation: [experiments.train(race_net(setting, activation, seed, size), x, y,
                                           steps, lr, seed=seed,
                                           label=f"{activation} lr={lr} seed {seed}",
                                           **train_args)
                         for seed in seeds]
            for activation, lr in lrs.items()}


# ---- the lesson's figures ------------------------------------------------------------------

def plot_activations(limit: float = 4.0):
    """ReLU and tanh, and their derivatives: where each passes gradient."""
    plt = plots.pyplot()
    z = np.linspace(-limit, limit, 401)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(z, np.maximum(z, 0), label="ReLU  max(0, x)", lw=2)
    left.plot(z, np.tanh(z), label="tanh(x)", lw=2)
    left.set(xlabel="input x (pre-activation)", ylabel="output f(x)", title="the units")
    right.plot(z, (z > 0).astype(float), label="ReLU: 1 if x > 0 else 0", lw=2)
    right.plot(z, 1 - np.tanh(z) ** 2, label="tanh: 1 - tanh(x)^2", lw=2)
    right.set(xlabel="input x (pre-activation)", ylabel="derivative f'(x)",
              title="the gradient they let through", ylim=(-0.05, 1.1))
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---- the exercises -------------------------------------------------------------------------

def _activation_cases(with_zeros: bool):
    cases = []
    for seed, shape in enumerate([(2, 3, 4, 5), (7, 9), (1, 4, 3, 3)]):
        x = randn(shape, seed)
        if with_zeros:
            x = np.round(x * 2) / 2  # many exact zeros: the gate at x == 0 matters
        dout = randn(shape, seed + 50)
        cases.append(Case((dout, x), label=f"x {dims(x)}, seed {seed}"))
    return cases


def _own_relu_backward(dout, x):
    return layers.relu_backward(dout, layers.relu_forward(x)[1])


def _diagnose_relu(case, got, want):
    dout, x = case.args
    dx = got["dx"]
    message = first_match(dx, [
        ("you gated on the gradient (dout > 0); the gate is the forward input: pass dout "
         "where x > 0", dout * (dout > 0)),
        ("the gradient passed everywhere; a ReLU passes it only where x > 0", dout),
        ("you returned the gate itself; multiply it by dout (chain rule)", (x > 0) * 1.0),
    ])
    if message is None and differs_only_where(dx, want["dx"], x == 0):
        message = ("at x == 0 the gradient should be 0 (x > 0, not x >= 0): the convention of "
                   "tinyalex and of every framework")
    return message


def relu_backward(dout, x):
    # d max(0, x) / dx is 1 where x > 0 and 0 elsewhere (0 at x = 0 too, by convention).
    return dout * (x > 0)


register(Exercise(
    name="relu_backward", lesson=3,
    answers=(layers.relu_backward,),
    task="the gradient of max(0, x)",
    signature="def relu_backward(dout, x):",
    cases=lambda: _activation_cases(True), outputs=("dx",),
    reference=_own_relu_backward, reference_name="tinyalex.layers.relu_backward",
    solution=relu_backward, diagnose=_diagnose_relu,
    hint="max(0, x) is x where x > 0 (slope 1) and 0 elsewhere (slope 0)."))


def _tanh_cases():
    cases = []
    for seed, shape in enumerate([(2, 3, 4, 5), (7, 9), (1, 4, 3, 3)]):
        out = np.tanh(2 * randn(shape, seed))  # some units near saturation (|out| ~ 1)
        cases.append(Case((randn(shape, seed + 50), out), label=f"out {dims(out)}, seed {seed}"))
    return cases


def _diagnose_tanh(case, got, want):
    dout, out = case.args
    return first_match(got["dx"], [
        ("the derivative is 1 - out**2, not 1 - out", dout * (1 - out)),
        ("the cache is tanh's OUTPUT already: the derivative is 1 - out**2, not "
         "1 - tanh(out)**2", dout * (1 - np.tanh(out) ** 2)),
        ("multiply the local derivative by dout (the chain rule)", 1 - out**2),
        ("d tanh/dx is 1 - tanh^2, not tanh^2 - 1 (mind the sign)", dout * (out**2 - 1)),
    ])


def tanh_backward(dout, out):
    # d tanh(x) / dx = 1 - tanh(x)^2 = 1 - out^2: the forward output is all we need.
    return dout * (1 - out**2)


register(Exercise(
    name="tanh_backward", lesson=3,
    answers=(layers.tanh_backward,),
    task="the gradient of tanh, from the forward output out = tanh(x)",
    signature="def tanh_backward(dout, out):",
    cases=_tanh_cases, outputs=("dx",),
    reference=layers.tanh_backward, reference_name="tinyalex.layers.tanh_backward",
    solution=tanh_backward, diagnose=_diagnose_tanh,
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


def steps_to_error(errors, target, window):
    # The running mean of the last `window` mini-batch errors; the first step count at
    # which it is <= target. errors[0] is the first step's error, so the count is index + 1.
    errors = np.asarray(errors, dtype=np.float64)
    for step in range(window, len(errors) + 1):
        if errors[step - window : step].mean() <= target:
            return step
    return None


register(Exercise(
    name="steps_to_error", lesson=3,
    task="the steps a run needs until its running training error is at or below a target",
    signature="def steps_to_error(errors, target, window):",
    cases=_steps_cases, outputs=("steps",),
    reference=experiments.steps_to_error,
    reference_name="tinyalex.lessons.experiments.steps_to_error",
    solution=steps_to_error, diagnose=_diagnose_steps,
    hint="After step k (counting from 1) the last `window` errors are errors[k-window:k]; "
         "return the first k whose mean is <= target, or None."))
