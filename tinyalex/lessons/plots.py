"""Figures for the lessons: every one with labelled axes, units and a title.

Each function draws one figure with matplotlib's pyplot and returns it (in a notebook the
figure shows below the cell; end the line with ``;`` so it is not shown twice). Shapes
follow the package: images uint8 (N, H, W, 3) or (H, W, 3); feature maps (C, H, W).
"""

from __future__ import annotations

import numpy as np

from tinyalex import layers


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _grid(count: int, cols: int):
    return max(1, int(np.ceil(count / cols))), min(cols, count)


# ---- images and maps --------------------------------------------------------------------------

def show_images(images, titles=None, cols: int = 8, title: str = "", size: float = 1.6):
    """A grid of RGB images: an array (N, H, W, 3), or a list of (H, W, 3) of any sizes."""
    plt = _plt()
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = images[None]
    images = [np.asarray(image) for image in images]
    rows, cols = _grid(len(images), cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + 0.4), squeeze=False)
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
    plt = _plt()
    maps = np.asarray(maps)[:max_maps]
    rows, cols = _grid(len(maps), cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + 0.5), squeeze=False)
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
    plt = _plt()
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


# ---- lesson 1: the network's costs ------------------------------------------------------------

def plot_layer_costs(rows, title: str = "Where the parameters and the work are"):
    """Bar charts of parameters and multiply-adds per layer, from ``model.layer_shapes``."""
    plt = _plt()
    rows = [r for r in rows if r[2] or r[3]]  # layers with weights: conv and fc
    names = [r[0] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, values, label, colour in ((left, [r[2] / 1e6 for r in rows], "parameters (millions)",
                                       "tab:blue"),
                                      (right, [r[3] / 1e6 for r in rows],
                                       "multiply-adds per image (millions)", "tab:orange")):
        bars = ax.bar(names, values, color=colour)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8)
        ax.set(ylabel=label, xlabel="layer", title=f"{label.split(' (')[0]}: total "
               f"{sum(values):,.1f} M")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---- lesson 2: im2col ---------------------------------------------------------------------------

def draw_im2col(x, kh: int, kw: int, stride: int, pad: int, window=(0, 0)):
    """One image's channels (numbered pixels) and its im2col matrix, one window highlighted.

    x (1, C, H, W) with small C, H, W. Left: the padded input, with the window at output
    position ``window`` = (oh, ow) outlined; right: cols (C*kh*kw, OH*OW), that window's
    column outlined. The numbers are x's values, so each can be followed across.
    """
    plt = _plt()
    from matplotlib.patches import Rectangle

    x = np.asarray(x)
    C = x.shape[1]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))[0]
    cols = layers.im2col(x, kh, kw, stride, pad)
    OW = layers.conv_output_size(x.shape[3], kw, stride, pad)
    fig = plt.figure(figsize=(3 * C + 0.6 * cols.shape[1] + 1, max(3.5, 0.35 * cols.shape[0] + 1)))
    grid = fig.add_gridspec(1, C + 1, width_ratios=[x_pad.shape[2]] * C + [cols.shape[1]])
    oh, ow = window
    for c in range(C):
        ax = fig.add_subplot(grid[0, c])
        show_matrix(x_pad[c], ax=ax, title=f"channel {c} (padded by {pad})",
                    xlabel="column", ylabel="row" if c == 0 else "", aspect="equal")
        ax.add_patch(Rectangle((ow * stride - 0.5, oh * stride - 0.5), kw, kh, fill=False,
                               edgecolor="red", linewidth=2.5))
    ax = fig.add_subplot(grid[0, C])
    ylabels = [f"c{c} ({i},{j})" for c in range(C) for i in range(kh) for j in range(kw)]
    show_matrix(cols, ax=ax, title=f"cols = im2col(x): {cols.shape[0]} x {cols.shape[1]}",
                xlabel="window (oh, ow) = column", yticks=ylabels,
                xticks=[f"{k // OW},{k % OW}" for k in range(cols.shape[1])])
    ax.add_patch(Rectangle((oh * OW + ow - 0.5, -0.5), 1, cols.shape[0], fill=False,
                           edgecolor="red", linewidth=2.5))
    fig.suptitle(f"im2col: every {kh}x{kw} window (stride {stride}) becomes one column")
    fig.tight_layout()
    return fig


# ---- lesson 3: activations and training curves ----------------------------------------------

