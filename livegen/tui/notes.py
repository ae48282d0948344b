"""Computer-keyboard notes in the common DAW layout: the home row plays white keys, the row
above it the black keys (A=C, W=C#, S=D, ... K=C an octave up, O, L, P, ;).

Terminals send no key-release events, so a key plays a note for a short gate that key
repeat keeps extending while the key is held; latch mode makes each key toggle its note.
"""

from __future__ import annotations

NOTE_KEYS = "awsedftgyhujkolp;"
"""Key for each semitone above the keyboard's C, in order (C, C#, D, ... up to the next E)."""
OCTAVE_KEYS = {"z": -1, "x": 1}
VELOCITY_KEYS = {"c": -8, "v": 8}
GATE_SECONDS = 0.6


def key_semitone(char: str) -> int | None:
    """Semitones above the keyboard's C for a key, or None when the key plays no note."""
    if len(char) != 1:
        return None
    index = NOTE_KEYS.find(char)
    return index if index >= 0 else None


class NoteKeys:
    """Which notes the keyboard holds and when each one's gate closes (times are the caller's)."""

    def __init__(self, octave: int = 4, velocity: int = 100):
        self.octave = octave
        self.velocity = velocity
        self.latch = False
        self.held: dict[int, float] = {}

    def pitch(self, semitone: int) -> int | None:
        pitch = 12 * (self.octave + 1) + semitone
        return pitch if 0 <= pitch <= 127 else None

    def press(self, semitone: int, now: float) -> list[tuple[int, int]]:
        """Note messages (pitch, velocity) to send for one key event."""
        pitch = self.pitch(semitone)
        if pitch is None:
            return []
        if self.latch:
            if pitch in self.held:
                del self.held[pitch]
                return [(pitch, 0)]
            self.held[pitch] = float("inf")
            return [(pitch, self.velocity)]
        fresh = pitch not in self.held
        self.held[pitch] = now + GATE_SECONDS
        return [(pitch, self.velocity)] if fresh else []

    def expire(self, now: float) -> list[tuple[int, int]]:
        done = [p for p, until in self.held.items() if until <= now]
        for pitch in done:
            del self.held[pitch]
        return [(p, 0) for p in done]

    def all_off(self) -> list[tuple[int, int]]:
        done = [(p, 0) for p in self.held]
        self.held.clear()
        return done

    def shift_octave(self, delta: int) -> None:
        self.octave = min(max(self.octave + delta, -1), 9)

    def shift_velocity(self, delta: int) -> None:
        self.velocity = min(max(self.velocity + delta, 1), 127)

    def describe(self) -> str:
        mode = " latch" if self.latch else ""
        return f"oct {self.octave} v{self.velocity}{mode}"
