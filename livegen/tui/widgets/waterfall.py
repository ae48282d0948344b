"""A scrolling spectrogram of the output: newest row on top, band levels as colour."""

from __future__ import annotations

from collections import deque

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

FLOOR_DB = -100.0
TOP_DB = 0.0
# A dark-stage ramp (black, ember, orange, yellow, white): bright only where there is energy.
RAMP = ["#000000", "#1a0505", "#3d0a0a", "#6b1010", "#a11d0b", "#d3400b", "#f07c12", "#fbb42c",
        "#fde68a", "#fffbe8"]
STYLES = [Style(bgcolor=Color.parse(c)) for c in RAMP]


class Waterfall(Widget):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows: deque[list[float]] = deque(maxlen=200)

    def add_rows(self, rows: list[list[float]]) -> None:
        for row in rows:
            self.rows.appendleft(row)
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size
        if not self.rows:
            return Text("no spectrum data from the engine", style="dim")
        text = Text(no_wrap=True, overflow="crop")
        steps = len(STYLES) - 1
        for r, row in enumerate(list(self.rows)[:height]):
            n = len(row)
            run_style, run = None, 0
            for col in range(width):
                db = row[min(col * n // width, n - 1)]
                level = (min(max(db, FLOOR_DB), TOP_DB) - FLOOR_DB) / (TOP_DB - FLOOR_DB)
                style = STYLES[int(level * steps + 0.5)]
                if style is run_style:
                    run += 1
                    continue
                if run:
                    text.append(" " * run, run_style)
                run_style, run = style, 1
            text.append(" " * run, run_style)
            if r < height - 1:
                text.append("\n")
        return text
