"""An audio input plays a voice of the model: its f0, voicing and loudness drive one decoded voice.

`InputSource` reads one model hop from an `InputFeed` each hop (a file offline, `FileFeed`; a
live stream's ring in `livegen play`), tracks it (`livegen.dsp.tracker.PitchTracker`: YIN per
hop) and decodes one voice of the spectral model with numpy (`livegen.model.fast`):

- pitch: the input's f0 (free, or quantised to semitones), plus `input_transpose`; off, it
  plays `input_note`;
- loudness: each frame is brought to the model's reference level (`level_dbfs`) and moved by
  the input's level against `LOUDNESS_REF_DB` (off: the reference level); a silence under
  `input_gate_db` gates the voice, so gaps fall silent;
- voicing: a periodic input plays the whole frame; an aperiodic one (breath, consonants) the
  model's noise part alone, at the same level (`input_breath` moves it);
- timbre: 0 plays the pad's latent point, 1 the input's own, encoded every `ENCODE_EVERY` hops
  from its log-magnitude frames (`NumpyFrameEncoder`: the model's encoder without torch);
  `input_xy` in the status is that point on the pad.

The samples a hop consumed go to each consumer (`add_consumer`): what a take records, so a
render fed the same samples gives the same output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple, Protocol

import numba
import numpy as np

from livegen.data.files import check_input_file
from livegen.dsp.kernels import rfft_into
from livegen.dsp.stft import add_bin_energy, frame_mean_square
from livegen.dsp.tracker import FLOOR_DB, HOP_DB, LEVEL_DB, PERIODICITY, SHORT_DB, F0, PitchTracker, push_levels
from livegen.engine.events import Event
from livegen.engine.params import ParamSpec
from livegen.engine.source import PITCH_JUMP_SEMITONES, Hop, Source, SourceContext
from livegen.engine.voices import ar_noise_step
from livegen.errors import ParameterError
from livegen.filehash import file_sha256
from livegen.model.fast import NumpyFrameDecoder, NumpyFrameEncoder
from livegen.model.spectral import LEVEL_REF_VELOCITY, PLAYING_DEFAULTS, SpectralModel

LOUDNESS_REF_DB = -20.0
"""Input RMS (dBFS, after `input_gain`) that plays at the model's reference level (a velocity-100
note's level): louder input plays no louder, quieter input down to 40 dB quieter."""
LOUDNESS_RANGE_DB = (-40.0, 0.0)
VOICED_ON = 0.7
VOICED_OFF = 0.5
FOLLOW = 0.8
"""Periodicity (1 - YIN's normalised difference) above which the input turns voiced, under which
it turns unvoiced (between: as it was), and above which its pitch is followed (below, the last
pitch holds: a doubtful reading is often a formant's, octaves up)."""
GATE_HYSTERESIS_DB = 6.0
PITCH_EVERY = 3
"""The pitch is analysed every `PITCH_EVERY` hops (every hop from an onset until it is voiced)."""
ATTACK_SECONDS = 0.004
RELEASE_SECONDS = 0.01
VOICING_SECONDS = 0.01
ENCODE_EVERY = 24
ENCODE_FRAMES = 8
"""The input's timbre is encoded from its last `ENCODE_FRAMES` voiced frames, one every
`ENCODE_EVERY` hops (about a second at the default model's rate)."""
TIMBRE_SECONDS = 0.15
CLIP_LEVEL = 0.999
SILENT = 1e-4
"""The voice's gain under which it is not decoded (after a gap's release)."""


class InputFeed(Protocol):
    """Where the input's samples come from: mono float32 at the model's rate."""

    samplerate: int

    def read_hop(self, out: np.ndarray) -> int:
        """Fill `out` with the next samples; return how many were real input (the rest are zeros:
        an underrun). Real-time safe: no allocation, no lock, no log."""

    def header(self) -> dict:
        """Session-log fields a render needs to feed the same input again."""


