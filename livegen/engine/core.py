"""The engine: parameters and notes in, one output block per model hop out.

One `Engine` serves both paths. Live (`livegen play`), a decoder thread calls `step()` and
writes the block into the ring buffer the audio callback reads; offline (`livegen render`),
a loop calls `step()` on a virtual clock. Events are applied only at hop boundaries and are
stamped with `samples_out` (the output-rate sample index at which they took effect), so an
applied-event log renders back to the same samples.

Voices and phase reconstruction: every active voice is decoded in one batched `decode` call,
then the voices' magnitudes are summed and inverted as ONE stream (`mix="sum"`, the default)
rather than each voice separately (`mix="voices"`, kept for comparison). Measured with
`livegen bench engine` (default model, 8 voices, 2 shared cores): per-voice inversion made the
whole engine 2.0-5.6x slower (21 inverter rows a hop instead of 1, whatever the voice count;
5.6x once the decode got cheap), and its output was further from the summed voice magnitudes
(spectral convergence -7.9 dB against -13.5 dB for the summed stream): separately reconstructed voices interfere where
their partials meet, while the summed stream's phase is fitted to the mixture. The sum of
magnitudes is the mixture's magnitude wherever voices do not share a bin, which notes of
different pitch rarely do. It also needs no per-voice phase reset when a voice starts or is
stolen.

Cost per hop on CPU: the decode runs in numpy and numba (`livegen.model.fast`), and the
voice bookkeeping, latent point and output chain are numba kernels over reused buffers, so a
hop makes no torch call and only a few small allocations. `livegen bench engine --seconds 3
--no-live` (load 1.3 on 2 cores): 1 voice 14.9x real time, 8 voices 10.5x (the traced torch
decoder gave 5.8x and 4.6x). About 230 µs of a one-voice hop's 360 µs is the inverter at the
default quality 4; the decode is 45-60 µs, the output chain 9 µs. On CUDA/MPS the engine
calls the model's traced `frame_decoder` instead.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time

import numba
import numpy as np

from livegen.audio.chain import OutputChain
from livegen.engine.events import Event
from livegen.engine.params import ParamStore
from livegen.engine.voices import DRONE, VoiceBank

MAX_VOICES = 16
DRIFT_SCALE = 1.0
"""Standard deviation of the drift walk in latent units at drift = 1 (the prior is N(0, 1))."""
DRIFT_BOUND = 3.0
PRESET_SIDE_EFFECTS = ("sustain", "drone", "quality", "voices")
"""Parameters whose change the engine acts on at once (pedal, drone voice, inverter, voice limit):
a recall, morph or loop that moves them calls `_param_changed`."""


class Engine:
    """The decoder loop with its voices, inverter and output chain.

    Parameters
    ----------
    model : the spectral model (`decode`, `xy_to_z`, `config`, optional `advance_noise`).
    samplerate : output rate; the model's own rate is resampled to it with soxr.
    seed : seeds the model noise and the drift walk (numpy `default_rng`), so the same events,
        model and seed give the same samples.
    lookahead : look-ahead frames of the streaming inverter (None: its default).
    device : torch device the model runs on.
    mix : "sum" (one inverter stream for all voices, the default) or "voices".
    voice_model : the spectral model the note voices decode with (default: `model`); an engine
        whose `model` brings its own frames (the continuation engine) plays notes with it.
    """

    def __init__(self, model, *, samplerate: int = 48000, seed: int = 0, lookahead: int | None = None,
                 device: str = "cpu", mix: str = "sum", method: str | None = None,
                 fade_seconds: float = 0.01, threads: int = 1, voice_model=None):
        import torch

        from livegen.dsp import StreamingInverter
        from livegen.model.spectral import SpectralModel

        self.torch = torch
        self.threads = int(threads)
        self.model = model
        cfg = model.config
        self.config = cfg
        self.device = device
        self.samplerate = int(samplerate)
        self.seed = int(seed)
        self.mix = mix
        if mix not in ("sum", "voices"):
            raise ValueError(f"mix must be 'sum' or 'voices', got {mix!r}")
        self.hop = cfg.hop
        self.hop_seconds = cfg.hop / cfg.sample_rate
        self.params = ParamStore.for_model(cfg.latent_dim)
        self.latent_dim = cfg.latent_dim
        self.voice_model = model if voice_model is None else voice_model
        vmodel = self.voice_model
        self.noise_dim = getattr(vmodel.config, "noise_dim", 0)
        self.voices = VoiceBank(note_slots=MAX_VOICES, noise_dim=max(self.noise_dim, 1))
        texture = getattr(vmodel.config, "kind", None) == "texture"  # livegen.model.texture.TextureModel
        self._numpy_decode = torch.device(device).type == "cpu" and (isinstance(vmodel, SpectralModel) or texture)
        if self._numpy_decode:
            # On CPU the numpy/numba decoder: the same frames at a fifth of the traced decoder's
            # cost, and no torch call per hop. BLAS's threads are process-wide: a second one only
            # adds wake-ups (and stalls on a busy machine) for products this small.
            from threadpoolctl import threadpool_limits

            from livegen.model.fast import NumpyFrameDecoder, NumpyTextureDecoder

            threadpool_limits(self.threads, user_api="blas")
            fast = NumpyTextureDecoder if texture else NumpyFrameDecoder
            self._decode = fast(vmodel, max_voices=self.voices.size)
        else:
            # The traced decoder has `decode`'s signature and output at about half the per-call cost.
            # (None for a model that brings its own hop, e.g. the continuation engine's.)
            self._decode = vmodel.frame_decoder() if hasattr(vmodel, "frame_decoder") else getattr(vmodel, "decode", None)
        self._noise_rho = float(getattr(vmodel.config, "noise_rho", 0.0)) if hasattr(vmodel, "advance_noise") else 0.0
        self._voice_bufs: dict[int, tuple] = {}
        self._frame = np.zeros((1, cfg.n_bins), dtype=np.float32)
        inverter_kwargs = {"n_fft": cfg.n_fft, "hop": cfg.hop,
                           "voices": 1 if mix == "sum" else self.voices.size,
                           "iters": int(self.params.get("quality"))}
        if lookahead is not None:
            inverter_kwargs["lookahead"] = int(lookahead)
        if method is not None:
            inverter_kwargs["method"] = method
        self.inverter = StreamingInverter(**inverter_kwargs)
        self.lookahead = int(getattr(self.inverter, "lookahead", lookahead or 0))
        self.chain = OutputChain(in_rate=cfg.sample_rate, out_rate=self.samplerate, fade_seconds=fade_seconds)
        seeds = np.random.SeedSequence(self.seed).spawn(2)
        self._noise_rng = np.random.default_rng(seeds[0])
        self._drift_rng = np.random.default_rng(seeds[1])
        self._drift = np.zeros(self.latent_dim)
        self._drift_fresh = np.zeros(self.latent_dim)
        self._z = np.zeros(self.latent_dim)
        self._xy_key = None
        self._xy_z = np.zeros(self.latent_dim)
        self._z_smooth = None
        self._z_names = [f"z{i}" for i in range(self.latent_dim)]
        self._z_index = np.array([self.params.index[n] for n in self._z_names])
        self._idx = {name: self.params.index[name] for name in self.params.names}
        self._inbox: collections.deque[Event] = collections.deque()
        self._scheduled: list[tuple[int, int, Event]] = []
        self._next_scheduled = 0
        self._listeners: list = []
        self._taps: list = []
        self.presets: dict[int, dict[str, float]] = {}
        self._morph: _Morph | None = None
        self.samples_out = 0
        self.hops = 0
        self.model_nan = 0
        self.clamped = 0
        self.rejected = 0
        self.recording = False
        self.load = 0.0
        self.extra_status: dict = {}
        self._sustain = False
        self._drone_on = False
        self._sync_drone()

    # ----------------------------------------------------------------- control (ControlTarget)
    def post(self, event: Event) -> None:
        """Thread-safe and non-blocking: applied at the next hop boundary."""
        self._inbox.append(event)

    def add_listener(self, callback) -> None:
        """`callback(event)` for every applied event, on the engine thread (keep it cheap)."""
        self._listeners.append(callback)

    def add_tap(self, callback) -> None:
        """`callback(block)` for every output block (after the limiter), on the engine thread."""
        self._taps.append(callback)

    def remove_tap(self, callback) -> None:
        if callback in self._taps:
            self._taps.remove(callback)

    def remove_listener(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def schedule(self, events) -> None:
        """Queue events for the virtual clock: each applies at the first hop boundary at or
        after its `sample` (when stamped) or `t * samplerate`."""
        items = list(self._scheduled[self._next_scheduled:])
        for event in events:
            due = event.sample if event.sample is not None else int(math.ceil(event.t * self.samplerate - 1e-9))
            items.append((int(due), len(items), event))
        items.sort(key=lambda item: (item[0], item[1]))
        self._scheduled = items
        self._next_scheduled = 0

    def status(self) -> dict:
        """What `/livegen/status` answers (name/value pairs; the OSC reply stays far below the
        8192-byte packet limit)."""
        nan = self.model_nan + self.chain.nan_count + int(getattr(self.inverter, "sanitized", 0))
        status = {
            "samplerate": self.samplerate,
            "voices": int(len(self.voices.sounding_notes())),
            "recording": int(self.recording),
            "load": round(self.load, 4),
            "nan": nan,
            "clamped": self.clamped,
            "peak": round(self.chain.meter_peak, 5),
            "rms": round(self.chain.meter_rms, 5),
            "model_samplerate": self.config.sample_rate,
            "hop": self.hop,
            "drone": int(self._drone_on),
            "rejected": self.rejected,
            "steals": self.voices.steals,
            "lookahead": self.lookahead,
            "seconds": round(self.samples_out / self.samplerate, 3),
            "device": str(self.device),
        }
        status.update(self.extra_status)
        return status

    def bind_thread(self) -> None:
        """Call first on the thread that will run `step`: torch's CPU thread count is per thread.

        Measured here: a decoder thread that skipped this ran its steps at a median of 23 ms
        instead of 1.5 ms (2 busy cores), its OpenMP team spinning against the rest of the machine.
        """
        self.torch.set_num_threads(self.threads)

    # ----------------------------------------------------------------- the hop
    def step(self) -> np.ndarray:
        """Apply due events, decode one hop for every active voice, return output samples."""
        started = time.perf_counter()
        self._apply_due()
        self.params.advance(self.hop_seconds)
        values = self.params.values
        z = self._latent(values)
        block, peaks, slots = self._decode_and_invert(z, values)
        self.voices.advance(hop_seconds=self.hop_seconds, peaks=peaks, slots=slots)
        out = self.chain.process(block, gain_db=values[self._idx["gain"]], ceiling_db=values[self._idx["ceiling"]])
        for tap in self._taps:
            tap(out)
        self.samples_out += len(out)
        self.hops += 1
        spent = time.perf_counter() - started
        ratio = spent / (len(out) / self.samplerate) if len(out) else 0.0
        self.load = 0.98 * self.load + 0.02 * ratio
        return out

    def render(self, seconds: float) -> np.ndarray:
        """Run the virtual clock for exactly `seconds` of output (scheduled events apply on time)."""
        total = int(round(seconds * self.samplerate))
        out = np.zeros(total, dtype=np.float32)
        filled = self.samples_out
        start = filled
        while self.samples_out - start < total:
            block = self.step()
            n = min(len(block), total - (filled - start))
            out[filled - start:filled - start + n] = block[:n]
            filled += len(block)
        return out

    def fade_out(self) -> None:
        self.chain.fade_out()

    @property
    def faded_out(self) -> bool:
        return self.chain.faded_out

    # ----------------------------------------------------------------- internals
    def _apply_due(self) -> None:
        while self._next_scheduled < len(self._scheduled) and self._scheduled[self._next_scheduled][0] <= self.samples_out:
            self._apply(self._scheduled[self._next_scheduled][2])
            self._next_scheduled += 1
        inbox = self._inbox
        while inbox:
            self._apply(inbox.popleft())
        if self._morph is not None:
            self._morph_advance()

    def _apply(self, event: Event) -> None:
        applied = dataclasses.replace(event, sample=self.samples_out, t=self.samples_out / self.samplerate,
                                      extra=dict(event.extra))
        kind = event.type
        try:
            if kind == "param":
                value, moved = self.params.set(event.name, event.value)
                applied.value = value
                if self._morph is not None:  # the performer's hand wins over a morph
                    self._morph.control[self.params.index[event.name]] = False
                if moved:
                    self.clamped += 1
                    applied.extra["clamped_from"] = event.value
                self._param_changed(event.name)
            elif kind == "note_on":
                if not event.velocity:
                    self.voices.note_off(float(event.pitch), sustain=self._sustain)
                else:
                    self.voices.note_on(float(event.pitch), event.velocity / 127.0,
                                        limit=int(self.params.get("voices")), hop_seconds=self.hop_seconds)
            elif kind == "note_off":
                self.voices.note_off(float(event.pitch), sustain=self._sustain)
            elif kind == "preset":
                if event.action == "store":
                    self.presets[int(event.slot)] = self.params.snapshot()
                elif event.action in ("morph", "loop"):
                    if not self._start_morph(event):
                        self.rejected += 1
                        return
                elif int(event.slot) in self.presets:
                    self._morph = None
                    self.params.restore(self.presets[int(event.slot)])
                    for name in PRESET_SIDE_EFFECTS:
                        self._param_changed(name)
                else:
                    self.rejected += 1
                    return
            elif kind == "record":
                self.recording = bool(event.value)
            else:
                self.rejected += 1
                return
        except (ValueError, TypeError):  # unknown parameter or a malformed value from a live source
            self.rejected += 1
            return
        for callback in self._listeners:
            callback(applied)

    @property
    def morphing(self) -> bool:
        """Whether a preset morph or loop is moving parameters now."""
        return self._morph is not None

    def morph_names(self) -> list[str]:
        """The parameters a running morph or loop still moves (none when there is none)."""
        morph = self._morph
        if morph is None:
            return []
        names = self.params.names
        return [names[i] for i in np.flatnonzero(morph.control)]

    def _start_morph(self, event: Event) -> bool:
        """Start (or, for a loop of 0 seconds, stop) a morph; False when it cannot run.

        Every parameter the slots store glides from the current targets on a raised cosine,
        computed from the sample clock at each block boundary, so a render of the same events
        gives the same samples. A `morph` ends on the slot's values; a `loop` glides from the
        current values to its first slot, then slot to slot and back to the first, until a
        `recall`, another `morph`/`loop`, or a `loop` of 0 seconds. A `param` event for a
        parameter under its control releases that parameter alone (the performer's value
        stands; the rest keep moving) for the rest of that morph or loop.
        """
        seconds = float(event.seconds or 0.0)
        if not math.isfinite(seconds) or seconds < 0:
            return False
        if event.action == "loop":
            if seconds == 0:
                self._morph = None
                return True
            slots = list(event.slots) if event.slots else sorted(self.presets)
            if len(slots) < 2 or any(int(slot) not in self.presets for slot in slots):
                return False
        else:
            if event.slot is None or int(event.slot) not in self.presets:
                return False
            slots = [int(event.slot)]
        store = self.params
        rows = np.empty((len(slots) + 1, len(store.names)))
        rows[0] = store.targets
        control = np.zeros(len(store.names), dtype=np.bool_)
        for row, slot in enumerate(slots, start=1):
            rows[row] = store.targets
            for name, value in self.presets[int(slot)].items():
                if name in store.index:  # presets move between models: others are ignored
                    rows[row, store.index[name]] = store.check(name, value)[0]
                    control[store.index[name]] = True
        specs = list(store.specs.values())
        side = [name for name in PRESET_SIDE_EFFECTS if name in store.index]
        side_index = np.array([store.index[name] for name in side], dtype=np.int64)
        self._morph = _Morph(
            rows=rows, control=control, loop=event.action == "loop", start=self.samples_out,
            span=max(int(round(seconds * self.samplerate)), 1 if event.action == "loop" else 0),
            integer=np.array([spec.integer for spec in specs], dtype=np.bool_),
            jump=np.array([spec.smoothing == 0.0 for spec in specs], dtype=np.bool_),
            side=side, side_index=side_index, side_last=store.targets[side_index].copy())
        return True

    def _morph_advance(self) -> None:
        """Move the morph's parameters to this block boundary's point (no allocation)."""
        morph = self._morph
        store = self.params
        elapsed = self.samples_out - morph.start
        legs = len(morph.rows) - 1
        if not morph.loop and elapsed >= morph.span:
            a, b, w, done = 0, 1, 1.0, True
        else:
            leg, rem = divmod(elapsed, morph.span)
            if leg == 0:
                a, b = 0, 1
            else:
                a, b = 1 + (leg - 1) % legs, 1 + leg % legs
            w = 0.5 - 0.5 * math.cos(math.pi * rem / morph.span)
            done = False
        _morph_step(morph.rows[a], morph.rows[b], w, morph.control, morph.integer, morph.jump,
                    store.targets, store.values)
        for k in range(len(morph.side)):
            now = store.targets[morph.side_index[k]]
            if now != morph.side_last[k]:
                morph.side_last[k] = now
                self._param_changed(morph.side[k])
        if done:
            self._morph = None

    def _param_changed(self, name: str) -> None:
        if name == "sustain":
            down = self.params.get("sustain") >= 0.5
            if self._sustain and not down:
                self.voices.pedal_up()
            self._sustain = down
        elif name == "drone":
            self._sync_drone()
        elif name == "quality":
            self.inverter.iters = int(self.params.get("quality"))
        elif name == "voices":
            self.voices.enforce_limit(int(self.params.get("voices")), hop_seconds=self.hop_seconds)

    def _sync_drone(self) -> None:
        on = self.params.get("drone") >= 0.5
        if on:
            self.voices.drone_on(self.params.value("drone_pitch"), self.params.value("drone_level"))
        else:
            self.voices.drone_off()
        self._drone_on = on

    def _latent(self, values: np.ndarray) -> np.ndarray:
        """This hop's latent point (a buffer the next hop overwrites): XY plane + z offsets,
        glided, plus the drift walk."""
        key = (values[self._idx["x"]], values[self._idx["y"]])
        if key != self._xy_key:
            with self.torch.inference_mode():
                z = self.model.xy_to_z(self.torch.tensor([key[0], key[1]], dtype=self.torch.float32))
            self._xy_z = np.asarray(z.detach().cpu().numpy(), dtype=np.float64).reshape(-1)
            self._xy_key = key
        glide = values[self._idx["glide"]]
        reset = self._z_smooth is None or glide <= 0
        if self._z_smooth is None:
            self._z_smooth = np.zeros(self.latent_dim)
        smooth = 0.0 if reset else 1.0 - math.exp(-self.hop_seconds / glide)
        # Drift: an Ornstein-Uhlenbeck walk (unit variance, clipped), always advanced so that
        # turning it up mid-performance does not change the noise that follows.
        theta = min(2 * math.pi * values[self._idx["drift_speed"]] * self.hop_seconds, 1.0)
        self._drift_rng.standard_normal(out=self._drift_fresh)
        _latent_step(values, self._z_index, self._xy_z, self._z_smooth, reset, smooth, self._drift, self._drift_fresh,
                     theta, values[self._idx["drift"]] * DRIFT_SCALE, self._z)
        return self._z

    def _buffers(self, n: int) -> tuple:
        """Per-voice-count input buffers for the decoder (made once per count, reused every hop)."""
        bufs = self._voice_bufs.get(n)
        if bufs is None:
            dim = max(self.noise_dim, 1)
            bufs = (np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.float32),
                    np.zeros((n, dim), dtype=np.float32), np.zeros((n, dim), dtype=np.float32),
                    np.zeros(n, dtype=np.float32))
            self._voice_bufs[n] = bufs
        return bufs

    def _decode_and_invert(self, z: np.ndarray, values: np.ndarray):
        mags, gains, peaks, slots = self._decode_voices(z, values)
        if self.mix == "sum":
            block = self.inverter.push(self._frame)[0]
        else:
            frame = np.zeros((self.voices.size, self.config.n_bins), dtype=np.float32)
            if len(slots):
                frame[slots] = mags * gains[:, None]
            block = self.inverter.push(frame).sum(axis=0)
        return block, peaks, slots

    def _decode_voices(self, z: np.ndarray, values: np.ndarray):
        """Decode every active voice at latent point `z` with the voice model; `self._frame[0]`
        gets their gain-weighted sum (mix "sum"). Returns (mags, gains, peaks, slots)."""
        bank = self.voices
        if bank.active[DRONE]:
            bank.pitch[DRONE] = values[self._idx["drone_pitch"]]
            bank.velocity[DRONE] = values[self._idx["drone_level"]]
        if bank.started:
            for slot in bank.started:
                if self.noise_dim:
                    bank.noise[slot] = self._noise_rng.standard_normal(self.noise_dim)
                if self.mix == "voices":
                    self.inverter.reset([slot])
            bank.started.clear()
        slots = bank.active_slots()
        n = len(slots)
        if n == 0:
            mags = self._frame
            mags[:] = 0.0
            peaks = gains = None
        else:
            pitch, velocity, t_on, t_off, gains, noise, fresh, peaks_buf = self._buffers(n)
            bank.gather(slots, bend=values[self._idx["bend"]] * values[self._idx["bend_range"]], pitch=pitch,
                        velocity=velocity, t_on=t_on, t_off=t_off, gains=gains)
            if self.noise_dim:
                self._noise_rng.standard_normal(out=fresh, dtype=np.float32)
                if self._numpy_decode:  # the model's advance_noise, in place
                    bank.advance_noise(slots, fresh, self._noise_rho, noise)
                elif hasattr(self.voice_model, "advance_noise"):
                    noise[:] = self.voice_model.advance_noise(bank.noise[slots], fresh)
                else:
                    noise[:] = fresh
                if not self._numpy_decode:
                    bank.noise[slots] = noise
            if self._numpy_decode:
                mags = self._decode(z, pitch, velocity, t_on, t_off, noise if self.noise_dim else None)
            else:
                mags = self._torch_decode(z, pitch, velocity, t_on, t_off, noise if self.noise_dim else None)
            peaks = peaks_buf
            # non-finite bins -> 0 (counted), each voice's loudest bin, and the gain-weighted sum
            self.model_nan += _scan_frames(mags, gains, peaks, self._frame[0], self.mix == "sum")
        return mags, gains, peaks, slots

    def _torch_decode(self, z, pitch, velocity, t_on, t_off, noise):
        """The model's own (traced) decoder on its torch device: [V, n_bins] float32 numpy."""
        torch = self.torch
        dev = self.device
        n = len(pitch)
        with torch.inference_mode():
            out = self._decode(
                torch.from_numpy(np.broadcast_to(z, (n, len(z))).astype(np.float32)).to(dev),
                torch.from_numpy(pitch.astype(np.float32)).to(dev),
                torch.from_numpy(velocity.astype(np.float32)).to(dev),
                torch.from_numpy(t_on.astype(np.float32)).to(dev),
                torch.from_numpy(t_off.astype(np.float32)).to(dev),
                None if noise is None else torch.from_numpy(noise).to(dev),
            )
        return out.detach().to("cpu").numpy().astype(np.float32, copy=False)


