"""The cache: tests never write into the real one, and the cache command lists and removes."""

import json
from pathlib import Path

import pytest

from tinyalex import cache, cli, data


def test_tests_use_a_temporary_cache():
    home = Path.home() / ".cache" / "tinyalex"
    assert not str(data.cache_root()).startswith(str(home)), data.cache_root()
    from tinyalex.cuda import emulator

    assert not str(emulator.cache_dir()).startswith(str(home)), emulator.cache_dir()
    from tinyalex.fast import compiled

    assert not str(compiled.cache_dir()).startswith(str(home)), compiled.cache_dir()


@pytest.fixture
def filled(tmp_path, monkeypatch):
    """A cache folder with one entry of each kind, and a file that is not tinyalex's."""
    root = tmp_path / "cache"
    monkeypatch.setenv("TINYALEX_CACHE", str(root))
    monkeypatch.setenv("TINYALEX_EMULATOR_CACHE", str(root / "emulator"))
    (root / "shapes-v4-seed0").mkdir(parents=True)
    (root / "shapes-v4-seed0" / "a.png").write_bytes(b"x" * 2900)
    (root / "shapes-v4-seed0" / "dataset.json").write_text(
        '{"generator": "tinyalex.data.synthetic v4", "seed": 0}' + " " * 44)   # 100 bytes
    decoded = root / "decoded" / "photos-256px-0123456789abcdef"
    decoded.mkdir(parents=True)
    (decoded / "train.u8").write_bytes(b"x" * 2_500_000)
    (decoded / "meta.json").write_text(json.dumps({
        "format": "tinyalex-decoded-v2", "source": "/data/photos", "image_size": 256,
        "counts": {"train": 30, "val": 5}}))
    (root / "decoded" / ".tmp-4242@host-photos-256px-x").mkdir()
    (root / "emulator").mkdir()
    (root / "emulator" / f"lrn-{'ab' * 12}.so").write_bytes(b"x" * 1000)
    monkeypatch.setenv("TINYALEX_COMPILED_CACHE", str(root / "fast"))
    (root / "fast").mkdir()
    (root / "fast" / f"kernels-float32-{'cd' * 10}.so").write_bytes(b"x" * 2000)
    (root / "notes.txt").write_text("mine")
    return root


def test_listing_names_every_entry_with_its_size(filled, capsys):
    assert cache.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"tinyalex cache: {filled} ($TINYALEX_CACHE): 2.5 MB in 5 entries"
    text = "\n".join(lines)
    assert "2.5 MB  decoded/photos-256px-0123456789abcdef" in text
    assert "decoded 256px images of /data/photos (30 train, 5 val)" in text
    assert "decoded/.tmp-4242@host-photos-256px-x" in text and "interrupted" in text
    assert "3.0 KB  shapes-v4-seed0" in text and "1.0 KB  emulator" in text
    assert "2.0 KB  fast" in text and "the fast path's C kernels" in text
    assert "notes.txt" in text and "not tinyalex's: left alone" in text
    assert lines[-1].startswith("remove with: python -m tinyalex.cache remove")


def test_remove_some_entries_then_all_leaving_other_files_alone(filled, capsys):
    assert cache.main(["remove", "decoded/photos-256px-0123456789abcdef/"]) == 0
    assert "removed 1 entry (2.5 MB)" in capsys.readouterr().out
    assert not (filled / "decoded" / "photos-256px-0123456789abcdef").exists()
    assert (filled / "shapes-v4-seed0").is_dir()
    assert cli.run(cache.main, ["remove", "notes.txt"]) == 2
    assert "is not tinyalex's" in capsys.readouterr().err
    assert cli.run(cache.main, ["remove", "runs"]) == 2
    assert "is not an entry of the cache" in capsys.readouterr().err
    assert cli.run(cache.main, ["remove"]) == 2
    assert cache.main(["remove", "--all"]) == 0
    assert sorted(p.name for p in filled.rglob("*")) == ["decoded", "notes.txt"]
    assert (filled / "notes.txt").read_text() == "mine"


def test_an_empty_or_missing_cache_lists_as_empty(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "nothing"))
    monkeypatch.setenv("TINYALEX_EMULATOR_CACHE", str(tmp_path / "nothing" / "emulator"))
    monkeypatch.setenv("TINYALEX_COMPILED_CACHE", str(tmp_path / "nothing" / "fast"))
    assert cache.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "0 B in 0 entries" in out and "(empty)" in out
    assert not (tmp_path / "nothing").exists()                 # listing creates nothing


def test_human_sizes():
    assert [cache.human(n) for n in (0, 999, 1500, 2_500_000, 3 * 10**9)] == \
        ["0 B", "999 B", "1.5 KB", "2.5 MB", "3.0 GB"]