class FileFeed:
    """A whole file (or array) as an input, resampled once to the model's rate with soxr.

    Parameters
    ----------
    samples_or_path : a sound file (any rate and channel count: channels are averaged), or a
        1-D array at `samplerate`.
    model_rate : the model's sample rate (what `read_hop` hands out).
    sha256 : the file's expected sha256 (a session log's): a file that differs is an error.
    offset : model-rate samples of silence before the first sample.
    """

    def __init__(self, samples_or_path, *, samplerate: int | None = None, model_rate: int,
                 sha256: str | None = None, offset: int = 0):
        import soundfile
        import soxr

        self.path = None
        self.sha256 = None
        if isinstance(samples_or_path, (str, Path)):
            path = Path(samples_or_path)
            check_input_file(path, "input file")
            self.sha256 = file_sha256(path)
            if sha256 and sha256 != self.sha256:
                raise ParameterError(f"input file {path} has changed since it was recorded (sha256 {self.sha256[:12]}, "
                                     f"the log says {sha256[:12]}): give the original file")
            try:
                data, samplerate = soundfile.read(str(path), dtype="float32", always_2d=True)
            except (RuntimeError, soundfile.LibsndfileError) as exc:
                raise ParameterError(f"input file {path} cannot be read as audio ({exc}): give a WAV, FLAC or "
                                     "OGG file") from None
            if not len(data):
                raise ParameterError(f"input file {path} holds no samples: give a file with audio in it")
            data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            self.path = path
        else:
            if samplerate is None:
                raise ParameterError("FileFeed of an array needs its samplerate")
            data = np.asarray(samples_or_path, dtype=np.float32)
            if data.ndim != 1:
                raise ParameterError(f"input samples of shape {data.shape}: give one channel (1-D)")
        self.source_samplerate = int(samplerate)
        self.samplerate = int(model_rate)
        if self.source_samplerate != self.samplerate:
            data = soxr.resample(data, self.source_samplerate, self.samplerate, quality="HQ")
        self.offset = int(offset)
        self.samples = np.ascontiguousarray(np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0), np.float32)
        self.position = -self.offset

    @property
    def seconds(self) -> float:
        return (len(self.samples) + self.offset) / self.samplerate

    def read_hop(self, out: np.ndarray) -> int:
        n = len(out)
        start = self.position
        self.position += n
        if 0 <= start and start + n <= len(self.samples):  # the usual hop: no zeros to fill
            out[:] = self.samples[start:start + n]
            return n
        lo, hi = max(start, 0), min(start + n, len(self.samples))
        out.fill(0.0)
        if hi <= lo:
            return 0
        out[lo - start:hi - start] = self.samples[lo:hi]
        return hi - lo

    def header(self) -> dict:
        """Fields a render needs to feed the same samples again."""
        fields = {"samplerate": self.source_samplerate, "model_samplerate": self.samplerate,
                  "frames": int(len(self.samples))}
        if self.path is not None:
            fields.update(file=str(self.path.resolve()), sha256=self.sha256)
        if self.offset:
            fields["offset"] = self.offset
        return fields


def feed_from_header(fields: dict, *, model_rate: int, log_path=None) -> FileFeed:
    """The `FileFeed` a session log's header `input` fields name (a relative file is looked for
    beside the log first). Raises a `ParameterError` naming the file when it is missing or changed."""
    name = fields.get("file")
    if not name:
        raise ParameterError("the log's header names an input without a file: this take cannot be re-rendered")
    path = Path(name)
    if not path.is_absolute() and log_path is not None and (Path(log_path).parent / path).is_file():
        path = Path(log_path).parent / path
    if not path.is_file():
        raise ParameterError(f"input file {name} named by the log was not found: put it beside the log "
                             "(or give --input FILE)")
    return FileFeed(path, model_rate=model_rate, sha256=fields.get("sha256"), offset=int(fields.get("offset", 0)))


_GAIN_RANGE = (-24.0, 36.0)


