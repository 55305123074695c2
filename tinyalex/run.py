"""A training run as a library class: the network, the optimiser and the data of section 5,
one step, one epoch, the validation pass and the checkpoints.

    from tinyalex.run import Run, Settings

    run = Run(Settings(data="builtin", epochs=2))    # the mini preset on the built-in shapes
    while run.epoch < run.hp["epochs"]:
        images, seconds = run.train_epoch()          # the paper's SGD over one epoch
        row, is_best = run.end_epoch(images, seconds)  # validation, schedule, history
    run.save("last.npz")

``python -m tinyalex.train`` is this loop with a command line, a progress bar, Ctrl-C and a
run folder (``tinyalex.runfolder``); the multi-process runs (``tinyalex.distributed``) are
plain subclasses that change how a step, the validation and the saving are shared.

The implementation of the layers (``--impl``) is resolved here, once, for the device the
network will live on (``tinyalex.impl.resolve_impl``), before any data is read; the network and the
optimiser are handed the resolved name. Batches come from ``tinyalex.data.BatchLoader`` (on a
GPU assembled there by ``tinyalex.cuda.staging.GPUFeed``); the running loss of an epoch is kept
by ``Tally``.

Resuming is exact: the batches depend only on the seed and the epoch, the dropout masks on
the seed and the step counter (saved), so a resumed run's weights are bit-identical to an
uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from tinyalex import checkpoint, data
from tinyalex.backend import is_gpu_array, resolve_device, to_device
from tinyalex.cli import UserError, rate_text
from tinyalex.cuda.staging import gpu_batches
from tinyalex.dead_network import DEAD_CHECK_IMAGES, dead_network
from tinyalex.impl import describe_impl, resolve_impl
from tinyalex.metrics import evaluate, has_top5
from tinyalex.model import PRESETS, TRAINING, AlexNet, AlexNetConfig
from tinyalex.optim import SGD, ReduceOnPlateau, StepSchedule

# The step schedule divides the rate by 10 after these fractions of the epochs, unless
# milestones are given: 7 and 9 of 10 epochs, 21 and 27 of 30.
MILESTONE_FRACTIONS = (0.7, 0.9)
INITS = ("paper", "he")  # the named initialisations of Settings.init (see with_init)


@dataclasses.dataclass
class Settings:
    """What a run is asked for: the options of ``python -m tinyalex.train``, same names.

    None means the preset's default (``tinyalex.model.TRAINING``, and section 5's momentum
    0.9 and weight decay 0.0005); the command line's argparse namespace serves as well.
    """

    data: str | None = None  # a data spec (tinyalex.data.open_splits); None: the shapes
    config: str | None = None  # a preset of tinyalex.model.PRESETS
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    init: str | None = None  # "paper" or "he" (with_init)
    schedule: str | None = None  # "step" or "plateau"
    milestones: list[int] | None = None  # epochs after which "step" divides the rate by 10
    patience: int | None = None  # "plateau": epochs without improvement
    flip: bool = True  # augmentation (section 4.1): reflections, random crops, PCA lighting
    random_crop: bool = True
    lighting: bool = True
    num_workers: int = 2  # background threads building batches
    device: str | None = None  # cpu, gpu or auto (tinyalex.backend.resolve_device)
    impl: str | None = None  # textbook, fast, cuda or auto (tinyalex.impl.resolve_impl)
    seed: int | None = None  # weights, shuffling, augmentation, dropout (default 0)


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: the run stops and keeps its last good checkpoint."""


def default_milestones(epochs: int) -> list[int]:
    """The step schedule's milestones for a run of ``epochs``: 70% and 90% of it, rounded
    half up, kept only where a later epoch exists to use the lower rate (none for 1 epoch)."""
    return sorted(m for m in {int(f * epochs + 0.5) for f in MILESTONE_FRACTIONS}
                  if 1 <= m < epochs)  # (no set of every epoch: --epochs may be huge)


def default_preset(spec) -> str:
    """The preset without a config: "fashion" for the 28-pixel IDX sets (fashion-mnist,
    mnist:PATH: the data sets with a test split of their own), "mini" for everything else."""
    return "fashion" if data.has_test_split(spec) else "mini"


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


