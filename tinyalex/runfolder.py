"""One training run per run folder: an exclusive claim, taken before any work.

Two trainings writing into one folder would leave it holding a mixture of both (``last.npz``
of one, ``best.npz`` of the other) while both report success. So a run claims its folder
first, before any data is read:

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

from tinyalex.storage import folder_problem
from tinyalex.text import escaped

LOCK = ".tinyalex-run.lock"
RUN_FILES = ("last.npz", "best.npz", "metrics.csv")  # a folder with one of these holds a run


class RunFolderError(Exception):
    """A run folder that cannot be used (a file, unwritable): one line with the way out."""


class FolderInUse(RunFolderError):
    """Another live process holds the folder's claim."""


def run_files(folder) -> list[str]:
    """The files of a training run in ``folder`` (none: the folder is free for a new run)."""
    return [name for name in RUN_FILES if (Path(folder) / name).exists()]


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
    problem = folder_problem(folder)
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
