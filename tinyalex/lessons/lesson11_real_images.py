"""Lesson 11, real images (``notebooks/11_real_images.ipynb``): Fashion-MNIST in memory.

    data = load_real_images()          # the Debian package's Fashion-MNIST, a balanced subset
    data.note                          # where the images came from (or how to install them)
    data.x_train, data.y_train         # network input: float32 (N, 3, 28, 28), mean removed

The four IDX files are read straight into memory with ``tinyalex.data.idx.read_pair`` (about
a second for the 70,000 images); nothing is written anywhere. Training uses ``PRESET``, the
``fashion`` preset (sized for 28-pixel images).

Exercises: gray images to the network's input, the confusion matrix, the
most confused pairs.
"""


from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyalex import layers
from tinyalex.data import idx
from tinyalex.data.imageset import DataError
from tinyalex.data.stats import compute_stats
from tinyalex.evaluate import confusion_matrix
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    first_match,
    register,
)

LESSON = Lesson(
    11, "11_real_images.ipynb", "Real images", ("2", "4.1"),
    "Fashion-MNIST (without it the shapes, the training run skipped): gray to three channels, "
    "PCA lighting as brightness, 28 pixels; a short run, its confusion matrix and "
    "the test images it gets wrong")


# ---- the lesson's helpers ------------------------------------------------------------------

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
                "files) and run the lesson again. Until then it shows the built-in shapes "
                "where it can, and skips the training run and what needs a trained network "
                "(the fashion preset on the shapes stays near chance in a short run: a "
                "confusion matrix of a net that guesses teaches nothing).")
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


def skipped(data: RealSet, what: str) -> bool:
    """Whether the lesson runs without Fashion-MNIST, in which case ``what`` is skipped, and
    says so (the lesson's cells: ``if not skipped(data, "..."): ...``)."""
    if data.gray:  # Fashion-MNIST is here
        return False
    print(f"(skipped without Fashion-MNIST: {what}; `{INSTALL}` installs it)")
    return True


