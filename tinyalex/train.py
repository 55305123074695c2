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
atomically; a folder that already holds a run is refused (continue it with --resume, or pick
a new --out), and so is one that another training holds: a run claims its folder before any
work (tinyalex.runfolder). Ctrl-C stops after the current step and saves ``last.npz``
including the position inside the epoch; ``--resume`` then continues as if never stopped:
the weights are bit-identical to an uninterrupted run's (batches depend only on the seed and
the epoch, and the dropout masks on the seed and the step counter, which is saved). A second
Ctrl-C stops at once, keeping the last saved state. After every epoch a check warns, in one
line, when the network stops learning from its input (and once more if it dies).

This file is the command line and the loop; the run itself (network, optimiser, data, one
step, one epoch, checkpoints) is the library class ``tinyalex.run.Run``, the folder's rules
are ``tinyalex.runfolder``'s. Where stderr is not a terminal (a log file, ``nohup``, CI) there
is no progress bar: the per-epoch lines only.
"""

from __future__ import annotations

# isort: off
import tinyalex.threads  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on

import argparse
import csv
import signal
import sys
import time
from pathlib import Path

from tinyalex import checkpoint, cli, distributed, runfolder, storage
from tinyalex.cli import rate_text
from tinyalex.dead_network import SILENT, dead_warning
from tinyalex.model import PRESETS
from tinyalex.run import INITS, NonFiniteLoss, Run, Settings
from tinyalex.runfolder import (
    check_room,
    default_out,
    position,
    refuse_run_folder,
    write_failed,
)


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


def parse_args(argv) -> Settings:
    """The command line as the run's Settings (plus out, resume, progress, parallel)."""
    return build_parser().parse_args(argv)


def check_args(args) -> None:
    cli.positive("--epochs", args.epochs)
    cli.positive("--batch-size", args.batch_size)
    cli.positive("--num-workers", args.num_workers, minimum=0)
    cli.positive("--patience", args.patience, minimum=0)
    for milestone in args.milestones or ():
        cli.positive("--milestones", milestone)
    cli.integer_in("--seed", args.seed, 0, 2**32 - 1)  # what NumPy's generators accept
    cli.finite("--lr", args.lr, 0, low_open=True)
    cli.finite("--momentum", args.momentum, 0, 1, high_open=True)
    cli.finite("--weight-decay", args.weight_decay, 0)
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




def main(argv=None) -> int:
    args = parse_args(argv)
    check_args(args)
    if args.parallel or distributed.launched_processes() > 1:  # started by mpiexec
        return distributed.run(args, training)  # every process runs training()
    return training(args)


def training(args, Runner=Run) -> int:
    """The training program after its arguments are checked. Runner: Run, or one of its
    parallel subclasses (tinyalex.distributed). The run folder is claimed
    (tinyalex.runfolder) before any data is read, by the one process that writes it, and
    released at the end whatever happens."""
    run = out = claim = None
    writer = (distributed.launcher() or (0, 1))[0] == 0  # rank 0 writes; others never claim
    try:
        if args.resume:
            arrays, meta, folder = resume_source(args.resume)
            check_resume(meta, args)
            message = finished_message(meta, folder, args.epochs or meta["hyper"]["epochs"])
            if message:
                print(message, flush=True)
                return 0
            out = Path(args.out) if args.out else folder
            claim = runfolder.claim(out) if writer else None
            if out.resolve() != folder.resolve():
                refuse_run_folder(out, resume_hint=False)
            else:
                runfolder.refuse_older(args.resume, meta, folder)
            run = Runner(args, resume=(arrays, meta))
        else:
            named = args.out and not getattr(args, "out_is_default", False)
            if named or not writer:
                out = Path(args.out) if args.out else default_out()
                claim = runfolder.claim(out) if writer else None
                refuse_run_folder(out)
            else:  # runs/<timestamp>, or -2, -3, ... when another run has it
                claim = runfolder.claim_new(Path(args.out) if args.out else default_out())
                out = claim.folder
            run = Runner(args)
        check_room(run, out)  # before anything is written or trained
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
        else:  # (the claim's release removes the folder it made: nothing was written)
            print("\ninterrupted before anything was saved", file=sys.stderr, flush=True)
        return cli.EXIT_INTERRUPTED
    finally:
        if claim is not None:
            claim.release()


