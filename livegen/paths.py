"""Where the bundled models live, for a source checkout and for an installed wheel alike.

A checkout (or an editable install) reads `models/<name>` beside the package; a wheel installs
them as data files under `<prefix>/share/livegen/models/<name>` (see pyproject.toml).
"""

from __future__ import annotations

import sys
from pathlib import Path


def bundled_model_dir(name: str) -> Path:
    """`models/<name>` of the checkout if it is there, else the installed copy (which may be absent)."""
    checkout = Path(__file__).resolve().parents[1] / "models" / name
    if checkout.is_dir():
        return checkout
    installed = Path(sys.prefix) / "share" / "livegen" / "models" / name
    return installed if installed.is_dir() else checkout


TRAINED_LIST = "trained_models.txt"
TRAINED_KEEP = 50


def trained_models_file() -> Path:
    """The list of model directories `livegen train` wrote (newest last), for the UI's picker."""
    import platformdirs

    return platformdirs.user_data_path("livegen") / TRAINED_LIST


def remember_trained(model_dir) -> None:
    """Add `model_dir` to the trained-models list (the last `TRAINED_KEEP`; unwritable: skipped)."""
    path = trained_models_file()
    entry = str(Path(model_dir).resolve())
    try:
        old = [line for line in path.read_text().splitlines() if line and line != entry] if path.is_file() else []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([*old, entry][-TRAINED_KEEP:]) + "\n")
    except OSError:
        pass


def trained_models() -> list[Path]:
    """Trained model directories that still hold a config.json, newest first."""
    path = trained_models_file()
    try:
        lines = path.read_text().splitlines() if path.is_file() else []
    except OSError:
        return []
    return [Path(line) for line in reversed(lines) if line and (Path(line) / "config.json").is_file()]
