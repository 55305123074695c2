"""The figures: image grids, conv1 kernels (Figure 3), fc7 neighbours (Figure 4), feature maps."""

import numpy as np
import pytest
from PIL import Image

from tinyalex import data, viz
from tinyalex.model import AlexNet, AlexNetConfig, ConvSpec


def tiny_net(classes=3):
    config = AlexNetConfig(
        name="tiny", image_size=20, input_size=17, input_scale=1 / 64,
        convs=(ConvSpec(8, 5, stride=2, lrn=True, pool=True),      # 8 x 7 x 7 -> 3 x 3
               ConvSpec(4, 3, pad=1, groups=2, lrn=True),
               ConvSpec(6, 3, pad=1),
               ConvSpec(4, 3, pad=1, groups=2),
               ConvSpec(4, 3, pad=1, groups=2, pool=True)),         # -> 4 x 1 x 1
        hidden=(6, 5), num_classes=classes, init="he", bias_one=())
    return AlexNet(config, seed=0)


def test_tile_places_every_image_in_its_cell():
    images = np.arange(5 * 2 * 3 * 3, dtype=np.uint8).reshape(5, 2, 3, 3)
    grid = viz.tile(images, 2, pad=1, pad_value=255)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 3)
    for i in range(5):
        top, left = 1 + (i // 2) * 3, 1 + (i % 2) * 4
        np.testing.assert_array_equal(grid[top:top + 2, left:left + 3], images[i])
    assert (grid[7:9, 5:8] == 255).all() and (grid[0] == 255).all()      # empty cell, padding


def test_filters_figure_shows_each_kernel_scaled_and_halves_apart():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.01, (8, 3, 5, 5)).astype(np.float32)
    w[3] = 0
    w[3, 0, 2, 2] = -0.02                                 # one negative red weight, rest zero
    kernels = viz.kernel_images(w)
    assert kernels.shape == (8, 5, 5, 3) and kernels.dtype == np.uint8
    # each kernel on its own scale: its largest |weight| reaches black or white
    flat = kernels.reshape(8, -1).astype(int)
    assert ((flat.min(axis=1) == 0) | (flat.max(axis=1) == 255)).all()
    # zero is mid-grey, the sign is kept
    assert kernels[3, 2, 2, 0] == 0 and (kernels[3, 0, 0] == 128).all()
    # kernel 0's channel order: red plane of the weights -> red channel of the picture
    np.testing.assert_array_equal(np.argmax(kernels[0], axis=-1) == 0,
                                  np.argmax(w[0], axis=0) == 0)
    figure = viz.filters_figure(w, halves=2, cols=4, scale=2)
    # two halves of one row of 4 kernels (10 px + 2 pad each), a 4 px gap between them
    assert figure.shape == (2 * 14 + 4, 4 * 12 + 2, 3)
    np.testing.assert_array_equal(figure[2:12, 2:12], viz.enlarge(kernels[0], 2))
    np.testing.assert_array_equal(figure[18 + 2:18 + 12, 2:12], viz.enlarge(kernels[4], 2))
    # readable by default: at least 64 pixels per kernel side
    assert viz.filters_figure(w).shape[1] >= 8 // 2 * 64


def test_init_distance_and_what_the_figure_says():
    rng = np.random.default_rng(0)
    w0 = rng.normal(0, 0.01, (24, 3, 7, 7))
    same = viz.init_distance(w0, w0)
    assert abs(same["correlation"] - 1) < 1e-9 and same["relative_change"] == 0
    far = viz.init_distance(rng.normal(0, 0.01, w0.shape), w0)
    assert abs(far["correlation"]) < 0.1 and far["relative_change"] > 1
    assert "still mostly their random initialisation" in viz.learned_verdict(0.88)
    assert "learned" in viz.learned_verdict(0.1) and "random" not in viz.learned_verdict(0.1)
    page = viz.filters_page(w0.astype(np.float32), w0, 2, "run/best.npz")
    grid = viz.filters_figure(w0.astype(np.float32), halves=2)
    assert page.shape[0] > grid.shape[0] + 60       # the text block above the kernels
    np.testing.assert_array_equal(page[-grid.shape[0]:, :grid.shape[1]], grid)


