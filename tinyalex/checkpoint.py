"""Checkpoints: one ``.npz`` file holding everything a run needs to continue exactly.

Arrays are stored under prefixed names (``param/conv1.w``, ``velocity/conv1.w``,
``data/mean``, ...) and everything else (config, epoch, optimiser and schedule state, RNG
states, class names, metrics) as one JSON document under ``meta``. Files are written
atomically: to a temporary file in the same folder, flushed to disk, then renamed over the
old one (tinyalex.storage.atomic_file), so a crash, a full disk or Ctrl-C while saving never
leaves a half-written checkpoint behind, and the previous one stays as it was; a failed write
is a one-line ``WriteError``. ``estimate_size`` says beforehand how large a file will be.

Nothing read from a checkpoint is trusted (docs/reliability.md). ``load`` reads only regular
files, only uncompressed entries whose .npy headers declare exactly the bytes the entry holds
(so a header declaring 37 GB is refused before any memory is asked for), no pickles. ``check``
then validates everything the programs use, before any network is built: the metadata's
schema (required keys, no unknown key, each value of its type and range), the config (sizes
that make a network), every array's shape against the config, float dtypes only, finite
values. ``load_checked`` does both; every failure is a one-line ``CheckpointError`` naming
the file and what is wrong (exit status 2 in the programs).
"""

from __future__ import annotations

import json
import math
import os
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tinyalex.backend import to_numpy
from tinyalex.storage import atomic_file
from tinyalex.text import escaped

FORMAT = "tinyalex-checkpoint-v1"
MAX_META_BYTES = 64 * 2**20  # the metadata document (a run's grows ~250 bytes per epoch)
FIX = "use another checkpoint, or train again with `python -m tinyalex.train`"
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



def _where(path) -> Path:
    """A run folder means its last.npz; a file is itself."""
    path = Path(path)
    return path / "last.npz" if path.is_dir() else path


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, file_size: int) -> np.ndarray:
    """One .npy entry of an .npz, its size checked before its data is read: stored (not
    compressed), no larger than the file, and holding exactly the bytes its header declares.
    Raises ValueError naming what is wrong."""
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"entry {name} is compressed (tinyalex writes none)")
    if info.file_size > file_size:
        raise ValueError(f"entry {name} declares {info.file_size} bytes, more than the file's "
                         f"{file_size}")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject:
            raise ValueError(f"entry {name} holds Python objects")
        need = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        if f.tell() + need != info.file_size:
            raise ValueError(f"entry {name} declares {need} bytes of data but holds "
                             f"{info.file_size - f.tell()}")
        if name == "meta.npy" and need > MAX_META_BYTES:
            raise ValueError(f"its metadata declares {need} bytes (at most {MAX_META_BYTES})")
        data = f.read(need)  # read to the end: the zip's CRC-32 is checked here
        f.read()
    array = np.frombuffer(data, dtype=dtype).copy()  # a writable copy
    return array.reshape(shape, order="F" if fortran else "C")


def load(path: str | os.PathLike) -> tuple[dict[str, dict], dict]:
    """Read a checkpoint: returns (arrays grouped as saved, meta). Raises CheckpointError.

    Only the container is checked here (a regular file, a sound uncompressed .npz of .npy
    entries, sizes bounded before reading, a JSON metadata document of this format); ``check``
    validates the contents, ``load_checked`` does both.
    """
    path = _where(path)
    try:
        mode = path.stat()
    except OSError:
        raise CheckpointError(f"checkpoint {path} does not exist: pass a .npz file written by "
                              "`python -m tinyalex.train` (or its run folder)") from None
    if not stat.S_ISREG(mode.st_mode):
        raise CheckpointError(f"checkpoint {path} is not a regular file: pass a .npz file "
                              "written by `python -m tinyalex.train` (or its run folder)")
    try:
        arrays: dict[str, dict] = {}
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(set(names)) != len(names):
                raise ValueError("it holds two entries of one name")
            if "meta.npy" not in names:
                raise ValueError("it has no metadata entry")
            for info in infos:
                key = info.filename.removesuffix(".npy")
                group, _, name = key.partition("/")
                if key != "meta" and not (info.filename.endswith(".npy") and group and name):
                    raise ValueError(f"unexpected entry {info.filename}")
                value = _read_entry(archive, info, mode.st_size)
                if key == "meta":
                    if value.shape != () or value.dtype.kind != "U":
                        raise ValueError("its metadata is not a text")
                    meta = json.loads(str(value))
                else:
                    arrays.setdefault(group, {})[name] = value
    except (OSError, ValueError, KeyError, EOFError, OverflowError, RecursionError,
            NotImplementedError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error) as e:
        reason = str(e) if type(e) is ValueError else type(e).__name__  # ours say what is wrong
        raise CheckpointError(f"{path} is not a tinyalex checkpoint ({escaped(reason)}): pass "
                              "a .npz file written by `python -m tinyalex.train`") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} is not a tinyalex checkpoint (format "
                              f"{escaped(repr(found))}, expected {FORMAT!r})")
    return arrays, meta


