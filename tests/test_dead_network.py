"""The dead-network check: a network that gives every image the same answer is reported in
one line with a recipe, the recipe works, and a healthy run is never reported."""

import numpy as np
import pytest

from tinyalex import checkpoint, data, dead_network, train
from tinyalex.model import PRESETS, AlexNet, AlexNetConfig, ConvSpec


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")


def tiny_net(init="he"):
    config = AlexNetConfig(
        name="tiny", image_size=20, input_size=17, input_scale=1 / 64,
        convs=(ConvSpec(8, 5, stride=2, lrn=True, pool=True),
               ConvSpec(4, 3, pad=1, groups=2, lrn=True),
               ConvSpec(6, 3, pad=1),
               ConvSpec(4, 3, pad=1, groups=2),
               ConvSpec(4, 3, pad=1, groups=2, pool=True)),
        hidden=(16, 16), num_classes=3, init=init, bias_one=())
    return AlexNet(config, seed=0)


def images_and_stats(n=12):
    images = np.random.default_rng(1).integers(0, 256, (n, 20, 20, 3), dtype=np.uint8)
    return images, data.compute_stats(images)


def test_a_network_that_answers_differently_is_not_reported():
    net = tiny_net()
    net.params["fc8.w"] *= 100                 # (the tiny fc8 at init answers almost alike)
    images, stats = images_and_stats()
    assert dead_network.dead_network(net, images, stats, seed=0) is None


def test_a_silent_relu_layer_is_found_and_named():
    net = tiny_net()
    net.params["fc7.b"][:] = -100.0            # every fc7 ReLU off, for every image
    images, stats = images_and_stats()
    dead = dead_network.dead_network(net, images, stats, seed=0)
    assert dead is not None and dead["layer"] == "relu7" and dead["active"] == 0.0
    assert dead["images"] == 12 and dead["spread"] == 0.0
    history = [{"epoch": 1, "train_loss": 9.5, "val_loss": 1.0986}]
    text = dead_network.dead_warning(dead, net, 1, history, 0.01)
    assert "\n" not in text and text.startswith("warning: the network is dead after epoch 1:")
    assert ("100.0% of fc7's ReLU outputs are 0, so almost no gradient reaches the layers "
            "below fc7") in text
    assert "epoch 1's training loss was 9.5" in text          # more than 1.5 ln 3: too large
    assert "Training on will not revive it: start a new run with --lr 0.001" in text


def test_the_same_answer_without_a_silent_layer_is_reported_too():
    net = tiny_net()
    net.params["fc8.w"] *= 100                 # answers differently at first ...
    images, stats = images_and_stats()
    assert dead_network.dead_network(net, images, stats, seed=0) is None
    net.params["fc8.w"][:] = 0.0               # ... then the logits are the biases alone
    dead = dead_network.dead_network(net, images, stats, seed=0)
    assert dead is not None and dead["active"] > dead_network.SILENT
    dead["spread_at_init"] = 0.5               # (as the scaled fc8 did, unlike the tiny init)
    history = [{"epoch": 1, "train_loss": 1.1, "val_loss": 1.0986}]
    text = dead_network.dead_warning(dead, net, 2, history, 0.01)
    assert text.startswith("warning: the network has stopped learning after epoch 2: it gives "
                           "all 12 validation images checked the same answer")
    assert "Likely cause" not in text and "It may not recover" in text
    assert text.endswith("start a new run with --lr 0.001 (docs/training.md: A dead network)")


def test_a_network_that_never_used_its_input_is_told_about_its_initialisation():
    net = tiny_net(init="paper")               # N(0, 0.01^2) through a tiny net: no signal
    images, stats = images_and_stats()
    dead = dead_network.dead_network(net, images, stats, seed=0)
    assert dead is not None and dead["spread_at_init"] < dead_network.SAME_ANSWER
    history = [{"epoch": 1, "train_loss": 1.1, "val_loss": 1.0986}]
    text = dead_network.dead_warning(dead, net, 1, history, 0.01)
    assert text.startswith("warning: the network has stopped learning after epoch 1")
    assert "its initialisation (paper) passes too little of the image" in text
    assert text.endswith("start a new run with --init he (docs/training.md: A dead network)")


def paper_like():
    """The paper preset's layers, widths and initialisation on 67-pixel crops with small
    fully connected layers: it stops using its input in the first epoch at the paper's
    lr 0.01 on the tiny folder, as the paper preset does on a small folder of photographs."""
    return PRESETS["paper"].replace(image_size=72, input_size=67, hidden=(256, 256))


def run(folder, out, *options):
    return train.main(["--config", "paper", "--data", str(folder), "--out", str(out),
                       "--batch-size", "8", "--no-progress", "--num-workers", "0", *options])


def test_the_warning_is_one_line_keeps_the_exit_status_and_the_recipe_works(
        tiny_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(PRESETS, "paper", paper_like())
    assert run(tiny_folder, tmp_path / "dead", "--epochs", "1") == 0
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("warning")]
    assert len(warnings) == 1
    assert "after epoch 1: it gives all 9 validation images checked the same answer" in \
        warnings[0]
    assert "start a new run with --init he" in warnings[0]

    # 5 epochs: with 3 (12 steps) the loss of the last epoch was below ln 3 for only some
    # seeds; with 5 every seed tried (0, 1, 2) ends below it and at 100% validation top-1
    assert run(tiny_folder, tmp_path / "alive", "--epochs", "5", "--init", "he") == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    history = checkpoint.load(tmp_path / "alive" / "last.npz")[1]["history"]
    assert history[-1]["train_loss"] < np.log(3) and history[-1]["val_top1"] > 2 / 3


def test_a_too_large_rate_with_he_initialisation_gets_a_smaller_rate(tiny_folder, tmp_path,
                                                                     capsys):
    args = ["--data", str(tiny_folder), "--out", str(tmp_path / "run"), "--epochs", "1",
            "--batch-size", "8", "--no-progress", "--num-workers", "0", "--lr", "0.1"]
    assert train.main(args) == 0
    err = capsys.readouterr().err
    assert "Likely cause: steps too large for this initialisation at lr 0.1" in err
    assert "start a new run with --lr 0.01" in err   # the mini default, healthy in test_train
