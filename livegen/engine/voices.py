"""Voice allocation: note voices (oldest stolen with a short fade), sustain, and the drone.

Pure bookkeeping on fixed numpy arrays, one slot per voice; the engine reads the arrays of
active slots each hop and batches them into one decoder call.
"""

from __future__ import annotations

import numpy as np

DRONE = 0
"""Slot 0 is the drone voice: the latent point sounding without notes."""

STEAL_SECONDS = 0.02
"""A stolen voice fades out over this long instead of stopping (no click)."""

RELEASE_MAX_SECONDS = 4.0
SILENCE = 1e-3
"""A released voice is freed once its loudest bin falls under this (linear STFT magnitude;
a full-scale sine peaks near n_fft/4) or after `RELEASE_MAX_SECONDS`."""


class VoiceBank:
    """Slot arrays for `note_slots` note voices plus the drone and spare slots for fades."""

    def __init__(self, *, note_slots: int, noise_dim: int, spare: int = 4):
        self.size = 1 + note_slots + spare
        n = self.size
        self.active = np.zeros(n, dtype=bool)
        self.pitch = np.zeros(n, dtype=np.float64)
        self.velocity = np.zeros(n, dtype=np.float64)
        self.t_on = np.zeros(n, dtype=np.float64)
        self.t_off = np.full(n, -1.0)
        self.key_down = np.zeros(n, dtype=bool)
        self.sustained = np.zeros(n, dtype=bool)
        self.stolen = np.zeros(n, dtype=bool)
        self.fade = np.ones(n, dtype=np.float64)
        self.order = np.zeros(n, dtype=np.int64)
        self.noise = np.zeros((n, noise_dim), dtype=np.float32)
        self._counter = 0
        self.steals = 0
        self.started: list[int] = []
        """Slots (re)started since the engine last looked: their inverter state is reset."""

    # ----------------------------------------------------------------- queries
    def sounding_notes(self) -> np.ndarray:
        """Note slots that count towards the `voices` limit (not the drone, not being stolen)."""
        mask = self.active & ~self.stolen
        mask[DRONE] = False
        return np.flatnonzero(mask)

    def active_slots(self) -> np.ndarray:
        return np.flatnonzero(self.active)

    # ----------------------------------------------------------------- notes
    def note_on(self, pitch: float, velocity: float, *, limit: int, hop_seconds: float) -> int:
        for slot in self.sounding_notes():
            if self.key_down[slot] and self.pitch[slot] == pitch:
                self._release(slot)  # retrigger: the old note rings out through its release
        self.enforce_limit(limit - 1, hop_seconds=hop_seconds)
        slot = self._free_slot()
        self._start(slot, pitch, velocity)
        return slot

    def note_off(self, pitch: float, *, sustain: bool) -> None:
        for slot in self.sounding_notes():
            if self.key_down[slot] and self.pitch[slot] == pitch:
                self.key_down[slot] = False
                if sustain:
                    self.sustained[slot] = True
                else:
                    self._release(slot)

    def pedal_up(self) -> None:
        for slot in np.flatnonzero(self.sustained):
            self.sustained[slot] = False
            self._release(slot)

    def enforce_limit(self, limit: int, *, hop_seconds: float) -> None:
        """Steal the oldest voices (released ones first) until at most `limit` remain."""
        notes = self.sounding_notes()
        excess = len(notes) - max(limit, 0)
        if excess <= 0:
            return
        released = self.t_off[notes] >= 0
        ranked = notes[np.lexsort((self.order[notes], ~released))]
        for slot in ranked[:excess]:
            self.stolen[slot] = True
            self.steals += 1

    # ----------------------------------------------------------------- drone
    def drone_on(self, pitch: float, velocity: float) -> None:
        if self.active[DRONE] and self.t_off[DRONE] < 0:
            return
        self._start(DRONE, pitch, velocity)

    def drone_off(self) -> None:
        if self.active[DRONE] and self.t_off[DRONE] < 0:
            self._release(DRONE)

    # ----------------------------------------------------------------- time
    def advance(self, *, hop_seconds: float, peaks: np.ndarray | None, slots: np.ndarray) -> None:
        """After a hop: move note clocks, fade stolen voices, free finished ones.

        `peaks` holds the loudest bin of each slot in `slots` this hop (None: not known).
        """
        self.t_on[slots] += hop_seconds
        releasing = slots[self.t_off[slots] >= 0]
        self.t_off[releasing] += hop_seconds
        step = hop_seconds / STEAL_SECONDS
        stolen = slots[self.stolen[slots]]
        self.fade[stolen] = np.maximum(self.fade[stolen] - step, 0.0)
        done = stolen[self.fade[stolen] <= 0.0]
        if peaks is not None:
            quiet = peaks < SILENCE
            over = (self.t_off[slots] > RELEASE_MAX_SECONDS) | ((self.t_off[slots] > 2 * hop_seconds) & quiet)
            done = np.union1d(done, slots[over])
        for slot in done:
            self._free(int(slot))

    def fade_gains(self, slots: np.ndarray) -> np.ndarray:
        """Per-slot gain of the steal fade, evaluated at the middle of the coming hop."""
        return self.fade[slots]

    # ----------------------------------------------------------------- internals
    def _free_slot(self) -> int:
        free = np.flatnonzero(~self.active[1:]) + 1
        if len(free):
            return int(free[0])
        # Every slot is busy (many steals in a row): drop the most faded stolen voice.
        candidates = np.flatnonzero(self.stolen)
        if not len(candidates):
            candidates = np.arange(1, self.size)
        slot = int(candidates[np.argmin(self.fade[candidates] * 1e9 + self.order[candidates])])
        self._free(slot)
        return slot

    def _start(self, slot: int, pitch: float, velocity: float) -> None:
        self._counter += 1
        self.active[slot] = True
        self.pitch[slot] = pitch
        self.velocity[slot] = velocity
        self.t_on[slot] = 0.0
        self.t_off[slot] = -1.0
        self.key_down[slot] = slot != DRONE
        self.sustained[slot] = False
        self.stolen[slot] = False
        self.fade[slot] = 1.0
        self.order[slot] = self._counter
        self.started.append(slot)

    def _release(self, slot: int) -> None:
        if self.t_off[slot] < 0:
            self.t_off[slot] = 0.0
        self.key_down[slot] = False

    def _free(self, slot: int) -> None:
        self.active[slot] = False
        self.key_down[slot] = False
        self.sustained[slot] = False
        self.stolen[slot] = False
        self.fade[slot] = 1.0
        self.t_off[slot] = -1.0
