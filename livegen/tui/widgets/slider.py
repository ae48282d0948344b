"""A one-line parameter slider: name, bar, value and unit; keyboard- and mouse-editable."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from livegen.tui.params import ParamInfo

NAME_WIDTH = 11
VALUE_WIDTH = 10


def format_value(spec: ParamInfo, value: float) -> str:
    if spec.integer:
        text = f"{int(round(value))}"
    elif abs(spec.maximum - spec.minimum) >= 20:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {spec.unit}".rstrip()


class ParamSlider(Widget, can_focus=True):
    """Left/right change the value (shift: fine), page keys coarse, home/end the limits,
    delete the default. Remote changes (`set_value(..., remote=True)`) post nothing."""

    COMPONENT_CLASSES = {"slider--name", "slider--bar", "slider--empty", "slider--value", "slider--default"}
    BINDINGS = [
        Binding("right", "step(1)", "more", show=False),
        Binding("left", "step(-1)", "less", show=False),
        Binding("shift+right", "step(1, 1)", "fine more", show=False),
        Binding("shift+left", "step(-1, 1)", "fine less", show=False),
        Binding("pageup", "step(10)", "coarse more", show=False),
        Binding("pagedown", "step(-10)", "coarse less", show=False),
        Binding("home", "limit(0)", "minimum", show=False),
        Binding("end", "limit(1)", "maximum", show=False),
        Binding("delete,backspace", "reset", "default", show=False),
        Binding("up", "app.focus_previous", "previous", show=False),
        Binding("down", "app.focus_next", "next", show=False),
    ]

    class Changed(Message):
        def __init__(self, name: str, value: float):
            super().__init__()
            self.name = name
            self.value = value

    def __init__(self, spec: ParamInfo, value: float | None = None, **kwargs):
        kwargs.setdefault("id", f"slider-{spec.name}")
        super().__init__(**kwargs)
        self.spec = spec
        self.value = spec.default if value is None else value
        self._dragging = False

    @property
    def param(self) -> str:
        return self.spec.name

    def step_size(self, fine: bool) -> float:
        if self.spec.integer:
            return 1.0
        span = self.spec.maximum - self.spec.minimum
        return span * (0.002 if fine else 0.01)

    def set_value(self, value: float, *, remote: bool = False) -> None:
        value, _ = self.spec.clamp(float(value))
        if value == self.value:
            return
        self.value = value
        if not remote:
            self.post_message(self.Changed(self.spec.name, value))
        self.refresh()

    def action_step(self, steps: int, fine: int = 0) -> None:
        if self.spec.integer and abs(steps) > 1:
            steps = max(1, abs(steps) // 5) * (1 if steps > 0 else -1)
        self.set_value(self.value + steps * self.step_size(bool(fine)))

    def action_limit(self, top: int) -> None:
        self.set_value(self.spec.maximum if top else self.spec.minimum)

    def action_reset(self) -> None:
        self.set_value(self.spec.default)

    def _bar_geometry(self) -> tuple[int, int]:
        width = self.content_size.width
        bar = max(width - NAME_WIDTH - VALUE_WIDTH - 2, 4)
        return NAME_WIDTH + 1, bar

    def _value_from_mouse(self, event: events.MouseEvent) -> None:
        start, bar = self._bar_geometry()
        offset = event.get_content_offset_capture(self)
        self.set_value(self.spec.from_unit((offset.x - start) / max(bar - 1, 1)))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        start, bar = self._bar_geometry()
        if start <= event.get_content_offset_capture(self).x < start + bar:
            self.focus()
            self._dragging = True
            self.capture_mouse()
            self._value_from_mouse(event)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            self._value_from_mouse(event)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._dragging:
            self._dragging = False
            self.release_mouse()

    def render(self) -> Text:
        start, bar = self._bar_geometry()
        fraction = self.spec.to_unit(self.value)
        filled = round(fraction * bar)
        default_col = round(self.spec.to_unit(self.spec.default) * (bar - 1))
        style = self.get_component_rich_style
        text = Text(no_wrap=True, overflow="crop")
        text.append(f"{self.spec.name[:NAME_WIDTH]:<{NAME_WIDTH}} ", style("slider--name"))
        for col in range(bar):
            if col < filled:
                text.append("█" if col != default_col else "▉", style("slider--bar"))
            else:
                text.append("┊" if col == default_col else "─",
                            style("slider--default") if col == default_col else style("slider--empty"))
        text.append(f" {format_value(self.spec, self.value):>{VALUE_WIDTH}}", style("slider--value"))
        return text
