"""Training-set statistics, computed once and stored in the checkpoint (paper sections 2, 4.1).

    mean         float32 (3, S, S)  the per-pixel mean image, CHW -- the only preprocessing
                                    the paper applies (section 2)
    pca_eigvals  float32 (3,)       eigenvalues of the 3x3 RGB covariance of the training
                                    pixels, descending, in 0..255 units squared
    pca_eigvecs  float32 (3, 3)     the matching unit eigenvectors as columns p_1, p_2, p_3

The covariance is that of the mean-centred pixels -- what the network sees -- pooled over
every image and position: with m the mean image and P = N * S * S pixels,

    C = 1/P * sum_{n,h,w} (x[n,h,w] - m[h,w]) (x[n,h,w] - m[h,w])^T
      = 1/P * sum_{n,h,w} x x^T  -  1/(S*S) * sum_{h,w} m[h,w] m[h,w]^T

The second form needs one pass: the uint8 set is read in chunks of bounded size and only
two sums are kept, ``sum x`` per (h, w, c) and the 3x3 ``sum x x^T``. Both are accumulated in
float64 on purpose: the pixels are integers, and float64 holds these integer sums exactly
(below 2^53), so the result does not depend on the chunk size.
"""

from __future__ import annotations

import numpy as np

from tinyalex.data.imageset import DataError, ImageSet

CHUNK_PIXELS = 1 << 21     # ~2M pixels per chunk: 50 MB of float64 work space at most


def compute_stats(train: ImageSet | np.ndarray) -> dict[str, np.ndarray]:
    """Mean image and RGB PCA of a training set (uint8 (N, S, S, 3) or an ImageSet)."""
    images = train.images if isinstance(train, ImageSet) else train
    n, size = images.shape[0], images.shape[1]
    if n == 0:
        raise DataError("the training set is empty: add images to train/<class>/")
    chunk = max(1, CHUNK_PIXELS // (size * size))
    sum_x = np.zeros((size, size, 3), dtype=np.float64)        # sum over images, per position
    sum_xxt = np.zeros((3, 3), dtype=np.float64)               # sum over all pixels of x x^T
    for start in range(0, n, chunk):
        block = np.asarray(images[start:start + chunk], dtype=np.float64)   # (b, S, S, 3)
        sum_x += block.sum(axis=0)
        pixels = block.reshape(-1, 3)                                       # (b*S*S, 3)
        sum_xxt += pixels.T @ pixels
    mean_hwc = sum_x / n                                                    # (S, S, 3)
    m = mean_hwc.reshape(-1, 3)                                             # (S*S, 3)
    cov = sum_xxt / (n * size * size) - (m.T @ m) / (size * size)           # (3, 3)
    eigvals, eigvecs = np.linalg.eigh(cov)                                  # ascending
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = np.clip(eigvals[order], 0.0, None), eigvecs[:, order]
    # fix each eigenvector's sign (eigh may return -p): largest component positive
    signs = np.sign(eigvecs[np.abs(eigvecs).argmax(axis=0), np.arange(3)])
    eigvecs = eigvecs * np.where(signs == 0, 1.0, signs)
    return {"mean": np.ascontiguousarray(mean_hwc.transpose(2, 0, 1), dtype=np.float32),
            "pca_eigvals": eigvals.astype(np.float32),
            "pca_eigvecs": eigvecs.astype(np.float32)}
