"""Pictures of a run: learning curves, the confusion matrix, and the paper's figures
(section 6.1).

    python -m tinyalex.viz filters     --checkpoint RUN [--out PNG]        # Figure 3
    python -m tinyalex.viz neighbours  --checkpoint RUN [--data PATH]      # Figure 4
    python -m tinyalex.viz featuremaps --checkpoint RUN IMAGE [--out PNG]
    python -m tinyalex.viz confusion   --checkpoint RUN [--split test|val|train]
    python -m tinyalex.viz mistakes    --checkpoint RUN [--split ...] [--count 24]
    python -m tinyalex.viz curves      --run RUN                           # from metrics.csv

A run folder given as --checkpoint means its best.npz (the best validation top-1; last.npz
when no epoch has finished); the program names the file it used.

Figure 3 shows the conv1 kernels as colour images, the two halves apart: conv2 is grouped,
so in the paper kernels 0..47 fed only the first GPU's half of conv2 and 48..95 only the
second's. After 90 epochs on ImageNet the paper's halves had specialised (it reports
colour-agnostic kernels on one GPU and colour-specific ones on the other). A short run on
a small data set often leaves conv1 close to its random initialisation, so the figure states
how far the kernels moved from it (the correlation with the initial weights, which the
checkpoint's config and seed reproduce) and says plainly when they are still mostly noise.
Figure 4 retrieves, for a few validation images (the first column), the training images
whose last hidden layer activations (fc7, after ReLU: 4096 numbers in the paper) are
nearest in Euclidean distance.

The mistakes gallery shows the images of a split the network gets wrong, those it was
surest of first, each captioned with its true label, the predicted one and the softmax
probability given to it. The split is the data set's test set where it has one
(fashion-mnist, mnist:PATH), else the validation images, as for ``tinyalex.evaluate``.

Image grids are assembled with NumPy and written with Pillow; the learning curves and the
confusion matrix use matplotlib.
"""

from __future__ import annotations

# isort: off
import tinyalex.threads  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tinyalex.storage import atomic_file

# --- learning curves ------------------------------------------------------------------------


def _figure(**options):
    """A matplotlib Figure of its own, outside pyplot: drawing it touches no global state
    (no backend switched, no figure left open in a notebook), and savefig renders with Agg."""
    from matplotlib.figure import Figure

    return Figure(**options)


def _save_figure(fig, path: Path, dpi: int = 80) -> Path:
    """Write a matplotlib figure as a PNG atomically (tinyalex.storage.atomic_file), so that a
    viewer never sees a half-drawn image and a failed write leaves the old one."""
    with atomic_file(path) as f:
        fig.savefig(f, dpi=dpi, format="png")
    return path


def _present(values) -> bool:
    """True when every value is a number (top-5 is None or empty with <= 5 classes)."""
    return all(v is not None and v != "" and v == v for v in values)   # v == v: not NaN


