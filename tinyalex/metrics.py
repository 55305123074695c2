"""What a network gets right: top-1 / top-5 accuracy, the confusion matrix, and the
validation pass of a training run (section 6 reports top-1 and top-5 error rates).

The library half of ``python -m tinyalex.evaluate`` (which adds the command line, checkpoints
and the test split): the training run (``tinyalex.run``) calls ``evaluate`` after every
epoch, the lessons and benchmarks call the counting functions.
"""

from __future__ import annotations

import numpy as np

from tinyalex import data
from tinyalex.backend import to_device, to_numpy
from tinyalex.layers import softmax, softmax_cross_entropy


def has_top5(num_classes: int) -> bool:
    """Whether top-5 accuracy means anything: with 5 classes or fewer it is always 100%."""
    return num_classes > 5


def topk_correct(scores, labels, k: int) -> int:
    """How many rows of NumPy scores (N, classes) have their true label among the k highest."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (N, k) class indices, best first
    return int((top == np.asarray(labels)[:, None]).any(axis=1).sum())


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """int64 (classes, classes): entry [t, p] counts the images of true class t predicted as p.

    labels, predictions: integer class indices (N,). The diagonal holds the correct answers;
    a row sums to the number of images of that class.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"confusion_matrix: labels {labels.shape} and predictions "
                         f"{predictions.shape} differ in shape")
    flat = labels * num_classes + predictions  # one bin per (true, predicted) pair
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes,
                                                                         num_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """float64 (classes,): the fraction of each class's images classified correctly (NaN for a
    class without images)."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / totals, np.nan)


def evaluate(net, image_set, stats: dict, batch_size: int = 256, ten_crop: bool = False,
             num_workers: int = 0, keep_answers: bool = False) -> dict:
    """Loss, top-1 and top-5 accuracy and the confusion matrix of ``net`` on an ImageSet
    (dropout off).

    Returns {"loss", "top1", "top5", "count", "confusion"}; accuracies are fractions in
    [0, 1], confusion is ``confusion_matrix`` of the top-1 answers. The loss is the mean
    cross-entropy of the centre crop (of the averaged probabilities with ten-crop).
    keep_answers: also return, in the image set's order, "predictions" (N,) int64, the top-1
    class of each image, and "confidence" (N,) float64, the softmax probability given to it.
    """
    device = net.device
    crop = net.config.input_size
    num_classes = net.config.num_classes
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    total_loss = top1 = top5 = count = 0.0
    predictions, confidence = [], []
    if ten_crop:
        batches = ((image_set.images[i : i + batch_size],
                    np.asarray(image_set.labels[i : i + batch_size]))
                   for i in range(0, len(image_set), batch_size))
    else:
        batches = data.BatchLoader(image_set, batch_size, crop, stats, train=False,
                                   num_workers=num_workers)
    for x, y in batches:
        labels = np.asarray(y)
        n = len(labels)
        if ten_crop:
            scores = data.ten_crop_predict(
                lambda crops: net.forward(to_device(crops, device)), np.asarray(x), crop,
                stats["mean"])  # averaged softmax outputs (n, classes)
            loss = -np.log(np.maximum(scores[np.arange(n), labels], 1e-12)).mean()
        else:
            logits = net.forward(to_device(x, device))
            loss, _ = softmax_cross_entropy(logits, to_device(labels, device))
            scores = to_numpy(logits)
        total_loss += float(loss) * n
        top1 += topk_correct(scores, labels, 1)
        top5 += topk_correct(scores, labels, 5)
        predicted = np.argmax(scores, axis=1)
        confusion += confusion_matrix(labels, predicted, num_classes)
        count += n
        if keep_answers:
            probabilities = scores if ten_crop else to_numpy(softmax(logits))
            predictions.append(predicted)
            confidence.append(np.asarray(probabilities, np.float64)[np.arange(n), predicted])
    count = max(count, 1)
    result = {"loss": total_loss / count, "top1": top1 / count, "top5": top5 / count,
              "count": int(count), "confusion": confusion}
    if keep_answers:
        result["predictions"] = np.concatenate(predictions).astype(np.int64)
        result["confidence"] = np.concatenate(confidence)
    return result