def snapshot(folder):
    """{relative path: bytes (None for a folder)} of everything under ``folder``."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def impostors(filled, tmp_path):
    """Things in the cache folder named like tinyalex's entries but not made by it: a user's
    folder called shapes-v9-mine, a decoded/ folder without tinyalex's meta.json, one whose
    meta.json has another format, a symbolic link named like the built-in set pointing at a
    user's folder, a .tmp- folder without the writer's pid and host, and the user's own files
    in the emulator's and the fast path's folders."""
    mine = tmp_path / "my-photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    (filled / "shapes-v9-mine").mkdir()
    (filled / "shapes-v9-mine" / "notes.txt").write_text("mine")
    (filled / "shapes-v4-seed1").symlink_to(mine, target_is_directory=True)
    other = filled / "decoded" / "photos-72px-fedcba9876543210"
    other.mkdir()
    (other / "train.u8").write_bytes(b"y" * 100)
    foreign = filled / "decoded" / "photos-72px-0000000000000000"
    foreign.mkdir()
    (foreign / "meta.json").write_text(json.dumps({"format": "someone-else", "source": "x"}))
    (filled / ".tmp-backup").mkdir()
    (filled / ".tmp-backup" / "old.txt").write_text("mine too")
    (filled / "emulator" / "README.txt").write_text("my notes on the kernels")
    (filled / "fast" / "kernels-float32-mine.so").write_bytes(b"my own build")
    return filled, mine


def test_remove_all_removes_only_entries_with_tinyalex_marker(impostors, capsys):
    root, mine = impostors
    theirs = {name for name in ("shapes-v9-mine", "shapes-v4-seed1",
                                "decoded/photos-72px-fedcba9876543210",
                                "decoded/photos-72px-0000000000000000", ".tmp-backup",
                                "emulator/README.txt", "fast/kernels-float32-mine.so")}
    assert cache.main([]) == 0
    listed = capsys.readouterr().out.splitlines()
    for name in theirs:
        line = next(line for line in listed if f"  {name}  " in line)
        assert line.endswith("not tinyalex's: left alone"), line
    kept = {name: value for name, value in snapshot(root).items()
            if any(name == t or name.startswith(t + "/") for t in theirs)}
    kept_mine = snapshot(mine)
    assert cache.main(["remove", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("removed 5 entries")
    after = snapshot(root)
    assert {name: after.get(name, "gone") for name in kept} == kept         # byte for byte
    assert snapshot(mine) == kept_mine
    assert not (root / "shapes-v4-seed0").exists()
    assert not (root / "decoded" / "photos-256px-0123456789abcdef").exists()
    assert sorted(p.name for p in (root / "emulator").iterdir()) == ["README.txt"]
    assert sorted(p.name for p in (root / "fast").iterdir()) == ["kernels-float32-mine.so"]
    for name in sorted(theirs):
        status = cli.run(cache.main, ["remove", name])
        err = capsys.readouterr().err
        assert status == 2 and len(err.strip().splitlines()) == 1, err
        assert "is not tinyalex's, so it is left alone" in err
    assert snapshot(root) == after


def test_an_emulator_folder_of_only_tinyalex_libraries_is_removed_whole(filled, capsys):
    assert cache.main(["remove", "emulator"]) == 0
    assert not (filled / "emulator").exists()


def test_a_stale_cache_is_replaced_only_when_it_is_tinyalex_own(tmp_path):
    from tinyalex.data.folder import remove_stale_caches, write_meta

    decoded = tmp_path / "decoded"
    fresh, old, users = (decoded / name for name in ("set-72px-new", "set-72px-old",
                                                     "set-72px-user"))
    for folder in (fresh, old, users):
        folder.mkdir(parents=True)
    meta = {"source": "/data/set", "image_size": 72, "split": "val/", "counts": {}}
    write_meta(fresh, meta)
    write_meta(old, meta)
    (users / "meta.json").write_text(json.dumps(meta))   # the same fields, no tinyalex format
    remove_stale_caches(fresh)
    assert fresh.is_dir() and not old.exists()
    assert json.loads((users / "meta.json").read_text()) == meta


def test_names_with_escape_codes_are_listed_escaped(filled, capsys):
    (filled / "\x1b[2Jgone\nline").write_text("x")
    assert cache.main([]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2Jgone\\nline" in out


# --- a cache location that cannot be used is one line before any work ------------

@pytest.mark.parametrize("case", ["a file", "below a file", "below an unreadable folder"])
def test_a_bad_tinyalex_cache_is_one_line_before_decoding(case, tiny_folder, tmp_path,
                                                          monkeypatch, capsys):
    from tinyalex import train

    (tmp_path / "file").write_text("mine")
    if case == "a file":
        cache_folder, words = tmp_path / "file", "is a file, not a folder"
    elif case == "below a file":
        cache_folder, words = tmp_path / "file" / "cache", "is a file, not a folder"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        cache_folder, words = locked / "inner" / "cache", "cannot be looked into"
        real_stat = Path.stat

        def stat(path, *args, **kwargs):      # as a folder without search permission answers
            if str(path).startswith(str(locked) + "/"):                  # (root ignores chmod)
                raise PermissionError(13, "Permission denied", str(path))
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(Path, "stat", stat)
    monkeypatch.setenv("TINYALEX_CACHE", str(cache_folder))
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")
    decoded = []
    monkeypatch.setattr(data.folder, "_decode_split", lambda *a, **k: decoded.append(a))
    status = cli.run(train.main, ["--data", str(tiny_folder), "--out", str(tmp_path / "run"),
                                  "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: TINYALEX_CACHE {cache_folder} cannot be used") and \
        words in err[0], err[0]
    assert not decoded and not (tmp_path / "run").exists()
    assert (tmp_path / "file").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["file"] + (["locked"] if case.endswith("unreadable folder") else []))
