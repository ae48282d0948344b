"""Pick another model directory; the engine loads it and crossfades (`/livegen/model s`)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from livegen.paths import trained_models


def find_models(roots: list[Path]) -> list[Path]:
    """Model directories (holding config.json) in and one level below each root, then the ones
    `livegen train` wrote (newest first)."""
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        for candidate in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
            if (candidate / "config.json").is_file() and candidate.resolve() not in found:
                found.append(candidate.resolve())
    for trained in trained_models():
        if trained.resolve() not in found:
            found.append(trained.resolve())
    return found


class ModelPickerScreen(ModalScreen[str | None]):
    """Dismisses with the chosen directory, or None."""

    BINDINGS = [Binding("escape,f3", "cancel", "close")]

    def __init__(self, roots: list[Path], current: str = ""):
        super().__init__()
        self.roots = roots
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="model-box"):
            yield Label(f"Load a model (now: {self.current or '?'}). Enter picks; or type a path, or random.")
            yield OptionList(*[Option(str(p), id=str(p)) for p in find_models(self.roots)], id="model-list")
            yield Input(placeholder="/path/to/model directory", id="model-path")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
