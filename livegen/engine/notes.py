"""Note voices and the drone, as a source: a spectral VAE decodes every active voice at the
performer's latent point in one batched call, and their gain-weighted magnitudes are summed.

The voices' magnitudes are summed before the engine's one inverter (why: `livegen.engine.core`).

On CPU a spectral or texture model decodes in numpy/numba (`livegen.model.fast`): no torch call
per hop. On CUDA/MPS, or for another model, its traced `frame_decoder` (a `SpectralModel`'s) or
its `decode` runs instead.

Per-voice control (MPE, `/livegen/voice/<id>/...`): a note with a voice id plays with its id's
bend, pressure and pad offsets (`VoiceBank.control`); a voice with an offset decodes at its own
latent point, the performer's point moved along the pad's axes, and while none has one every
voice shares the performer's point in the decoder call, as without ids.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from livegen.engine.core import Engine
from livegen.engine.events import SOUND_OFF_ALL, VOICE_CONTROLS, VOICE_IDS
from livegen.engine.input import InputSource
from livegen.engine.source import PITCH_JUMP_SEMITONES, Hop, Source, SourceContext
from livegen.engine.voices import DRONE, NO_ID, VoiceBank
from livegen.errors import ParameterError
from livegen.model.fast import NumpyFrameDecoder, NumpyTextureDecoder
from livegen.model.spectral import SpectralModel
from livegen.model.texture import TextureModel

MAX_VOICES = 16
DECODERS = ("auto", "torch")
"""`NotesSource`'s decoder choices."""


def spectral_engine(model, *, samplerate: int = 48000, seed: int = 0, device: str = "cpu", input_feed=None,
                    **engine_kwargs) -> Engine:
    """An engine playing spectral VAE `model`: note voices and the drone, and with `input_feed`
    (`livegen.engine.input.InputFeed`) a voice the input plays (`InputSource`).

    ``engine_kwargs``: `Engine`'s (lookahead, method, fade_seconds, threads).
    """
    sources = [NotesSource(model, seed=seed, device=device)]
    if input_feed is not None:
        sources.append(InputSource(model, feed=input_feed, seed=seed, device=device))
    return Engine(sources, config=model.config, samplerate=samplerate, seed=seed, device=device, **engine_kwargs)


