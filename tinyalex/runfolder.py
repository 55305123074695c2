"""A run folder's rules: one run per folder, names that never collide, room on its disk
checked before any work, and what a failed write says was kept.

A run folder holds ``last.npz`` (every epoch), ``best.npz`` (the best validation top-1),
``metrics.csv`` and ``curves.png`` (``python -m tinyalex.train`` writes them, only through
``tinyalex.storage``'s atomic writes).
"""

from __future__ import annotations

import time
from pathlib import Path

from tinyalex import checkpoint, storage
from tinyalex.cli import UserError

RUN_FILES = ("last.npz", "best.npz", "metrics.csv")  # a folder with one of these holds a run


def run_files(folder: Path) -> list[str]:
    """The files of a training run in ``folder`` (none: the folder is free for a new run)."""
    return [name for name in RUN_FILES if (Path(folder) / name).exists()]


def refuse_run_folder(folder: Path, resume_hint: bool = True) -> None:
    """A UserError when ``folder`` holds a run: a new run there would overwrite it."""
    found = run_files(folder)
    if found:
        hint = f"continue it with --resume {folder}, or " if resume_hint else ""
        raise UserError(f"{folder} already holds a run ({', '.join(found)}); nothing was "
                        f"written: {hint}pass a new --out name")


def default_out() -> Path:
    """runs/<timestamp>, with a suffix when a run started in the same second already has it."""
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    out, n = base, 1
    while run_files(out):
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


RUN_FOLDER_FIX = "pass --out a folder on a disk with room"


def check_room(run, out: Path) -> None:
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


def write_failed(error: storage.WriteError, run, out: Path) -> None:
    """Complete a WriteError of the run folder with the way out and what was kept."""
    error.fix = RUN_FOLDER_FIX
    if run.saved is not None and (out / "last.npz").is_file():
        error.after = (f"; {out / 'last.npz'} keeps {position(*run.saved)} (continue with "
                       f"--resume {out}, adding --out for a new folder)")
    else:
        error.after = "; nothing of this run was saved"


def position(epoch: int, batch: int) -> str:
    """Where a checkpoint stands, in words."""
    if batch:
        return f"epoch {epoch + 1}, batch {batch}"
    return f"the end of epoch {epoch}" if epoch else "the start"