def hyperparameters(settings, config: AlexNetConfig) -> dict:
    """The hyperparameters of a new run: the settings given, the preset's defaults for the
    rest (a checkpoint stores this dict as "hyper")."""
    defaults = TRAINING[config.name]
    epochs = settings.epochs or defaults["epochs"]
    schedule = settings.schedule or defaults["schedule"]
    if settings.milestones is not None:
        milestones = sorted(settings.milestones)
    else:
        milestones = default_milestones(epochs) if schedule == "step" else []
    return {
        "epochs": epochs,
        "batch_size": settings.batch_size or defaults["batch_size"],
        "lr": settings.lr or defaults["lr"],
        "momentum": 0.9 if settings.momentum is None else settings.momentum,
        "weight_decay": 5e-4 if settings.weight_decay is None else settings.weight_decay,
        "schedule": schedule,
        "milestones": milestones,
        "milestones_given": settings.milestones is not None,
        "patience": 2 if settings.patience is None else settings.patience,
        "flip": settings.flip, "random_crop": settings.random_crop,
        "lighting": settings.lighting,
    }


def batches(loader, start: int, device: str, num_classes: int):
    """The batches of ``loader`` from index ``start`` on, where the network is: on the CPU the
    loader's own (x, y), float32 crops and int64 labels; on a GPU the same batches copied as
    uint8 and assembled there (``tinyalex.cuda.staging.gpu_batches``)."""
    if device != "gpu":
        return loader.iterate(start)
    return gpu_batches(loader, start, num_classes)


class Tally:
    """The epoch's running training loss and top-1 count, read from a GPU in batches of steps.

    sums: the dict to update, {"loss": sum of loss * batch size, "correct": int,
    "seen": int} (a checkpoint stores it). check(loss, batch): called with each step's loss
    (a float) before it is added; the run's check for a non-finite loss. ``add`` takes one
    step's loss and correct count: NumPy values are read at once; GPU values wait until
    ``every`` steps are pending, then all are copied in one transfer and added in order --
    the same sums, in the same order, as on the CPU (a read inside every step would make the
    host wait for the GPU each time).
    """

    READ_EVERY = 50  # training steps between two reads of the running loss from a GPU

    def __init__(self, sums: dict, check, every: int = READ_EVERY):
        self.sums, self.check, self.every = sums, check, int(every)
        self.pending: list = []  # (loss, correct, batch size, batch number) per step

    def add(self, loss, correct, count: int, batch: int) -> bool:
        """Record one step; True when ``sums`` were brought up to date by this call."""
        self.pending.append((loss, correct, int(count), int(batch)))
        if is_gpu_array(loss) and len(self.pending) < self.every:
            return False
        self.read()
        return True

    def read(self) -> None:
        """Add every pending step to ``sums`` (on a GPU: one wait, one copy)."""
        if not self.pending:
            return
        losses, corrects, counts, numbers = zip(*self.pending, strict=True)
        self.pending = []
        if is_gpu_array(losses[0]):
            import cupy

            values = cupy.stack([cupy.stack(losses).astype(np.float64),
                                 cupy.stack(corrects).astype(np.float64)]).get()  # (2, steps)
        else:
            values = np.array([np.asarray(losses, np.float64), np.asarray(corrects, np.float64)])
        for loss, correct, count, batch in zip(*values, counts, numbers, strict=True):
            self.check(float(loss), batch)
            self.sums["loss"] += float(loss) * count
            self.sums["correct"] += int(correct)
            self.sums["seen"] += count


