"""Lesson 11's helpers: Fashion-MNIST in memory (or the built-in shapes when it is absent).

    data = load_real_images()          # the Debian package's Fashion-MNIST, a balanced subset
    data.note                          # where the images came from (or how to install them)
    data.x_train, data.y_train         # network input: float32 (N, 3, 28, 28), mean removed

The four IDX files are read straight into memory with ``tinyalex.data.idx.read_pair`` (about
a second for the 70,000 images); nothing is written anywhere. Training uses ``PRESET``, the
``fashion`` preset (sized for 28-pixel images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyalex.data import idx
from tinyalex.data.imageset import DataError
from tinyalex.data.stats import compute_stats

FASHION_FOLDER = idx.DEBIAN_FASHION_MNIST
INSTALL = idx.INSTALL
PRESET = "fashion"  # the preset sized for 28-pixel images (tinyalex.model.PRESETS)


@dataclass
class RealSet:
    """A small, balanced train / test subset, as uint8 RGB images and as network input.

    name: "Fashion-MNIST" or "the built-in shapes"; note: one line saying where the images
    came from; gray: whether the source images had one channel (repeated three times here).
    stats: ``tinyalex.data.stats.compute_stats`` of the training images (mean image, PCA).
    """

    name: str
    note: str
    classes: list
    gray: bool
    train_images: np.ndarray  # uint8 (N, S, S, 3)
    y_train: np.ndarray  # int64 (N,)
    test_images: np.ndarray
    y_test: np.ndarray
    stats: dict
    x_train: np.ndarray  # float32 (N, 3, S, S), the training mean image subtracted
    x_test: np.ndarray




def balanced(labels, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` randomly chosen items of every class (fewer if absent)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:per_class]
              for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def gray_to_rgb(images) -> np.ndarray:
    """uint8 (N, S, S) -> uint8 (N, S, S, 3): the one channel repeated (section 2 wants RGB)."""
    return np.repeat(np.asarray(images)[:, :, :, None], 3, axis=3)


def to_input(images, mean_chw) -> np.ndarray:
    """uint8 (N, S, S, 3) -> float32 (N, 3, S, S) minus the mean image (3, S, S)."""
    return images.transpose(0, 3, 1, 2).astype(np.float32) - mean_chw


def load_real_images(folder=FASHION_FOLDER, train_per_class: int = 500,
                     test_per_class: int = 100, size: int | None = None, seed: int = 0,
                     ) -> RealSet:
    """Fashion-MNIST from ``folder`` (the four IDX files), a balanced subset of both splits.

    Without the files, the built-in shapes drawn in memory instead (and ``note`` says how to
    install Fashion-MNIST). size: the side the network needs (default: the preset's
    input_size); Fashion-MNIST's 28 pixels are resized with bilinear filtering if it differs.
    """
    from tinyalex.data.resample import resize_batch
    from tinyalex.model import PRESETS

    size = size or PRESETS[PRESET].input_size
    try:
        files = idx.find_files("fashion-mnist", Path(folder))
    except DataError as err:
        from tinyalex.data.synthetic import CLASSES
        from tinyalex.lessons.images import shapes_images

        train, y_train = shapes_images(train_per_class, size, "train", seed)
        test, y_test = shapes_images(test_per_class, size, "val", seed)
        del err  # it speaks of command-line options; the lesson says it in its own terms
        note = (f"Fashion-MNIST was not found in {folder}. Install it with `{INSTALL}` (or set "
                "FASHION_MNIST at the top of the lesson to a folder holding its four IDX "
                "files) and run the lesson again; until then it goes on with the built-in "
                "shapes.")
        name, classes, gray = "the built-in shapes", list(CLASSES), False
    else:
        classes = idx.CLASSES["fashion-mnist"]
        train_all, labels_all = idx.read_pair(*files["train"], len(classes))
        test_all, test_labels_all = idx.read_pair(*files["test"], len(classes))
        pick, pick_test = (balanced(labels_all, train_per_class, seed),
                           balanced(test_labels_all, test_per_class, seed))
        train = resize_batch(gray_to_rgb(train_all[pick]), size)
        test = resize_batch(gray_to_rgb(test_all[pick_test]), size)
        y_train, y_test = labels_all[pick], test_labels_all[pick_test]
        note = (f"Fashion-MNIST from {folder}: {len(train)} of its {len(train_all)} training "
                f"images and {len(test)} of its {len(test_all)} test images, "
                f"{size}x{size}, gray repeated on R, G and B.")
        name, gray = "Fashion-MNIST", True
    train, test = np.ascontiguousarray(train), np.ascontiguousarray(test)
    stats = compute_stats(train)
    return RealSet(name, note, list(classes), gray, train, np.asarray(y_train, np.int64), test,
                   np.asarray(y_test, np.int64), stats, to_input(train, stats["mean"]),
                   to_input(test, stats["mean"]))


def predict(net, x, batch_size: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, softmax confidence in it) for every image of x, dropout off."""
    from tinyalex import layers

    classes, confidence = [], []
    for start in range(0, len(x), batch_size):
        probs = layers.softmax(net.forward(x[start : start + batch_size], train=False))
        classes.append(np.argmax(probs, axis=1))
        confidence.append(probs.max(axis=1))
    return np.concatenate(classes), np.concatenate(confidence)


def most_confused(confusion, count: int) -> np.ndarray:
    """int64 (count, 2): the (true, predicted) pairs with the most mistakes, most first
    (ties: the earlier pair in row-major order first); the diagonal is not a mistake."""
    off = np.array(confusion, dtype=np.int64)
    np.fill_diagonal(off, -1)
    order = np.argsort(-off.ravel(), kind="stable")[:count]
    return np.stack(np.unravel_index(order, off.shape), axis=1)
