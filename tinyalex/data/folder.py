"""Image folders (ImageNet / Imagenette layout) -> ``ImageSet``s through a decode-once cache.

Layout::

    PATH/train/<class>/<images>      class = folder name; classes sorted by name
    PATH/val/<class>/<images>        optional; without it a seeded, per-class fraction of
                                     train/ is held out (the same files every run)

Decoding JPEGs is what limits a CPU training run, so every file is decoded once (Pillow,
``decode.py``: RGB, shorter side -> S, centre crop) into a raw uint8 file per split::

    <cache>/decoded/<folder>-<S>px-<key>/train.u8        N_train x S x S x 3 bytes, row-major
                                         train-labels.npy int64 (N_train,)
                                         val.u8, val-labels.npy
                                         meta.json        classes, counts, skipped files,
                                                          the files' sizes, a checksum

and every later run maps that file with ``np.memmap``: the OS pages in the rows a batch
touches, so memory stays bounded whatever the size of the set. ``key`` hashes the file list
with each file's size and modification time, S, and the split settings: adding, removing or
touching a file, or asking for another S, builds a fresh cache instead of reusing a stale one.
The cache folder is written under a temporary name and renamed when complete, after a check
that its disk has room for it. Every open validates it first (``read_entry``: the format, the
checksum of meta.json, every file's size against meta.json's, the labels' checksums); a damaged
entry (a crash of the machine, a copy gone wrong) is decoded again, with one line saying so.

Files that Pillow cannot decode (truncated, not an image, an HTML page saved as .jpg, a
stray .txt) are skipped and listed in ``ImageSet.skipped``, and so are entries that are not
regular files (a FIFO, a socket, a device: only regular files are ever opened); names
starting with "." (.DS_Store, editor files) are ignored without a report.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import stat
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinyalex.data.decode import decode, describe_error
from tinyalex.data.imageset import DataError, ImageSet, atomic_directory, cache_root
from tinyalex.storage import durable_file, temp_prefix

CACHE_VERSION = 2   # bump when decoding or the layout changes, so old caches are not reused
CACHE_MARK = "tinyalex-decoded-v"  # meta.json's format starts so: the entry is tinyalex's
CACHE_FORMAT = f"{CACHE_MARK}{CACHE_VERSION}"


def find_classes(split_dir: Path) -> list[str]:
    """Sorted names of the class folders in ``split_dir`` (hidden folders ignored)."""
    return sorted(entry.name for entry in os.scandir(split_dir)
                  if entry.is_dir() and not entry.name.startswith("."))


def list_files(split_dir: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """Every non-hidden file under ``split_dir/<class>/`` (sub-folders included), sorted.

    Returns (paths, labels) with labels indexing ``classes``; classes without a folder here
    contribute nothing.
    """
    paths, labels = [], []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue
        found = []
        for dirpath, dirnames, filenames in os.walk(class_dir):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
        found.sort()
        paths += found
        labels += [label] * len(found)
    return paths, labels


def hold_out(paths: list[Path], labels: list[int], classes: list[str], fraction: float,
             seed: int) -> np.ndarray:
    """Boolean (len(paths),) mask of the files held out for validation.

    Per class (stratified): round(fraction * n) files, at least 1 when fraction > 0 and the
    class has 2 or more, never all of them. Chosen by a generator seeded with (seed, CRC of
    the class name), so the choice does not depend on the other classes.
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"val_fraction={fraction} must be in [0, 1): use e.g. 0.1")
    labels_arr = np.asarray(labels, dtype=np.int64)
    is_val = np.zeros(len(paths), dtype=bool)
    for label, name in enumerate(classes):
        members = np.flatnonzero(labels_arr == label)   # already sorted by path
        n = len(members)
        k = int(round(fraction * n))
        if fraction > 0 and n >= 2:
            k = min(max(k, 1), n - 1)
        rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))
        is_val[members[rng.choice(n, size=k, replace=False)]] = True
    return is_val


