"""Give a continuation model a seed audio file while it plays (`/livegen/seed s`)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class SeedScreen(ModalScreen[str | None]):
    """Dismisses with the typed path (as typed), or None."""

    BINDINGS = [Binding("escape,f4", "cancel", "close")]

    def __init__(self, last: str = ""):
        super().__init__()
        self.last = last

    def compose(self) -> ComposeResult:
        with Vertical(id="seed-box"):
            yield Label("Seed the continuation model with an audio file: it plays now and the model takes over "
                        "where it ends. Enter sends; Esc closes.")
            yield Input(value=self.last, placeholder="/path/to/audio.wav", id="seed-path")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
