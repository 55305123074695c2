"""tinyalex.checkpoint: nothing read from a checkpoint is trusted.

Every program that reads a checkpoint (evaluate, predict, viz, train --resume) either loads
it correctly or stops with one line and exit status 2 naming the file and what is wrong,
before any network is built and without changing a file. The property test at the end feeds
the loader randomly truncated, corrupted and edited checkpoints.
"""

import json
import math
import shutil
import zipfile

import numpy as np
import pytest
from conftest import snapshot

from tinyalex import checkpoint, cli, evaluate, predict, train, viz
from tinyalex.checkpoint import CheckpointError


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")


def write_npz(path, arrays: dict, meta) -> None:
    """An .npz as checkpoint.save writes it, but with any arrays and any metadata (no format
    added, no checks): what a damaged or hand-edited file can hold."""
    flat = {f"{group}/{name}": value for group, values in arrays.items()
            for name, value in values.items()}
    if meta is not None:
        flat["meta"] = np.array(json.dumps(meta) if not isinstance(meta, str) else meta)
    with open(path, "wb") as f:
        np.savez(f, **flat)


@pytest.fixture
def run(tiny_run, tmp_path):
    """A copy of the finished tiny run (mini preset, 3 classes), with its checkpoint read."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    return out


def original(run):
    arrays, meta = checkpoint.load(run / "last.npz")
    return {g: dict(v) for g, v in arrays.items()}, meta


def one_line_exit_2(capsys, program, argv, path):
    """Run a program as its command does (cli.run); assert one line, status 2, naming path."""
    status = cli.run(program, argv)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert str(path) in lines[0], err
    return lines[0]


# --- each kind of damage, through every program that reads a checkpoint ---------------------

def _edit(case, arrays, meta):
    """Apply one named damage to (arrays, meta) in place; returns the words the error shows."""
    params = arrays["param"]
    if case == "wrong shape":
        params["conv2.w"] = params["conv2.w"][:, :-1]
        return "conv2.w has shape"
    if case == "classifier and class list differ":
        meta["classes"] = meta["classes"] + ["extra"]
        return "4 classes"
    if case == "parameters as strings":
        params["fc7.b"] = params["fc7.b"].astype(str)
        return "not floats"
    if case == "integer parameters":
        params["fc8.w"] = np.round(params["fc8.w"] * 100).astype(np.int32)
        return "int32 values, not floats"
    if case == "boolean parameters":
        params["conv1.b"] = params["conv1.b"] > 0
        return "bool values, not floats"
    if case == "NaN weights":
        params["conv1.w"][0, 0, 0, 0] = np.nan
        return "not finite"
    if case == "Inf weights":
        params["fc6.w"][3, 1] = np.inf
        return "not finite"
    if case == "weights beyond float32":
        params["fc6.w"] = params["fc6.w"].astype(np.float64)
        params["fc6.w"][0, 0] = 1e300
        return "not finite"
    if case == "missing data":
        del arrays["data"]["mean"]
        return "lacks data/mean"
    if case == "mean of another size":
        arrays["data"]["mean"] = arrays["data"]["mean"][:, :10]
        return "data/mean has shape"
    if case == "missing parameter":
        del params["fc7.w"]
        return "lacks param/fc7.w"
    if case == "extra parameter":
        params["fc9.w"] = np.ones((3, 3), np.float32)
        return "param/fc9.w"
    if case == "velocity of another network":
        arrays["velocity"].pop("conv3.b")
        return "velocity"
    if case == "no classes":
        del meta["classes"]
        return "'classes' is missing"
    if case == "no config":
        del meta["config"]
        return "'config' is missing"
    if case == "unknown key":
        meta["surprise"] = 1
        return "'surprise' is unknown"
    if case == "config of no network":
        meta["config"]["convs"][0]["kernel"] = 500
        return "empty output"
    if case == "history edited":
        meta["history"][0]["val_top1"] = "ninety"
        return "'history' should be"
    if case == "schedule edited":
        meta["schedule"]["step"] = 3
        return "'schedule' should be"
    if case == "schedule of another kind":
        meta["schedule"] = {"kind": "plateau", "lr": 0.01, "factor": 0.1, "patience": 2,
                            "max_reductions": 3, "min_delta": 1e-4, "best": math.inf,
                            "bad_epochs": 0, "reductions": 0}
        return "holds the state of the plateau one"
    if case == "rate scale of no parameter":
        meta["optimizer"]["lr_scale"] = {"fc9.w": 0.5}
        return "scales the rate of fc9.w"
    raise AssertionError(case)


CASES = ["wrong shape", "classifier and class list differ", "parameters as strings",
         "integer parameters", "boolean parameters", "NaN weights", "Inf weights",
         "weights beyond float32", "missing data", "mean of another size", "missing parameter",
         "extra parameter", "velocity of another network", "no classes", "no config",
         "unknown key", "config of no network", "history edited", "schedule edited",
         "schedule of another kind", "rate scale of no parameter"]


def programs(path, image):
    """(program, argv) of every command that reads the checkpoint ``path``."""
    return [(evaluate.main, ["--checkpoint", str(path)]),
            (predict.main, [str(image), "--checkpoint", str(path)]),
            (viz.main, ["filters", "--checkpoint", str(path), "--out", str(path) + ".png"]),
            (train.main, ["--resume", str(path), "--epochs", "3", "--no-progress"])]


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_checkpoint_is_one_line_in_every_program(case, run, tiny_folder, capsys):
    arrays, meta = original(run)
    words = _edit(case, arrays, meta)
    path = run / "last.npz"
    write_npz(path, arrays, meta)
    before = snapshot(run)
    for program, argv in programs(path, tiny_folder / "val" / "red" / "0.png"):
        line = one_line_exit_2(capsys, program, argv, path)
        assert words in line, (program.__module__, line)
        assert snapshot(run) == before                         # nothing written or changed


@pytest.mark.parametrize("case", ["empty file", "truncated", "not a zip", "a folder named .npz",
                                  "a FIFO", "37 GB header", "compressed", "pickled object",
                                  "metadata not JSON", "metadata a list", "deep metadata"])
def test_a_file_that_is_no_checkpoint_is_one_line_in_every_program(case, run, tiny_folder,
                                                                    capsys):
    path = run / "odd.npz"
    good = (run / "last.npz").read_bytes()
    if case == "empty file":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif case == "not a zip":
        path.write_text("hello")
    elif case == "a folder named .npz":
        path.mkdir()
        path = path / "last.npz"
        path.mkdir()
    elif case == "a FIFO":
        import os

        os.mkfifo(path)
    elif case == "37 GB header":
        huge_header(run / "last.npz", path, "param/fc6.w.npy", (96_000, 96_000))
    elif case == "compressed":
        arrays, meta = original(run)
        flat = {f"{g}/{n}": v for g, vs in arrays.items() for n, v in vs.items()}
        np.savez_compressed(path, meta=np.array(json.dumps(meta)), **flat)
    elif case == "pickled object":
        arrays, meta = original(run)
        arrays["param"]["fc8.b"] = np.array([{"a": 1}, None, 3], dtype=object)
        write_npz(path, arrays, meta)
    elif case == "metadata not JSON":
        write_npz(path, original(run)[0], "{not json")
    elif case == "metadata a list":
        write_npz(path, original(run)[0], [1, 2])
    elif case == "deep metadata":
        write_npz(path, original(run)[0], "[" * 100_000 + "]" * 100_000)
    before = snapshot(run) if case != "a FIFO" else None
    for program, argv in programs(path, tiny_folder / "val" / "red" / "0.png"):
        one_line_exit_2(capsys, program, argv, path)
    if before is not None:
        assert snapshot(run) == before


def huge_header(source, target, entry, shape):
    """A copy of the .npz ``source`` whose ``entry`` declares an array of ``shape`` float32
    in its .npy header while holding the original bytes (what a damaged header says)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            payload = zin.read(info)
            if info.filename == entry:
                header = {"descr": "<f4", "fortran_order": False, "shape": shape}
                from io import BytesIO

                buffer = BytesIO()
                np.lib.format.write_array_header_1_0(buffer, header)   # magic, version, header
                old_header = np.lib.format.MAGIC_LEN + 2 + int.from_bytes(payload[8:10],
                                                                          "little")
                payload = buffer.getvalue() + payload[old_header:]
            zout.writestr(info, payload)


