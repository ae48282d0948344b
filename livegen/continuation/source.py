"""The continuation stream as a source: it sounds by itself, the performer steers it.

- the latent point (XY pad on the model's style plane, ``z0..zN`` offsets, ``glide``) steers the
  style; ``drift``/``drift_speed`` move it by themselves (the engine's seeded drift walk);
  presets store and recall points, and ``return`` puts the recurrent state back where the seed
  ended, the way back when generation wanders off;
- a seed (``--seed-audio FILE``, or a ``seed`` event: `/livegen/seed s`, the UI's seed action):
  the file's frames play first and teacher-force the model, whose own output takes over where
  the file ends; its style encoding becomes the plane's centre, so the default point
  (0.5, 0.5) continues in the seed's style. The file is read and analysed in `prepare` (off the
  decoder thread); at its hop boundary the seed replaces what plays, and the session log names
  the file and its sha256 so a render re-reads it;
- ``drone`` (on by default) gates the stream (0 mutes it while it keeps running) and
  ``drone_level`` scales it: the stream is this engine's drone (the notes source beside it, if
  any, plays no drone voice);
- live input (`--input-device`): an `InputFollower` hears it and drives the stream, polled every hop.

It adds ``temperature`` (how freely it samples), ``follow`` (how closely it follows live input)
and ``return`` (a trigger: any value >= 0.5 goes back to where the seed ended) to the engine's
parameters, so MIDI learn, OSC, the TUI, presets and the session log all reach them.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from livegen.continuation.live_input import InputFollower
from livegen.continuation.params import continuation_param_specs
from livegen.continuation.runtime import ContinuationStream
from livegen.continuation.seeds import PreparedSeed, prepare_seed_event, seed_logmag, style_offset
from livegen.engine.core import Engine
from livegen.engine.latent import LatentPoint
from livegen.engine.notes import NotesSource
from livegen.engine.params import engine_param_specs
from livegen.engine.source import Hop, Source, SourceContext


class ContinuationSource(Source):
    """A `ContinuationStream` steered by the engine's parameters (see the module docstring).

    Parameters
    ----------
    model : the continuation model (CPU).
    seed : seeds the stream's draws.
    temperature : its sampling temperature (None: the model's).
    seed_logmag : seed frames ``[T, n_bins]`` (natural-log magnitudes) to start with.
    live_input : a `LiveInput` whose frames drive the stream (None: none).
    header : session-log header fields of what was built beside it (e.g. the voice model).
    """

    events = ("seed",)
    reacts_to = ("temperature", "follow", "return")
    calls_torch = True  # its recurrent step's network stages, one per hop

    def __init__(self, model, *, seed: int = 0, temperature: float | None = None, seed_logmag=None,
                 live_input=None, header: dict | None = None):
        self.model = model
        self.stream = ContinuationStream(model, seed=seed, temperature=temperature)
        self._plane = model.xy_plane()
        self._style_offset = np.zeros(model.config.latent_dim)
        if seed_logmag is not None:
            self._style_offset = style_offset(model, seed_logmag)
            self.stream.feed(seed_logmag)
        self._z = np.zeros(model.config.latent_dim)
        self.live_input = live_input
        self._follower = None if live_input is None else InputFollower(self.stream, device_rate=live_input.samplerate)
        self._header = {"temperature": self.stream.temperature, **(header or {})}
        self._seed_name = None

    def params(self):
        shared = [spec for spec in engine_param_specs() if spec.name in ("drone", "drone_level")]
        return shared + continuation_param_specs(self.stream.temperature)

    def bind(self, context: SourceContext) -> None:
        params = context.params
        self._params = params
        self._drift = context.drift
        self._n_bins = context.n_bins
        self._latent = LatentPoint(self._plane, params, hop_seconds=context.hop_seconds)
        self._drone, self._level = params.index["drone"], params.index["drone_level"]

    # ----------------------------------------------------------------- events
    def param_changed(self, name: str, value: float) -> None:
        if name == "temperature":
            self.stream.temperature = value
        elif name == "follow":
            self.stream.follow = value
        elif name == "return" and value >= 0.5:
            self.return_to_seed()

    def prepare(self, event, *, log_path=None, warn=None):
        return prepare_seed_event(event, self.model, log_path=log_path, warn=warn)

    def handle(self, event) -> bool:
        prepared = event.payload
        if not isinstance(prepared, PreparedSeed) or prepared.logmag.shape[1:] != (self._n_bins,):
            return False          # a seed event read from a file is prepared before it is scheduled
        self._play_seed(prepared)
        return True

    def _play_seed(self, prepared: PreparedSeed) -> None:
        """Start `prepared` now, in place of what plays: the model takes over where it ends, from
        the state it leaves (also the "return" point), in its style at the pad's centre."""
        stream = self.stream
        # A seed still playing is replaced; the block under way is dropped so that the seed's
        # last block, not the old one, is what the model continues.
        stream._seed_frames, stream._seed_pos, stream._seed_block = [], 0, []
        stream._pending, stream._pending_pos = stream._pending[:0], 0
        stream._coef_s = None
        stream.feed(prepared.logmag)
        self._style_offset = prepared.style_offset
        self._seed_name = Path(prepared.path).name

    def return_to_seed(self) -> bool:
        """Back to the state where the seed ended (or the last `stream.save_point()`)."""
        self._drift.reset()
        return self.stream.return_to_saved()

    # ----------------------------------------------------------------- reports
    def status(self) -> dict:
        stream = self.stream
        status = {"continuation": 1, "drone": int(self._params.get("drone") >= 0.5),
                  "seed_hops": stream.seeded_hops, "model_steps": stream.steps}
        if self._seed_name is not None:
            status["seed"] = self._seed_name
        if self._follower is not None:
            status["input_frames"] = self._follower.frames
        return status

    def header(self) -> dict:
        return dict(self._header)

    # ----------------------------------------------------------------- the hop
    def add(self, frame: np.ndarray, hop: Hop) -> None:
        if self._follower is not None:
            self.live_input.poll(self._follower)
        values = hop.values
        np.add(self._latent(hop), self._style_offset, out=self._z)
        stream = self.stream
        out = stream.next_frame(self._z)
        if stream.seeding or stream.seeded_hops == stream.hops:
            level = 1.0                      # the seed plays as it is
        else:
            level = values[self._level] / 0.7 if values[self._drone] >= 0.5 else 0.0
        self.nonfinite += _add_finite(frame, out, float(level))


def continuation_engine(model, *, voice_model=None, samplerate: int = 48000, seed: int = 0,
                        temperature: float | None = None, seed_logmag=None, live_input=None,
                        header: dict | None = None, **engine_kwargs) -> Engine:
    """An engine playing continuation `model` (CPU), notes from spectral `voice_model` beside
    it (None: notes are rejected). `header`: extra session-log header fields."""
    engine_kwargs.pop("device", None)  # a continuation model runs on the CPU
    sources = [] if voice_model is None else [NotesSource(voice_model, seed=seed, drone=False)]
    sources.append(ContinuationSource(model, seed=seed, temperature=temperature, seed_logmag=seed_logmag,
                                      live_input=live_input, header=header))
    return Engine(sources, config=model.config, samplerate=samplerate, seed=seed, **engine_kwargs)


def render_continuation(events, *, model, samplerate: int, seconds: float, seed: int = 0,
                        lookahead: int | None = None, seed_audio=None, temperature: float | None = None,
                        voice_model=None, log_path=None, warn=None, **engine_kwargs):
    """Offline render with continuation `model` (notes from spectral `voice_model`, None: none);
    returns (samples, engine). Deterministic. `seed` events' files are read first (looked for
    beside `log_path` too; `warn(text)` hears of a missing or changed one)."""
    engine = continuation_engine(model, voice_model=voice_model, samplerate=samplerate, seed=seed, lookahead=lookahead,
                                 temperature=temperature, seed_logmag=seed_logmag(seed_audio, model.config),
                                 **engine_kwargs)
    return engine.render_events(events, seconds=seconds, log_path=log_path, warn=warn), engine


@numba.njit(cache=True, nogil=True)
def _add_finite(frame, out, level):
    """``frame += out * float32(level)`` with non-finite bins of `out` as 0 (in float32, as numpy
    did, without its temporaries: the hop makes no array); returns how many were not finite."""
    gain = np.float32(level)
    bad = 0
    for i in range(len(frame)):
        v = out[i]
        if not np.isfinite(v):
            v = np.float32(0.0)
            bad += 1
        frame[i] += v * gain
    return bad
