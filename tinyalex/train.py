"""Train AlexNet: ``python -m tinyalex.train`` (the mini preset on the built-in data set).

    python -m tinyalex.train                                  # mini preset, built-in shapes
    python -m tinyalex.train --data ~/imagenette --config paper --epochs 90
    python -m tinyalex.train --resume runs/20261125-180000    # continue exactly

Each epoch: the paper's SGD over shuffled, augmented mini-batches (section 5), a progress
bar, then validation top-1/top-5 on centre crops. The run folder gets ``metrics.csv``,
``curves.png`` and two checkpoints, ``last.npz`` (every epoch) and ``best.npz`` (best val
top-1), written atomically. Ctrl-C stops after the current step and saves ``last.npz``
including the position inside the epoch; ``--resume`` then continues as if never stopped:
the weights are bit-identical to an uninterrupted run's (batches depend only on the seed and
the epoch, and the dropout generator's state is saved).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import signal
import sys
import time
from pathlib import Path

from tinyalex import checkpoint, cli, data
from tinyalex.backend import resolve_device, to_device, to_numpy
from tinyalex.evaluate import evaluate, topk_correct
from tinyalex.model import PRESETS, AlexNet, AlexNetConfig
from tinyalex.optim import SGD, ReduceOnPlateau, StepSchedule

# Defaults per preset: what `python -m tinyalex.train --config NAME` uses unless overridden.
# mini: a short fixed schedule that fits the 10-minute laptop budget; paper: section 5.
DEFAULTS = {
    "mini": dict(epochs=10, batch_size=64, lr=0.01, schedule="step", milestones=(7, 9)),
    "paper": dict(epochs=90, batch_size=128, lr=0.01, schedule="plateau", milestones=()),
}


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: the run stops and keeps its last good checkpoint."""


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tinyalex.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None,
                   help="train/<class>/ (+ val/<class>/) folder, cifar10:PATH, or builtin "
                        "(default: the built-in shapes set, generated on first use)")
    p.add_argument("--config", choices=sorted(PRESETS), default=None,
                   help="network preset (default mini; on --resume, the checkpoint's)")
    p.add_argument("--epochs", type=int, default=None, help="total epochs (mini 10, paper 90)")
    p.add_argument("--batch-size", type=int, default=None, help="mini 64, paper 128")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate (0.01)")
    p.add_argument("--momentum", type=float, default=None, help="0.9 (section 5)")
    p.add_argument("--weight-decay", type=float, default=None, help="0.0005 (section 5)")
    p.add_argument("--schedule", choices=("step", "plateau"), default=None,
                   help="step: divide by 10 at --milestones; plateau: divide by 10 when val "
                        "error stops improving for --patience epochs, at most 3 times")
    p.add_argument("--milestones", type=int, nargs="*", default=None,
                   help="epochs at which the step schedule divides the rate by 10")
    p.add_argument("--patience", type=int, default=None, help="plateau schedule: epochs (2)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no random reflections")
    p.add_argument("--no-crop", dest="random_crop", action="store_false",
                   help="centre crops instead of random crops when training")
    p.add_argument("--no-lighting", dest="lighting", action="store_false",
                   help="no PCA colour augmentation")
    p.add_argument("--num-workers", type=int, default=2, help="background batch builders")
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default=None,
                   help="default: $TINYALEX_DEVICE or auto (the GPU when CuPy sees one)")
    p.add_argument("--out", default=None, help="run folder (default runs/<timestamp>)")
    p.add_argument("--resume", default=None, help="a run folder or checkpoint to continue")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (for logs)")
    return p.parse_args(argv)


