"""What the command-line programs share: bad input becomes one line on stderr and exit 2.

A user who mistypes a path should read what is wrong and how to fix it, not a traceback.
Only the errors that describe bad input are caught here (UserError, DataError,
CheckpointError); a bug still shows its traceback.
"""

from __future__ import annotations

import sys

from tinyalex.checkpoint import CheckpointError
from tinyalex.data import DataError

EXIT_BAD_INPUT = 2


class UserError(ValueError):
    """Bad input on the command line; the message names the problem and the fix."""


def run(main, argv=None) -> int:
    """Call ``main(argv)``; turn bad-input errors into ``error: ...`` on stderr and status 2."""
    try:
        return main(argv)
    except (UserError, DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
