"""CIFAR-10 "python version" batches (``--data cifar10:PATH``) -> ``ImageSet``s.

PATH is the extracted ``cifar-10-batches-py`` folder::

    data_batch_1 .. data_batch_5   train, 10000 images each
    test_batch                     used as val
    batches.meta                   label_names

Each batch is a pickled dict: ``b"data"`` uint8 (10000, 3072), each row one 32x32 image as
three planes (1024 red, 1024 green, 1024 blue values, row-major) -- CHW, not HWC -- and
``b"labels"`` a list of 10000 ints. The pickles are read with an unpickler that only
accepts NumPy arrays and plain containers, so a tampered file cannot run code.

The images are resized from 32 to the preset's S (e.g. 72 for mini) with a bilinear
resampling written as two matrix products, ``out = R @ img @ R^T`` per channel, applied to
thousands of images at once (``resample.py``), then cached on disk like decoded folders
(``folder.py``).
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

from tinyalex.data.folder import (
    CACHE_VERSION,
    cache_entry,
    image_bytes,
    open_cached_split,
    save_labels,
)
from tinyalex.data.imageset import DataError, ImageSet, cache_root
from tinyalex.data.resample import bilinear_matrix, resize_batch  # noqa: F401 (kept for callers)
from tinyalex.storage import durable_file

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
VAL_BATCH = "test_batch"
META = "batches.meta"
SIDE = 32


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, ints -- and NumPy arrays -- and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (images uint8 (n, 32, 32, 3) HWC, labels int64 (n,))."""
    try:
        with open(path, "rb") as f:
            batch = _SafeUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except OverflowError:  # a label beyond int64 (10**30)
        raise DataError(f"{path} has labels far outside the classes' range: re-extract "
                        "cifar-10-python.tar.gz") from None
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as err:
        raise DataError(f"{path} is not a CIFAR-10 python batch ({type(err).__name__}: {err}): "
                        "re-extract cifar-10-python.tar.gz") from err
    if data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE or len(labels) != len(data):
        raise DataError(f"{path} holds data of shape {data.shape} and {len(labels)} labels, not "
                        "(n, 3072) and n: re-extract cifar-10-python.tar.gz")
    # (n, 3072) -> (n, 3, 32, 32) planes -> (n, 32, 32, 3) HWC like every ImageSet
    return data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1), labels


def open_cifar10(path, image_size: int, cache_dir=None, log=None) -> tuple[ImageSet, ImageSet]:
    """``cifar10:PATH`` -> (train 50000, val 10000) ImageSets of side ``image_size``."""
    root = Path(path).expanduser()
    files = [root / name for name in (*TRAIN_BATCHES, VAL_BATCH, META)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{root} is not a CIFAR-10 python folder (missing {', '.join(missing)}): "
                        "extract cifar-10-python.tar.gz and pass cifar10:PATH/cifar-10-batches-py")
    with open(root / META, "rb") as f:
        try:
            meta_pickle = _SafeUnpickler(f, encoding="bytes").load()
            classes = [name.decode() for name in meta_pickle[b"label_names"]]
        except Exception as err:   # whatever a damaged pickle raises
            raise DataError(f"{root / META} is not a CIFAR-10 meta file ({err}): re-extract "
                            "cifar-10-python.tar.gz") from err

    digest = hashlib.sha256(f"cifar10 v{CACHE_VERSION} {image_size}\n".encode())
    for f in files:
        st = f.stat()
        digest.update(f"{f.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    cache = cache_root(cache_dir) / "decoded" / f"cifar10-{image_size}px-{digest.hexdigest()[:16]}"

    def build(tmp: Path) -> dict:
        if log:
            log(f"converting CIFAR-10 from {root} to {image_size}x{image_size} in {cache} (once)")
        counts = {}
        for name, batch_names in (("train", TRAIN_BATCHES), ("val", (VAL_BATCH,))):
            all_labels = []
            with durable_file(tmp / f"{name}.u8") as raw:
                for batch_name in batch_names:
                    images, labels = read_batch(root / batch_name)
                    if labels.min() < 0 or labels.max() >= len(classes):
                        raise DataError(f"{root / batch_name} has labels outside 0.."
                                        f"{len(classes) - 1}: re-extract the archive")
                    for start in range(0, len(images), 1000):   # bounded memory
                        raw.write(resize_batch(images[start:start + 1000], image_size)
                                  .tobytes())
                    all_labels.append(labels)
            labels_arr = np.concatenate(all_labels)
            save_labels(tmp / f"{name}-labels.npy", labels_arr)
            counts[name] = len(labels_arr)
        return {"source": str(root), "image_size": image_size, "classes": classes,
                "split": "cifar10", "counts": counts, "skipped": {"train": [], "val": []}}

    meta = cache_entry(cache, build, image_bytes(60000, image_size), log)
    return open_cached_split(cache, "train", meta), open_cached_split(cache, "val", meta)
