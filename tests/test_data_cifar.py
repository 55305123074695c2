"""CIFAR-10 python batches: parsing (CHW rows -> HWC images), resizing, the safe unpickler."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from tinyalex import data
from tinyalex.data import cifar

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


def write_cifar(root, per_batch=6, seed=0):
    """A miniature cifar-10-batches-py: same format, a few images per batch."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    batches = {}
    for name in (*cifar.TRAIN_BATCHES, cifar.VAL_BATCH):
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)        # HWC
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        rows = images.transpose(0, 3, 1, 2).reshape(per_batch, 3072)               # R, G, B planes
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": rows,
                         b"filenames": [b"x.png"] * per_batch}, f)
        batches[name] = (images, labels)
    with open(root / cifar.META, "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}, f)
    return batches


def test_cifar_batches_parse_into_hwc_images(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    train, val = data.open_splits(f"cifar10:{tmp_path / 'cifar-10-batches-py'}", 32,
                                  cache_dir=tmp_path / "cache", log=None)
    assert train.classes == CLASSES and len(train) == 30 and len(val) == 6
    expected = np.concatenate([batches[n][0] for n in cifar.TRAIN_BATCHES])
    np.testing.assert_array_equal(train.images, expected)                  # at 32: exact
    np.testing.assert_array_equal(train.labels, sum((batches[n][1] for n in cifar.TRAIN_BATCHES),
                                                    []))
    np.testing.assert_array_equal(val.images, batches[cifar.VAL_BATCH][0])


def test_cifar_resized_up_to_the_mini_image_size(tmp_path):
    batches = write_cifar(tmp_path / "c")
    train, val = data.open_splits(f"cifar10:{tmp_path / 'c'}", 72, cache_dir=tmp_path / "cache",
                                  log=None)
    assert train.images.shape == (30, 72, 72, 3) and isinstance(train.images, np.memmap)
    # matches Pillow's bilinear upsampling (same pixel-centre convention) to rounding
    first = batches[cifar.TRAIN_BATCHES[0]][0][0]
    pil = np.asarray(Image.fromarray(first).resize((72, 72), Image.Resampling.BILINEAR))
    assert np.abs(train.images[0].astype(int) - pil).max() <= 1


def test_bilinear_matrix_rows_and_constant_images():
    r = cifar.bilinear_matrix(32, 72)
    assert r.shape == (72, 32) and r.dtype == np.float32
    np.testing.assert_allclose(r.sum(axis=1), 1, rtol=1e-6)
    flat = np.full((2, 32, 32, 3), 77, dtype=np.uint8)
    np.testing.assert_array_equal(cifar.resize_batch(flat, 72), 77)


def test_missing_or_damaged_cifar_is_a_data_error(tmp_path):
    with pytest.raises(data.DataError, match="missing data_batch_1"):
        data.open_splits(f"cifar10:{tmp_path}", 32, cache_dir=tmp_path / "cache", log=None)
    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(data.DataError, match="data_batch_3 is not a CIFAR-10 python batch"):
        data.open_splits(f"cifar10:{tmp_path / 'c'}", 32, cache_dir=tmp_path / "cache", log=None)
    assert not any((tmp_path / "cache" / "decoded").iterdir())        # nothing half-written


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_code(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": [0]}))
    with pytest.raises(data.DataError, match="refusing to load"):
        cifar.read_batch(path)


@pytest.mark.parametrize("label", [10**30, -(10**30), 10, -1], ids=["10**30", "-10**30", "10",
                                                                   "-1"])
def test_an_out_of_range_label_is_one_line_before_training(label, tmp_path, monkeypatch,
                                                           capsys):
    from tinyalex import cli, train

    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")
    write_cifar(tmp_path / "c")
    with open(tmp_path / "c" / "data_batch_2", "rb") as f:
        batch = pickle.load(f)
    batch[b"labels"][3] = label
    with open(tmp_path / "c" / "data_batch_2", "wb") as f:
        pickle.dump(batch, f)
    before = {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()}
    status = cli.run(train.main, ["--data", f"cifar10:{tmp_path / 'c'}", "--out",
                                  str(tmp_path / "run"), "--no-progress", "--epochs", "1"])
    lines = capsys.readouterr().err.strip().splitlines()   # a progress line, then the error
    assert status == 2 and [line for line in lines if "error" in line.lower()] == lines[-1:]
    assert lines[-1].startswith("error: ") and "data_batch_2 has labels" in lines[-1]
    assert {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()} == before
    assert not (tmp_path / "run").exists()
