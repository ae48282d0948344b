"""Which kind of model a directory holds, and loading it: the spectral VAE or the texture model."""

from __future__ import annotations

import json
from pathlib import Path

from livegen.errors import ModelError
from livegen.model.config import FORMAT
from livegen.model.io import CONFIG_NAME, load_model
from livegen.model.texture import TEXTURE_FORMAT, load_texture_model

KINDS = {FORMAT: "pitched", TEXTURE_FORMAT: "texture"}


def model_format(path) -> str | None:
    """The `format` field of `path/config.json` (None when there is none or it is unreadable)."""
    try:
        data = json.loads((Path(path) / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data.get("format") if isinstance(data, dict) else None


def load_any_model(path, device="cpu"):
    """A spectral (`pitched`) or texture model from its directory, by the format its config names."""
    fmt = model_format(path)
    if fmt == TEXTURE_FORMAT:
        return load_texture_model(path, device=device)
    if fmt in (FORMAT, None):
        return load_model(path, device=device)  # its errors name what is missing
    raise ModelError(f"{path}: model format {fmt!r} is not one `livegen play` plays here "
                     f"(known: {', '.join(sorted(KINDS))})")
