"""The training, evaluation and prediction programs on a tiny generated image folder."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tinyalex import checkpoint, train
from tinyalex.model import AlexNet

CLASSES = ("blue", "red", "green")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ and val/ with three classes of 72x72 images: a bright square of the class colour."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, count in (("train", 10), ("val", 3)):
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 60, (72, 72, 3), dtype=np.uint8)
                top, left = rng.integers(5, 35, 2)
                image[top : top + 30, left : left + 30, c] = 230
                Image.fromarray(image).save(root / split / name / f"{i}.png")
    return root


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")


def base_args(folder, out, epochs=2):
    return ["--data", str(folder), "--out", str(out), "--epochs", str(epochs), "--batch-size",
            "8", "--no-progress", "--num-workers", "0"]


def run_cli(module, *args):
    return subprocess.run([sys.executable, "-m", f"tinyalex.{module}", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def params_of(path):
    arrays, meta = checkpoint.load(path)
    return arrays["param"], meta


def test_train_evaluate_predict_cli(folder, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", *base_args(folder, out, epochs=2))
    assert result.returncode == 0, result.stderr
    assert "top-1" in result.stdout and "top-5" in result.stdout
    for name in ("last.npz", "best.npz", "metrics.csv", "curves.png"):
        assert (out / name).is_file(), name
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 3  # header + 2 epochs
    _, meta = params_of(out / "last.npz")
    assert meta["classes"] == sorted(CLASSES) and meta["epoch"] == 2

    result = run_cli("evaluate", "--checkpoint", out / "last.npz")
    assert result.returncode == 0, result.stderr
    assert "top-1" in result.stdout and "top-5" in result.stdout and "9 images" in result.stdout
    result = run_cli("evaluate", "--checkpoint", out, "--ten-crop")
    assert result.returncode == 0 and "ten-crop" in result.stdout, result.stderr

    image = folder / "val" / "red" / "0.png"
    result = run_cli("predict", image, "--checkpoint", out / "best.npz")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(image) and len(lines) == 4  # path + 3 classes (fewer than five)
    shown = [line.split()[1] for line in lines[1:]]
    assert sorted(shown) == sorted(CLASSES)


def test_checkpoint_round_trip(tmp_path):
    net = AlexNet("mini", num_classes=3, seed=4)
    meta = {"epoch": 3, "classes": ["a", "b", "c"], "nested": {"x": [1, 2]}}
    path = checkpoint.save(tmp_path / "c.npz", {"param": net.params}, meta)
    arrays, loaded = checkpoint.load(path)
    assert {k: loaded[k] for k in meta} == meta
    for name, value in net.params.items():
        np.testing.assert_array_equal(arrays["param"][name], value)
        assert arrays["param"][name].dtype == np.float32
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed away


def test_resume_after_an_epoch_is_bit_exact(folder, tmp_path):
    assert train.main(base_args(folder, tmp_path / "full", epochs=2)) == 0
    assert train.main(base_args(folder, tmp_path / "part", epochs=1)) == 0
    assert train.main(["--resume", str(tmp_path / "part"), "--epochs", "2", "--no-progress",
                       "--num-workers", "0"]) == 0
    full, _ = params_of(tmp_path / "full" / "last.npz")
    resumed, meta = params_of(tmp_path / "part" / "last.npz")
    assert meta["epoch"] == 2
    for name in full:
        np.testing.assert_array_equal(full[name], resumed[name], err_msg=name)


def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(folder, tmp_path, monkeypatch):
    """A SIGINT in the middle of epoch 1 stops after that step, saves, and resumes exactly."""
    assert train.main(base_args(folder, tmp_path / "full", epochs=2) + ["--num-workers", "2"]) == 0

    real_step = train.Run.train_step
    calls = []

    def step_then_interrupt(self, x, y):
        result = real_step(self, x, y)
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C here
        return result

    monkeypatch.setattr(train.Run, "train_step", step_then_interrupt)
    code = train.main(base_args(folder, tmp_path / "part", epochs=2) + ["--num-workers", "2"])
    assert code == 130
    _, meta = params_of(tmp_path / "part" / "last.npz")
    assert (meta["epoch"], meta["batch"]) == (0, 2)  # saved inside epoch 1, after batch 2
    monkeypatch.setattr(train.Run, "train_step", real_step)
    assert train.main(["--resume", str(tmp_path / "part"), "--no-progress"]) == 0
    full, _ = params_of(tmp_path / "full" / "last.npz")
    resumed, _ = params_of(tmp_path / "part" / "last.npz")
    for name in full:
        np.testing.assert_array_equal(full[name], resumed[name], err_msg=name)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(folder, tmp_path, monkeypatch,
                                                                   capsys):
    out = tmp_path / "run"
    real_loss = AlexNet.loss
    calls = []

    def loss_that_explodes(self, x, labels, train=True):
        loss, logits, dlogits = real_loss(self, x, labels, train)
        calls.append(1)
        if len(calls) == 6:  # epoch 2, batch 2 (4 batches of 8 in an epoch of 30 images)
            loss = loss * np.float32("nan")
        return loss, logits, dlogits

    monkeypatch.setattr(AlexNet, "loss", loss_that_explodes)
    assert train.main(base_args(folder, out, epochs=3)) == 1
    err = capsys.readouterr().err
    assert "loss became nan at epoch 2, batch 2" in err
    _, meta = params_of(out / "last.npz")
    assert meta["epoch"] == 1  # the checkpoint of the last good epoch is still there


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", ["missing data", "empty data", "not a checkpoint",
                                  "other config", "resume with new lr", "bad image",
                                  "bad epochs"])
def test_bad_input_is_one_line_and_exit_2(case, folder, tmp_path):
    if case == "missing data":
        result = run_cli("train", "--data", tmp_path / "nowhere", "--no-progress")
    elif case == "empty data":
        (tmp_path / "empty" / "train").mkdir(parents=True)
        result = run_cli("train", "--data", tmp_path / "empty", "--no-progress")
    elif case == "not a checkpoint":
        fake = write(tmp_path / "fake.npz", "hello")
        result = run_cli("evaluate", "--checkpoint", fake)
    elif case == "other config":
        net = AlexNet("mini", num_classes=3)
        path = checkpoint.save(tmp_path / "c.npz", {"param": net.params},
                               {"config": net.config.to_dict()})
        result = run_cli("train", "--resume", path, "--config", "paper")
    elif case == "resume with new lr":
        result = run_cli("train", "--resume", tmp_path / "anything", "--lr", "0.1")
    elif case == "bad image":
        assert train.main(base_args(folder, tmp_path / "run", epochs=1)) == 0
        text = write(tmp_path / "notes.jpg", "<html>not an image</html>")
        result = run_cli("predict", text, "--checkpoint", tmp_path / "run")
    else:
        result = run_cli("train", "--epochs", "0")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr


def test_metrics_history_is_json_serialisable_in_checkpoints(folder, tmp_path):
    assert train.main(base_args(folder, tmp_path / "run", epochs=1)) == 0
    _, meta = params_of(tmp_path / "run" / "last.npz")
    json.dumps(meta)
    assert set(meta["history"][0]) >= {"epoch", "train_loss", "val_top1", "val_top5", "lr"}
