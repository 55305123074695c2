"""tinyalex.run: the training run as a library class -- built from Settings, trained an epoch
at a time, the same network as the command line's, the implementation chosen once."""

import numpy as np
import pytest

import tinyalex.cuda.layers
import tinyalex.fast
import tinyalex.layers
from tinyalex import checkpoint, train
from tinyalex.run import Run, Settings, default_milestones


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")
    monkeypatch.delenv("TINYALEX_KERNELS", raising=False)


def test_step_milestones_follow_the_number_of_epochs():
    assert default_milestones(10) == [7, 9]       # the mini preset's measured schedule
    assert default_milestones(30) == [21, 27]
    assert default_milestones(5) == [4]           # 4.5 -> 5 would never be reached
    assert default_milestones(2) == [1]
    assert default_milestones(1) == []


def test_a_run_from_settings_trains_the_command_lines_network(tiny_folder, tmp_path):
    """Two epochs through the library's loop give the weights, history and velocity of
    `python -m tinyalex.train` with the same options, bit for bit."""
    run = Run(Settings(data=str(tiny_folder), epochs=2, batch_size=8, num_workers=0))
    rows = []
    while run.epoch < run.hp["epochs"]:
        images, seconds = run.train_epoch()
        assert images == len(run.train_set)
        rows.append(run.end_epoch(images, seconds)[0])
    assert [row["epoch"] for row in rows] == [1, 2] and run.batch == 0
    run.save(tmp_path / "library.npz")

    out = tmp_path / "cli"
    assert train.main(["--data", str(tiny_folder), "--out", str(out), "--epochs", "2",
                       "--batch-size", "8", "--no-progress", "--num-workers", "0"]) == 0
    mine, meta = checkpoint.load(tmp_path / "library.npz")
    theirs, meta_cli = checkpoint.load(out / "last.npz")
    for group in ("param", "velocity"):
        for name in theirs[group]:
            np.testing.assert_array_equal(mine[group][name], theirs[group][name])
    strip = ("elapsed_s", "images_per_s")
    assert [{k: v for k, v in r.items() if k not in strip} for r in meta["history"]] == \
        [{k: v for k, v in r.items() if k not in strip} for r in meta_cli["history"]]


def test_a_stop_request_ends_the_epoch_after_the_step(tiny_folder):
    class Stop:
        requested = True

    run = Run(Settings(data=str(tiny_folder), epochs=1, batch_size=8, num_workers=0))
    images, _ = run.train_epoch(stop=Stop())
    assert (run.epoch, run.batch) == (0, 1) and images == 8


@pytest.mark.parametrize("asked,kernels,expected", [
    (None, None, "fast"), ("textbook", None, "textbook"), ("cuda", None, "cuda"),
    (None, "emulate", "cuda"),
])
def test_the_implementation_is_chosen_once_and_handed_to_network_and_optimiser(
        tiny_folder, monkeypatch, asked, kernels, expected):
    if kernels:
        monkeypatch.setenv("TINYALEX_KERNELS", kernels)
    run = Run(Settings(data=str(tiny_folder), impl=asked, num_workers=0))
    module = {"textbook": tinyalex.layers, "fast": tinyalex.fast,
              "cuda": tinyalex.cuda.layers}[expected]
    assert run.impl == run.net.impl == run.opt.impl == expected
    assert run.net.layers is module and run.opt._update is module.sgd_update
