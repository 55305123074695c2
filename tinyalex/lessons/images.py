"""Pictures for the lessons without a download: a real photograph, and shapes drawn in memory.

``sample_photo`` is the portrait of Grace Hopper that ships with matplotlib, preprocessed as
section 2 of the paper prescribes (shorter side rescaled, central square cropped).
``shapes_arrays`` draws a small subset of the built-in data set in memory with
``tinyalex.data.synthetic.render`` (a pure function of seed, split, class and index: at
72 pixels these are exactly images of the built-in set) and turns it into network input.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tinyalex.data import synthetic
from tinyalex.data.decode import load_image


def sample_photo(size: int = 256) -> np.ndarray:
    """matplotlib's grace_hopper.jpg as uint8 (size, size, 3): shorter side -> size, centre crop."""
    from matplotlib import cbook

    return load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), size)


@lru_cache(maxsize=8)
def _render(per_class: int, size: int, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    classes = range(len(synthetic.CLASSES))
    images = np.stack([synthetic.render(seed, split, c, i, size=size)
                       for i in range(per_class) for c in classes])  # (N, S, S, 3) uint8
    labels = np.tile(np.arange(len(synthetic.CLASSES)), per_class)  # (N,) class c at i*10 + c
    images.flags.writeable = labels.flags.writeable = False  # shared by the cache
    return images, labels


def shapes_images(per_class: int, size: int = 72, split: str = "train", seed: int = 0,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, size, size, 3), labels int64 (N,)): per_class images of each class.

    Drawn in memory (about 1 ms an image at 72 pixels, 0.4 ms at 32) and remembered, so a
    second call with the same arguments is free. The classes are ``synthetic.CLASSES``.
    """
    return _render(int(per_class), int(size), split, int(seed))


def to_input(images: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, 3) -> float32 (N, 3, S, S) minus the mean image (section 2)."""
    return (images.astype(np.float32) - mean).transpose(0, 3, 1, 2).copy()


def shapes_arrays(per_class: int, size: int = 32, val_per_class: int = 0, seed: int = 0):
    """Training (and validation) arrays of the shapes, ready for a network.

    Returns (x_train, y_train, x_val, y_val): x float32 (N, 3, size, size) with the training
    set's mean image subtracted (the paper's only preprocessing, section 2), y int64 (N,);
    x_val, y_val are None when val_per_class is 0.
    """
    images, labels = shapes_images(per_class, size, "train", seed)
    mean = images.mean(axis=0, dtype=np.float64).astype(np.float32)  # (S, S, 3)
    x_val = y_val = None
    if val_per_class:
        val_images, y_val = shapes_images(val_per_class, size, "val", seed)
        x_val = to_input(val_images, mean)
    return to_input(images, mean), np.array(labels), x_val, (None if y_val is None
                                                            else np.array(y_val))
