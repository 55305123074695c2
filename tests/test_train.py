"""The training program on a tiny generated image folder: runs, checkpoints, resume, Ctrl-C,
run-folder safety, the schedule and the start-up line."""

import csv
import json
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import snapshot

from tinyalex import checkpoint, cli, data, train
from tinyalex.backend import cpu_count
from tinyalex.model import AlexNet

CLASSES = ("blue", "red", "green")


@pytest.fixture
def folder(tiny_folder):
    return tiny_folder


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")  # (the cache is temporary: conftest.py)


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
    assert "top-1" in result.stdout
    assert "top-5" not in result.stdout          # three classes: top-5 would always be 100%
    assert "warning" not in result.stderr         # a healthy run is never called dead
    for name in ("last.npz", "best.npz", "metrics.csv", "curves.png"):
        assert (out / name).is_file(), name
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 3  # header + 2 epochs
    _, meta = params_of(out / "last.npz")
    assert meta["classes"] == sorted(CLASSES) and meta["epoch"] == 2

    result = run_cli("evaluate", "--checkpoint", out / "last.npz")
    assert result.returncode == 0, result.stderr
    assert "top-1" in result.stdout and "9 images" in result.stdout
    assert "top-5" not in result.stdout
    result = run_cli("evaluate", "--checkpoint", out, "--ten-crop")
    assert result.returncode == 0 and "ten-crop" in result.stdout, result.stderr

    image = folder / "val" / "red" / "0.png"
    result = run_cli("predict", image, "--checkpoint", out / "best.npz")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"checkpoint {out / 'best.npz'} (epoch ")
    assert lines[1] == str(image) and len(lines) == 5  # checkpoint, path, 3 classes
    shown = [line.split()[1] for line in lines[2:]]
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
    # the same schedule for both (by default the milestones follow --epochs)
    assert train.main(base_args(folder, tmp_path / "full", epochs=2) + ["--milestones", "1"]) == 0
    assert train.main(base_args(folder, tmp_path / "part", epochs=1) + ["--milestones", "1"]) == 0
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


