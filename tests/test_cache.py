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
    (root / "shapes-v4-seed0" / "a.png").write_bytes(b"x" * 3000)
    decoded = root / "decoded" / "photos-256px-0123456789abcdef"
    decoded.mkdir(parents=True)
    (decoded / "train.u8").write_bytes(b"x" * 2_500_000)
    (decoded / "meta.json").write_text(json.dumps({"source": "/data/photos", "image_size": 256,
                                                   "counts": {"train": 30, "val": 5}}))
    (root / "decoded" / ".tmp-photos-256px-x").mkdir()
    (root / "emulator").mkdir()
    (root / "emulator" / "lrn-abc.so").write_bytes(b"x" * 1000)
    monkeypatch.setenv("TINYALEX_COMPILED_CACHE", str(root / "fast"))
    (root / "fast").mkdir()
    (root / "fast" / "kernels-float32-abc.so").write_bytes(b"x" * 2000)
    (root / "notes.txt").write_text("mine")
    return root


def test_listing_names_every_entry_with_its_size(filled, capsys):
    assert cache.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"tinyalex cache: {filled} ($TINYALEX_CACHE): 2.5 MB in 5 entries"
    text = "\n".join(lines)
    assert "2.5 MB  decoded/photos-256px-0123456789abcdef" in text
    assert "decoded 256px images of /data/photos (30 train, 5 val)" in text
    assert "decoded/.tmp-photos-256px-x" in text and "interrupted" in text
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
