"""Voice allocation: note voices (oldest stolen with a short fade), sustain, and the drone.

Pure bookkeeping on fixed numpy arrays, one slot per voice; the engine reads the arrays of
active slots each hop and batches them into one decoder call.

The drone gives way to notes: while any note is held (key down or sustain pedal) the drone
fades out within `DRONE_DUCK_SECONDS`, and once the last one is let go it comes back under the
notes' release over `DRONE_RETURN_SECONDS`, at its own pitch and still held (no new attack). A
performer who only moves the pad hears the drone at once; one who plays a keyboard hears the
notes alone, without a pedal tone under every chord, and the drone returns when the hands leave
the keys.

A note may have a voice id (an MPE keyboard's member channel, an OSC client's touch): the id's
controls (`control`: bend, pad offsets x/y, pressure; `livegen.engine.events.VOICE_CONTROLS`) live
in a table of one row per id, held before and after its notes, and every hop `gather` gives each
slot of that id its bend at once and glides its offsets and pressure towards the id's values.

A released note follows its id while it rings, until a new note of that id starts: then it
detaches (`DETACHED`) and keeps what it played, as MPE asks of a release tail once its member
channel is reused (a keyboard sets the channel for the new note just before it).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from livegen.engine.events import VOICE_CONTROLS, VOICE_IDS

DRONE = 0
"""Slot 0 is the drone voice: the latent point sounding without notes."""

DRONE_DUCK_SECONDS = 0.03
DRONE_RETURN_SECONDS = 0.6
"""Time constants (one-pole, in the drone's gain) of the drone fading under notes and returning."""

STEAL_SECONDS = 0.02
"""A stolen voice fades out over this long instead of stopping (no click)."""

CUT_SECONDS = 0.005
"""A cut voice's gain falls to 0 over this long (`sound_off`): within the hop it is cut at, so
its frames stop at once, and the synthesis window's overlap fades what it already played out
without a click."""

CONTROL_SECONDS = 0.015
"""Time constant (one-pole) of a voice's x, y and pressure following its id's values: an MPE
stream's steps (a controller's 7-bit CC74, a few per hop) do not zipper; bend follows at once."""

NO_ID = -1
"""A slot's `vid` when its note has no voice id (a plain note, the drone)."""
DETACHED = -2
"""A slot's `vid` once a new note took its id while it rang: it plays its own controls, frozen."""

RELEASE_MAX_SECONDS = 4.0
SILENCE = 1e-3
"""A released voice is freed once its loudest bin falls under this (linear STFT magnitude;
a full-scale sine peaks near n_fft/4); after `RELEASE_MAX_SECONDS` it fades out as a stolen one does."""
RELEASE_FLOOR_DB = 60.0
"""A released voice also fades out (as a stolen one does) once its loudest bin is this far under
the loudest it reached, or under a note at the model's level (`VoiceBank`'s `level_peak`) for a
quieter note: a model's release can settle on a steady noise floor instead of on silence, which
then played on under everything until `RELEASE_MAX_SECONDS` (docs/sound.md)."""


class VoiceBank:
    """Slot arrays for `note_slots` note voices plus the drone and spare slots for fades."""

    def __init__(self, *, note_slots: int, noise_dim: int, spare: int = 4, level_peak: float = 0.0):
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
        self.loudest = np.zeros(n, dtype=np.float64)
        self.level_peak = float(level_peak)
        """The loudest bin each voice has reached since its note-on (`RELEASE_FLOOR_DB`)."""
        self.fade = np.ones(n, dtype=np.float64)
        self.duck = np.ones(1, dtype=np.float64)
        """The drone's gain under notes (1: no note sounds)."""
        self.order = np.zeros(n, dtype=np.int64)
        self.noise = np.zeros((n, noise_dim), dtype=np.float32)
        self.vid = np.full(n, NO_ID, dtype=np.int64)
        """Each slot's voice id (`NO_ID`: none)."""
        self.owner = np.full(n, NO_ID, dtype=np.int64)
        """The voice id each slot's note started with (kept when it detaches): what `sound_off` cuts."""
        self.cut = np.zeros(n, dtype=bool)
        """Slots fading out over `CUT_SECONDS` (`sound_off`) rather than a steal's `STEAL_SECONDS`."""
        self.controls = np.zeros((VOICE_IDS, len(VOICE_CONTROLS)))
        """Each voice id's controls as last set, in `VOICE_CONTROLS` order (bend, x, y, pressure)."""
        self.smoothed = np.zeros((n, len(VOICE_CONTROLS)))
        """Each slot's controls as it plays them (x, y and pressure glide; `gather` moves them)."""
        self.before = np.zeros((n, len(VOICE_CONTROLS)))
        """Each slot's `smoothed` before `gather`'s last move: what a detached tail keeps, so the
        new note's controls, sent just before it, do not stay on the tail if they came a hop early."""
        self._counter = 0
        self.steals = 0
        self.started: list[int] = []
        """Slots (re)started since the engine last looked: their inverter state is reset."""
        self._done = np.zeros(n, dtype=np.int64)
        self._rho, self._ar = None, None
        """The AR(1) noise's last rho and its coefficients as float32 (see `advance_noise`)."""
        self._no_peaks = np.zeros(0, dtype=np.float32)
        self._slots = np.zeros(n, dtype=np.int64)

    # ----------------------------------------------------------------- queries
    def sounding_notes(self) -> np.ndarray:
        """Note slots that count towards the `voices` limit (not the drone, not being stolen)."""
        mask = self.active & ~self.stolen
        mask[DRONE] = False
        return np.flatnonzero(mask)

    def active_slots(self) -> np.ndarray:
        """The active slots, in order: a view of a buffer the next call overwrites (the hop calls
        it, so it makes no array)."""
        return self._slots[:_active_into(self.active, self._slots)]

    def id_offsets(self) -> np.ndarray:
        """``[k, 2]``: the glided pad offsets (x, y) of the k sounding notes that have a voice id
        (see `sounding_notes`), in slot order. Allocates: not for the hop."""
        slots = self.sounding_notes()
        slots = slots[self.vid[slots] != NO_ID]
        return self.smoothed[slots][:, [_X, _Y]]

    # ----------------------------------------------------------------- notes
    def note_on(self, pitch: float, velocity: float, *, limit: int, hop_seconds: float, voice: int = NO_ID) -> int:
        """Start a note (of voice id `voice`, playing with that id's controls); a key-down note of
        the same pitch and id retriggers (rings out through its release). Released notes of the
        id detach from it (see the module's docstring)."""
        self._let_go(pitch, voice, sustain=False)
        if voice != NO_ID:
            _detach(voice, self.vid, self.active, self.key_down, self.smoothed, self.before)
        self.enforce_limit(limit - 1, hop_seconds=hop_seconds)
        slot = self._free_slot()
        self._start(slot, pitch, velocity, voice)
        return slot

    def note_off(self, pitch: float, *, sustain: bool, voice: int = NO_ID) -> None:
        """Let go of the key-down note of this pitch and voice id (the pedal may hold it)."""
        self._let_go(pitch, voice, sustain=sustain)

    def _let_go(self, pitch: float, voice: int, *, sustain: bool) -> None:
        _let_go(float(pitch), int(voice), bool(sustain), self.active, self.stolen, self.key_down, self.sustained,
                self.t_off, self.pitch, self.vid)

    def sound_off(self, voice: int = NO_ID, *, hop_seconds: float, every: bool = False) -> None:
        """Cut every note that started with voice id `voice` (`NO_ID`: every note without one), or
        with `every` every note whatever its id and the drone's release tail (a drone still held
        plays on: `drone` says whether it sounds); held, pedal-held or releasing, each fades out
        over `CUT_SECONDS`, from this hop on."""
        for slot in range(self.size):
            if slot == DRONE:
                cut = every and self.t_off[slot] >= 0
            else:
                cut = every or self.owner[slot] == voice
            if cut and self.active[slot]:
                self._cut(slot, hop_seconds)

    def _cut(self, slot: int, hop_seconds: float) -> None:
        self.key_down[slot] = False
        self.sustained[slot] = False
        self.stolen[slot] = True
        self.cut[slot] = True
        self.fade[slot] = max(self.fade[slot] - hop_seconds / CUT_SECONDS, 0.0)

    def control(self, voice: int, name: str, value: float) -> None:
        """Set voice id `voice`'s control `name` (one of `VOICE_CONTROLS`, clipped to its range)."""
        low, high = VOICE_CONTROLS[name]
        self.controls[voice, _CONTROL_INDEX[name]] = min(max(float(value), low), high)

    def pedal_up(self) -> None:
        _pedal_up(self.sustained, self.key_down, self.t_off)

    def enforce_limit(self, limit: int, *, hop_seconds: float) -> None:
        """Steal the oldest voices (released ones first) until at most `limit` remain."""
        self.steals += _steal(int(limit), self.active, self.stolen, self.t_off, self.order)

    # ----------------------------------------------------------------- drone
    def drone_on(self, pitch: float, velocity: float) -> None:
        if self.active[DRONE] and self.t_off[DRONE] < 0:
            return
        if not _any_note_held(self.key_down, self.sustained, self.stolen):
            self.duck[0] = 1.0  # heard at once, even where a drone let go under notes left it ducked
        self._start(DRONE, pitch, velocity)

    def drone_off(self) -> None:
        if self.active[DRONE] and self.t_off[DRONE] < 0:
            if self.t_on[DRONE] == 0.0:  # not heard yet (off before the first hop): nothing to release
                self._free(DRONE)
            else:
                self._release(DRONE)

    # ----------------------------------------------------------------- time
    def advance(self, *, hop_seconds: float, peaks: np.ndarray | None, slots: np.ndarray) -> None:
        """After a hop: move note clocks, fade stolen voices, free finished ones.

        `peaks` holds the loudest bin of each slot in `slots` this hop (None: not known).
        """
        done = self._done
        count = _advance(slots, self._no_peaks if peaks is None else peaks, peaks is not None, float(hop_seconds),
                         self.t_on, self.t_off, self.stolen, self.cut, self.fade, done, self.key_down, self.sustained,
                         self.duck, self.loudest, self.level_peak, 10.0 ** (-RELEASE_FLOOR_DB / 20.0))
        for i in range(count):
            self._free(int(done[i]))

    def gather(self, slots: np.ndarray, *, bend: float, pitch, velocity, t_on, t_off, gains, hop_seconds: float,
               offsets) -> bool:
        """Copy the decoder inputs of `slots` into the given arrays: pitch with `bend` and the
        voice's own bend added, velocity moved towards full by its pressure (``v + p (1 - v)``),
        and its pad offsets (x, y) into `offsets` ``[len(slots), 2]``, after one hop of gliding
        towards its id's values. True when some slot has an offset (its latent point moves)."""
        return _gather(slots, float(bend), self.pitch, self.velocity, self.t_on, self.t_off, self.fade, self.duck[0],
                       self.vid, self.controls, self.smoothed, self.before,
                       1.0 - math.exp(-hop_seconds / CONTROL_SECONDS),
                       pitch, velocity, t_on, t_off, gains, offsets)

    def advance_noise(self, slots: np.ndarray, fresh: np.ndarray, rho: float, out: np.ndarray) -> None:
        """AR(1) noise step of `slots` (the model's `advance_noise`), in place; `out` gets a copy."""
        if rho != self._rho:  # numpy makes a scalar through a temporary array: once, not every hop
            self._rho, self._ar = rho, (np.float32(rho), np.float32(math.sqrt(max(0.0, 1.0 - rho * rho))))
        ar_noise_step(slots, fresh, self._ar[0], self._ar[1], self.noise, out)

    def fade_gains(self, slots: np.ndarray) -> np.ndarray:
        """Per-slot gain of the steal fade (and the drone's ducking), for the coming hop."""
        gains = self.fade[slots]
        gains[slots == DRONE] *= self.duck[0]
        return gains

    # ----------------------------------------------------------------- internals
    def _free_slot(self) -> int:
        slot = _free_slot(self.active, self.stolen, self.fade, self.order)
        if self.active[slot]:  # every slot was busy (many steals in a row): the most faded stolen voice
            self._free(slot)
        return slot

    def _start(self, slot: int, pitch: float, velocity: float, voice: int = NO_ID) -> None:
        self._counter += 1
        self.vid[slot] = voice
        self.owner[slot] = voice
        # An MPE keyboard sets a channel's controls just before its note: it starts there.
        _start_controls(slot, voice, self.controls, self.smoothed, self.before)
        self.active[slot] = True
        self.pitch[slot] = pitch
        self.velocity[slot] = velocity
        self.t_on[slot] = 0.0
        self.t_off[slot] = -1.0
        self.key_down[slot] = slot != DRONE
        self.sustained[slot] = False
        self.stolen[slot] = False
        self.cut[slot] = False
        self.fade[slot] = 1.0
        self.loudest[slot] = 0.0
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
        self.cut[slot] = False
        self.fade[slot] = 1.0
        self.t_off[slot] = -1.0
        self.vid[slot] = NO_ID
        self.owner[slot] = NO_ID


_CONTROL_INDEX = {name: i for i, name in enumerate(VOICE_CONTROLS)}
_BEND, _X, _Y, _PRESSURE = (_CONTROL_INDEX[name] for name in ("bend", "x", "y", "pressure"))


@numba.njit(cache=True, nogil=True)
def _active_into(active, out):
    """Write the indices of `active`'s true entries into `out`; returns how many."""
    n = 0
    for i in range(len(active)):
        if active[i]:
            out[n] = i
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _any_note_held(key_down, sustained, stolen):
    """Whether a note (not the drone, not being stolen) is held by its key or the pedal."""
    for s in range(1, len(key_down)):
        if (key_down[s] or sustained[s]) and not stolen[s]:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _advance(slots, peaks, use_peaks, hop_seconds, t_on, t_off, stolen, cut, fade, done, key_down, sustained, duck,
             loudest, level_peak, floor_ratio):
    """VoiceBank.advance's arithmetic; writes the slots to free into `done`, returns their count.
    Moves the drone's `duck[0]` towards 0 while any note is held, else, while the drone is held,
    towards 1; the drone's release ends when what is heard of it (ducked) is silence. Starts the
    fade of released voices past `RELEASE_MAX_SECONDS` or under `floor_ratio` x their loudest bin
    (at least `level_peak`)."""
    step = hop_seconds / STEAL_SECONDS
    cut_step = hop_seconds / CUT_SECONDS
    notes = _any_note_held(key_down, sustained, stolen)
    if notes:
        duck[0] *= math.exp(-hop_seconds / DRONE_DUCK_SECONDS)
    elif t_off[DRONE] < 0:  # a drone let go under the notes stays where they left it: it does not return
        duck[0] = 1.0 - (1.0 - duck[0]) * math.exp(-hop_seconds / DRONE_RETURN_SECONDS)
    count = 0
    for j in range(len(slots)):
        s = slots[j]
        t_on[s] += hop_seconds
        if t_off[s] >= 0:
            t_off[s] += hop_seconds
        finished = False
        if stolen[s]:
            fade[s] = max(fade[s] - (cut_step if cut[s] else step), 0.0)
            finished = fade[s] <= 0.0
        if use_peaks:
            heard = peaks[j] * duck[0] if s == DRONE else peaks[j]
            loudest[s] = max(loudest[s], peaks[j])
            if t_off[s] > 2 * hop_seconds and heard < SILENCE:
                finished = True
            elif t_off[s] > RELEASE_MAX_SECONDS or (t_off[s] > 2 * hop_seconds
                                                    and heard < floor_ratio * max(loudest[s], level_peak)):
                stolen[s] = True  # its fade starts with the next hop
        if finished:
            done[count] = s
            count += 1
    return count


@numba.njit(cache=True, nogil=True)
def _gather(slots, bend, pitch, velocity, t_on, t_off, fade, duck, vid, controls, smoothed, before, rate, out_pitch,
            out_velocity, out_t_on, out_t_off, out_gains, out_offsets):
    moved = False
    for j in range(len(slots)):
        s = slots[j]
        p = pitch[s] + bend
        v = velocity[s]
        out_offsets[j, 0] = 0.0
        out_offsets[j, 1] = 0.0
        voice = vid[s]
        if voice >= 0:
            for k in range(smoothed.shape[1]):
                before[s, k] = smoothed[s, k]
            smoothed[s, _BEND] = controls[voice, _BEND]
            for k in (_X, _Y, _PRESSURE):
                target = controls[voice, k]
                c = smoothed[s, k] + (target - smoothed[s, k]) * rate
                if abs(target - c) < 1e-6:  # arrive: a voice back at 0 leaves the shared-point decode
                    c = target
                smoothed[s, k] = c
        if voice != NO_ID:  # an id's voice, or a detached one playing its frozen controls
            p += smoothed[s, _BEND]
            v += smoothed[s, _PRESSURE] * (1.0 - v)
            out_offsets[j, 0] = smoothed[s, _X]
            out_offsets[j, 1] = smoothed[s, _Y]
            if smoothed[s, _X] != 0.0 or smoothed[s, _Y] != 0.0:
                moved = True
        out_pitch[j] = p
        out_velocity[j] = v
        out_t_on[j] = t_on[s]
        out_t_off[j] = t_off[s]
        out_gains[j] = fade[s] * duck if s == DRONE else fade[s]
    return moved


# Event bookkeeping below runs on the audio path (the callback applies events at lead 0): loops
# over the slot arrays, no temporary arrays (`livegen bench alloc`).
@numba.njit(cache=True, nogil=True)
def _let_go(pitch, voice, sustain, active, stolen, key_down, sustained, t_off, pitches, vid):
    """The key-down sounding notes of `pitch` and id `voice` let go: released, or held by the
    pedal (`sustain`)."""
    for s in range(1, len(active)):
        if active[s] and not stolen[s] and key_down[s] and pitches[s] == pitch and vid[s] == voice:
            key_down[s] = False
            if sustain:
                sustained[s] = True
            elif t_off[s] < 0:
                t_off[s] = 0.0


@numba.njit(cache=True, nogil=True)
def _pedal_up(sustained, key_down, t_off):
    """The notes the pedal held are released."""
    for s in range(len(sustained)):
        if sustained[s]:
            sustained[s] = False
            key_down[s] = False
            if t_off[s] < 0:
                t_off[s] = 0.0


@numba.njit(cache=True, nogil=True)
def _steal(limit, active, stolen, t_off, order):
    """Mark the oldest sounding notes stolen (released ones first) until at most `limit` sound;
    returns how many."""
    sounding = 0
    for s in range(1, len(active)):
        if active[s] and not stolen[s]:
            sounding += 1
    excess = sounding - max(limit, 0)
    for k in range(max(excess, 0)):
        best = -1
        for s in range(1, len(active)):
            if active[s] and not stolen[s]:
                if best < 0:
                    best = s
                else:
                    held, best_held = int(t_off[s] < 0), int(t_off[best] < 0)
                    if held < best_held or (held == best_held and order[s] < order[best]):
                        best = s
        stolen[best] = True
    return max(excess, 0)


@numba.njit(cache=True, nogil=True)
def _free_slot(active, stolen, fade, order):
    """The first free note slot; when none is free, the most faded stolen one (any note slot when
    none is stolen), which the caller frees."""
    for s in range(1, len(active)):
        if not active[s]:
            return s
    any_stolen = False
    for s in range(len(stolen)):
        if stolen[s]:
            any_stolen = True
            break
    best, best_key = -1, np.inf
    for s in range(0 if any_stolen else 1, len(active)):
        if any_stolen and not stolen[s]:
            continue
        key = fade[s] * 1e9 + order[s]
        if key < best_key:
            best, best_key = s, key
    return best


@numba.njit(cache=True, nogil=True)
def _start_controls(slot, voice, controls, smoothed, before):
    """A starting slot plays id `voice`'s controls as they stand (none: zeros)."""
    for k in range(smoothed.shape[1]):
        value = controls[voice, k] if voice != NO_ID else 0.0
        smoothed[slot, k] = value
        before[slot, k] = value


@numba.njit(cache=True, nogil=True)
def _detach(voice, vid, active, key_down, smoothed, before):
    """Released slots of id `voice` leave it, keeping the controls they played a hop before."""
    for s in range(len(vid)):
        if vid[s] == voice and active[s] and not key_down[s]:
            vid[s] = DETACHED
            for k in range(smoothed.shape[1]):
                smoothed[s, k] = before[s, k]


@numba.njit(cache=True, nogil=True)
def ar_noise_step(slots, fresh, a, b, noise, out):
    """noise[slots[j]] = a noise[slots[j]] + b fresh[j], copied into out[j]: the AR(1) step of the
    model's `advance_noise`, in place (the notes' voices and the input's voice alike)."""
    for j in range(len(slots)):
        s = slots[j]
        for i in range(noise.shape[1]):
            v = a * noise[s, i] + b * fresh[j, i]
            noise[s, i] = v
            out[j, i] = v
