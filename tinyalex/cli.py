"""What the command-line programs share: an error the user can act on is one line on stderr.

A user who mistypes a path should read what is wrong and how to fix it, not a traceback.
The exit statuses of every tinyalex program:

    0    done
    1    a failure at run time: a write failed (full disk, I/O error: tinyalex.storage's
         WriteError, which names the path, the cause and the way out), the loss became NaN,
         the output went to a program that stopped reading
    2    bad input or settings, found before any work is lost: UserError, DataError,
         CheckpointError, SettingError (a device or implementation that cannot be used, from
         an option or an environment variable such as TINYALEX_KERNELS), NotEnoughRoom (a
         run folder or cache whose disk clearly cannot hold what will be written)
    130  Ctrl-C (128 + SIGINT, what shells report), with one line

Only these errors are caught here; a bug still shows its traceback. An OSError of a full or
failing disk that no write site turned into a WriteError is still one line, with status 1.
"""

from __future__ import annotations

import errno
import os
import sys

from tinyalex.backend import SettingError
from tinyalex.checkpoint import CheckpointError
from tinyalex.data import DataError
from tinyalex.storage import NotEnoughRoom, WriteError

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# errno values that mean the disk, not the program, failed a write
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG)


class UserError(ValueError):
    """Bad input on the command line; the message names the problem and the fix."""


def run(main, argv=None) -> int:
    """Call ``main(argv)``; turn the errors of the module docstring into ``error: ...`` on
    stderr and their exit status."""
    try:
        return main(argv)
    except (UserError, DataError, CheckpointError, SettingError, NotEnoughRoom) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except WriteError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the output went to a program that stopped reading (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return EXIT_FAILED
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        where = f" ({e.filename})" if e.filename else ""
        print(f"error: {(e.strerror or str(e)).lower()}{where}: free space there, check the "
              "disk, or use another folder", file=sys.stderr)
        return EXIT_FAILED


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


def rate_text(rate: float) -> str:
    """A learning rate as a person writes it: 0.0001, not 0.00010000000000000002."""
    return f"{rate:.6g}"