def input_param_specs() -> list[ParamSpec]:
    return [
        ParamSpec("input_gain", *_GAIN_RANGE, 0.0, "dB", 0.02, description="gain of the audio input before analysis"),
        ParamSpec("input_level", 0.0, 1.0, 1.0, "", 0.02, description="level of the input's voice (0 mutes it)"),
        ParamSpec("input_pitch", 0, 1, 1, "", 0.0, integer=True,
                  description="the voice follows the input's pitch (1) or plays input_note (0)"),
        ParamSpec("input_quantise", 0, 1, 0, "", 0.0, integer=True,
                  description="the followed pitch snaps to semitones (1) or is free (0)"),
        ParamSpec("input_transpose", -24.0, 24.0, 0.0, "st", 0.0, description="transposition of the followed pitch"),
        ParamSpec("input_note", 21.0, 108.0, 60.0, "MIDI", 0.0, description="pitch played when input_pitch is 0"),
        ParamSpec("input_glide", 0.0, 1.0, 0.0, "s", 0.0, description="time constant of the followed pitch"),
        ParamSpec("input_loudness", 0, 1, 1, "", 0.0, integer=True,
                  description="the voice's level follows the input's loudness (1) or stays at the model's level (0)"),
        ParamSpec("input_dynamics", 0.0, 1.0, 1.0, "", 0.0,
                  description="how far the input's loudness also moves the model's dynamics (softer input, the "
                              "model's softer timbre); 0: the level alone follows"),
        ParamSpec("input_timbre", 0.0, 1.0, 0.0, "", 0.05,
                  description="latent point: 0 the pad's, 1 the input's own timbre encoded by the model"),
        ParamSpec("input_gate_db", -90.0, 0.0, -50.0, "dBFS", 0.0, description="input below this is silence (gated)"),
        ParamSpec("input_breath", -24.0, 24.0, 0.0, "dB", 0.02,
                  description="level of the noise the unvoiced input (breath, consonants) plays"),
    ]


SOUND_CHECK_PERCENTILE = 95.0
SOUND_CHECK_SPREAD_DB = 40.0
SOUND_CHECK_QUIET_DB = -80.0
SOUND_CHECK_MIN_SECONDS = 0.25
SOUND_CHECK_SOURCE = "soundcheck"
"""A sound check reads the level of the hops within `SOUND_CHECK_SPREAD_DB` of the loudest (what
was played, not the silence or the noise floor between), needs `SOUND_CHECK_MIN_SECONDS` of
them over `SOUND_CHECK_QUIET_DB`, and takes their `SOUND_CHECK_PERCENTILE`th percentile as the
loud playing. The `input_gain` it sets comes from `SOUND_CHECK_SOURCE` (not the asker's), so
every subscriber, the asker too, hears it."""


class SoundCheck(NamedTuple):
    gain_db: float
    """The `input_gain` that brings the loud playing to `LOUDNESS_REF_DB` (0.5 dB steps, in range)."""
    loud_db: float
    """The loud playing's level with no gain (RMS dBFS over the tracker's window)."""
    playing_seconds: float
    clamped: bool
    """The gain wanted lay outside `input_gain`'s range: the input is too quiet or too loud."""

    def describe(self) -> str:
        text = (f"input_gain {self.gain_db:+.1f} dB: the loud playing ({self.loud_db:.1f} dBFS over "
                f"{self.playing_seconds:.1f} s of playing) now sits at {LOUDNESS_REF_DB:g} dBFS, where the model "
                "plays a velocity-100 note")
        if self.clamped:
            text += (f" (clamped to the gain's range: the input is too {'quiet' if self.gain_db > 0 else 'loud'}; "
                     f"{'raise' if self.gain_db > 0 else 'lower'} the interface's gain)")
        return text


