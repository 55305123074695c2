"""MNIST and Fashion-MNIST from their IDX files -> ``ImageSet``s (train, val and test).

    --data fashion-mnist          the Debian package's copy, /usr/share/datasets/fashion-mnist/
                                  (sudo apt-get install dataset-fashion-mnist)
    --data fashion-mnist:PATH     a folder holding the four files as Zalando distributes them
    --data mnist:PATH             the same for LeCun's MNIST (same format, digits 0..9)

The four files, each gzipped (``.gz``) or not -- the content decides, not the name::

    train-images-idx3-ubyte   60000 images, 28x28, uint8, 0 = background
    train-labels-idx1-ubyte   60000 labels 0..9
    t10k-images-idx3-ubyte    10000 test images
    t10k-labels-idx1-ubyte    10000 test labels

The IDX format (LeCun's): a 4-byte magic number ``00 00 TT DD`` -- TT the element type
(0x08 = unsigned byte), DD the number of dimensions -- then DD big-endian uint32 sizes, then
the elements in row-major order. Images are ``00 00 08 03`` (count, rows, cols), labels
``00 00 08 01`` (count). ``read_idx`` checks all of it and that the data is exactly as long as
the header says; ``read_pair`` checks that images and labels agree and that every label names a
class. Each failure is a one-line ``DataError`` naming the file and the fix.

The splits. The 10000 ``t10k`` images are the test set and are kept for testing: training
never opens them, and ``evaluate`` reports them (``open_test_split``). Validation -- what the
per-epoch figures, ``best.npz`` and the learning-rate schedule look at -- is held out of the
60000 training images: ``val_fraction`` (10%) of each class, chosen by ``seed`` with the
same ``hold_out`` as image folders (6000 val, 54000 train).

The images are grayscale. The network reads three channels (section 2: centred RGB), so the
one channel is repeated three times; each image is resized from 28 to the preset's S with
Pillow's bilinear filter (``resample.py``), and all three splits are cached once, as uint8
(N, S, S, 3), like every other source (``folder.py`` describes the cache).

Augmentation (section 4.1) on these sets: random crops and horizontal flips apply as they
are (a mirrored coat is a coat -- but a mirrored digit is not a digit: train MNIST with
``--no-flip``). PCA lighting degenerates: with three equal channels the pixel covariance is
``var * ones((3, 3))``, whose only non-zero eigenvalue 3 var belongs to (1, 1, 1)/sqrt(3), so
the offset added is the same on all three channels -- a brightness change, of standard
deviation 0.1 * 3 var / (255 sqrt(3)) grey levels (about 3.4 for Fashion-MNIST).
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from tinyalex.data.folder import (
    CACHE_VERSION,
    cache_entry,
    hold_out,
    image_bytes,
    open_cached_split,
    save_labels,
)
from tinyalex.data.imageset import DataError, ImageSet, cache_root
from tinyalex.data.resample import resize_batch
from tinyalex.storage import durable_file

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
INSTALL = "sudo apt-get install dataset-fashion-mnist"

# Class names as the data sets define them (Zalando's README; MNIST's digits).
CLASSES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "mnist": [str(digit) for digit in range(10)],
}

# split -> (images file, labels file), without the optional ".gz"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

IDX_UBYTE = 0x08            # the element-type byte of the magic number: unsigned byte
GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path, fix: str) -> bytes:
    """The file's content, gunzipped if it is a gzip stream (whatever its name says)."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == GZIP_MAGIC
        with (gzip.open if gzipped else open)(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:   # BadGzipFile is an OSError
        what = "a damaged gzip file" if gzipped else "unreadable"
        raise DataError(f"{path} is {what} ({err}): {fix}") from err


def read_idx(path, ndim: int, fix: str = "download it again") -> np.ndarray:
    """One IDX file of unsigned bytes with ``ndim`` dimensions -> uint8 array of that shape.

    ndim 3 for images (count, rows, cols), 1 for labels (count,). The array is a read-only
    view of the file's bytes. ``fix`` ends every error message.
    """
    path = Path(path)
    raw = _read_bytes(path, fix)
    kind = {3: "image", 1: "label"}.get(ndim, f"{ndim}-d")
    expected = bytes([0, 0, IDX_UBYTE, ndim])
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise DataError(f"{path} is not an IDX file (it starts with {raw[:4].hex(' ') or 'nothing'}"
                        f", not {expected.hex(' ')}): {fix}")
    if raw[2] != IDX_UBYTE or raw[3] != ndim:
        raise DataError(f"{path} is an IDX file of type 0x{raw[2]:02x} with {raw[3]} dimension(s),"
                        f" not an IDX {kind} file (magic {expected.hex(' ')}: unsigned bytes, "
                        f"{ndim} dimension(s)): check the file names, or {fix}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: {len(raw)} bytes, shorter than its "
                        f"{header}-byte header: {fix}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    size = int(np.prod(shape, dtype=np.int64))
    body = len(raw) - header
    if body < size:
        raise DataError(f"{path} is truncated: its header promises {' x '.join(map(str, shape))}"
                        f" bytes ({size:,}) but it holds {body:,}: {fix}")
    if body > size:
        raise DataError(f"{path} has {body - size:,} bytes more than its header's "
                        f"{' x '.join(map(str, shape))}: it is not a valid IDX file; {fix}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_pair(images_path, labels_path, num_classes: int, fix: str = "download them again"
              ) -> tuple[np.ndarray, np.ndarray]:
    """An images file and its labels file -> (uint8 (n, side, side), int64 (n,)), checked."""
    images = read_idx(images_path, 3, fix)
    labels = read_idx(labels_path, 1, fix)
    n, rows, cols = images.shape
    if n == 0 or rows == 0 or rows != cols:
        raise DataError(f"{images_path} holds {n} image(s) of {rows}x{cols}; tinyalex needs "
                        f"one or more square images: {fix}")
    if len(labels) != n:
        raise DataError(f"{images_path} holds {n} images but {labels_path} holds {len(labels)} "
                        f"labels: the two files must come from the same set; {fix}")
    bad = np.flatnonzero(labels >= num_classes)
    if len(bad):
        raise DataError(f"{labels_path} has label {labels[bad[0]]} at position {bad[0]} "
                        f"({len(bad)} label(s) outside 0..{num_classes - 1}): {fix}")
    return images, labels.astype(np.int64)


def parse_spec(spec: str) -> tuple[str, Path] | None:
    """("fashion-mnist" | "mnist", folder) for an IDX data spec, else None.

    ``fashion-mnist`` alone is the Debian location; ``mnist`` needs a path (no package
    installs it).
    """
    if spec == "fashion-mnist":
        return "fashion-mnist", DEBIAN_FASHION_MNIST
    for name in CLASSES:
        if spec.startswith(name + ":"):
            return name, Path(spec[len(name) + 1:]).expanduser()
    return None


def find_files(name: str, folder: Path) -> dict[str, tuple[Path, Path]]:
    """split -> (images path, labels path) in ``folder``, plain name preferred over ``.gz``."""
    found, missing = {}, []
    for split, stems in FILES.items():
        paths = []
        for stem in stems:
            candidates = [folder / stem, folder / f"{stem}.gz"]
            hit = next((p for p in candidates if p.is_file()), None)
            if hit is None:
                missing.append(f"{stem}[.gz]")
            paths.append(hit)
        found[split] = tuple(paths)
    if missing:
        missing_text = ", ".join(missing)
        if folder == DEBIAN_FASHION_MNIST:
            raise DataError(f"Fashion-MNIST not found in {folder} (missing {missing_text}): "
                            f"install it with `{INSTALL}`, or pass fashion-mnist:PATH, the "
                            "folder of the four IDX files")
        other = f", or `{INSTALL}` and --data fashion-mnist" if name == "fashion-mnist" else ""
        state = "does not exist" if not folder.is_dir() else f"lacks {missing_text}"
        raise DataError(f"{name} folder {folder} {state}: pass {name}:PATH with the folder of "
                        "the four IDX files as distributed (train-images-idx3-ubyte.gz, "
                        f"train-labels-idx1-ubyte.gz, t10k-...; gzipped or not){other}")
    return found


def open_idx(spec: str, image_size: int, cache_dir=None, val_fraction: float = 0.1,
             seed: int = 0, log=None) -> dict[str, ImageSet]:
    """An IDX spec (``parse_spec``) -> {"train", "val", "test"} ImageSets of side image_size.

    Converts into the cache on first use, then memory-maps it. The cache key holds the files'
    sizes and modification times, S, val_fraction and seed.
    """
    name, folder = parse_spec(spec)
    files = find_files(name, folder)
    classes = CLASSES[name]
    fix = (f"reinstall it (`{INSTALL.replace('install', 'install --reinstall')}`)"
           if folder == DEBIAN_FASHION_MNIST else "download the file again")
    split_desc = f"held-out {val_fraction} seed {seed}"

    digest = hashlib.sha256(f"{name} v{CACHE_VERSION} {image_size} {split_desc}\n".encode())
    for path in sorted(p for pair in files.values() for p in pair):
        st = path.stat()
        digest.update(f"{path.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    cache = cache_root(cache_dir) / "decoded" / f"{name}-{image_size}px-{digest.hexdigest()[:16]}"

    def build(tmp: Path) -> dict:
        if log:
            log(f"converting {name} from {folder} to {image_size}x{image_size} RGB in {cache} "
                "(once)")
        train_images, train_labels = read_pair(*files["train"], len(classes), fix)
        test_images, test_labels = read_pair(*files["test"], len(classes), fix)
        if test_images.shape[1:] != train_images.shape[1:]:
            raise DataError(f"{files['test'][0]} holds {test_images.shape[1]}x"
                            f"{test_images.shape[2]} images, {files['train'][0]} "
                            f"{train_images.shape[1]}x{train_images.shape[2]}: the four files "
                            f"must come from the same set; {fix}")
        is_val = hold_out(range(len(train_labels)), train_labels, classes, val_fraction, seed)
        splits = {"train": np.flatnonzero(~is_val), "val": np.flatnonzero(is_val)}
        counts = {}
        for split, images, labels, rows in (
                ("train", train_images, train_labels, splits["train"]),
                ("val", train_images, train_labels, splits["val"]),
                ("test", test_images, test_labels, np.arange(len(test_labels)))):
            with durable_file(tmp / f"{split}.u8") as raw:
                for start in range(0, len(rows), 1000):         # bounded memory
                    gray = images[rows[start:start + 1000], :, :, None]   # (b, 28, 28, 1)
                    resized = resize_batch(gray, image_size)         # (b, S, S, 1)
                    raw.write(np.repeat(resized, 3, axis=3).tobytes())  # (b, S, S, 3)
            save_labels(tmp / f"{split}-labels.npy", labels[rows])
            counts[split] = len(rows)
        return {"source": str(folder), "image_size": image_size, "classes": classes,
                "split": f"{name} {split_desc}", "counts": counts,
                "skipped": {"train": [], "val": [], "test": []}}

    meta = cache_entry(cache, build, image_bytes(70000, image_size), log)
    return {split: open_cached_split(cache, split, meta) for split in ("train", "val", "test")}
