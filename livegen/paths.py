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
