"""MIDI learn from the UI: the engine binds (`/livegen/learn s`, `/livegen/unlearn s`) and lists
its bindings (`/livegen/bindings`); the UI keeps the list to show it."""

from __future__ import annotations

from livegen.control.oscaddress import PREFIX
from livegen.tui import screens
from livegen.tui.osc import EngineDelta

RECORD = "record"
"""Learnable like a parameter: a button that starts and stops recording."""


class Learn:
    def __init__(self, app):
        self.app = app
        self.bindings: dict[str, str] = {}

    def open(self) -> None:
        app = self.app
        if not isinstance(app.screen, screens.LearnScreen):
            app.push_screen(screens.LearnScreen([*app.specs, RECORD], self.bindings))

    def request_bindings(self) -> None:
        self.app.link.send(PREFIX + "bindings")

    def apply(self, delta: EngineDelta) -> None:
        app = self.app
        screen = app.screen if isinstance(app.screen, screens.LearnScreen) else None
        if delta.bindings is not None:
            self.bindings = dict(delta.bindings)
            if screen:
                screen.set_bindings(self.bindings)
        for param, control in delta.learned:
            self.bindings[param] = control
            app.show_message(f"learned {param} ← {control}")
            if screen:
                screen.learned(param, control)