class Run:
    """Everything that changes during training and goes into a checkpoint.

    ``Run(settings)`` starts a run: the device and implementation checked (before any data
    is read), the data opened, the mean image computed, the network initialised from the
    seed, the optimiser and the schedule built. ``Run(settings, resume=(arrays, meta))``
    continues a checkpoint (``tinyalex.checkpoint.load``) with its own hyperparameters
    (only ``epochs``, ``data``, ``device``, ``impl`` and ``num_workers`` may change).

    State: ``net``, ``opt``, ``schedule``, ``epoch`` (the epoch in progress, from 0),
    ``batch`` (its batches already trained), ``sums`` (its running train loss and top-1),
    ``history`` (one row per finished epoch), ``best_top1``, ``saved``.
    """

    is_writer = True  # in a parallel run only rank 0 writes files (tinyalex.distributed)

    def __init__(self, settings, resume=None):
        self.settings = settings
        if resume is not None:
            arrays, meta = resume
            config = AlexNetConfig.from_dict(meta["config"])
            self.hp = meta["hyper"]
            if settings.epochs is not None:  # the only hyperparameter a resume may change
                self.hp["epochs"] = settings.epochs
                if self.hp["schedule"] == "step" and not self.hp.get("milestones_given", True):
                    # milestones that followed the epochs follow the new total: the run then
                    # ends as one trained for that many epochs from the start would
                    self.hp["milestones"] = default_milestones(settings.epochs)
            self.data_spec = (data.canonical_spec(settings.data) if settings.data
                              else meta["data"])
            self.seed = meta["seed"]
            history = meta.get("history") or [{}]
            self.elapsed = float(meta.get("elapsed_s", history[-1].get("elapsed_s", 0.0)))
        else:
            config = with_init(PRESETS[settings.config or default_preset(settings.data)],
                               settings.init)
            self.hp = hyperparameters(settings, config)
            self.data_spec = data.canonical_spec(settings.data)
            self.seed = 0 if settings.seed is None else settings.seed
            self.elapsed = 0.0  # seconds of training before this process (from checkpoints)
        self.clock = time.perf_counter() - self.elapsed  # elapsed_s counts from here

        # The device and the implementation, chosen here once and handed to the network and
        # the optimiser; checked before any data is read (a typo in TINYALEX_KERNELS, --impl
        # fast on a GPU): a SettingError is one line (cli.run).
        self.device = resolve_device(settings.device)
        self.impl = resolve_impl(settings.impl, to_device(np.zeros(1, np.float32), self.device))
        self.train_set, self.val_set = data.open_splits(self.data_spec, config.image_size,
                                                        seed=self.seed)
        self.classes = list(self.train_set.classes)
        if resume is not None and self.classes != meta["classes"]:
            raise UserError(f"--resume: the classes in {self.data_spec} differ from the "
                            f"checkpoint's ({data.class_difference(self.classes, meta['classes'])}"
                            "): resume on the data set it was trained on")
        self.stats = resume[0]["data"] if resume is not None else data.compute_stats(
            self.train_set)

        self.net = AlexNet(config, num_classes=len(self.classes), seed=self.seed,
                           impl=self.impl)
        if resume is not None:
            self._restore_params(arrays["param"])
        self.net.to(self.device)
        # The update runs where the parameters are, in the network's implementation (on a
        # GPU the CPU path's chunked update would launch hundreds of small kernels).
        self.opt = SGD(self.net.params, self.hp["lr"], self.hp["momentum"],
                       self.hp["weight_decay"], impl=self.net.impl)
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
            self._restore(arrays, meta)
            self.saved = (self.epoch, self.batch)

    def _restore_params(self, params: dict) -> None:
        for name in self.net.params:
            if name not in params or params[name].shape != self.net.params[name].shape:
                raise UserError(f"--resume: parameter {name} is missing or has another "
                                "shape in the checkpoint: it belongs to another network")
            self.net.params[name] = params[name]

    def _restore(self, arrays, meta):
        self.opt.load_state_dict(meta["optimizer"], arrays["velocity"])
        self.schedule.load_state_dict(meta["schedule"])
        if self.hp["schedule"] == "step":  # milestones re-planned for a new epoch count
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

    # --- what the start-up lines say -----------------------------------------------------

    def describe_impl(self) -> str:
        """What computes the layers, in a phrase: e.g. ``fast (NumPy + C kernels, 2 threads)``."""
        return describe_impl(self.impl, self.net.params[next(iter(self.net.params))])

    def show_top5(self) -> bool:
        """Whether top-5 means anything here (more than five classes)."""
        return has_top5(len(self.classes))

    # --- training ------------------------------------------------------------------------

    def elapsed_s(self) -> float:
        """Seconds of training so far, including the runs this one resumed."""
        return round(time.perf_counter() - self.clock, 1)

    def loader(self, epoch: int):
        """The training batches of ``epoch``: shuffled and augmented by the seed and epoch."""
        return data.BatchLoader(
            self.train_set, self.hp["batch_size"], self.net.config.input_size, self.stats,
            train=True, seed=self.seed, epoch=epoch, flip=self.hp["flip"],
            random_crop=self.hp["random_crop"], lighting=self.hp["lighting"],
            num_workers=self.settings.num_workers)

    def train_step(self, x, y):
        """One SGD step on a batch; returns (loss, correct top-1 count) as 0-d arrays. On a
        GPU nothing is read back (``Tally`` reads them every few steps); the CPU checks the
        loss before the update."""
        x, y = to_device(x, self.device), to_device(y, self.device)  # staged: already there
        loss, logits, dlogits = self.net.loss(x, y, train=True)
        if self.device == "cpu":
            self.check_loss(float(loss), self.batch + 1)
        self.opt.step(self.net.params, self.net.backward(dlogits))
        return loss, (logits.argmax(axis=1) == y).sum()

    def train_epoch(self, stop=None, on_step=None) -> tuple[int, float]:
        """Train the current epoch from batch ``self.batch`` on; returns (images, seconds).

        stop: a Ctrl-C flag with a ``requested`` attribute; the epoch ends after the step at
        which ``stop_agreed(stop)`` says so (``self.batch`` then tells where). on_step(fresh):
        called after every step, ``fresh`` True when ``self.sums`` were just brought up to
        date. Raises NonFiniteLoss when the loss becomes NaN or infinite.
        """
        tick, images = time.perf_counter(), 0
        tally = Tally(self.sums, self.check_loss)  # on a GPU: read every few steps
        for x, y in batches(self.loader(self.epoch), self.batch, self.device,
                            len(self.classes)):
            loss, correct = self.train_step(x, y)
            self.batch += 1
            images += len(y)
            fresh = tally.add(loss, correct, len(y), self.batch)
            if on_step is not None:
                on_step(fresh)
            if stop is not None and self.stop_agreed(stop):
                break
        tally.read()
        return images, time.perf_counter() - tick

    def end_epoch(self, images: int, seconds: float) -> tuple[dict, bool]:
        """After an epoch's steps: the validation pass, its row of the history, the
        schedule's next rate; returns (row, whether its top-1 is the best so far)."""
        val = self.evaluate()
        seen = max(self.sums["seen"], 1)
        row = {"epoch": self.epoch + 1, "lr": float(rate_text(self.opt.lr)),
               "train_loss": round(self.sums["loss"] / seen, 6),
               "train_top1": round(self.sums["correct"] / seen, 6),
               "val_loss": round(val["loss"], 6), "val_top1": round(val["top1"], 6),
               "val_top5": round(val["top5"], 6) if self.show_top5() else None,
               "images_per_s": round(images / max(seconds, 1e-9), 1),
               "elapsed_s": self.elapsed_s()}
        self.history.append(row)
        self.opt.lr = self.schedule.step(1.0 - val["top1"], self.epoch)
        self.epoch, self.batch = self.epoch + 1, 0
        self.sums = {"loss": 0.0, "correct": 0, "seen": 0}
        is_best = val["top1"] > self.best_top1
        self.best_top1 = max(self.best_top1, val["top1"])
        return row, is_best

    def evaluate(self) -> dict:
        """Validation loss, top-1 and top-5 (tinyalex.metrics); a parallel run shares it."""
        return evaluate(self.net, self.val_set, self.stats,
                        num_workers=self.settings.num_workers)

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
        """``tinyalex.dead_network.dead_network`` on the first validation images."""
        images = np.asarray(self.val_set.images[:DEAD_CHECK_IMAGES])
        return dead_network(self.net, images, self.stats, self.seed)

    # --- checkpoints ---------------------------------------------------------------------

    def save(self, path) -> None:
        """A checkpoint of everything above (``tinyalex.checkpoint``), written atomically."""
        path = Path(path)
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
