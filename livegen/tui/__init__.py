"""The Textual performance UI: `livegen play` without `--headless` (`livegen.tui.run`).

Importing this package caps Textual's frame rate (Textual reads TEXTUAL_FPS when it is first
imported, and every module of the UI imports it through here).
"""

from __future__ import annotations

import os

MAX_FPS = 30
"""Screen updates per second at most."""


def cap_frame_rate() -> None:
    os.environ.setdefault("TEXTUAL_FPS", str(MAX_FPS))


cap_frame_rate()