@dataclasses.dataclass
class _Morph:
    """A running preset morph or loop: its endpoints, made when it starts and reused each block."""

    rows: np.ndarray
    """[1 + slots, params]: row 0 the targets when it started, then each slot's values."""
    control: np.ndarray
    """Which parameters it still moves (a `param` event for one releases it)."""
    loop: bool
    start: int
    """Output sample at which it started."""
    span: int
    """Output samples per leg."""
    integer: np.ndarray
    jump: np.ndarray
    """Parameters with no smoothing: their smoothed value follows the target at once."""
    side: list
    side_index: np.ndarray
    side_last: np.ndarray


@numba.njit(cache=True, nogil=True)
def _morph_step(a, b, w, control, integer, jump, targets, values):
    """targets[i] = a[i] on a raised-cosine weight `w` towards b[i], for controlled parameters;
    integer parameters round (so they step), unsmoothed ones take the value at once."""
    for i in range(len(targets)):
        if control[i]:
            v = a[i] * (1.0 - w) + b[i] * w
            if integer[i]:
                v = math.floor(v + 0.5)
            targets[i] = v
            if jump[i]:
                values[i] = v


@numba.njit(cache=True, nogil=True)
def _latent_step(values, z_index, xy_z, z_smooth, reset, smooth, drift, fresh, theta, drift_amount, out):
    """Engine._latent's per-dimension arithmetic in one call (glide, drift walk, sum)."""
    walk = math.sqrt(2.0 * theta)
    for i in range(len(out)):
        target = xy_z[i] + values[z_index[i]]
        if reset:
            z_smooth[i] = target
        else:
            z_smooth[i] += (target - z_smooth[i]) * smooth
        d = drift[i] + (-theta * drift[i] + walk * fresh[i])
        d = min(max(d, -DRIFT_BOUND), DRIFT_BOUND)
        drift[i] = d
        out[i] = z_smooth[i] + drift_amount * d


@numba.njit(cache=True, nogil=True)
def _scan_frames(mags, gains, peaks, mix, do_sum):
    """Zero non-finite magnitudes in place, write each voice's loudest bin into `peaks` and (with
    `do_sum`) the gain-weighted sum of the voices into `mix`; returns how many were non-finite."""
    bad = 0
    if do_sum:
        mix[:] = 0.0
    for v in range(mags.shape[0]):
        peak = np.float32(0.0)
        g = gains[v]
        for i in range(mags.shape[1]):
            m = mags[v, i]
            if not np.isfinite(m):
                m = np.float32(0.0)
                mags[v, i] = m
                bad += 1
            if m > peak:
                peak = m
            if do_sum:
                mix[i] += g * m
        peaks[v] = peak
    return bad
