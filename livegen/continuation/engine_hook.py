"""The engine with a continuation model: the stream sounds by itself, the performer steers it.

`ContinuationEngine` is the ordinary `Engine` (events, parameters, presets, drift walk, output
chain, inverter) whose per-hop frame comes from a `ContinuationStream` instead of note voices:

- the latent point (XY pad on the model's style plane, ``z0..zN`` offsets, ``glide``) steers the
  style; ``drift``/``drift_speed`` move it by themselves (the engine's bounded random walk,
  seeded); presets store and recall points, and `return_to_seed()` puts the recurrent state
  back where the seed ended, the way back when generation wanders off;
- ``--seed-audio FILE``: the file's frames play first and teacher-force the model, whose own
  output takes over where the file ends; its style encoding becomes the plane's centre, so the
  default point (0.5, 0.5) continues in the seed's style and the pad moves away from it;
- a ``seed`` event does the same while playing (`/livegen/seed s`, the UI's seed action): the
  file is read and analysed off the decoder thread (`prepare_seed`, `load_seed`) and the event
  carries the prepared frames; at its block boundary the seed replaces what plays, and the
  session log names the file and its sha256 so a render re-reads it;
- ``drone`` (on by default) gates the stream (0 mutes it while it keeps running) and
  ``drone_level`` scales it;
- notes play pitched voices from a spectral *voice model* at the same latent point
  (`livegen.continuation.notes`: `models/default` unless the model's config names another),
  with the engine's polyphony, stealing, sustain and release, summed with the stream before
  the one inverter. Without a voice model (``voice_model=None``) notes are ignored.

It adds three parameters to the engine's registry, so MIDI learn, OSC
(``/livegen/param/<name>``), the TUI, presets and the session log all reach them:
``temperature`` (how freely it samples), ``follow`` (how closely it follows live input) and
``return`` (a trigger: any value >= 0.5 puts the recurrent state back where the seed ended).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livegen.continuation.params import continuation_param_specs
from livegen.engine.core import DRIFT_SCALE, Engine


SEED_SECONDS = 30.0
"""A seed file is read up to this long (a whole song would only delay the model's turn)."""


def seed_frames(path, *, sample_rate: int, n_fft: int, hop: int, max_seconds: float | None = SEED_SECONDS,
                what: str = "--seed-audio") -> np.ndarray:
    """Log-magnitude frames ``[T, n_bins]`` of an audio file at the model's STFT settings.

    `what` names the option or address the path came from in the error messages.
    """
    from livegen.data.features import load_audio, log_magnitude
    from livegen.errors import ParameterError

    if not Path(path).is_file():
        raise ParameterError(f"{what} {path}: no such file; give the path of an audio file (WAV, FLAC, ...)")
    try:
        y, _ = load_audio(str(path), sample_rate=sample_rate, max_seconds=max_seconds)
    except OSError as exc:
        raise ParameterError(f"{what} {path}: cannot read it as audio ({exc})") from None
    if y.size < n_fft + hop:
        raise ParameterError(f"{what} {path}: {y.size / sample_rate:.3f} s is too short; give at least "
                             f"{(n_fft + hop) / sample_rate:.3f} s of audio")
    return log_magnitude(y, n_fft=n_fft, hop=hop)


def style_offset(model, logmag: np.ndarray) -> np.ndarray:
    """The seed's style encoding relative to the plane's centre (the pad's (0.5, 0.5) plays it)."""
    import torch

    with torch.inference_mode():
        coef = model.analyse(torch.from_numpy(np.asarray(logmag, dtype=np.float32)))
        mu, _ = model.encode(coef[None])
        centre = model.xy_to_z(torch.tensor([0.5, 0.5]))
    return (mu[0] - centre).numpy().astype(np.float64)


@dataclass(frozen=True, eq=False)
class PreparedSeed:
    """A seed file read and analysed, ready for the decoder thread to start playing (a `seed`
    event's payload): nothing is left to do at the block boundary but swapping references."""

    path: str
    sha256: str
    logmag: np.ndarray
    style_offset: np.ndarray

    @property
    def hops(self) -> int:
        return int(self.logmag.shape[0])

    def __deepcopy__(self, memo):  # a copied event shares the frames: nothing changes them
        return self


def prepare_seed(model, path, *, what: str = "/livegen/seed") -> PreparedSeed:
    """Read and analyse a seed file for `model` (slow: file I/O, STFT, the style encoder; never
    on the decoder thread). Errors are `ParameterError`s naming the file and what to do."""
    cfg = model.config
    logmag = seed_frames(path, sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop=cfg.hop, what=what)
    header = seed_audio_header(path)
    logmag = np.ascontiguousarray(logmag, dtype=np.float32)
    return PreparedSeed(header["seed_audio"], header["seed_audio_sha256"], logmag, style_offset(model, logmag))


def _background_priority() -> None:
    """Lower this thread's CPU priority (Linux: nice 19 for one thread), so that reading a
    seed file yields the cores to the decoder thread on a busy machine."""
    import os

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (OSError, AttributeError):
        pass


def seed_event(prepared: PreparedSeed, *, t: float = 0.0, source: str = ""):
    """The `seed` event that starts `prepared` playing; its log line names the file and sha256."""
    from livegen.engine.events import Event

    return Event("seed", t=t, source=source, extra={"path": prepared.path, "sha256": prepared.sha256},
                 payload=prepared)


class ContinuationEngine(Engine):
    """`Engine` driven by a continuation model (see the module docstring)."""

    def __init__(self, model, *, seed_logmag: np.ndarray | None = None, temperature: float | None = None,
                 seed: int = 0, **kwargs):
        from livegen.continuation.runtime import ContinuationStream

        super().__init__(model, seed=seed, **kwargs)
        self.stream = ContinuationStream(model, seed=seed, temperature=temperature)
        self._add_params(continuation_param_specs(self.stream.temperature))
        self._style_offset = np.zeros(self.latent_dim)
        if seed_logmag is not None:
            self._style_offset = style_offset(model, seed_logmag)
            self.stream.feed(seed_logmag)
        self._seed_lock = threading.Lock()
        self._seed_busy = False
        self.extra_status["continuation"] = 1
        self.live_input = None
        self.log_header: dict = {"temperature": self.stream.temperature}
        """Session-log header fields a render needs to rebuild this engine (`seed_audio_header`'s too)."""

    def _sync_drone(self) -> None:
        # The stream is this engine's drone: the voice bank's drone slot stays free.
        self._drone_on = self.params.get("drone") >= 0.5

    @property
    def plays_notes(self) -> bool:
        """Whether notes sound (a voice model was given)."""
        return self.voice_model is not self.model

    def attach_input(self, live_input) -> None:
        """Follow a `LiveInput` (its follower drives this engine's stream; polled every hop)."""
        from livegen.continuation.live_input import InputFollower

        if live_input.follower is None:
            live_input.follower = InputFollower(self.stream, device_rate=live_input.samplerate)
        self.live_input = live_input

    def _add_params(self, extra) -> None:
        from livegen.engine.params import ParamStore

        old = self.params
        specs = list(old.specs.values())
        self.params = ParamStore(specs[:len(specs) - self.latent_dim] + list(extra) + specs[len(specs) - self.latent_dim:])
        self.params.restore(old.snapshot())
        self._z_index = np.array([self.params.index[n] for n in self._z_names])
        self._idx = {name: self.params.index[name] for name in self.params.names}
        self._note_latent = None
        if self.plays_notes:
            from livegen.continuation.notes import NoteLatent

            self._note_latent = NoteLatent(self.voice_model, z_index=self._z_index, x_index=self._idx["x"],
                                           y_index=self._idx["y"], glide_index=self._idx["glide"],
                                           drift_index=self._idx["drift"], hop_seconds=self.hop_seconds)

    def _param_changed(self, name: str) -> None:
        super()._param_changed(name)
        if name == "temperature":
            self.stream.temperature = self.params.get("temperature")
        elif name == "follow":
            self.stream.follow = self.params.get("follow")
        elif name == "return" and self.params.get("return") >= 0.5:
            self.return_to_seed()

    # ----------------------------------------------------------------- seeds while playing
    def load_seed(self, path, done, *, source: str = "") -> None:
        """`/livegen/seed s`: read and analyse `path` on a worker thread, then post its `seed`
        event (applied at the next block boundary). `done(ok, text)` follows from that thread
        with the file's absolute path, or what was wrong with it (naming /livegen/seed and the file)."""
        with self._seed_lock:
            if self._seed_busy:
                done(False, f"/livegen/seed {path}: another seed file is still being read; try again when it plays")
                return
            self._seed_busy = True
        threading.Thread(target=self._prepare_then_post, args=(path, done, source), name="livegen-seed",
                         daemon=True).start()

    def _prepare_then_post(self, path, done, source: str) -> None:
        from livegen.errors import LivegenError

        try:
            _background_priority()
            self.torch.set_num_threads(self.threads)
            prepared = prepare_seed(self.model, path)
        except LivegenError as exc:
            ok, text = False, str(exc)
        except Exception as exc:  # a bad file must not end the performance
            ok, text = False, f"/livegen/seed {path}: cannot use it ({type(exc).__name__}: {exc})"
        else:
            self.post(seed_event(prepared, source=source))
            ok, text = True, prepared.path
        finally:
            with self._seed_lock:
                self._seed_busy = False
        done(ok, text)

    def schedule(self, events) -> None:
        """`Engine.schedule`, with the files of `seed` events read now (before playing, e.g.
        `play --events FILE`); one that is missing is left out with a warning."""
        import warnings

        super().schedule(prepare_seed_events(list(events), self.model, warn=warnings.warn))

    def _apply(self, event) -> None:
        if event.type != "seed":
            super()._apply(event)
            return
        prepared = event.payload
        if not isinstance(prepared, PreparedSeed) or prepared.logmag.shape[1:] != (self.config.n_bins,):
            self.rejected += 1        # a seed event read from a file is prepared before it is scheduled
            return
        self._play_seed(prepared)
        applied = dataclasses.replace(event, sample=self.samples_out, t=self.samples_out / self.samplerate,
                                      extra=dict(event.extra))
        for callback in self._listeners:
            callback(applied)

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
        self.extra_status["seed"] = Path(prepared.path).name

    def return_to_seed(self) -> bool:
        """Back to the state where the seed ended (or the last `stream.save_point()`)."""
        self._drift[:] = 0.0
        return self.stream.return_to_saved()

    def _decode_and_invert(self, z: np.ndarray, values: np.ndarray):
        if self.live_input is not None:
            self.live_input.poll()
            self.extra_status["input_frames"] = self.live_input.follower.frames
        if self.plays_notes:  # the voices' summed magnitudes into self._frame[0]
            _, _, peaks, slots = self._decode_voices(self._note_latent(values, self._drift, DRIFT_SCALE), values)
        else:
            self._frame[0] = 0.0
            peaks, slots = None, self.voices.active_slots()
        frame = self.stream.next_frame(z + self._style_offset)
        finite = np.isfinite(frame)
        if not finite.all():
            self.model_nan += int(frame.size - finite.sum())
            frame = np.where(finite, frame, np.float32(0.0))
        if self.stream.seeding or self.stream.seeded_hops == self.stream.hops:
            level = 1.0                      # the seed plays as it is
        else:
            level = values[self._idx["drone_level"]] / 0.7 if values[self._idx["drone"]] >= 0.5 else 0.0
        self._frame[0] += frame * np.float32(level)
        block = self.inverter.push(self._frame)[0]
        return block, peaks, slots


def seed_audio_header(path) -> dict:
    """Session-log header fields naming a `--seed-audio` file: its absolute path and sha256."""
    import hashlib

    path = Path(path).resolve()
    with open(path, "rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    return {"seed_audio": str(path), "seed_audio_sha256": digest}


def seed_audio_from_header(header: dict, *, log_path=None, warn=None) -> str | None:
    """The seed audio file a session log was played with (None when it had none, or it is gone).

    Looks at the recorded path, then beside the log under the same name; `warn(text)` is told
    when the file is missing or its sha256 is not the recorded one (the render then differs).
    """
    recorded = header.get("seed_audio")
    if not recorded:
        return None
    return _find_seed_file(recorded, header.get("seed_audio_sha256"), log_path=log_path, warn=warn,
                           missing=f"the seed audio {recorded} this log was played with is missing; rendering "
                                   "without it, so the render will differ from the recording (give the file "
                                   "with --seed-audio)")


def _find_seed_file(recorded: str, expected: str | None, *, log_path, warn, missing: str) -> str | None:
    """The recorded file, else the one of that name beside the log (None, and `missing` warned,
    when neither is there); a sha256 other than `expected` is warned about."""
    warn = warn or (lambda text: None)
    candidates = [Path(recorded)] + ([Path(log_path).with_name(Path(recorded).name)] if log_path else [])
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        warn(missing)
        return None
    actual = seed_audio_header(path)["seed_audio_sha256"]
    if expected and actual != expected:
        warn(f"{path} (sha256 {actual[:12]}) is not the seed audio this log was played with (sha256 "
             f"{expected[:12]}); the render will differ from the recording")
    return str(path)


def prepare_seed_events(events, model, *, log_path=None, warn=None) -> list:
    """`events` with each `seed` event's file read and analysed (its `payload`), for a render.

    The file is looked for at its recorded path, then beside the log; a missing one is warned
    about and its event dropped, a changed one (sha256) warned about and used.
    """
    out = []
    for event in events:
        if event.type == "seed" and event.payload is None:
            recorded = event.extra["path"]
            path = _find_seed_file(recorded, event.extra.get("sha256"), log_path=log_path, warn=warn,
                                   missing=f"the seed file {recorded} of the seed event at t={event.t:.3f} s is "
                                           "missing; rendering without that seed, so the render will differ from "
                                           "the recording (put the file back there or beside the log)")
            if path is None:
                continue
            event = dataclasses.replace(event, extra=dict(event.extra),
                                        payload=prepare_seed(model, path, what=f"seed event at t={event.t:.3f} s:"))
        out.append(event)
    return out


def load_for_engine(path, *, device: str = "cpu"):
    """The continuation model at `path` (CPU: it is small and runs one step per hop)."""
    from livegen.continuation.io import load_continuation

    return load_continuation(path, device="cpu")


def build_continuation_engine(model_dir, *, seed_audio=None, log=None, voice_model="auto", **engine_kwargs):
    """A `ContinuationEngine` when `model_dir` is a continuation model, else None (for `play`).

    ``engine_kwargs`` are the `Engine` arguments (samplerate, seed, lookahead, device, ...).
    `voice_model`: the spectral model directory notes play with ("auto": the one the model's
    config names, else `models/default`; None: notes are ignored). The session-log header
    (`engine.log_header`) names it.
    """
    from livegen.continuation.io import is_continuation_model
    from livegen.errors import ParameterError

    if not is_continuation_model(model_dir):
        if seed_audio:
            raise ParameterError(f"--seed-audio needs a continuation model (--model models/continuation); "
                                 f"{model_dir or 'the default model'} is not one")
        return None
    model = load_for_engine(model_dir)
    if log is not None:
        log(f"model: {model_dir} (continuation)")
    frames = None
    if seed_audio:
        cfg = model.config
        frames = seed_frames(seed_audio, sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop=cfg.hop)
    engine_kwargs.pop("device", None)   # a continuation model runs on the CPU
    from livegen.continuation.notes import load_voice_model, resolve_voice_model, voice_model_header

    voice_dir = resolve_voice_model(model_dir) if voice_model == "auto" else voice_model
    voices = load_voice_model(voice_dir, config=model.config) if voice_dir else None
    if log is not None:
        log(f"notes: voice model {voice_dir}" if voices is not None else "notes: no voice model; notes are ignored")
    engine = ContinuationEngine(model, seed_logmag=frames, voice_model=voices, **engine_kwargs)
    engine.extra_status["model"] = str(model_dir)
    engine.log_header.update(voice_model_header(voice_dir if voices is not None else None))
    if seed_audio:
        engine.log_header.update(seed_audio_header(seed_audio))
    return engine


def render_continuation(events, *, model, samplerate: int, seconds: float, seed: int = 0,
                        lookahead: int | None = None, seed_audio=None, temperature: float | None = None,
                        log_path=None, warn=None, **engine_kwargs):
    """Offline render with a continuation model; returns (samples, engine). Deterministic.

    `seed` events' files are read first (`prepare_seed_events`; `log_path` and `warn` as there).
    """
    from livegen.session.render import check_events

    events = prepare_seed_events(events, model, log_path=log_path, warn=warn)
    cfg = model.config
    frames = None
    if seed_audio is not None:
        frames = seed_frames(seed_audio, sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop=cfg.hop)
    engine = ContinuationEngine(model, seed_logmag=frames, temperature=temperature, samplerate=samplerate, seed=seed,
                                lookahead=lookahead, **engine_kwargs)
    check_events(events, engine.params)
    engine.schedule(events)
    return engine.render(seconds), engine
