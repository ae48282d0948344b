"""A scrolling spectrogram of the output: newest row on top, band levels as colour."""

from __future__ import annotations

from collections import deque

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

FLOOR_DB = -100.0
TOP_DB = 0.0
# A dark-stage ramp (black, ember, orange, yellow, white): bright only where there is energy.
RAMP = ["#000000", "#1a0505", "#3d0a0a", "#6b1010", "#a11d0b", "#d3400b", "#f07c12", "#fbb42c",
        "#fde68a", "#fffbe8"]
STYLES = [Style(bgcolor=Color.parse(c)) for c in RAMP]
MAX_ROWS = 200


def row_strip(row: list[float], width: int) -> Strip:
    """One spectrum (band levels in dB, low to high) as `width` coloured cells."""
    n = len(row)
    steps = len(STYLES) - 1
    span = TOP_DB - FLOOR_DB
    segments, run, run_style = [], 0, None
    for col in range(width):
        db = row[min(col * n // width, n - 1)]
        level = (min(max(db, FLOOR_DB), TOP_DB) - FLOOR_DB) / span
        style = STYLES[int(level * steps + 0.5)]
        if style is run_style:
            run += 1
            continue
        if run:
            segments.append(Segment(" " * run, run_style))
        run_style, run = style, 1
    if run:
        segments.append(Segment(" " * run, run_style))
    return Strip(segments, width)


class Waterfall(Widget):
    """Each row is turned into cells once, when it arrives; scrolling only re-uses them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows: deque[list[float]] = deque(maxlen=MAX_ROWS)
        self._strips: deque[Strip] = deque(maxlen=MAX_ROWS)
        self._width = 0

    def add_rows(self, rows: list[list[float]]) -> None:
        width = self.content_size.width
        for row in rows:
            if not row:
                continue
            self.rows.appendleft(row)
            if width == self._width:
                self._strips.appendleft(row_strip(row, width))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if not self.rows:
            if y == 0:
                text = Text("no spectrum data from the engine", style="dim")
                return Strip(text.render(self.app.console), text.cell_len).crop_extend(0, width, self.rich_style)
            return Strip.blank(width, self.rich_style)
        if width != self._width or len(self._strips) != len(self.rows):
            self._width = width
            self._strips = deque((row_strip(row, width) for row in self.rows), maxlen=MAX_ROWS)
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, self.rich_style)
