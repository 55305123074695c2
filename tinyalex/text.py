"""Text read from files, shown safely on a terminal: ``escaped``.

Class names (folder names, a checkpoint's metadata), file names and the names inside a file
come from whoever made the file. Printed as they are, an escape code among them can clear or
rewrite the terminal, and a newline breaks a table or a one-line error into several. Every
program prints such text through ``escaped``: characters that are not printable (control
codes, escape sequences, newlines, tabs, undecodable bytes of a file name) are written as
Python escapes (``\\x1b``, ``\\n``, ``\\udcff``), so what is shown is one line, exactly as long as
it looks, and says which characters were there. (Imported by tinyalex.checkpoint, so it
imports nothing of tinyalex: no import circle.)
"""

from __future__ import annotations


def escaped(text, limit: int | None = 200) -> str:
    """``text`` (made a str) with every non-printable character written as its Python escape,
    cut to ``limit`` characters with "..." (None: not cut)."""
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))
    return shown if limit is None or len(shown) <= limit else shown[:limit] + "..."
