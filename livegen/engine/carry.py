"""What a new engine takes over from the one before it: the presets stored in it, the notes still
sounding and the sustain pedal.

The engine renders in another process that can vanish with its audio device at any moment, and a
model switch starts another; neither can be asked afterwards what it held. `CarryOver` keeps it on
the client's side instead, from two streams:

- the events the performer posts (`posted`), in order: keys held (with their voice ids), notes the
  pedal holds (a `sound_off` drops its notes from both), the pedal, and each voice id's controls
  (bend, x, y, pressure: an MPE keyboard's channel bent in the middle of a note keeps its bend).
  A note the pedal holds whose id started another note has left its id (`livegen.engine.voices`):
  it keeps the id's controls as they were at the id's last note event before that one (a keyboard
  sets the channel for the new note just before it), and the new engine starts it with those.
  An event posted while the device is gone never reaches an engine, but the performer did it: a
  key let go meanwhile must not sound again.
- the events the engine applied (`applied`): a preset `store` comes back with the values the
  engine stored (`Event.values`), so the presets carried are the engine's own, bit for bit; a
  preset `morph` or `loop` comes back with its path (`moves`), so a new engine resumes it at the
  same point (a `resume`), and the parameter events applied after it release what they move.

`handover` turns that into events for the new engine, applied at its first hop and logged like any
other after the log's `engine` `restart` marker, so a render of the log, which starts a fresh
engine there too, renders what was heard.
"""

from __future__ import annotations

import threading

from livegen.engine.events import SOUND_OFF_ALL, VOICE_CONTROLS, VOICE_IDS, Event, voice_control

CARRY_SOURCE = "carry"
"""The `source` of the events `handover` makes."""
MAX_NOTES = 128
"""Notes kept at most (the oldest go first, as an engine steals them)."""


