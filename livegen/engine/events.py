"""Events: the one currency of control, and the JSON-lines files that store them.

MIDI, OSC, the UI and event files all produce `Event`s. The engine applies them at block
boundaries and stamps each with the sample at which it took effect; the session log is that
stamped stream, so rendering the log offline reproduces the performance.

File format (one JSON object per line, time `t` in seconds from the start)::

    {"type": "header", "livegen": "0.1.0", "model": "models/default", "samplerate": 48000, "seed": 0}
    {"t": 0.5, "type": "param", "name": "z0", "value": -1.2}
    {"t": 1.0, "type": "note_on", "pitch": 60, "velocity": 100}
    {"t": 2.0, "type": "note_off", "pitch": 60}
    {"t": 2.1, "type": "note_on", "pitch": 64, "velocity": 90, "voice": 2}
    {"t": 2.2, "type": "voice", "voice": 2, "name": "bend", "value": 0.5}
    {"t": 2.6, "type": "note_off", "pitch": 64, "voice": 2}
    {"t": 2.7, "type": "sound_off", "voice": 2}
    {"t": 2.8, "type": "sound_off", "action": "all"}
    {"t": 3.0, "type": "preset", "action": "recall", "slot": 2}
    {"t": 3.2, "type": "preset", "action": "store", "slot": 4, "values": {"x": 0.5, "y": -0.2}}
    {"t": 3.5, "type": "preset", "action": "morph", "slot": 3, "seconds": 4.0}
    {"t": 8.0, "type": "preset", "action": "loop", "seconds": 2.0, "slots": [0, 1, 3]}
    {"t": 4.0, "type": "record", "value": 1}
    {"t": 5.0, "type": "seed", "path": "/abs/seed.wav", "sha256": "9f2c..."}
    {"t": 9.0, "type": "engine", "action": "restart", "sample": 432000, "reason": "device", "model_dir": null, "seed": 0, "lookahead": 2}

A preset `morph` glides every parameter stored in `slot` there over `seconds`; a `loop` glides
from slot to slot of `slots` (default: every stored slot, in order) and round again, `seconds`
per leg, until a `recall`, another `morph`/`loop` or a `loop` of 0 seconds; a `param` event for a
parameter the morph moves releases that parameter from it (see `Engine._start_morph`). A `store`
with `values` stores those instead of the parameters' current values; the engine stamps every
store it applies with the values it stored, so a session log says what each slot holds and a
new engine (after a lost audio device, or another model) gets the same presets from events.
Likewise it stamps each `morph`/`loop` with its path (`moves`), and a `morph`/`loop` with
`resume` (that path and the samples it had run) goes on with one where another engine left it.

A note may carry a `voice` id (0..127: an MPE keyboard's member channel, a touch of an OSC
client's): a `voice` event moves that voice alone, by name (`VOICE_CONTROLS`): `bend` in
semitones (added to the pitch and the global bend), `x` and `y` offsets from the performer's
point in pad widths, `pressure` 0..1. An id's controls hold until changed, before and after its
notes (an MPE keyboard sets a channel's bend before the note it starts); a note_off with a
`voice` releases that voice's note, whatever pitch it was bent to.

A `sound_off` (MIDI's All Sound Off) silences notes at once instead of releasing them: with a
`voice`, every note of that id, held, pedal-held or in its release tail (one that left the id
for a newer note too); without one, every note that has no id (the drone is no note). With
`action` "all" (a panic, `/livegen/panic`), every note of every id and every release tail, the
drone's too once `drone` is 0 (a held drone plays on). Each fades out over
`livegen.engine.voices.CUT_SECONDS` so that it does not click.

An `engine` `restart` (session logs only; no engine applies it) marks the output sample at
which a new engine took over from a fresh start, with what a render needs to build it the same
way (`model_dir`, `seed`, `lookahead`; `reason`: "device" after a lost audio device or JACK
server): the events after it in the log are that engine's.

A `seed` event (continuation models) starts a seed audio file playing; live, it carries the
file's prepared frames in `payload` (never written), and a render re-reads the file by path.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable

from livegen.errors import LOOKAHEAD_MAX, ParameterError, finite_number

EVENT_TYPES = ("param", "note_on", "note_off", "voice", "sound_off", "preset", "record", "seed", "engine")
PRESET_ACTIONS = ("store", "recall", "morph", "loop")
ENGINE_ACTIONS = ("restart",)
SOUND_OFF_ALL = "all"
"""A `sound_off`'s `action` that cuts every note, with or without an id, and every release tail."""
PRESET_SLOTS = 128
"""Preset slots are 0..127 (one MIDI program's range)."""
VOICE_IDS = 128
"""Voice ids are 0..127."""
VOICE_CONTROLS = {"bend": (-96.0, 96.0), "x": (-1.0, 1.0), "y": (-1.0, 1.0), "pressure": (0.0, 1.0)}
"""A `voice` event's names and their ranges: semitones, pad widths, pad widths, 0..1."""

