"""Output level meter: peak and RMS in dBFS, a decaying peak-hold mark and a held clip light."""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.widget import Widget

FLOOR_DB = -60.0
CLIP_DB = -0.1
HOLD_SECONDS = 1.5
CLIP_HOLD_SECONDS = 2.0


class OutputMeter(Widget):
    COMPONENT_CLASSES = {"meter--low", "meter--mid", "meter--high", "meter--empty", "meter--clip",
                         "meter--label", "meter--hold"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.peak_db: float | None = None
        self.rms_db: float | None = None
        self.hold_db = FLOOR_DB
        self.hold_time = 0.0
        self.clip_time = -math.inf

    def update_levels(self, peak_db: float, rms_db: float) -> None:
        now = time.monotonic()
        self.peak_db = peak_db if math.isfinite(peak_db) else FLOOR_DB
        self.rms_db = rms_db if math.isfinite(rms_db) else FLOOR_DB
        if self.peak_db >= self.hold_db or now - self.hold_time > HOLD_SECONDS:
            self.hold_db, self.hold_time = self.peak_db, now
        if self.peak_db >= CLIP_DB:
            self.clip_time = now
        self.refresh()

    def tick(self) -> None:
        """Called a few times a second so the clip light goes out when the meters stop."""
        if self.peak_db is not None and time.monotonic() - self.clip_time < CLIP_HOLD_SECONDS + 1:
            self.refresh()

    def clipping(self) -> bool:
        return time.monotonic() - self.clip_time < CLIP_HOLD_SECONDS

    def _bar(self, label: str, db: float, width: int, hold: float | None) -> Text:
        style = self.get_component_rich_style
        text = Text(no_wrap=True, overflow="crop")
        text.append(f"{label} ", style("meter--label"))
        value = f"{db:6.1f} dBFS" if db > FLOOR_DB else "  -inf dBFS"
        bar = max(width - len(label) - 1 - len(value) - 1 - 5, 4)
        filled = round((min(max(db, FLOOR_DB), 0.0) - FLOOR_DB) / -FLOOR_DB * bar)
        hold_col = None if hold is None else min(round((max(hold, FLOOR_DB) - FLOOR_DB) / -FLOOR_DB * bar), bar - 1)
        cells = []
        for col in range(bar):
            level = FLOOR_DB + (col + 1) / bar * -FLOOR_DB
            if col < filled:
                cells.append(("█", "meter--high" if level > -6 else "meter--mid" if level > -18 else "meter--low"))
            elif col == hold_col:
                cells.append(("▏", "meter--hold"))
            else:
                cells.append(("·", "meter--empty"))
        run, run_name = "", None
        for char, name in cells:  # one append per colour run, not per cell
            if name != run_name and run:
                text.append(run, style(run_name))
                run = ""
            run_name = name
            run += char
        if run:
            text.append(run, style(run_name))
        text.append(" " + value)
        if hold is not None:
            text.append(" CLIP" if self.clipping() else "     ", style("meter--clip"))
        return text

    def render(self) -> Text:
        width = self.content_size.width
        if self.peak_db is None:
            return Text("PK  no meter data from the engine\nRMS", style=self.get_component_rich_style("meter--label"))
        text = self._bar("PK ", self.peak_db, width, self.hold_db)
        text.append("\n")
        text.append_text(self._bar("RMS", self.rms_db if self.rms_db is not None else FLOOR_DB, width, None))
        return text