# --- what a checkpoint must hold -------------------------------------------------------------
# Each check returns None when the value is fine, else a phrase saying what it should be.

def _int(low=None, high=None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            return "an integer"
        if (low is not None and v < low) or (high is not None and v > high):
            return f"an integer in {low}..{high if high is not None else ''}"
        return None
    return check


def _number(low=-math.inf, high=math.inf, finite=True, low_open=False, high_open=False):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int | float):
            return "a number"
        if finite and not math.isfinite(v):
            return "a finite number"
        if v != v or v < low or v > high or (low_open and v == low) or (high_open and v == high):
            return (f"a number in {'(' if low_open else '['}{low:g}, {high:g}"
                    f"{')' if high_open else ']'}")
        return None
    return check


def _choice(*options):
    return lambda v: None if isinstance(v, str) and v in options else \
        f"one of {', '.join(map(repr, options))}"


def _text(v):
    return None if isinstance(v, str) else "a text"


def _flag(v):
    return None if isinstance(v, bool) else "true or false"


def _optional(check):
    return lambda v: None if v is None else check(v)


def _list_of(check, min_length=0):
    def checker(v):
        if not isinstance(v, list) or len(v) < min_length:
            return "a list" + (f" of at least {min_length}" if min_length else "")
        for item in v:
            problem = check(item)
            if problem:
                return f"a list of items each {problem}"
        return None
    return checker


def _record(fields: dict, required=()):
    """A dict with keys among ``fields`` (each checked), the ``required`` ones present."""
    def check(v):
        if not isinstance(v, dict):
            return "a mapping"
        problem = _schema_problem(v, fields, required)
        return problem and f"a mapping whose {problem}"
    return check


def _schema_problem(value: dict, fields: dict, required=()) -> str | None:
    """What is wrong with a dict against a schema (None: nothing): a required key missing,
    an unknown key, or a value its check refuses."""
    missing = [key for key in required if key not in value]
    if missing:
        return f"key {missing[0]!r} is missing"
    for key, item in value.items():
        if key not in fields:
            return f"key {escaped(repr(key), 60)} is unknown"
        problem = fields[key](item)
        if problem:
            return f"{key!r} should be {problem}"
    return None


SEED = _int(0, 2**32 - 1)  # NumPy's seeds
# What a run's settings may be: the ranges train.check_args checks the options against.
HYPER = {
    "epochs": _int(1), "batch_size": _int(1),
    "lr": _number(0, low_open=True), "momentum": _number(0, 1, high_open=True),
    "weight_decay": _number(0), "schedule": _choice("step", "plateau"),
    "milestones": _list_of(_int(1)), "milestones_given": _flag, "patience": _int(0),
    "flip": _flag, "random_crop": _flag, "lighting": _flag,
}
SCHEDULES = {
    "step": {"kind": _choice("step"), "base_lr": _number(0), "milestones": _list_of(_int(1)),
             "factor": _number(0), "lr": _number(0)},
    "plateau": {"kind": _choice("plateau"), "lr": _number(0), "factor": _number(0),
                "patience": _int(0), "max_reductions": _int(0), "min_delta": _number(0),
                "best": _number(finite=False), "bad_epochs": _int(0), "reductions": _int(0)},
}
_ROW = {"epoch": _int(1), "lr": _number(0), "train_loss": _number(finite=False),
        "train_top1": _number(0, 1), "val_loss": _number(finite=False),
        "val_top1": _number(0, 1), "val_top5": _optional(_number(0, 1)),
        "images_per_s": _number(0), "elapsed_s": _number(0)}
