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
Only entries tinyalex recognises as its own are removed; anything else in the folder is
listed as such and left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tinyalex import cli
from tinyalex.data import cache_root
from tinyalex.storage import human


@dataclass
class Entry:
    """One removable thing in the cache: ``name`` as listed (relative to the cache, or the
    emulator folder's own path when it lives elsewhere)."""

    name: str
    path: Path
    size: int       # bytes
    what: str       # a description for the listing
    ours: bool = True


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


def _decoded_what(path: Path) -> str:
    """What a decoded-images folder holds, from its meta.json."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        counts = meta.get("counts", {})
        return (f"decoded {meta['image_size']}px images of {meta['source']} "
                f"({counts.get('train', '?')} train, {counts.get('val', '?')} val)")
    except (OSError, ValueError, KeyError):
        return "decoded images (unfinished or damaged: safe to remove)"


def emulator_folder() -> Path:
    """Where the emulator keeps compiled kernels (tinyalex.cuda.emulator decides)."""
    from tinyalex.cuda import emulator

    return emulator.cache_dir()


def fast_folder() -> Path:
    """Where the fast path keeps its compiled C kernels (tinyalex.fast.compiled decides)."""
    from tinyalex.fast import compiled

    return compiled.cache_dir()


def entries(root: Path | None = None) -> list[Entry]:
    """Everything in the cache, tinyalex's entries first, sorted by name within each kind."""
    root = cache_root(root)
    found: list[Entry] = []
    if root.is_dir():
        for path in sorted(root.iterdir()):
            name = path.name
            if name == "decoded" and path.is_dir():
                for sub in sorted(path.iterdir()):
                    what = ("an interrupted decoding (safe to remove)"
                            if sub.name.startswith(".tmp-") else _decoded_what(sub))
                    found.append(Entry(f"decoded/{sub.name}", sub, size_of(sub), what))
            elif name.startswith("shapes-v") and path.is_dir():
                found.append(Entry(name, path, size_of(path), "the built-in shapes set"))
            elif name.startswith(".tmp-"):
                found.append(Entry(name, path, size_of(path),
                                   "an interrupted generation (safe to remove)"))
            elif name in ("emulator", "fast") and path.is_dir():
                pass  # listed below, wherever it lives
            else:
                found.append(Entry(name, path, size_of(path), "not tinyalex's: left alone",
                                   ours=False))
    emulator = emulator_folder()
    if emulator.is_dir():
        inside = emulator.resolve() == (root / "emulator").resolve()
        found.append(Entry("emulator" if inside else str(emulator), emulator,
                           size_of(emulator), "CUDA kernels compiled for the CPU emulator"))
    elif (root / "emulator").is_dir():  # the emulator was moved elsewhere; this one is old
        old = root / "emulator"
        found.append(Entry("emulator", old, size_of(old),
                           "CUDA kernels compiled for the CPU emulator (unused)"))
    fast = fast_folder()
    if fast.is_dir():
        inside = fast.resolve() == (root / "fast").resolve()
        found.append(Entry("fast" if inside else str(fast), fast, size_of(fast),
                           "the fast path's C kernels, compiled on first use"))
    elif (root / "fast").is_dir():  # compiled under another $XDG_CACHE_HOME; unused now
        found.append(Entry("fast", root / "fast", size_of(root / "fast"),
                           "the fast path's C kernels (unused)"))
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
    width = max((len(e.name) for e in items), default=0)
    for e in items:
        lines.append(f"  {human(e.size):>9}  {e.name:<{width}}  {e.what}")
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
                known = ", ".join(n for n, e in items.items() if e.ours) or "none"
                raise cli.UserError(f"{name} is not an entry of the cache (entries: {known}); "
                                    "list them with python -m tinyalex.cache")
            if not items[key].ours:
                raise cli.UserError(f"{name} is not tinyalex's, so it is left alone: remove "
                                    "it yourself if you mean to")
            chosen.append(items[key])
    for entry in chosen:
        if entry.path.is_dir() and not entry.path.is_symlink():
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink()
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
              + (", ".join(e.name for e in removed) or "the cache was empty"))
        return 0
    print(listing())
    return 0


def command() -> int:
    """The ``tinyalex-cache`` console script."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(command())
