"""tinyalex.predict against hostile input: --csv / --json checked before any work and written
atomically, file names that are not UTF-8, class names with escape codes."""

import csv
import errno
import json
import os
import shutil

import pytest
from conftest import snapshot

from tinyalex import checkpoint, cli, predict, storage


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")


@pytest.fixture
def pictures(tiny_folder, tmp_path):
    folder = tmp_path / "pictures"
    shutil.copytree(tiny_folder / "val" / "red", folder)                # 3 images
    return folder


@pytest.fixture
def no_classifying(monkeypatch):
    """Fail the test if predict gets as far as classifying."""
    def classify(*args, **kwargs):
        raise AssertionError("classified before the destination was checked")

    monkeypatch.setattr(predict, "classify", classify)


def refused(capsys, argv):
    status = cli.run(predict.main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("option", ["--csv", "--json"])
@pytest.mark.parametrize("case", ["a folder", "in a missing folder", "in a file's place",
                                  "a FIFO", "in a read-only folder"])
def test_a_destination_that_cannot_be_written_is_one_line_before_any_work(
        case, option, pictures, tiny_run, tmp_path, capsys, monkeypatch, no_classifying):
    target = tmp_path / "out"
    if case == "a folder":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
        words = "is a folder"
    elif case == "in a missing folder":
        target = tmp_path / "nowhere" / "out.csv"
        words = "does not exist"
    elif case == "in a file's place":
        (tmp_path / "file").write_text("mine")
        target = tmp_path / "file" / "out.csv"
        words = "is a file, not a folder"
    elif case == "a FIFO":
        os.mkfifo(target)
        words = "not a regular file"
    else:
        (tmp_path / "locked").mkdir()
        target = tmp_path / "locked" / "out.csv"
        real = storage.open_for_writing

        def read_only(path, mode="wb"):       # as a read-only folder answers (root ignores
            if str(path).startswith(str(tmp_path / "locked")):              # chmod)
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(path, mode)

        monkeypatch.setattr(storage, "open_for_writing", read_only)
        words = "cannot write in"
    before = snapshot(tmp_path)
    line = refused(capsys, [str(pictures), "--checkpoint", str(tiny_run), option, str(target)])
    assert option in line and words in line, line
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "nowhere").exists()


def test_a_failed_write_leaves_the_previous_file_whole(pictures, tiny_run, tmp_path, capsys,
                                                        monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("path,rank,class,probability\nprevious,1,red,1.0\n")
    before = target.read_bytes()
    real = storage.open_for_writing

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    def failing(path, mode="wb"):
        f = real(path, mode)
        return f if str(path).endswith("probe") else FullDisk(f)

    monkeypatch.setattr(storage, "open_for_writing", failing)
    status = cli.run(predict.main, [str(pictures), "--checkpoint", str(tiny_run), "--csv",
                                    str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and "no space left" in err[0], err
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "pictures"]


def test_file_names_that_are_not_utf8_are_written_escaped(pictures, tiny_run, tmp_path, capsys):
    odd = os.fsdecode(b"caf\xe9-\xff.png")                         # Latin-1 bytes: not UTF-8
    shutil.copy(pictures / "0.png", pictures / odd)
    for name in ("out.csv", "out.json"):
        (tmp_path / name).write_text("previous")
    assert predict.main([str(pictures), "--checkpoint", str(tiny_run), "--csv",
                         str(tmp_path / "out.csv"), "--json", str(tmp_path / "out.json")]) == 0
    text = (tmp_path / "out.csv").read_bytes().decode("utf-8")     # valid UTF-8
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == 4 * 3
    assert [r for r in rows if r["path"].endswith("caf\\udce9-\\udcff.png")]
    document = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    paths = [p["path"] for p in document["predictions"]]
    assert str(pictures / odd) in paths                             # JSON holds the exact name
    capsys.readouterr()
    assert predict.main([str(pictures / odd), "--checkpoint", str(tiny_run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].endswith("caf\\udce9-\\udcff.png")


def test_class_names_with_escape_codes_are_printed_escaped(pictures, tiny_run, tmp_path,
                                                           capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    arrays, meta = checkpoint.load(run / "best.npz")
    meta["classes"] = ["\x1b[2J\x1b[Hblue", "green\nINJECTED line", "red\r\x07"]
    checkpoint.save(run / "best.npz", arrays, meta)
    assert predict.main([str(pictures / "0.png"), "--checkpoint", str(run)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    lines = out.splitlines()
    assert len(lines) == 5 and not any(line.startswith("INJECTED") for line in lines)
    assert {line.split()[1] for line in lines[2:]} == {"\\x1b[2J\\x1b[Hblue", "green\\nINJECTED",
                                                      "red\\r\\x07"}


def test_a_fifo_among_the_images_is_skipped_and_reported(pictures, tiny_run, capsys):
    os.mkfifo(pictures / "pipe.png")
    assert predict.main([str(pictures), "--checkpoint", str(tiny_run), "--top", "1"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 + 3 * 2                  # the 3 images
    assert "skipped 1 file(s)" in captured.err and "pipe.png" in captured.err
    assert "pipe.png (not a regular file)" in captured.err