def test_nearest_matches_brute_force():
    rng = np.random.default_rng(0)
    queries, base = rng.normal(size=(4, 7)).astype(np.float32), rng.normal(size=(50, 7)).astype(
        np.float32)
    got = viz.nearest(queries, base, 3, chunk=16)
    dist = ((queries[:, None] - base[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(got, np.argsort(dist, axis=1)[:, :3])
    assert (viz.nearest(base[:5], base, 1)[:, 0] == np.arange(5)).all()   # itself first


def test_fc7_features_and_neighbours_figure():
    net = tiny_net()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8)
    stats = data.compute_stats(images)
    assert net.last_hidden_layer() == "relu7"
    feats = viz.features(net, images, stats, batch_size=4)
    assert feats.shape == (6, 5) and feats.dtype == np.float32 and (feats >= 0).all()
    # the same as the network's own relu7 output on the centre crops
    net.forward(data.center_crop_batch(images, stats["mean"], 17), keep_activations=True)
    np.testing.assert_allclose(feats, net.activations["relu7"], rtol=1e-6)
    near = viz.nearest(feats[:2], feats, 3)
    figure = viz.neighbours_figure(images[:2], np.array([0, 1]), images[near],
                                   np.zeros((2, 3), dtype=np.int64), ["a", "b", "c"])
    assert figure.ndim == 3 and figure.dtype == np.uint8 and figure.shape[0] > 2 * 20


def test_feature_maps_figure_and_png_written(tmp_path):
    net = tiny_net()
    image = np.random.default_rng(2).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    stats = data.compute_stats(image[None])
    figure = viz.feature_maps_figure(net, image, stats)
    assert figure.ndim == 3 and figure.shape[2] == 3 and figure.dtype == np.uint8
    path = viz.save_png(figure, tmp_path / "maps.png")
    assert np.array_equal(np.asarray(Image.open(path)), figure)
    assert [p.name for p in tmp_path.iterdir()] == ["maps.png"]               # no temp left


def test_viz_commands_write_pngs_from_a_checkpoint(tmp_path, capsys):
    from tinyalex import checkpoint
    from tinyalex.model import PRESETS

    folder = data.builtin_dataset(tmp_path, n_train=2, n_val=1, workers=1)   # 72 px, 10 classes
    train, _ = data.open_splits(folder, 72, cache_dir=tmp_path, log=None)
    net = AlexNet(PRESETS["mini"], num_classes=10, seed=0)
    meta = {"config": net.config.to_dict(), "classes": train.classes, "data": str(folder),
            "seed": 0}
    ckpt = checkpoint.save(tmp_path / "run" / "last.npz",
                           {"param": net.params, "data": data.compute_stats(train)}, meta)
    with open(tmp_path / "run" / "metrics.csv", "w") as f:
        f.write("epoch,train_loss,train_top1,val_loss,val_top1,val_top5\n"
                "1,2.3,0.1,2.3,0.1,0.5\n2,2.0,0.3,2.1,0.25,0.7\n")
    image = folder / "val" / "star" / "00000.png"
    for argv, name in ((["filters", "--checkpoint", str(ckpt)], "conv1_filters.png"),
                       (["neighbours", "--checkpoint", str(ckpt), "--queries", "3",
                         "--neighbours", "2", "--device", "cpu"], "neighbours.png"),
                       (["featuremaps", "--checkpoint", str(ckpt), str(image)], "featuremaps.png"),
                       (["confusion", "--checkpoint", str(ckpt)], "confusion.png"),
                       (["curves", "--run", str(tmp_path / "run")], "curves.png")):
        assert viz.main(argv) == 0
        out = tmp_path / "run" / name
        text = capsys.readouterr().out
        assert f"wrote {out}" in text
        if name != "curves.png":
            assert text.startswith(f"checkpoint {ckpt} (no finished epoch)")
        if name == "conv1_filters.png":  # never trained: the figure must say so
            assert "correlation with its initial weights 1.00" in text
            assert "still mostly their random initialisation" in text
        picture = np.asarray(Image.open(out))
        assert picture.ndim == 3 and min(picture.shape[:2]) > 40, name
    # Figure 3's halves: 24 mini conv1 kernels, 12 per half (conv2 has groups=2), below a
    # block of text
    figure = np.asarray(Image.open(tmp_path / "run" / "conv1_filters.png"))
    grid = viz.filters_figure(net.params["conv1.w"], halves=2)
    np.testing.assert_array_equal(figure[-grid.shape[0]:, :grid.shape[1]], grid)
    assert figure.shape[1] >= 12 * 64                     # 12 kernels a row, >= 64 px each


def test_viz_bad_input_is_one_line_exit_2(tmp_path, capsys):
    from tinyalex import cli

    (tmp_path / "junk.npz").write_text("not a checkpoint")
    assert cli.run(viz.main, ["filters", "--checkpoint", str(tmp_path / "junk.npz")]) == 2
    assert cli.run(viz.main, ["curves", "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)


def test_neighbours_figure_marks_the_query_column():
    rng = np.random.default_rng(0)
    queries = rng.integers(0, 256, (2, 20, 20, 3), dtype=np.uint8)
    near = rng.integers(0, 256, (2, 3, 20, 20, 3), dtype=np.uint8)
    figure = viz.neighbours_figure(queries, np.array([0, 1]), near,
                                   np.array([[0, 1, 1], [1, 1, 0]]), ["a", "b"])
    header = figure.shape[0] - 2 * (20 * 4 + 14 + 6 + 4)     # the heading's rows
    frame = np.array(viz.QUERY_FRAME, np.uint8)
    row = figure[header:header + 20 * 4 + 14 + 6]
    assert (row[:3, :80 + 6] == frame).all()              # top edge of the query's frame
    assert (row[:, :3] == frame).all()                    # its left edge, the whole row high
    assert not (row[:, 80 + 6 + 14:] == frame).all(axis=2).any()   # no frame elsewhere
    heading = figure[:header]
    assert (heading[:, :60] == frame).all(axis=2).any()   # "query" written in the frame colour


def test_learning_curves_of_one_epoch_have_whole_epoch_ticks(monkeypatch, tmp_path):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(viz, "_save_figure", lambda fig, path: figures.append(fig) or path)
    row = {"epoch": 1, "train_loss": 2.0, "train_top1": 0.2, "val_loss": 2.1, "val_top1": 0.3,
           "val_top5": None}
    viz.plot_learning_curves([row], tmp_path / "c.png")
    loss, accuracy = figures[0].axes
    for ax in (loss, accuracy):
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks == [1.0]
    assert [line.get_label() for line in accuracy.get_lines()] == ["train top-1", "val top-1"]
    plt.close("all")
    viz.plot_learning_curves([dict(row, epoch=e, val_top5=0.9) for e in (1, 2, 3)],
                             tmp_path / "c.png")
    labels = [line.get_label() for line in figures[1].axes[1].get_lines()]
    assert labels == ["train top-1", "val top-1", "val top-5"]
    plt.close("all")


def test_confusion_figure_is_written(tmp_path):
    from tinyalex.evaluate import confusion_matrix

    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    path = viz.plot_confusion(matrix, ["cat", "dog", "fox"], tmp_path / "m.png", "val")
    picture = np.asarray(Image.open(path))
    assert picture.ndim == 3 and min(picture.shape[:2]) > 200
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]


def test_mistakes_are_the_wrong_answers_most_confident_first():
    labels = np.array([0, 1, 2, 3, 4, 5])
    predictions = np.array([0, 2, 2, 0, 1, 5])            # wrong: images 1, 3, 4
    confidence = np.array([0.99, 0.6, 0.9, 0.8, 0.6, 0.7])
    assert viz.most_confident_mistakes(labels, predictions, confidence, 10).tolist() == [3, 1, 4]
    assert viz.most_confident_mistakes(labels, predictions, confidence, 1).tolist() == [3]
    assert viz.most_confident_mistakes(labels, labels, confidence, 5).size == 0


def test_mistakes_figure_shows_each_image_enlarged_with_its_two_labels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28, 3), dtype=np.uint8)
    args = (images, [0, 1, 2, 3, 4], [1, 2, 3, 4, 0], [0.9, 0.8, 0.7, 0.6, 0.5],
            [f"class {i}" for i in range(5)])
    figure = viz.mistakes_figure(*args, cols=3)
    assert figure.dtype == np.uint8 and figure.ndim == 3
    enlarged = viz.enlarge(images[0], 112 // 28)               # 28 px shown 4x: 112 px
    top = 4 + 2                                                 # grid pad 4 + cell pad 2
    row = figure[top:top + 112]
    assert any(np.array_equal(row[:, left:left + 112], enlarged) for left in range(6, 60))
    assert figure.shape[1] >= 3 * 112 and figure.shape[0] >= 2 * (112 + 32)   # 3 by 2 cells
    titled = viz.mistakes_figure(*args, cols=3, title="test: 5 wrong")
    assert titled.shape[0] > figure.shape[0] and titled.shape[1] == figure.shape[1]


def test_evaluate_keeps_each_images_answer_in_order():
    from tinyalex.evaluate import evaluate
    from tinyalex.layers import softmax
    from tinyalex.model import PRESETS

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (13, 72, 72, 3), dtype=np.uint8)
    image_set = data.ImageSet(images, np.arange(13) % 10, [str(i) for i in range(10)], "val")
    net = AlexNet(PRESETS["mini"], num_classes=10, seed=0)
    stats = data.compute_stats(images)
    result = evaluate(net, image_set, stats, batch_size=5, keep_answers=True)
    logits = net.forward(data.center_crop_batch(images, stats["mean"], 63))   # in order
    np.testing.assert_array_equal(result["predictions"], np.argmax(logits, axis=1))
    np.testing.assert_allclose(result["confidence"], softmax(logits).max(axis=1), rtol=1e-5)
    assert result["predictions"].shape == (13,) and result["confidence"].shape == (13,)
    assert np.all((result["confidence"] > 0) & (result["confidence"] <= 1))
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (np.arange(13) % 10, result["predictions"]), 1)
    np.testing.assert_array_equal(confusion, result["confusion"])


