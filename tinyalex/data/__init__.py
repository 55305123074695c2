"""tinyalex's data side: the paper's input pipeline (sections 2 and 4.1) and a built-in data set.

    path = builtin_dataset()                      # generate the shapes set once (synthetic.py)
    spec = canonical_spec(spec)                   # as stored in checkpoints
    train, val = open_splits(spec, image_size)    # decode once into a cache (folder.py, cifar.py)
    test = open_test_split(spec, image_size)      # data sets with their own test set (idx.py)
    stats = compute_stats(train)                  # mean image + RGB PCA (stats.py)
    for x, y in BatchLoader(train, 128, 227, stats):   # crops, flips, lighting (loader.py)
        ...
    probs = ten_crop_predict(fn, images, 227, stats["mean"])   # test-time crops (augment.py)

Files, by concern:

    imageset.py   ImageSet (uint8 (N, S, S, 3) + labels + classes), DataError, cache helpers
    synthetic.py  the built-in set: ten classes of drawn shapes
    decode.py     one file -> RGB, shorter side S, centre crop (load_image for prediction)
    folder.py     train/<class>/ folders, held-out split, the decode-once memmap cache
    cifar.py      CIFAR-10 python batches
    idx.py        MNIST / Fashion-MNIST IDX files: train, held-out val, and the t10k test set
    resample.py   resizing batches of small images (CIFAR, IDX) with Pillow's bilinear filter
    stats.py      mean image and PCA of the training pixels
    augment.py    crop windows, flips, mean subtraction, PCA lighting, ten-crop
    loader.py     BatchLoader: deterministic, prefetching mini-batches
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tinyalex.data.augment import (
    center_crop_batch,
    center_offset,
    crop_batch,
    ten_crop_predict,
    ten_crop_windows,
)
from tinyalex.data.cifar import open_cifar10
from tinyalex.data.decode import load_image
from tinyalex.data.folder import open_folder
from tinyalex.data.idx import open_idx, parse_spec
from tinyalex.data.imageset import DataError, ImageSet, cache_root, class_difference
from tinyalex.data.loader import BatchLoader
from tinyalex.data.stats import compute_stats
from tinyalex.data.synthetic import builtin_dataset

__all__ = ["BatchLoader", "DataError", "ImageSet", "builtin_dataset", "cache_root",
           "canonical_spec", "center_crop_batch", "center_offset", "class_difference",
           "compute_stats", "crop_batch", "format_skipped", "has_test_split", "load_image",
           "open_splits", "open_test_split", "ten_crop_predict", "ten_crop_windows"]

# Data specs of the form NAME:PATH (everything else is builtin, fashion-mnist, or a folder).
PREFIXES = ("cifar10:", "fashion-mnist:", "mnist:")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def format_skipped(skipped: list[tuple[str, str]], first: int = 5) -> str:
    """One report line: how many files were skipped, and the first few with their reasons."""
    shown = "; ".join(f"{path} ({reason})" for path, reason in skipped[:first])
    more = f"; ... and {len(skipped) - first} more" if len(skipped) > first else ""
    return f"skipped {len(skipped)} file(s) that could not be decoded: {shown}{more}"


def canonical_spec(spec) -> str:
    """The data argument as stored in checkpoints, valid from any working directory.

    None or "builtin" -> "builtin"; "fashion-mnist" (the Debian location) stays as it is;
    "cifar10:PATH", "fashion-mnist:PATH", "mnist:PATH" -> the same with PATH absolute;
    anything else is an image folder -> its absolute path. (So a folder that is literally
    called fashion-mnist must be passed as ./fashion-mnist.)
    """
    spec = "builtin" if spec is None else os.fspath(spec)
    if spec in ("builtin", "fashion-mnist"):
        return spec
    for prefix in PREFIXES:
        if spec.startswith(prefix):
            return prefix + str(Path(spec[len(prefix):]).expanduser().resolve())
    if spec == "mnist" and not os.path.isdir(spec):
        raise DataError("--data mnist needs the files' folder: pass mnist:PATH, the folder of the "
                        "four IDX files (train-images-idx3-ubyte.gz, ...; no package installs "
                        "MNIST), or --data fashion-mnist")
    return str(Path(spec).expanduser().resolve())


def has_test_split(spec) -> bool:
    """True for data sets with a test set of their own (fashion-mnist, mnist:PATH)."""
    return spec is not None and parse_spec(os.fspath(spec)) is not None


def open_splits(spec, image_size: int, cache_dir=None, val_fraction: float = 0.1, seed: int = 0,
                log=_stderr, workers: int | None = None) -> tuple[ImageSet, ImageSet]:
    """Open a data set as (train, val) ImageSets of uint8 (N, image_size, image_size, 3).

    spec: "builtin" (or None) for the generated shapes set, "cifar10:PATH" for CIFAR-10
    python batches, "fashion-mnist" / "fashion-mnist:PATH" / "mnist:PATH" for IDX files
    (``val_fraction`` of each class of the training images held out, chosen by ``seed``;
    the test images are opened only by ``open_test_split``), or a folder with
    train/<class>/ (and optionally val/<class>/; without it, ``val_fraction`` of each class
    of train/ is held out, chosen by ``seed``).
    image_size: the paper's 256 -- shorter side rescaled to it, central square kept.
    cache_dir: where generated and decoded data live (default $TINYALEX_CACHE or
    ~/.cache/tinyalex). log: a callable for progress lines and the skipped-files report,
    which is printed once per call (None: silent; the lists stay in ``.skipped``).
    Raises DataError (one line, with the fix) on unusable data.
    """
    spec = "builtin" if spec is None else os.fspath(spec)
    if spec == "builtin":
        root = builtin_dataset(cache_dir, seed=0, log=log)   # fixed set; ``seed`` is the run's
        train, val = open_folder(root, image_size, cache_dir, val_fraction, seed, workers, log)
    elif spec.startswith("cifar10:"):
        train, val = open_cifar10(spec[len("cifar10:"):], image_size, cache_dir, log)
    elif parse_spec(spec) is not None:
        splits = open_idx(spec, image_size, cache_dir, val_fraction, seed, log)
        train, val = splits["train"], splits["val"]
    else:
        train, val = open_folder(spec, image_size, cache_dir, val_fraction, seed, workers, log)
    skipped = train.skipped + val.skipped
    if skipped and log:
        log(format_skipped(skipped))
    return train, val


def open_test_split(spec, image_size: int, cache_dir=None, val_fraction: float = 0.1,
                    seed: int = 0, log=_stderr) -> ImageSet:
    """The test set of a data set that has one (``has_test_split``): an ImageSet "test".

    For fashion-mnist and mnist:PATH, the 10000 t10k images. The other arguments are
    open_splits' (they pick the same cache, which holds all three splits). Raises DataError
    for a data set without a test set.
    """
    if not has_test_split(spec):
        raise DataError(f"data set {spec} has no separate test set (fashion-mnist and "
                        "mnist:PATH do): use its val split")
    return open_idx(os.fspath(spec), image_size, cache_dir, val_fraction, seed, log)["test"]