def plot_learning_curves(history: list[dict], path: str | os.PathLike) -> Path:
    """PNG of loss and accuracy per epoch from a run's history (rows of metrics.csv).

    Left: train and val cross-entropy. Right: train top-1, val top-1 and, when it means
    something (more than five classes), val top-5 (%). Epochs are whole numbers on the axis.
    """
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    epochs = [int(row["epoch"]) for row in history]
    fig = _figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], "o-", label="val")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.plot(epochs, [100 * r["train_top1"] for r in history], "o-", label="train top-1")
    ax_acc.plot(epochs, [100 * r["val_top1"] for r in history], "o-", label="val top-1")
    top5 = [r.get("val_top5") for r in history]
    if _present(top5):
        ax_acc.plot(epochs, [100 * v for v in top5], "o--", label="val top-5")
    ax_acc.set(xlabel="epoch", ylabel="%", title="accuracy", ylim=(0, 100))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_confusion(confusion: np.ndarray, classes: list[str], path: str | os.PathLike,
                   title: str = "") -> Path:
    """PNG of a confusion matrix (``tinyalex.evaluate.confusion_matrix``): rows are the true
    classes, columns the predicted ones; the colour is the fraction of the row (so a class
    with few images reads like one with many), and with up to 20 classes each cell shows its
    count."""
    path = Path(path)
    confusion = np.asarray(confusion)
    n = len(classes)
    rows = confusion.sum(axis=1, keepdims=True)
    fraction = confusion / np.maximum(rows, 1)
    side = min(4 + 0.45 * n, 24)
    fig = _figure(figsize=(side + 1.5, side))
    ax = fig.subplots()
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if n <= 50:
        ax.set_xticks(range(n), classes, rotation=90)
        ax.set_yticks(range(n), classes)
    if n <= 20:
        for t in range(n):
            for q in range(n):
                if confusion[t, q]:
                    ax.text(q, t, str(int(confusion[t, q])), ha="center", va="center",
                            fontsize=8, color="white" if fraction[t, q] > 0.5 else "black")
    ax.set(xlabel="predicted class", ylabel="true class", title=title or "confusion matrix")
    fig.tight_layout()
    return _save_figure(fig, path)


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


