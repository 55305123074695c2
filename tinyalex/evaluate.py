"""Top-1 / top-5 evaluation, per-class accuracy and the confusion matrix:
``python -m tinyalex.evaluate``.

    python -m tinyalex.evaluate --checkpoint runs/RUN [--data PATH] [--ten-crop]

A run folder means its best.npz (the epoch with the best validation top-1; last.npz when
no epoch has finished); pass a .npz file to choose another. The output names the file used.

The split is the data set's test set where it has one (fashion-mnist, mnist:PATH: the t10k
images, which training never opens), else the validation split; ``--split`` picks another.

Centre crop by default; ``--ten-crop`` averages the softmax outputs of the four corner and
centre crops and their reflections (section 4.1). The mean image subtracted is the one
stored in the checkpoint (the training set's), never recomputed on the evaluation data.
Top-5 is reported only with more than five classes (with five or fewer it is always 100%).
"""

from __future__ import annotations

# isort: off
import tinyalex.threads  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on

import argparse
import sys
from pathlib import Path

import numpy as np

from tinyalex import cli, data
from tinyalex.data import class_difference

# The counting functions and the evaluation pass live in tinyalex.metrics (the training run
# uses them too); they are named here as well, where a reader of this program looks for them.
from tinyalex.metrics import (  # noqa: F401
    confusion_matrix,
    evaluate,
    has_top5,
    per_class_accuracy,
    topk_correct,
)


def default_split(spec) -> str:
    """"test" for a data set with a test set of its own (fashion-mnist, mnist:PATH), else
    "val": the split ``evaluate`` and ``viz confusion|mistakes`` use when none is named."""
    return "test" if data.has_test_split(spec) else "val"


def open_split(spec, name: str, image_size: int, seed: int):
    """The ImageSet called ``name`` ("test", "val" or "train") of data set ``spec``, with
    the train/val split drawn by ``seed`` as in training (a DataError names a missing one)."""
    if name == "test":
        return data.open_test_split(spec, image_size, seed=seed)
    train_set, val_set = data.open_splits(spec, image_size, seed=seed)
    return val_set if name == "val" else train_set


def same_classes(image_set, meta: dict, spec) -> None:
    """Raise a one-line UserError when ``image_set``'s classes are not the checkpoint's."""
    if image_set.classes != meta["classes"]:
        raise cli.UserError(f"the classes of {spec} differ from the checkpoint's ("
                            f"{class_difference(image_set.classes, meta['classes'])}): "
                            "use the data set the network was trained on")


def checkpoint_file(path) -> Path:
    """The checkpoint a path means: a .npz as given; a run folder means its best.npz (the
    best validation top-1), or last.npz when no epoch has finished yet."""
    path = Path(path)
    if path.is_dir():
        best = path / "best.npz"
        return best if best.is_file() else path / "last.npz"
    return path


def describe_checkpoint(path, meta: dict) -> str:
    """One line naming the checkpoint file and what it holds (for the programs' output)."""
    history = meta.get("history") or []
    epochs = meta.get("hyper", {}).get("epochs")
    if not history:
        return f"checkpoint {path} (no finished epoch)"
    row = history[-1]
    which = "best val top-1" if Path(path).name == "best.npz" else "val top-1"
    of = f" of {epochs}" if epochs else ""
    return f"checkpoint {path} (epoch {row['epoch']}{of}, {which} {100 * row['val_top1']:.2f}%)"


def load_trained(checkpoint_path, device: str = "auto", impl: str | None = None):
    """(net, stats, meta) from a checkpoint: the network with its weights, on ``device``,
    computing with implementation ``impl`` (default auto; see tinyalex.backend).

    checkpoint_path: a .npz file, or a run folder (its best.npz, see ``checkpoint_file``).
    """
    from tinyalex import checkpoint
    from tinyalex.backend import resolve_device
    from tinyalex.model import AlexNet, AlexNetConfig

    checkpoint_path = checkpoint_file(checkpoint_path)
    arrays, meta = checkpoint.load(checkpoint_path)
    config = AlexNetConfig.from_dict(meta["config"])
    net = AlexNet(config, seed=0, impl=impl or "auto")
    for name in net.params:
        if name not in arrays.get("param", {}):
            raise checkpoint.CheckpointError(f"{checkpoint_path} lacks parameter {name}: it "
                                             "is damaged; use another checkpoint")
        net.params[name] = arrays["param"][name].astype(np.float32)
    net.to(resolve_device(device))  # a SettingError is one line (cli.run)
    return net, arrays["data"], meta


