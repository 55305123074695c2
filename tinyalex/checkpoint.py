"""Checkpoints: one ``.npz`` file holding everything a run needs to continue exactly.

Arrays are stored under prefixed names (``param/conv1.w``, ``velocity/conv1.w``,
``data/mean``, ...) and everything else (config, epoch, optimiser and schedule state, RNG
states, class names, metrics) as one JSON document under ``meta``. Files are written
atomically: to a temporary file in the same folder, flushed to disk, then renamed over the
old one (tinyalex.storage.atomic_file), so a crash, a full disk or Ctrl-C while saving never
leaves a half-written checkpoint behind, and the previous one stays as it was; a failed write
is a one-line ``WriteError``. ``estimate_size`` says beforehand how large a file will be.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from tinyalex.backend import to_numpy
from tinyalex.storage import atomic_file

FORMAT = "tinyalex-checkpoint-v1"
# Bytes an .npz adds to each array: the .npy header (128) and the zip entry's local and
# central headers with their ZIP64 fields (about 100 plus twice the name): 512 is a bound.
ENTRY_BYTES = 512


class CheckpointError(ValueError):
    """A file that is not a usable tinyalex checkpoint (message names the file and the fix)."""


def save(path: str | os.PathLike, arrays: dict[str, dict], meta: dict) -> Path:
    """Write a checkpoint atomically.

    arrays: groups of arrays, e.g. ``{"param": net.params, "velocity": opt.velocity,
    "data": {"mean": ...}}`` (NumPy or CuPy; stored as NumPy). meta: JSON-serialisable.
    """
    path = Path(path)
    flat = {f"{group}/{name}": to_numpy(value)
            for group, values in arrays.items() for name, value in values.items()}
    flat["meta"] = np.array(json.dumps(dict(meta, format=FORMAT)))
    need = sum(a.nbytes + ENTRY_BYTES for a in flat.values())
    with atomic_file(path, need=need) as f:
        np.savez(f, **flat)
    return path


def estimate_size(arrays: dict[str, dict], meta_bytes: int = 65536) -> int:
    """Bytes of the checkpoint ``save(path, arrays, meta)`` writes, an upper bound for a meta
    up to ``meta_bytes`` long as JSON (a run's grows by about 250 bytes per epoch).

    arrays: as for ``save`` (NumPy or CuPy arrays; only their sizes are read).
    """
    return meta_bytes + sum(int(value.nbytes) + ENTRY_BYTES
                            for values in arrays.values() for value in values.values())


def load(path: str | os.PathLike) -> tuple[dict[str, dict], dict]:
    """Read a checkpoint: returns (arrays grouped as saved, meta). Raises CheckpointError."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.npz"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: pass a .npz file written by "
                              "`python -m tinyalex.train` (or its run folder)")
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            arrays: dict[str, dict] = {}
            for key in f.files:
                if key != "meta":
                    group, name = key.split("/", 1)
                    arrays.setdefault(group, {})[name] = f[key]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not a tinyalex checkpoint ({type(e).__name__}): pass "
                              "a .npz file written by `python -m tinyalex.train`") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a tinyalex checkpoint (format "
                              f"{meta.get('format')!r}, expected {FORMAT!r})")
    return arrays, meta
