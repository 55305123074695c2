"""Writing files so that a fault loses nothing: atomic replacement, room checks, one-line errors.

Every file tinyalex writes (checkpoints, the decoded-image cache, the generated data set,
``metrics.csv``, figures) goes through this module:

- ``atomic_file(path)`` writes to a temporary file in the same folder, flushes it to the disk
  (fsync) and renames it over ``path``: a reader sees the old file or the new one, never half
  of one, whatever happens in between (a full disk, an I/O error, a crash, SIGKILL).
  ``atomic_directory(path)`` does the same for a folder (a cache entry).
- Any ``OSError`` while writing becomes a ``WriteError``, whose one line names the path, the
  cause and the way out (for a full disk: the bytes needed and free); the command-line
  programs print it as ``error: ...`` and exit with status 1 (tinyalex.cli).
- ``check_room`` refuses, before any work, a write that clearly cannot fit (``NotEnoughRoom``,
  exit status 2, like other bad settings).
- Temporary names carry the writer's process id and host (``.tmp-<pid>@<host>-<name>-...``),
  so ``clean_stale`` removes what a killed process left behind and never a live writer's.

``open_for_writing`` is the one place that opens a file for writing: the fault-injection tests
(tests/test_faults.py) replace it to make a write or a flush fail.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path

# A temporary entry older than this is stale even when its owner cannot be checked (another
# host sharing the folder): nothing tinyalex writes stays untouched for a day while in use.
STALE_AFTER_S = 24 * 3600
_TEMP = re.compile(r"^\.tmp-(\d+)@([A-Za-z0-9_]*)-")


class WriteError(Exception):
    """A write that failed (full disk, I/O error, read-only folder): one line with the fix."""

    def __init__(self, path, cause: OSError, need: int | None = None, fix: str | None = None):
        super().__init__(path, cause)
        self.path, self.cause, self.need = Path(path), cause, need
        self.fix = fix or "write somewhere else"
        self.after = ""  # a last clause the caller may add (what was kept, how to continue)

    def __str__(self) -> str:
        code = self.cause.errno
        if code in (errno.ENOSPC, errno.EDQUOT):
            need = f"{human(self.need)} needed, " if self.need else ""
            what = "quota exceeded" if code == errno.EDQUOT else "no space left on the disk"
            free = free_bytes(self.path.parent)  # now, after the temporary file went
            reason = f"{what} ({need}{human(free)} free)"
            fix = f"free space there, or {self.fix}"
        elif code == errno.EIO:
            reason, fix = "input/output error (the disk or its connection failed)", self.fix
        else:
            reason, fix = (self.cause.strerror or str(self.cause)).lower(), self.fix
        return f"cannot write {self.path}: {reason}: {fix}{self.after}"


class NotEnoughRoom(Exception):
    """A write refused before it starts: the folder's disk has clearly too little room."""


def human(size: float) -> str:
    """1536 -> '1.5 KB' (powers of 1000, as disk tools and file managers show them)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError


def free_bytes(path) -> int:
    """Bytes an ordinary user may still write on the disk holding ``path`` (or its nearest
    existing parent: the folder may not exist yet)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def check_room(folder, need: int, what: str, fix: str) -> None:
    """NotEnoughRoom (one line: what, needed, free, fix) unless ``folder``'s disk has ``need``
    bytes free."""
    free = free_bytes(folder)
    if free < need:
        raise NotEnoughRoom(f"not enough room for {what} in {folder}: {human(need)} needed, "
                            f"{human(free)} free: free space there, or {fix}")


def folder_problem(folder) -> str | None:
    """What stops ``folder`` from being used as a folder to write in (None: nothing, as far
    as can be told without writing): it is a file, a part of its path is a file, or a folder
    above it cannot be read. Looked at before any work, so that a bad location is one line at
    the start, not an error after an hour of decoding or training."""
    folder = Path(folder).absolute()
    for path in (folder, *folder.parents):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            continue
        except OSError as e:  # EACCES: a folder above cannot be searched; ENOTDIR: a file
            if e.errno == errno.ENOTDIR:
                continue
            return f"{path} cannot be looked into ({(e.strerror or str(e)).lower()})"
        if not stat.S_ISDIR(mode):
            return f"{path} is a file, not a folder" if stat.S_ISREG(mode) else \
                f"{path} is not a folder"
        return None
    return None