# Fields each event type must carry, with the check each must pass.
_REQUIRED = {
    "param": ("name", "value"),
    "note_on": ("pitch", "velocity"),
    "note_off": ("pitch",),
    "voice": ("voice", "name", "value"),
    "sound_off": (),
    "preset": ("action",),
    "record": ("value",),
    "seed": ("path",),
    "engine": ("action",),
}


@dataclass
class Event:
    """One control change. `t` is seconds from the start; `sample` is set when the engine applies it."""

    type: str
    t: float = 0.0
    name: str | None = None
    value: float | None = None
    pitch: float | None = None
    velocity: int | None = None
    voice: int | None = None
    """The voice a note starts or ends, or a `voice` event moves (None: a note known by its pitch)."""
    action: str | None = None
    slot: int | None = None
    source: str = ""
    """Who sent it (e.g. 'osc:127.0.0.1:9000', 'midi', 'ui'): feedback is not echoed to its source."""
    sample: int | None = None
    extra: dict = field(default_factory=dict)
    payload: object = field(default=None, repr=False, compare=False)
    """What a live source prepared for the engine (a `seed` event's analysed frames); not logged."""
    seconds: float | None = None
    """A preset `morph`'s length, or a `loop`'s seconds per leg (0 stops a loop)."""
    slots: tuple[int, ...] | None = None
    """A preset `loop`'s slots in order (None: every stored slot)."""
    values: dict | None = None
    """A preset `store`'s values ({name: value}); None: the parameters' current values."""

    def stamped(self, sample: int, t: float) -> Event:
        """A copy applied at output sample `sample` (`t` seconds), with an `extra` of its own to
        stamp. The fields are copied directly: `dataclasses.replace` costs several times more,
        and the engine stamps every event it applies (thousands a second from an MPE keyboard)."""
        applied = object.__new__(type(self))
        state = applied.__dict__
        state.update(self.__dict__)
        state["sample"] = sample
        state["t"] = t
        state["extra"] = dict(self.extra)
        return applied

    def due(self, samplerate: int) -> int:
        """The output sample this event is due at: its `sample` when stamped (a session log), else
        `t * samplerate` rounded up. The engine applies it at the first hop boundary from there."""
        return int(self.sample) if self.sample is not None else int(math.ceil(self.t * samplerate - 1e-9))

    def to_json(self) -> str:
        """One line of the event file / session log (no source, empty fields left out)."""
        record = {"t": self.t, "type": self.type}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ("t", "type", "source", "extra", "payload") or value is None:
                continue
            record[item.name] = list(value) if isinstance(value, tuple) else value
        record.update(self.extra)
        return json.dumps(record, separators=(", ", ": "))


def param(name: str, value: float, *, t: float = 0.0, source: str = "") -> Event:
    return Event("param", t=t, name=name, value=float(value), source=source)


def note_on(pitch: float, velocity: int, *, t: float = 0.0, source: str = "", voice: int | None = None) -> Event:
    return Event("note_on", t=t, pitch=pitch, velocity=int(velocity), source=source, voice=voice)