def sound_check(samples: np.ndarray, *, samplerate: int, hop: int, window: int = 0) -> SoundCheck:
    """The `input_gain` that makes the input's own loud playing play the model at full velocity.

    A performer's input level depends on the microphone and the interface's gain; the voice's
    loudness and dynamics read it against a fixed reference (`LOUDNESS_REF_DB`). Played the same
    way in a live sound check (`/livegen/input/soundcheck`) and offline (`livegen render
    --soundcheck`), over the raw samples at the model's rate, levelled by the same tracker the
    input's voice uses (`window`: the model's n_fft, as `InputSource` keeps it). Raises
    `ParameterError` when too little was played to judge.
    """
    x = np.nan_to_num(np.asarray(samples, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    count = len(x) // hop
    tracker = PitchTracker(samplerate=samplerate, window=window)
    levels = np.empty(count)
    for i in range(count):
        tracker.push(x[i * hop:(i + 1) * hop], pitch=False)
        levels[i] = tracker.level_db
    heard = count * hop / samplerate
    loudest = float(levels.max()) if count else FLOOR_DB
    if loudest < SOUND_CHECK_QUIET_DB:
        raise ParameterError(f"the input stayed under {SOUND_CHECK_QUIET_DB:g} dBFS for {heard:.1f} s "
                             "(nothing played, or nothing connected): check the input's connection and play")
    playing = levels[levels >= max(loudest - SOUND_CHECK_SPREAD_DB, SOUND_CHECK_QUIET_DB)]
    playing_seconds = len(playing) * hop / samplerate
    if playing_seconds < SOUND_CHECK_MIN_SECONDS:
        raise ParameterError(f"only {playing_seconds:.2f} s of {heard:.1f} s was played: play "
                             f"for at least {SOUND_CHECK_MIN_SECONDS:g} s, as loud as you will on stage")
    loud_db = float(np.percentile(playing, SOUND_CHECK_PERCENTILE))
    low, high = _GAIN_RANGE
    wanted = round(2.0 * (LOUDNESS_REF_DB - loud_db)) / 2.0
    gain = min(max(wanted, low), high)
    return SoundCheck(float(gain), round(loud_db, 2), round(playing_seconds, 3), gain != wanted)


class InputSource(Source):
    """One voice of a spectral model that an audio input plays (see the module's note).

    Parameters
    ----------
    model : a `SpectralModel` (decoded with numpy on the CPU whatever `device`).
    feed : the `InputFeed` read once per hop.
    seed : seeds the voice's noise (child 2 of ``SeedSequence(seed)``: the notes and the drift
        take children 0 and 1).
    """

    events = ()

    def __init__(self, model, *, feed: InputFeed, seed: int = 0, device: str = "cpu"):
        if not isinstance(model, SpectralModel):
            raise ParameterError(f"an audio input plays a spectral model; {type(model).__name__} is not one")
        cfg = model.config
        if int(feed.samplerate) != int(cfg.sample_rate):
            raise ParameterError(f"input feed at {feed.samplerate} Hz: it must hand out the model's rate "
                                 f"({cfg.sample_rate} Hz)")
        self.model = model
        self.feed = feed
        self.config = cfg
        self.device = device
        self.hop = int(cfg.hop)
        self.n_fft = int(cfg.n_fft)
        self.n_bins = int(cfg.n_bins)
        self.noise_dim = int(cfg.noise_dim)
        self.tracker = PitchTracker(samplerate=cfg.sample_rate, window=self.n_fft)
        self._decode = NumpyFrameDecoder(model, max_voices=1, level=False)  # `_mix_voice` sets the level
        self._noise_part = self._decode.noise_part(1)[0]
        self._encoder = NumpyFrameEncoder(model)
        self._plane = model.xy_plane()
        self._rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(3)[2])
        self._noise = np.zeros((1, max(self.noise_dim, 1)), np.float32)
        self._fresh = np.zeros((1, max(self.noise_dim, 1)), np.float32)
        self._rho = float(cfg.noise_rho)
        self._rho_b = math.sqrt(max(0.0, 1.0 - self._rho ** 2))
        self._slot = np.zeros(1, np.int64)  # the one voice's noise row, for `ar_noise_step`
        self._raw = np.zeros(self.hop, np.float32)
        self._gained = np.zeros(self.hop, np.float64)
        self._windowed = np.zeros(self.n_fft, np.float64)
        self._spectrum = np.zeros(self.n_fft // 2 + 1, np.complex128)
        self._logmag = np.zeros(self.n_fft // 2 + 1, np.float32)
        self._hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.n_fft) / self.n_fft))
        self._rows = np.zeros((ENCODE_FRAMES, self._encoder.features), np.float32)
        self._row_count = 0
        self._taken = False
        self._z_in = np.zeros(cfg.latent_dim)
        self._z_in_target = np.zeros(cfg.latent_dim)
        self._z = np.zeros(cfg.latent_dim)
        self._have_timbre = False
        self._pitch = np.zeros(1)
        self._velocity = np.zeros(1)
        self._t_on = np.zeros(1)
        self._t_off = np.full(1, -1.0)
        self._consumers: list = []
        self._no_onset = np.zeros(0, np.float32)
        target_db = cfg.level_dbfs if cfg.level_dbfs is not None else PLAYING_DEFAULTS["level_dbfs"]
        self._target_rms = 10.0 ** (target_db / 20.0)
        self._st = np.zeros(_STATE)
        self._st[_FOLLOWED] = self._st[_QUANTISED] = 60.0
        self._st[_PITCH] = math.nan
        self._hops = 0
        self.underruns = 0
        self.onsets = 0

    def params(self) -> list[ParamSpec]:
        return input_param_specs()

    def bind(self, context: SourceContext) -> None:
        dt = context.hop_seconds
        taus = (ATTACK_SECONDS, RELEASE_SECONDS, VOICING_SECONDS)
        self._rates = np.array([1.0 - math.exp(-dt / tau) for tau in taus])
        self._timbre_rate = 1.0 - math.exp(-dt / TIMBRE_SECONDS)
        params = context.params
        self._latent = context.latent_point(self._plane)
        self._index = np.array([params.index[name] for name in _FOLLOW_PARAMS], dtype=np.int64)
        self._gate_index = params.index["input_gate_db"]
        self._timbre_index = params.index["input_timbre"]
        self._gain_index = params.index["input_gain"]
        self._breath_index = params.index["input_breath"]

    def add_consumer(self, callback) -> None:
        """`callback(samples)` after each hop's read with the model-rate samples it consumed (a
        reused buffer: copy it). Engine thread: keep it cheap."""
        self._consumers.append(callback)

    # ----------------------------------------------------------------- the hop
    def add(self, frame: np.ndarray, hop: Hop) -> None:
        # Few calls, each a kernel that reads `values` and the state arrays itself: a numba call's
        # cost is mostly its arguments (a numpy scalar's several times a float's).
        values = hop.values
        raw = self._raw
        if self.feed.read_hop(raw) < len(raw):
            self.underruns += 1
        for callback in self._consumers:
            callback(raw)
        self._hops += 1
        st = self._st
        tracker = self.tracker
        if _take_hop(raw, values, self._gain_index, self._gate_index, self._gained, tracker.buffer, tracker.short,
                     tracker.state, st, self._t_on, self._t_off, self._hops):
            tracker.analyse()
        _follow(st, tracker.state, values, self._index, self._rates, hop.seconds)

        # timbre: the input's own latent point, from its voiced frames (while it is asked for)
        if st[_VOICED] and values[self._timbre_index] > 0.0:
            phase = self._hops % ENCODE_EVERY
            if phase == 0:
                self._take_frame()
            elif phase == ENCODE_EVERY // 2 and self._row_count:
                self._encode_taken()
                n = min(self._row_count, ENCODE_FRAMES)
                self._z_in_target[:] = self._encoder.head(self._rows[:n], st[_FOLLOWED], LEVEL_REF_VELOCITY)
                if not self._have_timbre:
                    self._z_in[:] = self._z_in_target
                    self._have_timbre = True
        z = self._latent(hop)
        if self._have_timbre:
            _timbre_point(z, self._z_in, self._z_in_target, self._timbre_rate, values, self._timbre_index, self._z)
            z = self._z
        if not _voice_inputs(st, self._t_on, hop.seconds, self._pitch, self._velocity):
            return  # silent (after a gap's release): nothing decoded
        # the voice: one decoded frame, normalised, whole or noise alone
        if self.noise_dim:
            self._rng.standard_normal(out=self._fresh, dtype=np.float32)
            ar_noise_step(self._slot, self._fresh, self._rho, self._rho_b, self._noise, self._noise)
        whole = self._decode(z, self._pitch, self._velocity, self._t_on, self._t_off,
                             self._noise if self.noise_dim else None)
        onset = hop.onset if st[_STARTING] and hop.onset is not None else self._no_onset
        self.nonfinite += _mix_voice(whole[0], self._noise_part, st, values, self._breath_index, self._target_rms,
                                     self.n_fft, frame, onset, self._t_on, self._t_off, hop.seconds)
        if len(onset):
            hop.onsets += 1
            self.onsets += 1

    def _take_frame(self) -> None:
        """The input's log-magnitude frame now; its encoder row waits for `_encode_taken`."""
        self._encode_taken()
        np.multiply(self.tracker.recent(self.n_fft), self._hann, out=self._windowed)
        rfft_into(self._windowed, self._spectrum)
        _log_abs(self._spectrum, self._logmag, self.n_fft, self._target_rms)
        self._row_count += 1
        self._taken = True

    def _encode_taken(self) -> None:
        """The taken frame's encoder row, just before the head reads the rows: the encoder's two
        networks (weights larger than the cache, read from memory each time) then run in the same
        hop, and the decoder and inverter lose their cache to them once a cycle rather than twice."""
        if self._taken:
            self._encoder.frame(self._logmag, self._rows[(self._row_count - 1) % ENCODE_FRAMES])
            self._taken = False

    def _plane_xy(self, z) -> tuple[float, float]:
        """The pad's point of `z` (for the status, off the audio path: it allocates)."""
        plane = self._plane
        coords = (z.astype(np.float32) - plane.origin) @ plane.axes.T
        xy = (coords - plane.lo) / np.maximum(plane.hi - plane.lo, 1e-9)
        return float(xy[0]), float(xy[1])

    # ----------------------------------------------------------------- reports
    def status(self) -> dict:
        tracker = self.tracker
        x, y = self._plane_xy(self._z_in_target) if self._have_timbre else (math.nan, math.nan)
        return {
            "input_level_db": round(max(tracker.level_db, FLOOR_DB), 1),
            "input_peak": round(self.peak, 4),
            "input_clipped": self.clipped,
            "input_f0": round(tracker.f0, 2) if self._st[_VOICED] else 0.0,
            "input_voiced": int(self._st[_VOICED]),
            "input_gate": int(self._st[_OPEN]),
            "input_underruns": int(self.underruns),
            "input_onsets": int(self.onsets),
            "input_xy": [round(x, 4), round(y, 4)] if math.isfinite(x) else [],
        }

    @property
    def peak(self) -> float:
        """The largest |sample| of the last hop read (before `input_gain`)."""
        return float(self._st[_PEAK])

    @property
    def clipped(self) -> int:
        """How many input samples reached full scale (`CLIP_LEVEL`) so far."""
        return int(self._st[_CLIPPED])

    def header(self) -> dict:
        return {"input": self.feed.header()}


