"""The checkers of lessons 10-12 pass the solutions and name the classic mistakes.

As in test_lessons.py, each wrong version is written here the way a student might write it;
each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np

from tinyalex import layers
from tinyalex.lessons import exercise_table, get_exercise, run_check
from tinyalex.lessons import solutions as sol
from tinyalex.lessons.checking import FAIL


def failing(name, fn):
    result = run_check(name, fn)
    assert result.status == FAIL, f"{name}: the checker passed a wrong function"
    assert result.function is get_exercise(name).reference
    return result.message


def test_lessons_10_to_12_have_three_exercises_each():
    for lesson in (10, 11, 12):
        assert exercise_table(lesson).count("\n") >= 2, exercise_table(lesson)


# ---- lesson 12 --------------------------------------------------------------------------------

def test_lrn_2012_mistakes():
    def scale_as_alpha(x, size, scale, power):
        return layers.lrn_forward(x, n=size, k=1.0, alpha=scale, beta=power)[0]

    assert "divides its scale by size" in failing("lrn_2012", scale_as_alpha)

    def paper_k(x, size, scale, power):
        return layers.lrn_forward(x, n=size, k=2.0, alpha=scale / size, beta=power)[0]

    assert "minDiv" in failing("lrn_2012", paper_k)

    def paper_formula(x, size, scale, power):
        return layers.lrn_forward(x, n=size, alpha=scale, beta=power)[0]  # k defaults to 2

    assert "the paper's formula with the code's number" in failing("lrn_2012", paper_formula)


def test_conv1_2012_mistakes():
    def paper_order(x, w, b, conv, lrn, pool):
        out = layers.relu_forward(layers.conv_forward(x, w, b, **conv)[0])[0]
        return layers.maxpool_forward(layers.lrn_forward(out, **lrn)[0], **pool)[0]

    assert "the paper's order" in failing("conv1_2012", paper_order)

    def relu_last(x, w, b, conv, lrn, pool):
        out = layers.maxpool_forward(layers.conv_forward(x, w, b, **conv)[0], **pool)[0]
        return np.maximum(layers.lrn_forward(out, **lrn)[0], 0)

    assert "ReLU comes right after the convolution" in failing("conv1_2012", relu_last)

    def no_pool(x, w, b, conv, lrn, pool):
        out = layers.relu_forward(layers.conv_forward(x, w, b, **conv)[0])[0]
        return layers.lrn_forward(out, **lrn)[0]

    assert "max-pool is missing" in failing("conv1_2012", no_pool)


def test_sgd_step_scaled_mistakes():
    def skips_frozen(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
        for name, w in params.items():
            if lr_scale.get(name, 1.0) == 0:
                continue  # "frozen": but the paper's rule at rate 0 still decays v
            rate = lr * lr_scale.get(name, 1.0)
            decay = weight_decay if name.endswith(".w") else 0.0
            velocity[name][...] = (momentum * velocity[name] - decay * rate * w
                                   - rate * grads[name])
            w += velocity[name]

    assert "was skipped" in failing("sgd_step_scaled", skips_frozen)

    def ignores_scale(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
        sol.sgd_step_scaled(params, velocity, grads, lr, momentum, weight_decay, {})

    assert "factors are ignored" in failing("sgd_step_scaled", ignores_scale)

    def decay_unscaled(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
        for name, w in params.items():
            decay = weight_decay if name.endswith(".w") else 0.0
            v = velocity[name]
            v *= momentum
            v -= decay * lr * w  # the full rate: a frozen layer keeps decaying
            v -= lr * lr_scale.get(name, 1.0) * grads[name]
            w += v

    assert "weight decay must use the scaled rate" in failing("sgd_step_scaled", decay_unscaled)

    def decays_biases(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
        for name, w in params.items():
            rate = lr * lr_scale.get(name, 1.0)
            v = velocity[name]
            v *= momentum
            v -= weight_decay * rate * w + rate * grads[name]
            w += v

    assert "biases" in failing("sgd_step_scaled", decays_biases)


# ---- lesson 10 --------------------------------------------------------------------------------

def test_colourfulness_mistakes():
    def grey_share(w):
        grey = w.mean(axis=1, keepdims=True)
        return 3 * (grey**2).sum(axis=(1, 2, 3)) / (w**2).sum(axis=(1, 2, 3))

    assert "grey share" in failing("kernel_colourfulness", grey_share)

    def over_pixels(w):
        grey = w.mean(axis=(2, 3), keepdims=True)
        return ((w - grey) ** 2).sum(axis=(1, 2, 3)) / (w**2).sum(axis=(1, 2, 3))

    assert "mean over the CHANNELS" in failing("kernel_colourfulness", over_pixels)

    def one_number(w):
        grey = w.mean(axis=1, keepdims=True)
        return ((w - grey) ** 2).sum() / (w**2).sum()

    assert "one number per kernel" in failing("kernel_colourfulness", one_number)

    def no_squares(w):
        return np.abs(w - w.mean(axis=1, keepdims=True)).sum(axis=(1, 2, 3)) / \
            np.abs(w).sum(axis=(1, 2, 3))

    assert "sum of squares" in failing("kernel_colourfulness", no_squares)


def _fc_features(net, x, name, train=False):
    net.forward(x, train=train, keep_activations=True)
    return net.activations[name].reshape(len(x), -1)


def _rank(features, queries, k, exclude=True):
    dist = ((features[queries][:, None] - features[None]) ** 2).sum(axis=2)
    if exclude:
        dist[np.arange(len(queries)), queries] = np.inf
    return np.argsort(dist, axis=1)[:, :k]


def test_nearest_neighbour_mistakes():
    def includes_itself(net, x, queries, k):
        return _rank(_fc_features(net, x, "relu4"), queries, k, exclude=False)

    assert "its own nearest neighbour" in failing("nearest_by_fc7", includes_itself)

    def before_relu(net, x, queries, k):
        return _rank(_fc_features(net, x, "fc4"), queries, k)

    assert "BEFORE its ReLU" in failing("nearest_by_fc7", before_relu)

    def logits(net, x, queries, k):
        return _rank(net.forward(x), queries, k)

    assert "by the logits" in failing("nearest_by_fc7", logits)

    def first_hidden(net, x, queries, k):
        return _rank(_fc_features(net, x, "relu3"), queries, k)

    assert "first hidden layer" in failing("nearest_by_fc7", first_hidden)

    def training_mode(net, x, queries, k):
        return _rank(_fc_features(net, x, "relu4", train=True), queries, k)

    assert "dropout was on" in failing("nearest_by_fc7", training_mode)


def test_saliency_mistakes():
    def all_classes(net, x, classes):
        logits = net.forward(x, train=False)
        return net.backward(np.ones_like(logits), input_grad=True)["input"]

    assert "other classes' scores" in failing("class_score_gradient", all_classes)

    def loss_gradient(net, x, classes):
        logits = net.forward(x, train=False)
        _, dlogits = layers.softmax_cross_entropy(logits, classes)
        return net.backward(dlogits, input_grad=True)["input"]

    assert "gradient of the loss" in failing("class_score_gradient", loss_gradient)

    def with_dropout(net, x, classes):
        logits = net.forward(x, train=True)
        d = np.zeros_like(logits)
        d[np.arange(len(x)), classes] = 1
        return net.backward(d, input_grad=True)["input"]

    assert "dropout was on" in failing("class_score_gradient", with_dropout)

    def mean_over_batch(net, x, classes):
        return sol.class_score_gradient(net, x, classes) / len(x)

    assert "divided by the batch size" in failing("class_score_gradient", mean_over_batch)


# ---- lesson 11 --------------------------------------------------------------------------------

def test_gray_to_input_mistakes():
    def channels_last(images, mean):
        return np.repeat(images[..., None], 3, axis=3).astype(np.float32) - \
            mean.transpose(1, 2, 0)

    assert "channels last" in failing("gray_to_input", channels_last)

    def one_channel(images, mean):
        return images[:, None].astype(np.float32) - mean[:1]

    assert "repeat the gray channel" in failing("gray_to_input", one_channel)

    def no_mean(images, mean):
        return np.stack([images] * 3, axis=1).astype(np.float32)

    assert "not subtracted" in failing("gray_to_input", no_mean)

    def scalar_mean(images, mean):
        return np.stack([images] * 3, axis=1).astype(np.float32) - mean.mean()

    assert "mean IMAGE" in failing("gray_to_input", scalar_mean)

    def unit_range(images, mean):
        return np.stack([images] * 3, axis=1) / np.float32(255) - mean

    assert "do not divide by 255" in failing("gray_to_input", unit_range)


def test_confusion_mistakes():
    def transposed(labels, predictions, k):
        return sol.confusion_counts(predictions, labels, k)

    assert "yours is the transpose" in failing("confusion_counts", transposed)

    def fancy_index(labels, predictions, k):
        counts = np.zeros((k, k), dtype=np.int64)
        counts[labels, predictions] += 1
        return counts

    assert "np.add.at" in failing("confusion_counts", fancy_index)

    def classes_seen(labels, predictions, k):
        seen = np.unique(np.concatenate([labels, predictions]))
        counts = np.zeros((len(seen), len(seen)), dtype=np.int64)
        np.add.at(counts, (np.searchsorted(seen, labels), np.searchsorted(seen, predictions)), 1)
        return counts

    assert "even when a class never occurs" in failing("confusion_counts", classes_seen)

    def fractions(labels, predictions, k):
        counts = sol.confusion_counts(labels, predictions, k).astype(float)
        return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)

    assert "return the counts" in failing("confusion_counts", fractions)


def test_most_confused_mistakes():
    def with_diagonal(confusion, count):
        flat = np.argsort(-confusion.ravel(), kind="stable")[:count]
        return np.stack(np.unravel_index(flat, confusion.shape), axis=1)

    assert "diagonal holds the CORRECT answers" in failing("most_confused_pairs", with_diagonal)

    def swapped(confusion, count):
        return sol.most_confused_pairs(confusion, count)[:, ::-1]

    assert "(predicted, true)" in failing("most_confused_pairs", swapped)

    def ascending(confusion, count):
        m = confusion.copy()
        np.fill_diagonal(m, confusion.max() + 1)
        flat = np.argsort(m.ravel(), kind="stable")[:count]
        return np.stack(np.unravel_index(flat, m.shape), axis=1)

    assert "SMALLEST" in failing("most_confused_pairs", ascending)


def test_the_real_images_fall_back_to_the_shapes_and_say_how_to_install(tmp_path):
    from tinyalex.lessons import real

    data = real.load_real_images(tmp_path / "missing", train_per_class=3, test_per_class=2)
    assert data.name == "the built-in shapes" and not data.gray
    assert "apt-get install dataset-fashion-mnist" in data.note and "missing" in data.note
    assert data.x_train.shape == (30, 3, 28, 28) and data.x_test.shape == (20, 3, 28, 28)
    assert np.abs(data.x_train.mean(axis=0)).max() < 1e-3  # the mean image is removed


def test_the_real_images_from_idx_files(tmp_path):
    """A fake Fashion-MNIST folder of 4 IDX files: read into memory, balanced, gray to RGB."""
    import gzip
    import struct

    from tinyalex.lessons import real

    rng = np.random.default_rng(0)

    def write(name, array):
        header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(
            struct.pack(">I", s) for s in array.shape)
        with gzip.open(tmp_path / f"{name}.gz", "wb") as f:
            f.write(header + array.astype(np.uint8).tobytes())

    for split, n in (("train", 60), ("t10k", 30)):
        write(f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write(f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    data = real.load_real_images(tmp_path, train_per_class=4, test_per_class=2, size=28)
    assert data.name == "Fashion-MNIST" and data.gray and "60 training" in data.note
    assert np.bincount(data.y_train).tolist() == [4] * 10
    assert data.train_images.shape == (40, 28, 28, 3)
    assert np.array_equal(data.train_images[..., 0], data.train_images[..., 2])
    assert data.stats["pca_eigvals"][1] < 1e-6 * data.stats["pca_eigvals"][0]  # brightness only
