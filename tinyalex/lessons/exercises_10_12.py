"""The exercises of lessons 10 to 12: what the network learned, real images, the paper against
the 2012 code. Registered like those of ``exercises.py`` (same checker, same kind of
diagnoses: the known wrong answer is computed on the same case and compared)."""

from __future__ import annotations

import numpy as np

from tinyalex import layers
from tinyalex.evaluate import confusion_matrix
from tinyalex.lessons import learned, real, solutions
from tinyalex.lessons.checking import Case, Exercise, register
from tinyalex.lessons.exercises import _first_match, _rand, _shape
from tinyalex.optim import SGD

# ---- lesson 12: the paper and the code that won ------------------------------------------


def _lrn_2012_cases():
    values = [((2, 7, 3, 3), 5, 1e-4, 0.75, 60.0), ((1, 6, 2, 4), 3, 0.6, 0.75, 1.0),
              ((2, 9, 2, 2), 5, 2.0, 0.75, 1.0), ((1, 5, 3, 2), 5, 1.0, 0.5, 1.5)]
    return [Case((_rand(xs, seed, sc), size, scale, power),
                 label=f"x {_shape(xs)}, size={size}, scale={scale}, pow={power}")
            for seed, (xs, size, scale, power, sc) in enumerate(values)]


def _lrn(x, n, k, alpha, beta):
    return layers.lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)[0]


def _diagnose_lrn_2012(case, got, want):
    x, size, scale, power = case.args
    return _first_match(got["out"], [
        ("the code divides its scale by size before use (layer.py: scale /= size): alpha is "
         "scale / size, not scale", _lrn(x, size, 1.0, scale, power)),
        ("k is the code's minDiv, which defaults to 1 and is not set in the 2012 definitions; "
         "k = 2 is the paper's", _lrn(x, size, 2.0, scale / size, power)),
        ("that is the paper's formula with the code's number: the code divides the scale by "
         "size, and its k (minDiv) is 1, not 2", _lrn(x, size, 2.0, scale, power)),
        ("divide the scale by size; you multiplied", _lrn(x, size, 1.0, scale * size, power)),
    ])


register(Exercise(
    name="lrn_2012", lesson=12,
    task="the 2012 code's cmrnorm layer (scale, size, pow; minDiv unset) with lrn_forward",
    signature="def lrn_2012(x, size, scale, power):",
    cases=_lrn_2012_cases, outputs=("out",),
    reference=solutions.lrn_2012,
    reference_name="tinyalex.layers.lrn_forward(k=1, alpha=scale/size)",
    solution=solutions.lrn_2012, diagnose=_diagnose_lrn_2012,
    hint="Two conversions: the code's alpha is its scale divided by size, and its additive "
         "constant is 1 (minDiv's default)."))


def _conv1_2012_cases():
    values = [((2, 3, 13, 13), (6, 3, 3, 3), 1, 1, 0.5), ((1, 3, 15, 15), (8, 3, 5, 5), 2, 0, 1.0),
              ((2, 2, 12, 11), (5, 2, 3, 3), 1, 0, 0.2), ((1, 3, 19, 19), (4, 3, 7, 7), 2, 1, 2.0)]
    cases = []
    for seed, (xs, ws, stride, pad, alpha) in enumerate(values):
        x, w, b = _rand(xs, seed), _rand(ws, seed + 10), _rand(ws[:1], seed + 20, 0.5)
        conv = dict(stride=stride, pad=pad)
        lrn = dict(n=3 if seed % 2 else 5, k=1.0, alpha=alpha, beta=0.75)
        pool = dict(size=3, stride=2)
        cases.append(Case((x, w, b, conv, lrn, pool), label=f"x {_shape(x)}, w {_shape(w)}, "
                          f"stride {stride}, pad {pad}, LRN n={lrn['n']} alpha={alpha}"))
    return cases


