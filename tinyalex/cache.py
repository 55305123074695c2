"""What tinyalex keeps in its cache, and removing it: ``python -m tinyalex.cache``.

    python -m tinyalex.cache                           # list the entries with their sizes
    python -m tinyalex.cache remove decoded/NAME ...   # remove some entries (names as listed)
    python -m tinyalex.cache remove --all              # remove everything tinyalex put there

The cache is ``$TINYALEX_CACHE``, else ``~/.cache/tinyalex``. It holds what can always be made
again, at a cost in time: the built-in shapes set (``shapes-v*``, generated in under a
minute), the decoded images of every data set trained on (``decoded/NAME``, one per folder,
image size and file list: a folder that changed gets a new one and the old one is removed),
the CUDA kernels compiled for the CPU emulator (``emulator``; ``$TINYALEX_EMULATOR_CACHE``
moves it) and the fast path's compiled C kernels (``fast``; ``$TINYALEX_COMPILED_CACHE``
moves it). Run folders (``runs/...``) are never in the cache, and nothing here touches them.
Only entries that carry tinyalex's own marker are removed (see ``entries``: a name that merely
looks like one of ours is not enough); anything else in the folder, the emulator's included, is
listed as "not tinyalex's: left alone" and never touched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tinyalex import cli
from tinyalex.data import cache_root
from tinyalex.data.folder import CACHE_MARK as DECODED_MARK
from tinyalex.data.synthetic import GENERATOR as SHAPES_MARK
from tinyalex.storage import human, is_temp_name
from tinyalex.text import escaped

NOT_OURS = "not tinyalex's: left alone"
KERNEL_LIBRARY = re.compile(r"^[\w.-]+-[0-9a-f]{24}\.so$")  # tinyalex.cuda.emulator.build
FAST_LIBRARY = re.compile(r"^kernels-\w+-[0-9a-f]{20}\.so$")  # tinyalex.fast.compiled.build


@dataclass
class Entry:
    """One removable thing in the cache: ``name`` as listed (relative to the cache, or the
    emulator folder's own path when it lives elsewhere)."""

    name: str
    path: Path
    size: int       # bytes
    what: str       # a description for the listing
    ours: bool = True
    files: list[Path] | None = None  # remove only these (the emulator's own libraries)


def size_of(path: Path) -> int:
    """Bytes of the files under ``path`` (or of the file), symbolic links not followed."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            file = Path(folder) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def _json(path: Path, limit: int = 16 * 2**20):
    """The JSON document in the regular file ``path`` (at most ``limit`` bytes), or None when
    it is missing, unreadable, or something else."""
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _folder(path: Path) -> bool:
    """A real folder (not a symbolic link to one: tinyalex never makes those)."""
    return path.is_dir() and not path.is_symlink()


def _decoded_what(path: Path) -> str | None:
    """What a decoded-images folder holds, from its meta.json; None when it does not carry
    tinyalex's marker (meta.json with a ``tinyalex-decoded-v*`` format)."""
    meta = _json(path / "meta.json") if _folder(path) else None
    if not isinstance(meta, dict) or not str(meta.get("format", "")).startswith(DECODED_MARK):
        return None
    counts = meta.get("counts") if isinstance(meta.get("counts"), dict) else {}
    return escaped(f"decoded {meta.get('image_size', '?')}px images of "
                    f"{meta.get('source', '?')} ({counts.get('train', '?')} train, "
                    f"{counts.get('val', '?')} val)")


def _shapes_ours(path: Path) -> bool:
    """A built-in set carries dataset.json naming tinyalex's generator."""
    meta = _json(path / "dataset.json") if _folder(path) else None
    return isinstance(meta, dict) and str(meta.get("generator", "")).startswith(SHAPES_MARK)


def emulator_folder() -> Path:
    """Where the emulator keeps compiled kernels (tinyalex.cuda.emulator decides)."""
    from tinyalex.cuda import emulator

    return emulator.cache_dir()


def fast_folder() -> Path:
    """Where the fast path keeps its compiled C kernels (tinyalex.fast.compiled decides)."""
    from tinyalex.fast import compiled

    return compiled.cache_dir()


def _library_entries(folder: Path, name: str, what: str, pattern: re.Pattern) -> list[Entry]:
    """A folder of compiled kernels as one entry holding the libraries tinyalex built there
    (their names match ``pattern``: a hash of the source in the name), and every other thing
    in it as not tinyalex's."""
    ours, others = [], []
    for path in sorted(folder.iterdir()):
        is_library = pattern.match(path.name) and path.is_file() and not path.is_symlink()
        (ours if is_library else others).append(path)
    found = [Entry(name, folder, sum(size_of(p) for p in ours), what, files=ours)]
    found += [Entry(f"{name}/{p.name}", p, size_of(p), NOT_OURS, ours=False) for p in others]
    return found


def entries(root: Path | None = None) -> list[Entry]:
    """Everything in the cache, tinyalex's entries first, sorted by name within each kind.

    An entry is tinyalex's only when it carries tinyalex's marker: a decoded-images folder its
    meta.json (format ``tinyalex-decoded-v*``), a built-in set its dataset.json (generator
    ``tinyalex.data.synthetic``), an interrupted one the temporary name tinyalex.storage gives
    (``.tmp-<pid>@<host>-...``), the emulator's libraries their names. Anything else, whatever
    it is called, is listed as not tinyalex's and never removed.
    """
    root = cache_root(root)
    found: list[Entry] = []
    if root.is_dir():
        for path in sorted(root.iterdir()):
            name = path.name
            if name == "decoded" and _folder(path):
                for sub in sorted(path.iterdir()):
                    entry = f"decoded/{sub.name}"
                    if is_temp_name(sub.name):
                        found.append(Entry(entry, sub, size_of(sub),
                                           "an interrupted decoding (safe to remove)"))
                    elif (what := _decoded_what(sub)) is not None:
                        found.append(Entry(entry, sub, size_of(sub), what))
                    else:
                        found.append(Entry(entry, sub, size_of(sub), NOT_OURS, ours=False))
            elif name.startswith("shapes-v") and _shapes_ours(path):
                found.append(Entry(name, path, size_of(path), "the built-in shapes set"))
            elif is_temp_name(name):
                found.append(Entry(name, path, size_of(path),
                                   "an interrupted generation (safe to remove)"))
            elif name in ("emulator", "fast") and _folder(path):
                pass  # listed below, wherever it lives
            else:
                found.append(Entry(name, path, size_of(path), NOT_OURS, ours=False))
    emulator = emulator_folder()
    if _folder(emulator):
        inside = emulator.resolve() == (root / "emulator").resolve()
        found += _library_entries(emulator, "emulator" if inside else str(emulator),
                                  "CUDA kernels compiled for the CPU emulator", KERNEL_LIBRARY)
    if _folder(root / "emulator") and not (root / "emulator").resolve() == emulator.resolve():
        # the emulator was moved elsewhere; this one is old
        found += _library_entries(root / "emulator", "emulator",
                                  "CUDA kernels compiled for the CPU emulator (unused)",
                                  KERNEL_LIBRARY)
    fast = fast_folder()
    if _folder(fast):
        inside = fast.resolve() == (root / "fast").resolve()
        found += _library_entries(fast, "fast" if inside else str(fast),
                                  "the fast path's C kernels, compiled on first use",
                                  FAST_LIBRARY)
    if _folder(root / "fast") and not (root / "fast").resolve() == fast.resolve():
        # compiled under another $TINYALEX_COMPILED_CACHE; unused now
        found += _library_entries(root / "fast", "fast", "the fast path's C kernels (unused)",
                                  FAST_LIBRARY)
    return sorted(found, key=lambda e: (not e.ours, e.name))


def listing(root: Path | None = None) -> str:
    root = cache_root(root)
    items = entries(root)
    source = ("$TINYALEX_CACHE" if os.environ.get("TINYALEX_CACHE")
              else "the default; set $TINYALEX_CACHE to move it")
    ours = [e for e in items if e.ours]
    lines = [f"tinyalex cache: {root} ({source}): "
             f"{human(sum(e.size for e in ours))} in {cli.plural(len(ours), 'entry', 'entries')}"]
    if not items:
        lines.append("  (empty)")
    width = max((len(escaped(e.name)) for e in items), default=0)
    for e in items:
        lines.append(f"  {human(e.size):>9}  {escaped(e.name):<{width}}  {e.what}")
    if ours:
        lines.append("remove with: python -m tinyalex.cache remove NAME ... (or --all); "
                     "everything is made again when needed")
    return "\n".join(lines)


def remove(names: list[str], everything: bool, root: Path | None = None) -> list[Entry]:
    """Remove the named entries (or all of tinyalex's); returns what was removed.

    Raises UserError, before removing anything, for a name that is not one of the cache's
    entries or not tinyalex's.
    """
    items = {e.name: e for e in entries(root)}
    if everything:
        chosen = [e for e in items.values() if e.ours]
    else:
        chosen = []
        for name in names:
            key = name.rstrip("/")
            if key not in items:
                known = ", ".join(escaped(n) for n, e in items.items() if e.ours) or "none"
                raise cli.UserError(f"{escaped(name)} is not an entry of the cache (entries: "
                                    f"{known}); "
                                    "list them with python -m tinyalex.cache")
            if not items[key].ours:
                raise cli.UserError(f"{escaped(name)} is not tinyalex's, so it is left alone: "
                                    "remove it yourself if you mean to")
            chosen.append(items[key])
    for entry in chosen:
        if entry.files is not None:  # a folder shared with things not ours: only our files
            for path in entry.files:
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                entry.path.rmdir()  # only when nothing else is left in it
        elif entry.path.is_dir() and not entry.path.is_symlink():
            with contextlib.suppress(FileNotFoundError):  # (gone since it was listed)
                shutil.rmtree(entry.path)
        else:
            entry.path.unlink(missing_ok=True)
    return chosen


def build_parser() -> argparse.ArgumentParser:
    """The command line of this program (``--help`` shows it)."""
    p = argparse.ArgumentParser(prog="python -m tinyalex.cache",
                                description=cli.description(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", help="list the entries with their sizes (the default)")
    r = sub.add_parser("remove", help="remove entries (as listed) or, with --all, all of them")
    r.add_argument("names", nargs="*", metavar="NAME", help="entries as the listing names them")
    r.add_argument("--all", action="store_true", help="every entry tinyalex made")
    return p


def parse_args(argv):
    return build_parser().parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command == "remove":
        if bool(args.names) == bool(args.all):
            raise cli.UserError("remove needs entry names or --all (not both): list them with "
                                "python -m tinyalex.cache")
        removed = remove(args.names, args.all)
        freed = sum(e.size for e in removed)
        print(f"removed {cli.plural(len(removed), 'entry', 'entries')} ({human(freed)}): "
              + (", ".join(escaped(e.name) for e in removed) or "the cache was empty"))
        return 0
    print(listing())
    return 0


def command() -> int:
    """The ``tinyalex-cache`` console script."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(command())