def test_the_37_gb_header_is_refused_before_any_memory_is_asked_for(run, monkeypatch):
    path = run / "huge.npz"
    huge_header(run / "last.npz", path, "param/fc6.w.npy", (96_000, 96_000))
    asked = []
    real_empty, real_frombuffer = np.empty, np.frombuffer
    monkeypatch.setattr(np, "empty", lambda shape, *a, **k: asked.append(shape) or
                        real_empty(shape, *a, **k))
    monkeypatch.setattr(np, "frombuffer", lambda data, *a, **k: asked.append(len(data)) or
                        real_frombuffer(data, *a, **k))
    with pytest.raises(CheckpointError, match="declares 36864000000 bytes"):
        checkpoint.load(path)
    assert all(np.prod(s) < 10**8 for s in asked)


def test_a_sound_checkpoint_loads_as_float32_with_its_config(run):
    config, arrays, meta = checkpoint.load_checked(run / "last.npz", resume=True)
    raw, _ = checkpoint.load(run / "last.npz")
    assert config.num_classes == len(meta["classes"]) == 3
    for group in ("param", "velocity", "data"):
        for name, value in raw[group].items():
            assert arrays[group][name].dtype == np.float32 and arrays[group][name].flags.writeable
            np.testing.assert_array_equal(arrays[group][name], value)