def plot_activations(limit: float = 4.0):
    """ReLU and tanh, and their derivatives: where each passes gradient."""
    plt = _plt()
    z = np.linspace(-limit, limit, 401)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(z, np.maximum(z, 0), label="ReLU  max(0, x)", lw=2)
    left.plot(z, np.tanh(z), label="tanh(x)", lw=2)
    left.set(xlabel="input x (pre-activation)", ylabel="output f(x)", title="the units")
    right.plot(z, (z > 0).astype(float), label="ReLU: 1 if x > 0 else 0", lw=2)
    right.plot(z, 1 - np.tanh(z) ** 2, label="tanh: 1 - tanh(x)^2", lw=2)
    right.set(xlabel="input x (pre-activation)", ylabel="derivative f'(x)",
              title="the gradient they let through", ylim=(-0.05, 1.1))
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_error_curves(runs: dict, window: int = 25, target: float | None = None,
                      title: str = "Training error while training",
                      xlabel: str = "SGD step (batch of 32)"):
    """Running training error per step: one thin line per seed, the mean thick, per label.

    runs: {label: [Run, ...]} as ``experiments.relu_tanh_race`` / ``ablation`` return.
    target: a dashed line at that error (figure 1 draws 25%).
    """
    plt = _plt()
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
                    label=f"{label} (mean of {len(curves)})")
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
    plt = _plt()
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


