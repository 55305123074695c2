"""MNIST / Fashion-MNIST IDX files: the reader's checks, the three specs, the splits, the CLIs."""

import gzip
import os

import numpy as np
import pytest
from PIL import Image

from tinyalex import cli, data, evaluate, train, viz
from tinyalex.data import idx, resample

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


def idx_bytes(array: np.ndarray, magic: bytes | None = None) -> bytes:
    """An IDX file's bytes: magic 00 00 08 ndim, big-endian uint32 sizes, the uint8 data."""
    magic = magic if magic is not None else bytes([0, 0, 8, array.ndim])
    sizes = np.asarray(array.shape, dtype=">u4").tobytes()
    return magic + sizes + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write(path, content: bytes, gz: bool):
    if gz:
        path = path.with_name(path.name + ".gz")
        content = gzip.compress(content)
    path.write_bytes(content)
    return path


def write_set(folder, n_train=100, n_test=20, side=28, gz=True, seed=0):
    """A miniature data set in the distributed layout: noise images (all distinct), labels i % 10.

    Returns {"train": (images, labels), "test": (images, labels)}.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    made = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, side, side), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        stem_images, stem_labels = idx.FILES[split]
        write(folder / stem_images, idx_bytes(images), gz)
        write(folder / stem_labels, idx_bytes(labels), gz)
        made[split] = (images, labels)
    return made


@pytest.fixture
def kw(tmp_path):
    return dict(cache_dir=tmp_path / "cache", log=None)


def rows(images: np.ndarray) -> set[bytes]:
    """Each image's bytes, to compare sets of images."""
    return {image.tobytes() for image in np.asarray(images)}


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_plain_and_gzipped(tmp_path, gz):
    images = np.random.default_rng(1).integers(0, 256, (3, 5, 5), dtype=np.uint8)
    path = write(tmp_path / "x-idx3-ubyte", idx_bytes(images), gz)
    np.testing.assert_array_equal(idx.read_idx(path, 3), images)
    # the content decides, not the name: a gzip stream without .gz, plain data with .gz
    renamed = path.rename(tmp_path / ("plain-name" if gz else "named.gz"))
    np.testing.assert_array_equal(idx.read_idx(renamed, 3), images)


BROKEN = {
    # name: (what to write into train-images / train-labels, expected message)
    "wrong magic": (lambda im, lb: (b"<html>" + idx_bytes(im), idx_bytes(lb)),
                    r"train-images-idx3-ubyte\S* is not an IDX file \(it starts with 3c 68"),
    "labels as images": (lambda im, lb: (idx_bytes(lb), idx_bytes(lb)),
                         r"train-images\S* is an IDX file of type 0x08 with 1 dimension\(s\), "
                         r"not an IDX image file"),
    "float images": (lambda im, lb: (idx_bytes(im, bytes([0, 0, 0x0D, 3])), idx_bytes(lb)),
                     r"type 0x0d"),
    "truncated images": (lambda im, lb: (idx_bytes(im)[:-100], idx_bytes(lb)),
                         r"train-images\S* is truncated: its header promises 100 x 28 x 28 bytes "
                         r"\(78,400\) but it holds 78,300"),
    "truncated header": (lambda im, lb: (idx_bytes(im)[:10], idx_bytes(lb)),
                         r"is truncated: 10 bytes, shorter than its 16-byte header"),
    "trailing bytes": (lambda im, lb: (idx_bytes(im) + b"\0" * 7, idx_bytes(lb)),
                       r"has 7 bytes more than its header's 100 x 28 x 28"),
    "more labels than images": (lambda im, lb: (idx_bytes(im), idx_bytes(np.r_[lb, lb[:5]])),
                                r"holds 100 images but \S*train-labels\S* holds 105 labels"),
    "label 11": (lambda im, lb: (idx_bytes(im), idx_bytes(np.r_[lb[:7], 11, lb[8:]])),
                 r"train-labels\S* has label 11 at position 7 \(1 label\(s\) outside 0..9\)"),
    "not square": (lambda im, lb: (idx_bytes(im.reshape(100, 14, 56)), idx_bytes(lb)),
                   r"holds 100 image\(s\) of 14x56; tinyalex needs one or more square images"),
}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_are_one_line_errors_naming_the_file(tmp_path, kw, case, gz):
    made = write_set(tmp_path / "set", gz=gz)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (tmp_path / "set" / (name + (".gz" if gz else ""))).unlink()
    images_bytes, labels_bytes = BROKEN[case][0](*made["train"])
    write(tmp_path / "set" / "train-images-idx3-ubyte", images_bytes, gz)
    write(tmp_path / "set" / "train-labels-idx1-ubyte", labels_bytes, gz)
    with pytest.raises(data.DataError, match=BROKEN[case][1]) as err:
        data.open_splits(f"fashion-mnist:{tmp_path / 'set'}", 28, **kw)
    message = str(err.value)
    assert "\n" not in message and message.endswith("download the file again")
    assert not list((tmp_path / "cache").rglob("*.u8"))               # nothing half-written