def check_args(args) -> None:
    for name in ("epochs", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise cli.UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.lr is not None and not args.lr > 0:
        raise cli.UserError(f"--lr must be > 0, got {args.lr}")
    if args.num_workers < 0:
        raise cli.UserError(f"--num-workers must be >= 0, got {args.num_workers}")
    if args.resume:
        fixed = [name for name in ("batch_size", "lr", "momentum", "weight_decay", "schedule",
                                   "milestones", "patience", "seed")
                 if getattr(args, name) is not None]
        fixed += [name for name in ("flip", "random_crop", "lighting") if not getattr(args, name)]
        if fixed:
            names = ", ".join("--" + name.replace("_", "-") for name in fixed)
            raise cli.UserError(f"--resume continues a run with its own settings; {names} "
                                "cannot change (only --epochs, --data, --out, --device, "
                                "--num-workers may): drop them, or start a new run")


class Run:
    """Everything that changes during training and goes into a checkpoint."""

    def __init__(self, args, resume=None):
        self.args = args
        if resume is not None:
            arrays, meta = resume
            config = AlexNetConfig.from_dict(meta["config"])
            if args.config is not None and args.config != config.name:
                raise cli.UserError(
                    f"--resume: the checkpoint is from config '{config.name}', not "
                    f"'{args.config}': drop --config or pass --config {config.name}")
            self.hp = meta["hyper"]
            if args.epochs is not None:  # the only hyperparameter a resume may change
                self.hp["epochs"] = args.epochs
            self.data_spec = args.data or meta["data"]
            self.seed = meta["seed"]
        else:
            config = PRESETS[args.config or "mini"]
            defaults = DEFAULTS[config.name]
            self.hp = {
                "epochs": args.epochs or defaults["epochs"],
                "batch_size": args.batch_size or defaults["batch_size"],
                "lr": args.lr or defaults["lr"],
                "momentum": 0.9 if args.momentum is None else args.momentum,
                "weight_decay": 5e-4 if args.weight_decay is None else args.weight_decay,
                "schedule": args.schedule or defaults["schedule"],
                "milestones": list(args.milestones if args.milestones is not None
                                   else defaults["milestones"]),
                "patience": 2 if args.patience is None else args.patience,
                "flip": args.flip, "random_crop": args.random_crop, "lighting": args.lighting,
            }
            self.data_spec = data.canonical_spec(args.data)
            self.seed = 0 if args.seed is None else args.seed

        try:
            self.device = resolve_device(args.device)
        except ValueError as e:
            raise cli.UserError(str(e)) from None
        self.train_set, self.val_set = data.open_splits(self.data_spec, config.image_size,
                                                        seed=self.seed)
        self.classes = list(self.train_set.classes)
        if resume is not None and self.classes != meta["classes"]:
            raise cli.UserError(f"--resume: the classes in {self.data_spec} differ from the "
                                "checkpoint's: resume on the data set it was trained on")
        self.stats = resume[0]["data"] if resume is not None else data.compute_stats(
            self.train_set)

        self.net = AlexNet(config, num_classes=len(self.classes), seed=self.seed)
        self.opt = SGD(self.net.params, self.hp["lr"], self.hp["momentum"],
                       self.hp["weight_decay"])
        if self.hp["schedule"] == "plateau":
            self.schedule = ReduceOnPlateau(self.hp["lr"], patience=self.hp["patience"])
        else:
            self.schedule = StepSchedule(self.hp["lr"], self.hp["milestones"])
        self.epoch = 0  # the epoch in progress (or the next to start)
        self.batch = 0  # batches of self.epoch already trained
        self.sums = {"loss": 0.0, "correct": 0, "seen": 0}  # running train metrics of the epoch
        self.history: list[dict] = []
        self.best_top1 = -1.0
        if resume is not None:
            self._restore(*resume)
        self.net.to(self.device)
        self.opt.velocity = to_device(self.opt.velocity, self.device)

    def _restore(self, arrays, meta):
        for name in self.net.params:
            if name not in arrays["param"] or arrays["param"][name].shape != \
                    self.net.params[name].shape:
                raise cli.UserError(f"--resume: parameter {name} is missing or has another "
                                    "shape in the checkpoint: it belongs to another network")
            self.net.params[name] = arrays["param"][name]
        self.opt.load_state_dict(meta["optimizer"], arrays["velocity"])
        self.schedule.load_state_dict(meta["schedule"])
        self.net.rng.bit_generator.state = meta["dropout_rng"]
        self.epoch, self.batch = meta["epoch"], meta["batch"]
        self.sums = meta["sums"]
        self.history = meta["history"]
        self.best_top1 = meta["best_top1"]

    def save(self, path: Path) -> None:
        meta = {
            "config": self.net.config.to_dict(), "classes": self.classes,
            "data": self.data_spec, "seed": self.seed, "hyper": self.hp,
            "epoch": self.epoch, "batch": self.batch, "sums": self.sums,
            "optimizer": self.opt.state_dict(), "schedule": self.schedule.state_dict(),
            "dropout_rng": self.net.rng.bit_generator.state,
            "history": self.history, "best_top1": self.best_top1,
        }
        checkpoint.save(path, {"param": self.net.params, "velocity": self.opt.velocity,
                               "data": self.stats}, meta)

    def loader(self, epoch: int):
        return data.BatchLoader(
            self.train_set, self.hp["batch_size"], self.net.config.input_size, self.stats,
            train=True, seed=self.seed, epoch=epoch, flip=self.hp["flip"],
            random_crop=self.hp["random_crop"], lighting=self.hp["lighting"],
            num_workers=self.args.num_workers)

    def train_step(self, x, y):
        """One SGD step on a batch; returns (loss, correct top-1 count)."""
        x, y_dev = to_device(x, self.device), to_device(y, self.device)
        loss, logits, dlogits = self.net.loss(x, y_dev, train=True)
        loss = float(loss)
        if not math.isfinite(loss):
            raise NonFiniteLoss(
                f"the loss became {loss} at epoch {self.epoch + 1}, batch {self.batch + 1} "
                f"(learning rate {self.opt.lr:g}); the weights were not updated and the last "
                "good checkpoint is kept: try a smaller --lr")
        self.opt.step(self.net.params, self.net.backward(dlogits))
        return loss, topk_correct(to_numpy(logits), y, 1)


def resume_source(path: str):
    """(arrays, meta, run folder) of a --resume argument (a run folder or a .npz)."""
    arrays, meta = checkpoint.load(path)
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return arrays, meta, folder


def write_metrics(folder: Path, history: list[dict]) -> None:
    """metrics.csv (one row per epoch) and curves.png, both rewritten from the history."""
    if not history:
        return
    path = folder / "metrics.csv"
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)
    from tinyalex.viz import plot_learning_curves

    plot_learning_curves(history, folder / "curves.png")


