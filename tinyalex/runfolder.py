"""A run folder's rules: one run per folder, names that never collide, room on its disk
checked before any work, and what a failed write says was kept.

A run folder holds ``last.npz`` (every epoch), ``best.npz`` (the best validation top-1),
``metrics.csv`` and ``curves.png`` (``python -m tinyalex.train`` writes them, only through
``tinyalex.storage``'s atomic writes).

One run per folder. Two trainings writing into one folder would leave it holding a mixture
of both (``last.npz`` of one, ``best.npz`` of the other) while both report success. So a run
claims its folder first, before any data is read:

- ``claim(folder)`` creates the folder if needed and takes an exclusive lock (``flock``) on
  the file ``.tinyalex-run.lock`` inside it, writing into it who holds it (process id, host,
  start time). The lock is the kernel's: it is released when the process ends however it ends
  (normal exit, an exception, SIGKILL, a crash of the process), so a dead holder's claim is
  recognised without guessing from process ids. A second run asking for the same folder gets
  ``FolderInUse``, one line naming the holder.
- ``Claim.release()`` (at the end of the run, whatever the outcome) removes the lock file,
  and the folder too when the claim created it and nothing else was written there.
- ``claim_new(base)`` is for the default folders ``runs/<timestamp>``: it claims ``base``,
  else ``base-2``, ``base-3``, ... the first one that no other run holds and that holds no run,
  so two runs started in the same second never share a folder.

Caveat: ``flock`` is advisory and local to one machine's kernel; on network file systems
whose locks do not reach the server, two machines could each claim a shared folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import socket
import time
from pathlib import Path

from tinyalex import checkpoint, storage
from tinyalex.cli import UserError
from tinyalex.text import escaped

LOCK = ".tinyalex-run.lock"

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
    """runs/<timestamp>: the name a default run folder starts from (``claim_new`` adds -2,
    -3, ... when another run holds it or it holds a run)."""
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def refuse_older(given, meta: dict, folder: Path) -> None:
    """A UserError when ``given`` (a --resume argument) is a checkpoint file of ``folder``
    (best.npz, a copy) older than the folder's last.npz: resuming there would roll the run
    back and overwrite the newer last.npz and metrics.csv. A last.npz that cannot be read is
    taken as newer (nothing is overwritten on a guess)."""
    last = folder / "last.npz"
    if Path(given).is_dir() or not last.is_file() or last.resolve() == Path(given).resolve():
        return
    try:
        newer = checkpoint.load(last)[1]
        ahead = (newer["epoch"], newer["batch"]) > (meta["epoch"], meta["batch"])
        where = position(newer["epoch"], newer["batch"])
    except (checkpoint.CheckpointError, KeyError, TypeError):
        ahead, where = True, "a state that cannot be read"
    if ahead:
        raise UserError(f"--resume {given} would roll the run back: {last} is newer ({where}, "
                        f"against {position(meta['epoch'], meta['batch'])}) and would be "
                        f"overwritten: resume from {folder}, or pass --out a new folder to "
                        f"continue from {given} there")


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


# --- one run per folder ---------------------------------------------------------------------

class RunFolderError(UserError):
    """A run folder that cannot be used (a file, unwritable): one line with the way out."""


class FolderInUse(RunFolderError):
    """Another live process holds the folder's claim."""


def _holder(fd: int) -> str:
    """Who holds a claim, from its lock file: 'pid 1234 on host, since 14:20:03 UTC'."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return escaped(f"pid {info['pid']} on {info['host']}, since {info['since']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet said who it is"


class Claim:
    """A run folder held by this process until ``release`` (or the end of a ``with``)."""

    def __init__(self, folder: Path, fd: int, created: bool):
        self.folder, self._fd, self.created = folder, fd, created

    def release(self) -> None:
        """Give the folder up: remove the lock file (while still holding it, so no other run
        can be holding the same file), then the folder if this claim created it and it is
        empty."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.folder / LOCK)
        os.close(self._fd)
        self._fd = None
        if self.created:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only an empty folder: nothing of the run was written

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim(folder, what: str = "--out") -> Claim:
    """Claim ``folder`` for one training run (see the module docstring).

    Raises FolderInUse when another live process holds it, RunFolderError when it is a file,
    lies below a file, or cannot be written (``what`` names the option for the message).
    """
    folder = Path(folder)
    problem = storage.folder_problem(folder)
    if problem:
        raise RunFolderError(f"{what} {folder} cannot be a run folder: {problem}: pass "
                             f"{what} a folder you can write")
    created = not folder.exists()
    lock = folder / LOCK
    try:
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise FolderInUse(f"{folder} is in use by another training run ({holder}): "
                                  "wait for it to finish, or pass another --out") from None
            try:  # still the file at that name? (a run releasing it unlinks it first)
                if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode() + b"\n", 0)
    except FolderInUse:
        raise
    except OSError as e:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        reason = (e.strerror or str(e)).lower()
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = "no space left on the disk"
        raise RunFolderError(f"{what} {folder} cannot be a run folder: cannot write in it "
                             f"({reason}): pass {what} a folder you can write") from None
    return Claim(folder, fd, created)


def claim_new(base) -> Claim:
    """Claim ``base``, else ``base-2``, ``base-3``, ...: the first folder that no other run
    holds and that holds no run (the default run folders, ``runs/<timestamp>``)."""
    base = Path(base)
    for n in itertools.count(1):
        folder = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            held = claim(folder)
        except FolderInUse:
            continue
        if not run_files(folder):
            return held
        held.release()
    raise AssertionError("unreachable")
