"""tinyalex.runfolder: one run per folder, a dead holder's claim recognised, default folders
that never collide (issue 21)."""

import os
import signal
import subprocess
import sys
import time

import pytest

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
