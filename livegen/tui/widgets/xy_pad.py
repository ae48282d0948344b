"""The XY pad: the model's latent plane, with family centroids as labelled dots, the points of
the voices an MPE keyboard or a multi-touch OSC client moves off the performer's point, and,
while the timbre follows an audio input, the input's own point."""

from __future__ import annotations

import time
from collections import deque

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

COARSE = 0.025
FINE = 0.005
TRAIL_SECONDS = 0.6
TRAIL_POINTS = 12


class XYPad(Widget, can_focus=True):
    """A point in 0..1 x 0..1 (y up) moved by mouse drag or arrow keys (shift: fine steps).

    User moves post `XYPad.Moved`; `set_point(..., remote=True)` follows other controllers
    without posting, so feedback from the engine never loops back to it. Drawn with the line
    API from a cell grid built once per change: a drag redraws only this widget, cheaply.
    """

    COMPONENT_CLASSES = {"xypad--cursor", "xypad--trail", "xypad--centroid", "xypad--label", "xypad--grid",
                         "xypad--cross", "xypad--input", "xypad--voice"}
    BINDINGS = [
        Binding("left", "nudge(-1, 0)", "left", show=False),
        Binding("right", "nudge(1, 0)", "right", show=False),
        Binding("up", "nudge(0, 1)", "up", show=False),
        Binding("down", "nudge(0, -1)", "down", show=False),
        Binding("shift+left", "nudge(-1, 0, 1)", "fine left", show=False),
        Binding("shift+right", "nudge(1, 0, 1)", "fine right", show=False),
        Binding("shift+up", "nudge(0, 1, 1)", "fine up", show=False),
        Binding("shift+down", "nudge(0, -1, 1)", "fine down", show=False),
    ]

    class Moved(Message):
        def __init__(self, x: float, y: float):
            super().__init__()
            self.x = x
            self.y = y

    def __init__(self, centroids: dict[str, tuple[float, float]] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.x = 0.5
        self.y = 0.5
        self.centroids = dict(centroids or {})
        self.trail: deque[tuple[float, float, float]] = deque(maxlen=TRAIL_POINTS)
        self.input_point: tuple[float, float] | None = None
        self.voice_points: list[tuple[float, float]] = []
        self._dragging = False
        self._trail_timer = None
        self._lines: list[Strip] | None = None
        self._lines_key = None

    def redraw(self) -> None:
        self._lines = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines = None

    # -- state -----------------------------------------------------------------------------
    def set_centroids(self, centroids: dict[str, tuple[float, float]]) -> None:
        self.centroids = dict(centroids)
        self.redraw()

    def set_input_point(self, point: tuple[float, float] | None) -> None:
        """The audio input's point (drawn ◎; None hides it), where the timbre it follows lies."""
        if point is not None:
            point = (min(max(float(point[0]), 0.0), 1.0), min(max(float(point[1]), 0.0), 1.0))
        if point != self.input_point:
            self.input_point = point
            self.redraw()

    def set_voice_points(self, points: list[tuple[float, float]]) -> None:
        """The sounding voices' points (drawn ◇; 0..1, as status `voices_xy` gives them)."""
        points = list(points)
        if points != self.voice_points:
            self.voice_points = points
            self.redraw()

    def set_point(self, x: float, y: float, *, remote: bool = False) -> None:
        x = min(max(float(x), 0.0), 1.0)
        y = min(max(float(y), 0.0), 1.0)
        if (x, y) == (self.x, self.y):
            return
        self.trail.append((self.x, self.y, time.monotonic()))
        self.x, self.y = x, y
        if not remote:
            self.post_message(self.Moved(x, y))
        if self._trail_timer is None:
            self._trail_timer = self.set_interval(1 / 15, self._fade_trail)
        self.redraw()

    def _fade_trail(self) -> None:
        cutoff = time.monotonic() - TRAIL_SECONDS
        faded = False
        while self.trail and self.trail[0][2] < cutoff:
            self.trail.popleft()
            faded = True
        if not self.trail and self._trail_timer is not None:
            self._trail_timer.stop()
            self._trail_timer = None
        if faded:
            self.redraw()

    def action_nudge(self, dx: int, dy: int, fine: int = 0) -> None:
        step = FINE if fine else COARSE
        self.set_point(self.x + dx * step, self.y + dy * step)

    # -- mouse -----------------------------------------------------------------------------
    def _point_from_mouse(self, event: events.MouseEvent) -> None:
        offset = event.get_content_offset_capture(self)
        width, height = self.content_size
        x = offset.x / max(width - 1, 1)
        y = 1.0 - offset.y / max(height - 1, 1)
        self.set_point(x, y)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.focus()
        self._dragging = True
        self.capture_mouse()
        self._point_from_mouse(event)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            self._point_from_mouse(event)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._dragging:
            self._dragging = False
            self.release_mouse()

    # -- drawing ---------------------------------------------------------------------------
    def _cell(self, x: float, y: float, width: int, height: int) -> tuple[int, int]:
        return round(x * (width - 1)), round((1.0 - y) * (height - 1))

    def _build(self, width: int, height: int) -> list[Strip]:
        base = self.rich_style
        style = lambda name: base + self.get_component_rich_style(name, partial=True)  # noqa: E731
        blank, grid_style, cross_style = base, style("xypad--grid"), style("xypad--cross")
        chars = [[" "] * width for _ in range(height)]
        styles: list[list[Style]] = [[blank] * width for _ in range(height)]
        for row in range(0, height, max(height // 4, 1)):
            for col in range(0, width, max(width // 8, 1)):
                chars[row][col], styles[row][col] = "·", grid_style
        cx, cy = self._cell(self.x, self.y, width, height)
        for col in range(width):
            chars[cy][col], styles[cy][col] = "─", cross_style
        for row in range(height):
            chars[row][cx], styles[row][cx] = "│", cross_style
        label_style, dot_style = style("xypad--label"), style("xypad--centroid")
        dots = {self._cell(fx, fy, width, height): name for name, (fx, fy) in sorted(self.centroids.items())}
        for col, row in dots:
            chars[row][col], styles[row][col] = "●", dot_style
        for (col, row), name, start in _label_places(dots, width):
            for i, ch in enumerate(name):
                chars[row][start + i], styles[row][start + i] = ch, label_style
        trail_style = style("xypad--trail")
        for tx, ty, _ in self.trail:
            col, row = self._cell(tx, ty, width, height)
            chars[row][col], styles[row][col] = "•", trail_style
        if self.input_point is not None:
            col, row = self._cell(*self.input_point, width, height)
            chars[row][col], styles[row][col] = "◎", style("xypad--input")
        voice_style = style("xypad--voice")
        for vx, vy in self.voice_points:
            col, row = self._cell(vx, vy, width, height)
            chars[row][col], styles[row][col] = "◇", voice_style
        chars[cy][cx], styles[cy][cx] = "◆", style("xypad--cursor")
        lines = []
        for row in range(height):
            segments, run, run_style = [], [], None
            for ch, st in zip(chars[row], styles[row]):
                if st is not run_style and run:
                    segments.append(Segment("".join(run), run_style))
                    run = []
                run_style = st
                run.append(ch)
            if run:
                segments.append(Segment("".join(run), run_style))
            lines.append(Strip(segments, width))
        return lines

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size
        if width < 2 or height < 2:
            return Strip.blank(width, self.rich_style)
        if self._lines is None or self._lines_key != (width, height):
            self._lines = self._build(width, height)
            self._lines_key = (width, height)
        return self._lines[y] if y < len(self._lines) else Strip.blank(width, self.rich_style)


LABEL_CHARS = 9
"""A family label's longest text on the pad; a label finds room right of its dot, else left of it,
else it is cut to the room there is (at least `LABEL_MIN` characters) or left out."""
LABEL_MIN = 3


def _label_places(dots: dict[tuple[int, int], str], width: int) -> list[tuple[tuple[int, int], str, int]]:
    """(dot cell, label text, first column) for each dot's label: labels overwrite neither a dot
    nor another label and keep one blank cell from each (two families close on the plane would
    otherwise read as one garbled word)."""
    taken: dict[int, set[int]] = {}
    for col, row in dots:
        taken.setdefault(row, set()).update((col - 1, col, col + 1))
    placed = []
    for (col, row), name in sorted(dots.items(), key=lambda item: (item[0][1], item[0][0])):
        text = name.replace("_", " ")[:LABEL_CHARS]
        busy = taken.setdefault(row, set())

        def room(first: int, step: int) -> int:
            n = 0
            while n < len(text) and 0 <= first + step * n < width and first + step * n not in busy:
                n += 1
            return n

        right, left = room(col + 2, 1), room(col - 2, -1)
        if right == len(text):
            start, text = col + 2, text
        elif left == len(text):
            start = col - 1 - len(text)
        elif max(right, left) >= LABEL_MIN:
            text = text[:max(right, left)]
            start = col + 2 if right >= left else col - 1 - len(text)
        else:
            continue
        placed.append(((col, row), text, start))
        busy.update(range(start - 1, start + len(text) + 1))
    return placed