def test_float64_and_float16_parameters_load_as_their_float32_values(run):
    arrays, meta = original(run)
    wide = arrays["param"]["fc7.w"].astype(np.float64) + 1e-12   # rounds back in float32
    arrays["param"]["fc7.w"] = wide
    arrays["param"]["fc8.b"] = arrays["param"]["fc8.b"].astype(np.float16)
    write_npz(run / "edited.npz", arrays, meta)
    _, loaded, _ = checkpoint.load_checked(run / "edited.npz")
    np.testing.assert_array_equal(loaded["param"]["fc7.w"], wide.astype(np.float32))
    np.testing.assert_array_equal(loaded["param"]["fc8.b"],
                                  arrays["param"]["fc8.b"].astype(np.float32))


def test_resume_needs_the_training_state_evaluation_does_not(run):
    arrays, meta = original(run)
    del arrays["velocity"]
    for key in ("hyper", "optimizer", "history"):
        del meta[key]
    write_npz(run / "weights.npz", arrays, meta)
    checkpoint.load_checked(run / "weights.npz")                  # enough to evaluate
    with pytest.raises(CheckpointError, match="lacks hyper, optimizer, history"):
        checkpoint.load_checked(run / "weights.npz", resume=True)


def test_escape_codes_in_names_are_shown_escaped(run):
    arrays, meta = original(run)
    arrays["param"]["\x1b[2Jboom\nline"] = np.ones(2, np.float32)
    write_npz(run / "odd.npz", arrays, meta)
    with pytest.raises(CheckpointError) as error:
        checkpoint.load_checked(run / "odd.npz")
    text = str(error.value)
    assert "\x1b" not in text and "\n" not in text and "\\x1b[2Jboom\\nline" in text


# --- the property test: random damage, every outcome a correct load or one clean refusal ----

DTYPES = [np.float16, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_,
          np.complex64, "U3", "S2"]


def _random_value(rng):
    """Something a hand-edited JSON document might hold."""
    choices = [None, True, -1, 0, 3, 2**40, -2.5, 1e308, "", "text", "\x1b[31mred", [], [1],
               {}, {"a": 1}, math.nan, math.inf]
    return choices[rng.integers(len(choices))]


