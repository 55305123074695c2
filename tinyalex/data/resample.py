"""Resizing thousands of small square images at once: ``out = R @ img @ R^T`` per channel.

Used for the data sets that arrive as arrays rather than image files (CIFAR-10's 32x32
colour images, MNIST's and Fashion-MNIST's 28x28 grayscale ones), which are resized to the
preset's S before they are cached. Resampling along one axis is linear, so it is a matrix
``R`` of shape (n_out, n_in); the 2-d resize applies it to the rows and to the columns.

The filter is Pillow's ``Image.Resampling.BILINEAR`` (a triangle, "tent", filter), written
out so that a whole batch is one ``einsum``:

    upsampling    each output sample mixes the two nearest input pixels linearly, pixel
                  centres aligned (align_corners=False), clamped at the edges;
    downsampling  the triangle is widened by the scale factor n_in / n_out, so each output
                  averages every input pixel it covers -- an anti-aliasing low-pass filter
                  (plain two-pixel bilinear interpolation would skip pixels and alias).

Each row of R sums to 1, so a flat image stays flat. The result agrees with Pillow's to
within one grey level (Pillow rounds its weights to fixed point).
"""

from __future__ import annotations

import numpy as np


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 R with ``R @ v`` = v resampled with Pillow's BILINEAR filter.

    Output sample i is centred at input coordinate c_i = (i + 0.5) * n_in / n_out (in units
    where input pixel j covers [j, j + 1)). With f = max(1, n_in / n_out) the filter width,
    input pixel j gets weight max(0, 1 - |j + 0.5 - c_i| / f); weights of pixels outside the
    image are dropped and the row is renormalised to sum 1 (Pillow does the same).
    """
    scale = n_in / n_out
    width = max(1.0, scale)
    centres = (np.arange(n_out, dtype=np.float64) + 0.5) * scale          # (n_out,)
    pixels = np.arange(n_in, dtype=np.float64) + 0.5                       # (n_in,)
    weights = np.maximum(0.0, 1.0 - np.abs(pixels[None, :] - centres[:, None]) / width)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (n, s, s, c) -> uint8 (n, size, size, c), Pillow's bilinear, vectorised over images."""
    if images.shape[1] == size:
        return images
    r = bilinear_matrix(images.shape[1], size)                       # (size, s)
    x = images.astype(np.float32)
    # out[n, i, j, c] = sum_{h, w} R[i, h] x[n, h, w, c] R[j, w]
    out = np.einsum("ih,nhwc,jw->nijc", r, x, r, optimize=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