class CarryOver:
    """Presets, held notes and the pedal of a performance, kept across engines. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self.presets: dict[int, dict[str, float]] = {}
        self._notes: list[list] = []
        """[pitch, velocity, key down, the note-on, frozen] in the order pressed; key up: the pedal
        holds it; frozen: the controls it kept when its id started another note (None: it follows
        its id)."""
        self._controls: dict[tuple[int, str], float] = {}
        """Each voice id's controls as last posted ((id, name): value), in the order first set."""
        self._at_note: dict[int, dict[str, float]] = {}
        """Each voice id's controls at its last note event ({name: value}; names not set: 0)."""
        self._pedal: bool | None = None
        """The sustain pedal as last posted (None: never touched)."""
        self._voices: int | None = None
        """The `voices` parameter as last posted (None: never touched)."""
        self._morph: tuple[Event, dict] | None = None
        """The running preset morph or loop as applied, and its `moves` (None: none runs)."""

    # ----------------------------------------------------------------- what the performer does
    def posted(self, event: Event) -> None:
        """Every event posted to the engine, in order (before it is posted)."""
        kind = event.type
        with self._lock:
            if kind == "note_on" and event.velocity:
                pitch = float(event.pitch)
                # A key pressed again retriggers: the voice it held rings out through its release.
                self._notes = [note for note in self._notes if not (note[2] and _same_key(note, pitch, event.voice))]
                if event.voice is not None:  # the id's notes the pedal holds leave it
                    for note in self._notes:
                        if not note[2] and note[4] is None and note[3].voice == event.voice:
                            note[4] = dict(self._at_note.get(event.voice, {}))
                self._notes.append([pitch, int(event.velocity), True, event, None])
                del self._notes[:-MAX_NOTES]
                self._note_event(event.voice)
            elif kind in ("note_on", "note_off"):
                self._key_up(float(event.pitch), event.voice)
                self._note_event(event.voice)
            elif kind == "sound_off":  # its notes are cut, held or not (every note: a panic)
                every = event.action == SOUND_OFF_ALL
                self._notes = [note for note in self._notes if not every and note[3].voice != event.voice]
            elif kind == "voice" and event.name in VOICE_CONTROLS and event.voice in range(VOICE_IDS):
                if isinstance(event.value, (int, float)):  # what an engine takes (it rejects the rest)
                    self._controls[(int(event.voice), event.name)] = float(event.value)
            elif kind == "param" and event.name == "sustain":
                self._set_pedal(_down(event.value))
            elif kind == "param" and event.name == "voices":
                try:
                    self._voices = max(int(float(event.value)), 0)
                except (TypeError, ValueError):
                    pass
            elif kind == "preset" and event.action == "recall":
                stored = self.presets.get(int(event.slot), {}) if event.slot is not None else {}
                if "sustain" in stored:
                    self._set_pedal(_down(stored["sustain"]))

    def _note_event(self, voice: int | None) -> None:
        if voice is not None:
            self._at_note[voice] = {name: value for (vid, name), value in self._controls.items() if vid == voice}

    def _key_up(self, pitch: float, voice: int | None) -> None:
        if self._pedal:
            for note in self._notes:
                if note[2] and _same_key(note, pitch, voice):
                    note[2] = False
        else:
            self._notes = [note for note in self._notes if not (note[2] and _same_key(note, pitch, voice))]

    def _set_pedal(self, down: bool) -> None:
        if self._pedal and not down:
            self._notes = [note for note in self._notes if note[2]]
        self._pedal = down

    # ----------------------------------------------------------------- what the engine did
    def applied(self, event: Event) -> None:
        """A listener: every event the engine applied, stamped, in its order."""
        with self._lock:
            if event.type == "preset" and event.action == "store" and event.values is not None:
                self.presets[int(event.slot)] = dict(event.values)
            elif event.type == "preset" and event.action in ("morph", "loop", "recall"):
                moves = event.extra.get("moves")  # a loop of 0 seconds and a recall stop it
                self._morph = (event, {**moves, "rows": dict(moves["rows"])}) if moves else None
            elif event.type == "param" and self._morph is not None:  # the performer's hand wins
                self._morph[1]["rows"].pop(event.name, None)

    def withdraw(self, event: Event) -> None:
        """`event`, a note-on posted while no engine played, is dropped: its note is not carried
        (a performer does not expect a note to start seconds late)."""
        with self._lock:
            self._notes = [note for note in self._notes if note[3] is not event]

    # ----------------------------------------------------------------- the new engine
    def handover(self, late=(), *, voices: int | None = None, at: int | None = None, settled=()) -> list[Event]:
        """Events that give a fresh engine what the performance holds: every stored preset (with
        its values), then `settled` (the parameters as the old engine left them), a running morph
        or loop resumed where it was at the old engine's output sample `at` (not given: none), then
        `late` (what was posted while no engine played: parameters and presets, in order, after the
        presets they may recall; they may release or stop that morph), the pedal as the performer left it, each
        voice id's controls as last posted (those not at rest), and the notes in the order pressed
        (with their voice ids; the newest the voice count allows: the `voices` posted, else
        `voices`; an engine stole the others), each one the pedal holds let go at once so that the
        pedal keeps it. Key presses, releases, pedal moves and voice controls among `late` are in
        the notes, pedal and controls already (they were `posted`); leave them out of `late`."""
        with self._lock:
            events = [Event("preset", action="store", slot=slot, values=dict(values), source=CARRY_SOURCE)
                      for slot, values in sorted(self.presets.items())]
            events += settled
            if self._morph is not None and at is not None:
                resumed = self._resume(at)
                if resumed is not None:
                    events.append(resumed)
            self._morph = None  # the new engine's applied resume says it again
            events += late
            if self._pedal is not None:
                events.append(Event("param", name="sustain", value=1.0 if self._pedal else 0.0, source=CARRY_SOURCE))
            held = {key: value for key, value in self._controls.items() if value}
            events += [voice_control(voice, name, value, source=CARRY_SOURCE) for (voice, name), value in held.items()]
            count = self._voices if self._voices is not None else voices
            notes = self._notes if count is None else self._notes[len(self._notes) - count:] if count else []
            for pitch, velocity, down, pressed, frozen in notes:
                voice = pressed.voice
                if voice is not None:  # the controls it starts with: its frozen ones, else its id's
                    events += _set_controls(voice, frozen if frozen is not None else {
                        name: value for (vid, name), value in self._controls.items() if vid == voice}, held)
                events.append(Event("note_on", pitch=pitch, velocity=velocity, voice=voice, source=CARRY_SOURCE))
                if not down:
                    events.append(Event("note_off", pitch=pitch, voice=voice, source=CARRY_SOURCE))
            for voice in {pressed.voice for _, _, _, pressed, frozen in notes if frozen is not None}:
                events += _set_controls(voice, {name: value for (vid, name), value in self._controls.items()
                                                if vid == voice}, held)
            return events


    def _resume(self, at: int) -> Event | None:
        """The running morph as an event that resumes it `at` (None when it is over or moves nothing)."""
        event, moves = self._morph
        elapsed = max(int(at) - int(moves["start"]), 0)
        if not moves["rows"] or (event.action == "morph" and elapsed >= moves["span"]):
            return None
        return Event("preset", action=event.action, slot=event.slot, slots=event.slots, seconds=event.seconds,
                     source=CARRY_SOURCE, extra={"resume": {"rows": dict(moves["rows"]), "span": int(moves["span"]),
                                                            "elapsed": elapsed}})


def _set_controls(voice: int, values: dict[str, float], held: dict[tuple[int, str], float]) -> list[Event]:
    """Voice events that bring id `voice` from `held` (what the new engine holds, updated) to
    `values` (names left out: 0)."""
    events = []
    for name in VOICE_CONTROLS:
        value = values.get(name, 0.0)
        if held.get((voice, name), 0.0) != value:
            held[(voice, name)] = value
            events.append(voice_control(voice, name, value, source=CARRY_SOURCE))
    return events


def _same_key(note: list, pitch: float, voice: int | None) -> bool:
    """Whether a carried note is the key (pitch and voice id) a note event names."""
    return note[0] == pitch and note[3].voice == voice


def _down(value) -> bool:
    try:
        return float(value) >= 0.5
    except (TypeError, ValueError):
        return False
