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
    layer = "softmax_cross_entropy"
    check_array(layer, "logits", logits, 2)
    xp = get_array_module(logits)
    labels = xp.asarray(labels)
    N, classes = logits.shape
    if labels.ndim != 1 or labels.shape[0] != N:
        raise ValueError(f"{layer}: labels must have shape ({N},) to match logits "
                         f"{tuple(logits.shape)}, got {tuple(labels.shape)}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{layer}: labels must be integers (class indices), got {labels.dtype}")
    if N and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(f"{layer}: labels must be in [0, {classes}) for {classes} classes, "
                         f"got values from {int(labels.min())} to {int(labels.max())}")
    log_probs = log_softmax(logits)
    rows = xp.arange(N)
    loss = -log_probs[rows, labels].mean()
    dlogits = xp.exp(log_probs)
    dlogits[rows, labels] -= 1
    dlogits /= N
    return loss, dlogits
