"""Lesson 8, learning (``notebooks/08_learning.ipynb``): section 5's SGD, initialisation, schedule.

    quadratic_paths(update, steps=60, drop_at=30)   # the weights on a badly conditioned bowl
    torch_sgd_update(w, buf, g, lr, m, wd)          # PyTorch's form of momentum SGD
    paper_init(config); activation_scales(net, x)  # section 5's init and the signal's size

Exercises: the paper's SGD step, PyTorch's, the plateau schedule, He's standard deviation.
Figures: the two SGD forms' step sizes, learning curves.
"""


from __future__ import annotations

import numpy as np

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
from tinyalex.optim import ReduceOnPlateau
from tinyalex.optim import sgd_update as paper_sgd_update

LESSON = Lesson(
    8, "08_learning.ipynb", "Learning", ("5",),
    "the paper's SGD against PyTorch's when the rate drops, the initialisation trap and "
    "He's fix, the plateau schedule, a real run with learning curves")


# ---- the lesson's helpers ------------------------------------------------------------------

def torch_sgd_update(w, buf, g, lr: float, momentum: float, weight_decay: float) -> None:
    """torch.optim.SGD's update (no dampening, no Nesterov), in place, for comparison:

        buf <- momentum * buf + (g + weight_decay * w)
        w   <- w - lr * buf

    With a constant rate it equals the paper's rule (``tinyalex.optim.sgd_update``) with
    v = -lr * buf; when the rate changes they part (lesson 8).
    """
    buf *= momentum
    buf += g + weight_decay * w
    w -= lr * buf


def quadratic_paths(update, steps: int, drop_at: int, lr: float = 0.1, factor: float = 0.1,
                    momentum: float = 0.9, weight_decay: float = 5e-4, size: int = 50,
                    seed: int = 0) -> np.ndarray:
    """The weights on L(w) = 0.5 sum(c * w^2), float64 (steps + 1, size): row 0 the start, row
    t the weights after step t of ``update``.

    The curvatures c are spread over 0.01..1 (a badly conditioned bowl, where momentum
    matters); the rate is lr for the first ``drop_at`` steps, then lr * factor. ``update`` has
    the signature of ``tinyalex.optim.sgd_update``: update(w, v, g, lr, momentum, wd).
    """
    rng = np.random.default_rng(seed)
    curvature = np.geomspace(0.01, 1.0, size)
    w, v = rng.standard_normal(size), np.zeros(size)
    path = [w.copy()]
    for step in range(steps):
        rate = lr if step < drop_at else lr * factor
        update(w, v, curvature * w, rate, momentum, weight_decay)  # dL/dw = c * w
        path.append(w.copy())
    return np.array(path)


def paper_init(config):
    """A config with the paper's initialisation (section 5) instead of He's.

    Weights N(0, 0.01^2), biases 1 in the grouped convolutions and the hidden fully
    connected layers (the paper's conv2, conv4, conv5, fc6, fc7), raw centred pixels
    (input_scale 1) -- the paper preset's choices, on a smaller network.
    """
    from tinyalex.model import build_steps

    names = [s.name for s in build_steps(config) if s.kind in ("conv", "fc")]
    convs = [n for n in names if n.startswith("conv")]
    grouped = [name for name, spec in zip(convs, config.convs, strict=True) if spec.groups > 1]
    hidden = names[len(convs):-1]
    return config.replace(init="paper", input_scale=1.0, bias_one=tuple(grouped + hidden))


def activation_scales(net, x) -> dict[str, float]:
    """{step name: standard deviation of its output} for every conv and fc step, on x."""
    net.forward(x, train=False, keep_activations=True)
    kinds = {s.name: s.kind for s in net.steps}
    return {name: float(np.std(a)) for name, a in net.activations.items()
            if kinds[name] in ("conv", "fc")}


# ---- the lesson's figures ------------------------------------------------------------------

