"""The figures several lessons draw: every one with labelled axes, units and a title.

Each function draws one figure with matplotlib's pyplot and returns it (in a notebook the
figure shows below the cell; end the line with ``;`` so it is not shown twice). Shapes
follow the package: images uint8 (N, H, W, 3) or (H, W, 3); feature maps (C, H, W).
A figure only one lesson draws lives in that lesson's module.
"""

from __future__ import annotations

import numpy as np


def pyplot():
    """matplotlib.pyplot, imported when a figure is first drawn."""
    import matplotlib.pyplot as plt

    return plt


def _grid(count: int, cols: int):
    return max(1, int(np.ceil(count / cols))), min(cols, count)


# ---- images and maps ---------------------------------------------------------------------------

def show_images(images, titles=None, cols: int = 8, title: str = "", size: float = 1.6):
    """A grid of RGB images: an array (N, H, W, 3), or a list of (H, W, 3) of any sizes."""
    plt = pyplot()
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = images[None]
    images = [np.asarray(image) for image in images]
    rows, cols = _grid(len(images), cols)
    above = 0.35 if titles is not None else 0.0  # each row's titles take a line above it
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, (size + above) * rows + 0.4),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k])
            if titles is not None:
                ax.set_title(str(titles[k]), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_maps(maps, title: str = "", cols: int = 8, max_maps: int = 32, size: float = 1.3,
              names=None, cmap: str = "viridis"):
    """Feature maps (C, H, W) as a grid of images, one colour scale per map (printed below)."""
    plt = pyplot()
    maps = np.asarray(maps)[:max_maps]
    rows, cols = _grid(len(maps), cols)
    # each map's label (name and value range) takes two lines of small text under it
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, (size + 0.45) * rows + 0.5),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= len(maps):
            ax.axis("off")
            continue
        ax.imshow(maps[k], cmap=cmap)
        label = names[k] if names is not None else f"map {k}"
        ax.set_xlabel(f"{label}\n{maps[k].min():.2g}..{maps[k].max():.2g}", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_matrix(a, title: str = "", xlabel: str = "", ylabel: str = "", annotate: bool = True,
                fmt: str = "{:.0f}", cmap: str = "Blues", ax=None, colorbar: bool = False,
                xticks=None, yticks=None, aspect: str = "auto", symmetric: bool = False):
    """A 2-d array as a heat map with its values written in the cells (small arrays).

    Rows and columns are numbered from 0 (or labelled by xticks / yticks). symmetric: a
    colour scale centred on 0 (for signed values, with a diverging cmap such as "RdBu").
    """
    plt = pyplot()
    a = np.asarray(a, dtype=np.float64)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(12, 0.45 * a.shape[1] + 2),
                                        min(9, 0.4 * a.shape[0] + 1.5)))
    limit = np.nanmax(np.abs(a)) if symmetric else None
    image = ax.imshow(a, cmap=cmap, aspect=aspect, vmin=-limit if symmetric else None,
                      vmax=limit)
    if annotate and a.size <= 900:
        middle = (np.nanmax(a) + np.nanmin(a)) / 2
        for (i, j), value in np.ndenumerate(a):
            dark = abs(value) > limit / 2 if symmetric else value > middle
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    for setter, ticks, count in ((ax.set_xticks, xticks, a.shape[1]),
                                 (ax.set_yticks, yticks, a.shape[0])):
        if ticks is not None:
            setter(range(len(ticks)), ticks, fontsize=7)
        elif count <= 32:
            setter(range(count))
    if colorbar:
        ax.figure.colorbar(image, ax=ax)
    if fig is not None:
        fig.tight_layout()
    return ax.figure


def show_picture(image, title: str = "", width: float = 8.0):
    """One uint8 (H, W, 3) picture (e.g. a ``tinyalex.viz`` figure) at ``width`` inches."""
    plt = pyplot()
    image = np.asarray(image)
    fig, ax = plt.subplots(figsize=(width, width * image.shape[0] / image.shape[1] + 0.4))
    ax.imshow(image, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    return fig


# ---- training runs -----------------------------------------------------------------------------

def plot_error_curves(runs: dict, window: int = 25, target: float | None = None,
                      title: str = "Training error while training",
                      xlabel: str = "SGD step (batch of 32)"):
    """Running training error per step: one thin line per seed, the mean thick, per label.

    runs: {label: [Run, ...]} as ``experiments.relu_tanh_race`` / ``ablation`` return.
    target: a dashed line at that error (figure 1 draws 25%).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, (label, label_runs) in enumerate(runs.items()):
        colour = f"C{k}"
        curves = [r.running_error(window) for r in label_runs if len(r.errors) >= window]
        for curve in curves:
            ax.plot(np.arange(window, window + len(curve)), 100 * curve, color=colour, lw=0.7,
                    alpha=0.4)
        if curves:
            length = min(len(c) for c in curves)
            mean = np.mean([c[:length] for c in curves], axis=0)
            ax.plot(np.arange(window, window + length), 100 * mean, color=colour, lw=2.2,
                    label=label if len(curves) == 1 else f"{label} (mean of {len(curves)} seeds)")
    if target is not None:
        ax.axhline(100 * target, color="black", ls="--", lw=1, label=f"target {100 * target:g}%")
    ax.set(xlabel=xlabel, ylabel=f"training error, % (mean of last {window} batches)",
           title=title, ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_seed_spread(results: dict, ylabel: str = "error, %", title: str = "",
                     percent: bool = True):
    """One dot per seed and the mean with its standard deviation, per label.

    results: {label: [value per seed]} (error rates in [0, 1] when percent is True).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.8 * len(results) + 2.5, 3.8))
    for k, values in enumerate(results.values()):
        values = np.asarray(values, dtype=np.float64) * (100 if percent else 1)
        jitter = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else np.zeros(1)
        ax.plot(k + jitter, values, "o", color=f"C{k}", alpha=0.6)
        spread = values.std(ddof=1) if len(values) > 1 else 0.0
        ax.errorbar(k + 0.25, values.mean(), yerr=spread, fmt="s", color="black", capsize=5)
        ax.annotate(f"{values.mean():.1f} +- {spread:.1f}", (k + 0.3, values.mean()),
                    fontsize=8, va="center")
    ax.set_xticks(range(len(results)), list(results))
    ax.set_xlim(-0.5, len(results) - 0.2)
    ax.set(ylabel=ylabel, title=title or "each dot one seed; squares: mean +- std")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
