"""Softmax cross-entropy, the training objective of the 1000-way classifier (section 3.5)."""

from __future__ import annotations

from tinyalex.backend import get_array_module
from tinyalex.layers._checks import check_array


def log_softmax(logits):
    """log softmax over the last axis, stable: the row maximum is subtracted before exp."""
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    """Class probabilities (N, classes) from logits (N, classes); rows sum to 1."""
    xp = get_array_module(logits)
    return xp.exp(log_softmax(logits))


def softmax_cross_entropy(logits, labels):
    """Mean negative log-likelihood of the true classes, and its gradient.

    Inputs: logits (N, classes) float; labels (N,) integers in [0, classes).
    Returns: loss, a 0-d scalar of logits' dtype (mean over the batch), and
        dlogits (N, classes) = (softmax(logits) - onehot(labels)) / N.
    """
    check_array("softmax_cross_entropy", "logits", logits, 2)
    labels = get_array_module(logits).asarray(labels)
    check_labels("softmax_cross_entropy", labels, *logits.shape)
    return cross_entropy(logits, labels)


def check_labels(layer: str, labels, N: int, classes: int, check_range: bool = True) -> None:
    """ValueError (one line) unless labels is (N,) integers in [0, classes). The range check
    reads the labels' minimum and maximum (on a GPU, a wait for the queued work); with
    ``check_range=False`` only the shape and dtype are checked."""
    if tuple(labels.shape) != (N,):
        raise ValueError(f"{layer}: labels must have shape ({N},) to match logits "
                         f"({N}, {classes}), got {tuple(labels.shape)}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{layer}: labels must be integers (class indices), got {labels.dtype}")
    if check_range and N and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(f"{layer}: labels must be in [0, {classes}) for {classes} classes, "
                         f"got values from {int(labels.min())} to {int(labels.max())}")


def cross_entropy(logits, labels):
    """(loss, dlogits) of softmax_cross_entropy for labels already checked (same module as
    logits): loss = -mean(log_softmax(logits)[n, labels[n]]); dlogits = (p - onehot) / N."""
    xp = get_array_module(logits)
    N = logits.shape[0]
    log_probs = log_softmax(logits)
    rows = xp.arange(N)
    loss = -log_probs[rows, labels].mean()
    dlogits = xp.exp(log_probs)  # softmax(logits), (N, classes)
    dlogits[rows, labels] -= 1
    dlogits /= N
    return loss, dlogits
