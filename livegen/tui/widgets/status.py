"""Two status lines: audio health, then MIDI, OSC, recording, the keyboard's octave and where
controllers reach the instrument (OSCQuery URL, mDNS name)."""

from __future__ import annotations

import os

from rich.text import Text
from textual.widget import Widget


def _num(value, fmt: str, default: str = "?") -> str:
    try:
        return format(float(value), fmt)
    except (TypeError, ValueError):
        return default


def _size(value) -> str:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1000
    return "?"


def _clock(value) -> str:
    try:
        seconds = int(float(value))
    except (TypeError, ValueError):
        return "?"
    return f"{seconds // 60}:{seconds % 60:02d}"


class StatusLine(Widget):
    """Shows the last `/livegen/status` reply plus what only the UI knows (engine process state,
    OSC link, keyboard octave). Keys it reads are listed in docs/osc.md."""

    COMPONENT_CLASSES = {"status--ok", "status--bad", "status--warn", "status--dim", "status--rec"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.status: dict[str, object] = {}
        self.engine_state = "starting"
        self.osc_port = 0
        self.osc_last = ""
        self.keyboard = ""
        self.message = ""

    def update_status(self, **changes) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.refresh()

    def _line1(self) -> Text:
        style = self.get_component_rich_style
        s = self.status
        text = Text(no_wrap=True, overflow="ellipsis")
        state = self.engine_state
        state_style = style("status--ok") if state == "running" else style(
            "status--warn" if state in ("starting", "no reply") else "status--bad")
        text.append("● " + state, state_style)
        if s:
            xruns = s.get("xruns", 0)
            load = s.get("load")
            try:
                load_pct = float(load) * (100 if float(load) <= 1.5 else 1)
            except (TypeError, ValueError):
                load_pct = None
            block = "host" if s.get("blocksize") in (0, 0.0) else _num(s.get("blocksize"), ".0f")
            text.append(f"  {_num(s.get('samplerate'), '.0f')}Hz blk {block}"
                        f" {_num(s.get('latency_ms'), '.1f')}ms ")
            try:
                bad = float(xruns) > 0
            except (TypeError, ValueError):
                bad = False
            text.append(f"xruns {_num(xruns, '.0f')}", style("status--bad") if bad else style("status--ok"))
            text.append(f"  load {load_pct:.0f}%" if load_pct is not None else "  load ?",
                        style("status--warn") if load_pct is not None and load_pct > 70 else None)
            compute = s.get("compute") or s.get("device") or ""
            cpu = s.get("cpu")
            extra = []
            if cpu is not None:
                extra.append(f"cpu {_num(cpu, '.0f')}%")
            if compute and (compute != "cpu" or cpu is None):
                extra.append(f"({compute})" if cpu is not None else str(compute))
            if s.get("gpu") not in (None, ""):
                extra.append(f"gpu {s.get('gpu')}")
            if extra:
                text.append("  " + " ".join(extra))
            if s.get("voices") is not None:
                text.append(f"  v{_num(s.get('voices'), '.0f')}")
            device = s.get("audio_device")
            if device:
                text.append(f"  │ {device}", style("status--dim"))
        if self.message:
            text.append(f"  │ {self.message}", style("status--warn"))
        return text

    def _line2(self) -> Text:
        style = self.get_component_rich_style
        s = self.status
        text = Text(no_wrap=True, overflow="ellipsis")
        midi = s.get("midi_connected") or s.get("midi_virtual") or "—"
        text.append(f"MIDI {midi}")
        if s.get("midi_mpe"):
            text.append(f" MPE {s.get('midi_mpe')}")
        if s.get("midi_missing"):
            text.append(f" (missing {s.get('midi_missing')})", style("status--warn"))
        if s.get("midi_learn"):
            text.append(f" learn {s.get('midi_learn')}", style("status--warn"))
        if s.get("midi_last"):
            text.append(f" {s.get('midi_last')}", style("status--dim"))
        elif s.get("midi_messages") not in (None, "", 0):
            text.append(f" {_num(s.get('midi_messages'), '.0f')} msgs", style("status--dim"))
        text.append(f" │ OSC :{s.get('osc_port', self.osc_port)}")
        last = s.get("osc_last") or self.osc_last
        if last:
            text.append(f" {str(last).removeprefix('/livegen/')}", style("status--dim"))
        unknown = _num(s.get("osc_unknown"), ".0f", "0")
        if unknown not in ("0", "-0"):  # a controller sends to addresses livegen lacks: a patch to fix
            text.append(f" {unknown} unknown", style("status--warn"))
        recording = s.get("recording")
        try:
            recording = bool(int(float(recording)))
        except (TypeError, ValueError):
            recording = bool(recording)
        text.append(" │ ")
        if recording:
            name = str(s.get("record_file") or "")
            name = name.rsplit("/", 1)[-1]
            text.append("REC ●", style("status--rec"))
            size = s.get("record_bytes")
            if size is None and s.get("record_file"):
                try:  # the engine child runs on this machine: the file's size is one stat away
                    size = os.path.getsize(str(s.get("record_file")))
                except OSError:
                    size = None
            text.append(f" {name} {_clock(s.get('record_seconds'))} {_size(size)}")
            if s.get("record_dropped") not in (None, 0, 0.0):
                text.append(f" dropped {s.get('record_dropped')}", style("status--bad"))
        elif s.get("record_error"):
            text.append(f"rec ✕ {s.get('record_error')}", style("status--bad"))
        else:
            text.append("rec ○", style("status--dim"))
        if self.keyboard:
            text.append(f" │ {self.keyboard}")
        reach = self.reach()
        if reach:
            text.append(f" │ {reach}")
        return text

    def reach(self) -> str:
        """Where controllers find the instrument besides the OSC port, as the server reports it:
        its OSCQuery URL and the name it is advertised under over mDNS (last on the line, so a
        narrow terminal cuts this rather than the recording and the keyboard)."""
        url, name = self.status.get("osc_query") or "", self.status.get("osc_name") or ""
        return " ".join(part for part in (f"OSCQuery {url}" if url else "", f"mDNS {name}" if name else "") if part)

    def render(self) -> Text:
        text = self._line1()
        text.append("\n")
        text.append_text(self._line2())
        return text
