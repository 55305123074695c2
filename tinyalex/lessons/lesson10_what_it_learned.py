"""Lesson 10, what the network learned (``notebooks/10_what_it_learned.ipynb``), section 6.1.

    trained = train_small_net(steps=800)       # shapes at 23 px; trained.net, .w0, .run, ...
    colourfulness(trained.net.params["conv1.w"])   # per kernel: 0 grey, about 2/3 random
    fc7 = last_hidden(trained.net, x)          # the last hidden layer after its ReLU
    grad = class_score_gradient(net, x, classes)   # d score[class] / d image: saliency

The network is the shape of AlexNet at a small scale: conv1 (16 kernels 5x5, two towers of 8,
since conv2 is grouped) -> ReLU -> LRN -> pool, conv2 (32, grouped) -> ReLU -> LRN -> pool,
conv3 (32) -> ReLU -> pool, then two hidden fully connected layers of 64 and the classifier.
Its layers are numbered in order, so its last hidden layer, the role of the paper's fc7, is
called fc5 here, and its classifier fc6. Exercises: the colour share of conv1's kernels,
neighbours by fc7 distance (figure 4), the class score's gradient (saliency).
"""


from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from tinyalex.lessons import experiments, plots
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    first_match,
    randn,
    register,
)
from tinyalex.model import AlexNet, AlexNetConfig, ConvSpec

LESSON = Lesson(
    10, "10_what_it_learned.ipynb", "What the network learned", ("6.1",),
    "figure 3 (the towers' conv1 kernels, their colour share measured), feature maps, "
    "figure 4 (neighbours by fc7 distance), saliency maps, on a net trained in seconds")


# ---- the lesson's helpers ------------------------------------------------------------------

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


# conv1's initial weights are He's scaled by this: the learned change of a short run is about
# as large whatever the start (|w - w0| 4.9 from He's, 5.4 from a quarter of it, 800 steps),
# so on a quarter of the random pattern it shows (correlation with w0 0.36 instead of 0.75);
# the accuracy is the same (54% against 54%). Lesson 10's notebook gives every variant tried.
CONV1_SCALE = 0.25


def train_small_net(steps: int = 800, per_class: int = 200, val_per_class: int = 50,
                    size: int = 23, lr: float = 0.02, seed: int = 0,
                    conv1_scale: float = CONV1_SCALE) -> Trained:
    """Train ``small_config`` on the built-in shapes (drawn in memory) with the paper's SGD.

    Batches of 32, momentum 0.9, no weight decay and no augmentation (a short run); about
    25 s for 800 steps on a 2-core laptop CPU. conv1's initial weights are He's times
    ``conv1_scale`` (see CONV1_SCALE; 1.0: He's own).
    """
    from tinyalex.lessons.images import shapes_images, to_input

    train_images, train_labels = shapes_images(per_class, size, "train", seed)
    val_images, val_labels = shapes_images(val_per_class, size, "val", seed)
    mean = train_images.mean(axis=0, dtype=np.float64).astype(np.float32)   # (S, S, 3)
    x_train, x_val = to_input(train_images, mean), to_input(val_images, mean)
    net = AlexNet(small_config(size), seed=seed)
    net.params["conv1.w"] *= conv1_scale   # in place: the array the optimiser will update
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


def low_frequency_share(w, cutoff: float = 0.25) -> float:
    """The share of the kernels' energy at low spatial frequencies, float in [0, 1].

    w (F, C, KH, KW). The 2-d Fourier transform of each kernel's channels; the low
    frequencies are those at most ``cutoff`` cycles per pixel along both axes (a quarter of
    the sampling rate: for 5 x 5 kernels the constant and the slowest wave, 9 of the 25
    frequencies). Smooth patterns -- oriented edges, blobs of colour, what figure 3 shows --
    keep most of their energy there; white noise, as random initial weights are, spreads it
    evenly (9/25 = 0.36 for 5 x 5).
    """
    w = np.asarray(w, dtype=np.float64)
    power = np.abs(np.fft.fft2(w, axes=(-2, -1))) ** 2                     # (F, C, KH, KW)
    fy = np.abs(np.fft.fftfreq(w.shape[-2]))[:, None]                      # cycles per pixel
    fx = np.abs(np.fft.fftfreq(w.shape[-1]))[None, :]
    return float(power[..., (fy <= cutoff) & (fx <= cutoff)].sum() / power.sum())


def learned_measures(w, w0) -> dict:
    """How much of conv1's picture was learned: {"correlation": with the initial kernels w0
    (1: unchanged), "low": the trained kernels' low-frequency share, "low0": the initial ones',
    "low_ratio": low / low0 (above 1: smoother than the noise they started from)}."""
    from tinyalex import viz

    low, low0 = low_frequency_share(w), low_frequency_share(w0)
    return {"correlation": viz.init_distance(w, w0)["correlation"], "low": low, "low0": low0,
            "low_ratio": low / low0}


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