class NotesSource(Source):
    """Note voices (polyphony, stealing, sustain, release, bend, per-voice control) and the drone
    voice, which gives way to held notes (fades out while a key or the pedal holds one, returns
    after; `VoiceBank`).

    Parameters
    ----------
    model : the model the voices decode with: `decode` (`SpectralModel.decode`'s signature),
        `advance_noise`, `xy_plane` and `config` (`n_bins`, `noise_dim`, `noise_rho`, ...); a
        `SpectralModel` or `TextureModel` decodes with numpy on the CPU.
    seed : seeds the voices' noise (child 0 of ``SeedSequence(seed)``; the engine's drift walk
        takes child 1), so the same events, model and seed give the same samples.
    device : torch device of the model ("cpu": the numpy decoder).
    drone : whether the drone voice sounds (a continuation stream takes its place when False).
    decoder : "auto" (numpy on the CPU where the model has a numpy decoder, else its torch one)
        or "torch": the model's own (traced) decoder on `device` even on the CPU, the path a GPU
        takes (tests check it against numpy on machines without one).
    """

    events = ("note_on", "note_off", "voice", "sound_off")
    reacts_to = ("sustain", "drone", "voices")

    def __init__(self, model, *, seed: int = 0, device: str = "cpu", drone: bool = True, decoder: str = "auto"):
        if decoder not in DECODERS:
            raise ParameterError(f"decoder {decoder!r}: use one of {', '.join(DECODERS)}")
        self.model = model
        self.device = device
        self.plays_drone = bool(drone)
        cfg = model.config
        spectral = isinstance(model, SpectralModel)
        self.noise_dim = int(cfg.noise_dim)
        level = getattr(cfg, "level_dbfs", None)  # a sine at the model's level peaks near n_fft/4 x its amplitude
        self.voices = VoiceBank(note_slots=MAX_VOICES, noise_dim=max(self.noise_dim, 1),
                                level_peak=0.0 if level is None else cfg.n_fft / 4 * 10.0 ** (level / 20.0))
        fast = NumpyFrameDecoder if spectral else NumpyTextureDecoder if isinstance(model, TextureModel) else None
        self._numpy_decode = decoder == "auto" and torch.device(device).type == "cpu" and fast is not None
        self.calls_torch = not self._numpy_decode
        if self._numpy_decode:
            self._decode = fast(model, max_voices=self.voices.size)
        else:  # `decode`'s signature and output, at about half the per-call cost when traced
            self._decode = model.frame_decoder() if spectral else model.decode
        self._advance_noise = model.advance_noise
        self._noise_rho = float(cfg.noise_rho)
        self._noise_rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(2)[0])
        self._plane = plane = model.xy_plane()
        # One pad width along each of the pad's axes, in latent units: a voice's x, y offsets
        # (pad widths) times these move its point.
        self._pad_axes = np.stack([(plane.hi[k] - plane.lo[k]) * plane.axes[k].astype(np.float64) for k in (0, 1)])
        dim, size = max(self.noise_dim, 1), self.voices.size
        self._voice_full = (np.zeros(size), np.zeros(size), np.zeros(size), np.zeros(size),
                            np.zeros(size, dtype=np.float32), np.zeros((size, dim), dtype=np.float32),
                            np.zeros((size, dim), dtype=np.float32), np.zeros(size, dtype=np.float32),
                            np.zeros((size, 2)), np.zeros((size, self._plane.latent_dim)))
        self._voice_bufs: dict[int, tuple] = {}
        self._fresh64 = np.zeros(dim)
        """A starting voice's noise as the generator draws it (float64), before it is stored."""
        self._starting = np.zeros(self.voices.size, dtype=np.bool_)
        """Slots whose first frame this hop decodes, or whose pitch jumped (their magnitudes are
        the hop's onset)."""
        self._played = np.zeros(self.voices.size)
        """Each slot's pitch in the frame before (a jump from it pre-rolls the new pitch)."""
        self._sustain = False
        self._drone_on = False

    def bind(self, context: SourceContext) -> None:
        params = context.params
        self._params = params
        self._hop_seconds = context.hop_seconds
        self._latent = context.latent_point(self._plane)
        self._i = {name: params.index[name] for name in ("drone_pitch", "drone_level", "bend", "bend_range")}
        self._sync_drone()

    # ----------------------------------------------------------------- events
    def handle(self, event) -> bool:
        voice = NO_ID if event.voice is None else int(event.voice)
        if not (voice == NO_ID or 0 <= voice < VOICE_IDS):
            return False
        if event.type == "voice":
            if voice == NO_ID or event.name not in VOICE_CONTROLS or not math.isfinite(event.value):
                return False
            self.voices.control(voice, event.name, event.value)
        elif event.type == "sound_off" and event.action == SOUND_OFF_ALL:
            self.voices.sound_off(hop_seconds=self._hop_seconds, every=True)
        elif event.type == "sound_off":
            self.voices.sound_off(voice, hop_seconds=self._hop_seconds)
        elif event.type == "note_on" and event.velocity:
            self.voices.note_on(float(event.pitch), event.velocity / 127.0, voice=voice,
                                limit=int(self._params.get("voices")), hop_seconds=self._hop_seconds)
        else:  # note_off, or note_on at velocity 0
            self.voices.note_off(float(event.pitch), sustain=self._sustain, voice=voice)
        return True

    def param_changed(self, name: str, value: float) -> None:
        if name == "sustain":
            down = value >= 0.5
            if self._sustain and not down:
                self.voices.pedal_up()
            self._sustain = down
        elif name == "drone":
            self._sync_drone()
        elif name == "voices":
            self.voices.enforce_limit(int(value), hop_seconds=self._hop_seconds)

    def _sync_drone(self) -> None:
        on = self.plays_drone and self._params.get("drone") >= 0.5
        if on:
            self.voices.drone_on(self._params.value("drone_pitch"), self._params.value("drone_level"))
        else:
            self.voices.drone_off()
        self._drone_on = on

    def status(self) -> dict:
        bank = self.voices
        status = {"voices": int(len(bank.sounding_notes())), "steals": bank.steals,
                  "voices_xy": self.voices_xy()}
        if self.plays_drone:
            status["drone"] = int(self._drone_on)
        return status

    def voices_xy(self) -> list[float]:
        """The pad points ``[x0, y0, x1, y1, ...]`` of the sounding notes that have a voice id: the
        performer's x, y plus each one's (glided) offsets, clipped to the pad. Off the hop."""
        pad = np.array([self._params.value("x"), self._params.value("y")])
        points = np.clip(pad + self.voices.id_offsets(), 0.0, 1.0)
        return [round(float(value), 4) for value in points.ravel()]

    # ----------------------------------------------------------------- the hop
    def add(self, frame: np.ndarray, hop: Hop) -> None:
        values = hop.values
        bank = self.voices
        if bank.active[DRONE]:
            bank.pitch[DRONE] = values[self._i["drone_pitch"]]
            bank.velocity[DRONE] = values[self._i["drone_level"]]
        starting = self._starting
        if bank.started:
            for slot in bank.started:
                if self.noise_dim:
                    fresh = self._fresh64[:self.noise_dim]
                    self._noise_rng.standard_normal(out=fresh)
                    bank.noise[slot, :self.noise_dim] = fresh
                starting[slot] = True
            bank.started.clear()
        z = self._latent(hop)  # every hop: the glide goes on while no voice sounds
        if self._latent.jumped:
            hop.cuts += 1
        slots = bank.active_slots()
        n = len(slots)
        if n == 0:
            starting.fill(False)
            bank.advance(hop_seconds=hop.seconds, peaks=None, slots=slots)
            return
        pitch, velocity, t_on, t_off, gains, noise, fresh, peaks, offsets, zs = self._buffers(n)
        if bank.gather(slots, bend=values[self._i["bend"]] * values[self._i["bend_range"]], pitch=pitch,
                       velocity=velocity, t_on=t_on, t_off=t_off, gains=gains, hop_seconds=hop.seconds,
                       offsets=offsets):
            z = _voice_points(z, offsets, self._pad_axes, zs)  # [n, latent_dim]: each voice's own point
        _mark_pitch_jumps(slots, pitch, self._played, starting, PITCH_JUMP_SEMITONES)
        if self.noise_dim:
            self._noise_rng.standard_normal(out=fresh, dtype=np.float32)
            if self._numpy_decode:  # the model's advance_noise, in place
                bank.advance_noise(slots, fresh, self._noise_rho, noise)
            else:
                noise[:] = self._advance_noise(bank.noise[slots], fresh)
                bank.noise[slots] = noise
        if self._numpy_decode:
            mags = self._decode(z, pitch, velocity, t_on, t_off, noise if self.noise_dim else None)
        else:
            mags = self._torch_decode(z, pitch, velocity, t_on, t_off, noise if self.noise_dim else None)
        # non-finite bins -> 0 (counted), each voice's loudest bin, and the gain-weighted sum
        self.nonfinite += _scan_frames(mags, gains, peaks, frame)
        if _add_onsets(mags, gains, slots, starting, hop.onset):
            hop.onsets += 1
        bank.advance(hop_seconds=hop.seconds, peaks=peaks, slots=slots)

    def _buffers(self, n: int) -> tuple:
        """Per-voice-count input buffers for the decoder (made once per count, reused every hop)."""
        bufs = self._voice_bufs.get(n)
        if bufs is None:  # views of buffers made for every slot: no array data made on the hop
            bufs = tuple(full[:n] for full in self._voice_full)
            self._voice_bufs[n] = bufs
        return bufs

    def _torch_decode(self, z, pitch, velocity, t_on, t_off, noise):
        """The model's own (traced) decoder on its torch device: [V, n_bins] float32 numpy."""
        dev = self.device
        n = len(pitch)
        with torch.inference_mode():
            out = self._decode(
                torch.from_numpy(np.broadcast_to(z, (n, z.shape[-1])).astype(np.float32)).to(dev),
                torch.from_numpy(pitch.astype(np.float32)).to(dev),
                torch.from_numpy(velocity.astype(np.float32)).to(dev),
                torch.from_numpy(t_on.astype(np.float32)).to(dev),
                torch.from_numpy(t_off.astype(np.float32)).to(dev),
                None if noise is None else torch.from_numpy(noise).to(dev),
            )
        return out.detach().to("cpu").numpy().astype(np.float32, copy=False)


