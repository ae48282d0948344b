"""Overlay screens: help, MIDI learn, model picker, seed file, and the engine-stopped notice.

Imported on first use (the help screen's Markdown widget alone costs a noticeable part of
the UI's start-up).
"""

from __future__ import annotations

import importlib

_WHERE = {
    "EngineDiedScreen": "engine_died",
    "HelpScreen": "help",
    "LearnScreen": "learn",
    "ModelPickerScreen": "model_picker",
    "SeedScreen": "seed",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"livegen.tui.screens.{_WHERE[name]}"), name)
    raise AttributeError(name)