def predict(net, x, batch_size: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, softmax confidence in it) for every image of x, dropout off."""

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


# ---- the exercises -------------------------------------------------------------------------

def _gray_cases():
    cases = []
    for seed, (n, size) in enumerate([(4, 28), (2, 9), (3, 12), (1, 5)]):
        rng = np.random.default_rng(seed + 600)
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        mean = (rng.random((3, size, size)) * 200).astype(np.float32)
        mean[:] = mean[0]  # a gray set's mean image is the same on the three channels
        cases.append(Case((images, mean), label=f"{n} images of {size}x{size}"))
    return cases


def _diagnose_gray(case, got, want):
    images, mean = case.args
    out = np.asarray(got["x"])
    n, s = images.shape[0], images.shape[1]
    if out.shape == (n, s, s, 3):
        return "channels last: the network reads (N, 3, S, S), channels first"
    if out.shape == (n, 1, s, s):
        return ("one channel: conv1's kernels are 3 deep (section 2's RGB); repeat the gray "
                "channel three times")
    if out.shape != (n, 3, s, s):
        return None
    rgb = np.repeat(images[:, None], 3, axis=1).astype(np.float64)
    if out.dtype.kind in "ui":
        return "uint8 arithmetic wraps around below 0: convert to float32 before subtracting"
    return first_match(out, [
        ("the mean image is not subtracted (section 2: the only preprocessing)", rgb),
        ("subtract the mean IMAGE (a value per pixel and channel), not one number",
         rgb - mean.mean()),
        ("do not divide by 255: the network scales its input itself (input_scale); section 2 "
         "feeds the centred 0..255 values", rgb / 255 - mean),
        ("divide nothing: the centred 0..255 values, as section 2 says", (rgb - mean) / 255),
    ])


def gray_to_input(images, mean):
    # uint8 (N, S, S) grayscale -> float32 (N, 3, S, S): the one channel on R, G and B (the
    # network reads three), minus the training set's mean image (3, S, S) (section 2).
    rgb = np.repeat(images[:, None, :, :], 3, axis=1).astype(np.float32)  # (N, 3, S, S)
    return rgb - mean


register(Exercise(
    name="gray_to_input", lesson=11,
    task="grayscale uint8 images (N, S, S) -> the network's input (N, 3, S, S), mean removed",
    signature="def gray_to_input(images, mean):",
    cases=_gray_cases, outputs=("x",),
    reference=lambda images, mean: to_input(gray_to_rgb(images), mean),
    reference_name="tinyalex.lessons.lesson11_real_images.to_input(gray_to_rgb(images), mean)",
    solution=gray_to_input, diagnose=_diagnose_gray,
    hint="np.repeat(images[:, None], 3, axis=1) gives (N, 3, S, S); make it float32, then "
         "subtract the mean image."))


def _confusion_cases():
    cases = []
    for seed, (n, k) in enumerate([(50, 4), (200, 10), (7, 5), (30, 3)]):
        rng = np.random.default_rng(seed + 700)
        labels = rng.integers(0, k, n)
        predictions = np.where(rng.random(n) < 0.6, labels, rng.integers(0, k, n))
        if seed == 2:
            labels[:] = np.minimum(labels, k - 2)  # the last class never occurs
            predictions[:] = np.minimum(predictions, k - 2)
        cases.append(Case((labels, predictions, k), label=f"{n} images, {k} classes"))
    return cases


def _diagnose_confusion(case, got, want):
    labels, predictions, k = case.args
    counts = np.asarray(got["confusion"])
    right = want["confusion"]
    if counts.shape != right.shape:
        present = len(np.unique(np.concatenate([labels, predictions])))
        if counts.shape == (present, present):
            return ("the matrix is num_classes x num_classes even when a class never occurs "
                    "(np.unique of the labels misses it)")
        return None
    if counts.dtype.kind == "f" and np.allclose(counts.sum(axis=1)[right.sum(axis=1) > 0], 1):
        return "return the counts; the fractions of each row come later, for the plot"
    once = np.zeros_like(right)
    once[labels, predictions] = 1
    return first_match(counts, [
        ("rows are the TRUE classes, columns the predicted ones: yours is the transpose",
         right.T),
        ("counts[labels, predictions] += 1 counts a repeated pair only once (fancy indexing "
         "does not accumulate): use np.add.at or a loop", once),
    ])


def confusion_counts(labels, predictions, num_classes):
    # counts[t, p]: the images of true class t that the network called p.
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)  # += would count repeated pairs only once
    return counts


register(Exercise(
    name="confusion_counts", lesson=11,
    task="the confusion matrix: counts[t, p] = images of true class t predicted as p",
    signature="def confusion_counts(labels, predictions, num_classes):",
    cases=_confusion_cases, outputs=("confusion",),
    reference=confusion_matrix,
    reference_name="tinyalex.evaluate.confusion_matrix",
    solution=confusion_counts, diagnose=_diagnose_confusion,
    hint="Start from a (num_classes, num_classes) array of int64 zeros and add 1 at (true, "
         "predicted) for every image. Careful: fancy-index += counts a repeated pair only once."))


def _pairs_cases():
    cases = []
    for seed, (k, count) in enumerate([(4, 3), (10, 5), (3, 6), (6, 1)]):
        rng = np.random.default_rng(seed + 800)
        confusion = rng.permutation(k * k).reshape(k, k).astype(np.int64)  # distinct counts
        confusion[np.arange(k), np.arange(k)] += 10 * k * k  # the diagonal is the largest
        cases.append(Case((confusion, count), label=f"{k} classes, the {count} largest"))
    return cases


def _diagnose_pairs(case, got, want):
    confusion, count = case.args
    pairs = np.asarray(got["pairs"])
    if pairs.shape != want["pairs"].shape:
        return None
    k = len(confusion)
    if np.any(pairs[:, 0] == pairs[:, 1]):
        return "the diagonal holds the CORRECT answers: leave it out (a class is not confused " \
               "with itself)"
    off = confusion.copy()
    np.fill_diagonal(off, -1)
    flat = np.argsort(-off.ravel(), kind="stable")[:count]
    rows, cols = np.unravel_index(flat, (k, k))
    fractions = off / np.maximum(confusion.sum(axis=0, keepdims=True), 1)
    np.fill_diagonal(fractions, -1)
    by_col = np.argsort(-fractions.ravel(), kind="stable")[:count]
    smallest = np.argsort(off.ravel(), kind="stable")
    smallest = smallest[off.ravel()[smallest] >= 0][:count]
    return first_match(pairs, [
        ("your pairs are (predicted, true); return (true, predicted): the row, then the column",
         np.stack([cols, rows], axis=1)),
        ("those are the SMALLEST counts: sort in decreasing order",
         np.stack(np.unravel_index(smallest, (k, k)), axis=1)),
        ("rank by counts, not by fractions of the predicted class (columns)",
         np.stack(np.unravel_index(by_col, (k, k)), axis=1)),
    ])


def most_confused_pairs(confusion, count):
    # The off-diagonal cells with the largest counts, as (true, predicted) rows.
    mistakes = confusion.copy()
    np.fill_diagonal(mistakes, -1)  # a correct answer is not a confusion
    flat = np.argsort(-mistakes.ravel(), kind="stable")[:count]  # ties: row-major order
    rows, cols = np.unravel_index(flat, mistakes.shape)
    return np.stack([rows, cols], axis=1)


register(Exercise(
    name="most_confused_pairs", lesson=11,
    task="the (true, predicted) pairs with the most mistakes, most first",
    signature="def most_confused_pairs(confusion, count):",
    cases=_pairs_cases, outputs=("pairs",),
    reference=most_confused,
    reference_name="tinyalex.lessons.lesson11_real_images.most_confused",
    solution=most_confused_pairs, diagnose=_diagnose_pairs,
    hint="Copy the matrix, set its diagonal below every count, np.argsort(-m.ravel()) and "
         "np.unravel_index."))
