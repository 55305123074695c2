"""The dead-network check: after every epoch, one line when the network stops learning from
its input (and one more if it dies), naming the likely cause and the recipe.

After every epoch the network is shown the first DEAD_CHECK_IMAGES validation images
(centre crops, dropout off). It has stopped learning from them when no class's softmax
probability varies by as much as SAME_ANSWER between them: it gives every image the same
answer, so its validation loss is flat at about ln(classes) or above. A healthy network,
even one epoch into a short run, answers differently for different images. It is dead
when, besides, a ReLU layer is silent (fewer than SILENT of its outputs positive): ReLU's
derivative is 0 where it is off, so (almost) no gradient reaches the layers below it and
training on cannot revive them. The warning names the likely cause: steps too large (the
training loss rose far above ln(classes) in the first epoch), or an initialisation that
passes too little of the image to the output (the same network, freshly initialised,
answers every image alike too).
"""

from __future__ import annotations

import math

import numpy as np

from tinyalex.backend import to_device, to_numpy
from tinyalex.cli import rate_text
from tinyalex.data import center_crop_batch
from tinyalex.layers import softmax
from tinyalex.model import AlexNet, AlexNetConfig

SAME_ANSWER = 0.01
SILENT = 0.01
DEAD_CHECK_IMAGES = 64


def answers(net, x) -> tuple[float, dict]:
    """(spread, active) for network inputs x (N, 3, crop, crop), dropout off: the largest
    change of any class probability between the images, and for each ReLU step the fraction
    of its outputs that are positive."""
    probs = to_numpy(softmax(net.forward(to_device(x, net.device), keep_activations=True)))
    active = {step.name: float((to_numpy(net.activations[step.name]) > 0).mean())
              for step in net.steps if step.kind == "relu"}
    net.activations = {}
    return float((probs.max(axis=0) - probs.min(axis=0)).max()), active   # (N, C) -> one


def dead_network(net, images: np.ndarray, stats: dict, seed: int) -> dict | None:
    """None while the network answers differently for different images; when it gives them
    all the same answer, {"images", "spread", "layer", "active", "spread_at_init"}: the number
    of images checked, the largest change of any class probability between them, the ReLU
    step with the fewest positive outputs and that fraction, and the spread of the same
    network at its initialisation (drawn again from its config and ``seed``).

    images: uint8 (N, S, S, 3), N >= 2 (centre-cropped and mean-subtracted here).
    """
    x = center_crop_batch(images, stats["mean"], net.config.input_size)   # (N, 3, crop, crop)
    spread, active = answers(net, x)
    if len(x) < 2 or not spread < SAME_ANSWER:  # (NaN outputs: the next step stops the run)
        return None
    layer = min(active, key=active.get)
    initial = AlexNet(net.config, seed=seed).to(net.device)
    return {"images": len(x), "spread": spread, "layer": layer, "active": active[layer],
            "spread_at_init": answers(initial, x)[0]}


def dead_recipe(config: AlexNetConfig, lr: float) -> str:
    """The options that start a network of this config learning (docs/training.md: A dead
    network)."""
    if config.init == "paper":
        return "--init he"
    return f"--lr {rate_text(lr / 10)}"


def dead_warning(dead: dict, net, epoch: int, history: list[dict], lr: float) -> str:
    """The one-line warning: what shows that the network is dead, the likely cause, the
    recipe."""
    classes = net.config.num_classes
    silent = dead["active"] < SILENT
    state = "is dead" if silent else "has stopped learning"
    text = (f"warning: the network {state} after epoch {epoch}: it gives all "
            f"{dead['images']} validation images checked the same answer (val loss "
            f"{history[-1]['val_loss']:.4g}; ln {classes} = {math.log(classes):.4g})")
    names = [step.name for step in net.steps]
    layer = names[names.index(dead["layer"]) - 1]  # the conv or fc step the ReLU follows
    if silent:
        text += (f" and {100 * (1 - dead['active']):.1f}% of {layer}'s ReLU outputs are 0, so "
                 f"almost no gradient reaches the layers below {layer}")
    first = history[0]["train_loss"]
    if first > 1.5 * math.log(classes):
        text += (f". Likely cause: steps too large for this initialisation at lr "
                 f"{rate_text(lr)} (epoch 1's training loss was {first:.3g})")
    elif dead["spread_at_init"] < SAME_ANSWER:
        text += (f". Likely cause: its initialisation ({net.config.init}) passes too little "
                 "of the image to the output (it answered every image alike before training "
                 "too)")
    text += ". Training on will not revive it" if silent else ". It may not recover"
    return (text + f": start a new run with {dead_recipe(net.config, lr)} (docs/training.md: "
            "A dead network)")