@numba.njit(cache=True, nogil=True)
def _voice_points(z, offsets, pad_axes, out):
    """out[j] = z + offsets[j, 0] pad_axes[0] + offsets[j, 1] pad_axes[1]: each voice's latent point."""
    for j in range(out.shape[0]):
        for i in range(out.shape[1]):
            out[j, i] = z[i] + offsets[j, 0] * pad_axes[0, i] + offsets[j, 1] * pad_axes[1, i]
    return out


@numba.njit(cache=True, nogil=True)
def _mark_pitch_jumps(slots, pitch, played, starting, jump):
    """Mark the voices whose pitch moved more than `jump` semitones since their last frame as
    starting (their frame is pre-rolled); remember this frame's pitches."""
    for j in range(len(slots)):
        s = slots[j]
        if abs(pitch[j] - played[s]) > jump:
            starting[s] = True
        played[s] = pitch[j]


@numba.njit(cache=True, nogil=True)
def _scan_frames(mags, gains, peaks, mix):
    """Zero non-finite magnitudes in place, write each voice's loudest bin into `peaks` and add
    the gain-weighted sum of the voices into `mix`; returns how many were non-finite."""
    bad = 0
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
            mix[i] += g * m
        peaks[v] = peak
    return bad


@numba.njit(cache=True, nogil=True)
def _add_onsets(mags, gains, slots, starting, onset):
    """Add the gain-weighted magnitudes of the voices starting this hop into `onset` and clear
    their flags; True if there was one."""
    found = False
    for j in range(len(slots)):
        s = slots[j]
        if starting[s]:
            starting[s] = False
            found = True
            g = gains[j]
            for i in range(mags.shape[1]):
                onset[i] += g * mags[j, i]
    return found
