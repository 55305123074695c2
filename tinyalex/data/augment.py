"""Crops, flips, mean subtraction and PCA lighting (paper sections 2 and 4.1) -- in one place.

Training, evaluation and prediction all turn uint8 images into network input with
``crop_batch``; only the windows differ:

    training     a random S' x S' window (S' = crop_size: 227 of 256 for the paper preset) and a
                 random horizontal flip per image, plus PCA lighting        ``random_windows``
    evaluation   the centre window                                          ``center_windows``
    ten-crop     four corners + centre, each also flipped; softmax averaged ``ten_crop_predict``

The mean image is subtracted *before* cropping, as the paper does it (section 2: the mean
of the 256x256 training images), so a crop at (top, left) subtracts the same window of the
mean, and a flipped crop the flipped window. Output layout is the network's: float32
(B, 3, S', S'), C-contiguous (NCHW), in 0..255 units minus the mean.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinyalex.backend import to_numpy
from tinyalex.layers.loss import softmax

LIGHTING_STD = 0.1   # paper section 4.1: a_i ~ N(0, 0.1^2)


def center_offset(image_size: int, crop_size: int) -> int:
    """Top (= left) of the centre window; for odd margins the extra pixel goes bottom/right."""
    if not 0 < crop_size <= image_size:
        raise ValueError(f"crop size {crop_size} must be in 1..{image_size} (the image size)")
    return (image_size - crop_size) // 2


def center_windows(batch: int, image_size: int, crop_size: int):
    """(top, left, flip) arrays, each (batch,), for centre crops without flips."""
    off = np.full(batch, center_offset(image_size, crop_size), dtype=np.int64)
    return off, off.copy(), np.zeros(batch, dtype=bool)


def random_windows(rng: np.random.Generator, batch: int, image_size: int, crop_size: int,
                   flip: bool = True, crop: bool = True):
    """(top, left, flip) arrays, each (batch,): uniform window positions, fair-coin flips.

    With crop=False the windows are centred (no translation); with flip=False none flips.
    Every call draws the same numbers from ``rng`` whatever the switches, so turning one
    augmentation off does not change the others' random draws.
    """
    margin = image_size - crop_size + 1          # possible top (and left) positions
    top = rng.integers(0, margin, batch)
    left = rng.integers(0, margin, batch)
    flips = rng.random(batch) < 0.5
    if not crop:
        top, left, _ = center_windows(batch, image_size, crop_size)
    if not flip:
        flips = np.zeros(batch, dtype=bool)
    return top.astype(np.int64), left.astype(np.int64), flips


def crop_batch(images: np.ndarray, mean: np.ndarray, crop_size: int, top: np.ndarray,
               left: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Cut one window per image, subtract the mean image's same window, flip where asked.

    images: uint8 (B, S, S, 3), HWC as stored.   mean: float32 (3, S, S), CHW.
    top, left: int (B,) window corners;  flip: bool (B,) mirror left-right.
    Returns float32 (B, 3, crop, crop), C-contiguous.

    ``sliding_window_view`` exposes every crop x crop window without copying:
    ``windows[b, y, x]`` is a (3, crop, crop) view of image b at (y, x) -- the window axes go
    last and the channel axis stays in front of them, so indexing with (b, top, left) copies
    out the batch directly in CHW order.
    """
    images = np.asarray(images)
    batch, size = images.shape[0], images.shape[1]
    if mean.shape != (3, size, size):
        raise ValueError(f"mean image {mean.shape} does not match images of side {size}: "
                         "stats computed for another image size")
    b = np.arange(batch)
    windows = sliding_window_view(images, (crop_size, crop_size), axis=(1, 2))
    # windows: (B, S-crop+1, S-crop+1, 3, crop, crop), a view
    x = windows[b, top, left].astype(np.float32, order="C")      # (B, 3, crop, crop)
    mean_windows = sliding_window_view(mean, (crop_size, crop_size), axis=(1, 2))
    # mean_windows: (3, S-crop+1, S-crop+1, crop, crop); [:, top, left] -> (3, B, crop, crop)
    x -= mean_windows[:, top, left].transpose(1, 0, 2, 3)
    if flip.any():
        x[flip] = x[flip, :, :, ::-1]                             # mirror the W axis
    return x


