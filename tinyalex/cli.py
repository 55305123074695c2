"""What the command-line programs share: bad input becomes one line on stderr and exit 2.

A user who mistypes a path should read what is wrong and how to fix it, not a traceback.
Only the errors that describe bad input are caught here (UserError, DataError,
CheckpointError, and SettingError for a device or implementation that cannot be used, from an
option or an environment variable such as TINYALEX_KERNELS); a bug still shows its
traceback. Ctrl-C is not a bug either: it ends the program with one line and exit status 130
(128 + SIGINT, what shells report).
"""

from __future__ import annotations

import os
import sys

from tinyalex.backend import SettingError
from tinyalex.checkpoint import CheckpointError
from tinyalex.data import DataError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UserError(ValueError):
    """Bad input on the command line; the message names the problem and the fix."""


def run(main, argv=None) -> int:
    """Call ``main(argv)``; turn bad-input errors into ``error: ...`` on stderr and status 2,
    and Ctrl-C into one line and status 130."""
    try:
        return main(argv)
    except (UserError, DataError, CheckpointError, SettingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the output went to a program that stopped reading (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1


def description(doc: str) -> str:
    """A module docstring as ``--help`` text: without the double backquotes of reStructuredText."""
    return doc.replace("``", "")


def add_impl_option(parser) -> None:
    """``--impl``: which implementation of the layers computes (the choice of tinyalex.backend)."""
    parser.add_argument("--impl", default=None, choices=("textbook", "fast", "cuda", "auto"),
                        help="the layers: textbook (tinyalex.layers), fast (tinyalex.fast, the "
                             "CPU speed path), cuda (the CUDA kernels; on a CPU through the "
                             "emulator) or auto (default: fast on a CPU, cuda on a GPU)")


def positive(name: str, value: int | None, minimum: int = 1) -> None:
    """A one-line UserError when the option ``name`` is below ``minimum``."""
    if value is not None and value < minimum:
        raise UserError(f"{name} must be >= {minimum}, got {value}")


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 epoch', '2 epochs' ('1 entry', '3 entries' with many="entries")."""
    return f"{count} {word if count == 1 else many or word + 's'}"