def plot_learning(histories: dict, window: int = 10, title: str = "Learning curves"):
    """Training loss per step (running mean), validation error and learning rate per epoch.

    histories: {label: pipeline.History}. Three panels side by side, one colour per label.
    """
    plt = plots.pyplot()
    fig, (loss_ax, val_ax, lr_ax) = plt.subplots(1, 3, figsize=(13, 3.8))
    for k, (label, h) in enumerate(histories.items()):
        losses = np.asarray(h.losses, dtype=np.float64)
        if len(losses) >= window:
            running = np.convolve(losses, np.ones(window) / window, mode="valid")
            loss_ax.plot(np.arange(window, window + len(running)) / h.steps_per_epoch, running,
                         color=f"C{k}", label=label)
        epochs = np.arange(1, len(h.val_errors) + 1)
        val_ax.plot(epochs, 100 * np.asarray(h.val_errors), "o-", color=f"C{k}", label=label)
        lr_ax.step(np.arange(1, len(h.lrs) + 1), h.lrs, where="mid", color=f"C{k}", label=label)
    loss_ax.set(xlabel="epoch", ylabel=f"training loss (mean of last {window} steps)",
                title="training loss")
    val_ax.set(xlabel="epoch", ylabel="validation error, % (centre crops)",
               title="validation error after each epoch", ylim=(0, 100))
    lr_ax.set(xlabel="epoch", ylabel="learning rate (log scale)", yscale="log",
              title="the rate used in each epoch")
    for ax in (loss_ax, val_ax, lr_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_sgd_forms(paths: dict, drop_at: int, ylabel: str = "step size |w(t) - w(t-1)|",
                   title: str = "The paper's SGD and PyTorch's, before and after the rate drops"):
    """One curve per update rule (paths: {label: values per step}), the drop marked."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for k, (label, values) in enumerate(paths.items()):
        ax.plot(np.arange(1, len(values) + 1), values, "o-" if k == 0 else "s--", ms=3,
                color=f"C{k}", label=label)
    ax.axvline(drop_at + 0.5, color="black", lw=1, ls=":", label="learning rate / 10")
    ax.set(xlabel="SGD step", ylabel=ylabel, title=title, yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---- the exercises -------------------------------------------------------------------------

def _sgd_cases():
    values = [((4, 3), 0.01, 0.9, 5e-4), ((7,), 0.1, 0.9, 5e-4), ((2, 3, 2, 2), 0.05, 0.5, 0.1),
              ((5, 5), 1.0, 0.0, 0.0)]
    return [Case((randn(shape, seed), randn(shape, seed + 1, 0.1), randn(shape, seed + 2), lr,
                  momentum, wd),
                 label=f"w {dims(shape)}, lr={lr}, momentum={momentum}, weight_decay={wd}")
            for seed, (shape, lr, momentum, wd) in enumerate(values)]


def _call_sgd(fn, case):
    """Run an in-place update on copies; return the new (w, v) as the caller sees them (an
    update that rebinds its arguments leaves them as they were)."""
    w, v, g, lr, momentum, wd = case.args
    w_new, v_new = w.copy(), v.copy()
    fn(w_new, v_new, g, lr, momentum, wd)
    return w_new, v_new


def _diagnose_sgd(case, got, want):
    w, v, g, lr, m, wd = case.args
    w_new = np.asarray(got["w"])
    rebound = rebinding({"w": w, "v": v}, got, want)
    if rebound:
        return rebound
    torch_v = m * v + g + wd * w
    return first_match(w_new, [
        ("that is PyTorch's form, with the learning rate outside the velocity; the paper's: "
         "v = m v - wd lr w - lr g; w = w + v", w - lr * torch_v),
        ("weight decay is multiplied by the learning rate too: v = m v - wd * lr * w - lr * g",
         w + m * v - wd * w - lr * g),
        ("weight decay pulls w towards 0: subtract wd * lr * w", w + m * v + wd * lr * w - lr * g),
        ("w <- w + v: the velocity already carries the minus sign", w - (m * v - wd * lr * w
                                                                         - lr * g)),
    ])


def _own_sgd(w, v, g, lr, momentum, weight_decay):
    paper_sgd_update(w, v, g, lr, momentum, weight_decay)


def sgd_update(w, v, g, lr, momentum, weight_decay):
    # The paper's rule, in place: the learning rate is inside the velocity.
    v *= momentum
    v -= weight_decay * lr * w
    v -= lr * g
    w += v


register(Exercise(
    name="sgd_update", lesson=8,
    answers=(paper_sgd_update,),
    task="the paper's momentum SGD step, in place (section 5)",
    signature="def sgd_update(w, v, g, lr, momentum, weight_decay):",
    cases=_sgd_cases, outputs=("w", "v"), call=_call_sgd,
    reference=_own_sgd, reference_name="tinyalex.optim.sgd_update",
    solution=sgd_update, diagnose=_diagnose_sgd,
    hint="v <- momentum v - weight_decay lr w - lr g; w <- w + v, both in place (v *= ..., "
         "w += ...)."))


def _diagnose_pytorch_sgd(case, got, want):
    w, v, g, lr, m, wd = case.args
    w_new = np.asarray(got["w"])
    rebound = rebinding({"w": w, "buf": v}, {"w": got["w"], "buf": got["v"]},
                        {"w": want["w"], "buf": want["v"]})
    if rebound:
        return rebound
    return first_match(w_new, [
        ("that is the paper's form, with the learning rate inside the velocity; PyTorch's: "
         "buf = m buf + g + wd w; w = w - lr buf", w + m * v - wd * lr * w - lr * g),
        ("PyTorch adds the decay to the gradient before the momentum: buf = m buf + (g + wd w)",
         w - lr * (m * v + g)),
        ("you applied the decay to w directly (w -= wd * w); PyTorch adds it to the gradient "
         "inside the buffer, and lr multiplies the whole buffer: buf = m buf + g + wd w; "
         "w = w - lr buf", w - lr * (m * v + g) - wd * w),
    ])


def pytorch_sgd_update(w, buf, g, lr, momentum, weight_decay):
    # torch.optim.SGD: the decay is added to the gradient, the rate multiplies the buffer.
    buf *= momentum
    buf += g + weight_decay * w
    w -= lr * buf


register(Exercise(
    name="pytorch_sgd_update", lesson=8,
    task="PyTorch's momentum SGD step, in place: the learning rate outside the buffer",
    signature="def pytorch_sgd_update(w, buf, g, lr, momentum, weight_decay):",
    cases=_sgd_cases, outputs=("w", "v"), call=_call_sgd,
    reference=torch_sgd_update, reference_name="torch.optim.SGD (its documented update)",
    solution=pytorch_sgd_update, diagnose=_diagnose_pytorch_sgd,
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
    return first_match(rates, [
        ("you lowered the rate after `patience` epochs without improvement; the paper has no "
         "patience (a person watched the curve), and tinyalex's ReduceOnPlateau, like PyTorch's, "
         "waits until the error has not improved for MORE than patience epochs (bad > patience)",
         _plateau_variant(*case.args, wait=patience - 1)),
        ("after a reduction the count of epochs without improvement starts again at 0",
         _plateau_variant(*case.args, reset=False)),
        ("the rate is divided at most max_reductions times (the paper reduced it three times "
         "in all)",
         _plateau_variant(*case.args, limit=False)),
        ("an improvement is measured against the BEST error so far, not the last epoch's",
         _plateau_variant(*case.args, against_last=True)),
        ("an improvement must be larger than min_delta = 1e-4 (a change in the fifth decimal "
         "is noise)", _plateau_variant(*case.args, delta=0.0)),
    ])


def plateau_rates(val_errors, lr, patience, max_reductions):
    rates, best, bad, reductions = [lr], float("inf"), 0, 0
    for error in val_errors:
        if error < best - 1e-4:  # a real improvement: remember it, start counting again
            best, bad = error, 0
        else:
            bad += 1
            if bad > patience and reductions < max_reductions:  # MORE than patience epochs
                lr, bad, reductions = lr * 0.1, 0, reductions + 1
        rates.append(lr)  # the rate of the next epoch
    return rates


register(Exercise(
    name="plateau_rates", lesson=8,
    answers=(ReduceOnPlateau.step,),
    task="the paper's schedule: divide the rate by 10 when validation error stops improving",
    signature="def plateau_rates(val_errors, lr, patience, max_reductions):",
    cases=_plateau_cases, outputs=("rates",),
    reference=_own_plateau_rates, reference_name="tinyalex.optim.ReduceOnPlateau",
    solution=plateau_rates, diagnose=_diagnose_plateau,
    hint="Keep the best error and a count of epochs without an improvement of more than 1e-4; "
         "when the count exceeds patience (and fewer than max_reductions were made), multiply "
         "the rate by 0.1 and reset the count. Return [lr, rate after epoch 1, ...]."))


def _he_cases():
    values = [(96, 3, 11, 11), (256, 48, 5, 5), (4096, 9216), (10, 64), (384, 192, 3, 3),
              (16, 3, 5, 5)]
    return [Case((v,), label=f"w {dims(v)}") for v in values]


def _own_he_std(w_shape):
    return float(np.sqrt(2.0 / np.prod(w_shape[1:])))


def _diagnose_he(case, got, want):
    (shape,) = case.args
    fan_in, fan_out = np.prod(shape[1:]), shape[0] * np.prod(shape[2:])
    return first_match(got["std"], [
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


def he_std(w_shape):
    # A ReLU zeroes half its inputs, so keeping the variance of the signal needs
    # Var(w) = 2 / fan_in; fan_in = the inputs of ONE output unit: C * KH * KW (or D for fc).
    fan_in = int(np.prod(w_shape[1:]))
    return np.sqrt(2.0 / fan_in)


register(Exercise(
    name="he_std", lesson=8,
    task="the standard deviation of He initialisation for a weight of a given shape",
    signature="def he_std(w_shape):",
    cases=_he_cases, outputs=("std",),
    reference=_own_he_std, reference_name="tinyalex.model.init_params (init 'he')",
    solution=he_std, diagnose=_diagnose_he,
    hint="fan_in is the product of every axis but the first (C * KH * KW for a convolution, D "
         "for a fully connected layer); the standard deviation is sqrt(2 / fan_in)."))
