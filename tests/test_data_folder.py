"""Image folders: discovery, held-out split, format conversions, bad files, decode-once cache."""

import os
import time

import numpy as np
import pytest
from PIL import Image

from tinyalex import data
from tinyalex.data import decode as decode_module
from tinyalex.data import folder as folder_module

RED, BLUE = (255, 0, 0), (0, 0, 255)


def solid(path, colour, size=(24, 16), mode="RGB", fmt=None, **save_args):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour)
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path, format=fmt, **save_args)
    return path


def make_folder(root, classes=("cat", "dog"), per_class=4, val=True, size=(24, 16)):
    """root/train/<class>/i.png (and val/) with class-coloured solid images."""
    colours = {"cat": RED, "dog": BLUE, "eel": (0, 255, 0)}
    for split, count in (("train", per_class), ("val", 2 if val else 0)):
        for name in classes:
            for i in range(count):
                solid(root / split / name / f"{i}.png", colours[name], size)
    return root


def test_layout_classes_labels_and_memmap(tmp_path):
    root = make_folder(tmp_path / "set", classes=("dog", "cat"))
    train, val = data.open_splits(root, 16, cache_dir=tmp_path / "cache", log=None)
    assert train.classes == val.classes == ["cat", "dog"]            # sorted folder names
    assert len(train) == 8 and len(val) == 4
    assert train.images.dtype == np.uint8 and train.images.shape == (8, 16, 16, 3)
    assert isinstance(train.images, np.memmap)
    assert train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.labels, [0, 0, 0, 0, 1, 1, 1, 1])
    # cats are red, dogs blue: labels follow the folders
    np.testing.assert_array_equal(train.images[0, 5, 5], RED)
    np.testing.assert_array_equal(train.images[7, 5, 5], BLUE)


def test_held_out_split_is_seeded_stratified_and_disjoint(tmp_path):
    root = make_folder(tmp_path / "set", per_class=20, val=False)
    # Tag each image with its index in the blue channel so we can tell files apart.
    for name in ("cat", "dog"):
        for i in range(20):
            solid(root / "train" / name / f"{i}.png", (255 if name == "cat" else 0, 0, i))
    kw = {"cache_dir": tmp_path / "cache", "log": None}
    train, val = data.open_splits(root, 16, val_fraction=0.25, seed=3, **kw)
    assert len(train) == 30 and len(val) == 10
    np.testing.assert_array_equal(np.bincount(val.labels), [5, 5])    # stratified

    def ids(split):   # (class, index tag) of every image
        return {(int(lab), int(img[0, 0, 2]))
                for img, lab in zip(split.images, split.labels, strict=True)}
    assert not ids(train) & ids(val) and len(ids(train) | ids(val)) == 40
    again_train, again_val = data.open_splits(root, 16, val_fraction=0.25, seed=3, **kw)
    assert ids(again_val) == ids(val)                                  # same seed, same files
    _, other_val = data.open_splits(root, 16, val_fraction=0.25, seed=4, **kw)
    assert ids(other_val) != ids(val)


def test_format_conversions(tmp_path):
    d = tmp_path / "img"
    d.mkdir()
    gray = solid(d / "gray.png", (100, 100, 100), mode="L")
    palette = solid(d / "palette.gif", RED, mode="P")
    cmyk = solid(d / "cmyk.jpg", RED, mode="CMYK", quality=95)
    deep = d / "deep.png"
    Image.fromarray(np.full((16, 24), 40000, dtype=np.uint16)).save(deep)   # 16-bit gray
    rgba = d / "rgba.png"
    pixels = np.zeros((16, 24, 4), dtype=np.uint8)
    pixels[..., 2] = 255            # blue, but fully transparent: must come out white
    Image.fromarray(pixels, "RGBA").save(rgba)
    for path, expected, tol in ((gray, (100, 100, 100), 0), (palette, RED, 0), (cmyk, RED, 12),
                                (deep, (155, 155, 155), 1), (rgba, (255, 255, 255), 0)):
        out = data.load_image(path, 12)
        assert out.shape == (12, 12, 3) and out.dtype == np.uint8, path.name
        assert np.abs(out.astype(int) - expected).max() <= tol, (path.name, out[6, 6])


def test_exif_orientation_is_honoured(tmp_path):
    # Stored 40 wide x 20 tall: left half red, right half blue. EXIF orientation 6 says
    # "rotate 90 degrees clockwise to display": the displayed image is 20 x 40, red on top.
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = RED
    pixels[:, 20:] = BLUE
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=95)
    out = data.load_image(path, 20).astype(int)       # centre 20x20 of the upright 20x40
    assert np.abs(out[2, 2] - RED).max() < 40 and np.abs(out[2, 17] - RED).max() < 40
    assert np.abs(out[17, 2] - BLUE).max() < 40 and np.abs(out[17, 17] - BLUE).max() < 40