def _diagnose_conv1_2012(case, got, want):
    x, w, b, conv, lrn, pool = case.args
    y = layers.conv_forward(x, w, b, **conv)[0]
    relu = layers.relu_forward(y)[0]
    if np.shape(got["out"]) == layers.lrn_forward(relu, **lrn)[0].shape and \
            np.shape(got["out"]) != np.shape(want["out"]):
        return "the max-pool is missing: conv -> ReLU -> max-pool -> LRN"
    return _first_match(got["out"], [
        ("that is the paper's order (LRN, then max-pool); the 2012 code pools conv1's ReLU "
         "outputs first and normalises the pooled maps",
         layers.maxpool_forward(layers.lrn_forward(relu, **lrn)[0], **pool)[0]),
        ("the ReLU comes right after the convolution: LRN's window sums the squares of the "
         "negative values too if the ReLU comes later",
         layers.relu_forward(layers.lrn_forward(layers.maxpool_forward(y, **pool)[0],
                                                **lrn)[0])[0]),
        ("the ReLU is missing (conv -> ReLU -> max-pool -> LRN)",
         layers.lrn_forward(layers.maxpool_forward(y, **pool)[0], **lrn)[0]),
    ])


register(Exercise(
    name="conv1_2012", lesson=12,
    task="the 2012 code's first block: conv -> ReLU -> max-pool -> LRN, from tinyalex's layers",
    signature="def conv1_2012(x, w, b, conv, lrn, pool):",
    cases=_conv1_2012_cases, outputs=("out",),
    reference=solutions.conv1_2012,
    reference_name="AlexNet with ConvSpec(pool_before_lrn=True), built from tinyalex.layers",
    solution=solutions.conv1_2012, diagnose=_diagnose_conv1_2012,
    hint="Four layer calls, each taking the previous output: layers.conv_forward(x, w, b, "
         "**conv)[0], then relu_forward, maxpool_forward(**pool), lrn_forward(**lrn)."))


_SGD_NAMES = ("conv1.w", "conv1.b", "conv2.w", "fc3.w", "fc3.b")


def _sgd_scaled_cases():
    shapes = {"conv1.w": (3, 2, 2, 2), "conv1.b": (3,), "conv2.w": (4, 3, 1, 1),
              "fc3.w": (2, 5), "fc3.b": (2,)}
    values = [({"conv1.w": 0.0, "conv1.b": 0.0}, 0.1, 0.9, 5e-4),
              ({"conv1.w": 0.1, "conv2.w": 0.0}, 0.5, 0.9, 0.05),
              ({"conv1.w": 0.0, "conv1.b": 0.0, "conv2.w": 0.0}, 0.2, 0.5, 0.1),
              ({"fc3.w": 2.0, "fc3.b": 0.0}, 0.05, 0.9, 0.2)]
    cases = []
    for seed, (scale, lr, m, wd) in enumerate(values):
        rng = np.random.default_rng(seed + 200)
        params = {n: rng.standard_normal(shapes[n]) for n in _SGD_NAMES}
        velocity = {n: 0.1 * rng.standard_normal(shapes[n]) for n in _SGD_NAMES}
        grads = {n: rng.standard_normal(shapes[n]) for n in _SGD_NAMES}
        cases.append(Case((params, velocity, grads, lr, m, wd, scale),
                          label=f"lr={lr}, momentum={m}, weight_decay={wd}, lr_scale={scale}"))
    return cases


def _call_sgd_scaled(fn, case):
    """Run the student's in-place step on copies; return (params, velocity) flattened in order."""
    params, velocity, grads, lr, m, wd, scale = case.args
    p = {n: a.copy() for n, a in params.items()}
    v = {n: a.copy() for n, a in velocity.items()}
    fn(p, v, {n: a.copy() for n, a in grads.items()}, lr, m, wd, dict(scale))
    if all(np.array_equal(p[n], params[n]) and np.array_equal(v[n], velocity[n]) for n in p):
        raise NotImplementedError  # nothing was updated: not done yet
    return (np.concatenate([p[n].ravel() for n in _SGD_NAMES]),
            np.concatenate([v[n].ravel() for n in _SGD_NAMES]))


def _own_sgd_scaled(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
    opt = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, impl="textbook",
              lr_scale=lr_scale)
    for name, v in velocity.items():
        opt.velocity[name][...] = v
    opt.step(params, grads)
    for name, v in velocity.items():
        v[...] = opt.velocity[name]


def _sgd_variant(case, rate_of, decay_rate_of=None, skip_zero=False, bias_decay=False):
    """The update of a case with another rule; rate_of(name) -> the rate of the gradient term."""
    params, velocity, grads, lr, m, wd, scale = case.args
    ws, vs = [], []
    for n in _SGD_NAMES:
        w, v = params[n].copy(), velocity[n].copy()
        if not (skip_zero and scale.get(n, 1.0) == 0):
            decay = wd if (n.endswith(".w") or bias_decay) else 0.0
            v = m * v - decay * (decay_rate_of or rate_of)(n) * w - rate_of(n) * grads[n]
            w = w + v
        ws.append(w.ravel())
        vs.append(v.ravel())
    return np.concatenate(ws)