def build_parser() -> argparse.ArgumentParser:
    """The command line of this program (``--help`` shows it)."""
    p = argparse.ArgumentParser(prog="python -m tinyalex.evaluate",
                                description=cli.description(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="a .npz checkpoint, or a run folder: its best.npz (best val top-1)")
    p.add_argument("--data", default=None,
                   help="data set (folder, cifar10:PATH, fashion-mnist[:PATH], mnist:PATH or "
                        "builtin); default: the one the checkpoint was trained on")
    p.add_argument("--split", choices=("test", "val", "train"), default=None,
                   help="which split to evaluate (default: test where the data set has a test "
                        "set, else val)")
    p.add_argument("--ten-crop", action="store_true", help="average ten crops (section 4.1)")
    p.add_argument("--batch-size", type=int, default=256,
                   help="images per forward pass (default 256; only memory and speed change)")
    p.add_argument("--device", default="auto", choices=("cpu", "gpu", "auto"),
                   help="where to compute (default auto: the GPU when CuPy sees one)")
    cli.add_impl_option(p)
    return p


def parse_args(argv):
    return build_parser().parse_args(argv)


def format_report(result: dict, classes: list[str], max_rows: int = 30) -> list[str]:
    """Lines of per-class accuracy and, for up to 20 classes, the confusion matrix."""
    confusion = result["confusion"]
    accuracy = per_class_accuracy(confusion)
    width = max(len(c) for c in classes)
    order = range(len(classes))
    lines = ["per-class top-1 (correct / images):"]
    if len(classes) > max_rows:
        order = np.argsort(accuracy, kind="stable")[:10]
        lines[0] = f"the 10 classes with the lowest top-1, of {len(classes)} (correct / images):"
    for c in order:
        total = int(confusion[c].sum())
        shown = "   -   " if total == 0 else f"{100 * accuracy[c]:6.2f}%"
        lines.append(f"  {classes[c]:<{width}}  {shown}  ({int(confusion[c, c])} / {total})")
    if len(classes) <= 20:
        lines.append("confusion matrix (rows: true class, columns: predicted class, numbered "
                     "as the rows):")
        cell = max(3, len(str(int(confusion.max()))))
        lines.append(f"  {'':<{width + 3}}  " + " ".join(f"{i:>{cell}}"
                                                         for i in range(len(classes))))
        for i, name in enumerate(classes):
            lines.append(f"  {i:>2} {name:<{width}}  " + " ".join(f"{int(v):>{cell}}"
                                                                 for v in confusion[i]))
    else:
        lines.append(f"confusion matrix: {len(classes)} classes, see "
                     "`python -m tinyalex.viz confusion`")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.positive("--batch-size", args.batch_size)
    path = checkpoint_file(args.checkpoint)
    net, stats, meta = load_trained(path, args.device, args.impl)
    spec = args.data or meta["data"]
    name = args.split or default_split(spec)
    split = open_split(spec, name, net.config.image_size, meta["seed"])
    same_classes(split, meta, spec)
    result = evaluate(net, split, stats, args.batch_size, ten_crop=args.ten_crop)
    mode = "ten-crop" if args.ten_crop else "centre crop"
    top5 = (f"  top-5 {100 * result['top5']:.2f}%" if has_top5(len(meta["classes"])) else "")
    print(describe_checkpoint(path, meta))
    print(f"{name} ({result['count']} images, {mode}): top-1 {100 * result['top1']:.2f}%"
          f"{top5}  loss {result['loss']:.4f}")
    print("\n".join(format_report(result, meta["classes"])))
    return 0


def command() -> int:
    """The ``tinyalex-evaluate`` console script."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(command())
