"""Classify image files with a trained network: ``python -m tinyalex.predict``.

    python -m tinyalex.predict photo.jpg other.png --checkpoint runs/.../best.npz

Each image goes through the same preprocessing as the validation images (shorter side to the
preset's image size, central square, centre crop, the training mean subtracted) and the top
five classes are printed with their softmax probabilities.
"""

from __future__ import annotations

# isort: off
import tinyalex.openblas  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on

import argparse
import sys

import numpy as np

from tinyalex import cli, data
from tinyalex.backend import to_device, to_numpy
from tinyalex.evaluate import load_trained
from tinyalex.layers import softmax


def predict_files(net, stats: dict, paths, top: int = 5) -> list[list[tuple[int, float]]]:
    """For each image file, the ``top`` (class index, probability) pairs, best first."""
    size = net.config.image_size
    images = np.stack([data.load_image(path, size) for path in paths])  # uint8 (B, S, S, 3)
    x = data.center_crop_batch(images, stats["mean"], net.config.input_size)
    probs = to_numpy(softmax(net.forward(to_device(x, net.device))))  # (B, classes)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return [[(int(c), float(p[c])) for c in row] for row, p in zip(order, probs, strict=True)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyalex.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    p.add_argument("--checkpoint", required=True, help="a .npz checkpoint (or a run folder)")
    p.add_argument("--top", type=int, default=5, help="how many classes to show")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"))
    args = p.parse_args(argv)
    net, stats, meta = load_trained(args.checkpoint, args.device)
    classes = meta["classes"]
    for path, ranked in zip(args.images, predict_files(net, stats, args.images, args.top),
                            strict=True):
        print(path)
        for rank, (c, prob) in enumerate(ranked, start=1):
            print(f"  {rank}. {classes[c]:<24} {100 * prob:6.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
