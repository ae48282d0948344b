"""The audio input's meter: its level, what it is heard as (pitch, voiced, gated) and a held clip light.

Read from `/livegen/status` (`input_level_db`, `input_peak`, `input_f0`, `input_voiced`,
`input_gate`, `input_clipped`, `input_device_clips`); hidden while the engine
has no audio input.
"""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.widget import Widget

from livegen.tui.osc import status_numbers

FLOOR_DB = -60.0
CLIP_HOLD_SECONDS = 2.0
CLIP_COUNTS = ("input_clipped", "input_device_clips")


def _float(value, default: float = math.nan) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def input_point(status: dict) -> tuple[float, float] | None:
    """The input's point on the pad from the status's `input_xy` (a pair, or its text over OSC)."""
    value = status_numbers(status.get("input_xy"))
    if len(value) != 2:
        return None
    x, y = value
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None


class InputMeter(Widget):
    COMPONENT_CLASSES = {"input--bar", "input--empty", "input--label", "input--clip", "input--dim"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.level_db = FLOOR_DB
        self.peak_db = FLOOR_DB
        self.f0 = 0.0
        self.voiced = False
        self.gate = False
        self.clip_time = -math.inf
        self._clips: dict[str, float] = {}

    def update_status(self, status: dict) -> bool:
        """Take the input's fields from a status reply; False (and hidden) when there are none."""
        if "input_level_db" not in status and "input_device" not in status:
            self.display = False
            return False
        self.display = True
        self.level_db = _float(status.get("input_level_db"), FLOOR_DB)
        peak = _float(status.get("input_peak", status.get("input_device_peak")), 0.0)
        self.peak_db = 20 * math.log10(peak) if peak > 0 else FLOOR_DB
        self.f0 = _float(status.get("input_f0"), 0.0)
        self.voiced = bool(_float(status.get("input_voiced"), 0.0))
        self.gate = bool(_float(status.get("input_gate"), 0.0))
        for key in CLIP_COUNTS:
            count = _float(status.get(key), 0.0)
            if count > self._clips.get(key, 0.0):
                self.clip_time = time.monotonic()
            self._clips[key] = count
        self.refresh()
        return True

    def clipping(self) -> bool:
        return time.monotonic() - self.clip_time < CLIP_HOLD_SECONDS

    def render(self) -> Text:
        style = self.get_component_rich_style
        width = self.content_size.width
        text = Text(no_wrap=True, overflow="crop")
        text.append("IN  ", style("input--label"))
        level = max(self.level_db, FLOOR_DB) if math.isfinite(self.level_db) else FLOOR_DB
        value = f"{level:6.1f} dBFS" if level > FLOOR_DB else "  -inf dBFS"
        heard = f"{self.f0:6.1f} Hz" if self.voiced and self.f0 > 0 else ("unvoiced " if self.gate else "silent   ")
        bar = max(width - 4 - len(value) - len(heard) - 8, 4)
        filled = round((level - FLOOR_DB) / -FLOOR_DB * bar)
        text.append("█" * filled, style("input--bar"))
        text.append("·" * (bar - filled), style("input--empty"))
        text.append(f" {value} {heard}", style("input--dim" if not self.gate else "input--label"))
        text.append(" CLIP" if self.clipping() else "     ", style("input--clip"))
        return text
