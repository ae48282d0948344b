"""What a new engine takes over from the one before it: the presets stored in it, the notes still
sounding and the sustain pedal.

The engine renders in another process that can vanish with its audio device at any moment, and a
model switch starts another; neither can be asked afterwards what it held. `CarryOver` keeps it on
the client's side instead, from two streams:

- the events the performer posts (`posted`), in order: keys held, notes the pedal holds, the pedal.
  An event posted while the device is gone never reaches an engine, but the performer did it: a
  key let go meanwhile must not sound again.
- the events the engine applied (`applied`): a preset `store` comes back with the values the
  engine stored (`Event.values`), so the presets carried are the engine's own, bit for bit; and
  the keys the engine holds.

`handover` turns that into events for the new engine, applied at its first hop and logged like any
other, so a session log still re-renders what was heard.
"""

from __future__ import annotations

import threading

from livegen.engine.events import Event

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
        """[pitch, velocity, key down] in the order pressed; key up: the pedal holds it."""
        self._pedal: bool | None = None
        """The sustain pedal as last posted (None: never touched)."""
        self._engine_keys: set[float] = set()
        """Pitches whose key is down in the engine, as applied."""

    # ----------------------------------------------------------------- what the performer does
    def posted(self, event: Event) -> None:
        """Every event posted to the engine, in order (before it is posted)."""
        kind = event.type
        with self._lock:
            if kind == "note_on" and event.velocity:
                pitch = float(event.pitch)
                # A key pressed again retriggers: the voice it held rings out through its release.
                self._notes = [note for note in self._notes if not (note[2] and note[0] == pitch)]
                self._notes.append([pitch, int(event.velocity), True])
                del self._notes[:-MAX_NOTES]
            elif kind in ("note_on", "note_off"):
                self._key_up(float(event.pitch))
            elif kind == "param" and event.name == "sustain":
                self._set_pedal(_down(event.value))
            elif kind == "preset" and event.action == "recall":
                stored = self.presets.get(int(event.slot), {}) if event.slot is not None else {}
                if "sustain" in stored:
                    self._set_pedal(_down(stored["sustain"]))

    def _key_up(self, pitch: float) -> None:
        if self._pedal:
            for note in self._notes:
                if note[2] and note[0] == pitch:
                    note[2] = False
        else:
            self._notes = [note for note in self._notes if not (note[2] and note[0] == pitch)]

    def _set_pedal(self, down: bool) -> None:
        if self._pedal and not down:
            self._notes = [note for note in self._notes if note[2]]
        self._pedal = down

    # ----------------------------------------------------------------- what the engine did
    def applied(self, event: Event) -> None:
        """A listener: every event the engine applied, stamped, in its order."""
        kind = event.type
        with self._lock:
            if kind == "preset" and event.action == "store" and event.values is not None:
                self.presets[int(event.slot)] = dict(event.values)
            elif kind == "note_on" and event.velocity:
                self._engine_keys.add(float(event.pitch))
            elif kind in ("note_on", "note_off"):
                self._engine_keys.discard(float(event.pitch))

    # ----------------------------------------------------------------- the new engine
    def handover(self, *, voices: int | None = None) -> list[Event]:
        """Events that give a fresh engine what the performance holds.

        An engine that goes on across the change, as a render of a session log does, is made to
        cut the notes it still has (live, they stopped with the device): `voices` 1 steals all
        but the newest, a note-off for each key it holds and the pedal up release that one, and
        the first note below, started while `voices` is 1, steals it. Then: the pedal as the
        performer left it, every stored preset (with its values), the notes in the order pressed
        (the last `voices` of them: an engine would steal the others; `voices` back after the
        first), each one the pedal holds let go at once so that the pedal keeps it.
        """
        with self._lock:
            events = []
            if voices is not None:
                events.append(Event("param", name="voices", value=1.0, source=CARRY_SOURCE))
            events += [Event("note_off", pitch=pitch, source=CARRY_SOURCE) for pitch in sorted(self._engine_keys)]
            if self._pedal is not None:
                events.append(Event("param", name="sustain", value=0.0, source=CARRY_SOURCE))
                if self._pedal:
                    events.append(Event("param", name="sustain", value=1.0, source=CARRY_SOURCE))
            events += [Event("preset", action="store", slot=slot, values=dict(values), source=CARRY_SOURCE)
                       for slot, values in sorted(self.presets.items())]
            notes = self._notes if voices is None else self._notes[len(self._notes) - max(int(voices), 0):]
            for i, (pitch, velocity, down) in enumerate(notes):
                events.append(Event("note_on", pitch=pitch, velocity=velocity, source=CARRY_SOURCE))
                if not down:
                    events.append(Event("note_off", pitch=pitch, source=CARRY_SOURCE))
                if i == 0 and voices is not None:
                    events.append(Event("param", name="voices", value=float(voices), source=CARRY_SOURCE))
            if not notes and voices is not None:
                events.append(Event("param", name="voices", value=float(voices), source=CARRY_SOURCE))
            return events


def _down(value) -> bool:
    try:
        return float(value) >= 0.5
    except (TypeError, ValueError):
        return False