# ---- the lesson's figures ------------------------------------------------------------------

def plot_figure3(w, w0, title: str = "conv1's kernels"):
    """Figure 3 on the lesson's net: the initial kernels w0 beside the trained ones w, each as
    ``tinyalex.viz.filters_figure`` draws them (the two towers apart), with the measures of
    ``learned_measures`` in the titles."""
    from tinyalex import viz

    plt = plots.pyplot()
    m = learned_measures(w, w0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 2.9))
    for ax, kernels, label in ((left, w0, f"initial (low-frequency share {m['low0']:.2f})"),
                               (right, w, f"trained: correlation {m['correlation']:.2f} with "
                                          f"the initial,\nlow-frequency share {m['low']:.2f} "
                                          f"({m['low_ratio']:.1f}x the initial)")):
        ax.imshow(viz.filters_figure(kernels))
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{title}: tower a above, tower b below")
    fig.tight_layout()
    return fig


def plot_colourfulness(values: dict, halves: int = 2,
                       title: str = "how much of each conv1 kernel is colour"):
    """One dot per kernel, per label (e.g. {"initial": ..., "trained": ...}), the towers apart.

    values: {label: (F,) fractions from ``colourfulness``}; kernels 0..F/2-1 are the
    first tower. The dashed line is 2/3, what random weights give.
    """
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for k, (label, v) in enumerate(values.items()):
        v = np.asarray(v)
        per = len(v) // halves
        for h in range(halves):
            part = v[h * per : (h + 1) * per]
            x = h * (len(values) + 1) + k + np.linspace(-0.2, 0.2, len(part))
            ax.plot(x, part, "o", color=f"C{k}", alpha=0.7, label=label if h == 0 else None)
            ax.plot([x[0] - 0.1, x[-1] + 0.1], [part.mean()] * 2, color=f"C{k}", lw=2.5)
    ax.axhline(2 / 3, color="grey", ls="--", lw=1, label="random weights (2/3)")
    ticks = [h * (len(values) + 1) + (len(values) - 1) / 2 for h in range(halves)]
    ax.set_xticks(ticks, [f"tower {'ab'[h] if halves == 2 else h}: kernels {h * per}-"
                          f"{(h + 1) * per - 1}" for h in range(halves)])
    ax.set(ylabel="colour share of |w|^2 (0 = grey only)", ylim=(0, 1), title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_saliency(images, maps, titles=None, title: str = "saliency: where the class score "
                  "is most sensitive"):
    """Images (N, H, W, 3) uint8 above their saliency maps (N, H, W), one column per image."""
    plt = plots.pyplot()
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.3), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(images[i], interpolation="nearest")
        axes[1, i].imshow(maps[i], cmap="hot", interpolation="nearest")
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=8)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("image", fontsize=9)
    axes[1, 0].set_ylabel("max |d score / d pixel|", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---- the exercises -------------------------------------------------------------------------

def _colour_cases():
    rng = np.random.default_rng(300)
    grey = np.repeat(rng.standard_normal((3, 1, 5, 5)), 3, axis=1)        # colour-agnostic
    opponent = rng.standard_normal((3, 3, 5, 5))
    opponent -= opponent.mean(axis=1, keepdims=True)                       # pure colour
    mixed = np.concatenate([grey[:2] + 0.3 * opponent[:2], rng.standard_normal((4, 3, 5, 5))])
    values = [(rng.standard_normal((8, 3, 5, 5)), "random 8x3x5x5"),
              (np.concatenate([grey, rng.standard_normal((2, 3, 5, 5))]), "3 grey + 2 random"),
              (opponent, "opponent colours"), (mixed, "mixed 6x3x5x5"),
              (rng.standard_normal((4, 3, 11, 11)) * 0.01, "paper-sized 11x11, std 0.01"),
              (rng.standard_normal((5, 3, 4, 3)), "random 5x3x4x3")]
    return [Case((w,), label=label) for w, label in values]


def _diagnose_colour(case, got, want):
    (w,) = case.args
    value = np.asarray(got["fraction"], dtype=np.float64)
    if value.ndim == 0:
        return "return one number per kernel (shape (F,)): sum over axes 1, 2, 3, not all"
    grey = w.mean(axis=1, keepdims=True)
    colour = ((w - grey) ** 2).sum(axis=(1, 2, 3))
    total = (w**2).sum(axis=(1, 2, 3))
    spatial = w.mean(axis=(2, 3), keepdims=True)
    return first_match(value, [
        ("that is colour / grey; the fraction is colour / total (the squares of all the "
         "weights), which stays between 0 and 1", colour / (3 * (grey**2).sum(axis=(1, 2, 3)))),
        ("that is the grey share; the exercise asks for the colour share (1 - yours)",
         1 - colour / total),
        ("the grey part is the mean over the CHANNELS (axis 1) at each pixel; you averaged "
         "over the pixels", ((w - spatial) ** 2).sum(axis=(1, 2, 3)) / total),
        ("square the differences: energy is a sum of squares",
         np.abs(w - grey).sum(axis=(1, 2, 3)) / np.abs(w).sum(axis=(1, 2, 3))),
    ])


def kernel_colourfulness(w):
    # Split each kernel (3, KH, KW) into its grey part -- the mean of R, G, B at each pixel,
    # the same on all three channels -- and the rest, the colour. Return the colour's share
    # of the squared weights, one number per kernel.
    grey = w.mean(axis=1, keepdims=True)  # (F, 1, KH, KW), broadcast over the channels
    colour_energy = ((w - grey) ** 2).sum(axis=(1, 2, 3))
    return colour_energy / (w**2).sum(axis=(1, 2, 3))


register(Exercise(
    name="kernel_colourfulness", lesson=10,
    task="the share of each conv1 kernel's squared weights that is colour, not grey",
    signature="def kernel_colourfulness(w):",
    cases=_colour_cases, outputs=("fraction",),
    reference=colourfulness,
    reference_name="tinyalex.lessons.lesson10_what_it_learned.colourfulness",
    solution=kernel_colourfulness, diagnose=_diagnose_colour,
    hint="grey = w.mean(axis=1, keepdims=True) is the brightness part of each kernel; the "
         "colour part is w - grey. Sum the squares per kernel and divide."))


def _tiny_net(seed: int, dropout: float = 0.5):
    from tinyalex.model import AlexNet, AlexNetConfig, ConvSpec

    config = AlexNetConfig(name="tiny", image_size=9, input_size=9, input_scale=1.0,
                           convs=(ConvSpec(4, 3, pad=1, pool=True), ConvSpec(6, 3, groups=2)),
                           hidden=(12, 7), num_classes=5, dropout=dropout, init="he",
                           bias_one=())
    return AlexNet(config, seed=seed, dtype=np.float64, impl="textbook")


def _nearest_cases():
    cases = []
    for seed, (n, queries, k) in enumerate([(12, [0, 5, 11], 3), (9, [2, 3], 4),
                                            (15, [14, 1, 7, 8], 5), (8, [4], 7)]):
        x = randn((n, 3, 9, 9), seed + 400)
        cases.append(Case((_tiny_net(seed), x, np.array(queries), k),
                          label=f"{n} images, queries {queries}, k={k}, seed {seed}"))
    return cases


def _nearest_variant(net, x, queries, k, layer=None, exclude=True, metric="euclid",
                     train=False):
    net.dropout_step = 0  # a fresh net's first training pass: the masks a student's drew
    net.forward(x, train=train, keep_activations=True)
    features = np.asarray(net.activations[layer or net.last_hidden_layer()]).reshape(len(x), -1)
    q = features[queries]
    if metric == "cosine":
        norm = np.linalg.norm(features, axis=1) + 1e-12
        dist = -(q @ features.T) / (norm[queries][:, None] * norm[None])
    else:
        dist = np.sqrt(((q[:, None] - features[None]) ** 2).sum(axis=2))
    if exclude:
        dist[np.arange(len(queries)), queries] = np.inf
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def _own_nearest(net, x, queries, k):
    return nearest_others(last_hidden(net, x), queries, k)


def _diagnose_nearest(case, got, want):
    net, x, queries, k = case.args
    got_idx = np.asarray(got["indices"])
    if got_idx.shape == want["indices"].shape and np.any(got_idx[:, 0] == queries):
        return ("an image is its own nearest neighbour (distance 0): exclude the query itself "
                "(e.g. set its distance to infinity before sorting)")
    fc = [step.name for step in net.steps if step.kind == "fc"]
    first_hidden = "relu" + fc[0][2:]
    return first_match(got_idx, [
        ("these are neighbours by the hidden layer's values BEFORE its ReLU; figure 4 uses "
         "its output after the ReLU", _nearest_variant(net, x, queries, k, layer=fc[-2])),
        ("these are neighbours by the logits (the classifier's output); figure 4 uses the "
         "last HIDDEN layer (fc7), one before the classifier",
         _nearest_variant(net, x, queries, k, layer=fc[-1])),
        ("these are neighbours by the first hidden layer (fc6's role); figure 4 uses the last "
         "one (fc7)", _nearest_variant(net, x, queries, k, layer=first_hidden)),
        ("dropout was on (forward with train=True): features for retrieval come from "
         "evaluation mode", _nearest_variant(net, x, queries, k, train=True)),
        ("that ranking is by cosine similarity; the paper uses Euclidean distance",
         _nearest_variant(net, x, queries, k, metric="cosine")),
    ])


def nearest_by_fc7(net, x, queries, k):
    # The last hidden layer after its ReLU (fc7 in the paper), evaluation mode (no dropout).
    net.forward(x, train=False, keep_activations=True)
    features = net.activations[net.last_hidden_layer()].reshape(len(x), -1)  # (N, D)
    dist = np.sqrt(((features[queries][:, None] - features[None]) ** 2).sum(axis=2))  # (Q, N)
    dist[np.arange(len(queries)), queries] = np.inf  # an image is not its own neighbour
    return np.argsort(dist, axis=1)[:, :k]


register(Exercise(
    name="nearest_by_fc7", lesson=10,
    task="for each query image, the k nearest other images by last-hidden-layer distance",
    signature="def nearest_by_fc7(net, x, queries, k):",
    cases=_nearest_cases, outputs=("indices",),
    reference=_own_nearest,
    reference_name="tinyalex.lessons.lesson10_what_it_learned.nearest_others("
                   "last_hidden(net, x), ...)",
    solution=nearest_by_fc7, diagnose=_diagnose_nearest,
    hint="net.forward(x, train=False, keep_activations=True); the features are "
         "net.activations[name] of the last hidden layer's ReLU (hidden_layer(net)); "
         "then Euclidean distances, the query itself excluded, np.argsort."))


def _saliency_cases():
    cases = []
    for seed, (n, size) in enumerate([(3, 9), (2, 9), (4, 9), (1, 9)]):
        x = randn((n, 3, size, size), seed + 500)
        classes = np.random.default_rng(seed + 510).integers(0, 5, n)
        cases.append(Case((_tiny_net(seed + 20), x, classes),
                          label=f"{n} images, classes {classes.tolist()}, seed {seed}"))
    return cases


def _gradient_variant(net, x, classes, dlogits_of, train=False):
    net.dropout_step = 0  # a fresh net's first training pass: the masks a student's drew
    logits = net.forward(x, train=train)
    return net.backward(dlogits_of(logits), input_grad=True)["input"]


def _diagnose_saliency(case, got, want):
    net, x, classes = case.args
    n = len(x)
    onehot = np.eye(net.config.num_classes)[classes]

    def loss_grad(logits):
        from tinyalex import layers as L

        return L.softmax_cross_entropy(logits, classes)[1]

    def prob_grad(logits):
        from tinyalex import layers as L

        p = L.softmax(logits)
        p_c = p[np.arange(n), classes][:, None]
        return p_c * (onehot - p)   # d p[c] / d logits

    return first_match(got["grad"], [
        ("the other classes' scores are in it too (dlogits all ones): set dlogits to 1 at "
         "(n, classes[n]) and 0 everywhere else", _gradient_variant(
             net, x, classes, lambda logits: np.ones_like(logits))),
        ("that is the gradient of the loss (softmax cross-entropy), which mixes in every "
         "class and points the other way; use the class's score, the logit itself",
         _gradient_variant(net, x, classes, loss_grad)),
        ("that is the loss's gradient with its sign flipped; it still mixes in the other "
         "classes through the softmax: use the logit itself", _gradient_variant(
             net, x, classes, lambda logits: -loss_grad(logits))),
        ("that is the gradient of the softmax probability; the saliency of section 6.1's "
         "successors uses the class score (the logit, before the softmax)",
         _gradient_variant(net, x, classes, prob_grad)),
        ("dropout was on: forward with train=False", _gradient_variant(
            net, x, classes, lambda logits: onehot.astype(logits.dtype), train=True)),
        ("divided by the batch size: each image's score is its own, no mean",
         _gradient_variant(net, x, classes, lambda logits: onehot / n)),
    ])


register(Exercise(
    name="class_score_gradient", lesson=10,
    task="the gradient of each image's class score (its logit) with respect to the image",
    signature="def class_score_gradient(net, x, classes):",
    cases=_saliency_cases, outputs=("grad",),
    reference=class_score_gradient,
    reference_name="tinyalex.lessons.lesson10_what_it_learned.class_score_gradient",
    solution=class_score_gradient, diagnose=_diagnose_saliency,
    hint="Forward with dropout off; then start the backward pass from the gradient of each "
         "image's class score with respect to the logits (what is d logits[n, c] / d logits?); "
         "net.backward(..., input_grad=True) returns the input's gradient too."))
