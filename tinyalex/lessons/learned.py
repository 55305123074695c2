"""Lesson 10's helpers: a small network trained in seconds, and the measures of section 6.1.

    trained = train_small_net(steps=800)       # shapes at 23 px; trained.net, .w0, .run, ...
    colourfulness(trained.net.params["conv1.w"])   # per kernel: 0 grey, about 2/3 random
    fc7 = last_hidden(trained.net, x)          # the last hidden layer after its ReLU
    grad = class_score_gradient(net, x, classes)   # d score[class] / d image: saliency

The network is the shape of AlexNet at a small scale: conv1 (16 kernels 5x5, two towers of 8,
since conv2 is grouped) -> ReLU -> LRN -> pool, conv2 (32, grouped) -> ReLU -> LRN -> pool,
conv3 (32) -> ReLU -> pool, then two hidden fully connected layers of 64 and the classifier.
Its layers are numbered in order, so its last hidden layer, the role of the paper's fc7, is
called fc5 here, and its classifier fc6.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from tinyalex.model import AlexNet, AlexNetConfig, ConvSpec


def small_config(size: int = 23, hidden: int = 64, dropout: float = 0.0) -> AlexNetConfig:
    """The lesson's network for size x size shapes (see the module docstring)."""
    return AlexNetConfig(
        name="lesson10", image_size=size, input_size=size, input_scale=1 / 64,
        convs=(ConvSpec(16, 5, pad=2, lrn=True, pool=True),
               ConvSpec(32, 5, pad=2, groups=2, lrn=True, pool=True),
               ConvSpec(32, 3, pad=1, pool=True)),
        hidden=(hidden, hidden), num_classes=10, dropout=dropout, init="he", bias_one=())


@dataclass
class Trained:
    """What ``train_small_net`` returns: the network, conv1's initial weights (w0), the Run,
    the uint8 images and labels of both splits, their network inputs and the mean image."""

    net: AlexNet
    w0: np.ndarray
    run: object
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    x_train: np.ndarray
    x_val: np.ndarray
    mean: np.ndarray
    seconds: float


def train_small_net(steps: int = 800, per_class: int = 200, val_per_class: int = 50,
                    size: int = 23, lr: float = 0.02, seed: int = 0) -> Trained:
    """Train ``small_config`` on the built-in shapes (drawn in memory) with the paper's SGD.

    Batches of 32, momentum 0.9, no weight decay and no augmentation (a short run); about
    25 s for 800 steps on a 2-core laptop CPU.
    """
    from tinyalex.lessons import experiments
    from tinyalex.lessons.images import shapes_images, to_input

    train_images, train_labels = shapes_images(per_class, size, "train", seed)
    val_images, val_labels = shapes_images(val_per_class, size, "val", seed)
    mean = train_images.mean(axis=0, dtype=np.float64).astype(np.float32)   # (S, S, 3)
    x_train, x_val = to_input(train_images, mean), to_input(val_images, mean)
    net = AlexNet(small_config(size), seed=seed)
    w0 = net.params["conv1.w"].copy()
    start = time.perf_counter()
    run = experiments.train(net, x_train, np.asarray(train_labels), steps, lr, seed=seed,
                            x_val=x_val, y_val=np.asarray(val_labels), label="lesson 10")
    return Trained(net, w0, run, train_images, np.asarray(train_labels), val_images,
                   np.asarray(val_labels), x_train, x_val, mean, time.perf_counter() - start)


def colourfulness(w) -> np.ndarray:
    """float64 (F,): the fraction of each conv1 kernel's energy that is colour, not grey.

    w (F, 3, KH, KW). A kernel splits into its grey part (the mean of its three channels at
    each pixel, the same on R, G and B: it responds to brightness only) and the rest (what
    differs between the channels: colour). Returns |w - grey|^2 / |w|^2 per kernel: 0 for a
    colour-agnostic kernel, 1 for one that sums to zero over R, G, B at every pixel, and
    about 2/3 for random weights (the colour directions are 2 of the 3).
    """
    w = np.asarray(w, dtype=np.float64)
    grey = w.mean(axis=1, keepdims=True)                                   # (F, 1, KH, KW)
    colour = ((w - grey) ** 2).sum(axis=(1, 2, 3))
    return colour / np.maximum((w**2).sum(axis=(1, 2, 3)), 1e-300)


def hidden_layer(net) -> str:
    """The step whose output is the last hidden layer after its ReLU (fc7's role)."""
    return net.last_hidden_layer()


def last_hidden(net, x, batch_size: int = 500) -> np.ndarray:
    """(N, D) activations of the last hidden layer after its ReLU, dropout off (figure 4)."""
    layer, out = hidden_layer(net), []
    for start in range(0, len(x), batch_size):
        net.forward(x[start : start + batch_size], train=False, keep_activations=True)
        out.append(np.asarray(net.activations[layer]).reshape(len(x[start : start + batch_size]),
                                                              -1))
    net.activations = {}
    return np.concatenate(out)


def nearest_others(features, queries, k: int) -> np.ndarray:
    """int64 (Q, k): for each query index, the k nearest OTHER rows of features (N, D), by
    Euclidean distance, nearest first."""
    features = np.asarray(features, dtype=np.float64)
    queries = np.asarray(queries)
    diff = features[queries][:, None, :] - features[None, :, :]            # (Q, N, D)
    dist = np.sqrt((diff**2).sum(axis=2))                                  # (Q, N)
    dist[np.arange(len(queries)), queries] = np.inf                        # not the query itself
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def class_score_gradient(net, x, classes) -> np.ndarray:
    """(N, C, H, W): the gradient of each image's score for classes[n] (its logit, before the
    softmax) with respect to that image, dropout off. Images do not interact in evaluation
    mode, so one backward pass with dlogits one-hot at (n, classes[n]) gives all of them."""
    logits = net.forward(x, train=False)
    dlogits = np.zeros_like(logits)
    dlogits[np.arange(len(x)), np.asarray(classes)] = 1.0   # every other class's score: 0
    return net.backward(dlogits, input_grad=True)["input"]


def saliency(grad) -> np.ndarray:
    """(N, H, W): the saliency map of Simonyan et al. (2013), max over channels of |gradient|."""
    return np.abs(np.asarray(grad)).max(axis=1)


def smooth_gradient(net, x, classes, copies: int = 16, noise: float = 0.15,
                    seed: int = 0) -> np.ndarray:
    """SmoothGrad (Smilkov et al., 2017): the mean of ``class_score_gradient`` over ``copies``
    noisy copies of each image, noise N(0, (noise * the batch's value range)^2). (N, C, H, W).

    The gradient of a ReLU network jumps from pixel to pixel; averaging it over a small
    neighbourhood of the image keeps what is systematic.
    """
    rng = np.random.default_rng(seed)
    sigma = noise * float(x.max() - x.min())
    total = np.zeros_like(x)
    for _ in range(copies):
        noisy = (x + rng.standard_normal(x.shape) * sigma).astype(x.dtype)
        total += class_score_gradient(net, noisy, classes)
    return total / copies
