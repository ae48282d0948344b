"""The OSC address space: each message of the table (`livegen.control.oscaddress`) to its handler.

Handlers check the arguments, answer the sender with `/livegen/error s` when something is
wrong (naming the address and what to do), and post events to the target. They never block:
slow work (a model, a seed file) answers later through a `done` callback.
"""

from __future__ import annotations

import difflib
import math
import time
from typing import NamedTuple

from livegen.control.mapping import RECORD
from livegen.control.oscaddress import ADDRESSES, PREFIX, SOUND_CHECK_RANGE, SOUND_CHECK_SECONDS, find, param_rows
from livegen.control.oscsocket import source_of
from livegen.engine.events import (PRESET_SLOTS, VOICE_CONTROLS, VOICE_IDS, Event, note_off, note_on, sound_off,
                                   voice_control)
from livegen.errors import ParameterError


VOICE_PREFIX = f"{PREFIX}voice/"
VOICE_ADDRESSES = [entry.suffix[1:] for entry in ADDRESSES if entry.prefix == VOICE_PREFIX]
"""`note`, `bend`, ...: what `/livegen/voice/<id>/` takes, for the error that names them."""
UNKNOWN_REPLY_SECONDS = 1.0
"""An unknown address is answered at most once in this long (per sender and address)."""
UNKNOWN_REMEMBERED = 1024
"""Unknown addresses held back at once; past that, new ones go unanswered until some expire."""
PANIC_ZEROES = ("sustain", "drone", "input_level")
"""The parameters a panic sets to 0 (those the engine has): the pedal let up, the drone (a
continuation model's stream) and the audio input's voice silenced, as the UI then shows."""
PANIC_SOURCE = "panic"
"""The source of a panic's events: not its sender's, so every subscriber, the sender too (a UI
whose key sent it), hears `sustain` and `drone` go to 0."""


class Request(NamedTuple):
    address: str
    rest: str
    """What a `<...>` pattern matched (a parameter name, a latent index); "" otherwise."""
    args: tuple
    sender: tuple
    source: str


def nearest_address(address: str) -> str | None:
    """The known address nearest `address` (difflib), a `<...>` filled from the path element in
    its place (`/livegen/parm/x` -> `/livegen/param/x`); None when none is near."""
    parts = address.split("/")
    candidates = []
    for entry in ADDRESSES:
        if entry.prefix is None:
            candidates.append(entry.pattern)
            continue
        pattern = entry.pattern.split("/")
        hole = next(i for i, part in enumerate(pattern) if part.startswith("<"))
        if len(parts) == len(pattern) and parts[hole]:  # as deep: the element in its place fills it
            pattern[hole] = parts[hole]
            candidates.append("/".join(pattern))
    tails = {candidate[len(PREFIX):]: candidate for candidate in candidates}  # the shared prefix is no likeness
    match = difflib.get_close_matches(address[len(PREFIX):], tails, n=1, cutoff=0.6)
    return tails[match[0]] if match else None


