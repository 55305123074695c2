"""Train AlexNet: ``python -m tinyalex.train`` (the mini preset on the built-in data set).

    python -m tinyalex.train                                  # mini preset, built-in shapes
    python -m tinyalex.train --data ~/imagenette --config paper --epochs 90
    python -m tinyalex.train --data fashion-mnist             # the fashion preset, 7 epochs
    python -m tinyalex.train --resume runs/20261125-180000    # continue exactly
    mpiexec -n 2 python -m tinyalex.train --parallel data     # 2 processes (tinyalex.distributed)

It first prints the hyperparameters in force and what computes them. Each epoch: the paper's
SGD over shuffled, augmented mini-batches (section 5), a progress bar, then validation
top-1/top-5 on centre crops. The run folder gets ``metrics.csv``, ``curves.png`` and two
checkpoints, ``last.npz`` (every epoch) and ``best.npz`` (best val top-1), written
atomically; a folder that already holds a run is refused (continue it with --resume, or
pick a new --out). Ctrl-C stops after the current step and saves ``last.npz`` including the
position inside the epoch; ``--resume`` then continues as if never stopped: the weights are
bit-identical to an uninterrupted run's (batches depend only on the seed and the epoch, and
the dropout masks on the seed and the step counter, which is saved). A second Ctrl-C stops
at once, keeping the last saved state. After every epoch a check warns, in one line, when
the network stops learning from its input (and once more if it dies).
"""

from __future__ import annotations

# isort: off
import tinyalex.openblas  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on

import argparse
import csv
import math
import signal
import sys
import time
from pathlib import Path

import numpy as np

from tinyalex import checkpoint, cli, data, distributed, storage
from tinyalex.backend import resolve_device, resolve_impl, to_device, to_numpy
from tinyalex.cuda import staging
from tinyalex.evaluate import class_difference, evaluate, has_top5
from tinyalex.model import PRESETS, AlexNet, AlexNetConfig
from tinyalex.optim import SGD, ReduceOnPlateau, StepSchedule