def note_off(pitch: float, *, t: float = 0.0, source: str = "", voice: int | None = None) -> Event:
    return Event("note_off", t=t, pitch=pitch, source=source, voice=voice)


def sound_off(*, voice: int | None = None, every: bool = False, t: float = 0.0, source: str = "") -> Event:
    """A `sound_off` event: voice id `voice`'s notes (None: the notes without an id; `every`: all
    notes and release tails, whatever their id) cut at once."""
    if every and voice is not None:
        raise ParameterError(f"sound_off: voice {voice} and every=True ask for two things; give one")
    return Event("sound_off", t=t, voice=voice, source=source, action=SOUND_OFF_ALL if every else None)


def voice_control(voice: int, name: str, value: float, *, t: float = 0.0, source: str = "") -> Event:
    """A `voice` event: `name` (one of `VOICE_CONTROLS`) of voice `voice` to `value`."""
    return Event("voice", t=t, voice=int(voice), name=name, value=float(value), source=source)


def _where(path: str | Path, line: int) -> str:
    return f"{path}:{line}"


def event_from_record(record: dict, *, where: str = "event") -> Event:
    """Validate one decoded JSON object; errors name the place and the field."""
    if not isinstance(record, dict):
        raise ParameterError(f"{where}: expected a JSON object, got {type(record).__name__}")
    kind = record.get("type")
    if kind not in EVENT_TYPES:
        raise ParameterError(f"{where}: field 'type' is {kind!r}; use one of {', '.join(EVENT_TYPES)}")
    t = record.get("t", 0.0)
    if not finite_number(t) or t < 0:
        raise ParameterError(f"{where}: field 't' is {t!r}; give seconds from the start as a number >= 0")
    for key in _REQUIRED[kind]:
        if key not in record:
            raise ParameterError(f"{where}: a {kind} event needs field {key!r}")
    event = Event(kind, t=float(t))
    if kind == "param":
        if not isinstance(record["name"], str) or not record["name"]:
            raise ParameterError(f"{where}: field 'name' must be a parameter name, got {record['name']!r}")
        event.name = record["name"]
        event.value = _number(record["value"], "value", where)
    if kind in ("note_on", "note_off"):
        event.pitch = _number(record["pitch"], "pitch", where)
        if not 0 <= event.pitch <= 127:
            raise ParameterError(f"{where}: field 'pitch' is {event.pitch}; MIDI pitch must be 0..127")
    if "voice" in record:
        if kind not in ("note_on", "note_off", "voice", "sound_off"):
            raise ParameterError(f"{where}: field 'voice' belongs to a note, voice or sound_off event, not a {kind}")
        event.voice = _whole(record["voice"], "voice", VOICE_IDS, where)
    if kind == "voice":
        name = record["name"]
        if name not in VOICE_CONTROLS:
            raise ParameterError(f"{where}: field 'name' is {name!r}; a voice event moves one of "
                                 f"{', '.join(VOICE_CONTROLS)}")
        low, high = VOICE_CONTROLS[name]
        value = _number(record["value"], "value", where)
        if not low <= value <= high:
            raise ParameterError(f"{where}: voice {name} {value:g} is out of range; give {low:g}..{high:g}")
        event.name, event.value = name, value
    if kind == "note_on":
        velocity = _number(record["velocity"], "velocity", where)
        if not 0 <= velocity <= 127:
            raise ParameterError(f"{where}: field 'velocity' is {velocity}; MIDI velocity must be 0..127")
        event.velocity = int(round(velocity))
    if kind == "preset":
        _preset_fields(event, record, where)
    if kind == "record":
        event.value = _number(record["value"], "value", where)
    if kind == "sound_off" and "action" in record:
        if record["action"] != SOUND_OFF_ALL or "voice" in record:
            raise ParameterError(f"{where}: a sound_off's field 'action' is {record['action']!r}; give "
                                 f"{SOUND_OFF_ALL!r} (every note, with no 'voice' field) or leave it out")
        event.action = SOUND_OFF_ALL
    if kind == "engine":
        if record["action"] not in ENGINE_ACTIONS:
            raise ParameterError(f"{where}: field 'action' is {record['action']!r}; an engine event is one of "
                                 f"{', '.join(ENGINE_ACTIONS)}")
        event.action = record["action"]
        if event.action == "restart":
            _check_numbers(record, RESTART_NUMBERS, where, "field", "fix that field of the restart marker")
    if kind == "seed" and (not isinstance(record["path"], str) or not record["path"]):
        raise ParameterError(f"{where}: field 'path' must name an audio file, got {record['path']!r}")
    if "sample" in record:
        event.sample = int(_number(record["sample"], "sample", where))
    known = {"t", "type", "name", "value", "pitch", "velocity", "voice", "action", "slot", "sample", "seconds", "slots", "values"}
    event.extra = {k: v for k, v in record.items() if k not in known}
    return event