def test_mismatched_dims_and_damaged_gzip(tmp_path, kw):
    write_set(tmp_path / "set")
    small = np.zeros((20, 24, 24), dtype=np.uint8)
    write(tmp_path / "set" / "t10k-images-idx3-ubyte", idx_bytes(small), gz=True)
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte.gz holds 24x24 images, "
                                             r"\S*train-images-idx3-ubyte.gz 28x28"):
        data.open_splits(f"fashion-mnist:{tmp_path / 'set'}", 28, **kw)
    gz_path = tmp_path / "set" / "t10k-images-idx3-ubyte.gz"
    gz_path.write_bytes(gzip.compress(idx_bytes(np.zeros((20, 28, 28), np.uint8)))[:-30])
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte.gz is a damaged gzip file"):
        data.open_splits(f"fashion-mnist:{tmp_path / 'set'}", 28, **kw)


@pytest.mark.parametrize("name, gz", [("fashion-mnist", True), ("mnist", False)])
def test_splits_classes_and_test_set_kept_apart(tmp_path, kw, name, gz):
    made = write_set(tmp_path / "set", gz=gz)
    spec = f"{name}:{tmp_path / 'set'}"
    train_set, val_set = data.open_splits(spec, 28, **kw)
    test_set = data.open_test_split(spec, 28, **kw)
    assert train_set.classes == (FASHION if name == "fashion-mnist" else list("0123456789"))
    assert test_set.classes == train_set.classes and test_set.name == "test"
    # 10% of each class of the 100 training images held out; the 20 t10k images are the test
    assert (len(train_set), len(val_set), len(test_set)) == (90, 10, 20)
    np.testing.assert_array_equal(np.bincount(val_set.labels), np.ones(10))
    # grayscale repeated over three channels; at 28 px the pixels are the files' own
    for split in (train_set, val_set, test_set):
        assert split.images.shape[1:] == (28, 28, 3)
        assert (split.images[..., 0] == split.images[..., 2]).all()
    train_gray, val_gray, test_gray = (np.asarray(s.images[..., 0])
                                       for s in (train_set, val_set, test_set))
    assert rows(train_gray) | rows(val_gray) == rows(made["train"][0])
    assert not rows(train_gray) & rows(val_gray)
    assert rows(test_gray) == rows(made["test"][0])
    assert not (rows(train_gray) | rows(val_gray)) & rows(test_gray)
    # labels travel with their images
    lookup = {image.tobytes(): label for image, label in zip(*made["train"], strict=True)}
    assert [lookup[image.tobytes()] for image in val_gray] == list(val_set.labels)
    np.testing.assert_array_equal(test_set.labels, made["test"][1])


def test_held_out_part_is_seeded_and_cached(tmp_path, kw):
    write_set(tmp_path / "set")
    spec = f"fashion-mnist:{tmp_path / 'set'}"
    _, val0 = data.open_splits(spec, 28, seed=0, **kw)
    _, again = data.open_splits(spec, 28, seed=0, **kw)
    _, val1 = data.open_splits(spec, 28, seed=1, **kw)
    assert isinstance(again.images, np.memmap)
    np.testing.assert_array_equal(val0.images, again.images)
    assert rows(val0.images) != rows(val1.images)
    with pytest.raises(data.DataError, match="val_fraction=1.0 must be in"):
        data.open_splits(spec, 28, val_fraction=1.0, **kw)


def test_resized_with_pillows_bilinear_filter(tmp_path, kw):
    made = write_set(tmp_path / "set", n_train=20, n_test=10)
    spec = f"fashion-mnist:{tmp_path / 'set'}"
    for size in (32, 20):                        # up and down (the down filter anti-aliases)
        test_set = data.open_test_split(spec, size, **kw)
        assert test_set.images.shape == (10, size, size, 3)
        pil = np.asarray(Image.fromarray(made["test"][0][0]).resize(
            (size, size), Image.Resampling.BILINEAR))
        assert np.abs(test_set.images[0, :, :, 1].astype(int) - pil).max() <= 1