def train(run: Run, out: Path) -> int:
    """The epochs of a run into folder ``out``; returns the exit status."""
    hp, net = run.hp, run.net
    print(f"tinyalex: {net.config.name} preset ({net.num_params():,} parameters) on "
          f"{run.device}; data {run.data_spec}: {len(run.train_set)} train / "
          f"{len(run.val_set)} val images, {len(run.classes)} classes; run folder {out}",
          flush=True)
    print(settings_line(run), flush=True)
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
            bar = progress_bar(len(run.loader(run.epoch)), run.batch,
                               f"epoch {run.epoch + 1}/{hp['epochs']}", run.settings.progress)
            try:
                images, seconds = run.train_epoch(stop, on_step=bar_updater(run, bar))
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

            row, is_best = run.end_epoch(images, seconds)
            top5 = f" top-5 {100 * row['val_top5']:.2f}%" if run.show_top5() else ""
            print(f"epoch {row['epoch']}/{hp['epochs']}: train loss {row['train_loss']:.4f} "
                  f"top-1 {100 * row['train_top1']:.2f}% | val loss {row['val_loss']:.4f} "
                  f"top-1 {100 * row['val_top1']:.2f}%{top5} | "
                  f"{row['images_per_s']:.0f} img/s, lr {rate_text(row['lr'])}", flush=True)
            if warned != "dead":  # one line when it stops learning, one more if it dies
                dead = run.dead_check()
                state = dead and ("dead" if dead["active"] < SILENT else "stopped")
                if dead and state != warned:
                    print(dead_warning(dead, net, row["epoch"], run.history, hp["lr"]),
                          file=sys.stderr, flush=True)
                    warned = state
            run.save(out / "last.npz")
            if is_best:
                run.save(out / "best.npz")
            if run.is_writer:
                write_metrics(out, run.history)

    if run.history:
        last = run.history[-1]
        best = max(run.history, key=lambda r: r["val_top1"])
        top5 = f"  top-5 {100 * last['val_top5']:.2f}%" if run.show_top5() else ""
        print(f"done: val top-1 {100 * last['val_top1']:.2f}%{top5} after "
              f"{cli.plural(last['epoch'], 'epoch')} (best top-1 {100 * best['val_top1']:.2f}% at "
              f"epoch {best['epoch']}); {run.elapsed_s():.0f} s; checkpoints in {out}",
              flush=True)
    return 0


def settings_line(run: Run) -> str:
    """The hyperparameters in force and what computes them, as the start-up line says."""
    hp = run.hp
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
            f"init {run.net.config.init}" + "".join(", " + o for o in off)
            + f"; implementation {run.describe_impl()}")


def resume_source(path: str):
    """(arrays, meta, run folder) of a --resume argument (a run folder: its last.npz, or a
    .npz)."""
    _, arrays, meta = checkpoint.load_checked(path, resume=True)  # validated before use
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return arrays, meta, folder


def check_resume(meta: dict, args) -> None:
    """A UserError when --resume cannot continue this checkpoint with these arguments (what
    the checkpoint holds was checked when it was read: ``resume_source``)."""
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


def bar_updater(run: Run, bar):
    """``Run.train_epoch``'s on_step: moves the bar one batch; when the running sums are
    fresh, shows the epoch's loss, accuracy, rate and images per second so far."""
    tick, seen_before = time.perf_counter(), run.sums["seen"]

    def on_step(fresh: bool) -> None:
        if fresh:
            rate = (run.sums["seen"] - seen_before) / max(time.perf_counter() - tick, 1e-9)
            bar.set_postfix(loss=f"{run.sums['loss'] / run.sums['seen']:.3f}",
                            acc=f"{run.sums['correct'] / run.sums['seen']:.3f}",
                            lr=rate_text(run.opt.lr), img_s=f"{rate:.0f}", refresh=False)
        bar.update(1)

    return on_step


def progress_bar(total: int, initial: int, desc: str, enabled: bool):
    """A progress bar on stderr, or nothing (``disable``) when asked or when stderr is not a
    terminal: redirected to a file, every frame of a bar would be written to it."""
    from tqdm import tqdm  # a well-kept progress bar (ETA, rate, terminal width handled)

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=True,
                disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True, file=sys.stderr)


def command() -> int:
    """The ``tinyalex-train`` console script."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(command())
