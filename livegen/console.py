"""Lines for the performer on stderr that never take the program down with them."""

from __future__ import annotations

import sys


def say(text: str, file=None) -> None:
    """Print `text` to stderr (or `file`), flushed. When the terminal is gone (closed, a dropped
    ssh connection: EIO) or a pipe's reader went away, the line is lost instead of raising: the
    caller is often closing a take."""
    try:
        print(text, file=sys.stderr if file is None else file, flush=True)
    except (OSError, ValueError):  # ValueError: the stream was closed
        pass