(_OPEN, _VOICED, _ONSET, _FOLLOWED, _QUANTISED, _PITCH, _GAIN, _HARM, _VELOCITY, _STARTING, _PEAK, _CLIPPED,
 _STATE) = range(13)
"""The follower's state (`InputSource._st`): gate open, voiced, from an onset until voiced,
the last pitch followed and its semitone, the voice's pitch, gain, harmonic share and velocity,
whether something starts this hop, the last hop's peak and the count of clipped samples."""
_FOLLOW_PARAMS = ("input_pitch", "input_quantise", "input_note", "input_transpose", "input_glide", "input_loudness",
                  "input_level", "input_dynamics")


@numba.njit(cache=True, nogil=True)
def _take_hop(raw, values, gain_index, gate_index, gained, window, short, tracked, st, t_on, t_off, hops):
    """One hop read: `input_gain` applied (peak and clipped samples counted), the tracker's
    window and levels moved on (`push_levels`), the gate; returns whether to analyse the pitch
    (gate open, and every `PITCH_EVERY` hops or from an onset until voiced)."""
    peak, clipped = _gain_copy(raw, 10.0 ** (values[gain_index] / 20.0), CLIP_LEVEL, gained)
    st[_PEAK] = peak
    st[_CLIPPED] += clipped
    push_levels(window, gained, short, tracked)
    return _gate(st, t_on, t_off, tracked[SHORT_DB], values[gate_index]) and (
        st[_ONSET] > 0.0 or hops % PITCH_EVERY == 0)