def _leaves(value, path=()):
    """Every (path, value) of a JSON document, containers included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))


def _random_edit(rng, arrays, meta):
    """Edit (arrays, meta) in place at random. Returns True when the result is certainly not
    a usable checkpoint (the loader must refuse it), False when it may be either."""
    kind = rng.integers(6)
    groups = [g for g in arrays if arrays[g]]
    group = groups[rng.integers(len(groups))]
    name = sorted(arrays[group])[rng.integers(len(arrays[group]))]
    value = arrays[group][name]
    if kind == 0:                                            # another shape
        shapes = [value[None], np.concatenate([value, value]),
                  value.reshape(-1) if value.ndim > 1 else value[:-1]]
        arrays[group][name] = shapes[rng.integers(len(shapes))]
        return True
    if kind == 1:                                            # another dtype
        dtype = DTYPES[rng.integers(len(DTYPES))]
        with np.errstate(all="ignore"):
            arrays[group][name] = value.astype(dtype)
        return np.dtype(dtype).kind != "f" or not np.isfinite(
            arrays[group][name].astype(np.float32)).all()
    if kind == 2:                                            # a value that is not finite
        edited = value.astype(value.dtype if value.dtype.kind == "f" else np.float32, copy=True) \
            if value.dtype.kind in "fiub" else np.zeros(value.shape, np.float32)
        edited.flat[rng.integers(edited.size)] = [np.nan, np.inf, -np.inf][
            rng.integers(3)]
        arrays[group][name] = edited
        return True
    if kind == 3:                                            # an entry removed or added
        if rng.integers(2):
            del arrays[group][name]
            return not (group == "data" and name != "mean")
        arrays[group][f"{name}x"] = value
        return True
    if kind == 4:                                            # a metadata key removed or added
        keys = sorted(meta)
        if rng.integers(2):
            key = keys[rng.integers(len(keys))]
            del meta[key]
            return key in checkpoint.REQUIRED
        meta[f"key{rng.integers(100)}"] = 1
        return True
    leaves = list(_leaves(meta))[1:]                        # a metadata value replaced
    path, _ = leaves[rng.integers(len(leaves))]
    holder = meta
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = _random_value(rng)
    return False


def _check_outcome(path, arrays, meta, must_refuse):
    """The loader either refuses with one line naming the file, or returns exactly what the
    file holds: the arrays as float32, the metadata as written."""
    try:
        _, loaded, loaded_meta = checkpoint.load_checked(path)
    except CheckpointError as e:
        text = str(e)
        assert "\n" not in text and str(path) in text, text
        return "refused"
    assert not must_refuse, (path, "loaded a checkpoint it must refuse")
    arrays = {group: values for group, values in arrays.items() if values}
    assert set(loaded) == set(arrays)
    for group, values in arrays.items():
        assert set(loaded[group]) == set(values)
        for name, value in values.items():
            np.testing.assert_array_equal(loaded[group][name], value.astype(np.float32))
    written = json.loads(json.dumps(meta))
    assert {k: v for k, v in loaded_meta.items() if k != "config"} == \
        {k: v for k, v in written.items() if k != "config"}
    return "loaded"


def test_random_edits_load_correctly_or_are_refused_in_one_line(run):
    rng = np.random.default_rng(21)
    base_arrays, base_meta = original(run)
    outcomes = {"refused": 0, "loaded": 0}
    for trial in range(120):
        arrays = {g: dict(v) for g, v in base_arrays.items()}
        meta = json.loads(json.dumps(base_meta))
        must_refuse = False
        for _ in range(rng.integers(1, 3)):
            must_refuse |= _random_edit(rng, arrays, meta)
        path = run / f"edited-{trial}.npz"
        write_npz(path, arrays, meta)
        outcomes[_check_outcome(path, arrays, meta, must_refuse)] += 1
        path.unlink()
    assert outcomes["refused"] > 60 and outcomes["loaded"] > 5, outcomes


def test_random_truncation_and_corruption_never_load_wrong_values(run):
    rng = np.random.default_rng(2012)
    good = (run / "last.npz").read_bytes()
    arrays, meta = original(run)
    outcomes = {"refused": 0, "loaded": 0}
    for trial in range(120):
        damaged = bytearray(good)
        if trial % 3 == 0:
            damaged = damaged[: rng.integers(len(good))]
            must_refuse = True
        else:
            for position in rng.integers(len(good), size=rng.integers(1, 9)):
                damaged[position] ^= int(rng.integers(1, 256))
            must_refuse = False
        path = run / f"damaged-{trial}.npz"
        path.write_bytes(bytes(damaged))
        outcomes[_check_outcome(path, arrays, meta, must_refuse)] += 1
        path.unlink()
    assert outcomes["refused"] > 40, outcomes
