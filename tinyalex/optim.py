"""Stochastic gradient descent exactly as the paper writes it, and its learning-rate schedules.

Section 5: batch 128, momentum 0.9, weight decay 0.0005, and

    v <- 0.9 v - 0.0005 * lr * w - lr * dL/dw
    w <- w + v

The learning rate sits *inside* the velocity. PyTorch's SGD keeps it outside
(v <- 0.9 v + g; w <- w - lr v), which is the same for a fixed rate but not when the rate is
divided by 10: here the velocity built at the old rate keeps its size for a while; there it
shrinks at once.

Weight decay applies to the weights only, not to the biases, as in Krizhevsky's cuda-convnet
layer definitions and Caffe's reference AlexNet (bias decay 0): decay is a prior that keeps
the *weights* small; pulling the biases (which the paper initialises to 1 in conv2, 4, 5,
fc6, fc7 precisely to start the ReLUs positive) towards 0 regularises nothing useful.
"""

from __future__ import annotations

import math

from tinyalex.backend import get_array_module
from tinyalex.impl import IMPLEMENTATIONS, impl_module
from tinyalex.layers.sgd import sgd_update  # the rule itself, on one parameter

__all__ = ["SGD", "ReduceOnPlateau", "Schedule", "StepSchedule", "decays", "sgd_update"]


def decays(name: str) -> bool:
    """Whether a parameter gets weight decay: weights (``*.w``) yes, biases (``*.b``) no."""
    return name.endswith(".w")


class SGD:
    """The paper's momentum SGD over a dict of parameters (updated in place).

    velocity: a dict with the same keys as the parameters (zeros at the start), on the same
    device. ``lr`` may be changed between steps (the schedules below do). ``impl``: the
    implementation that computes the update, the network's own (pass ``impl=net.impl``):
    "textbook" is ``tinyalex.layers.sgd_update`` (the rule above), "fast" its chunked twin
    ``tinyalex.fast.sgd_update``, "cuda" the one-pass kernel ``tinyalex.cuda.layers.sgd_update``
    (bit for bit this update). It is not chosen here: the network (or the training run) has
    chosen it already, for where the parameters live.

    lr_scale: {parameter name: factor}, a learning-rate multiplier per parameter (default 1),
    e.g. ``{"conv1.w": 0.0, "conv1.b": 0.0}``. The paper uses one rate for every layer; the
    2012 code lowered conv1's and conv2's rates by hand late in training and then set them
    to 0. The parameter's update is this rule with the rate ``lr * factor``, in every
    implementation (the factor scales the rate passed to the update, and weight decay with
    it). A factor of 0 adds no new step: a fresh optimiser leaves the parameter exactly as it
    is; set mid-run, the velocity already built still moves it, shrinking by ``momentum``
    each step (in all, momentum / (1 - momentum) times the last velocity); the 2012 code
    lowered the rate to 1e-5 for seven epochs before setting it to 0, which leaves little
    velocity to carry. ``set_lr_scale`` changes it between steps.
    """

    def __init__(self, params: dict, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, impl: str = "textbook", lr_scale: dict | None = None):
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.lr_scale: dict[str, float] = {}
        self._names = tuple(params)
        self.set_lr_scale(lr_scale or {})
        self.velocity = {name: get_array_module(p).zeros_like(p) for name, p in params.items()}
        if impl not in IMPLEMENTATIONS or impl == "auto":
            raise ValueError(f"SGD impl must be the network's implementation (textbook, fast or "
                             f"cuda: pass impl=net.impl), got {impl!r}")
        self.impl = impl
        self._update = impl_module(impl).sgd_update

    def set_lr_scale(self, lr_scale: dict) -> None:
        """Replace the per-parameter rate multipliers (see the class docstring)."""
        unknown = sorted(set(lr_scale) - set(self._names))
        if unknown:
            raise ValueError(f"SGD lr_scale: no parameter named {', '.join(unknown)}; the "
                             f"parameters are {', '.join(self._names)}")
        bad = {name: f for name, f in lr_scale.items() if not float(f) >= 0}
        if bad:
            raise ValueError(f"SGD lr_scale: factors must be >= 0 (0 freezes), got {bad}")
        self.lr_scale = {name: float(f) for name, f in lr_scale.items()}

    def step(self, params: dict, grads: dict) -> None:
        """One update of every parameter, in place: v = m v - wd lr w - lr g; w += v
        (lr times the parameter's ``lr_scale`` factor)."""
        for name, w in params.items():
            decay = self.weight_decay if decays(name) else 0.0
            lr = self.lr * self.lr_scale.get(name, 1.0)
            self._update(w, self.velocity[name], grads[name], lr, self.momentum, decay)

    def state_dict(self) -> dict:
        """Hyperparameters (plain numbers); the velocity is saved separately as arrays."""
        state = {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}
        if self.lr_scale:  # only when set: checkpoints of plain runs stay as they were
            state["lr_scale"] = dict(self.lr_scale)
        return state

    def load_state_dict(self, state: dict, velocity: dict) -> None:
        self.lr = float(state["lr"])
        self.momentum = float(state["momentum"])
        self.weight_decay = float(state["weight_decay"])
        self.set_lr_scale(state.get("lr_scale", {}))
        for name, v in velocity.items():
            self.velocity[name][...] = get_array_module(self.velocity[name]).asarray(v)


class Schedule:
    """What both schedules share: ``lr``, and a state that is plain numbers (for checkpoints)."""

    kind = ""
    lr: float

    def state_dict(self) -> dict:
        return dict(vars(self), kind=self.kind)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            if key != "kind":
                setattr(self, key, value)


class ReduceOnPlateau(Schedule):
    """Divide the rate by ``factor`` when validation error stops improving (section 5).

    The paper "divided the learning rate by 10 when the validation error rate stopped
    improving with the current learning rate", three times in all. After each epoch call
    ``step(val_error)``; it returns the rate for the next epoch. ``patience``: epochs without
    an improvement of more than ``min_delta`` before a reduction.
    """

    kind = "plateau"

    def __init__(self, lr: float, factor: float = 0.1, patience: int = 2,
                 max_reductions: int = 3, min_delta: float = 1e-4):
        self.lr = float(lr)
        self.factor = float(factor)
        self.patience = int(patience)
        self.max_reductions = int(max_reductions)
        self.min_delta = float(min_delta)
        self.best = math.inf
        self.bad_epochs = 0
        self.reductions = 0

    def step(self, val_error: float, epoch: int | None = None) -> float:
        if val_error < self.best - self.min_delta:
            self.best = float(val_error)
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience and self.reductions < self.max_reductions:
                self.lr *= self.factor
                self.reductions += 1
                self.bad_epochs = 0
        return self.lr


class StepSchedule(Schedule):
    """A fixed schedule: the rate is divided by ``factor`` at each epoch in ``milestones``.

    ``step(val_error, epoch)`` returns the rate for epoch ``epoch + 1`` (epochs count from 0).
    """

    kind = "step"

    def __init__(self, lr: float, milestones=(), factor: float = 0.1):
        self.base_lr = float(lr)
        self.milestones = sorted(int(m) for m in milestones)
        self.factor = float(factor)
        self.lr = self.rate_at(0)

    def rate_at(self, epoch: int) -> float:
        passed = sum(1 for m in self.milestones if epoch >= m)
        return self.base_lr * self.factor**passed

    def step(self, val_error: float, epoch: int) -> float:
        self.lr = self.rate_at(epoch + 1)
        return self.lr