class StopRequest:
    """Ctrl-C handling: the first SIGINT asks the loop to stop after the current step (so
    parameters are never left half-updated); a second one interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\nstopping after this step (Ctrl-C again to abort without saving)",
                  file=sys.stderr, flush=True)

        self._previous = signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False


def progress_bar(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm  # a well-kept progress bar (ETA, rate, terminal width handled)

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=True,
                disable=not enabled, dynamic_ncols=True, file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_args(args)
    started = time.perf_counter()
    if args.resume:
        arrays, meta, folder = resume_source(args.resume)
        run = Run(args, resume=(arrays, meta))
        out = Path(args.out) if args.out else folder
    else:
        run = Run(args)
        out = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    hp, net = run.hp, run.net
    print(f"tinyalex: {net.config.name} preset ({net.num_params():,} parameters) on "
          f"{run.device}; data {run.data_spec}: {len(run.train_set)} train / "
          f"{len(run.val_set)} val images, {len(run.classes)} classes; run folder {out}",
          flush=True)
    if run.epoch or run.batch:
        print(f"resuming at epoch {run.epoch + 1}, batch {run.batch}", flush=True)

    with StopRequest() as stop:
        while run.epoch < hp["epochs"]:
            loader = run.loader(run.epoch)
            bar = progress_bar(len(loader), run.batch, f"epoch {run.epoch + 1}/{hp['epochs']}",
                               args.progress)
            tick, images = time.perf_counter(), 0
            try:
                for x, y in loader.iterate(start=run.batch):
                    loss, correct = run.train_step(x, y)
                    run.batch += 1
                    run.sums["loss"] += loss * len(y)
                    run.sums["correct"] += correct
                    run.sums["seen"] += len(y)
                    images += len(y)
                    rate = images / max(time.perf_counter() - tick, 1e-9)
                    bar.set_postfix(loss=f"{run.sums['loss'] / run.sums['seen']:.3f}",
                                    acc=f"{run.sums['correct'] / run.sums['seen']:.3f}",
                                    lr=f"{run.opt.lr:.0e}", img_s=f"{rate:.0f}", refresh=False)
                    bar.update(1)
                    if stop.requested:
                        break
            except NonFiniteLoss as e:
                bar.close()
                print(f"error: {e}", file=sys.stderr)
                return 1
            finally:
                bar.close()
            if stop.requested:
                run.save(out / "last.npz")
                print(f"interrupted at epoch {run.epoch + 1}, batch {run.batch}: saved "
                      f"{out / 'last.npz'}; continue with --resume {out}", flush=True)
                return 130
            train_time = time.perf_counter() - tick

            val = evaluate(net, run.val_set, run.stats, num_workers=args.num_workers)
            seen = max(run.sums["seen"], 1)
            row = {"epoch": run.epoch + 1, "lr": run.opt.lr,
                   "train_loss": round(run.sums["loss"] / seen, 6),
                   "train_top1": round(run.sums["correct"] / seen, 6),
                   "val_loss": round(val["loss"], 6), "val_top1": round(val["top1"], 6),
                   "val_top5": round(val["top5"], 6),
                   "images_per_s": round(images / max(train_time, 1e-9), 1),
                   "elapsed_s": round(time.perf_counter() - started, 1)}
            run.history.append(row)
            print(f"epoch {row['epoch']}/{hp['epochs']}: train loss {row['train_loss']:.4f} "
                  f"top-1 {100 * row['train_top1']:.2f}% | val loss {row['val_loss']:.4f} "
                  f"top-1 {100 * row['val_top1']:.2f}% top-5 {100 * row['val_top5']:.2f}% | "
                  f"{row['images_per_s']:.0f} img/s, lr {run.opt.lr:g}", flush=True)
            run.opt.lr = run.schedule.step(1.0 - val["top1"], run.epoch)
            run.epoch, run.batch = run.epoch + 1, 0
            run.sums = {"loss": 0.0, "correct": 0, "seen": 0}
            is_best = val["top1"] > run.best_top1
            run.best_top1 = max(run.best_top1, val["top1"])
            run.save(out / "last.npz")
            if is_best:
                run.save(out / "best.npz")
            write_metrics(out, run.history)

    if run.history:
        last = run.history[-1]
        best = max(run.history, key=lambda r: r["val_top1"])
        print(f"done: val top-1 {100 * last['val_top1']:.2f}%  top-5 "
              f"{100 * last['val_top5']:.2f}% after {last['epoch']} epochs "
              f"(best top-1 {100 * best['val_top1']:.2f}% at epoch {best['epoch']}); "
              f"{time.perf_counter() - started:.0f} s; checkpoints in {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
