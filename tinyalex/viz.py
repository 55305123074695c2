"""Pictures of a run: learning curves (more figures in the data-pipeline work)."""

from __future__ import annotations

import os
from pathlib import Path


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