def lighting_offsets(rng: np.random.Generator, batch: int, eigvals: np.ndarray,
                     eigvecs: np.ndarray, std: float = LIGHTING_STD) -> np.ndarray:
    """PCA colour augmentation (section 4.1): float32 (B, 3), one RGB offset per image.

        offset = [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T,   a_i ~ N(0, std^2), fresh per image

    The formula is not unit-free (l_i is a variance), so the units must be chosen: like the
    widely used reference implementation (fb.resnet.torch, torchvision's reference scripts,
    eigenvalues 0.2175, 0.0188, 0.0045 for ImageNet) tinyalex applies it to pixel values in
    [0, 1]. ``eigvals`` are stored in the 0..255 units the net sees, so
    l_i(0..1) = l_i / 255^2 and the offset in 0..255 units is 255 * P (a * l / 255^2)
    = P (a * l) / 255. The added colour then has covariance
    P diag(std^2 l_i^2) P^T / 255^2 (the lighting test checks this).
    eigvals: float32 (3,); eigvecs: float32 (3, 3), columns p_i.
    """
    alphas = rng.normal(0.0, std, (batch, 3)).astype(np.float32)      # (B, 3)
    weights = alphas * (eigvals.astype(np.float32) / np.float32(255.0))  # (B, 3): a_i l_i / 255
    return weights @ eigvecs.astype(np.float32).T                      # (B, 3): P @ w per image


def add_lighting(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """x float32 (B, 3, H, W) += offsets (B, 3), the same colour added to every pixel."""
    x += offsets[:, :, None, None]
    return x


def ten_crop_windows(image_size: int, crop_size: int) -> list[tuple[int, int, bool]]:
    """The ten test windows (section 4.1): (top, left, flip) for the four corners and the
    centre, unflipped, then the same five flipped."""
    far = image_size - crop_size
    c = center_offset(image_size, crop_size)
    five = [(0, 0), (0, far), (far, 0), (far, far), (c, c)]
    return [(t, lft, False) for t, lft in five] + [(t, lft, True) for t, lft in five]


def ten_crop_predict(predict_fn, images: np.ndarray, crop_size: int, mean: np.ndarray,
                     outputs: str = "logits") -> np.ndarray:
    """Average class probabilities over the ten crops: float32 (B, classes).

    predict_fn: maps float32 (B, 3, crop, crop) -> (B, classes) LOGITS by default (e.g.
    ``lambda x: net.forward(x, train=False)``); pass outputs="probs" if it returns
    probabilities already. NumPy or CuPy results are accepted. The paper averages the
    softmax outputs, not the logits, so logits go through softmax before the mean.
    images: uint8 (B, S, S, 3); mean: float32 (3, S, S).
    """
    if outputs not in ("logits", "probs"):
        raise ValueError(f"outputs={outputs!r}: use 'logits' or 'probs'")
    batch, size = images.shape[0], images.shape[1]
    total = None
    for top, left, flip in ten_crop_windows(size, crop_size):
        x = crop_batch(images, mean, crop_size, np.full(batch, top), np.full(batch, left),
                       np.full(batch, flip))
        out = to_numpy(predict_fn(x)).astype(np.float32)
        probs = softmax(out) if outputs == "logits" else out
        total = probs if total is None else total + probs
    return total / np.float32(10.0)


def center_crop_batch(images: np.ndarray, mean: np.ndarray, crop_size: int) -> np.ndarray:
    """Evaluation / prediction input: float32 (B, 3, crop, crop) from uint8 (B, S, S, 3)."""
    top, left, flip = center_windows(len(images), images.shape[1], crop_size)
    return crop_batch(images, mean, crop_size, top, left, flip)
