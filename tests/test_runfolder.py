"""tinyalex.runfolder: one run per folder, a dead holder's claim recognised, default folders
that never collide."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import snapshot

from tinyalex import runfolder
from tinyalex.runfolder import FolderInUse, RunFolderError

HOLD = """
import sys, time
from tinyalex import runfolder
claim = runfolder.claim(sys.argv[1])
print("claimed", flush=True)
time.sleep(float(sys.argv[2]))
"""


def holder(folder, seconds):
    """Another process holding ``folder``'s claim for ``seconds`` (started and claimed)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "claimed"
    return process


def test_a_folder_held_by_a_live_process_is_refused_naming_it(tmp_path):
    folder = tmp_path / "run"
    process = holder(folder, 60)
    try:
        with pytest.raises(FolderInUse) as error:
            runfolder.claim(folder)
        text = str(error.value)
        assert f"pid {process.pid} on " in text and "\n" not in text
        assert text.startswith(f"{folder} is in use by another training run")
    finally:
        process.kill()
        process.wait()


def test_the_claim_of_a_killed_process_is_recognised_as_dead(tmp_path):
    folder = tmp_path / "run"
    process = holder(folder, 60)
    os.kill(process.pid, signal.SIGKILL)        # no chance to release: the lock file stays
    process.wait()
    assert (folder / runfolder.LOCK).exists()
    with runfolder.claim(folder) as claim:
        assert str(os.getpid()) in (folder / runfolder.LOCK).read_text()
        assert claim.folder == folder


def test_two_claims_in_one_process_exclude_each_other_until_released(tmp_path):
    first = runfolder.claim(tmp_path / "run")
    with pytest.raises(FolderInUse, match=f"pid {os.getpid()}"):
        runfolder.claim(tmp_path / "run")
    first.release()
    runfolder.claim(tmp_path / "run").release()


def test_release_removes_the_lock_and_a_folder_it_created_if_empty(tmp_path):
    runfolder.claim(tmp_path / "new" / "run").release()
    assert not (tmp_path / "new" / "run").exists() and (tmp_path / "new").is_dir()
    (tmp_path / "mine").mkdir()
    runfolder.claim(tmp_path / "mine").release()
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())
    with runfolder.claim(tmp_path / "kept") as claim:
        (claim.folder / "last.npz").write_bytes(b"x")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["last.npz"]


def test_default_folders_never_collide(tmp_path):
    base = tmp_path / "runs" / "20261206-142000"
    process = holder(base, 60)                               # a run started the same second
    try:
        (tmp_path / "runs" / "20261206-142000-2").mkdir()
        (tmp_path / "runs" / "20261206-142000-2" / "metrics.csv").write_text("a finished run")
        with runfolder.claim_new(base) as claim:
            assert claim.folder == tmp_path / "runs" / "20261206-142000-3"
    finally:
        process.kill()
        process.wait()
    assert (tmp_path / "runs" / "20261206-142000-2" / "metrics.csv").read_text() == \
        "a finished run"


@pytest.mark.parametrize("case", ["a file", "below a file"])
def test_a_folder_that_is_a_file_is_refused_and_left_alone(case, tmp_path):
    (tmp_path / "notes").write_text("mine")
    folder = tmp_path / "notes" if case == "a file" else tmp_path / "notes" / "run"
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        runfolder.claim(folder)
    assert (tmp_path / "notes").read_text() == "mine"


def test_a_claim_waits_for_no_one_and_takes_no_time(tmp_path):
    process = holder(tmp_path / "run", 60)
    try:
        start = time.monotonic()
        with pytest.raises(FolderInUse):
            runfolder.claim(tmp_path / "run")
        assert time.monotonic() - start < 1
    finally:
        process.kill()
        process.wait()


# --- through the training command -------------------------------------------------------------