META = {
    "format": _text,
    "config": lambda v: None if isinstance(v, dict) else "a mapping",  # see _config
    "classes": _list_of(lambda c: None if isinstance(c, str) and c else "a non-empty text", 1),
    "data": _text, "seed": SEED,
    "hyper": _record(HYPER, required=tuple(k for k in HYPER if k != "milestones_given")),
    "epoch": _int(0), "batch": _int(0),
    "sums": _record({"loss": _number(), "correct": _int(0), "seen": _int(0)},
                    required=("loss", "correct", "seen")),
    "optimizer": _record({"lr": _number(0), "momentum": _number(0, 1, high_open=True),
                          "weight_decay": _number(0),
                          "lr_scale": lambda v: None if isinstance(v, dict) and all(
                              _number(0)(f) is None for f in v.values()) else
                          "a mapping of parameter names to numbers >= 0"},
                         required=("lr", "momentum", "weight_decay")),
    "schedule": lambda v: (_record(SCHEDULES[v["kind"]], required=tuple(SCHEDULES[v["kind"]]))
                           (v) if isinstance(v, dict) and v.get("kind") in SCHEDULES else
                           "a mapping with 'kind' step or plateau"),
    "dropout_step": _int(0),
    "history": lambda v: _list_of(_record(_ROW, required=HISTORY))(v) or (
        None if len({frozenset(row) for row in v}) <= 1 else "rows with the same keys"),
    "best_top1": _number(-1, 1), "elapsed_s": _number(0),
}
HISTORY = ("epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1")  # each row's
REQUIRED = ("format", "config", "classes")
# what --resume needs besides (``check`` with resume=True names what a checkpoint lacks)
TRAINING = ("data", "seed", "hyper", "epoch", "batch", "sums", "optimizer", "schedule",
            "history", "best_top1")

_CONV = {"out_channels": _int(1), "kernel": _int(1), "stride": _int(1), "pad": _int(0),
         "groups": _int(1), "lrn": _flag, "pool": _flag, "pool_before_lrn": _flag}
_CONFIG = {"name": _text, "image_size": _int(1), "input_size": _int(1), "in_channels": _int(1),
           "input_scale": _number(0, low_open=True), "convs": _list_of(_record(_CONV, (
               "out_channels", "kernel")), 1),
           "hidden": _list_of(_int(1)), "num_classes": _int(1),
           "dropout": _number(0, 1, high_open=True), "lrn_n": _int(1),
           "lrn_k": _number(), "lrn_alpha": _number(), "lrn_beta": _number(),
           "pool_size": _int(1), "pool_stride": _int(1), "init": _choice("paper", "he"),
           "bias_one": _list_of(_text)}


def _config(value: dict):
    """(AlexNetConfig, None) for a config that makes a network, else (None, what is wrong)."""
    from tinyalex.model import AlexNetConfig, layer_shapes

    problem = _schema_problem(value, _CONFIG, required=("name", "image_size", "input_size",
                                                        "convs", "hidden", "num_classes"))
    if problem:
        return None, f"its config's {problem}"
    config = AlexNetConfig.from_dict({**AlexNetConfig().to_dict(), **value})
    channels = config.in_channels
    for i, spec in enumerate(config.convs, start=1):
        if channels % spec.groups or spec.out_channels % spec.groups:
            return None, f"its config's conv{i} has {spec.groups} groups, which do not divide " \
                f"its {channels} input and {spec.out_channels} output channels"
        channels = spec.out_channels
    if config.input_size > config.image_size:
        return None, f"its config's input size {config.input_size} exceeds its image size " \
            f"{config.image_size}"
    for name, shape, _, _ in layer_shapes(config):
        if min(shape) < 1:
            return None, f"its config gives {name} an empty output {shape}"
    return config, None


