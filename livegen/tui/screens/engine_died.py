"""Shown when the engine process exits on its own: say so, show its last words, offer restart."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class EngineDiedScreen(ModalScreen[bool]):
    """Dismisses with True to restart the engine, False to quit."""

    BINDINGS = [
        Binding("r,enter", "restart", "restart engine"),
        Binding("q,escape,ctrl+q", "quit", "quit"),
    ]

    def __init__(self, returncode: int | None, log_tail: str):
        super().__init__()
        self.returncode = returncode
        self.log_tail = log_tail

    def compose(self) -> ComposeResult:
        with Vertical(id="died-box"):
            yield Label(f"The engine stopped (exit code {self.returncode}). Audio is off.", id="died-title")
            yield Static(self.log_tail or "(no output)", id="died-log", markup=False)
            yield Label("R / Enter: restart the engine    Q / Esc: quit")

    def action_restart(self) -> None:
        self.dismiss(True)

    def action_quit(self) -> None:
        self.dismiss(False)