def _font(size: int):
    """Pillow's built-in font at ``size`` pixels (the small bitmap font without FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # an old Pillow, or one built without FreeType
        return ImageFont.load_default()


def wrap(text: str, font, width: int) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width`` pixels in ``font``."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if line and font.getlength(candidate) > width:
            lines.append(line)
            candidate = word
        line = candidate
    return lines + [line]


def text_block(lines: list[str], width: int, size: int = 15, colour=(0, 0, 0)) -> np.ndarray:
    """uint8 (H, width, 3): the lines of text, black on white, ``size`` pixels high, each
    wrapped to the width."""
    font = _font(size)
    lines = [part for line in lines for part in wrap(line, font, width - 12)]
    height = (size + 5) * len(lines) + 6
    block = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(block)
    for i, line in enumerate(lines):
        draw.text((6, 3 + i * (size + 5)), line, fill=colour, font=font)
    return np.asarray(block)


def kernel_images(w: np.ndarray) -> np.ndarray:
    """conv1 weights (F, 3, KH, KW) -> uint8 (F, KH, KW, 3), each kernel scaled on its own.

    Zero is mid-grey (128) and each kernel's largest |weight| reaches 0 or 255, so a kernel
    reads as the pattern of light and colour it responds to, whatever the size of its
    weights (the figure compares patterns, not magnitudes): a red pixel means "more red
    here raises the output".
    """
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"conv1 weights must be (F, 3, KH, KW), got {w.shape}")
    peak = np.abs(w).max(axis=(1, 2, 3), keepdims=True)                      # (F, 1, 1, 1)
    scaled = 0.5 + 0.5 * w / np.maximum(peak, np.float32(1e-12))             # (F, 3, KH, KW)
    return np.rint(255 * scaled).astype(np.uint8).transpose(0, 2, 3, 1)


def init_distance(w: np.ndarray, w0: np.ndarray) -> dict:
    """How far weights ``w`` moved from their initial values ``w0`` (same shape).

    Returns {"correlation": Pearson correlation of all the numbers (1: the initialisation
    unchanged, 0: nothing of it left), "relative_change": |w - w0| / |w0| (Euclidean)}.
    """
    a = np.asarray(w, dtype=np.float64).ravel()
    b = np.asarray(w0, dtype=np.float64).ravel()
    a_c, b_c = a - a.mean(), b - b.mean()
    correlation = float(a_c @ b_c / max(np.linalg.norm(a_c) * np.linalg.norm(b_c), 1e-30))
    change = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
    return {"correlation": correlation, "relative_change": change}


def learned_verdict(correlation: float) -> str:
    """What a correlation with the initial kernels means for the figure, in one sentence."""
    if correlation >= 0.8:
        return ("These kernels are still mostly their random initialisation: conv1 has not "
                "learned visible features yet (train longer, or on more varied images).")
    if correlation >= 0.4:
        return "Partly learned: some structure on top of the random initialisation."
    return "Far from their initialisation: these patterns were learned."


def filters_figure(w: np.ndarray, halves: int = 2, cols: int | None = None,
                   scale: int | None = None) -> np.ndarray:
    """Figure 3: the conv1 kernels as an RGB grid, the halves (the two GPUs) separated.

    w: (F, 3, KH, KW). Each kernel is enlarged to at least 64 pixels a side (``scale``
    pixels per weight). Returns uint8 (H, W, 3): the halves stacked vertically with a gap.
    """
    kernels = kernel_images(w)                                               # (F, KH, KW, 3)
    f, kh = kernels.shape[0], kernels.shape[1]
    scale = scale or max(1, -(-64 // kh))
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


def filters_page(w: np.ndarray, w0: np.ndarray | None, halves: int, source: str) -> np.ndarray:
    """``filters_figure`` with the text a reader needs above it: what is shown, and how far
    the kernels moved from their initialisation ``w0`` (None: not known)."""
    f, _, kh, kw = w.shape
    grid = filters_figure(w, halves=halves)
    width = max(grid.shape[1], 760)
    lines = [f"Figure 3: the {f} conv1 kernels ({kh}x{kw}x3) of {source}",
             "each kernel scaled on its own: grey = 0, its largest |weight| = black or white"]
    if halves > 1:
        per_half = -(-f // halves)
        lines.append(f"{halves} blocks, as the paper's two GPUs: kernels 0-{per_half - 1} "
                     f"above feed conv2's first group, {per_half}-{f - 1} below its second")
    if w0 is not None:
        moved = init_distance(w, w0)
        lines.append(f"correlation with the initial weights {moved['correlation']:.2f} "
                     f"(1 = unchanged), |w - w0| / |w0| = {moved['relative_change']:.2f}")
        lines.append(learned_verdict(moved["correlation"]))
    header = text_block(lines, width)
    grid = np.pad(grid, ((0, 0), (0, width - grid.shape[1]), (0, 0)), constant_values=255)
    return np.concatenate([header, grid], axis=0)


# --- network features -----------------------------------------------------------------------


def features(net, images: np.ndarray, stats: dict, layer: str | None = None,
             batch_size: int = 256) -> np.ndarray:
    """float32 (N, D) activations of ``layer`` (default: fc7 after ReLU) for uint8 images
    (N, S, S, 3), on centre crops with the training mean subtracted, dropout off."""
    from tinyalex import data
    from tinyalex.backend import to_device, to_numpy

    layer = layer or net.last_hidden_layer()
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


def labelled(image: np.ndarray, text: str, scale: int = 2, colour=(0, 0, 0)) -> np.ndarray:
    """(S, S, 3) uint8, enlarged, with a caption strip below (Pillow's default font)."""
    img = Image.fromarray(enlarge(image, scale))
    canvas = Image.new("RGB", (img.width, img.height + 14), (255, 255, 255))
    canvas.paste(img, (0, 0))
    ImageDraw.Draw(canvas).text((2, img.height + 1), text[: img.width // 6], fill=colour)
    return np.asarray(canvas)


QUERY_FRAME = (31, 119, 180)    # the blue frame around each query image
SAME, OTHER = (0, 110, 0), (190, 0, 0)   # caption colours: neighbour of the query's class or not


def neighbours_figure(query_images, query_labels, neighbour_images, neighbour_labels,
                      classes) -> np.ndarray:
    """Figure 4: one row per query: the query (first column, framed in blue, headed
    "query"), a gap, then its nearest training images, captioned green when their class is
    the query's and red when not."""
    q, k = neighbour_labels.shape
    scale = max(1, 96 // query_images.shape[1])
    rows = []
    for i in range(q):   # one figure row per query image
        query = labelled(query_images[i], classes[query_labels[i]], scale)
        query = np.pad(query, ((3, 3), (3, 3), (0, 0)))
        query[:3], query[-3:], query[:, :3], query[:, -3:] = (QUERY_FRAME,) * 4
        cells = [labelled(neighbour_images[i, j], classes[neighbour_labels[i, j]], scale,
                          SAME if neighbour_labels[i, j] == query_labels[i] else OTHER)
                 for j in range(k)]
        h = query.shape[0]
        cells = [np.pad(c, ((3, h - c.shape[0] - 3), (0, 0), (0, 0)), constant_values=255)
                 for c in cells]
        gap = np.full((h, 12, 3), 255, np.uint8)
        spacer = np.full((h, 3, 3), 255, np.uint8)
        row = [query, gap]
        for cell in cells:
            row += [cell, spacer]
        row = np.concatenate(row, axis=1)
        rows += [row, np.full((4, row.shape[1], 3), 255, np.uint8)]
    width = rows[0].shape[1]
    query_width = query_images.shape[2] * scale + 6
    font = _font(13)
    text = wrap(f"its {k} nearest training images by fc7 distance, nearest first; green: "
                "the query's class", font, width - query_width - 16)
    header = Image.new("RGB", (width, 4 + 17 * len(text)), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    draw.text((4, 3), "query", fill=QUERY_FRAME, font=font)
    for i, line in enumerate(text):
        draw.text((query_width + 14, 3 + 17 * i), line, fill=(0, 0, 0), font=font)
    return np.concatenate([np.asarray(header)] + rows, axis=0)


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
    with atomic_file(path) as f:
        Image.fromarray(image).save(f, format="PNG")
    return path


# --- command line ---------------------------------------------------------------------------


def _default_out(checkpoint: str, name: str) -> Path:
    ckpt = Path(checkpoint)
    folder = ckpt if ckpt.is_dir() else ckpt.parent
    return folder / name


def _load(args, device: str | None = None):
    """(net, stats, meta, path) of --checkpoint, printing which file is used."""
    from tinyalex.evaluate import checkpoint_file, describe_checkpoint, load_trained

    path = checkpoint_file(args.checkpoint)
    net, stats, meta = load_trained(path, device or args.device)
    print(describe_checkpoint(path, meta))
    return net, stats, meta, path


def cmd_filters(args) -> Path:
    from tinyalex.model import AlexNet

    net, _, meta, path = _load(args, "cpu")
    groups = 2 if any(step.options.get("groups", 1) == 2 for step in net.steps
                      if step.name == "conv2") else 1
    w0 = None
    if "seed" in meta:  # the initial weights, drawn again from the run's config and seed
        w0 = AlexNet(net.config, seed=meta["seed"]).params["conv1.w"]
    history = meta.get("history") or []
    when = f"after epoch {history[-1]['epoch']}" if history else "before any finished epoch"
    figure = filters_page(net.params["conv1.w"], w0, groups, f"{path} ({when})")
    if w0 is not None:
        moved = init_distance(net.params["conv1.w"], w0)
        print(f"conv1: correlation with its initial weights {moved['correlation']:.2f}; "
              + learned_verdict(moved["correlation"]))
    return save_png(figure, args.out or _default_out(args.checkpoint, "conv1_filters.png"))


def cmd_neighbours(args) -> Path:
    from tinyalex import cli, data

    for name in ("queries", "neighbours", "max_train"):
        cli.positive("--" + name.replace("_", "-"), getattr(args, name))
    net, stats, meta, _ = _load(args)
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
                   min(args.neighbours, len(base)))                          # (Q, k) into base
    figure = neighbours_figure(query_images, val.labels[queries], train_images[near],
                               train.labels[base][near], train.classes)
    return save_png(figure, args.out or _default_out(args.checkpoint, "neighbours.png"))


def cmd_featuremaps(args) -> Path:
    from tinyalex import data

    net, stats, _, _ = _load(args)
    image = data.load_image(args.image, net.config.image_size)
    figure = feature_maps_figure(net, image, stats)
    return save_png(figure, args.out or _default_out(args.checkpoint, "featuremaps.png"))


def _evaluated_split(args, keep_answers: bool = False):
    """(net, result of ``evaluate`` on the split ``args.split`` names, the split, meta)."""
    from tinyalex import cli
    from tinyalex.evaluate import default_split, evaluate, open_split, same_classes

    cli.positive("--batch-size", args.batch_size)
    net, stats, meta, _ = _load(args)
    spec = args.data or meta["data"]
    args.split = args.split or default_split(spec)
    split = open_split(spec, args.split, net.config.image_size, meta.get("seed", 0))
    same_classes(split, meta, spec)
    result = evaluate(net, split, stats, args.batch_size, keep_answers=keep_answers)
    return net, result, split, meta


def cmd_confusion(args) -> Path:
    _, result, _, meta = _evaluated_split(args)
    title = (f"{args.split}: {result['count']} images, top-1 {100 * result['top1']:.1f}% "
             "(centre crop)")
    return plot_confusion(result["confusion"], meta["classes"],
                          args.out or _default_out(args.checkpoint, "confusion.png"), title)


def most_confident_mistakes(labels, predictions, confidence, count: int) -> np.ndarray:
    """Indices of up to ``count`` wrongly classified images, the most confident first
    (ties: the lower index first): the mistakes the network is surest of, which are the
    ones worth looking at (a mislabelled image, two classes it cannot tell apart)."""
    wrong = np.flatnonzero(np.asarray(labels) != np.asarray(predictions))
    order = np.argsort(-np.asarray(confidence)[wrong], kind="stable")
    return wrong[order[:count]]


def mistakes_figure(images, labels, predictions, confidence, classes, cols: int = 6,
                    title: str = "") -> np.ndarray:
    """A gallery of misclassified images: uint8 (N, S, S, 3) with their true labels,
    the predicted labels and the softmax confidence in them, one caption of two lines under
    each image (true in green, predicted in red), ``cols`` images per row, ``title`` above."""
    scale = max(1, 112 // images.shape[1])
    font = _font(12)
    captions = [(f"true {classes[t]}", f"said {classes[p]} {100 * c:.1f}%")
                for t, p, c in zip(labels, predictions, confidence, strict=True)]
    width = max([images.shape[2] * scale] + [int(font.getlength(line)) + 4
                                             for pair in captions for line in pair])
    cells = []
    for image, (true, said) in zip(images, captions, strict=True):
        caption = Image.new("RGB", (width, 32), (255, 255, 255))
        draw = ImageDraw.Draw(caption)
        draw.text((2, 1), true, fill=SAME, font=font)
        draw.text((2, 16), said, fill=OTHER, font=font)
        picture = enlarge(image, scale)                       # centred in the cell's width
        left = (width - picture.shape[1]) // 2
        picture = np.pad(picture, ((0, 0), (left, width - picture.shape[1] - left), (0, 0)),
                         constant_values=255)
        cell = np.concatenate([picture, np.asarray(caption)], axis=0)
        cells.append(np.pad(cell, ((2, 2), (2, 2), (0, 0)), constant_values=255))
    grid = tile(np.stack(cells), cols, pad=4)
    header = text_block([title], grid.shape[1], size=14) if title else grid[:0]
    return np.concatenate([header, grid], axis=0)


def cmd_mistakes(args) -> Path:
    from tinyalex import cli

    cli.positive("--count", args.count)
    _, result, split, meta = _evaluated_split(args, keep_answers=True)
    labels = np.asarray(split.labels)
    chosen = most_confident_mistakes(labels, result["predictions"], result["confidence"],
                                     args.count)
    if len(chosen) == 0:
        raise cli.UserError(f"no mistakes on the {args.split} split ({result['count']} "
                            "images): nothing to show")
    wrong = int(np.sum(labels != result["predictions"]))
    title = (f"{args.split}: {wrong} of {result['count']} images wrong (top-1 "
             f"{100 * result['top1']:.1f}%, centre crop); the {len(chosen)} it was surest of")
    figure = mistakes_figure(np.asarray(split.images[chosen]), labels[chosen],
                             result["predictions"][chosen], result["confidence"][chosen],
                             meta["classes"], title=title)
    return save_png(figure, args.out or _default_out(args.checkpoint, "mistakes.png"))


def cmd_curves(args) -> Path:
    from tinyalex.cli import UserError

    metrics = Path(args.run) / "metrics.csv"
    if not metrics.is_file():
        raise UserError(f"{metrics} does not exist: pass --run with a run folder written by "
                        "`python -m tinyalex.train`")
    with open(metrics, newline="") as f:
        history = [{k: float(v) if v != "" else None for k, v in row.items()}
                   for row in csv.DictReader(f)]
    return plot_learning_curves(history, args.out or Path(args.run) / "curves.png")


CHECKPOINT_HELP = ("a .npz checkpoint, or a run folder: its best.npz (best val top-1; "
                   "last.npz before the first finished epoch)")


def build_parser() -> argparse.ArgumentParser:
    """The command line of this program (``--help`` shows it)."""
    from tinyalex.cli import description

    p = argparse.ArgumentParser(prog="python -m tinyalex.viz", description=description(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    f = sub.add_parser("filters", help="conv1 kernels as an image grid (Figure 3), with how "
                                       "far they moved from their initialisation")
    n = sub.add_parser("neighbours", help="nearest training images by fc7 distance (Figure 4)")
    m = sub.add_parser("featuremaps", help="ReLU outputs of every conv layer for one image")
    c = sub.add_parser("confusion", help="the confusion matrix of a split, as a figure")
    w = sub.add_parser("mistakes", help="the images of a split the network gets wrong, the "
                                        "most confident mistakes first, with both labels")
    for s in (f, n, m, c, w):
        s.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
        s.add_argument("--out", default=None, help="PNG to write (default: in the run folder)")
    for s in (n, m, c, w):
        s.add_argument("--device", default="auto", choices=("cpu", "gpu", "auto"),
                       help="where to compute (default auto: the GPU when CuPy sees one)")
    for s in (n, c, w):
        s.add_argument("--data", default=None, help="data set (default: the checkpoint's)")
    n.add_argument("--queries", type=int, default=8, help="validation images to query (8)")
    n.add_argument("--neighbours", type=int, default=6, help="training images per query (6)")
    n.add_argument("--max-train", type=int, default=5000,
                   help="search a seeded random subset of this many training images at most")
    n.add_argument("--seed", type=int, default=0, help="which queries (and subset)")
    m.add_argument("image", help="an image file")
    for s in (c, w):
        s.add_argument("--split", choices=("test", "val", "train"), default=None,
                       help="which split (default: test where the data set has a test set, "
                            "else val)")
        s.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    w.add_argument("--count", type=int, default=24, help="mistakes to show (24)")
    r = sub.add_parser("curves", help="learning curves from a run folder's metrics.csv")
    r.add_argument("--run", required=True, help="the run folder")
    r.add_argument("--out", default=None, help="PNG to write (default: RUN/curves.png)")
    return p


def parse_args(argv):
    return build_parser().parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    command = {"filters": cmd_filters, "neighbours": cmd_neighbours,
               "featuremaps": cmd_featuremaps, "confusion": cmd_confusion,
               "mistakes": cmd_mistakes,
               "curves": cmd_curves}[args.command]
    print(f"wrote {command(args)}")
    return 0


def command() -> int:
    """The ``tinyalex-viz`` console script."""
    from tinyalex import cli

    return cli.run(main)


if __name__ == "__main__":
    sys.exit(command())