def test_rescale_shorter_side_and_centre_crop(tmp_path):
    # 60 x 20: shorter side 20 -> S; the centre 20 x 20 (columns 20..40) is the green band.
    pixels = np.zeros((20, 60, 3), dtype=np.uint8)
    pixels[:, :20] = RED
    pixels[:, 20:40] = (0, 255, 0)
    pixels[:, 40:] = BLUE
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    out = data.load_image(tmp_path / "wide.png", 10)
    assert out.shape == (10, 10, 3)
    np.testing.assert_array_equal(out[:, 1:-1], np.broadcast_to([0, 255, 0], (10, 8, 3)))
    exact = data.load_image(tmp_path / "wide.png", 20)              # no resampling at S = 20
    np.testing.assert_array_equal(exact, pixels[:, 20:40])


def bad_files(class_dir):
    """Every kind of broken file the issue lists; returns their names."""
    good = solid(class_dir / "good.jpg", RED, size=(64, 48), quality=90)
    raw = good.read_bytes()
    (class_dir / "truncated.jpg").write_bytes(raw[: len(raw) // 2])
    big = class_dir / "big.png"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big)
    (class_dir / "truncated.png").write_bytes(big.read_bytes()[:600])
    big.unlink()
    (class_dir / "page.jpg").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    (class_dir / "notes.txt").write_text("not an image")
    (class_dir / "empty.jpg").write_bytes(b"")
    (class_dir / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")          # hidden: ignored silently
    return {"truncated.jpg", "truncated.png", "page.jpg", "notes.txt", "empty.jpg"}


def test_bad_files_are_skipped_and_reported_once(tmp_path):
    root = make_folder(tmp_path / "set")
    bad = bad_files(root / "train" / "cat")
    lines = []
    train, val = data.open_splits(root, 16, cache_dir=tmp_path / "cache", log=lines.append)
    assert len(train) == 9                                          # 4 + 4 + good.jpg
    assert {os.path.basename(p) for p, _ in train.skipped} == bad
    reasons = dict((os.path.basename(p), r) for p, r in train.skipped)
    assert reasons["truncated.jpg"] == "truncated file"
    assert reasons["page.jpg"] == "not an image"
    reports = [line for line in lines if line.startswith("skipped")]
    assert len(reports) == 1                                        # once per run
    assert reports[0].startswith("skipped 5 file(s)")
    assert str(root / "train" / "cat") in reports[0] and "and 0 more" not in reports[0]
    # a second run (from the cache) still reports, once, from the stored list
    lines.clear()
    train2, _ = data.open_splits(root, 16, cache_dir=tmp_path / "cache", log=lines.append)
    assert train2.skipped == train.skipped
    assert sum(line.startswith("skipped") for line in lines) == 1
    assert not any(line.startswith("decoding") for line in lines)


def test_format_skipped_lists_the_first_few():
    skipped = [(f"/d/{i}.jpg", "not an image") for i in range(8)]
    line = data.format_skipped(skipped, first=3)
    assert line.startswith("skipped 8 file(s)") and "/d/2.jpg" in line and "/d/3.jpg" not in line
    assert line.endswith("and 5 more")


def test_load_image_errors(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_image(tmp_path / "nope.jpg", 16)
    (tmp_path / "page.jpg").write_text("<html></html>")
    with pytest.raises(data.DataError, match="cannot read .*page.jpg.*not an image"):
        data.load_image(tmp_path / "page.jpg", 16)


@pytest.mark.parametrize("case, pattern", [
    ("missing", "does not exist"),
    ("no_train", "has no train/ folder"),
    ("no_classes", "has no class folders"),
    ("empty_class", "class folder .*eel has no usable image"),
    ("bad_class", "class folder .*eel has no usable image"),
    ("val_extra", "missing from train/"),
    ("val_empty", "val has no class folders"),
])
def test_bad_layouts_raise_one_line_data_errors(tmp_path, case, pattern):
    root = tmp_path / "set"
    if case != "missing":
        make_folder(root)
    if case == "no_train":
        (root / "train").rename(root / "training")
    elif case == "no_classes":
        for class_dir in (root / "train").iterdir():
            for f in class_dir.iterdir():
                f.unlink()
            class_dir.rmdir()
    elif case == "empty_class":
        (root / "train" / "eel").mkdir()
    elif case == "bad_class":
        (root / "train" / "eel").mkdir()
        (root / "train" / "eel" / "x.jpg").write_text("<html></html>")
    elif case == "val_extra":
        solid(root / "val" / "eel" / "0.png", RED)
    elif case == "val_empty":
        for class_dir in (root / "val").iterdir():
            for f in class_dir.iterdir():
                f.unlink()
            class_dir.rmdir()
    with pytest.raises(data.DataError, match=pattern) as info:
        data.open_splits(root, 16, cache_dir=tmp_path / "cache", log=None)
    assert "\n" not in str(info.value) and ":" in str(info.value)     # one line, with a fix


def count_decodes(monkeypatch):
    calls = []
    real = folder_module.decode

    def counting(path, size):
        calls.append(path)
        return real(path, size)
    monkeypatch.setattr(folder_module, "decode", counting)
    return calls


def test_cache_built_once_reused_and_rebuilt_on_change(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "set")
    calls = count_decodes(monkeypatch)
    kw = {"cache_dir": tmp_path / "cache", "log": None}
    first, _ = data.open_splits(root, 16, **kw)
    assert len(calls) == 12
    caches = list((tmp_path / "cache" / "decoded").iterdir())
    assert len(caches) == 1 and not any(p.name.startswith(".tmp") for p in caches)

    calls.clear()
    again, _ = data.open_splits(root, 16, **kw)                     # reused: nothing decoded
    assert calls == []
    np.testing.assert_array_equal(again.images, first.images)

    calls.clear()
    data.open_splits(root, 20, **kw)                                # another size: new cache
    assert len(calls) == 12

    calls.clear()                                                   # a file changes content
    target = root / "train" / "cat" / "0.png"
    solid(target, (0, 255, 0))
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed, _ = data.open_splits(root, 16, **kw)
    assert len(calls) == 12
    np.testing.assert_array_equal(changed.images[0, 3, 3], (0, 255, 0))

    calls.clear()                                                   # a file is added
    solid(root / "train" / "dog" / "new.png", BLUE)
    added, _ = data.open_splits(root, 16, **kw)
    assert len(calls) == 13 and len(added) == 9
    # the outdated 16 px caches were removed; the 20 px one is not outdated, it stays
    names = sorted(p.name.split("-")[1] for p in (tmp_path / "cache" / "decoded").iterdir())
    assert names == ["16px", "20px"]
    np.testing.assert_array_equal(first.images[0, 3, 3], RED)     # an open memmap still reads


def test_interrupted_cache_build_is_not_reused(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "set")
    kw = {"cache_dir": tmp_path / "cache", "log": None}

    def crash(path, size):
        raise KeyboardInterrupt
    monkeypatch.setattr(folder_module, "decode", crash)
    with pytest.raises(KeyboardInterrupt):
        data.open_splits(root, 16, **kw)
    assert list((tmp_path / "cache" / "decoded").iterdir()) == []   # no half-built cache left
    monkeypatch.setattr(folder_module, "decode", decode_module.decode)
    train, _ = data.open_splits(root, 16, **kw)
    assert len(train) == 8


def test_decoding_with_threads_matches_serial(tmp_path):
    root = make_folder(tmp_path / "set", per_class=6)
    serial, _ = data.open_splits(root, 16, cache_dir=tmp_path / "c1", log=None, workers=1)
    threaded, _ = data.open_splits(root, 16, cache_dir=tmp_path / "c2", log=None, workers=3)
    np.testing.assert_array_equal(serial.images, threaded.images)
    np.testing.assert_array_equal(serial.labels, threaded.labels)


# --- files that are not regular files ---------------------------------------------

def test_a_fifo_in_a_training_folder_is_skipped_and_reported_not_opened(tmp_path):
    import subprocess
    import sys

    root = make_folder(tmp_path / "set")
    os.mkfifo(root / "train" / "cat" / "pipe.png")       # nothing ever writes to it
    before = {p: p.read_bytes() for p in root.rglob("*.png") if p.is_file()}
    script = ("import sys; from tinyalex import data; "
              "train, val = data.open_splits(sys.argv[1], 16, cache_dir=sys.argv[2], "
              "log=lambda line: print(line, file=sys.stderr)); print(len(train), len(val))")
    # in a process of its own: opening the FIFO would block forever
    result = subprocess.run([sys.executable, "-c", script, str(root), str(tmp_path / "cache")],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["8", "4"]
    report = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert report == [f"skipped 1 file(s) that could not be decoded: "
                      f"{root / 'train' / 'cat' / 'pipe.png'} (not a regular file)"]
    assert (root / "train" / "cat" / "pipe.png").is_fifo()
    assert {p: p.read_bytes() for p in before} == before


def test_predict_refuses_a_fifo_named_as_an_image_in_one_line(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(data.DataError, match="is not a regular file"):
        data.load_image(tmp_path / "pipe.png", 16)
