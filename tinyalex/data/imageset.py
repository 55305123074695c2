"""What every data source hands to training: an ``ImageSet``, plus the shared cache helpers.

An ``ImageSet`` is the paper's section 2 preprocessing already applied: every image rescaled
so its shorter side is ``S`` (256 in the paper) and centre-cropped to ``S x S``, stored as
uint8 in HWC order, one row per image::

    images  uint8 (N, S, S, 3)    a read-only np.memmap over the decoded cache file, so a set
                                  the size of ImageNet never has to fit in RAM
    labels  int64 (N,)            index into ``classes``
    classes list[str]             class names (folder names, sorted), the same for both splits
    skipped list[(path, reason)]  files of this split that could not be decoded

Mean subtraction, crops, flips and lighting happen later, per batch (``augment.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyalex.storage import atomic_directory  # noqa: F401 (the data modules' import)


class DataError(Exception):
    """Unusable data: one line naming the problem and the fix (the CLI prints it, exits 2)."""


@dataclass
class ImageSet:
    """A split of decoded images; see the module docstring for shapes."""

    images: np.ndarray  # uint8 (N, S, S, 3), usually a read-only memmap
    labels: np.ndarray  # int64 (N,)
    classes: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    name: str = ""  # "train" / "val", for messages

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[3] != 3:
            raise ValueError(f"images must be uint8 (N, S, S, 3), got {self.images.dtype} "
                             f"{self.images.shape}")
        if self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"images must be square, got {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels {self.labels.shape} do not match {len(self.images)} images")
        self.labels = np.asarray(self.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        """S: the side of the stored square images (the paper's 256)."""
        return int(self.images.shape[1])

    def __repr__(self) -> str:
        return (f"ImageSet({self.name or 'split'}: {len(self)} images of {self.image_size}x"
                f"{self.image_size}, {len(self.classes)} classes, {len(self.skipped)} skipped)")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where tinyalex keeps generated and decoded data: the argument, else ``$TINYALEX_CACHE``,
    else ``~/.cache/tinyalex``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("TINYALEX_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "tinyalex"


def class_difference(found: list[str], expected: list[str], limit: int = 5) -> str:
    """What differs between two class lists, for error messages: names only in one of them,
    or the order when the names are the same."""
    def names(items):
        shown = ", ".join(items[:limit])
        return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")

    only_found = [c for c in found if c not in set(expected)]
    only_expected = [c for c in expected if c not in set(found)]
    parts = []
    if only_found:
        parts.append(f"only in the data: {names(only_found)}")
    if only_expected:
        parts.append(f"only in the checkpoint: {names(only_expected)}")
    if not parts:
        parts.append("the same names in another order")
    return f"{len(found)} classes in the data, {len(expected)} in the checkpoint; " + \
        "; ".join(parts)
