"""Eight preset slots: store, recall, a timed morph between two of them, and a loop through them."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget

SLOTS = 8
STORE_KEYS = "!@#$%^&*"
MORPH_TIMES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


class PresetBar(Widget, can_focus=True):
    """Focused: 1-8 recall, shift+1-8 store, m then 1-8 morph from the current slot to that one,
    L loop through the stored slots (morph after morph, until L again or a recall), < and >
    change the morph time. The app does the work; this widget asks and shows."""

    COMPONENT_CLASSES = {"presets--empty", "presets--stored", "presets--current", "presets--label",
                         "presets--morph"}

    class Recall(Message):
        def __init__(self, slot: int):
            super().__init__()
            self.slot = slot

    class Store(Message):
        def __init__(self, slot: int):
            super().__init__()
            self.slot = slot

    class Morph(Message):
        def __init__(self, target: int, seconds: float):
            super().__init__()
            self.target = target
            self.seconds = seconds

    class Loop(Message):
        def __init__(self, seconds: float):
            super().__init__()
            self.seconds = seconds

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.stored: set[int] = set()
        self.current: int | None = None
        self.morph_time = 2.0
        self.morph_progress: float | None = None
        self.morph_target: int | None = None
        self.armed_morph = False
        self.looping = False

    def on_key(self, event: events.Key) -> None:
        char = event.character or ""
        if char.isdigit() and 1 <= int(char) <= SLOTS:
            slot = int(char)
            if self.armed_morph:
                self.armed_morph = False
                self.post_message(self.Morph(slot, self.morph_time))
            else:
                self.post_message(self.Recall(slot))
        elif char and char in STORE_KEYS:
            self.post_message(self.Store(STORE_KEYS.index(char) + 1))
        elif char == "m":
            self.armed_morph = not self.armed_morph
        elif char == "L":
            self.armed_morph = False
            self.post_message(self.Loop(self.morph_time))
        elif char in ("<", ">"):
            index = min(range(len(MORPH_TIMES)), key=lambda i: abs(MORPH_TIMES[i] - self.morph_time))
            index = max(0, min(len(MORPH_TIMES) - 1, index + (1 if char == ">" else -1)))
            self.morph_time = MORPH_TIMES[index]
        else:
            return
        event.stop()
        event.prevent_default()
        self.refresh()

    def show(self, *, stored=None, current=None, progress=None, target=None) -> None:
        if stored is not None:
            self.stored = set(stored)
        if current is not None:
            self.current = current
        self.morph_progress = progress
        self.morph_target = target
        self.refresh()

    def render(self) -> Text:
        style = self.get_component_rich_style
        text = Text(no_wrap=True, overflow="crop")
        text.append("presets ", style("presets--label"))
        for slot in range(1, SLOTS + 1):
            name = ("presets--current" if slot == self.current else
                    "presets--stored" if slot in self.stored else "presets--empty")
            text.append(f" {slot} ", style(name))
        text.append(f"  morph {self.morph_time:g}s", style("presets--label"))
        if self.looping:
            text.append("  loop", style("presets--morph"))
        if self.armed_morph:
            text.append("  → slot?", style("presets--morph"))
        elif self.morph_progress is not None:
            bar = 8
            filled = round(self.morph_progress * bar)
            text.append(f"  →{self.morph_target} ", style("presets--morph"))
            text.append("█" * filled + "░" * (bar - filled), style("presets--morph"))
        return text
