"""Small, honest experiments for the lessons: train a little AlexNet-shaped net and measure it.

The paper's claims about its mechanisms -- ReLUs train faster than tanh units (figure 1),
LRN and overlapping pooling lower the error (sections 3.3, 3.4) -- are measured here on
networks small enough to train in seconds on a laptop CPU:

    config = micro_config(lrn=False)                    # an AlexNet-shaped net for 32 px input
    net = ExperimentNet(config, activation="tanh", seed=0)
    run = train(net, x, y, steps=300, lr=0.02)          # the paper's SGD; run.errors per step
    steps_to_error(run.errors, target=0.5, window=25)   # figure 1's measure

``ExperimentNet`` is ``tinyalex.model.AlexNet`` -- the same layer sequence, the same layer
functions -- with one change: the activation of every ReLU step can be tanh. ``train`` is
the paper's SGD on in-memory arrays (no augmentation, as figure 1 used no regularization);
its batches depend only on the seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from tinyalex.model import AlexNet, AlexNetConfig, ConvSpec, Step
from tinyalex.optim import SGD

ACTIVATIONS = ("relu", "tanh")


def micro_config(size: int = 23, lrn: bool = True, pool_size: int = 3, pool_stride: int = 2,
                 widths: tuple[int, int, int] = (16, 32, 32), hidden: int = 64,
                 dropout: float = 0.0, num_classes: int = 10) -> AlexNetConfig:
    """An AlexNet-shaped net for size x size inputs: three convolutions, two fc layers.

    conv1 5x5 -> ReLU -> [LRN] -> pool; conv2 5x5 (groups=2: the two towers) -> ReLU ->
    [LRN] -> pool; conv3 3x3 -> ReLU -> pool; fc -> ReLU -> [dropout]; fc. The pools are
    pool_size / pool_stride (the paper's 3 / 2 overlap; 2 / 2 does not). He initialisation
    and inputs scaled to about unit variance, as the mini preset.

    The default 23 pixels make every pooled map odd-sized (23 -> 11 -> 5 -> 2), so that
    3 / 2 and 2 / 2 pooling give maps of the same size, as in the paper (55 -> 27 -> 13 -> 6).
    """
    c1, c2, c3 = widths
    return AlexNetConfig(
        name="micro", image_size=size, input_size=size, input_scale=1 / 64,
        convs=(ConvSpec(c1, 5, pad=2, lrn=lrn, pool=True),
               ConvSpec(c2, 5, pad=2, groups=2, lrn=lrn, pool=True),
               ConvSpec(c3, 3, pad=1, pool=True)),
        hidden=(hidden,), num_classes=num_classes, dropout=dropout,
        pool_size=pool_size, pool_stride=pool_stride, init="he", bias_one=())


class ExperimentNet(AlexNet):
    """AlexNet with a choice of activation: "relu" (the paper) or "tanh" (figure 1's baseline).

    init: "config" keeps the config's initialisation; "lecun" draws every weight matrix but
    the last from N(0, 1 / fan_in), the usual scale for tanh units (He's N(0, 2 / fan_in)
    is the ReLU's: a ReLU zeroes half of its inputs).
    """

    def __init__(self, config: str | AlexNetConfig = "mini", activation: str = "relu",
                 seed: int = 0, impl: str = "auto", init: str = "config", dtype=np.float32):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if init not in ("config", "lecun"):
            raise ValueError(f"init must be 'config' or 'lecun', got {init!r}")
        super().__init__(config, seed=seed, impl=impl, dtype=dtype)
        self.activation = activation
        if activation == "tanh":  # same places in the sequence, another function
            self.steps = [Step(s.name.replace("relu", "tanh"), "tanh") if s.kind == "relu"
                          else s for s in self.steps]
        if init == "lecun":
            rng = np.random.default_rng([seed, 2])
            last = [name for name in self.params if name.endswith(".w")][-1]
            for name, w in self.params.items():
                if name.endswith(".w") and name != last:
                    fan_in = int(np.prod(w.shape[1:]))
                    w[...] = rng.standard_normal(w.shape) * np.sqrt(1.0 / fan_in)  # in place

    def step_forward(self, step: Step, x, train: bool = False):
        if step.kind == "tanh":
            return self.layers.tanh_forward(x)
        return super().step_forward(step, x, train)

    def step_backward(self, step: Step, dout, cache, input_grad: bool = True):
        if step.kind == "tanh":
            return self.layers.tanh_backward(dout, cache), {}
        return super().step_backward(step, dout, cache, input_grad)


@dataclass
class Run:
    """What ``train`` measured. errors[k], losses[k]: the mini-batch's top-1 error and loss
    at step k + 1 (before that step's update). val_error: after the last step, or None."""

    label: str
    errors: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    val_error: float | None = None
    train_error: float | None = None  # on the whole training set, after the last step

    def running_error(self, window: int) -> np.ndarray:
        """The mean of the last `window` mini-batch errors after each step (from step window)."""
        return np.convolve(self.errors, np.ones(window) / window, mode="valid")


def batches(n: int, batch_size: int, steps: int, seed: int):
    """The index arrays of `steps` mini-batches: shuffled epochs of range(n), from a seed."""
    rng = np.random.default_rng(seed)
    order = np.empty(0, dtype=np.int64)
    for _ in range(steps):
        if len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(n)])
        index, order = order[:batch_size], order[batch_size:]
        yield index


def error_rate(net: AlexNet, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 error of net on (x, y), dropout off."""
    wrong = 0
    for start in range(0, len(x), batch_size):
        logits = net.forward(x[start : start + batch_size], train=False)
        wrong += int(np.sum(np.argmax(logits, axis=1) != y[start : start + batch_size]))
    return wrong / len(x)


def train(net: AlexNet, x: np.ndarray, y: np.ndarray, steps: int, lr: float,
          batch_size: int = 32, momentum: float = 0.9, weight_decay: float = 0.0,
          seed: int = 0, x_val=None, y_val=None, label: str = "") -> Run:
    """Train net with the paper's SGD (section 5) on in-memory arrays; return what happened.

    x float32 (N, 3, S, S), mean-subtracted; y int64 (N,). Batches are drawn by
    ``batches(len(x), batch_size, steps, seed)``. Stops early (and says so in the label) if
    the loss stops being finite -- a learning rate too large for the net.
    """
    optimizer = SGD(net.params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                    impl=net.impl)
    run = Run(label or f"{getattr(net, 'activation', 'relu')} lr={lr}")
    start = time.perf_counter()
    for index in batches(len(x), batch_size, steps, seed):
        loss, logits, dlogits = net.loss(x[index], y[index], train=True)
        if not np.isfinite(float(loss)):
            run.label += " (diverged)"
            run.errors.append(1.0)
            break
        run.losses.append(float(loss))
        run.errors.append(float(np.mean(np.argmax(logits, axis=1) != y[index])))
        optimizer.step(net.params, net.backward(dlogits))
    run.seconds = time.perf_counter() - start
    run.train_error = error_rate(net, x, y)
    if x_val is not None:
        run.val_error = error_rate(net, x_val, y_val)
    return run


def steps_to_error(errors, target: float, window: int) -> int | None:
    """The first step count k at which mean(errors[k - window : k]) <= target, else None.

    Figure 1's measure, on a running mean so that one lucky mini-batch does not count.
    """
    running = np.convolve(np.asarray(errors, dtype=np.float64), np.ones(window) / window,
                          mode="valid")  # running[i] = mean of errors[i : i + window]
    reached = np.nonzero(running <= target + 1e-12)[0]
    return int(reached[0]) + window if len(reached) else None


def ablation(configs: dict[str, AlexNetConfig], x, y, steps: int, lr: float, seeds,
             x_val=None, y_val=None, **train_args) -> dict[str, list[Run]]:
    """Train each config for several seeds (the same seeds, so the same batches for all).

    Returns {label: [Run per seed]}; each Run has train_error and (with x_val) val_error.
    """
    return {label: [train(ExperimentNet(config, seed=seed), x, y, steps, lr, seed=seed,
                          x_val=x_val, y_val=y_val, label=f"{label} seed {seed}", **train_args)
                    for seed in seeds]
            for label, config in configs.items()}


def summarize(values) -> str:
    """'41.2% +- 2.3 (min 38.9, max 43.0, 3 seeds)' for error rates in [0, 1]."""
    values = 100 * np.asarray(values, dtype=np.float64)
    return (f"{values.mean():.1f}% +- {values.std(ddof=1) if len(values) > 1 else 0:.1f} "
            f"(min {values.min():.1f}, max {values.max():.1f}, {len(values)} seeds)")

