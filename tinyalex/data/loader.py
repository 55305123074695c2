"""Mini-batches from an ``ImageSet``: shuffle, crop, flip, light -- reproducibly, in the background.

Each batch is a pure function of ``(seed, epoch, batch index)`` and the loader's arguments:

    order  = permutation of the set drawn from SeedSequence([seed, epoch, 0])   (if shuffling)
    batch i  takes order[i*B : (i+1)*B] and draws its crop positions, flips and lighting from
             its own generator, SeedSequence([seed, epoch, 1, i])

Nothing touches NumPy's global random state, and no batch depends on which thread built it
or on the batches before it. So 0 or 2 workers give identical batches, and a run restarted at
epoch k (``BatchLoader(..., epoch=k)`` or ``set_epoch(k)``) sees exactly the batches the
uninterrupted run saw -- what bit-exact ``--resume`` needs.

With ``num_workers > 0``, a thread pool builds the next ``prefetch`` batches while the
training step runs (the paper's CPU did the same for the GPUs, section 4.1). Threads suffice:
NumPy releases the GIL while it copies and converts arrays, and reading the memory-mapped
cache is I/O; the batches come back in order.
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from tinyalex.data.augment import (
    add_lighting,
    center_windows,
    crop_batch,
    lighting_offsets,
    random_windows,
)
from tinyalex.data.imageset import ImageSet


class BatchParts(NamedTuple):
    """A batch before ``crop_batch``: the uint8 images and the windows drawn for them.

    ``BatchLoader.batch`` assembles it on the CPU; ``tinyalex.cuda.staging`` copies it to a
    GPU as it is (a third of the bytes of the float32 crops) and assembles it there.
    """

    images: np.ndarray  # uint8 (B, S, S, 3), HWC as stored
    labels: np.ndarray  # int64 (B,)
    top: np.ndarray  # int64 (B,) window corners
    left: np.ndarray  # int64 (B,)
    flip: np.ndarray  # bool (B,) mirror left-right
    lighting: np.ndarray | None  # float32 (B, 3) RGB offsets, or None (no lighting)


class BatchLoader:
    """Iterate over (x float32 (B, 3, crop, crop), y int64 (B,)) batches of an ImageSet.

    images_set: the split to read.   crop_size: the network input side (227 for paper).
    stats: ``compute_stats(train)`` (the *training* set's, also for val): "mean" (3, S, S),
        and for lighting "pca_eigvals", "pca_eigvecs".
    train: True -> random crop + random flip + PCA lighting (switch each off with
        random_crop / flip / lighting = False); False -> centre crop only.
    shuffle: default = train.  drop_last: skip the last, smaller batch.
    seed, epoch: what the batches are a function of (see the module docstring).
    num_workers: background threads (0 = build each batch when it is asked for).
    """

    def __init__(self, images_set: ImageSet, batch_size: int, crop_size: int, stats: dict,
                 train: bool = True, seed: int = 0, epoch: int = 0, flip: bool = True,
                 lighting: bool = True, shuffle: bool | None = None, drop_last: bool = False,
                 num_workers: int = 0, random_crop: bool = True, prefetch: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        self.images = images_set.images                        # uint8 (N, S, S, 3)
        self.labels = images_set.labels                        # int64 (N,)
        self.batch_size, self.crop_size = int(batch_size), int(crop_size)
        self.mean = np.asarray(stats["mean"], dtype=np.float32)   # (3, S, S)
        size = self.images.shape[1]
        if self.mean.shape != (3, size, size):
            raise ValueError(f"stats['mean'] has shape {self.mean.shape}, the images are "
                             f"{size}x{size}: compute the stats on this image size")
        if not 0 < self.crop_size <= size:
            raise ValueError(f"crop_size={crop_size} must be in 1..{size} (the image size)")
        self.train = bool(train)
        self.flip, self.random_crop = bool(flip), bool(random_crop)
        self.lighting = bool(lighting)
        if self.train and self.lighting:
            self.eigvals = np.asarray(stats["pca_eigvals"], dtype=np.float32)   # (3,)
            self.eigvecs = np.asarray(stats["pca_eigvecs"], dtype=np.float32)   # (3, 3)
        self.shuffle = self.train if shuffle is None else bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed, self.epoch = int(seed), int(epoch)
        self.num_workers = int(num_workers)
        self.prefetch = prefetch if prefetch is not None else 2 * max(1, self.num_workers)
        self._order_key, self._order = None, None

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (new shuffle and new augmentation)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self) -> np.ndarray:
        """int64 (N,): the order in which this epoch visits the images."""
        key = (self.seed, self.epoch)
        if self._order_key != key:
            n = len(self.labels)
            if self.shuffle:
                rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, 0]))
                self._order = rng.permutation(n)
            else:
                self._order = np.arange(n, dtype=np.int64)
            self._order_key = key
        return self._order

    def batch(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``i`` of the current epoch: (x float32 (B, 3, crop, crop), y int64 (B,))."""
        parts = self.parts(i)
        x = crop_batch(parts.images, self.mean, self.crop_size, parts.top, parts.left,
                       parts.flip)
        if parts.lighting is not None:
            add_lighting(x, parts.lighting)
        return x, parts.labels

    def parts(self, i: int) -> BatchParts:
        """Batch ``i`` of the current epoch before cropping (see ``BatchParts``)."""
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range 0..{len(self) - 1}")
        idx = self.order()[i * self.batch_size:(i + 1) * self.batch_size]     # (B,)
        # Read the rows in file order (kinder to the disk), then put them back in batch order.
        by_offset = np.argsort(idx, kind="stable")
        images = np.empty((len(idx),) + self.images.shape[1:], dtype=np.uint8)
        images[by_offset] = self.images[idx[by_offset]]                      # (B, S, S, 3)
        size, batch = images.shape[1], len(idx)
        lighting = None
        if self.train:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, 1, i]))
            top, left, flip = random_windows(rng, batch, size, self.crop_size, flip=self.flip,
                                             crop=self.random_crop)
            if self.lighting:
                lighting = lighting_offsets(rng, batch, self.eigvals, self.eigvecs)
        else:
            top, left, flip = center_windows(batch, size, self.crop_size)
        return BatchParts(images, np.asarray(self.labels[idx], dtype=np.int64), top, left, flip,
                          lighting)

    def __iter__(self):
        return self.iterate()

    def iterate(self, start: int = 0, parts: bool = False):
        """Yield batches ``start, start + 1, ...`` of the epoch (a resumed run starts mid-epoch).

        parts=True yields each batch's ``BatchParts`` (uint8, uncropped) instead of (x, y).
        """
        n = len(self)
        make = self.parts if parts else self.batch
        self.order()   # compute the permutation once, before any worker needs it
        if self.num_workers <= 0:
            for i in range(start, n):
                yield make(i)
            return
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="tinyalex-loader") as pool:
            pending = collections.deque()
            next_i = start
            try:
                while next_i < n or pending:
                    while next_i < n and len(pending) < self.prefetch:
                        pending.append(pool.submit(make, next_i))
                        next_i += 1
                    yield pending.popleft().result()
            finally:
                for future in pending:   # the consumer stopped early (break, Ctrl-C)
                    future.cancel()
