"""Checkpoints: one ``.npz`` file holding everything a run needs to continue exactly.

Arrays are stored under prefixed names (``param/conv1.w``, ``velocity/conv1.w``,
``data/mean``, ...) and everything else (config, epoch, optimiser and schedule state, RNG
states, class names, metrics) as one JSON document under ``meta``. Files are written
atomically: to a temporary file in the same folder, flushed to disk, then renamed over the
old one, so a crash or Ctrl-C while saving never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tinyalex.backend import to_numpy

FORMAT = "tinyalex-checkpoint-v1"


class CheckpointError(ValueError):
    """A file that is not a usable tinyalex checkpoint (message names the file and the fix)."""


def save(path: str | os.PathLike, arrays: dict[str, dict], meta: dict) -> Path:
    """Write a checkpoint atomically.

    arrays: groups of arrays, e.g. ``{"param": net.params, "velocity": opt.velocity,
    "data": {"mean": ...}}`` (NumPy or CuPy; stored as NumPy). meta: JSON-serialisable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {f"{group}/{name}": to_numpy(value)
            for group, values in arrays.items() for name, value in values.items()}
    flat["meta"] = np.array(json.dumps(dict(meta, format=FORMAT)))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **flat)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
