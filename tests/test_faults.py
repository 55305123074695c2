"""Faults, in the spirit of SQLite's I/O-error tests: a full disk, a failing disk, a damaged
cache, SIGKILL and two processes decoding at once end in one clear line and lose nothing.

The ``faults`` fixture makes one chosen write operation (write, flush, fsync, os.replace,
os.rename) of one chosen file fail with ENOSPC or EIO, as a full or failing disk would, at
each write site of a short training run on a tiny image folder: the decoded-image cache, the
generated data set, each checkpoint, metrics.csv and the learning curves. Every time: exit
status 1, one ``error:`` line naming the file and the way out, no traceback, the previous
checkpoint intact and loadable, no temporary file left, and the next run goes on cleanly.
"""

import errno
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_folder

from tinyalex import checkpoint, cli, data, storage, train
from tinyalex.data import folder as folder_module
from tinyalex.data.synthetic import builtin_dataset


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")


class Faults:
    """Fails the ``nth`` operation ``op`` on a file whose name contains ``name`` (temporary
    names contain the final name), once, with OSError(``code``)."""

    def __init__(self):
        self.op = None
        self.fired = False

    def arm(self, op: str, name: str, code: int = errno.ENOSPC, nth: int = 1) -> None:
        self.op, self.name, self.code, self.nth = op, name, code, nth
        self.count, self.fired = 0, False

    def hit(self, op: str, path) -> None:
        if op != self.op or self.fired or self.name not in os.path.basename(os.fspath(path)):
            return
        self.count += 1
        if self.count == self.nth:
            self.fired = True
            raise OSError(self.code, os.strerror(self.code), os.fspath(path))


class FaultyFile:
    """A file opened for writing whose write and flush go through ``Faults.hit`` first."""

    def __init__(self, file, path, faults: Faults):
        self._file, self._path, self._faults = file, path, faults

    def write(self, data):
        self._faults.hit("write", self._path)
        return self._file.write(data)

    def flush(self):
        self._faults.hit("flush", self._path)
        return self._file.flush()

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


@pytest.fixture
def faults(monkeypatch):
    """A Faults plan wired into every write tinyalex makes (storage.open_for_writing opens
    each file; os.fsync, os.replace and os.rename are the other operations)."""
    plan = Faults()
    real_open, real_fsync = storage.open_for_writing, os.fsync
    real_replace, real_rename = os.replace, os.rename

    def open_for_writing(path, mode="wb"):
        return FaultyFile(real_open(path, mode), path, plan)

    def fsync(fd):
        plan.hit("fsync", os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def replace(src, dst, *a, **k):
        plan.hit("replace", dst)
        return real_replace(src, dst, *a, **k)

    def rename(src, dst, *a, **k):
        plan.hit("rename", dst)
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(storage, "open_for_writing", open_for_writing)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)
    return plan