@numba.njit(cache=True, nogil=True)
def _gate(st, t_on, t_off, short_db, gate_db):
    """Open the gate when the last `SHORT_SECONDS` rise over `gate_db` (a new voice: t_on 0),
    close it `GATE_HYSTERESIS_DB` under (its release: t_off from 0); returns whether it is open."""
    if st[_OPEN] > 0.0:
        if short_db < gate_db - GATE_HYSTERESIS_DB:
            st[_OPEN] = 0.0
            t_off[0] = 0.0
    elif short_db > gate_db:
        st[_OPEN] = 1.0
        st[_VOICED] = 0.0
        st[_ONSET] = 1.0
        t_on[0] = 0.0
        t_off[0] = -1.0
    st[_STARTING] = 1.0 if st[_OPEN] > 0.0 and t_on[0] == 0.0 else 0.0
    return st[_OPEN] > 0.0


@numba.njit(cache=True, nogil=True)
def _follow(st, tracked, values, index, rates, dt):
    """Voicing, the pitch to play, the level and the harmonic share of this hop (the module's
    note) from the tracker's `state`: `values[index]` are the `_FOLLOW_PARAMS`, `rates` the
    attack, release and voicing smoothing coefficients per hop."""
    f0 = tracked[F0]
    periodic = tracked[PERIODICITY]
    level_db = tracked[LEVEL_DB]
    short_db = tracked[SHORT_DB]
    hop_db = tracked[HOP_DB]
    starting = st[_STARTING] > 0.0
    onset = st[_ONSET] > 0.0
    if st[_OPEN] > 0.0:
        if f0 > 0.0 and periodic >= VOICED_ON:
            if st[_VOICED] == 0.0:
                starting = True  # voicing after breath: the harmonics start here
            st[_VOICED] = 1.0
        elif periodic < VOICED_OFF:
            st[_VOICED] = 0.0
        # a pitch is taken from a confident analysis only (a doubtful one keeps the last pitch)
        if st[_VOICED] > 0.0 and (periodic >= FOLLOW or (onset and periodic >= VOICED_ON)):
            followed = 69.0 + 12.0 * math.log2(f0 / 440.0)
            if abs(followed - st[_FOLLOWED]) > PITCH_JUMP_SEMITONES:
                starting = True  # a new note: its frame sounds at once
            st[_FOLLOWED] = followed
            if abs(followed - st[_QUANTISED]) > 0.6 or onset:
                semitone = math.floor(followed + 0.5)
                if semitone != st[_QUANTISED] and values[index[1]] >= 0.5:
                    starting = True  # quantised: each new semitone is a new note
                st[_QUANTISED] = semitone
    else:
        st[_VOICED] = 0.0
    voiced = st[_VOICED] > 0.0
    if values[index[0]] >= 0.5:
        target = st[_QUANTISED] if values[index[1]] >= 0.5 else st[_FOLLOWED]
    else:
        target = values[index[2]]
    target += values[index[3]]
    glide = values[index[4]]
    if math.isnan(st[_PITCH]) or glide <= 0.0 or (onset and voiced):
        st[_PITCH] = target
        if voiced:
            st[_ONSET] = 0.0
    else:
        st[_PITCH] += (target - st[_PITCH]) * (1.0 - math.exp(-dt / glide))
    # level: the input's loudness against the reference, gated
    if values[index[5]] >= 0.5:  # the short window's level too: an onset is heard at once
        level = max(level_db, short_db)
        if starting:  # the newest hop alone: the window still holds the silence before
            level = max(level, hop_db)
        loud_db = min(max(level - LOUDNESS_REF_DB, LOUDNESS_RANGE_DB[0]), LOUDNESS_RANGE_DB[1])
        st[_VELOCITY] = min(max(LEVEL_REF_VELOCITY + values[index[7]] * loud_db / 48.0, 0.1), 1.0)
    else:
        loud_db = 0.0
        st[_VELOCITY] = LEVEL_REF_VELOCITY
    want = 10.0 ** (loud_db / 20.0) * values[index[6]] if st[_OPEN] > 0.0 else 0.0
    harm = 1.0 if voiced else 0.0
    if starting:  # what starts sounds at once (the inverter's pre-roll), not after a ramp
        st[_GAIN] = max(st[_GAIN], want)
        st[_HARM] = harm
    else:
        st[_GAIN] += (want - st[_GAIN]) * (rates[0] if want > st[_GAIN] else rates[1])
        st[_HARM] += (harm - st[_HARM]) * rates[2]
    st[_STARTING] = 1.0 if starting else 0.0