def _diagnose_sgd_scaled(case, got, want):
    params, velocity, grads, lr, m, wd, scale = case.args

    def scaled(n):
        return lr * scale.get(n, 1.0)

    return _first_match(got["params"], [
        ("a parameter with factor 0 was skipped: with the paper's rule at rate 0 the velocity "
         "still decays (v = momentum v) and still moves w (w += v); only new steps stop",
         _sgd_variant(case, scaled, skip_zero=True)),
        ("the factors are ignored: each parameter's rate is lr * lr_scale.get(name, 1.0)",
         _sgd_variant(case, lambda n: lr)),
        ("weight decay must use the scaled rate too (v -= weight_decay * rate * w): a frozen "
         "layer should not keep shrinking", _sgd_variant(case, scaled, lambda n: lr)),
        ("the biases (*.b) get no weight decay (as in the 2012 code and tinyalex's SGD)",
         _sgd_variant(case, scaled, bias_decay=True)),
    ])


register(Exercise(
    name="sgd_step_scaled", lesson=12,
    task="the paper's SGD step over a dict of parameters, each at lr times its lr_scale factor",
    signature="def sgd_step_scaled(params, velocity, grads, lr, momentum, weight_decay, "
              "lr_scale):",
    cases=_sgd_scaled_cases, outputs=("params", "velocity"), call=_call_sgd_scaled,
    reference=_own_sgd_scaled, reference_name="tinyalex.optim.SGD(..., lr_scale=...)",
    solution=solutions.sgd_step_scaled, diagnose=_diagnose_sgd_scaled,
    hint="For each name: rate = lr * lr_scale.get(name, 1.0); decay only for names ending in "
         "'.w'; then v *= momentum; v -= decay * rate * w; v -= rate * g; w += v (in place)."))

# ---- lesson 10: what the network learned ---------------------------------------------------


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
    return _first_match(value, [
        ("that is colour / grey; the fraction is colour / total (the squares of all the "
         "weights), which stays between 0 and 1", colour / (3 * (grey**2).sum(axis=(1, 2, 3)))),
        ("that is the grey share; the exercise asks for the colour share (1 - yours)",
         1 - colour / total),
        ("the grey part is the mean over the CHANNELS (axis 1) at each pixel; you averaged "
         "over the pixels", ((w - spatial) ** 2).sum(axis=(1, 2, 3)) / total),
        ("square the differences: energy is a sum of squares",
         np.abs(w - grey).sum(axis=(1, 2, 3)) / np.abs(w).sum(axis=(1, 2, 3))),
    ])


