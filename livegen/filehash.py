"""The sha256 that ties a session log to the files it was played with (model weights, seed
audio, input recordings), so a render can tell when one has changed."""

from __future__ import annotations

import hashlib


def file_sha256(path) -> str:
    """Hex sha256 of the file at `path`, read in chunks (weights can be large)."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
