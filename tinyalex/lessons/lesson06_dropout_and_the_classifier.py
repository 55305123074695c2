"""Lesson 6, dropout and the classifier (``notebooks/06_dropout_and_the_classifier.ipynb``).

Exercises: inverted dropout (section 4.2), the fully connected layer's backward pass, softmax
cross-entropy and its gradient. Figure: overlaid histograms (activations with and without
dropout).
"""


from __future__ import annotations

import numpy as np

from tinyalex import layers
from tinyalex.lessons import plots
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    close,
    dims,
    first_match,
    randn,
    register,
)

LESSON = Lesson(
    6, "06_dropout_and_the_classifier.ipynb", "Dropout, the classifier and its loss",
    ("4.2", "5"),
    "inverted dropout against the paper's test-time halving, fully connected layers, "
    "softmax cross-entropy and its gradient")


# ---- the lesson's figures ------------------------------------------------------------------

def plot_histograms(arrays: dict, xlabel: str, title: str = "how the values are distributed",
                    bins: int = 60,
                    log: bool = False, ylabel: str = "count"):
    """Overlaid histograms of several arrays (e.g. activations before and after LRN)."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    values = {label: np.asarray(a, dtype=np.float64).ravel() for label, a in arrays.items()}
    low = min(v.min() for v in values.values())
    high = max(v.max() for v in values.values())
    edges = np.linspace(low, high, bins + 1)
    for label, v in values.items():
        ax.hist(v, bins=edges, alpha=0.5, label=f"{label} (mean {v.mean():.3g}, std "
                f"{v.std():.3g})", log=log)
    ax.set(xlabel=xlabel, ylabel=ylabel + (" (log scale)" if log else ""), title=title)
    if not log:
        ax.set_ylim(top=1.3 * ax.get_ylim()[1])  # room for the legend above the bars
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---- the exercises -------------------------------------------------------------------------

def _dropout_cases():
    values = [((5, 13), 0.5), ((2, 3, 4, 5), 0.3), ((64, 40), 0.8), ((10, 7), 0.1)]
    return [Case((randn(shape, seed), p), label=f"x {dims(shape)}, p={p}",
                 extra=dict(seed=seed + 90)) for seed, (shape, p) in enumerate(values)]


def _call_dropout(fn, case):
    x, p = case.args
    return fn(x, p, np.random.default_rng(case.extra["seed"]))


def _diagnose_dropout(case, got, want):
    x, p = case.args
    u = np.random.default_rng(case.extra["seed"]).random(x.shape)
    out, mask = np.asarray(got["out"]), np.asarray(got["mask"])
    if out.shape != x.shape or mask.shape != x.shape:
        return None
    message = first_match(mask, [
        ("dropout's kept units are not rescaled by 1/(1-p): inverted dropout divides the kept "
         "units by 1 - p at train time, so the expected output is x", (u >= p) * 1.0),
        ("your mask keeps a unit when u < p, i.e. with probability p; a unit is DROPPED with "
         "probability p: keep it when u >= p", (u < p) / (1 - p)),
        ("your mask keeps a unit with probability p (u < p) and scales by 1/p; drop with "
         "probability p: keep when u >= p, scale by 1/(1-p)", (u < p) / p),
        ("multiplying by 1 - p is the paper's TEST-time factor; inverted dropout divides the "
         "kept units by 1 - p at train time", (u >= p) * (1 - p)),
    ])
    if message is None and not close(out, x * mask):
        message = "out must be x * mask"
    if message is None:
        kept = np.mean(mask != 0)
        values = np.unique(np.round(mask[mask != 0], 6))
        if abs(kept - (1 - p)) < 0.2 and np.allclose(values, 1 / (1 - p)):
            message = ("your mask looks like a fair dropout mask but is another draw: draw "
                       "u = rng.random(x.shape) once and keep the units where u >= p, so the "
                       "checker can compare")
    return message


def dropout_forward(x, p, rng):
    u = rng.random(x.shape)  # one uniform number in [0, 1) per unit
    mask = (u >= p) / (1 - p)  # kept with probability 1 - p, and scaled up: inverted dropout
    return x * mask, mask


register(Exercise(
    name="dropout_forward", lesson=6,
    answers=(layers.dropout_forward,),
    task="inverted dropout at train time: (out, mask)",
    signature="def dropout_forward(x, p, rng):",
    cases=_dropout_cases, outputs=("out", "mask"), call=_call_dropout,
    reference=dropout_forward,
    reference_name=("tinyalex.lessons.dropout_forward, which is "
                    "tinyalex.layers.dropout_forward with float64 draws"),
    solution=dropout_forward, diagnose=_diagnose_dropout,
    hint="Draw one uniform number per unit with rng.random(x.shape); a unit is kept when its "
         "number is >= p. What must the kept units be multiplied by so that the expected "
         "output is x itself? Return the output and the mask (0 or that factor)."))


def _linear_cases():
    values = [((4, 9), 5), ((3, 2, 3, 5), 7), ((1, 6), 2), ((5, 4, 1, 1), 3)]
    cases = []
    for seed, (xs, m) in enumerate(values):
        x = randn(xs, seed)
        w = randn((m, int(np.prod(xs[1:]))), seed + 10)
        cases.append(Case((randn((xs[0], m), seed + 20), x, w),
                          label=f"x {dims(xs)}, w {dims(w)}"))
    return cases


def _own_linear_backward(dout, x, w):
    _, cache = layers.linear_forward(x, w, np.zeros(w.shape[0], dtype=w.dtype))
    return layers.linear_backward(dout, cache)


def _diagnose_linear(case, got, want):
    dout, x, w = case.args
    dx, dw, db = (np.asarray(got[k]) for k in ("dx", "dw", "db"))
    if dx.shape != x.shape and dx.size == x.size:
        return f"dx must have x's shape {x.shape} (fc6 reads the flattened pool5): reshape"
    if dw.shape != w.shape and dw.shape == w.T.shape:
        return "dw has w's layout (M, D), one row per output unit: dout.T @ x, not x.T @ dout"
    return first_match(db, [("db sums dout over the batch (each row added b once), not a "
                              "mean", dout.mean(axis=0))])


def linear_backward(dout, x, w):
    x2d = x.reshape(x.shape[0], -1)  # (N, D): fc6 reads the flattened pool5
    dx = (dout @ w).reshape(x.shape)
    dw = dout.T @ x2d  # (M, D), the layout of w
    db = dout.sum(axis=0)  # the bias was added to every row of the batch
    return dx, dw, db


register(Exercise(
    name="linear_backward", lesson=6,
    answers=(layers.linear_backward,),
    task="the gradients dx, dw, db of a fully connected layer out = x w^T + b",
    signature="def linear_backward(dout, x, w):",
    cases=_linear_cases, outputs=("dx", "dw", "db"),
    reference=_own_linear_backward, reference_name="tinyalex.layers.linear_backward",
    solution=linear_backward, diagnose=_diagnose_linear,
    hint="Flatten x to (N, D); dx = dout @ w (then back to x's shape), dw = dout.T @ x, "
         "db = dout summed over the batch."))


def _softmax_cases():
    values = [((4, 5), 1.0, 0), ((3, 10), 5.0, 0), ((2, 3), 1.0, 1000.0), ((1, 2), 2.0, 0),
              ((6, 4), 3.0, -500.0)]
    cases = []
    for seed, (shape, spread, shift) in enumerate(values):
        logits = randn(shape, seed, spread) + shift
        labels = np.random.default_rng(seed + 5).integers(0, shape[1], shape[0])
        cases.append(Case((logits, labels), label=f"logits {dims(logits)}"
                          + (f" around {shift:g}" if shift else "")))
    return cases


def _diagnose_softmax(case, got, want):
    logits, labels = case.args
    loss, dlogits = np.asarray(got["loss"], dtype=np.float64), np.asarray(got["dlogits"])
    N = logits.shape[0]
    if not np.all(np.isfinite(loss)) or not np.all(np.isfinite(dlogits)):
        return ("exp overflowed: subtract each row's maximum from the logits first (softmax "
                "does not change, exp cannot overflow)")
    probs = layers.softmax(logits)
    onehot = np.eye(logits.shape[1])[labels]
    if not close(loss, want["loss"]):
        return first_match(loss, [
            ("the loss is the MEAN over the batch of -log p[label], not the sum",
             want["loss"] * N)])
    return first_match(dlogits, [
        ("dlogits is N times too large: the loss is a mean over the batch, so its gradient "
         "is (softmax - onehot) / N", probs - onehot),
        ("subtract 1 at the true class: the gradient is (softmax - onehot) / N",
         probs / N),
        ("the gradient's sign is flipped: (softmax - onehot) / N, not (onehot - softmax) / N",
         (onehot - probs) / N),
    ])


def softmax_cross_entropy(logits, labels):
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # exp cannot overflow now
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), labels].mean()
    dlogits = np.exp(log_probs)  # softmax
    dlogits[np.arange(N), labels] -= 1  # p - onehot(label)
    return loss, dlogits / N  # the loss is a mean over the batch


register(Exercise(
    name="softmax_cross_entropy", lesson=6,
    answers=(layers.softmax_cross_entropy,),
    task="the mean cross-entropy loss of softmax(logits) and its gradient",
    signature="def softmax_cross_entropy(logits, labels):",
    cases=_softmax_cases, outputs=("loss", "dlogits"),
    reference=layers.softmax_cross_entropy, reference_name="tinyalex.layers.softmax_cross_entropy",
    solution=softmax_cross_entropy, diagnose=_diagnose_softmax,
    hint="Subtract the row max, take log-softmax, loss = -mean(log p[label]); the gradient "
         "is (p - onehot) / N."))
