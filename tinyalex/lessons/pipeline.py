"""The paper's whole input pipeline and training loop, small: for lessons 7 (data) and 8 (learning).

lesson 7 (sections 2, 4.1) and lesson 8 (section 5) train on uint8 images as ``train.py`` does
-- mean image and RGB PCA from the training set (``tinyalex.data.compute_stats``), random
crops, flips and PCA lighting per batch (``tinyalex.data.BatchLoader``), the paper's SGD with a
schedule (``tinyalex.optim``) -- on networks small enough for a laptop:

    train_set, val_set = shapes_sets(100, 50, size=27)      # ImageSets of the built-in shapes
    stats = compute_stats(train_set)                         # mean (3, 27, 27), PCA
    net = ExperimentNet(crop_config(), seed=0)               # 23-pixel crops of 27
    history = train_epochs(net, train_set, stats, epochs=8, lr=0.02, val_set=val_set)
    center_error(net, val_set, stats), ten_crop_error(net, val_set, stats)

``History`` keeps what a learning curve needs: the loss and error of every step, and per epoch
the rate used and the validation error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from tinyalex.data import BatchLoader, ImageSet, center_crop_batch, ten_crop_predict
from tinyalex.lessons import experiments
from tinyalex.lessons.images import shapes_images
from tinyalex.optim import SGD, ReduceOnPlateau

CROP = 23  # the network input: micro_config's 23 pixels, cut from 27-pixel images
IMAGE = 27


def shapes_sets(per_class: int, val_per_class: int, size: int = IMAGE, seed: int = 0,
                ) -> tuple[ImageSet, ImageSet]:
    """(train, val) ImageSets of the built-in shapes at size x size, drawn in memory."""
    from tinyalex.data import synthetic

    classes = list(synthetic.CLASSES)
    sets = []
    for split, count in (("train", per_class), ("val", val_per_class)):
        images, labels = shapes_images(count, size, split, seed)
        sets.append(ImageSet(np.array(images), np.array(labels), classes, name=split))
    return sets[0], sets[1]


def crop_config(crop: int = CROP, image: int = IMAGE, **options):
    """micro_config for crop x crop inputs cut from image x image pictures (options as there)."""
    return experiments.micro_config(size=crop, **options).replace(image_size=image)


@dataclass
class History:
    """What ``train_epochs`` measured: per step (losses, errors: the mini-batch's, before the
    step's update) and per epoch (lrs: the rate used in it; val_errors: after it)."""

    losses: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    val_errors: list[float] = field(default_factory=list)
    steps_per_epoch: int = 0
    seconds: float = 0.0


def center_error(net, images_set: ImageSet, stats: dict, crop: int | None = None,
                 batch_size: int = 500) -> float:
    """Top-1 error on the centre crops of a set (dropout off): what ``train.py`` validates on."""
    crop = crop or net.config.input_size
    wrong = 0
    for start in range(0, len(images_set), batch_size):
        x = center_crop_batch(images_set.images[start : start + batch_size], stats["mean"], crop)
        logits = net.forward(x, train=False)
        wrong += int(np.sum(np.argmax(logits, axis=1)
                            != images_set.labels[start : start + batch_size]))
    return wrong / len(images_set)


def ten_crop_error(net, images_set: ImageSet, stats: dict, crop: int | None = None,
                   batch_size: int = 500) -> float:
    """Top-1 error when the softmax outputs of the ten crops are averaged (section 4.1)."""
    crop = crop or net.config.input_size
    wrong = 0
    for start in range(0, len(images_set), batch_size):
        probs = ten_crop_predict(lambda x: net.forward(x, train=False),
                                 images_set.images[start : start + batch_size], crop,
                                 stats["mean"])
        wrong += int(np.sum(np.argmax(probs, axis=1)
                            != images_set.labels[start : start + batch_size]))
    return wrong / len(images_set)


def train_epochs(net, train_set: ImageSet, stats: dict, epochs: int, lr: float,
                 batch_size: int = 32, seed: int = 0, augment: bool = True,
                 lighting: bool = True, momentum: float = 0.9, weight_decay: float = 5e-4,
                 val_set: ImageSet | None = None, schedule=None) -> History:
    """Train ``net`` as ``train.py`` does, small: BatchLoader batches, the paper's SGD.

    augment: random crops and flips (and PCA lighting if ``lighting``); else centre crops.
    schedule: an object with ``lr`` and ``step(val_error)`` (``ReduceOnPlateau``: the
    paper's rule), consulted after each epoch with the validation error; it needs val_set.
    """
    crop = net.config.input_size
    optimizer = SGD(net.params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                    impl=net.impl)
    loader = BatchLoader(train_set, batch_size, crop, stats, train=True, seed=seed,
                         random_crop=augment, flip=augment, lighting=augment and lighting)
    history = History(steps_per_epoch=len(loader))
    start = time.perf_counter()
    for epoch in range(epochs):
        loader.set_epoch(epoch)  # a new shuffle, new crops, flips and lighting
        history.lrs.append(optimizer.lr)
        for x, y in loader:
            loss, logits, dlogits = net.loss(x, y, train=True)
            history.losses.append(float(loss))
            history.errors.append(float(np.mean(np.argmax(logits, axis=1) != y)))
            optimizer.step(net.params, net.backward(dlogits))
        if val_set is not None:
            history.val_errors.append(center_error(net, val_set, stats, crop))
            if schedule is not None:
                optimizer.lr = schedule.step(history.val_errors[-1])
    history.seconds = time.perf_counter() - start
    return history


def plateau(lr: float, patience: int = 1) -> ReduceOnPlateau:
    """The paper's schedule (section 5) with a patience that suits a few short epochs."""
    return ReduceOnPlateau(lr, factor=0.1, patience=patience, max_reductions=3)
