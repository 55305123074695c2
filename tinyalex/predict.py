"""Classify image files with a trained network: ``python -m tinyalex.predict``.

    python -m tinyalex.predict photo.jpg other.png --checkpoint runs/RUN
    python -m tinyalex.predict ~/holiday/ --checkpoint runs/RUN --csv predictions.csv
    python -m tinyalex.predict "shots/*.jpg" --checkpoint runs/RUN/last.npz --json -

Arguments are image files, folders (every image in them and in their subfolders) or glob
patterns (quoted, so that the shell leaves them to tinyalex; ``**`` reaches into
subfolders). A run folder given as --checkpoint means its best.npz (the best validation
top-1; last.npz when no epoch has finished); the output names the file used. Each image goes
through the same preprocessing as the validation images (shorter side to the preset's image
size, central square, centre crop, the training mean subtracted) and the top classes are
printed with their softmax probabilities, or written as CSV (path, rank, class,
probability) or JSON with --csv / --json (a file name, or - for standard output).
Files found in folders or by patterns that are not readable images are skipped and
counted; a file named on its own that is not an image is an error.
"""

from __future__ import annotations

# isort: off
import tinyalex.threads  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on

import argparse
import contextlib
import csv
import glob
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tinyalex import cli, data
from tinyalex.backend import to_device, to_numpy
from tinyalex.data.decode import describe_error
from tinyalex.evaluate import checkpoint_file, describe_checkpoint, load_trained
from tinyalex.layers import softmax

BATCH = 64  # images decoded and classified at a time (memory stays small for big folders)


def image_files(arguments: list[str]) -> list[tuple[Path, bool]]:
    """(path, named on its own) for every image an argument stands for, in order.

    A file is taken as given; a folder stands for the files under it whose extension Pillow
    reads; a pattern with * ? or [ for the files it matches. Raises UserError for a path
    that does not exist, a folder without images or a pattern matching nothing.
    """
    extensions = {ext.lower() for ext in Image.registered_extensions()}
    found = []
    for argument in arguments:
        path = Path(argument).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in extensions)
            if not files:
                raise cli.UserError(f"{argument} is a folder without image files: pass image "
                                    "files, a folder of images or a quoted pattern")
            found += [(p, False) for p in files]
        elif path.exists():
            found.append((path, True))
        elif any(ch in argument for ch in "*?["):
            files = sorted(Path(p) for p in glob.glob(str(path), recursive=True)
                           if Path(p).is_file())
            if not files:
                raise cli.UserError(f"no file matches {argument}")
            found += [(p, False) for p in files]
        else:
            raise cli.UserError(f"{argument} does not exist: pass image files, a folder of "
                                "images or a quoted pattern such as 'photos/*.jpg'")
    return found


def predict_images(net, stats: dict, images: np.ndarray, top: int = 5):
    """For uint8 images (B, S, S, 3), the ``top`` (class index, probability) pairs of each,
    best first."""
    x = data.center_crop_batch(images, stats["mean"], net.config.input_size)  # (B, 3, c, c)
    probs = to_numpy(softmax(net.forward(to_device(x, net.device))))         # (B, classes)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return [[(int(c), float(p[c])) for c in row] for row, p in zip(order, probs, strict=True)]


def predict_files(net, stats: dict, paths, top: int = 5) -> list[list[tuple[int, float]]]:
    """For each image file, the ``top`` (class index, probability) pairs, best first."""
    size = net.config.image_size
    images = np.stack([data.load_image(path, size) for path in paths])  # uint8 (B, S, S, 3)
    return predict_images(net, stats, images, top)


def classify(net, stats: dict, files: list[tuple[Path, bool]], top: int):
    """(results, skipped): results are (path, ranked pairs) for every readable image, in
    order, computed BATCH images at a time; skipped are (path, reason) of the files found
    in folders or by patterns that are not readable images. A file named on its own that
    cannot be read raises its DataError."""
    results, skipped, batch = [], [], []

    def flush():
        if batch:
            images = np.stack([image for _, image in batch])               # (B, S, S, 3)
            ranked = predict_images(net, stats, images, top)
            results.extend(zip([path for path, _ in batch], ranked, strict=True))
            batch.clear()

    for path, named in files:
        try:
            batch.append((path, data.load_image(path, net.config.image_size)))
        except data.DataError as e:
            if named:
                raise
            skipped.append((str(path), describe_error(e.__cause__) if e.__cause__ else str(e)))
        if len(batch) == BATCH:
            flush()
    flush()
    return results, skipped


def build_parser() -> argparse.ArgumentParser:
    """The command line of this program (``--help`` shows it)."""
    p = argparse.ArgumentParser(prog="python -m tinyalex.predict",
                                description=cli.description(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+",
                   help="image files, folders of images, or quoted glob patterns")
    p.add_argument("--checkpoint", required=True,
                   help="a .npz checkpoint, or a run folder: its best.npz (best val top-1)")
    p.add_argument("--top", type=int, default=5,
                   help="how many classes to show per image (default 5, at most all)")
    p.add_argument("--csv", default=None, metavar="FILE",
                   help="write path,rank,class,probability rows to FILE (- : standard output)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write the predictions as JSON to FILE (- : standard output)")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"),
                   help="where to compute (default cpu)")
    return p


def parse_args(argv):
    return build_parser().parse_args(argv)


def _open(target: str):
    """A file to write to: standard output for "-" (left open afterwards)."""
    return contextlib.nullcontext(sys.stdout) if target == "-" else open(target, "w", newline="")


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.positive("--top", args.top)
    if args.csv == "-" and args.json == "-":
        raise cli.UserError("--csv - and --json - both want standard output: send one of "
                            "them to a file")
    files = image_files(args.images)
    path = checkpoint_file(args.checkpoint)
    net, stats, meta = load_trained(path, args.device)
    classes = meta["classes"]
    top = min(args.top, len(classes))
    # what is said about the run goes to stderr when standard output carries CSV or JSON
    notes = sys.stderr if "-" in (args.csv, args.json) else sys.stdout
    print(describe_checkpoint(path, meta), file=notes)
    results, skipped = classify(net, stats, files, top)
    if args.csv is None and args.json is None:
        for image, ranked in results:
            print(image)
            for rank, (c, prob) in enumerate(ranked, start=1):
                print(f"  {rank}. {classes[c]:<24} {100 * prob:6.2f}%")
    if args.csv is not None:
        with _open(args.csv) as f:
            writer = csv.writer(f)
            writer.writerow(["path", "rank", "class", "probability"])
            for image, ranked in results:
                for rank, (c, prob) in enumerate(ranked, start=1):
                    writer.writerow([str(image), rank, classes[c], f"{prob:.6f}"])
    if args.json is not None:
        document = {"checkpoint": str(path), "classes": classes,
                    "predictions": [{"path": str(image),
                                     "top": [{"class": classes[c], "probability": prob}
                                             for c, prob in ranked]}
                                    for image, ranked in results],
                    "skipped": [{"path": p, "reason": r} for p, r in skipped]}
        with _open(args.json) as f:
            json.dump(document, f, indent=1)
            f.write("\n")
    for target, kind in ((args.csv, "CSV"), (args.json, "JSON")):
        if target not in (None, "-"):
            print(f"wrote {kind} predictions of {len(results)} images to {target}", file=notes)
    if skipped:
        print(data.format_skipped(skipped), file=sys.stderr)
    return 0


def command() -> int:
    """The ``tinyalex-predict`` console script."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(command())