def plot_histograms(arrays: dict, xlabel: str, title: str = "how the values are distributed",
                    bins: int = 60,
                    log: bool = False, ylabel: str = "count"):
    """Overlaid histograms of several arrays (e.g. activations before and after LRN)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    values = {label: np.asarray(a, dtype=np.float64).ravel() for label, a in arrays.items()}
    low = min(v.min() for v in values.values())
    high = max(v.max() for v in values.values())
    edges = np.linspace(low, high, bins + 1)
    for label, v in values.items():
        ax.hist(v, bins=edges, alpha=0.5, label=f"{label} (mean {v.mean():.3g}, std "
                f"{v.std():.3g})", log=log)
    ax.set(xlabel=xlabel, ylabel=ylabel + (" (log scale)" if log else ""), title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---- lesson 5: pooling windows ------------------------------------------------------------------

def draw_pool_windows(height: int, width: int, size: int, stride: int, title: str = ""):
    """The pooling windows drawn on a height x width grid, and how many cover each pixel."""
    plt = _plt()
    from matplotlib.patches import Rectangle

    OH, OW = layers.pool_output_size(height, size, stride), layers.pool_output_size(width, size,
                                                                                    stride)
    ones = np.ones((size * size, OH * OW))
    counts = layers.col2im(ones, (1, 1, height, width), size, size, stride, 0)[0, 0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.2))
    left.set(xlim=(-0.5, width - 0.5), ylim=(height - 0.5, -0.5), aspect="equal",
             xlabel="column (pixels)", ylabel="row (pixels)",
             title=f"{OH} x {OW} windows of {size}x{size}, stride {stride}")
    left.set_xticks(range(width))
    left.set_yticks(range(height))
    left.grid(color="lightgrey", lw=0.5)
    for k, (i, j) in enumerate(np.ndindex(OH, OW)):
        inset = 0.06 * (k % 3)  # nudge neighbours apart so shared edges stay visible
        left.add_patch(Rectangle((j * stride - 0.5 + inset, i * stride - 0.5 + inset), size - 0.1,
                                 size - 0.1, fill=False, lw=2, edgecolor=f"C{k % 10}"))
    show_matrix(counts, ax=right, title="windows covering each pixel", xlabel="column (pixels)",
                ylabel="row (pixels)", cmap="Oranges")
    fig.suptitle(title or ("overlapping" if stride < size else "non-overlapping")
                 + f" pooling: z = {size}, s = {stride}")
    fig.tight_layout()
    return fig


def plot_pool_routing(x, size: int, stride: int, dout=None):
    """One channel's input, its pooled output, and where the gradient goes back.

    x (H, W). dout (OH, OW), default all ones: then dx counts how many windows chose each
    pixel as their maximum.
    """
    plt = _plt()
    x = np.asarray(x, dtype=np.float64)
    out, cache = layers.maxpool_forward(x[None, None], size=size, stride=stride)
    dout = np.ones_like(out) if dout is None else np.asarray(dout, dtype=np.float64)[None, None]
    dx = layers.maxpool_backward(dout, cache)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.9), gridspec_kw=dict(
        width_ratios=[x.shape[1], out.shape[3] + 1, x.shape[1]]))
    ones = bool(np.all(dout == 1))
    show_matrix(x, ax=axes[0], title="input x", xlabel="column", ylabel="row", fmt="{:.1f}")
    show_matrix(out[0, 0], ax=axes[1], title=f"max-pool {size}/{stride}", xlabel="column",
                fmt="{:.1f}", cmap="Greens")
    show_matrix(dx[0, 0], ax=axes[2], title="dx for dout = 1 everywhere" if ones else "dx",
                xlabel="column", fmt="{:.0f}" if ones else "{:.2f}", cmap="Oranges")
    fig.suptitle("the gradient of a max goes to the maximum; a pixel chosen by two windows "
                 "gets both")
    fig.tight_layout()
    return fig


# ---- lesson 12: the 2012 code's learning rates ----------------------------------------------

def plot_rate_history(rate_of, layers_: dict, epochs: int, title: str = ""):
    """The weight learning rate per epoch of some layers, on a log scale (0 drawn at the bottom).

    rate_of(epoch, layer) -> rate; layers_: {label: layer name}.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    epoch = np.arange(epochs + 1)
    floor = 1e-6  # where a rate of 0 is drawn on the log axis
    for k, (label, layer) in enumerate(layers_.items()):
        rates = np.array([rate_of(e, layer) for e in epoch])
        ax.step(epoch, np.maximum(rates, floor), where="post", lw=2.5 - k, label=label)
    ax.set_yscale("log")
    ax.axhline(floor, color="grey", lw=0.8, ls=":")
    ax.annotate("rate 0 (frozen)", (1, floor * 1.3), fontsize=8, color="grey")
    ax.set(xlabel="epoch", ylabel="weight learning rate (log scale)",
           title=title or "the learning rates, set by hand")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_update_sizes(update: dict, freeze_at: int | None = None, window: int = 5,
                      title: str = "how far each step moves each layer"):
    """|w_after - w_before| / |w| per SGD step, one line per layer, log scale.

    update: {layer: [value per step]} (``paper_code.train_with_freeze``); a running mean over
    ``window`` steps smooths the lines; zeros are drawn at the bottom of the axis.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, (layer, values) in enumerate(update.items()):
        values = np.asarray(values, dtype=np.float64)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, window + len(smooth)), np.maximum(smooth, 1e-12),
                color=f"C{k}", lw=1.6, label=layer)
    if freeze_at is not None:
        ax.axvline(freeze_at, color="black", ls="--", lw=1, label=f"freeze at step {freeze_at}")
    ax.set_yscale("log")
    ax.set(xlabel="SGD step", ylabel=f"relative change of w (mean of {window} steps)",
           title=title, ylim=(1e-9, None))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


# ---- lesson 10: what the network learned ------------------------------------------------------

def show_picture(image, title: str = "", width: float = 8.0):
    """One uint8 (H, W, 3) picture (e.g. a ``tinyalex.viz`` figure) at ``width`` inches."""
    plt = _plt()
    image = np.asarray(image)
    fig, ax = plt.subplots(figsize=(width, width * image.shape[0] / image.shape[1] + 0.4))
    ax.imshow(image, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_colourfulness(values: dict, halves: int = 2,
                       title: str = "how much of each conv1 kernel is colour"):
    """One dot per kernel, per label (e.g. {"initial": ..., "trained": ...}), the towers apart.

    values: {label: (F,) fractions from ``learned.colourfulness``}; kernels 0..F/2-1 are the
    first tower. The dashed line is 2/3, what random weights give.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for k, (label, v) in enumerate(values.items()):
        v = np.asarray(v)
        per = len(v) // halves
        for h in range(halves):
            part = v[h * per : (h + 1) * per]
            x = h * (len(values) + 1) + k + np.linspace(-0.2, 0.2, len(part))
            ax.plot(x, part, "o", color=f"C{k}", alpha=0.7, label=label if h == 0 else None)
            ax.plot([x[0] - 0.1, x[-1] + 0.1], [part.mean()] * 2, color=f"C{k}", lw=2.5)
    ax.axhline(2 / 3, color="grey", ls="--", lw=1, label="random weights (2/3)")
    ticks = [h * (len(values) + 1) + (len(values) - 1) / 2 for h in range(halves)]
    ax.set_xticks(ticks, [f"tower {'ab'[h] if halves == 2 else h}: kernels {h * per}-"
                          f"{(h + 1) * per - 1}" for h in range(halves)])
    ax.set(ylabel="colour share of |w|^2 (0 = grey only)", ylim=(0, 1), title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_saliency(images, maps, titles=None, title: str = "saliency: where the class score "
                  "is most sensitive"):
    """Images (N, H, W, 3) uint8 above their saliency maps (N, H, W), one column per image."""
    plt = _plt()
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.3), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(images[i], interpolation="nearest")
        axes[1, i].imshow(maps[i], cmap="hot", interpolation="nearest")
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=8)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("image", fontsize=9)
    axes[1, 0].set_ylabel("max |d score / d pixel|", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
# ---- lesson 7: crop windows -------------------------------------------------------------------

def draw_windows(image, windows, crop: int, title: str = "", labels=None):
    """An image (H, W, 3) with crop x crop windows outlined; windows: (top, left[, flip])."""
    plt = _plt()
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(image)
    for k, window in enumerate(windows):
        top, left = int(window[0]), int(window[1])
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), crop, crop, fill=False, lw=2,
                               edgecolor=f"C{k % 10}", ls="--" if k % 2 else "-"))
        if labels is not None:
            ax.text(left + 2, top + 2, str(labels[k]), color=f"C{k % 10}", fontsize=9,
                    va="top", weight="bold")
    ax.set(xlabel="column (pixels)", ylabel="row (pixels)",
           title=title or f"{len(windows)} windows of {crop} x {crop}")
    fig.tight_layout()
    return fig