def _preset_fields(event: Event, record: dict, where: str) -> None:
    action = record["action"]
    if action not in PRESET_ACTIONS:
        raise ParameterError(f"{where}: field 'action' is {action!r}; use one of {', '.join(PRESET_ACTIONS)}")
    event.action = action
    if action != "loop" or "slot" in record:
        if "slot" not in record:
            raise ParameterError(f"{where}: a preset {action} event needs field 'slot'")
        event.slot = _slot(record["slot"], "slot", where)
    if action in ("morph", "loop"):
        if "seconds" not in record:
            raise ParameterError(f"{where}: a preset {action} event needs field 'seconds'")
        seconds = _number(record["seconds"], "seconds", where)
        if seconds < 0:
            raise ParameterError(f"{where}: field 'seconds' is {seconds:g}; give seconds >= 0"
                                 + (" (0 stops a loop)" if action == "loop" else ""))
        event.seconds = seconds
    if "slots" in record:
        slots = record["slots"]
        if action != "loop":
            raise ParameterError(f"{where}: field 'slots' belongs to a preset loop, not a {action}")
        if not isinstance(slots, list) or len(slots) < 2:
            raise ParameterError(f"{where}: field 'slots' is {slots!r}; give a list of at least 2 slots "
                                 f"0..{PRESET_SLOTS - 1} (or leave it out for every stored slot)")
        if len(slots) > PRESET_SLOTS:
            raise ParameterError(f"{where}: field 'slots' has {len(slots)} slots; a loop goes through at most "
                                 f"{PRESET_SLOTS} (repeat the loop instead)")
        event.slots = tuple(_slot(slot, "slots", where) for slot in slots)
    if "values" in record:
        values = record["values"]
        if action != "store":
            raise ParameterError(f"{where}: field 'values' belongs to a preset store, not a {action}")
        if not isinstance(values, dict) or not all(isinstance(name, str) and name for name in values):
            raise ParameterError(f"{where}: field 'values' is {values!r}; give an object of parameter names "
                                 "and numbers, e.g. {\"x\": 0.5}")
        event.values = {name: _number(value, f"values.{name}", where) for name, value in values.items()}


def _slot(value, field_name: str, where: str) -> int:
    return _whole(value, field_name, PRESET_SLOTS, where, what="slot")


def _whole(value, field_name: str, count: int, where: str, *, what: str = "id") -> int:
    """A whole number 0..count-1 from field `field_name`."""
    number = _number(value, field_name, where)
    if number != int(number) or not 0 <= number < count:
        raise ParameterError(f"{where}: field {field_name!r} has {what} {value!r}; "
                             f"{what}s are whole numbers 0..{count - 1}")
    return int(number)


def _number(value, field_name: str, where: str) -> float:
    if not finite_number(value):
        raise ParameterError(f"{where}: field {field_name!r} is {value!r}; it must be a finite number")
    return float(value)