def test_figures_leave_a_notebooks_matplotlib_alone(tmp_path, monkeypatch):
    import matplotlib
    import matplotlib.pyplot as plt

    def switched(*args, **kwargs):
        raise AssertionError("viz switched matplotlib's backend (a notebook loses its figures)")

    monkeypatch.setattr(matplotlib, "use", switched)
    open_figures = plt.get_fignums()
    viz.plot_confusion(np.eye(3, dtype=int), ["a", "b", "c"], tmp_path / "c.png")
    viz.plot_learning_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1,
                               "train_top1": 0.5, "val_top1": 0.4, "val_top5": 0.9}],
                             tmp_path / "l.png")
    assert plt.get_fignums() == open_figures                  # nothing left open in pyplot
    assert (tmp_path / "c.png").stat().st_size > 1000 and (tmp_path / "l.png").is_file()


# --- viz curves on a damaged metrics.csv ------------------------------------------

GOOD_METRICS = ("epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5\n"
                "1,0.01,2.3,0.1,2.3,0.1,\n2,0.01,2.0,0.3,2.1,0.25,\n")


@pytest.mark.parametrize("content,words", [
    (b"", "lacks the columns epoch"),
    (GOOD_METRICS.splitlines(keepends=True)[0].encode(), "has no epoch"),
    (GOOD_METRICS.encode()[:-12], "line 3: val_loss is missing"),          # truncated
    (GOOD_METRICS.replace("2.0,0.3", "2.0,abc").encode(), "line 3: train_top1 is 'abc'"),
    (GOOD_METRICS.replace("2.0,0.3", "nan,0.3").encode(), "line 3: train_loss nan is out"),
    (GOOD_METRICS.replace("2.0,0.3", "2.0,7").encode(), "line 3: train_top1 7.0 is out"),
    (GOOD_METRICS.replace("\n2,", "\n1,").encode(), "line 3: epoch 1 does not follow epoch 1"),
    (GOOD_METRICS.replace("\n2,", "\n2.5,").encode(), "epoch 2.5 does not follow"),
    (GOOD_METRICS.replace("val_loss,", "").encode(), "lacks the column val_loss"),
    (b"\xff\xfe\x00garbage\x1b[2J", "cannot be read as CSV"),
    (GOOD_METRICS.replace("abc", "").replace("2.0,0.3", "2.0,\x1b[2J" + "9" * 5000).encode(),
     "train_top1 is '\\\\x1b[2J9999"),
], ids=["empty", "header only", "truncated", "text", "nan", "accuracy 7", "epoch repeated",
        "epoch 2.5", "column missing", "binary", "escape codes"])
