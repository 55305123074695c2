"""The built-in shapes set: deterministic, atomic, reused, and not solvable by colour alone."""

import json

import numpy as np
from PIL import Image

from tinyalex import data
from tinyalex.data import synthetic


def test_render_is_a_pure_function_of_its_seed():
    a = synthetic.render(0, "train", 3, 7)
    assert a.shape == (72, 72, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, synthetic.render(0, "train", 3, 7))
    assert not np.array_equal(a, synthetic.render(1, "train", 3, 7))
    assert not np.array_equal(a, synthetic.render(0, "val", 3, 7))


def test_builtin_dataset_layout_atomic_and_reused(tmp_path):
    path = data.builtin_dataset(tmp_path, seed=0, n_train=3, n_val=2, size=40, workers=1)
    assert path.parent == tmp_path and path.name.startswith(f"shapes-v{synthetic.VERSION}-seed0")
    assert sorted(p.name for p in (path / "train").iterdir()) == sorted(synthetic.CLASSES)
    assert len(synthetic.CLASSES) >= 10
    for split, count in (("train", 3), ("val", 2)):
        for name in synthetic.CLASSES:
            files = sorted((path / split / name).glob("*.png"))
            assert len(files) == count
    img = Image.open(path / "val" / "star" / "00001.png")
    assert img.size == (40, 40) and img.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(img), synthetic.render(0, "val", 3, 1, size=40))
    assert json.loads((path / "dataset.json").read_text())["seed"] == 0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]         # no temp folder left
    stamp = (path / "dataset.json").stat().st_mtime_ns
    assert data.builtin_dataset(tmp_path, seed=0, n_train=3, n_val=2, size=40) == path
    assert (path / "dataset.json").stat().st_mtime_ns == stamp           # reused, not redrawn


def test_default_dataset_name_is_versioned(tmp_path):
    assert synthetic.dataset_name(0) == f"shapes-v{synthetic.VERSION}-seed0"
    assert synthetic.dataset_name(2) == f"shapes-v{synthetic.VERSION}-seed2"


def test_parallel_generation_matches_serial(tmp_path):
    one = data.builtin_dataset(tmp_path / "a", n_train=2, n_val=1, size=32, workers=1)
    two = data.builtin_dataset(tmp_path / "b", n_train=2, n_val=1, size=32, workers=2)
    for f in sorted(one.rglob("*.png")):
        other = two / f.relative_to(one)
        np.testing.assert_array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(other)))


def test_colour_and_brightness_alone_do_not_tell_classes_apart():
    # Nearest class centroid on each image's mean RGB (which includes brightness), trained on
    # 30 images per class and tested on 30 others: must stay near chance (10%).
    k, n = len(synthetic.CLASSES), 30
    feats = np.array([[synthetic.render(0, "train", c, i, size=48).reshape(-1, 3).mean(axis=0)
                       for i in range(2 * n)] for c in range(k)], dtype=np.float32)  # (k, 2n, 3)
    centroids = feats[:, :n].mean(axis=1)                                         # (k, 3)
    test = feats[:, n:].reshape(-1, 3)
    labels = np.repeat(np.arange(k), n)
    pred = np.argmin(((test[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == labels).mean() < 0.25


def test_open_splits_builtin_goes_through_the_folder_loader(tmp_path, monkeypatch):
    calls = []
    real = synthetic.builtin_dataset

    def tiny(root=None, seed=0, **kw):
        calls.append(root)
        return real(root, seed, n_train=2, n_val=1, size=40, workers=1)
    monkeypatch.setattr(data, "builtin_dataset", tiny)
    train, val = data.open_splits("builtin", 36, cache_dir=tmp_path, log=None)
    assert calls == [tmp_path]
    assert train.classes == sorted(synthetic.CLASSES) and len(train) == 20 and len(val) == 10
    assert train.images.shape == (20, 36, 36, 3)
