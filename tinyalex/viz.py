"""Pictures of a run: learning curves, and the paper's figures (section 6.1).

    python -m tinyalex.viz filters     --checkpoint FILE [--out PNG]        # Figure 3
    python -m tinyalex.viz neighbours  --checkpoint FILE [--data PATH]      # Figure 4
    python -m tinyalex.viz featuremaps --checkpoint FILE IMAGE [--out PNG]
    python -m tinyalex.viz curves      --run DIR                            # from metrics.csv

Figure 3 shows the conv1 kernels as colour images, the two halves apart: in the paper each
GPU learned one half (conv2 is grouped, so kernels 0..47 feed only the first group of conv2
and 48..95 only the second), and the halves specialised -- colour-agnostic edges on one GPU,
colour blobs on the other. Figure 4 retrieves, for a few validation images, the training
images whose last hidden layer activations (fc7, after ReLU: 4096 numbers in the paper)
are nearest in Euclidean distance.

Image grids are assembled with NumPy and written with Pillow; only the learning curves use
matplotlib.
"""

from __future__ import annotations

# isort: off
import tinyalex.openblas  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# --- learning curves ------------------------------------------------------------------------


def plot_learning_curves(history: list[dict], path: str | os.PathLike) -> Path:
    """PNG of loss and accuracy per epoch from a run's history (rows of metrics.csv).

    Left: train and val cross-entropy. Right: train top-1, val top-1 and val top-5 (%).
    Written to a temporary file and renamed, so a viewer never sees a half-drawn image.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], "o-", label="val")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.plot(epochs, [100 * r["train_top1"] for r in history], "o-", label="train top-1")
    ax_acc.plot(epochs, [100 * r["val_top1"] for r in history], "o-", label="val top-1")
    ax_acc.plot(epochs, [100 * r["val_top5"] for r in history], "o--", label="val top-5")
    ax_acc.set(xlabel="epoch", ylabel="%", title="accuracy", ylim=(0, 100))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)
    return path


# --- image grids ----------------------------------------------------------------------------


def tile(images: np.ndarray, cols: int, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """uint8 (N, H, W, 3) -> one uint8 grid image, ``cols`` per row, ``pad`` pixels apart.

    Missing cells of the last row stay ``pad_value``.
    """
    n, h, w, c = images.shape
    rows = -(-n // cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.uint8)
    for i in range(rows):   # loop over grid rows only; each assigns a whole row of cells
        row = images[i * cols:(i + 1) * cols]                                # (<=cols, h, w, c)
        top = pad + i * (h + pad)
        cells = grid[top:top + h, pad:pad + len(row) * (w + pad)]            # (h, k*(w+pad), c)
        cells = cells.reshape(h, len(row), w + pad, c)[:, :, :w]             # (h, k, w, c)
        cells[...] = row.transpose(1, 0, 2, 3)
    return grid


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (H, W, C) by an integer factor (crisp kernel pixels)."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def kernel_images(w: np.ndarray) -> np.ndarray:
    """conv1 weights (F, 3, KH, KW) -> uint8 (F, KH, KW, 3), each kernel stretched to 0..255.

    Each kernel gets its own min-max scaling (as the paper's Figure 3 does by eye): the figure
    shows what pattern a kernel matches, not how large its weights are.
    """
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"conv1 weights must be (F, 3, KH, KW), got {w.shape}")
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    scaled = (w - lo) / np.maximum(hi - lo, np.float32(1e-12))               # (F, 3, KH, KW)
    return np.rint(255 * scaled).astype(np.uint8).transpose(0, 2, 3, 1)


def filters_figure(w: np.ndarray, halves: int = 2, cols: int | None = None,
                   scale: int | None = None) -> np.ndarray:
    """Figure 3: the conv1 kernels as an RGB grid, the halves (the two GPUs) separated.

    w: (F, 3, KH, KW). Returns uint8 (H, W, 3): halves stacked vertically with a gap.
    """
    kernels = kernel_images(w)                                               # (F, KH, KW, 3)
    f, kh = kernels.shape[0], kernels.shape[1]
    scale = scale or max(1, 48 // kh)                                         # ~48 px per kernel
    kernels = np.stack([enlarge(k, scale) for k in kernels]) if scale > 1 else kernels
    per_half = -(-f // halves)
    cols = cols or min(per_half, 16)
    parts = [tile(kernels[i * per_half:(i + 1) * per_half], cols, pad=2)
             for i in range(halves)]
    gap = np.full((scale * 2, parts[0].shape[1], 3), 255, np.uint8)
    out = [parts[0]]
    for part in parts[1:]:
        out += [gap, part]
    return np.concatenate(out, axis=0)


# --- network features -----------------------------------------------------------------------


def hidden_layer_name(net) -> str:
    """The step whose output is the last hidden layer after ReLU: "relu7" (fc7) for AlexNet."""
    fc = [step.name for step in net.steps if step.kind == "fc"]
    if len(fc) < 2:
        raise ValueError("the network has no hidden fully connected layer")
    return "relu" + fc[-2][len("fc"):]


def features(net, images: np.ndarray, stats: dict, layer: str | None = None,
             batch_size: int = 256) -> np.ndarray:
    """float32 (N, D) activations of ``layer`` (default: fc7 after ReLU) for uint8 images
    (N, S, S, 3), on centre crops with the training mean subtracted, dropout off."""
    from tinyalex import data
    from tinyalex.backend import to_device, to_numpy

    layer = layer or hidden_layer_name(net)
    out = []
    for start in range(0, len(images), batch_size):
        x = data.center_crop_batch(np.asarray(images[start:start + batch_size]), stats["mean"],
                                   net.config.input_size)
        net.forward(to_device(x, net.device), train=False, keep_activations=True)
        out.append(to_numpy(net.activations[layer]).reshape(len(x), -1).astype(np.float32))
    net.activations = {}
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def nearest(queries: np.ndarray, base: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """int64 (Q, k): indices of the k rows of ``base`` (M, D) nearest to each query (Q, D).

    Squared Euclidean distance expanded as |q|^2 - 2 q.b + |b|^2, so the work is one matrix
    product per chunk of the base, and memory stays (Q, chunk).
    """
    q2 = (queries ** 2).sum(axis=1)[:, None]                                  # (Q, 1)
    dist = np.empty((len(queries), len(base)), dtype=np.float32)              # (Q, M)
    for start in range(0, len(base), chunk):
        b = base[start:start + chunk]                                         # (c, D)
        dist[:, start:start + chunk] = q2 - 2 * queries @ b.T + (b ** 2).sum(axis=1)[None, :]
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def labelled(image: np.ndarray, text: str, scale: int = 2) -> np.ndarray:
    """(S, S, 3) uint8, enlarged, with a caption strip below (Pillow's default font)."""
    img = Image.fromarray(enlarge(image, scale))
    canvas = Image.new("RGB", (img.width, img.height + 14), (255, 255, 255))
    canvas.paste(img, (0, 0))
    ImageDraw.Draw(canvas).text((2, img.height + 1), text[: img.width // 6], fill=(0, 0, 0))
    return np.asarray(canvas)


def neighbours_figure(query_images, query_labels, neighbour_images, neighbour_labels,
                      classes) -> np.ndarray:
    """Figure 4: one row per query: the query, a gap, then its nearest training images."""
    q, k = neighbour_labels.shape
    scale = max(1, 96 // query_images.shape[1])
    rows = []
    for i in range(q):   # one figure row per query image
        cells = [labelled(query_images[i], classes[query_labels[i]], scale)]
        cells += [labelled(neighbour_images[i, j], classes[neighbour_labels[i, j]], scale)
                  for j in range(k)]
        h = cells[0].shape[0]
        gap = np.full((h, 12, 3), 255, np.uint8)
        spacer = np.full((h, 3, 3), 255, np.uint8)
        row = [cells[0], gap]
        for cell in cells[1:]:
            row += [cell, spacer]
        rows += [np.concatenate(row, axis=1), np.full((4, sum(c.shape[1] for c in row), 3),
                                                        255, np.uint8)]
    return np.concatenate(rows, axis=0)


def feature_maps_figure(net, image: np.ndarray, stats: dict, max_maps: int = 32) -> np.ndarray:
    """The input crop and, per conv layer, its first ``max_maps`` ReLU outputs (grayscale).

    Each layer's maps share one scale (0 .. that layer's largest activation), so bright
    means "strongly active" across the maps of a layer.
    """
    from tinyalex import data
    from tinyalex.backend import to_device, to_numpy

    crop = net.config.input_size
    x = data.center_crop_batch(image[None], stats["mean"], crop)               # (1, 3, c, c)
    net.forward(to_device(x, net.device), train=False, keep_activations=True)
    width = 16 * (crop + 2)
    top = data.center_offset(image.shape[0], crop)
    rows = [labelled(image[top:top + crop, top:top + crop], "input", 2)]
    convs = [step.name for step in net.steps if step.kind == "conv"]
    for name in convs:
        act = to_numpy(net.activations["relu" + name[len("conv"):]])[0][:max_maps]  # (m, h, w)
        peak = max(float(act.max()), 1e-12)
        maps = np.rint(255 * act / peak).astype(np.uint8)
        scale = max(1, crop // act.shape[1])
        maps = np.stack([enlarge(m[:, :, None], scale) for m in maps]).repeat(3, axis=3)
        grid = tile(maps, min(len(maps), max(1, width // (maps.shape[2] + 1))))
        caption = np.asarray(_text_strip(f"{name}: {act.shape[0]} of "
                                         f"{net.activations[name].shape[1]} maps, "
                                         f"{act.shape[1]}x{act.shape[2]}", grid.shape[1]))
        rows += [caption, grid]
    net.activations = {}
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    return np.concatenate(rows, axis=0)


def _text_strip(text: str, width: int) -> Image.Image:
    strip = Image.new("RGB", (max(width, 6 * len(text) + 4), 14), (255, 255, 255))
    ImageDraw.Draw(strip).text((2, 1), text, fill=(0, 0, 0))
    return strip


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write uint8 (H, W, 3) atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    Image.fromarray(image).save(tmp)
    os.replace(tmp, path)
    return path


# --- command line ---------------------------------------------------------------------------


def _default_out(checkpoint: str, name: str) -> Path:
    ckpt = Path(checkpoint)
    folder = ckpt if ckpt.is_dir() else ckpt.parent
    return folder / name


def cmd_filters(args) -> Path:
    from tinyalex.evaluate import load_trained

    net, _, _ = load_trained(args.checkpoint, "cpu")
    groups = 2 if any(step.options.get("groups", 1) == 2 for step in net.steps
                      if step.name == "conv2") else 1
    figure = filters_figure(net.params["conv1.w"], halves=groups)
    return save_png(figure, args.out or _default_out(args.checkpoint, "conv1_filters.png"))


def cmd_neighbours(args) -> Path:
    from tinyalex import data
    from tinyalex.evaluate import load_trained

    net, stats, meta = load_trained(args.checkpoint, args.device)
    spec = args.data or meta["data"]
    train, val = data.open_splits(spec, net.config.image_size, seed=meta.get("seed", 0))
    if len(val) == 0:
        raise data.DataError(f"{spec} has no validation images to query: add a val/ folder")
    rng = np.random.default_rng(args.seed)
    queries = np.sort(rng.choice(len(val), size=min(args.queries, len(val)), replace=False))
    base = np.arange(len(train))
    if len(train) > args.max_train:          # retrieval over a seeded subset of a large set
        base = np.sort(rng.choice(len(train), size=args.max_train, replace=False))
    query_images = np.asarray(val.images[queries])
    train_images = np.asarray(train.images[base])
    near = nearest(features(net, query_images, stats), features(net, train_images, stats),
                   args.neighbours)                                           # (Q, k) into base
    figure = neighbours_figure(query_images, val.labels[queries], train_images[near],
                               train.labels[base][near], train.classes)
    return save_png(figure, args.out or _default_out(args.checkpoint, "neighbours.png"))


def cmd_featuremaps(args) -> Path:
    from tinyalex import data
    from tinyalex.evaluate import load_trained

    net, stats, _ = load_trained(args.checkpoint, args.device)
    image = data.load_image(args.image, net.config.image_size)
    figure = feature_maps_figure(net, image, stats)
    return save_png(figure, args.out or _default_out(args.checkpoint, "featuremaps.png"))


def cmd_curves(args) -> Path:
    from tinyalex.cli import UserError

    metrics = Path(args.run) / "metrics.csv"
    if not metrics.is_file():
        raise UserError(f"{metrics} does not exist: pass --run with a run folder written by "
                        "`python -m tinyalex.train`")
    with open(metrics, newline="") as f:
        history = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return plot_learning_curves(history, args.out or Path(args.run) / "curves.png")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tinyalex.viz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("filters", help="conv1 kernels as an image grid (Figure 3)")
    n = sub.add_parser("neighbours", help="nearest training images by fc7 distance (Figure 4)")
    m = sub.add_parser("featuremaps", help="ReLU outputs of every conv layer for one image")
    for s in (f, n, m):
        s.add_argument("--checkpoint", required=True, help="a .npz checkpoint or a run folder")
        s.add_argument("--out", default=None, help="PNG to write (default: in the run folder)")
    for s in (n, m):
        s.add_argument("--device", default="auto", choices=("cpu", "gpu", "auto"))
    n.add_argument("--data", default=None, help="data set (default: the checkpoint's)")
    n.add_argument("--queries", type=int, default=8, help="validation images to query")
    n.add_argument("--neighbours", type=int, default=6, help="training images per query")
    n.add_argument("--max-train", type=int, default=5000,
                   help="search a seeded random subset of this many training images at most")
    n.add_argument("--seed", type=int, default=0, help="which queries (and subset)")
    m.add_argument("image", help="an image file")
    c = sub.add_parser("curves", help="learning curves from a run folder's metrics.csv")
    c.add_argument("--run", required=True, help="the run folder")
    c.add_argument("--out", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    command = {"filters": cmd_filters, "neighbours": cmd_neighbours,
               "featuremaps": cmd_featuremaps, "curves": cmd_curves}[args.command]
    print(f"wrote {command(args)}")
    return 0


if __name__ == "__main__":
    from tinyalex import cli

    sys.exit(cli.run(main))
