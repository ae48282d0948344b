"""Every key of the UI and the OSC address table (`livegen.control.oscaddress`), on one scrollable screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from livegen.control.oscaddress import help_rows

KEYS = [
    ("F1 or ?", "this help (Esc closes any overlay)"),
    ("Tab / Shift+Tab", "move focus: pad → sliders → presets"),
    ("arrows (pad)", "move the latent point; Shift+arrows: fine steps; mouse: click or drag"),
    ("←/→ (slider)", "change the value; Shift: fine; PgUp/PgDn: coarse; Home/End: limits; Del: default"),
    ("↑/↓ (slider)", "previous / next slider"),
    ("a s d f g h j k l ;", "notes: white keys C D E F G A B C D E (the home row, as in most DAWs)"),
    ("w e t y u o p", "notes: black keys C# D# F# G# A# C# D#"),
    ("z / x", "keyboard octave down / up"),
    ("c / v", "keyboard velocity down / up"),
    ("\\", "latch: keys toggle notes instead of a short gate"),
    ("Space", "all keyboard notes off"),
    ("1-8 (presets)", "recall preset; Shift+1-8 (!@#$%^&*) store; m then 1-8 morph; L loop through the "
                      "stored presets (L again stops); < > morph time"),
    ("F2 or Ctrl+L", "MIDI learn: pick a parameter, move a control; Del removes a binding"),
    ("F3 or Ctrl+O", "model picker: load another model directory (a VAE or a continuation model)"),
    ("F4 or Ctrl+E", "seed a continuation model with an audio file: it plays, then the model takes over"),
    ("r or Ctrl+R", "start / stop recording"),
    ("F5", ("panic, from any screen: silence now (every note cut, pedal up, morph or loop stopped, drone off; "
            "`/livegen/panic`)")),
    ("F6", ("sound check (with an audio input): play as loud as you will on stage for 4 s; `input_gain` is set "
            "so that playing meets the model's velocity-100 level (`/livegen/input/soundcheck`)")),
    ("Ctrl+Q or Ctrl+C", "quit: stops the engine, finalises any recording"),
]

OSC_NOTE = "`→` the engine sends these to subscribers (the UI subscribes) at most 30 times a second."


def help_markdown() -> str:
    lines = ["# livegen keys", "", "| key | does |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in KEYS]
    lines += ["", "# OSC addresses", "", "| address | meaning |", "|---|---|"]
    lines += [f"| `{a}` | {m} |" for a, m in help_rows()]
    lines += ["", OSC_NOTE]
    return "\n".join(lines)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,f1,question_mark,q", "app.pop_screen", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(help_markdown())