def file_problem(path) -> str | None:
    """What stops ``path`` from being written (atomically, by ``atomic_file``), tried now by
    creating and removing a temporary file beside it; None when nothing does. The folder must
    exist: a file name's folder is not made for it."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder: name a file"
    if path.exists() and not path.is_file():
        return f"{path} is not a regular file"
    folder = path.parent
    if not folder.is_dir():
        return folder_problem(folder) or f"the folder {folder} does not exist: create it first"
    probe = folder / f"{temp_prefix(path.name)}probe"
    try:
        with open_for_writing(probe, "xb"):  # as every write is opened (and fault tests fail it)
            pass
        probe.unlink()
    except OSError as e:
        return f"cannot write in {folder} ({(e.strerror or str(e)).lower()})"
    return None


def open_for_writing(path, mode: str = "wb"):
    """``open(path, mode)``: every file tinyalex writes is opened here (see the docstring)."""
    return open(path, mode, newline="" if "b" not in mode else None)  # noqa: SIM115


@contextlib.contextmanager
def durable_file(path, mode: str = "wb"):
    """Open ``path`` for writing (``open_for_writing``); on leaving the block, flush it and
    fsync it, so that its bytes are on the disk before anything that vouches for them (a
    rename, a metadata file) is written."""
    with open_for_writing(path, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:32]


def temp_prefix(name: str) -> str:
    """The start of a temporary name for ``name``: ``.tmp-<pid>@<host>-<name>-``."""
    return f".tmp-{os.getpid()}@{_host()}-{name}-"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary name this module gives (``temp_prefix``)."""
    return _TEMP.match(name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def is_stale(path: Path, now: float | None = None) -> bool:
    """Whether a temporary entry (named by ``temp_prefix``) was left by a writer that is gone:
    its process (on this host) no longer runs, or it has not changed for STALE_AFTER_S.
    Never this process's own, and never a file of another name (a user's)."""
    match = _TEMP.match(path.name)
    try:
        age = (now or time.time()) - path.lstat().st_mtime
    except OSError:
        return False
    if match is None:  # not a name this module makes: never touched
        return False
    pid, host = int(match.group(1)), match.group(2)
    if pid == os.getpid() and host == _host():
        return False
    return (host == _host() and not _alive(pid)) or age > STALE_AFTER_S


def clean_stale(folder) -> list[Path]:
    """Remove the stale temporary entries (``is_stale``) of ``folder``; returns them."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for path in entries:
        if is_stale(path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the folder's entry list is data too)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb", need: int | None = None, fix: str | None = None):
    """Yield a file to write ``path``'s new content into; on leaving the block it is flushed,
    fsynced and renamed over ``path``. On any error the temporary file is removed, ``path`` is
    left as it was, and an OSError is raised as a WriteError (``need``: the bytes the file
    needs, for the message; ``fix``: the way out it names)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
        os.close(fd)
        with durable_file(tmp, mode) as f:
            yield f
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(path.parent)
    except OSError as e:
        raise WriteError(path, e, need, fix) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


CACHE_FIX = "set TINYALEX_CACHE to a folder on a disk with room"


@contextlib.contextmanager
def atomic_directory(final, need: int | None = None, what: str = "the cache entry"):
    """Build a folder under a temporary name and rename it to ``final`` when the block ends.

    Yields the temporary path to write into. A crash or Ctrl-C leaves only a ``.tmp-*`` folder
    (removed by the next writer once its owner is gone), never a half-written ``final`` that a
    later run would take for a finished one. If another process finished ``final`` first, ours
    is thrown away and theirs kept (same content). need: the bytes the folder will hold,
    checked first (NotEnoughRoom); an OSError while building is a WriteError naming
    TINYALEX_CACHE as the way out (this builds the caches).
    """
    final = Path(final)
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(final.parent)
        if need is not None:
            check_room(final.parent, need, what, CACHE_FIX)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(final.name), dir=final.parent))
        yield tmp
        try:
            os.rename(tmp, final)  # atomic on POSIX; fails if final exists and is non-empty
        except OSError:
            if not final.is_dir():
                raise
    except OSError as e:
        raise WriteError(final, e, need, CACHE_FIX) from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