@numba.njit(cache=True, nogil=True)
def _timbre_point(z_pad, z_in, target, rate, values, blend_index, out):
    """The input's point glides towards `target` by `rate`; out = the pad's point moved
    `input_timbre` (`values[blend_index]`) of the way to it."""
    blend = values[blend_index]
    for k in range(len(out)):
        z_in[k] += rate * (target[k] - z_in[k])
        out[k] = z_pad[k] + blend * (z_in[k] - z_pad[k])


@numba.njit(cache=True, nogil=True)
def _voice_inputs(st, t_on, dt, pitch, velocity):
    """The decoder's pitch and velocity for this hop; False (and the voice's clock moved on)
    when it is silent: its gain under `SILENT` with the gate shut."""
    if st[_GAIN] < SILENT and st[_OPEN] == 0.0:
        t_on[0] += dt
        return False
    pitch[0] = st[_PITCH]
    velocity[0] = st[_VELOCITY]
    return True


@numba.njit(cache=True, nogil=True)
def _gain_copy(raw, gain, clip, out):
    """out = raw * gain (non-finite samples: 0); returns (peak of raw, how many raw samples
    reached `clip`)."""
    peak = 0.0
    clipped = 0
    for k in range(len(raw)):
        if not math.isfinite(raw[k]):
            out[k] = 0.0
            continue
        v = abs(raw[k])
        if v > peak:
            peak = v
        if v >= clip:
            clipped += 1
        out[k] = raw[k] * gain
    return peak, clipped


