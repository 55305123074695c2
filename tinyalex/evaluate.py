"""Top-1 / top-5 evaluation, and ``python -m tinyalex.evaluate``.

    python -m tinyalex.evaluate --checkpoint runs/.../best.npz [--data PATH] [--ten-crop]

The split is the data set's test set where it has one (fashion-mnist, mnist:PATH: the t10k
images, which training never opens), else the validation split; ``--split`` picks another.

Centre crop by default; ``--ten-crop`` averages the softmax outputs of the four corner and
centre crops and their reflections (section 4.1). The mean image subtracted is the one
stored in the checkpoint (the training set's), never recomputed on the evaluation data.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from tinyalex import cli, data
from tinyalex.backend import to_device, to_numpy
from tinyalex.layers import softmax_cross_entropy


def topk_correct(scores, labels, k: int) -> int:
    """How many rows of NumPy scores (N, classes) have their true label among the k highest."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (N, k) class indices, best first
    return int((top == np.asarray(labels)[:, None]).any(axis=1).sum())


def evaluate(net, image_set, stats: dict, batch_size: int = 256, ten_crop: bool = False,
             num_workers: int = 0) -> dict:
    """Loss, top-1 and top-5 accuracy of ``net`` on an ImageSet (dropout off).

    Returns {"loss", "top1", "top5", "count"}; accuracies are fractions in [0, 1]. The loss is
    the mean cross-entropy of the centre crop (of the averaged probabilities with ten-crop).
    """
    device = net.device
    crop = net.config.input_size
    total_loss = top1 = top5 = count = 0.0
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
        count += n
    count = max(count, 1)
    return {"loss": total_loss / count, "top1": top1 / count, "top5": top5 / count,
            "count": int(count)}


def load_trained(checkpoint_path, device: str = "auto"):
    """(net, stats, meta) from a checkpoint: the network with its weights, on ``device``."""
    from tinyalex import checkpoint
    from tinyalex.backend import resolve_device
    from tinyalex.model import AlexNet, AlexNetConfig

    arrays, meta = checkpoint.load(checkpoint_path)
    config = AlexNetConfig.from_dict(meta["config"])
    net = AlexNet(config, seed=0)
    for name in net.params:
        if name not in arrays.get("param", {}):
            raise checkpoint.CheckpointError(f"{checkpoint_path} lacks parameter {name}: it "
                                             "is damaged; use another checkpoint")
        net.params[name] = arrays["param"][name].astype(np.float32)
    try:
        net.to(resolve_device(device))
    except ValueError as e:
        raise cli.UserError(str(e)) from None
    return net, arrays["data"], meta


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tinyalex.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a .npz checkpoint (or a run folder)")
    p.add_argument("--data", default=None,
                   help="data set (folder, cifar10:PATH, fashion-mnist[:PATH], mnist:PATH or "
                        "builtin); default: the one the checkpoint was trained on")
    p.add_argument("--split", choices=("test", "val", "train"), default=None,
                   help="default: test where the data set has a test set, else val")
    p.add_argument("--ten-crop", action="store_true", help="average ten crops (section 4.1)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto", choices=("cpu", "gpu", "auto"))
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    net, stats, meta = load_trained(args.checkpoint, args.device)
    spec = args.data or meta["data"]
    name = args.split or ("test" if data.has_test_split(spec) else "val")
    if name == "test":
        split = data.open_test_split(spec, net.config.image_size, seed=meta["seed"])
    else:
        train_set, val_set = data.open_splits(spec, net.config.image_size, seed=meta["seed"])
        split = val_set if name == "val" else train_set
    if split.classes != meta["classes"]:
        raise cli.UserError(f"the classes of {spec} differ from the checkpoint's "
                            f"({len(split.classes)} vs {len(meta['classes'])}): evaluate "
                            "on the data set the network was trained on")
    result = evaluate(net, split, stats, args.batch_size, ten_crop=args.ten_crop)
    mode = "ten-crop" if args.ten_crop else "centre crop"
    print(f"{name} ({result['count']} images, {mode}): top-1 {100 * result['top1']:.2f}%  "
          f"top-5 {100 * result['top5']:.2f}%  loss {result['loss']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