register(Exercise(
    name="kernel_colourfulness", lesson=10,
    task="the share of each conv1 kernel's squared weights that is colour, not grey",
    signature="def kernel_colourfulness(w):",
    cases=_colour_cases, outputs=("fraction",),
    reference=learned.colourfulness,
    reference_name="tinyalex.lessons.learned.colourfulness",
    solution=solutions.kernel_colourfulness, diagnose=_diagnose_colour,
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
        x = _rand((n, 3, 9, 9), seed + 400)
        cases.append(Case((_tiny_net(seed), x, np.array(queries), k),
                          label=f"{n} images, queries {queries}, k={k}, seed {seed}"))
    return cases


def _nearest_variant(net, x, queries, k, layer=None, exclude=True, metric="euclid",
                     train=False):
    net.dropout_step = 0  # a fresh net's first training pass: the masks a student's drew
    net.forward(x, train=train, keep_activations=True)
    features = np.asarray(net.activations[layer or _last_relu(net)]).reshape(len(x), -1)
    q = features[queries]
    if metric == "cosine":
        norm = np.linalg.norm(features, axis=1) + 1e-12
        dist = -(q @ features.T) / (norm[queries][:, None] * norm[None])
    else:
        dist = np.sqrt(((q[:, None] - features[None]) ** 2).sum(axis=2))
    if exclude:
        dist[np.arange(len(queries)), queries] = np.inf
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def _last_relu(net) -> str:
    fc = [step.name for step in net.steps if step.kind == "fc"]
    return "relu" + fc[-2][2:]


def _own_nearest(net, x, queries, k):
    return learned.nearest_others(learned.last_hidden(net, x), queries, k)


def _diagnose_nearest(case, got, want):
    net, x, queries, k = case.args
    got_idx = np.asarray(got["indices"])
    if got_idx.shape == want["indices"].shape and np.any(got_idx[:, 0] == queries):
        return ("an image is its own nearest neighbour (distance 0): exclude the query itself "
                "(e.g. set its distance to infinity before sorting)")
    fc = [step.name for step in net.steps if step.kind == "fc"]
    first_hidden = "relu" + fc[0][2:]
    return _first_match(got_idx, [
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


register(Exercise(
    name="nearest_by_fc7", lesson=10,
    task="for each query image, the k nearest other images by last-hidden-layer distance",
    signature="def nearest_by_fc7(net, x, queries, k):",
    cases=_nearest_cases, outputs=("indices",),
    reference=_own_nearest,
    reference_name="tinyalex.lessons.learned.nearest_others(last_hidden(net, x), ...)",
    solution=solutions.nearest_by_fc7, diagnose=_diagnose_nearest,
    hint="net.forward(x, train=False, keep_activations=True); the features are "
         "net.activations[name] of the last hidden layer's ReLU (learned.hidden_layer(net)); "
         "then Euclidean distances, the query itself excluded, np.argsort."))


def _saliency_cases():
    cases = []
    for seed, (n, size) in enumerate([(3, 9), (2, 9), (4, 9), (1, 9)]):
        x = _rand((n, 3, size, size), seed + 500)
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

    return _first_match(got["grad"], [
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
    reference=learned.class_score_gradient,
    reference_name="tinyalex.lessons.learned.class_score_gradient",
    solution=solutions.class_score_gradient, diagnose=_diagnose_saliency,
    hint="logits = net.forward(x, train=False); dlogits zero except 1 at (n, classes[n]); "
         "net.backward(dlogits, input_grad=True)['input']."))

# ---- lesson 11: real images ------------------------------------------------------------------


def _gray_cases():
    cases = []
    for seed, (n, size) in enumerate([(4, 28), (2, 9), (3, 12), (1, 5)]):
        rng = np.random.default_rng(seed + 600)
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        mean = (rng.random((3, size, size)) * 200).astype(np.float32)
        mean[:] = mean[0]  # a gray set's mean image is the same on the three channels
        cases.append(Case((images, mean), label=f"{n} images of {size}x{size}"))
    return cases


def _diagnose_gray(case, got, want):
    images, mean = case.args
    out = np.asarray(got["x"])
    n, s = images.shape[0], images.shape[1]
    if out.shape == (n, s, s, 3):
        return "channels last: the network reads (N, 3, S, S), channels first"
    if out.shape == (n, 1, s, s):
        return ("one channel: conv1's kernels are 3 deep (section 2's RGB); repeat the gray "
                "channel three times")
    if out.shape != (n, 3, s, s):
        return None
    rgb = np.repeat(images[:, None], 3, axis=1).astype(np.float64)
    if out.dtype.kind in "ui":
        return "uint8 arithmetic wraps around below 0: convert to float32 before subtracting"
    return _first_match(out, [
        ("the mean image is not subtracted (section 2: the only preprocessing)", rgb),
        ("subtract the mean IMAGE (a value per pixel and channel), not one number",
         rgb - mean.mean()),
        ("do not divide by 255: the network scales its input itself (input_scale); section 2 "
         "feeds the centred 0..255 values", rgb / 255 - mean),
        ("divide nothing: the centred 0..255 values, as section 2 says", (rgb - mean) / 255),
    ])


register(Exercise(
    name="gray_to_input", lesson=11,
    task="grayscale uint8 images (N, S, S) -> the network's input (N, 3, S, S), mean removed",
    signature="def gray_to_input(images, mean):",
    cases=_gray_cases, outputs=("x",),
    reference=lambda images, mean: real.to_input(real.gray_to_rgb(images), mean),
    reference_name="tinyalex.lessons.real.to_input(gray_to_rgb(images), mean)",
    solution=solutions.gray_to_input, diagnose=_diagnose_gray,
    hint="np.repeat(images[:, None], 3, axis=1) gives (N, 3, S, S); make it float32, then "
         "subtract the mean image."))


def _confusion_cases():
    cases = []
    for seed, (n, k) in enumerate([(50, 4), (200, 10), (7, 5), (30, 3)]):
        rng = np.random.default_rng(seed + 700)
        labels = rng.integers(0, k, n)
        predictions = np.where(rng.random(n) < 0.6, labels, rng.integers(0, k, n))
        if seed == 2:
            labels[:] = np.minimum(labels, k - 2)  # the last class never occurs
            predictions[:] = np.minimum(predictions, k - 2)
        cases.append(Case((labels, predictions, k), label=f"{n} images, {k} classes"))
    return cases


def _diagnose_confusion(case, got, want):
    labels, predictions, k = case.args
    counts = np.asarray(got["confusion"])
    right = want["confusion"]
    if counts.shape != right.shape:
        present = len(np.unique(np.concatenate([labels, predictions])))
        if counts.shape == (present, present):
            return ("the matrix is num_classes x num_classes even when a class never occurs "
                    "(np.unique of the labels misses it)")
        return None
    if counts.dtype.kind == "f" and np.allclose(counts.sum(axis=1)[right.sum(axis=1) > 0], 1):
        return "return the counts; the fractions of each row come later, for the plot"
    once = np.zeros_like(right)
    once[labels, predictions] = 1
    return _first_match(counts, [
        ("rows are the TRUE classes, columns the predicted ones: yours is the transpose",
         right.T),
        ("counts[labels, predictions] += 1 counts a repeated pair only once (fancy indexing "
         "does not accumulate): use np.add.at or a loop", once),
    ])


register(Exercise(
    name="confusion_counts", lesson=11,
    task="the confusion matrix: counts[t, p] = images of true class t predicted as p",
    signature="def confusion_counts(labels, predictions, num_classes):",
    cases=_confusion_cases, outputs=("confusion",),
    reference=confusion_matrix,
    reference_name="tinyalex.evaluate.confusion_matrix",
    solution=solutions.confusion_counts, diagnose=_diagnose_confusion,
    hint="Start from zeros (num_classes, num_classes), int64, and add 1 at (true, predicted) "
         "for every image: np.add.at(counts, (labels, predictions), 1)."))


def _pairs_cases():
    cases = []
    for seed, (k, count) in enumerate([(4, 3), (10, 5), (3, 6), (6, 1)]):
        rng = np.random.default_rng(seed + 800)
        confusion = rng.permutation(k * k).reshape(k, k).astype(np.int64)  # distinct counts
        confusion[np.arange(k), np.arange(k)] += 10 * k * k  # the diagonal is the largest
        cases.append(Case((confusion, count), label=f"{k} classes, the {count} largest"))
    return cases


def _diagnose_pairs(case, got, want):
    confusion, count = case.args
    pairs = np.asarray(got["pairs"])
    if pairs.shape != want["pairs"].shape:
        return None
    k = len(confusion)
    if np.any(pairs[:, 0] == pairs[:, 1]):
        return "the diagonal holds the CORRECT answers: leave it out (a class is not confused " \
               "with itself)"
    off = confusion.copy()
    np.fill_diagonal(off, -1)
    flat = np.argsort(-off.ravel(), kind="stable")[:count]
    rows, cols = np.unravel_index(flat, (k, k))
    fractions = off / np.maximum(confusion.sum(axis=0, keepdims=True), 1)
    np.fill_diagonal(fractions, -1)
    by_col = np.argsort(-fractions.ravel(), kind="stable")[:count]
    smallest = np.argsort(off.ravel(), kind="stable")
    smallest = smallest[off.ravel()[smallest] >= 0][:count]
    return _first_match(pairs, [
        ("your pairs are (predicted, true); return (true, predicted): the row, then the column",
         np.stack([cols, rows], axis=1)),
        ("those are the SMALLEST counts: sort in decreasing order",
         np.stack(np.unravel_index(smallest, (k, k)), axis=1)),
        ("rank by counts, not by fractions of the predicted class (columns)",
         np.stack(np.unravel_index(by_col, (k, k)), axis=1)),
    ])


register(Exercise(
    name="most_confused_pairs", lesson=11,
    task="the (true, predicted) pairs with the most mistakes, most first",
    signature="def most_confused_pairs(confusion, count):",
    cases=_pairs_cases, outputs=("pairs",),
    reference=real.most_confused,
    reference_name="tinyalex.lessons.real.most_confused",
    solution=solutions.most_confused_pairs, diagnose=_diagnose_pairs,
    hint="Copy the matrix, set its diagonal below every count, np.argsort(-m.ravel()) and "
         "np.unravel_index."))
