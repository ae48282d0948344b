"""Overlay screens: help, MIDI learn, model picker, and the engine-stopped notice."""

from livegen.tui.screens.engine_died import EngineDiedScreen
from livegen.tui.screens.help import HelpScreen
from livegen.tui.screens.learn import LearnScreen
from livegen.tui.screens.model_picker import ModelPickerScreen

__all__ = ["EngineDiedScreen", "HelpScreen", "LearnScreen", "ModelPickerScreen"]