def _number(value) -> float | None:
    """OSC numbers: i, h, f, d (and T/F as 1/0); None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def status_pairs(status: dict) -> list:
    """A status dict as OSC arguments: name, value, name, value, ... (bools as 0/1, the rest as text)."""
    pairs = []
    for key, value in status.items():
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        elif not isinstance(value, (int, float, str)):
            value = str(value)
        pairs += [str(key), value]
    return pairs


class OscDispatcher:
    """Runs the handler the table names for each message.

    target: the `ControlTarget`; wire: `reply(sender, address, args)` and `error(sender, text)`;
    feedback: the server's `Feedback`; midi: optional MIDI input (`arm`, `disarm`, `unlearn`,
    `bindings`, `status`); status: a callable giving the whole `/livegen/status` dict.
    """

    def __init__(self, target, wire, feedback, stats, *, midi=None, status=None):
        self.target = target
        self.wire = wire
        self.feedback = feedback
        self.stats = stats
        self.midi = midi
        self.status = status or target.status
        self.last_address = ""
        self.clock = time.monotonic
        """Seconds, for the replies to unknown addresses (a test sets its own)."""
        self._unknown_quiet: dict[tuple, float] = {}
        """(sender, unknown address) -> until when it is not answered again."""
        self.handlers = {entry.handler: getattr(self, f"on_{entry.handler}") for entry in ADDRESSES}

    def handle(self, address: str, args: tuple, sender: tuple) -> None:
        self.stats["messages"] += 1
        entry, rest = find(address)
        if entry is None or not entry.query:  # the UI's own polling would hide what was played
            self.last_address = address[:64]
        if entry is None:
            if address.startswith(PREFIX):
                self._unknown(address, sender)
            else:
                self.wire.error(sender, f"unknown address {address!r}; livegen listens under {PREFIX}")
            return
        self.handlers[entry.handler](Request(address, rest, tuple(args), sender, source_of(sender)))

    def _unknown(self, address: str, sender: tuple) -> None:
        """Answer an unknown address under `/livegen/` with the nearest known one, at most once
        per `UNKNOWN_REPLY_SECONDS` per sender and address: a client that floods one typo hears
        of it once a second (every one is counted: status `osc_unknown`)."""
        self.stats["unknown"] += 1
        now = self.clock()
        address = address[:128]
        key = (sender, address)
        if now < self._unknown_quiet.get(key, -math.inf):
            self.stats["unknown_unanswered"] += 1
            return
        if len(self._unknown_quiet) >= UNKNOWN_REMEMBERED:
            self._unknown_quiet = {held: until for held, until in self._unknown_quiet.items() if until > now}
            if len(self._unknown_quiet) >= UNKNOWN_REMEMBERED:
                self.stats["unknown_unanswered"] += 1
                return
        self._unknown_quiet[key] = now + UNKNOWN_REPLY_SECONDS
        nearest = nearest_address(address)
        where = f"did you mean {nearest}? " if nearest else ""
        if address.startswith(VOICE_PREFIX):
            where += f"a voice takes {VOICE_PREFIX}<id>/{'|'.join(VOICE_ADDRESSES)} (docs/osc.md)"
        else:
            where += "docs/osc.md lists the addresses"
        self.wire.error(sender, f"unknown address {address!r}; {where}")

    # -- helpers -------------------------------------------------------------------------------
    def _numbers(self, m: Request, count: int) -> list[float] | None:
        args = m.args
        if len(args) != count:
            self.wire.error(m.sender, f"{m.address}: expected {count} number{'s' if count > 1 else ''}, got {len(args)} arguments")
            return None
        values = [_number(arg) for arg in args]
        if any(value is None for value in values):
            kinds = ", ".join(type(arg).__name__ for arg in args)
            self.wire.error(m.sender, f"{m.address}: arguments must be numbers (int or float), got {kinds}")
            return None
        if not all(math.isfinite(value) for value in values):
            self.wire.error(m.sender, f"{m.address}: {', '.join(f'{v:g}' for v in values)} is not finite; refused")
            return None
        return values

    def _checked(self, m: Request, name: str, value: float) -> float | None:
        params = self.target.params
        try:
            clamped, moved = params.check(name, value)
        except ParameterError as exc:
            self.wire.error(m.sender, f"{m.address}: {exc}; refused")
            return None
        if moved:
            spec = params.spec(name)
            self._clamped(m, name, value, clamped, spec.minimum, spec.maximum)
        return clamped

    def _clamped(self, m: Request, name: str, value: float, clamped: float, low: float, high: float) -> None:
        """Tell the sender a value was clamped: the value, where it went, the range."""
        self.wire.error(m.sender, f"{m.address}: {value:g} clamped to {clamped:g} ({name} range {low:g}..{high:g})")

    def _slot(self, m: Request, slot: float) -> bool:
        if slot != int(slot) or not 0 <= slot < PRESET_SLOTS:
            self.wire.error(m.sender, f"{m.address}: slot {slot:g} must be a whole number 0..{PRESET_SLOTS - 1}; refused")
            return False
        return True

    def _one_string(self, m: Request, what: str) -> str | None:
        if len(m.args) != 1 or not isinstance(m.args[0], str):
            self.wire.error(m.sender, f"{m.address}: expected one string ({what})")
            return None
        return m.args[0]

    def _post(self, event: Event, source: str) -> None:
        event.source = source
        self.target.post(event)
        self.stats["posted"] += 1

    def _set(self, m: Request, name: str) -> None:
        values = self._numbers(m, 1)
        if values is not None:
            value = self._checked(m, name, values[0])
            if value is not None:
                self._post(Event("param", name=name, value=value), m.source)

    def _latent_count(self) -> int:
        return sum(1 for name in self.target.params.specs if name[:1] == "z" and name[1:].isdigit())

    # -- parameters and notes ------------------------------------------------------------------
    def on_xy(self, m: Request) -> None:
        values = self._numbers(m, 2)
        if values is not None:
            checked = [self._checked(m, name, v) for name, v in zip(("x", "y"), values)]
            for name, value in zip(("x", "y"), checked):
                if value is not None:
                    self._post(Event("param", name=name, value=value), m.source)

    def on_latent(self, m: Request) -> None:
        if f"z{m.rest}" not in self.target.params.specs:
            self.wire.error(m.sender, f"{m.address}: no latent dimension {m.rest!r} (this model has "
                                      f"z0..z{self._latent_count() - 1}); /livegen/params lists them")
            return
        self._set(m, f"z{m.rest}")

    def on_param(self, m: Request) -> None:
        if m.rest not in self.target.params.specs:
            self.wire.error(m.sender, f"{m.address}: no parameter {m.rest!r}; /livegen/params lists them")
            return
        self._set(m, m.rest)

    def on_input(self, m: Request) -> None:
        name = m.rest if m.rest.startswith("input_") else f"input_{m.rest}"
        if name not in self.target.params.specs:
            settings = [n[len("input_"):] for n in self.target.params.specs if n.startswith("input_")]
            have = (f"this engine's: {', '.join(settings)}" if settings
                    else "this engine has no audio input: start play with --input-device")
            self.wire.error(m.sender, f"{m.address}: no input setting {m.rest!r} ({have})")
            return
        self._set(m, name)

    def on_soundcheck(self, m: Request) -> None:
        values = self._numbers(m, 1) if m.args else [SOUND_CHECK_SECONDS]
        if values is None:
            return
        seconds = values[0]
        low, high = SOUND_CHECK_RANGE
        if not low <= seconds <= high:
            self.wire.error(m.sender, f"{m.address}: {seconds:g} s refused; a sound check listens {low:g}..{high:g} s")
            return

        def done(ok: bool, text: str) -> None:  # from the thread that listened
            if ok:
                self.wire.reply(m.sender, f"{PREFIX}input/soundcheck", (text,))
            else:
                self.wire.error(m.sender, f"{m.address}: {text}")

        self.target.sound_check(seconds, done)

    def on_note(self, m: Request) -> None:
        self._note(m, None)

    def _note(self, m: Request, voice: int | None) -> None:
        values = self._numbers(m, 2)
        if values is None:
            return
        pitch, velocity = values
        if not 0 <= pitch <= 127:
            self.wire.error(m.sender, f"{m.address}: pitch {pitch:g} outside 0..127; refused")
            return
        if not 0 <= velocity <= 127:
            clamped = min(max(velocity, 0.0), 127.0)
            self.wire.error(m.sender, f"{m.address}: velocity {velocity:g} clamped to {clamped:g} (0..127)")
            velocity = clamped
        velocity = int(round(velocity))
        event = note_on(pitch, velocity, voice=voice) if velocity > 0 else note_off(pitch, voice=voice)
        self._post(event, m.source)

    # -- voices (per-touch control) ------------------------------------------------------------
    def _voice_id(self, m: Request) -> int | None:
        """The id in `/livegen/voice/<id>/...`, or None (the sender is told the range)."""
        if m.rest.isascii() and m.rest.isdigit() and int(m.rest) < VOICE_IDS:
            return int(m.rest)
        self.wire.error(m.sender, f"{m.address}: voice id {m.rest!r} refused; ids are whole numbers 0..{VOICE_IDS - 1}")
        return None

    def _voice_value(self, m: Request, name: str, value: float) -> float:
        low, high = VOICE_CONTROLS[name]
        clamped = min(max(value, low), high)
        if clamped != value:
            self._clamped(m, f"voice {name}", value, clamped, low, high)
        return clamped

    def on_voice_note(self, m: Request) -> None:
        voice = self._voice_id(m)
        if voice is not None:
            self._note(m, voice)

    def on_voice(self, m: Request) -> None:
        """`bend`, `x`, `y` or `pressure`: the last element of the address."""
        voice = self._voice_id(m)
        values = self._numbers(m, 1) if voice is not None else None
        if values is not None:
            name = m.address.rpartition("/")[2]
            self._post(voice_control(voice, name, self._voice_value(m, name, values[0])), m.source)

    def on_voice_xy(self, m: Request) -> None:
        voice = self._voice_id(m)
        values = self._numbers(m, 2) if voice is not None else None
        if values is not None:
            for name, value in zip(("x", "y"), values):
                self._post(voice_control(voice, name, self._voice_value(m, name, value)), m.source)

    def on_voice_off(self, m: Request) -> None:
        voice = self._voice_id(m)
        if voice is not None and self._pressed(m):
            self._post(sound_off(voice=voice), m.source)

    def on_panic(self, m: Request) -> None:
        """Silence now, as events the engine already applies (each logged, so a take re-renders it):
        the morph or loop stopped first (it would move what follows), the pedal up, the drone off,
        then every note and release tail cut."""
        if not self._pressed(m):
            return
        self._post(Event("preset", action="loop", seconds=0.0), PANIC_SOURCE)
        specs = self.target.params.specs
        for name in PANIC_ZEROES:
            if name in specs:
                self._post(Event("param", name=name, value=0.0), PANIC_SOURCE)
        self._post(sound_off(every=True), PANIC_SOURCE)

    def _pressed(self, m: Request) -> bool:
        """Whether a trigger acts: with no arguments, or a touch surface's button (one number): its
        press (1) acts, its release (0) does nothing."""
        if not m.args:
            return True
        values = self._numbers(m, 1)
        return values is not None and values[0] >= 0.5

    def on_record(self, m: Request) -> None:
        values = self._numbers(m, 1)
        if values is not None:
            self._post(Event("record", value=1.0 if values[0] >= 0.5 else 0.0), m.source)

    # -- presets -------------------------------------------------------------------------------
    def on_preset_store(self, m: Request) -> None:
        self._preset_slot(m, "store")

    def on_preset_recall(self, m: Request) -> None:
        self._preset_slot(m, "recall")

    def _preset_slot(self, m: Request, action: str) -> None:
        values = self._numbers(m, 1)
        if values is not None and self._slot(m, values[0]):
            self._post(Event("preset", action=action, slot=int(values[0])), m.source)

    def on_preset_morph(self, m: Request) -> None:
        values = self._numbers(m, 2)
        if values is None:
            return
        slot, seconds = values
        if self._seconds(m, seconds, "") and self._slot(m, slot):
            self._post(Event("preset", action="morph", slot=int(slot), seconds=seconds), m.source)

    def on_preset_loop(self, m: Request) -> None:
        if not m.args:
            self.wire.error(m.sender, f"{m.address}: expected seconds per leg, then optional slots; got no arguments")
            return
        values = self._numbers(m, len(m.args))
        if values is None:
            return
        seconds, slots = values[0], values[1:]
        if seconds > 0 and len(slots) == 1:
            self.wire.error(m.sender, f"{m.address}: a loop needs at least 2 slots (or none: every stored slot), "
                                      f"got slot {slots[0]:g}; refused")
            return
        if len(slots) > PRESET_SLOTS:
            self.wire.error(m.sender, f"{m.address}: a loop goes through at most {PRESET_SLOTS} slots, got "
                                      f"{len(slots)}; refused")
            return
        if not self._seconds(m, seconds, " (0 stops the loop)") or not all(self._slot(m, slot) for slot in slots):
            return
        self._post(Event("preset", action="loop", seconds=seconds,
                         slots=tuple(int(slot) for slot in slots) if slots and seconds > 0 else None), m.source)

    def _seconds(self, m: Request, seconds: float, hint: str) -> bool:
        if seconds < 0:
            self.wire.error(m.sender, f"{m.address}: seconds {seconds:g} must be >= 0{hint}; refused")
            return False
        return True

    # -- MIDI learn ----------------------------------------------------------------------------
    def on_learn(self, m: Request) -> None:
        if self.midi is None:
            self.wire.error(m.sender, f"{m.address}: MIDI input is off; start with MIDI enabled to learn")
            return
        name = self._one_string(m, "a parameter name, or '' to cancel")
        if name is None:
            return
        if not name:
            self.midi.disarm()
            return
        if name not in self.target.params.specs and name != RECORD:
            self.wire.error(m.sender, f"{m.address}: no parameter {name!r}; /livegen/params lists them "
                                      f"('{RECORD}' binds a button that starts and stops recording)")
            return
        self.midi.arm(name, lambda param, control: self.wire.reply(m.sender, f"{PREFIX}learned", (param, control)))

    def on_unlearn(self, m: Request) -> None:
        if self.midi is None:
            self.wire.error(m.sender, f"{m.address}: MIDI input is off; nothing is bound")
            return
        name = self._one_string(m, "a parameter name")
        if name is None:
            return
        if not self.midi.unlearn(name):
            self.wire.error(m.sender, f"{m.address}: {name!r} has no MIDI binding; /livegen/bindings lists them")
            return
        self.on_bindings(m)

    def on_bindings(self, m: Request) -> None:
        flat = [text for pair in (self.midi.bindings() if self.midi is not None else []) for text in pair]
        self.wire.reply(m.sender, f"{PREFIX}bindings", tuple(flat))

    # -- slow work -----------------------------------------------------------------------------
    def on_model(self, m: Request) -> None:
        if len(m.args) != 1 or not isinstance(m.args[0], str) or not m.args[0]:
            self.wire.error(m.sender, f"{m.address}: expected one string, a model directory")
            return

        def done(ok: bool, text: str) -> None:  # from the loading thread
            if ok:
                self.wire.reply(m.sender, f"{PREFIX}model", (text,))
                self.feedback.broadcast(f"{PREFIX}model", (text,), skip=m.sender)
            else:
                self.wire.error(m.sender, f"{m.address}: {text}")

        self.target.load_model(m.args[0], done)

    def on_seed(self, m: Request) -> None:
        if len(m.args) != 1 or not isinstance(m.args[0], str) or not m.args[0]:
            self.wire.error(m.sender, f"{m.address}: expected one string, the path of an audio file")
            return

        def done(ok: bool, text: str) -> None:  # from the thread that read the file
            if ok:
                self.wire.reply(m.sender, f"{PREFIX}seed", (text,))
            else:
                self.wire.error(m.sender, text)  # it names the address and the file

        self.target.load_seed(m.args[0], done, source=m.source)

    # -- queries -------------------------------------------------------------------------------
    def on_get(self, m: Request) -> None:
        name = m.rest or (m.args[0] if len(m.args) == 1 and isinstance(m.args[0], str) else "")
        params = self.target.params
        if name not in params.specs:
            self.wire.error(m.sender, f"{m.address}: no parameter {name!r}; /livegen/params lists them")
            return
        self.wire.reply(m.sender, f"{PREFIX}param/{name}", (float(params.get(name)),))

    def on_params(self, m: Request) -> None:
        self.wire.reply_bundled(m.sender, f"{PREFIX}params", param_rows(self.target.params.specs))

    def on_status(self, m: Request) -> None:
        self.wire.reply(m.sender, f"{PREFIX}status", tuple(status_pairs(self.status())))

    def on_subscribe(self, m: Request) -> None:
        destination = self._destination(m)
        if destination is None:
            return
        if not self.feedback.subscribe(destination, m.source):
            self.wire.error(m.sender, f"{m.address}: {self.feedback.max_subscribers} subscribers already (each lasts "
                                      f"{self.feedback.lease:g} s unless renewed); unsubscribe one first")
            return
        self.wire.reply(m.sender, f"{PREFIX}subscribed", (destination[1], self.feedback.lease))

    def on_unsubscribe(self, m: Request) -> None:
        destination = self._destination(m)
        if destination is not None:
            self.feedback.unsubscribe(destination)

    def _destination(self, m: Request) -> tuple[str, int] | None:
        """The sender, or the port given on the sender's host."""
        port = m.sender[1]
        if m.args:
            value = _number(m.args[0]) if len(m.args) == 1 else None
            if value is None or not 1 <= value <= 65535 or value != int(value):
                self.wire.error(m.sender, f"{m.address}: optional argument is a UDP port 1..65535, got {m.args!r}")
                return None
            port = int(value)
        return (m.sender[0], port)