# ---- lesson 8: learning curves ----------------------------------------------------------------

def plot_learning(histories: dict, window: int = 10, title: str = "Learning curves"):
    """Training loss per step (running mean), validation error and learning rate per epoch.

    histories: {label: pipeline.History}. Three panels side by side, one colour per label.
    """
    plt = _plt()
    fig, (loss_ax, val_ax, lr_ax) = plt.subplots(1, 3, figsize=(13, 3.8))
    for k, (label, h) in enumerate(histories.items()):
        losses = np.asarray(h.losses, dtype=np.float64)
        if len(losses) >= window:
            running = np.convolve(losses, np.ones(window) / window, mode="valid")
            loss_ax.plot(np.arange(window, window + len(running)) / h.steps_per_epoch, running,
                         color=f"C{k}", label=label)
        epochs = np.arange(1, len(h.val_errors) + 1)
        val_ax.plot(epochs, 100 * np.asarray(h.val_errors), "o-", color=f"C{k}", label=label)
        lr_ax.step(np.arange(1, len(h.lrs) + 1), h.lrs, where="mid", color=f"C{k}", label=label)
    loss_ax.set(xlabel="epoch", ylabel=f"training loss (mean of last {window} steps)",
                title="training loss")
    val_ax.set(xlabel="epoch", ylabel="validation error, % (centre crops)",
               title="validation error after each epoch", ylim=(0, 100))
    lr_ax.set(xlabel="epoch", ylabel="learning rate (log scale)", yscale="log",
              title="the rate used in each epoch")
    for ax in (loss_ax, val_ax, lr_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_sgd_forms(paths: dict, drop_at: int, ylabel: str = "step size |w(t) - w(t-1)|",
                   title: str = "The paper's SGD and PyTorch's, before and after the rate drops"):
    """One curve per update rule (paths: {label: values per step}), the drop marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for k, (label, values) in enumerate(paths.items()):
        ax.plot(np.arange(1, len(values) + 1), values, "o-" if k == 0 else "s--", ms=3,
                color=f"C{k}", label=label)
    ax.axvline(drop_at + 0.5, color="black", lw=1, ls=":", label="learning rate / 10")
    ax.set(xlabel="SGD step", ylabel=ylabel, title=title, yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---- lesson 9: threads and blocks -------------------------------------------------------------

def draw_thread_map(NC: int, OH: int, OW: int, block: int):
    """Which thread of which block computes each output of (NC, OH, OW): one panel per plane.

    Each cell shows its flat thread index (blockIdx.x * blockDim.x + threadIdx.x) and is
    coloured by its block; threads past the last output are counted in the title.
    """
    plt = _plt()
    total = NC * OH * OW
    blocks = -(-total // block)
    index = np.arange(total).reshape(NC, OH, OW)
    fig, axes = plt.subplots(1, NC, figsize=(1.0 + 0.55 * OW * NC, 0.55 * OH + 1.6),
                             squeeze=False)
    for nc, ax in enumerate(axes[0]):
        ax.imshow(index[nc] // block, cmap="tab10", vmin=0, vmax=9, aspect="equal")
        for (i, j), value in np.ndenumerate(index[nc]):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7)
        ax.set(title=f"plane nc = {nc}", xlabel="ow", ylabel="oh" if nc == 0 else "")
        ax.set_xticks(range(OW))
        ax.set_yticks(range(OH))
    fig.suptitle(f"{total} outputs, {blocks} blocks of {block} threads (colour = blockIdx.x); "
                 f"{blocks * block - total} threads find nothing to do")
    fig.tight_layout()
    return fig