def test_ctrl_c_before_the_first_step_is_one_line_and_writes_nothing(folder, tmp_path,
                                                                     monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the training set's statistics are computed

    monkeypatch.setattr(data, "compute_stats", interrupted)
    out = tmp_path / "run"
    assert cli.run(train.main, base_args(folder, out)) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["interrupted before anything was saved"]
    assert not out.exists()


def test_ctrl_c_twice_stops_at_once_and_keeps_the_last_saved_state(folder, tmp_path,
                                                                   monkeypatch, capsys):
    out = tmp_path / "run"
    assert train.main(base_args(folder, out, epochs=1)) == 0
    before = snapshot(out)
    real_step = train.Run.train_step

    def step_with_two_interrupts(self, x, y):
        signal.raise_signal(signal.SIGINT)   # "stop after this step"
        signal.raise_signal(signal.SIGINT)   # "stop now": raises inside the step
        return real_step(self, x, y)

    monkeypatch.setattr(train.Run, "train_step", step_with_two_interrupts)
    capsys.readouterr()
    args = ["--resume", str(out), "--epochs", "2", "--no-progress", "--num-workers", "2"]
    assert cli.run(train.main, args) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("interrupted at once") and "keeps the end of epoch 1" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert snapshot(out) == before                 # the epoch-1 checkpoint is untouched


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


def test_metrics_history_is_json_serialisable_in_checkpoints(tiny_run):
    _, meta = params_of(tiny_run / "last.npz")
    json.dumps(meta)
    assert set(meta["history"][0]) >= {"epoch", "train_loss", "val_top1", "val_top5", "lr"}


# --- a run folder is never overwritten ------------------------------------------------------

def test_out_onto_a_folder_holding_a_run_is_refused_and_writes_nothing(tiny_run, folder,
                                                                       tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    before = snapshot(out)
    result = run_cli("train", *base_args(folder, out, epochs=1))
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {out} already holds a run")
    assert f"--resume {out}" in lines[0] and "new --out" in lines[0]
    assert result.stdout == "" and snapshot(out) == before
    # resuming into another run's folder is refused the same way
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    result = run_cli("train", "--resume", out, "--out", other, "--epochs", "3")
    assert result.returncode == 2 and "already holds a run" in result.stderr
    assert snapshot(other) == snapshot(tiny_run)


def test_an_empty_or_unrelated_folder_is_used(folder, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert train.main(base_args(folder, out, epochs=1)) == 0
    assert (out / "notes.txt").read_text() == "keep me" and (out / "last.npz").is_file()


# --- resume: finished runs, elapsed time ----------------------------------------------------

def test_resume_of_a_finished_run_says_so_and_how_to_train_longer(tiny_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    before = snapshot(out)
    capsys.readouterr()
    assert train.main(["--resume", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "resuming" not in text and "done" not in text
    assert f"{out} is finished: 2 epochs trained" in text
    assert f"--resume {out} --epochs 3" in text
    assert snapshot(out) == before


def test_elapsed_time_continues_across_a_resume(folder, tmp_path):
    out = tmp_path / "run"
    assert train.main(base_args(folder, out, epochs=1)) == 0
    arrays, meta = checkpoint.load(out / "last.npz")
    meta["elapsed_s"] = meta["history"][0]["elapsed_s"] = 1000.0  # as if it had run long
    checkpoint.save(out / "last.npz", arrays, meta)
    assert train.main(["--resume", str(out), "--epochs", "2", "--no-progress",
                       "--num-workers", "0"]) == 0
    _, meta = params_of(out / "last.npz")
    first, second = (row["elapsed_s"] for row in meta["history"])
    assert first == 1000.0 and 1000.0 < second < 1300.0
    assert meta["elapsed_s"] >= second


# --- schedule, start-up line, numbers as people write them ----------------------------------

def test_start_up_line_metrics_and_messages_show_the_settings_in_force(folder, tmp_path,
                                                                       capsys):
    out = tmp_path / "run"
    assert train.main(base_args(folder, out, epochs=3) + ["--milestones", "1", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == ("lr 0.01, batch 8, schedule step x0.1 at epochs 1, 2, momentum 0.9, "
                        "weight decay 0.0005, init he; implementation fast (NumPy + C "
                        f"kernels, {cli.plural(cpu_count(), 'thread')})")
    assert [line.rsplit("lr ", 1)[1] for line in lines if line.startswith("epoch ")] == \
        ["0.01", "0.001", "0.0001"]
    with open(out / "metrics.csv", newline="") as f:
        rates = [row["lr"] for row in csv.DictReader(f)]
    assert rates == ["0.01", "0.001", "0.0001"]       # not 0.00010000000000000002
    assert lines[-1].startswith("done: ") and "after 3 epochs" in lines[-1]


def test_one_epoch_is_singular_and_settings_line_names_the_options(folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(base_args(folder, out, epochs=1) + ["--no-flip", "--init", "paper"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the milestones follow --epochs: none is left before the end of a 1-epoch run
    assert "schedule constant (no milestone)," in lines[1]
    assert "init paper, no flip;" in lines[1]
    assert "after 1 epoch (" in lines[-1]
    _, meta = params_of(out / "last.npz")
    assert meta["config"]["init"] == "paper" and meta["config"]["input_scale"] == 1.0


def test_a_log_gets_the_epoch_lines_without_progress_frames(folder, tmp_path):
    """stderr redirected to a file (a log, nohup, CI): no progress bar, even when not asked
    to leave it out; the epoch lines are all there."""
    args = base_args(folder, tmp_path / "run", epochs=2)
    args.remove("--no-progress")
    with open(tmp_path / "log", "w") as log:
        result = subprocess.run([sys.executable, "-m", "tinyalex.train", *args], stdout=log,
                                stderr=subprocess.STDOUT, timeout=300)
    assert result.returncode == 0
    text = (tmp_path / "log").read_text()
    assert "\r" not in text and "batch/s" not in text and "it/s" not in text
    assert sum(line.startswith("epoch ") for line in text.splitlines()) == 2


def test_top5_is_kept_out_of_metrics_with_five_classes_or_fewer(tiny_run):
    with open(tiny_run / "metrics.csv", newline="") as f:
        assert {row["val_top5"] for row in csv.DictReader(f)} == {""}


def test_resume_on_other_classes_says_what_differs(tiny_run, tmp_path):
    from conftest import make_tiny_folder

    other = make_tiny_folder(tmp_path / "other", classes=("blue", "red", "yellow"))
    result = run_cli("train", "--resume", tiny_run, "--data", other, "--epochs", "3")
    assert result.returncode == 2
    assert "only in the data: yellow; only in the checkpoint: green" in result.stderr