def _file_stamp(path: Path, root: Path) -> str:
    st = path.stat()
    return f"{path.relative_to(root).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n"


def _ordered_map(fn, items, workers: int, window: int = 256):
    """``map(fn, items)`` on a thread pool, in order, with at most ``window`` tasks in flight.

    Pillow releases the GIL while it decodes and resamples, so threads decode in parallel;
    the bounded window keeps memory flat however many files there are.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    pending = collections.deque()
    with ThreadPoolExecutor(workers) as pool:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _decode_or_reason(args):
    path, size = args
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open forever
            return None, "not a regular file"
        return decode(path, size), None
    except Exception as err:   # any decoder failure: the file is skipped and reported
        return None, describe_error(err)


def _decode_split(paths, labels, size, out_dir: Path, name: str, workers: int, log):
    """Decode files in order, appending good ones to ``out_dir/<name>.u8``.

    Returns (count, labels int64 of the kept files, skipped [(path, reason)]).
    """
    kept_labels, skipped = [], []
    last_report = time.monotonic()
    with durable_file(out_dir / f"{name}.u8") as raw:
        results = _ordered_map(_decode_or_reason, [(p, size) for p in paths], workers)
        for i, ((image, reason), path, label) in enumerate(zip(results, paths, labels,
                                                               strict=True)):
            if image is None:
                skipped.append((str(path), reason))
                continue
            raw.write(image.tobytes())         # HWC, C order: row i of the (N, S, S, 3) array
            kept_labels.append(label)
            if log and time.monotonic() - last_report > 10:
                log(f"decoding {name}: {i + 1}/{len(paths)} files")
                last_report = time.monotonic()
    return len(kept_labels), np.asarray(kept_labels, dtype=np.int64), skipped


def remove_stale_caches(fresh: Path, log=None) -> None:
    """Delete the caches that ``fresh`` replaces: same source, size and split, older files.

    A decoded ImageNet is about 250 GB at S = 256, so an outdated copy should not linger.
    A process still reading an old cache keeps its data (POSIX frees a deleted file only
    when the last memmap of it closes).
    """
    meta = json.loads((fresh / "meta.json").read_text())
    same = ("source", "image_size", "split")
    for other in fresh.parent.iterdir():
        if other == fresh or other.name.startswith(".") or other.is_symlink() or \
                not (other / "meta.json").is_file():
            continue
        try:
            other_meta = json.loads((other / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        ours = isinstance(other_meta, dict) and \
            str(other_meta.get("format", "")).startswith(CACHE_MARK)  # never a user's folder
        if ours and all(other_meta.get(key) == meta.get(key) for key in same):
            shutil.rmtree(other, ignore_errors=True)
            if log:
                log(f"removed the outdated cache {other}")


def image_bytes(count: int, size: int) -> int:
    """Bytes of ``count`` decoded images of side ``size`` and their labels in a cache entry."""
    return count * (size * size * 3 + 8) + 4096


def save_labels(path: Path, labels: np.ndarray) -> None:
    """``labels`` as an .npy file, on the disk before meta.json vouches for it."""
    with durable_file(path) as f:
        np.save(f, labels)


def _checksum(meta: dict) -> str:
    """SHA-256 of meta.json's content without its checksum field (keys sorted)."""
    body = {key: value for key, value in meta.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_meta(folder: Path, meta: dict) -> None:
    """meta.json, written last into a cache entry being built: ``meta`` plus the format, the
    size of every file beside it, the checksums of the label files, and its own checksum."""
    files = sorted(p for p in folder.iterdir() if p.name != "meta.json")
    meta = dict(meta, format=CACHE_FORMAT, sizes={p.name: p.stat().st_size for p in files},
                labels_sha256={p.name: _file_sha256(p) for p in files
                               if p.name.endswith("-labels.npy")})
    meta["checksum"] = _checksum(meta)
    with durable_file(folder / "meta.json", "w") as f:
        f.write(json.dumps(meta, indent=1) + "\n")


def read_entry(cache: Path) -> tuple[dict | None, str]:
    """(meta, "") for a sound cache entry; (None, what is wrong) for a missing or damaged one.

    Sound: meta.json parses, has this version's format and matches its checksum; every file it
    lists has the size it recorded; each split's images file holds count x S x S x 3 bytes;
    the label files match their checksums. The images themselves are not read (an ImageNet
    entry is 250 GB): a truncated or extended file is what a crash or a bad copy leaves.
    """
    try:
        meta = json.loads((cache / "meta.json").read_text())
    except FileNotFoundError:
        return None, "meta.json is missing" if cache.exists() else "missing"
    except (OSError, ValueError) as e:
        return None, f"meta.json is unreadable: {type(e).__name__}"
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        return None, (f"format {meta.get('format') if isinstance(meta, dict) else None!r}, "
                      f"expected {CACHE_FORMAT!r}")
    if meta.get("checksum") != _checksum(meta):
        return None, "meta.json does not match its checksum"
    size = meta["image_size"]
    for name, count in meta["counts"].items():
        if meta["sizes"].get(f"{name}.u8") != count * size * size * 3:
            return None, f"meta.json's size of {name}.u8 does not match {count} images"
    for name, expected in meta["sizes"].items():
        try:
            actual = (cache / name).stat().st_size
        except OSError:
            return None, f"{name} is missing"
        if actual != expected:
            return None, f"{name} holds {actual} bytes, {expected} expected"
    for name, digest in meta["labels_sha256"].items():
        if _file_sha256(cache / name) != digest:
            return None, f"{name} does not match its checksum"
    return meta, ""


def cache_entry(cache: Path, build, need: int, log=None) -> dict:
    """The meta of the sound cache entry ``cache``, built first when it is missing or damaged.

    build(tmp) writes the entry's files into the folder ``tmp`` and returns its meta (without
    the fields ``write_meta`` adds). need: the bytes the entry will take, checked against the
    free room before building (NotEnoughRoom). A damaged entry is moved aside and removed,
    ``log`` says so in one line, and it is built again.
    """
    meta, problem = read_entry(cache)
    if meta is not None:
        return meta
    if problem != "missing":
        if log:
            log(f"the cache entry {cache} is damaged ({problem}): removing it and decoding "
                "again")
        aside = cache.with_name(temp_prefix(cache.name) + "damaged")
        try:
            os.rename(cache, aside)    # atomic: another process never sees it half-removed
        except FileNotFoundError:      # another process moved it first
            pass
        shutil.rmtree(aside, ignore_errors=True)
    with atomic_directory(cache, need) as tmp:
        write_meta(tmp, build(tmp))
    remove_stale_caches(cache, log)
    meta, problem = read_entry(cache)
    if meta is None:
        raise DataError(f"the cache entry {cache} is damaged right after it was written "
                        f"({problem}): check the disk, or set TINYALEX_CACHE to another folder")
    return meta


def open_cached_split(cache: Path, name: str, meta: dict) -> ImageSet:
    """Map one split of a finished cache folder (see the module docstring) as an ImageSet."""
    size, count = meta["image_size"], meta["counts"][name]
    if count:
        images = np.memmap(cache / f"{name}.u8", dtype=np.uint8, mode="r",
                           shape=(count, size, size, 3))
    else:   # np.memmap refuses an empty file
        images = np.zeros((0, size, size, 3), dtype=np.uint8)
    labels = np.load(cache / f"{name}-labels.npy")
    skipped = [tuple(item) for item in meta["skipped"][name]]
    return ImageSet(images, labels, list(meta["classes"]), skipped, name)


def open_folder(root, image_size: int, cache_dir=None, val_fraction: float = 0.1, seed: int = 0,
                workers: int | None = None, log=None) -> tuple[ImageSet, ImageSet]:
    """Open ``root`` (layout in the module docstring) as (train, val) ImageSets of side S.

    Decodes into the cache on first use (``log`` gets progress lines), then memory-maps it.
    Raises DataError for a missing folder, no classes, or a class with no usable image.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist: pass a folder holding "
                        "train/<class>/ image folders (or leave --data out for the built-in set)")
    train_dir, val_dir = root / "train", root / "val"
    if not train_dir.is_dir():
        raise DataError(f"{root} has no train/ folder: put the images in {root}/train/<class>/ "
                        "(and optionally val/<class>/)")
    classes = find_classes(train_dir)
    if not classes:
        raise DataError(f"{train_dir} has no class folders: put each class's images in its own "
                        f"folder, {train_dir}/<class>/")
    paths, labels = list_files(train_dir, classes)
    if val_dir.is_dir():
        if not find_classes(val_dir):
            raise DataError(f"{val_dir} has no class folders: put validation images in "
                            f"{val_dir}/<class>/, or remove {val_dir} to hold out part of train/")
        extra = sorted(set(find_classes(val_dir)) - set(classes))
        if extra:
            raise DataError(f"{val_dir} has class folders missing from train/ ({', '.join(extra)})"
                            ": give every val class a train folder, or remove it from val/")
        val_paths, val_labels = list_files(val_dir, classes)
        split_desc = "val/"
    else:
        is_val = hold_out(paths, labels, classes, val_fraction, seed)
        val_paths = [p for p, v in zip(paths, is_val, strict=True) if v]
        val_labels = [lab for lab, v in zip(labels, is_val, strict=True) if v]
        paths = [p for p, v in zip(paths, is_val, strict=True) if not v]
        labels = [lab for lab, v in zip(labels, is_val, strict=True) if not v]
        split_desc = f"held-out {val_fraction} seed {seed}"

    # The cache key: everything that changes what the decoded arrays hold.
    digest = hashlib.sha256(f"v{CACHE_VERSION} {image_size} {split_desc}\n".encode())
    for name, split_paths, split_labels in (("train", paths, labels),
                                            ("val", val_paths, val_labels)):
        for path, label in zip(split_paths, split_labels, strict=True):
            digest.update(f"{name} {label} {_file_stamp(path, root)}".encode())
    safe_name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in root.name) or "data"
    cache = cache_root(cache_dir) / "decoded" / (f"{safe_name}-{image_size}px-"
                                                 f"{digest.hexdigest()[:16]}")

    def build(tmp: Path) -> dict:
        n_workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        if log:
            log(f"decoding {len(paths)} train and {len(val_paths)} val files from {root} "
                f"into {cache} (once)")
        meta = {"source": str(root), "image_size": image_size, "classes": classes,
                "split": split_desc, "counts": {}, "skipped": {}}
        for name, split_paths, split_labels in (("train", paths, labels),
                                                ("val", val_paths, val_labels)):
            count, kept, skipped = _decode_split(split_paths, split_labels, image_size, tmp,
                                                 name, n_workers, log)
            save_labels(tmp / f"{name}-labels.npy", kept)
            meta["counts"][name] = count
            meta["skipped"][name] = skipped
        return meta

    meta = cache_entry(cache, build, image_bytes(len(paths) + len(val_paths), image_size), log)
    train, val = open_cached_split(cache, "train", meta), open_cached_split(cache, "val", meta)
    for split, folder in ((train, train_dir), (val, val_dir if val_dir.is_dir() else None)):
        _check_classes(split, folder, paths if split is train else val_paths,
                       labels if split is train else val_labels)
    return train, val


def _check_classes(split: ImageSet, folder: Path | None, paths, labels):
    """DataError for a class that had files (or a folder) in this split but no usable image."""
    listed = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(split.classes))
    usable = np.bincount(split.labels, minlength=len(split.classes))
    for label, name in enumerate(split.classes):
        has_folder = folder is not None and (folder / name).is_dir()
        if (has_folder or (split.name == "train")) and usable[label] == 0:
            where = folder / name if folder is not None else name
            found = (f"{listed[label]} file(s), none decodable" if listed[label]
                     else "no files")
            raise DataError(f"class folder {where} has no usable image ({found}): add images "
                            "to it or remove it")