def test_curves_on_a_damaged_metrics_csv_is_one_line(content, words, tmp_path, capsys):
    from tinyalex import cli

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_bytes(content)
    (run / "curves.png").write_bytes(b"the previous figure")
    status = cli.run(viz.main, ["curves", "--run", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert str(run / "metrics.csv") in err[0] and words in err[0], err[0]
    assert len(err[0]) < 400
    assert {p.name: p.read_bytes() for p in run.iterdir()} == {
        "metrics.csv": content, "curves.png": b"the previous figure"}


def test_curves_from_a_sound_metrics_csv(tmp_path):
    (tmp_path / "metrics.csv").write_text(GOOD_METRICS)
    history = viz.read_metrics(tmp_path / "metrics.csv")
    assert [row["epoch"] for row in history] == [1.0, 2.0]
    assert history[1]["val_top1"] == 0.25 and history[1]["val_top5"] is None
    assert viz.main(["curves", "--run", str(tmp_path)]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 1000


@pytest.mark.parametrize("case", ["a folder", "in a missing folder"])
def test_curves_to_an_out_that_cannot_be_written_is_one_line_before_drawing(case, tmp_path,
                                                                            capsys, monkeypatch):
    from tinyalex import cli

    (tmp_path / "metrics.csv").write_text(GOOD_METRICS)
    out = tmp_path / "figure" if case == "a folder" else tmp_path / "nowhere" / "c.png"
    if case == "a folder":
        out.mkdir()
    monkeypatch.setattr(viz, "plot_learning_curves", lambda *a: pytest.fail("drawn first"))
    status = cli.run(viz.main, ["curves", "--run", str(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and f"cannot write the curves to {out}" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["metrics.csv"] + (["figure"] if case == "a folder" else []))