def train_args(data, out=None, epochs=1):
    argv = ["--data", str(data), "--epochs", str(epochs), "--batch-size", "8", "--no-progress",
            "--num-workers", "0"]
    return argv + (["--out", str(out)] if out is not None else [])


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the training command starts reading data."""
    from tinyalex import data

    def open_splits(*args, **kwargs):
        raise AssertionError("data was read before the run folder was checked")

    monkeypatch.setattr(data, "open_splits", open_splits)
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")


def one_line_exit_2(capsys, argv):
    from tinyalex import cli, train

    status = cli.run(train.main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_second_training_into_a_held_folder_is_one_line(tiny_folder, tmp_path, capsys,
                                                          no_work):
    out = tmp_path / "run"
    process = holder(out, 60)                           # the first training, still running
    try:
        line = one_line_exit_2(capsys, train_args(tiny_folder, out))
        assert f"{out} is in use by another training run (pid {process.pid}" in line
    finally:
        process.kill()
        process.wait()
    assert sorted(p.name for p in out.iterdir()) == [runfolder.LOCK]   # the holder's, as left


def test_two_trainings_started_together_into_one_folder(tiny_folder, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "tinyalex.train", *train_args(tiny_folder, out)]
    env = dict(os.environ, TINYALEX_DEVICE="cpu")
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for _ in range(2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [0, 2], results
    _, _, err = next(r for r in results if r[0] == 2)
    assert err.strip().startswith(f"error: {out} is in use by another training run")
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["best.npz", "curves.png", "last.npz",
                                                     "metrics.csv"]


def test_trainings_started_in_the_same_second_get_folders_of_their_own(
        tiny_folder, tmp_path, monkeypatch, capsys):
    from tinyalex import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")
    monkeypatch.setattr(runfolder.time, "strftime", lambda *args: "20261206-142000")
    process = holder(tmp_path / "runs" / "20261206-142000", 60)
    try:
        assert train.main(train_args(tiny_folder)) == 0
    finally:
        process.kill()
        process.wait()
    assert "checkpoints in runs/20261206-142000-2" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "runs" / "20261206-142000").iterdir()) == \
        [runfolder.LOCK]                                   # the other run's folder untouched
    assert (tmp_path / "runs" / "20261206-142000-2" / "last.npz").is_file()


@pytest.mark.parametrize("case", ["an existing file", "below a file", "unwritable"])
def test_a_bad_out_is_one_line_before_any_work(case, tiny_folder, tmp_path, capsys, monkeypatch,
                                              no_work):
    (tmp_path / "notes").write_text("mine")
    if case == "an existing file":
        out, words = tmp_path / "notes", "is a file, not a folder"
    elif case == "below a file":
        out, words = tmp_path / "notes" / "run", "is a file, not a folder"
    else:
        (tmp_path / "locked").mkdir()
        out, words = tmp_path / "locked" / "run", "cannot write in it (permission denied)"
        real_mkdir = type(out).mkdir

        def mkdir(path, *args, **kwargs):       # as a read-only folder answers (root ignores
            if str(path).startswith(str(tmp_path / "locked")):                    # chmod)
                raise PermissionError(13, "Permission denied", str(path))
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(type(out), "mkdir", mkdir)
    before = snapshot(tmp_path)
    line = one_line_exit_2(capsys, train_args(tiny_folder, out))
    assert f"--out {out} cannot be a run folder" in line and words in line, line
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["notes"] + (["locked"] if case == "unwritable" else []))


@pytest.fixture
def older_best(tiny_run, tmp_path):
    """A copy of tiny_run whose best.npz is from epoch 1 and last.npz from epoch 2."""
    from tinyalex import checkpoint

    out = tmp_path / "run"
    import shutil

    shutil.copytree(tiny_run, out)
    arrays, meta = checkpoint.load(out / "last.npz")
    meta["epoch"], meta["history"] = 1, meta["history"][:1]
    meta["best_top1"] = meta["history"][0]["val_top1"]
    checkpoint.save(out / "best.npz", arrays, meta)
    return out


def test_resuming_from_an_older_best_npz_is_refused_naming_the_newer_one(older_best, capsys,
                                                                         no_work):
    before = snapshot(older_best)
    line = one_line_exit_2(capsys, ["--resume", str(older_best / "best.npz"), "--epochs", "3"])
    assert f"{older_best / 'last.npz'}" in line and "epoch 2" in line and "--out" in line, line
    assert snapshot(older_best) == before


def test_resuming_from_an_older_best_npz_into_a_new_folder_is_allowed(older_best, tmp_path,
                                                                      monkeypatch):
    from tinyalex import train

    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")
    before = snapshot(older_best)
    assert train.main(["--resume", str(older_best / "best.npz"), "--out", str(tmp_path / "new"),
                       "--epochs", "2", "--no-progress", "--num-workers", "0"]) == 0
    assert snapshot(older_best) == before
    from tinyalex import checkpoint

    assert checkpoint.load(tmp_path / "new" / "last.npz")[1]["epoch"] == 2


def test_resuming_a_run_that_another_process_holds_is_one_line(older_best, capsys, no_work):
    process = holder(older_best, 60)
    before = snapshot(older_best)
    try:
        line = one_line_exit_2(capsys, ["--resume", str(older_best), "--epochs", "3"])
        assert f"{older_best} is in use by another training run (pid {process.pid}" in line
    finally:
        process.kill()
        process.wait()
    assert snapshot(older_best) == before
