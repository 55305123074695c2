"""Lesson 11, real images: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing

from tinyalex.lessons import lesson11_real_images as lesson


def test_gray_to_input_mistakes():
    def channels_last(images, mean):
        return np.repeat(images[..., None], 3, axis=3).astype(np.float32) - \
            mean.transpose(1, 2, 0)

    assert "channels last" in failing("gray_to_input", channels_last)

    def one_channel(images, mean):
        return images[:, None].astype(np.float32) - mean[:1]

    assert "repeat the gray channel" in failing("gray_to_input", one_channel)

    def no_mean(images, mean):
        return np.stack([images] * 3, axis=1).astype(np.float32)

    assert "not subtracted" in failing("gray_to_input", no_mean)

    def scalar_mean(images, mean):
        return np.stack([images] * 3, axis=1).astype(np.float32) - mean.mean()

    assert "mean IMAGE" in failing("gray_to_input", scalar_mean)

    def unit_range(images, mean):
        return np.stack([images] * 3, axis=1) / np.float32(255) - mean

    assert "do not divide by 255" in failing("gray_to_input", unit_range)


def test_confusion_mistakes():
    def transposed(labels, predictions, k):
        return lesson.confusion_counts(predictions, labels, k)

    assert "yours is the transpose" in failing("confusion_counts", transposed)

    def fancy_index(labels, predictions, k):
        counts = np.zeros((k, k), dtype=np.int64)
        counts[labels, predictions] += 1
        return counts

    assert "np.add.at" in failing("confusion_counts", fancy_index)

    def classes_seen(labels, predictions, k):
        seen = np.unique(np.concatenate([labels, predictions]))
        counts = np.zeros((len(seen), len(seen)), dtype=np.int64)
        np.add.at(counts, (np.searchsorted(seen, labels), np.searchsorted(seen, predictions)), 1)
        return counts

    assert "even when a class never occurs" in failing("confusion_counts", classes_seen)

    def fractions(labels, predictions, k):
        counts = lesson.confusion_counts(labels, predictions, k).astype(float)
        return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)

    assert "return the counts" in failing("confusion_counts", fractions)


def test_most_confused_mistakes():
    def with_diagonal(confusion, count):
        flat = np.argsort(-confusion.ravel(), kind="stable")[:count]
        return np.stack(np.unravel_index(flat, confusion.shape), axis=1)

    assert "diagonal holds the CORRECT answers" in failing("most_confused_pairs", with_diagonal)

    def swapped(confusion, count):
        return lesson.most_confused_pairs(confusion, count)[:, ::-1]

    assert "(predicted, true)" in failing("most_confused_pairs", swapped)

    def ascending(confusion, count):
        m = confusion.copy()
        np.fill_diagonal(m, confusion.max() + 1)
        flat = np.argsort(m.ravel(), kind="stable")[:count]
        return np.stack(np.unravel_index(flat, m.shape), axis=1)

    assert "SMALLEST" in failing("most_confused_pairs", ascending)


def test_the_real_images_fall_back_to_the_shapes_and_say_how_to_install(tmp_path):

    data = lesson.load_real_images(tmp_path / "missing", train_per_class=3, test_per_class=2)
    assert data.name == "the built-in shapes" and not data.gray
    assert "apt-get install dataset-fashion-mnist" in data.note and "missing" in data.note
    assert data.x_train.shape == (30, 3, 28, 28) and data.x_test.shape == (20, 3, 28, 28)
    assert np.abs(data.x_train.mean(axis=0)).max() < 1e-3  # the mean image is removed


def test_the_real_images_from_idx_files(tmp_path):
    """A fake Fashion-MNIST folder of 4 IDX files: read into memory, balanced, gray to RGB."""
    import gzip
    import struct

    rng = np.random.default_rng(0)

    def write(name, array):
        header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(
            struct.pack(">I", s) for s in array.shape)
        with gzip.open(tmp_path / f"{name}.gz", "wb") as f:
            f.write(header + array.astype(np.uint8).tobytes())

    for split, n in (("train", 60), ("t10k", 30)):
        write(f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write(f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    data = lesson.load_real_images(tmp_path, train_per_class=4, test_per_class=2, size=28)
    assert data.name == "Fashion-MNIST" and data.gray and "60 training" in data.note
    assert np.bincount(data.y_train).tolist() == [4] * 10
    assert data.train_images.shape == (40, 28, 28, 3)
    assert np.array_equal(data.train_images[..., 0], data.train_images[..., 2])
    assert data.stats["pca_eigvals"][1] < 1e-6 * data.stats["pca_eigvals"][0]  # brightness only