def one_error_line(err: str) -> str:
    """The single ``error:`` line of a program's stderr (the last line; no traceback)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def temporaries(*folders) -> list[Path]:
    return [p for folder in folders for p in Path(folder).rglob(".tmp*")]


def run_train(capsys, *argv):
    status = cli.run(train.main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """9 train and 3 val images of 3 classes: an epoch is two steps of 8 images at most."""
    return make_tiny_folder(tmp_path_factory.mktemp("faults"), n_train=3, n_val=1)


def args(folder, out, epochs):
    return ["--data", folder, "--out", out, "--epochs", epochs, "--batch-size", "8",
            "--no-progress", "--num-workers", "0"]


@pytest.fixture(scope="module")
def epoch1(folder, tmp_path_factory, session_cache):
    """A run folder holding a finished 1-epoch run (copy it before use)."""
    out = tmp_path_factory.mktemp("epoch1") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYALEX_DEVICE", "cpu")
        assert cli.run(train.main, [str(a) for a in args(folder, out, 1)]) == 0
    return out


def loads_at(path, epoch):
    arrays, meta = checkpoint.load(path)
    assert meta["epoch"] == epoch and meta["batch"] == 0
    assert all(np.isfinite(a).all() for a in arrays["param"].values())


# --- the three faults of a run that used to end in a traceback --------------------------------

def test_full_disk_while_saving_a_checkpoint_is_one_line_and_keeps_the_last_one(
        faults, folder, epoch1, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(epoch1, run)
    before = (run / "last.npz").read_bytes()
    faults.arm("write", "last.npz", errno.ENOSPC)
    status, out, err = run_train(capsys, "--resume", run, "--epochs", 2)
    assert faults.fired and status == cli.EXIT_FAILED
    line = one_error_line(err)
    assert f"cannot write {run / 'last.npz'}: no space left on the disk (" in line
    assert " needed, " in line and " free)" in line and "--out" in line
    assert f"keeps the end of epoch 1 (continue with --resume {run}" in line
    assert (run / "last.npz").read_bytes() == before      # untouched, byte for byte
    loads_at(run / "last.npz", 1)
    assert temporaries(run) == []
    status, out, err = run_train(capsys, "--resume", run, "--epochs", 2)
    assert status == 0, err
    loads_at(run / "last.npz", 2)


def test_full_disk_while_decoding_is_one_line_naming_tinyalex_cache(faults, folder, tmp_path,
                                                                     monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TINYALEX_CACHE", str(cache))
    faults.arm("write", "train.u8", errno.ENOSPC, nth=3)
    status, out, err = run_train(capsys, *args(folder, tmp_path / "run", 1))
    assert faults.fired and status == cli.EXIT_FAILED
    line = one_error_line(err)
    assert "no space left on the disk" in line and "TINYALEX_CACHE" in line
    assert str(cache / "decoded") in line
    assert list((cache / "decoded").iterdir()) == []      # the partial entry is gone
    assert not (tmp_path / "run").exists()                # nothing of the run was started
    faults.arm(None, "")
    train_set, _ = data.open_splits(folder, 72, log=None)
    assert len(train_set) == 9


def test_a_truncated_cache_entry_is_detected_and_rebuilt(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    first, _ = data.open_splits(folder, 32, log=None)
    expected = np.array(first.images)
    entry = next((tmp_path / "cache" / "decoded").iterdir())
    del first
    with open(entry / "train.u8", "r+b") as f:            # a crash, a copy gone wrong
        f.truncate(100)
    lines = []
    again, _ = data.open_splits(folder, 32, log=lines.append)
    assert any("is damaged (train.u8 holds 100 bytes" in line and "decoding again" in line
               for line in lines), lines
    np.testing.assert_array_equal(again.images, expected)
    assert [p.name for p in (tmp_path / "cache" / "decoded").iterdir()] == [entry.name]


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB file system (tmpfs), where the kernel itself answers ENOSPC; skipped where
    mounting is not allowed (not root, or a container without the right)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                                            str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a 1 MB tmpfs needs root (the injected faults cover the same)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk_keeps_the_old_checkpoint(small_disk):
    old = checkpoint.save(small_disk / "last.npz", {"param": {"w": np.ones(100_000, np.float32)}},
                          {"epoch": 1})                                  # 400 KB
    before = old.read_bytes()
    with pytest.raises(storage.WriteError) as caught:                   # 400 + 800 KB > 1 MB
        checkpoint.save(old, {"param": {"w": np.ones(200_000, np.float32)}}, {"epoch": 2})
    assert re.fullmatch(rf"cannot write {re.escape(str(old))}: no space left on the disk "
                        r"\(80\d\.\d KB needed, \d+\.\d KB free\): free space there, or write "
                        r"somewhere else", str(caught.value)), str(caught.value)
    assert old.read_bytes() == before and list(small_disk.iterdir()) == [old]


@pytest.mark.parametrize("damage, reason", [
    (lambda e: (e / "meta.json").write_text((e / "meta.json").read_text().replace(
        '"image_size": 32', '"image_size": 33')), "does not match its checksum"),
    (lambda e: (e / "meta.json").write_text("{"), "meta.json is unreadable"),
    (lambda e: (e / "meta.json").unlink(), "meta.json is missing"),
    (lambda e: np.save(e / "val-labels.npy", np.zeros(3, np.int64)), "val-labels.npy does not "
                                                                      "match its checksum"),
    (lambda e: open(e / "val.u8", "ab").write(b"x"), "val.u8 holds"),
])
def test_every_kind_of_damage_is_found_and_rebuilt(damage, reason, folder, tmp_path,
                                                   monkeypatch):
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    first, val = data.open_splits(folder, 32, log=None)
    expected = np.array(first.images), np.array(val.labels)
    entry = next((tmp_path / "cache" / "decoded").iterdir())
    damage(entry)
    lines = []
    again, val = data.open_splits(folder, 32, log=lines.append)
    assert any(reason in line for line in lines), lines
    np.testing.assert_array_equal(again.images, expected[0])
    np.testing.assert_array_equal(val.labels, expected[1])
    assert folder_module.read_entry(entry)[0] is not None


# --- every write site of a short run, each operation -------------------------------------------

@pytest.mark.parametrize("op, name, code", [
    ("write", "last.npz", errno.ENOSPC),
    ("flush", "last.npz", errno.EIO),
    ("fsync", "last.npz", errno.ENOSPC),
    ("replace", "last.npz", errno.EIO),
    ("write", "metrics.csv", errno.ENOSPC),
    ("replace", "metrics.csv", errno.EIO),
    ("write", "curves.png", errno.ENOSPC),
    ("fsync", "curves.png", errno.EIO),
])
def test_a_failed_write_in_the_run_folder(op, name, code, faults, folder, epoch1, tmp_path,
                                          capsys):
    """Epoch 2 of a resumed run; the fault hits the first such operation on ``name``."""
    run = tmp_path / "run"
    shutil.copytree(epoch1, run)
    metrics, before = (run / "metrics.csv").read_text(), (run / "last.npz").read_bytes()
    faults.arm(op, name, code)
    status, out, err = run_train(capsys, "--resume", run, "--epochs", 2)
    assert faults.fired and status == cli.EXIT_FAILED
    line = one_error_line(err)
    assert f"cannot write {run / name}: " in line and "--out" in line
    assert ("no space left" in line) == (code == errno.ENOSPC)
    assert ("input/output error" in line) == (code == errno.EIO)
    assert temporaries(run) == []
    if name == "last.npz":
        assert (run / "last.npz").read_bytes() == before  # the previous one, intact
        loads_at(run / "last.npz", 1)
        assert "keeps the end of epoch 1" in line
    else:                                                 # last.npz of epoch 2 was written
        loads_at(run / "last.npz", 2)
        assert "keeps the end of epoch 2" in line
    if name == "metrics.csv":
        assert (run / "metrics.csv").read_text() == metrics   # epoch 1's, whole
    status, out, err = run_train(capsys, "--resume", run, "--epochs", 3)
    assert status == 0, err
    loads_at(run / "last.npz", 3)
    assert len((run / "metrics.csv").read_text().splitlines()) == 4   # header + 3 epochs
    assert temporaries(run) == []


def test_a_failed_write_of_best_npz_keeps_last_npz(faults, folder, tmp_path, capsys):
    run = tmp_path / "run"
    faults.arm("write", "best.npz", errno.ENOSPC)
    status, out, err = run_train(capsys, *args(folder, run, 1))
    assert faults.fired and status == cli.EXIT_FAILED
    line = one_error_line(err)
    assert f"cannot write {run / 'best.npz'}: no space left" in line
    loads_at(run / "last.npz", 1)
    assert not (run / "best.npz").exists() and temporaries(run) == []
    status, out, err = run_train(capsys, "--resume", run, "--epochs", 2)
    assert status == 0, err
    loads_at(run / "last.npz", 2)


@pytest.mark.parametrize("op, name, code", [
    ("write", "-labels.npy", errno.EIO),
    ("fsync", "meta.json", errno.ENOSPC),
    ("rename", "-72px-", errno.EIO),
])
def test_a_failed_write_into_the_decode_cache(op, name, code, faults, folder, tmp_path,
                                              monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TINYALEX_CACHE", str(cache))
    faults.arm(op, name, code)
    status, out, err = run_train(capsys, *args(folder, tmp_path / "run", 1))
    assert faults.fired and status == cli.EXIT_FAILED
    line = one_error_line(err)
    assert f"cannot write {cache / 'decoded'}" in line and "TINYALEX_CACHE" in line
    assert list((cache / "decoded").iterdir()) == []
    train_set, _ = data.open_splits(folder, 72, log=None)      # the next run decodes afresh
    assert len(train_set) == 9 and temporaries(cache) == []


@pytest.mark.parametrize("op, name, code, nth", [
    ("write", ".png", errno.ENOSPC, 5),
    ("fsync", "dataset.json", errno.EIO, 1),
    ("rename", "shapes-v", errno.ENOSPC, 1),
])
def test_a_failed_write_while_generating_the_built_in_set(op, name, code, nth, faults, tmp_path,
                                                          capsys):
    def generate(argv):
        builtin_dataset(tmp_path, n_train=2, n_val=1, size=16, workers=1)
        return 0

    faults.arm(op, name, code, nth)
    status = cli.run(generate)
    assert faults.fired and status == cli.EXIT_FAILED
    line = one_error_line(capsys.readouterr().err)
    assert "TINYALEX_CACHE" in line and str(tmp_path) in line
    assert list(tmp_path.iterdir()) == []                 # no half-generated set, no temporary
    done = builtin_dataset(tmp_path, n_train=2, n_val=1, size=16, workers=1)
    assert len(list((done / "train").rglob("*.png"))) == 20


def test_a_failed_write_of_a_figure_keeps_the_old_one(faults, epoch1, tmp_path, capsys):
    from tinyalex import viz

    out = tmp_path / "filters.png"
    argv = ["filters", "--checkpoint", str(epoch1), "--out", str(out)]
    assert cli.run(viz.main, argv) == 0
    before = out.read_bytes()
    faults.arm("write", "filters.png", errno.ENOSPC)
    assert cli.run(viz.main, argv) == cli.EXIT_FAILED and faults.fired
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: cannot write {out}: no space left on the disk")
    assert out.read_bytes() == before and temporaries(tmp_path) == []


def test_an_unwrapped_disk_error_is_still_one_line():
    def fails(argv):
        raise OSError(errno.EIO, os.strerror(errno.EIO), "/somewhere/file")

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stderr", err)
        assert cli.run(fails) == cli.EXIT_FAILED
    assert one_error_line(err.getvalue()).startswith("error: input/output error (/somewhere/file)")


# --- room checked before any work ----------------------------------------------------------

def test_a_run_folder_without_room_for_its_checkpoints_stops_before_training(
        folder, tmp_path, monkeypatch, capsys):
    need = {}
    real = storage.check_room

    def spy(path, size, what, fix):
        need["size"] = size
        return real(path, size, what, fix)

    monkeypatch.setattr(storage, "check_room", spy)
    monkeypatch.setattr(storage, "free_bytes", lambda path: 3_000_000)   # the 3 MB disk
    status, out, err = run_train(capsys, *args(folder, tmp_path / "run", 1))
    assert status == cli.EXIT_BAD_INPUT
    line = one_error_line(err)
    assert line.startswith("error: not enough room for this run's checkpoints (last.npz, "
                           "best.npz and a temporary copy while one is replaced: 3 x ")
    assert "3.0 MB free" in line and "--out" in line and str(tmp_path / "run") in line
    assert "epoch 1" not in out and not (tmp_path / "run").exists()   # nothing trained or made
    # 3 checkpoints of the mini preset: params + momentum buffers (float32) + statistics
    assert 3 * 2 * 543_267 * 4 < need["size"] < 3 * (2 * 543_267 * 4 + 300_000)


def test_the_checkpoint_estimate_bounds_the_file(tmp_path):
    arrays = {"param": {"w": np.zeros((300, 200), np.float32), "b": np.zeros(7, np.float32)},
              "velocity": {"w": np.zeros((300, 200), np.float32)}}
    path = checkpoint.save(tmp_path / "c.npz", arrays, {"history": [{"epoch": 1}] * 20})
    estimate = checkpoint.estimate_size(arrays)
    assert path.stat().st_size <= estimate <= path.stat().st_size + 70_000


def test_the_cache_checks_room_before_decoding(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(storage, "free_bytes", lambda path: 10_000)
    status, out, err = run_train(capsys, *args(folder, tmp_path / "run", 1))
    assert status == cli.EXIT_BAD_INPUT
    line = one_error_line(err)
    assert "not enough room for the cache entry" in line and "10.0 KB free" in line
    assert "TINYALEX_CACHE" in line
    assert list((tmp_path / "cache" / "decoded").iterdir()) == []


# --- temporary files of killed processes --------------------------------------------------------

def test_stale_temporaries_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = storage.temp_prefix("x").split("@")[1].split("-")[0]
    names = {
        "dead": f".tmp-{dead.pid}@{host}-last.npz-abc.tmp",       # its writer was killed
        "live": f".tmp-{os.getppid()}@{host}-last.npz-def.tmp",   # a running process's
        "other host": f".tmp-{dead.pid}@elsewhere-last.npz-ghi.tmp",
        "other host, old": f".tmp-{dead.pid}@elsewhere-best.npz-jkl.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    old = time.time() - storage.STALE_AFTER_S - 60
    os.utime(tmp_path / names["other host, old"], (old, old))
    (tmp_path / ".tmp-1@h-dir").mkdir()                          # another host, recent: kept
    (tmp_path / ".tmp-mine").write_bytes(b"a user's")             # not our name: kept
    os.utime(tmp_path / ".tmp-mine", (old, old))
    checkpoint.save(tmp_path / "last.npz", {"param": {"w": np.ones(3, np.float32)}}, {})
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([".tmp-1@h-dir", ".tmp-mine", names["live"], names["other host"],
                           "last.npz"])


# --- processes: SIGKILL at random moments, two decoders at once --------------------------------

def subprocess_env(cache):
    return dict(os.environ, TINYALEX_CACHE=str(cache), TINYALEX_DEVICE="cpu",
                PYTHONPATH=str(Path(__file__).resolve().parents[1]))


def test_sigkill_at_random_moments_then_resume(folder, tmp_path):
    """Five kills at random moments of training, each 1 or 2 epochs into a process and 0 to
    0.4 s after an epoch's line (the checkpoints are written then, so some kills land while
    one is written); every checkpoint left loads, the run resumes to its end, and no
    temporary file is left."""
    run = tmp_path / "run"
    env = subprocess_env(tmp_path / "cache")
    rng = np.random.default_rng(0)
    epochs = []  # the epoch last.npz held after each kill
    for _ in range(5):
        argv = (args(folder, run, 12) if not (run / "last.npz").exists() else
                ["--resume", run, "--no-progress", "--num-workers", "0"])
        proc = subprocess.Popen([sys.executable, "-m", "tinyalex.train", *map(str, argv)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        wait = int(rng.integers(1, 3))   # epoch lines to see before the kill
        for line in proc.stdout:
            wait -= line.startswith("epoch ")
            if not wait:
                break
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        for name in ("last.npz", "best.npz"):
            if (run / name).exists():
                checkpoint.load(run / name)
        epochs.append(checkpoint.load(run)[1]["epoch"] if (run / "last.npz").exists() else 0)
    assert 0 < epochs[0] and epochs[-1] < 12, epochs     # the kills interrupted real work
    done = subprocess.run([sys.executable, "-m", "tinyalex.train", "--resume", str(run),
                           "--no-progress", "--num-workers", "0"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loads_at(run / "last.npz", 12)
    checkpoint.load(run / "best.npz")
    assert temporaries(run, tmp_path / "cache") == []


DECODE = """
import hashlib, sys
from tinyalex import data
train, val = data.open_splits(sys.argv[1], 48, log=None)
print(hashlib.sha256(train.images.tobytes() + val.images.tobytes()).hexdigest(), len(train))
"""


def test_two_processes_decoding_the_same_set_at_once(tmp_path):
    root = make_tiny_folder(tmp_path / "set", n_train=20, n_val=4)
    env = subprocess_env(tmp_path / "cache")
    procs = [subprocess.Popen([sys.executable, "-c", DECODE, str(root)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), results
    assert results[0][0] == results[1][0] and results[0][0].split()[1] == "60"
    entries = list((tmp_path / "cache" / "decoded").iterdir())
    assert len(entries) == 1 and folder_module.read_entry(entries[0])[0] is not None