@numba.njit(cache=True, nogil=True)
def _log_abs(spectrum, out, n_fft, target_rms):
    """out = log |spectrum|, moved so that the frame's RMS is `target_rms` (the encoder hears the
    input at the level the model was trained at, whatever its gain)."""
    n = len(out)
    energy = 0.0
    for i in range(n):
        energy = add_bin_energy(energy, spectrum[i].real * spectrum[i].real + spectrum[i].imag * spectrum[i].imag, i, n)
    rms = math.sqrt(frame_mean_square(max(energy, 1e-30), n_fft))
    shift = math.log(target_rms / rms) if rms > 1e-9 else 0.0
    for i in range(n):
        m = abs(spectrum[i])
        out[i] = np.float32(math.log(max(m, 1e-12)) + shift)


@numba.njit(cache=True, nogil=True)
def _frame_rms(m, n_fft):
    n = len(m)
    energy = 0.0
    for i in range(n):
        energy = add_bin_energy(energy, np.float64(m[i]) * m[i], i, n)
    return math.sqrt(frame_mean_square(energy, n_fft))


@numba.njit(cache=True, nogil=True)
def _mix_voice(whole, noise, st, values, breath_index, target_rms, n_fft, frame, onset, t_on, t_off, dt):
    """frame += rms x (harm x whole / RMS(whole) + (1 - harm) x breath x noise / RMS(noise)), but
    for the DC bin (a voice that stops would leave the output's DC blocker a tail 30 dB down),
    and the same into `onset` when it is not empty; non-finite bins count and add nothing
    (rms: the voice's gain x `target_rms`, harm its harmonic share, breath `input_breath`).
    Then the voice's clocks move on a hop. Returns how many bins were non-finite."""
    harm = st[_HARM]
    rms = st[_GAIN] * target_rms
    t_on[0] += dt
    if t_off[0] >= 0:
        t_off[0] += dt
    bad = 0
    a = b = 0.0
    if harm != 0.0:  # else a is 0 whatever RMS(whole) is: skip it
        rw = _frame_rms(whole, n_fft)
        a = rms * harm / rw if rw > 1e-12 and math.isfinite(rw) else 0.0
    if harm != 1.0:
        rn = _frame_rms(noise, n_fft)
        b = rms * (1.0 - harm) * (10.0 ** (values[breath_index] / 20.0)) / rn \
            if rn > 1e-12 and math.isfinite(rn) else 0.0
    starts = len(onset) > 0
    for k in range(1, len(frame)):
        v = a * whole[k] + b * noise[k]
        if not math.isfinite(v):
            bad += 1
            continue
        frame[k] += v
        if starts:
            onset[k] += v
    return bad


def with_input_defaults(events) -> list:
    """`events` for an engine that follows an input, live or rendered: the drone off from the
    start (the input is the voice) unless they set it themselves."""
    events = list(events)
    if any(e.type == "param" and e.name == "drone" for e in events):
        return events
    return [Event("param", t=0.0, name="drone", value=0, source="input"), *events]
