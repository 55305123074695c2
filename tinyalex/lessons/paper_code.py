"""Lesson 12's helpers: the 2012 code's choices as data, and tinyalex's switches for them.

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
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from tinyalex.model import AlexNetConfig, get_config
from tinyalex.optim import SGD

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
    for start, layers, value in RATE_HISTORY:
        if epoch >= start and (layers == "all" or layer in layers.split(",")):
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