def test_bilinear_matrix_rows_sum_to_one_and_downsampling_averages():
    up, down = resample.bilinear_matrix(28, 32), resample.bilinear_matrix(28, 14)
    np.testing.assert_allclose(up.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(down.sum(axis=1), 1, rtol=1e-6)
    # halving: every input pixel contributes (no pixel skipped, as plain interpolation would)
    assert (down.sum(axis=0) > 0).all() and (down > 0).sum(axis=1).min() >= 3


def test_not_found_says_where_it_looked_and_how_to_install(tmp_path, kw, monkeypatch):
    monkeypatch.setattr(idx, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(data.DataError) as err:
        data.open_splits("fashion-mnist", 28, **kw)
    message = str(err.value)
    assert f"Fashion-MNIST not found in {tmp_path / 'nowhere'}" in message
    assert "`sudo apt-get install dataset-fashion-mnist`" in message and "\n" not in message
    with pytest.raises(data.DataError, match=r"mnist folder \S*absent does not exist: pass "
                                             r"mnist:PATH"):
        data.open_splits(f"mnist:{tmp_path / 'absent'}", 28, **kw)
    write_set(tmp_path / "set")
    (tmp_path / "set" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match=r"lacks t10k-labels-idx1-ubyte\[.gz\]"):
        data.open_test_split(f"fashion-mnist:{tmp_path / 'set'}", 28, **kw)
    with pytest.raises(data.DataError, match="has no separate test set"):
        data.open_test_split("builtin", 28, **kw)


def test_canonical_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    here = os.path.realpath(tmp_path)
    assert data.canonical_spec(None) == data.canonical_spec("builtin") == "builtin"
    assert data.canonical_spec("fashion-mnist") == "fashion-mnist"
    assert data.canonical_spec("fashion-mnist:files") == f"fashion-mnist:{here}/files"
    assert data.canonical_spec("mnist:files") == f"mnist:{here}/files"
    assert data.canonical_spec("cifar10:c") == f"cifar10:{here}/c"
    assert data.canonical_spec("./fashion-mnist") == f"{here}/fashion-mnist"
    assert data.canonical_spec(tmp_path / "imgs") == f"{here}/imgs"
    with pytest.raises(data.DataError, match="pass mnist:PATH"):
        data.canonical_spec("mnist")
    assert [data.has_test_split(s) for s in ("fashion-mnist", "mnist:x", "builtin", None,
                                              "cifar10:x", "/some/folder")] == \
        [True, True, False, False, False, False]


def test_lighting_on_grayscale_is_a_brightness_change(tmp_path, kw):
    write_set(tmp_path / "set")
    train_set, _ = data.open_splits(f"fashion-mnist:{tmp_path / 'set'}", 28, **kw)
    stats = data.compute_stats(train_set)
    # the pixel covariance is var * ones(3, 3): one eigenvector (1, 1, 1)/sqrt(3), others 0
    assert stats["pca_eigvals"][0] > 1000 and stats["pca_eigvals"][1:].max() < 1e-6
    np.testing.assert_allclose(stats["pca_eigvecs"][:, 0], 3 ** -0.5, rtol=1e-6)
    offsets = data.augment.lighting_offsets(np.random.default_rng(0), 50, stats["pca_eigvals"],
                                            stats["pca_eigvecs"])
    np.testing.assert_allclose(offsets[:, 1:], offsets[:, :1].repeat(2, axis=1), atol=1e-4)
    assert offsets.std() > 0.5


def test_train_then_evaluate_reports_the_test_split(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")
    write_set(tmp_path / "set", n_train=60, n_test=10)
    spec, out = f"fashion-mnist:{tmp_path / 'set'}", tmp_path / "run"
    assert train.main(["--data", spec, "--out", str(out), "--epochs", "1", "--batch-size", "16",
                       "--no-progress", "--num-workers", "0"]) == 0
    started = capsys.readouterr().out
    assert "50 train / 10 val images, 10 classes" in started   # no t10k
    assert "tinyalex: fashion preset" in started               # the preset sized for 28 px
    assert evaluate.main(["--checkpoint", str(out / "best.npz")]) == 0
    lines = capsys.readouterr().out.splitlines()  # line 1 names the checkpoint used
    assert lines[0].startswith("checkpoint ") and "best.npz" in lines[0]
    assert lines[1].startswith("test (10 images, centre crop): top-1 ")
    assert evaluate.main(["--checkpoint", str(out), "--split", "val"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("val (10 images, centre crop): "
                                                              "top-1 ")
    # the figures default to the test split as well: the 10 t10k images, not the 10 val ones
    assert viz.main(["confusion", "--checkpoint", str(out)]) == 0
    assert viz.main(["mistakes", "--checkpoint", str(out), "--count", "4"]) == 0
    text = capsys.readouterr().out
    for name in ("confusion.png", "mistakes.png"):
        assert f"wrote {out / name}" in text
        assert np.asarray(Image.open(out / name)).ndim == 3


def test_cli_missing_set_is_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(idx, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    assert cli.run(train.main, ["--data", "fashion-mnist", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Fashion-MNIST not found") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not idx.DEBIAN_FASHION_MNIST.is_dir(),
                    reason="the Debian Fashion-MNIST is not installed "
                           "(sudo apt-get install dataset-fashion-mnist)")
def test_the_installed_fashion_mnist(tmp_path, kw):
    files = idx.find_files("fashion-mnist", idx.DEBIAN_FASHION_MNIST)
    labels = idx.read_idx(files["test"][1], 1)
    assert labels.shape == (10000,) and labels[:3].tolist() == [9, 2, 1]   # Ankle boot, ...
    train_set, val_set = data.open_splits("fashion-mnist", 28, **kw)
    test_set = data.open_test_split("fashion-mnist", 28, **kw)
    assert (len(train_set), len(val_set), len(test_set)) == (54000, 6000, 10000)
    assert np.bincount(val_set.labels).tolist() == [600] * 10
    assert train_set.classes == FASHION