HEADER_NUMBERS = {"samplerate": (True, 1, None), "model_samplerate": (True, 1, None), "seed": (True, 0, None),
                  "start_sample": (True, None, None), "lookahead": (True, 0, LOOKAHEAD_MAX), "seconds": (False, 0, None),
                  "output_latency": (False, None, None)}
"""Header fields that are numbers: (whole, lowest, highest); a log livegen wrote has them right, an
edited one may not. A seed has no highest: an older run's, past `SEED_MAX`, still renders."""

RESTART_NUMBERS = ("seed", "lookahead")
"""Fields of an `engine` `restart` marker that build the fresh engine, checked as a header's are."""


def _check_numbers(record: dict, keys, where: str, what: str, fix: str) -> None:
    for key in keys:
        value = record.get(key)
        if value is None:
            continue
        whole, low, high = HEADER_NUMBERS[key]
        if (not finite_number(value) or (whole and value != int(value)) or (low is not None and value < low)
                or (high is not None and value > high)):
            noun = "an integer" if whole else "a number"
            wanted = (f"{noun} in {low}..{high}" if low is not None and high is not None
                      else noun + (f" >= {low}" if low is not None else ""))
            raise ParameterError(f"{where}: {what} {key!r} is {value!r}; it must be {wanted}; {fix}")


def _checked_header(record: dict, where: str) -> dict:
    _check_numbers(record, HEADER_NUMBERS, where, "header field", "fix that field of the header line")
    wav = record.get("wav")  # the take's file name, beside the log (`livegen.session.replay`)
    if wav is not None and (not isinstance(wav, str) or wav in ("", ".", "..") or "/" in wav):
        raise ParameterError(f"{where}: header field 'wav' is {wav!r}; it must be the name of the take's WAV "
                             "beside the log (e.g. \"take.wav\"); fix that field of the header line")
    fade = record.get("fade_end")  # a render's log: that render ended with the stop fade
    if fade is not None and not isinstance(fade, bool):
        raise ParameterError(f"{where}: header field 'fade_end' is {fade!r}; it must be true or false; fix that "
                             "field of the header line")
    return record


def read_events(path: str | Path, *, tolerate_truncation: bool = False) -> tuple[dict | None, list[Event]]:
    """Read an event file or session log: (header or None, events sorted by time).

    With `tolerate_truncation`, a last line cut by a crash (no newline after it) is dropped with a
    warning instead of raising, so a session log renders up to its last whole event.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
    except OSError as exc:
        raise ParameterError(f"cannot read event file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ParameterError(f"{path} is not a UTF-8 text file of JSON lines") from None
    header: dict | None = None
    events: list[Event] = []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = _where(path, i + 1)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if tolerate_truncation and i == last and not text.endswith("\n"):  # a whole bad line is no crash
                warnings.warn(f"{where}: last line is incomplete (cut by a crash?); rendering up to the event before it")
                break
            raise ParameterError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if isinstance(record, dict) and record.get("type") == "header":
            if events or header is not None:
                raise ParameterError(f"{where}: the header must be the first line")
            header = _checked_header(record, where)
            continue
        events.append(event_from_record(record, where=where))
    events.sort(key=lambda event: event.t)  # stable: simultaneous events keep file order
    return header, events


def write_events(path: str | Path, events: Iterable[Event], *, header: dict | None = None) -> None:
    with open(path, "w", encoding="utf-8") as out:
        if header is not None:
            out.write(json.dumps({"type": "header", **header}) + "\n")
        for event in events:
            out.write(event.to_json() + "\n")


def check_events(events, params, *, origin=None) -> None:
    """Refuse unknown parameter names before rendering (the file's line numbers are gone by now;
    `origin`, the file the events came from, is named in the message)."""
    where = f"{origin}: " if origin else ""
    for event in events:
        if event.type == "param" and event.name not in params.specs:
            raise ParameterError(f"{where}event at t={event.t}: unknown parameter {event.name!r}; "
                                 f"known parameters: {', '.join(params.names)}")