def check(path, arrays: dict[str, dict], meta: dict, resume: bool = False):
    """The config of a checkpoint whose contents are all usable; else a CheckpointError (one
    line naming ``path`` and what is wrong). Changes ``arrays`` to float32 in place.

    Checked: the metadata's schema (``META``: the keys of ``REQUIRED``, and with ``resume``
    those of ``TRAINING``, are present; no other key), the config makes a network, one class
    name per output of the classifier, every parameter of the config present with its shape
    and nothing else, the same for the momentum buffers (required with ``resume``), the data
    statistics (the mean image (3, S, S); the PCA of lighting, required with ``resume``),
    float dtypes only, and values that stay finite in float32.
    """
    from tinyalex.model import param_shapes

    def bad(problem: str):
        return CheckpointError(f"checkpoint {path} is unusable: {problem}: {FIX}")

    lacks = [key for key in TRAINING if key not in meta] if resume else []
    if lacks:
        raise CheckpointError(f"checkpoint {path} is not a checkpoint of a training run (it "
                              f"lacks {', '.join(lacks)}): pass a run folder or its last.npz")
    problem = _schema_problem(meta, META, REQUIRED)
    if problem:
        raise bad(f"its metadata's {problem}")
    config, problem = _config(meta["config"])
    if problem:
        raise bad(problem)
    meta["config"] = config.to_dict()  # complete: fields a checkpoint left out get defaults
    classes = meta["classes"]
    if len(classes) != config.num_classes or len(set(classes)) != len(classes):
        raise bad(f"it names {len(classes)} classes ({len(set(classes))} distinct) for a "
                  f"classifier of {config.num_classes} outputs")
    shapes = param_shapes(config)
    scaled = set(meta.get("optimizer", {}).get("lr_scale", {})) - set(shapes)
    if scaled:
        raise bad(f"its optimizer scales the rate of {escaped(sorted(scaled)[0], 60)}, which "
                  "its config has no parameter of")
    if "hyper" in meta and "schedule" in meta and \
            meta["hyper"]["schedule"] != meta["schedule"]["kind"]:
        raise bad(f"its settings name the {meta['hyper']['schedule']} schedule but it holds the "
                  f"state of the {meta['schedule']['kind']} one")
    size = config.image_size
    expected = {"param": shapes, "velocity": shapes,
                "data": {"mean": (3, size, size), "pca_eigvals": (3,), "pca_eigvecs": (3, 3)}}
    needed = {"param": shapes, "data": ("mean",)}
    if resume:
        needed = expected
    for group in arrays:
        if group not in expected:
            raise bad(f"it holds an unknown group of arrays, {escaped(group, 60)}")
    for group, names in needed.items():
        missing = [name for name in names if name not in arrays.get(group, {})]
        if missing:
            raise bad(f"it lacks {group}/{missing[0]}")
    for group, values in arrays.items():
        if group == "velocity" and set(values) != set(shapes):
            raise bad("its momentum buffers (velocity) do not match its parameters")
        for name, value in values.items():
            key = f"{group}/{escaped(name, 60)}"
            if name not in expected[group]:
                raise bad(f"it holds {key}, which its config has no place for")
            if value.shape != expected[group][name]:
                raise bad(f"{key} has shape {value.shape}, its config needs "
                          f"{expected[group][name]}")
            if value.dtype.kind != "f":
                raise bad(f"{key} holds {value.dtype} values, not floats")
            with np.errstate(over="ignore", invalid="ignore"):
                values[name] = value.astype(np.float32)
            if not np.isfinite(values[name]).all():
                raise bad(f"{key} holds values that are not finite (NaN or infinite) in "
                          "float32")
    return config


def load_checked(path: str | os.PathLike, resume: bool = False):
    """(config, arrays, meta) of a checkpoint, ``load``ed and ``check``ed: every array float32,
    every shape the config's. Raises CheckpointError (one line)."""
    path = _where(path)
    arrays, meta = load(path)
    return check(path, arrays, meta, resume), arrays, meta