# Defaults per preset: what `python -m tinyalex.train --config NAME` uses unless overridden.
# mini: a short step schedule that fits the 10-minute laptop budget; paper: section 5.
DEFAULTS = {
    "mini": dict(epochs=10, batch_size=64, lr=0.01, schedule="step"),
    "paper": dict(epochs=90, batch_size=128, lr=0.01, schedule="plateau"),
    "fashion": dict(epochs=7, batch_size=128, lr=0.02, schedule="step"),
}
# The step schedule divides the rate by 10 after these fractions of the epochs, unless
# --milestones says otherwise: 7 and 9 of 10 epochs, 21 and 27 of 30.
MILESTONE_FRACTIONS = (0.7, 0.9)
RUN_FILES = ("last.npz", "best.npz", "metrics.csv")  # a folder with one of these holds a run
INITS = ("paper", "he")  # the named initialisations of --init (see with_init)


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: the run stops and keeps its last good checkpoint."""


def build_parser() -> argparse.ArgumentParser:
    """The command line of this program (``--help`` shows it)."""
    p = argparse.ArgumentParser(prog="python -m tinyalex.train",
                                description=cli.description(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None,
                   help="train/<class>/ (+ val/<class>/) folder, cifar10:PATH, fashion-mnist"
                        "[:PATH], mnist:PATH or builtin (default: the built-in shapes set, "
                        "generated on first use)")
    p.add_argument("--config", choices=sorted(PRESETS), default=None,
                   help="network preset (default: fashion for fashion-mnist and mnist:PATH, "
                        "mini for the rest; on --resume, the checkpoint's)")
    p.add_argument("--epochs", type=int, default=None,
                   help="total epochs (mini 10, fashion 7, paper 90); with --resume, train a "
                        "finished run longer")
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini 64, fashion and paper 128")
    p.add_argument("--lr", type=float, default=None,
                   help="initial learning rate (0.01; fashion 0.02)")
    p.add_argument("--momentum", type=float, default=None, help="0.9 (section 5)")
    p.add_argument("--weight-decay", type=float, default=None, help="0.0005 (section 5)")
    p.add_argument("--init", choices=INITS, default=None,
                   help="weight initialisation: paper (N(0, 0.01^2), biases 1 in conv2, 4, 5, "
                        "fc6, fc7; the paper preset's) or he (N(0, 2/fan_in), biases 0, "
                        "pixels scaled to unit size; the mini preset's)")
    p.add_argument("--schedule", choices=("step", "plateau"), default=None,
                   help="step: divide the rate by 10 at --milestones (mini); plateau: divide "
                        "it by 10 when val error stops improving for --patience epochs, at "
                        "most 3 times (paper)")
    p.add_argument("--milestones", type=int, nargs="*", default=None,
                   help="epochs after which the step schedule divides the rate by 10 "
                        "(default: 70%% and 90%% of --epochs, rounded: 7 9 of 10)")
    p.add_argument("--patience", type=int, default=None, help="plateau schedule: epochs (2)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no random reflections")
    p.add_argument("--no-crop", dest="random_crop", action="store_false",
                   help="centre crops instead of random crops when training")
    p.add_argument("--no-lighting", dest="lighting", action="store_false",
                   help="no PCA colour augmentation")
    p.add_argument("--num-workers", type=int, default=2,
                   help="background threads building batches (default 2)")
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default=None,
                   help="default: $TINYALEX_DEVICE or auto (the GPU when CuPy sees one)")
    p.add_argument("--out", default=None,
                   help="run folder (default runs/<timestamp>); one that holds a run is refused")
    p.add_argument("--resume", default=None,
                   help="a run folder (its last.npz) or checkpoint to continue")
    p.add_argument("--seed", type=int, default=None,
                   help="initial weights, shuffling, augmentation, dropout (default 0)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (for logs)")
    cli.add_impl_option(p)
    p.add_argument("--parallel", choices=("data", "towers"), default=None,
                   help="several processes, started by mpiexec: data = each trains on its rows "
                        "of every batch; towers = 2 processes, half of every layer each "
                        "(section 3.2); see tinyalex.distributed")
    return p


def parse_args(argv):
    return build_parser().parse_args(argv)


def check_args(args) -> None:
    cli.positive("--epochs", args.epochs)
    cli.positive("--batch-size", args.batch_size)
    cli.positive("--num-workers", args.num_workers, minimum=0)
    if args.lr is not None and not args.lr > 0:
        raise cli.UserError(f"--lr must be > 0, got {args.lr}")
    if args.resume:
        fixed = [name for name in ("batch_size", "lr", "momentum", "weight_decay", "init",
                                   "schedule", "milestones", "patience", "seed")
                 if getattr(args, name) is not None]
        fixed += [name for name in ("flip", "random_crop", "lighting") if not getattr(args, name)]
        if fixed:
            names = ", ".join("--" + name.replace("_", "-") for name in fixed)
            raise cli.UserError(f"--resume continues a run with its own settings; {names} "
                                "cannot change (only --epochs, --data, --out, --device, "
                                "--impl, --num-workers may): drop them, or start a new run")




def default_milestones(epochs: int) -> list[int]:
    """The step schedule's milestones for a run of ``epochs``: 70% and 90% of it, rounded
    half up, kept only where a later epoch exists to use the lower rate (none for 1 epoch)."""
    return sorted({int(f * epochs + 0.5) for f in MILESTONE_FRACTIONS} & set(range(1, epochs)))


def default_preset(spec) -> str:
    """The preset without --config: "fashion" for the 28-pixel IDX sets (fashion-mnist,
    mnist:PATH), sized for their images; "mini" for everything else."""
    return "fashion" if spec and data.parse_spec(spec) else "mini"


def with_init(config: AlexNetConfig, init: str | None) -> AlexNetConfig:
    """The config with the named initialisation of ``--init`` (unchanged for None).

    "paper" (section 5): weights N(0, 0.01^2), biases 1 in conv2, conv4, conv5, fc6, fc7, the
    raw centred pixels as input. "he": what the mini preset uses (see tinyalex.model): hidden
    weights N(0, 2 / fan_in), fc8 N(0, 0.01^2), biases 0, pixels scaled by 1/64.
    """
    if init is None or init == config.init:
        return config
    if init == "paper":
        return config.replace(init="paper", input_scale=1.0,
                              bias_one=PRESETS["paper"].bias_one)
    return config.replace(init="he", input_scale=PRESETS["mini"].input_scale, bias_one=())


def rate_text(rate: float) -> str:
    """A learning rate as a person writes it: 0.0001, not 0.00010000000000000002."""
    return f"{rate:.6g}"


def implementation(net) -> str:
    """What computes the layers, for the start-up line: e.g. ``fast (NumPy, 2 threads)``."""
    from tinyalex.backend import describe_impl

    return describe_impl(net.impl, net.params[next(iter(net.params))])


def settings_line(hp: dict, config: AlexNetConfig, net) -> str:
    """The hyperparameters in force, as the start-up line prints them."""
    if hp["schedule"] == "plateau":
        schedule = (f"plateau x0.1 after {cli.plural(hp['patience'], 'epoch')} without "
                    "improvement, at most 3 times")
    elif hp["milestones"]:
        schedule = ("step x0.1 at epoch" + ("s " if len(hp["milestones"]) > 1 else " ")
                    + ", ".join(str(m) for m in hp["milestones"]))
    else:
        schedule = "constant (no milestone)"
    off = [name for key, name in (("random_crop", "no random crop"), ("flip", "no flip"),
                                  ("lighting", "no lighting")) if not hp[key]]
    return (f"lr {rate_text(hp['lr'])}, batch {hp['batch_size']}, schedule {schedule}, "
            f"momentum {hp['momentum']:g}, weight decay {rate_text(hp['weight_decay'])}, "
            f"init {config.init}" + "".join(", " + o for o in off)
            + f"; implementation {implementation(net)}")


# --- the dead-network check ------------------------------------------------------------------
# After every epoch the network is shown the first DEAD_CHECK_IMAGES validation images
# (centre crops, dropout off). It has stopped learning from them when no class's softmax
# probability varies by as much as SAME_ANSWER between them: it gives every image the same
# answer, so its validation loss is flat at about ln(classes) or above. A healthy network,
# even one epoch into a short run, answers differently for different images. It is dead
# when, besides, a ReLU layer is silent (fewer than SILENT of its outputs positive): ReLU's
# derivative is 0 where it is off, so (almost) no gradient reaches the layers below it and
# training on cannot revive them. The warning names the likely cause: steps too large (the
# training loss rose far above ln(classes) in the first epoch), or an initialisation that
# passes too little of the image to the output (the same network, freshly initialised,
# answers every image alike too).
SAME_ANSWER = 0.01
SILENT = 0.01
DEAD_CHECK_IMAGES = 64


def answers(net, x) -> tuple[float, dict]:
    """(spread, active) for network inputs x (N, 3, crop, crop), dropout off: the largest
    change of any class probability between the images, and for each ReLU step the fraction
    of its outputs that are positive."""
    from tinyalex.layers import softmax

    probs = to_numpy(softmax(net.forward(to_device(x, net.device), keep_activations=True)))
    active = {step.name: float((to_numpy(net.activations[step.name]) > 0).mean())
              for step in net.steps if step.kind == "relu"}
    net.activations = {}
    return float((probs.max(axis=0) - probs.min(axis=0)).max()), active   # (N, C) -> one


def dead_network(net, images: np.ndarray, stats: dict, seed: int) -> dict | None:
    """None while the network answers differently for different images; when it gives them
    all the same answer, {"images", "spread", "layer", "active", "spread_at_init"}: the number
    of images checked, the largest change of any class probability between them, the ReLU
    step with the fewest positive outputs and that fraction, and the spread of the same
    network at its initialisation (drawn again from its config and ``seed``).

    images: uint8 (N, S, S, 3), N >= 2 (centre-cropped and mean-subtracted here).
    """
    from tinyalex.data import center_crop_batch

    x = center_crop_batch(images, stats["mean"], net.config.input_size)   # (N, 3, crop, crop)
    spread, active = answers(net, x)
    if len(x) < 2 or not spread < SAME_ANSWER:  # (NaN outputs: the next step stops the run)
        return None
    layer = min(active, key=active.get)
    initial = AlexNet(net.config, seed=seed).to(net.device)
    return {"images": len(x), "spread": spread, "layer": layer, "active": active[layer],
            "spread_at_init": answers(initial, x)[0]}


def dead_recipe(config: AlexNetConfig, lr: float) -> str:
    """The options that start a network of this config learning (README: A dead network)."""
    if config.init == "paper":
        return "--init he"
    return f"--lr {rate_text(lr / 10)}"


def dead_warning(dead: dict, net, epoch: int, history: list[dict], lr: float) -> str:
    """The one-line warning: what shows that the network is dead, the likely cause, the
    recipe."""
    classes = net.config.num_classes
    silent = dead["active"] < SILENT
    state = "is dead" if silent else "has stopped learning"
    text = (f"warning: the network {state} after epoch {epoch}: it gives all "
            f"{dead['images']} validation images checked the same answer (val loss "
            f"{history[-1]['val_loss']:.4g}; ln {classes} = {math.log(classes):.4g})")
    names = [step.name for step in net.steps]
    layer = names[names.index(dead["layer"]) - 1]  # the conv or fc step the ReLU follows
    if silent:
        text += (f" and {100 * (1 - dead['active']):.1f}% of {layer}'s ReLU outputs are 0, so "
                 f"almost no gradient reaches the layers below {layer}")
    first = history[0]["train_loss"]
    if first > 1.5 * math.log(classes):
        text += (f". Likely cause: steps too large for this initialisation at lr "
                 f"{rate_text(lr)} (epoch 1's training loss was {first:.3g})")
    elif dead["spread_at_init"] < SAME_ANSWER:
        text += (f". Likely cause: its initialisation ({net.config.init}) passes too little "
                 "of the image to the output (it answered every image alike before training "
                 "too)")
    text += ". Training on will not revive it" if silent else ". It may not recover"
    return (text + f": start a new run with {dead_recipe(net.config, lr)} (README: A dead "
            "network)")


class Run:
    """Everything that changes during training and goes into a checkpoint."""

    is_writer = True  # in a parallel run only rank 0 writes files (tinyalex.distributed)

    def __init__(self, args, resume=None):
        self.args = args
        if resume is not None:
            arrays, meta = resume
            config = AlexNetConfig.from_dict(meta["config"])
            self.hp = meta["hyper"]
            if args.epochs is not None:  # the only hyperparameter a resume may change
                self.hp["epochs"] = args.epochs
                if self.hp["schedule"] == "step" and not self.hp.get("milestones_given", True):
                    # milestones that followed --epochs follow the new total: the run then
                    # ends as one trained for that many epochs from the start would
                    self.hp["milestones"] = default_milestones(args.epochs)
            self.data_spec = data.canonical_spec(args.data) if args.data else meta["data"]
            self.seed = meta["seed"]
            history = meta.get("history") or [{}]
            self.elapsed = float(meta.get("elapsed_s", history[-1].get("elapsed_s", 0.0)))
        else:
            config = with_init(PRESETS[args.config or default_preset(args.data)], args.init)
            defaults = DEFAULTS[config.name]
            epochs = args.epochs or defaults["epochs"]
            schedule = args.schedule or defaults["schedule"]
            if args.milestones is not None:
                milestones = sorted(args.milestones)
            else:
                milestones = default_milestones(epochs) if schedule == "step" else []
            self.hp = {
                "epochs": epochs,
                "batch_size": args.batch_size or defaults["batch_size"],
                "lr": args.lr or defaults["lr"],
                "momentum": 0.9 if args.momentum is None else args.momentum,
                "weight_decay": 5e-4 if args.weight_decay is None else args.weight_decay,
                "schedule": schedule,
                "milestones": milestones,
                "milestones_given": args.milestones is not None,
                "patience": 2 if args.patience is None else args.patience,
                "flip": args.flip, "random_crop": args.random_crop, "lighting": args.lighting,
            }
            self.data_spec = data.canonical_spec(args.data)
            self.seed = 0 if args.seed is None else args.seed
            self.elapsed = 0.0  # seconds of training before this process (from checkpoints)
        self.clock = time.perf_counter() - self.elapsed  # elapsed_s counts from here

        # The device and the implementation are checked before any data is read (a typo in
        # TINYALEX_KERNELS, --impl fast on a GPU): a SettingError is one line (cli.run).
        self.device = resolve_device(args.device)
        resolve_impl(args.impl, to_device(np.zeros(1, np.float32), self.device))
        self.train_set, self.val_set = data.open_splits(self.data_spec, config.image_size,
                                                        seed=self.seed)
        self.classes = list(self.train_set.classes)
        if resume is not None and self.classes != meta["classes"]:
            raise cli.UserError(f"--resume: the classes in {self.data_spec} differ from the "
                                f"checkpoint's ({class_difference(self.classes, meta['classes'])}"
                                "): resume on the data set it was trained on")
        self.stats = resume[0]["data"] if resume is not None else data.compute_stats(
            self.train_set)

        self.net = AlexNet(config, num_classes=len(self.classes), seed=self.seed,
                           impl=args.impl or "auto")
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
        self.saved = None  # (epoch, batch) of the last checkpoint written or resumed from
        if resume is not None:
            self._restore(*resume)
            self.saved = (self.epoch, self.batch)
        self.net.to(self.device)
        # The update's implementation follows the parameters to their device (on a GPU the
        # CPU path's chunked update would launch hundreds of small kernels per parameter).
        velocity = to_device(self.opt.velocity, self.device)
        self.opt = SGD(self.net.params, self.opt.lr, self.hp["momentum"],
                       self.hp["weight_decay"], impl=self.net.impl)
        self.opt.velocity = velocity

    def _restore(self, arrays, meta):
        for name in self.net.params:
            if name not in arrays["param"] or arrays["param"][name].shape != \
                    self.net.params[name].shape:
                raise cli.UserError(f"--resume: parameter {name} is missing or has another "
                                    "shape in the checkpoint: it belongs to another network")
            self.net.params[name] = arrays["param"][name]
        self.opt.load_state_dict(meta["optimizer"], arrays["velocity"])
        self.schedule.load_state_dict(meta["schedule"])
        if self.hp["schedule"] == "step":  # milestones re-planned for a new --epochs
            self.schedule.milestones = list(self.hp["milestones"])
            self.opt.lr = self.schedule.lr = self.schedule.rate_at(meta["epoch"])
        # The dropout masks are a function of the step counter (tinyalex.noise); a checkpoint
        # from before it existed continues with the number of steps trained.
        self.net.dropout_step = meta.get("dropout_step", meta["epoch"] * len(self.loader(0))
                                         + meta["batch"])
        self.epoch, self.batch = meta["epoch"], meta["batch"]
        self.sums = meta["sums"]
        self.history = meta["history"]
        self.best_top1 = meta["best_top1"]

    def elapsed_s(self) -> float:
        """Seconds of training so far, including the runs this one resumed."""
        return round(time.perf_counter() - self.clock, 1)

    def save(self, path: Path) -> None:
        meta = {
            "config": self.net.config.to_dict(), "classes": self.classes,
            "data": self.data_spec, "seed": self.seed, "hyper": self.hp,
            "epoch": self.epoch, "batch": self.batch, "sums": self.sums,
            "optimizer": self.opt.state_dict(), "schedule": self.schedule.state_dict(),
            "dropout_step": self.net.dropout_step,
            "history": self.history, "best_top1": self.best_top1,
            "elapsed_s": self.elapsed_s(),
        }
        checkpoint.save(path, {"param": self.net.params, "velocity": self.opt.velocity,
                               "data": self.stats}, meta)
        if path.name == "last.npz":
            self.saved = (self.epoch, self.batch)

    def loader(self, epoch: int):
        return data.BatchLoader(
            self.train_set, self.hp["batch_size"], self.net.config.input_size, self.stats,
            train=True, seed=self.seed, epoch=epoch, flip=self.hp["flip"],
            random_crop=self.hp["random_crop"], lighting=self.hp["lighting"],
            num_workers=self.args.num_workers)

    def train_step(self, x, y):
        """One SGD step on a batch; returns (loss, correct top-1 count) as 0-d arrays. On the
        GPU nothing is read back (staging.Tally reads them every few steps); the CPU checks
        the loss before the update."""
        x, y = to_device(x, self.device), to_device(y, self.device)  # staged: already there
        loss, logits, dlogits = self.net.loss(x, y, train=True)
        if self.device == "cpu":
            self.check_loss(float(loss), self.batch + 1)
        self.opt.step(self.net.params, self.net.backward(dlogits))
        return loss, (logits.argmax(axis=1) == y).sum()

    def evaluate(self) -> dict:
        """Validation loss, top-1 and top-5 (tinyalex.evaluate); a parallel run shares it."""
        return evaluate(self.net, self.val_set, self.stats, num_workers=self.args.num_workers)

    def stop_agreed(self, stop) -> bool:
        """Whether to stop after this step (Ctrl-C); the processes of a parallel run agree."""
        return stop.requested

    def check_loss(self, loss: float, batch: int) -> None:
        """NonFiniteLoss when batch ``batch`` of this epoch had a NaN or infinite loss."""
        if not math.isfinite(loss):
            raise NonFiniteLoss(
                f"the loss became {loss} at epoch {self.epoch + 1}, batch {batch} (learning "
                f"rate {rate_text(self.opt.lr)}); the run stops and the last good checkpoint "
                "is kept: try a smaller --lr")

    def dead_check(self) -> dict | None:
        """``dead_network`` on the first validation images."""
        images = np.asarray(self.val_set.images[:DEAD_CHECK_IMAGES])
        return dead_network(self.net, images, self.stats, self.seed)


def resume_source(path: str):
    """(arrays, meta, run folder) of a --resume argument (a run folder: its last.npz, or a
    .npz)."""
    _, arrays, meta = checkpoint.load_checked(path, resume=True)  # validated before use
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return arrays, meta, folder


def run_files(folder: Path) -> list[str]:
    """The files of a training run in ``folder`` (none: the folder is free for a new run)."""
    return [name for name in RUN_FILES if (Path(folder) / name).exists()]


def refuse_run_folder(folder: Path, resume_hint: bool = True) -> None:
    """A UserError when ``folder`` holds a run: a new run there would overwrite it."""
    found = run_files(folder)
    if found:
        hint = f"continue it with --resume {folder}, or " if resume_hint else ""
        raise cli.UserError(f"{folder} already holds a run ({', '.join(found)}); nothing was "
                            f"written: {hint}pass a new --out name")


def default_out() -> Path:
    """runs/<timestamp>, with a suffix when a run started in the same second already has it."""
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    out, n = base, 1
    while run_files(out):
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def check_resume(meta: dict, path, args) -> None:
    """A UserError when --resume cannot continue this checkpoint with these arguments."""
    missing = [key for key in ("config", "hyper", "epoch", "batch", "optimizer", "history")
               if key not in meta]
    if missing:
        raise cli.UserError(f"--resume: {path} is not a checkpoint of a training run (it lacks "
                            f"{', '.join(missing)}): pass a run folder or its last.npz")
    name = meta["config"].get("name")
    if args.config is not None and args.config != name:
        raise cli.UserError(f"--resume: the checkpoint is from config '{name}', not "
                            f"'{args.config}': drop --config or pass --config {name}")


def finished_message(meta: dict, folder: Path, epochs: int) -> str | None:
    """What to say when --resume is given a run with nothing left to train (else None)."""
    done = meta["epoch"]
    if meta["batch"] or done < epochs:
        return None
    history = meta.get("history") or []
    best = (max(history, key=lambda r: r["val_top1"]) if history else None)
    best_text = (f" (best val top-1 {100 * best['val_top1']:.2f}% at epoch {best['epoch']})"
                 if best else "")
    asked = "" if epochs == meta["hyper"]["epochs"] else f", and --epochs {epochs} asks no more"
    rate = meta.get("optimizer", {}).get("lr")
    rate_text_ = f" (it goes on at lr {rate_text(rate)})" if rate else ""
    return (f"{folder} is finished: {cli.plural(done, 'epoch')} trained{best_text}{asked}; nothing "
            f"to do. To train it longer, pass the new total{rate_text_}: python -m "
            f"tinyalex.train --resume {folder} --epochs {done + max(1, done // 2)}")


RUN_FOLDER_FIX = "pass --out a folder on a disk with room"


def check_room(run: Run, out: Path) -> None:
    """Stop before training (NotEnoughRoom: one line, exit status 2) when the disk of ``out``
    cannot hold the run's checkpoints at their peak: last.npz, best.npz and the temporary copy
    written before it replaces one of them, three checkpoints (params, momentum buffers, data
    statistics and the metadata), less what those already there take (a resumed run)."""
    size = checkpoint.estimate_size(
        {"param": run.net.params, "velocity": run.opt.velocity, "data": run.stats},
        meta_bytes=65536 + 300 * run.hp["epochs"])
    held = sum((out / name).stat().st_size for name in ("last.npz", "best.npz")
               if (out / name).is_file())
    storage.check_room(out, 3 * size - held,
                       f"this run's checkpoints (last.npz, best.npz and a temporary copy while "
                       f"one is replaced: 3 x {storage.human(size)})", RUN_FOLDER_FIX)


def write_failed(error: storage.WriteError, run: Run, out: Path) -> None:
    """Complete a WriteError of the run folder with the way out and what was kept."""
    error.fix = RUN_FOLDER_FIX
    if run.saved is not None and (out / "last.npz").is_file():
        error.after = (f"; {out / 'last.npz'} keeps {position(*run.saved)} (continue with "
                       f"--resume {out}, adding --out for a new folder)")
    else:
        error.after = "; nothing of this run was saved"


def write_metrics(folder: Path, history: list[dict]) -> None:
    """metrics.csv (one row per epoch) and curves.png, both rewritten from the history."""
    if not history:
        return
    with storage.atomic_file(folder / "metrics.csv", "w") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)  # None (top-5 with <= 5 classes) is written as empty
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
            print("\nstopping after this step (Ctrl-C again to stop at once, keeping the "
                  "last saved state)", file=sys.stderr, flush=True)

        self._previous = signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False


def progress_bar(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm  # a well-kept progress bar (ETA, rate, terminal width handled)

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=True,
                disable=not enabled, dynamic_ncols=True, file=sys.stderr)


def position(epoch: int, batch: int) -> str:
    """Where a checkpoint stands, in words."""
    if batch:
        return f"epoch {epoch + 1}, batch {batch}"
    return f"the end of epoch {epoch}" if epoch else "the start"


def main(argv=None) -> int:
    args = parse_args(argv)
    check_args(args)
    if args.parallel or distributed.launched_processes() > 1:  # started by mpiexec
        return distributed.run(args, training, Run)  # every process runs training()
    return training(args)


def training(args, Runner=Run) -> int:
    """The training program after its arguments are checked. Runner: Run, or its parallel
    twin (tinyalex.distributed)."""
    run = out = None
    created = False
    try:
        if args.resume:
            arrays, meta, folder = resume_source(args.resume)
            check_resume(meta, args.resume, args)
            message = finished_message(meta, folder, args.epochs or meta["hyper"]["epochs"])
            if message:
                print(message, flush=True)
                return 0
            out = Path(args.out) if args.out else folder
            if out.resolve() != folder.resolve():
                refuse_run_folder(out, resume_hint=False)
            run = Runner(args, resume=(arrays, meta))
        else:
            out = Path(args.out) if args.out else default_out()
            refuse_run_folder(out)
            run = Runner(args)
        check_room(run, out)  # before anything is written or trained
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        return train(run, out)
    except storage.WriteError as e:
        if run is not None:  # (a failed write to the data cache has its own way out)
            write_failed(e, run, out)
        raise
    except KeyboardInterrupt:
        if run is not None and run.saved is not None:
            print(f"\ninterrupted at once: the step in progress was dropped; "
                  f"{out / 'last.npz'} keeps {position(*run.saved)}: continue with --resume "
                  f"{out}", file=sys.stderr, flush=True)
        else:
            if created and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # nothing of this run was written: leave no empty folder
            print("\ninterrupted before anything was saved", file=sys.stderr, flush=True)
        return cli.EXIT_INTERRUPTED


def train(run: Run, out: Path) -> int:
    """The epochs of a run into folder ``out``; returns the exit status."""
    args, hp, net = run.args, run.hp, run.net
    show5 = has_top5(len(run.classes))
    print(f"tinyalex: {net.config.name} preset ({net.num_params():,} parameters) on "
          f"{run.device}; data {run.data_spec}: {len(run.train_set)} train / "
          f"{len(run.val_set)} val images, {len(run.classes)} classes; run folder {out}",
          flush=True)
    print(settings_line(hp, net.config, net), flush=True)
    if run.epoch or run.batch:
        print(f"resuming at epoch {run.epoch + 1}, batch {run.batch} of {hp['epochs']} epochs",
              flush=True)

    warned = None  # the state the dead-network check last reported
    with StopRequest() as stop:
        while run.epoch < hp["epochs"]:
            if run.stop_agreed(stop):  # Ctrl-C during the validation pass or the saving
                print(f"interrupted: {out / 'last.npz'} keeps {position(*run.saved)}; "
                      f"continue with --resume {out}", flush=True)
                return cli.EXIT_INTERRUPTED
            loader = run.loader(run.epoch)
            bar = progress_bar(len(loader), run.batch, f"epoch {run.epoch + 1}/{hp['epochs']}",
                               args.progress)
            tick, images = time.perf_counter(), 0
            tally = staging.Tally(run.sums, run.check_loss)  # GPU: read every few steps
            try:
                for x, y in staging.batches(loader, run.batch, run.device, len(run.classes)):
                    loss, correct = run.train_step(x, y)
                    run.batch += 1
                    images += len(y)
                    if tally.add(loss, correct, len(y), run.batch):  # run.sums are current
                        rate = images / max(time.perf_counter() - tick, 1e-9)
                        bar.set_postfix(loss=f"{run.sums['loss'] / run.sums['seen']:.3f}",
                                        acc=f"{run.sums['correct'] / run.sums['seen']:.3f}",
                                        lr=rate_text(run.opt.lr), img_s=f"{rate:.0f}",
                                        refresh=False)
                    bar.update(1)
                    if run.stop_agreed(stop):
                        break
                tally.read()
            except NonFiniteLoss as e:
                bar.close()
                print(f"error: {e}", file=sys.stderr)
                return 1
            finally:
                bar.close()
            if run.stop_agreed(stop):
                run.save(out / "last.npz")
                print(f"interrupted at epoch {run.epoch + 1}, batch {run.batch}: saved "
                      f"{out / 'last.npz'}; continue with --resume {out}", flush=True)
                return cli.EXIT_INTERRUPTED
            train_time = time.perf_counter() - tick

            val = run.evaluate()
            seen = max(run.sums["seen"], 1)
            row = {"epoch": run.epoch + 1, "lr": float(rate_text(run.opt.lr)),
                   "train_loss": round(run.sums["loss"] / seen, 6),
                   "train_top1": round(run.sums["correct"] / seen, 6),
                   "val_loss": round(val["loss"], 6), "val_top1": round(val["top1"], 6),
                   "val_top5": round(val["top5"], 6) if show5 else None,
                   "images_per_s": round(images / max(train_time, 1e-9), 1),
                   "elapsed_s": run.elapsed_s()}
            run.history.append(row)
            top5 = f" top-5 {100 * row['val_top5']:.2f}%" if show5 else ""
            print(f"epoch {row['epoch']}/{hp['epochs']}: train loss {row['train_loss']:.4f} "
                  f"top-1 {100 * row['train_top1']:.2f}% | val loss {row['val_loss']:.4f} "
                  f"top-1 {100 * row['val_top1']:.2f}%{top5} | "
                  f"{row['images_per_s']:.0f} img/s, lr {rate_text(run.opt.lr)}", flush=True)
            if warned != "dead":  # one line when it stops learning, one more if it dies
                dead = run.dead_check()
                state = dead and ("dead" if dead["active"] < SILENT else "stopped")
                if dead and state != warned:
                    print(dead_warning(dead, net, row["epoch"], run.history, hp["lr"]),
                          file=sys.stderr, flush=True)
                    warned = state
            run.opt.lr = run.schedule.step(1.0 - val["top1"], run.epoch)
            run.epoch, run.batch = run.epoch + 1, 0
            run.sums = {"loss": 0.0, "correct": 0, "seen": 0}
            is_best = val["top1"] > run.best_top1
            run.best_top1 = max(run.best_top1, val["top1"])
            run.save(out / "last.npz")
            if is_best:
                run.save(out / "best.npz")
            if run.is_writer:
                write_metrics(out, run.history)

    if run.history:
        last = run.history[-1]
        best = max(run.history, key=lambda r: r["val_top1"])
        top5 = f"  top-5 {100 * last['val_top5']:.2f}%" if show5 else ""
        print(f"done: val top-1 {100 * last['val_top1']:.2f}%{top5} after "
              f"{cli.plural(last['epoch'], 'epoch')} (best top-1 {100 * best['val_top1']:.2f}% at "
              f"epoch {best['epoch']}); {run.elapsed_s():.0f} s; checkpoints in {out}",
              flush=True)
    return 0


def command() -> int:
    """The ``tinyalex-train`` console script."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(command())
