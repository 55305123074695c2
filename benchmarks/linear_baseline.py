"""How hard is the built-in data set? A linear softmax classifier on raw pixels, for contrast.

    python benchmarks/linear_baseline.py [--data builtin] [--epochs 30] [--lrs 1e-5,3e-5,...]

Trains ``logits = x w^T + b`` (tinyalex's own ``linear_forward``/``linear_backward`` and
``softmax_cross_entropy``) on the mini preset's input: 63x63 crops of the 72x72 images, the
training mean image subtracted, scaled by 1/64 like the network's input. SGD with momentum
0.9 and weight decay, for each learning rate of a small sweep; reports the best validation
top-1 over the sweep and the epochs -- an optimistic figure for the linear model (chosen on
val), to set beside the CNN's. Trained twice: on centre crops, and with the training
augmentation (random crops + flips + PCA lighting) from ``BatchLoader``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinyalex import data
from tinyalex.evaluate import topk_correct
from tinyalex.layers import linear_backward, linear_forward, softmax_cross_entropy
from tinyalex.model import PRESETS
from tinyalex.optim import SGD

MINI = PRESETS["mini"]
IMAGE_SIZE, CROP = MINI.image_size, MINI.input_size   # 72 and 63
INPUT_SCALE = np.float32(MINI.input_scale)             # 1/64


def accuracy(w, b, loader) -> float:
    correct = total = 0
    for x, y in loader:
        logits, _ = linear_forward(x * INPUT_SCALE, w, b)
        correct += topk_correct(logits, y, 1)
        total += len(y)
    return correct / total


def train_linear(train, val, stats, lr, epochs, augment, seed=0, weight_decay=5e-4):
    """Best val top-1 over the epochs of one SGD run."""
    classes = len(train.classes)
    dim = 3 * CROP * CROP
    rng = np.random.default_rng(seed)
    w = (0.001 * rng.standard_normal((classes, dim))).astype(np.float32)    # (K, D)
    b = np.zeros(classes, dtype=np.float32)
    params = {"fc.w": w, "fc.b": b}
    opt = SGD(params, lr=lr, weight_decay=weight_decay)  # the paper's update; biases not decayed
    val_loader = data.BatchLoader(val, 500, CROP, stats, train=False)
    best, losses = 0.0, []
    for epoch in range(epochs):
        loader = data.BatchLoader(train, 128, CROP, stats, train=True, seed=seed, epoch=epoch,
                                  flip=augment, lighting=augment, random_crop=augment)
        for x, y in loader:
            logits, cache = linear_forward(x * INPUT_SCALE, w, b)
            loss, dlogits = softmax_cross_entropy(logits, y)
            _, dw, db = linear_backward(dlogits, cache)
            opt.step(params, {"fc.w": dw, "fc.b": db})
            losses.append(float(loss))
        best = max(best, accuracy(w, b, val_loader))
    return best, float(np.mean(losses[-len(loader):]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="builtin")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lrs", default="0.00001,0.00003,0.0001,0.0003,0.001")
    args = parser.parse_args(argv)
    train, val = data.open_splits(args.data, IMAGE_SIZE)
    stats = data.compute_stats(train)
    print(f"{train}\n{val}\nlinear softmax on raw {CROP}x{CROP}x3 pixels, {args.epochs} epochs")
    for augment in (False, True):
        results = []
        for lr in (float(v) for v in args.lrs.split(",")):
            start = time.perf_counter()
            top1, loss = train_linear(train, val, stats, lr, args.epochs, augment)
            results.append(top1)
            print(f"  augment={augment!s:5} lr={lr:<6} best val top-1 {100 * top1:5.1f}%  "
                  f"final train loss {loss:.3f}  ({time.perf_counter() - start:.0f} s)")
        print(f"linear baseline (augment={augment}): best val top-1 {100 * max(results):.1f}% "
              f"(chance {100 / len(train.classes):.0f}%)")


if __name__ == "__main__":
    main()
