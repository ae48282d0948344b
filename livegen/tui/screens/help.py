"""Every key of the UI and the OSC address table, on one scrollable screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

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
    ("Ctrl+Q or Ctrl+C", "quit: stops the engine, finalises any recording"),
]

OSC = [
    ("/livegen/xy f f", "XY pad point, 0..1 each"),
    ("/livegen/z/<i> f", "offset of latent dimension i, -4..4"),
    ("/livegen/param/<name> f", "any parameter by name (the sliders' names)"),
    ("/livegen/note i i", "pitch, velocity (0 = note off)"),
    ("/livegen/record i", "1 starts, 0 stops recording"),
    ("/livegen/preset/store i", "store the current parameters in slot i"),
    ("/livegen/preset/recall i", "recall slot i"),
    ("/livegen/preset/morph i f", "glide to slot i over f seconds"),
    ("/livegen/preset/loop f [i ...]", "morph slot to slot, f seconds a leg (0 stops)"),
    ("/livegen/learn s", "arm MIDI learn for a parameter; reply /livegen/learned s s"),
    ("/livegen/get/<name>", "reply: /livegen/param/<name> f"),
    ("/livegen/params", "reply: /livegen/params s f f f ... (name min max default)"),
    ("/livegen/status", "reply: /livegen/status name value ..."),
    ("/livegen/subscribe [i]", "receive changes and meters (at port i); /livegen/unsubscribe stops"),
    ("/livegen/bindings", "reply: /livegen/bindings s s ... (parameter, control)"),
    ("/livegen/unlearn s", "remove a parameter's MIDI bindings; reply /livegen/bindings"),
    ("/livegen/model s", "load another model directory (or random) while playing; reply /livegen/model s "
                         "once it plays; refused while recording"),
    ("/livegen/seed s", "continuation models: play an audio file now, the model takes over where it ends; "
                        "reply /livegen/seed s (its absolute path)"),
    ("→ /livegen/meter f f", "output peak and RMS, dBFS, of the last ~33 ms"),
    ("→ /livegen/spectrum f*64", "output level in 64 log-spaced bands, dB (0 = full-scale sine), 30 Hz up"),
    ("→ /livegen/param/<name> f", "a parameter someone else changed (also /livegen/xy, /livegen/z/<i>)"),
    ("→ /livegen/meter/<key> f", "load, xruns, voices, recording as they change"),
    ("→ /livegen/error s", "what went wrong (a refused message, a failed recording or model load)"),
]
OSC_NOTE = "`→` the engine sends these to subscribers (the UI subscribes) at most 30 times a second."


def help_markdown() -> str:
    lines = ["# livegen keys", "", "| key | does |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in KEYS]
    lines += ["", "# OSC addresses", "", "| address | meaning |", "|---|---|"]
    lines += [f"| `{a}` | {m} |" for a, m in OSC]
    lines += ["", OSC_NOTE]
    return "\n".join(lines)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,f1,question_mark,q", "app.pop_screen", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(help_markdown())
