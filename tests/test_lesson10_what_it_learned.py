"""Lesson 10, what the network learned: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing

from tinyalex import layers
from tinyalex.lessons import lesson10_what_it_learned as lesson


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
        return lesson.class_score_gradient(net, x, classes) / len(x)

    assert "divided by the batch size" in failing("class_score_gradient", mean_over_batch)


def test_the_figure_3_measures():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((64, 3, 5, 5))
    assert abs(lesson.low_frequency_share(noise) - 9 / 25) < 0.03  # white: evenly spread
    x = np.arange(5) - 2.0
    edge = np.broadcast_to(np.tanh(x)[None, :], (4, 3, 5, 5))  # a vertical edge
    blob = np.broadcast_to(np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / 4), (4, 3, 5, 5))
    assert lesson.low_frequency_share(edge) > 0.8 and lesson.low_frequency_share(blob) > 0.9
    same = lesson.learned_measures(noise, noise)
    assert abs(same["correlation"] - 1) < 1e-12 and abs(same["low_ratio"] - 1) < 1e-12
    learned = lesson.learned_measures(0.25 * noise + 3 * np.broadcast_to(blob[:1], noise.shape),
                                      noise)
    assert learned["correlation"] < 0.5 and learned["low_ratio"] > 1.5


def test_the_small_net_starts_conv1_at_a_quarter_of_he(monkeypatch):
    from tinyalex.lessons import experiments

    monkeypatch.setattr(experiments, "train", lambda *args, **kwargs: None)  # no training here
    he = lesson.train_small_net(steps=0, per_class=1, val_per_class=1, conv1_scale=1.0).w0
    small = lesson.train_small_net(steps=0, per_class=1, val_per_class=1).w0
    np.testing.assert_allclose(small, lesson.CONV1_SCALE * he, rtol=1e-6)
