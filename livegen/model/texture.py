"""The texture model: the spectrogram VAE proper, for unpitched or polyphonic material.

Frames of an event (drum hit, chord, stretch of a field recording: onset to next onset, at most
`max_event_s`) are encoded to a small latent; the decoder turns (z, velocity, time since the
event began) into one log-magnitude frame, every bin predicted directly (no harmonic drawing:
nothing here assumes one pitch). It streams one frame per hop like the spectral model and has
its `decode` signature, so the engine's voices, drone, XY pad, knobs, drift and OSC move it:

- the XY pad is the plane of the two principal directions of the training events' encodings;
- a note starts an event at its velocity; while it is held (and for the drone) the event
  repeats every `cycle_s` seconds, the material's median onset interval, so a held key or the
  drone keeps the texture going at its own pace; note-off fades it (`release_s` time constant);
- pitch transposes like a sampler's repitch without the tempo change: MIDI `root_pitch` (48,
  the drone's default pitch) plays the material as recorded, every semitone above or below
  scales the frequency axis by 2^(1/12);
- `noise` draws modulate every bin with a Rayleigh factor (geometric mean 1), the fine
  fluctuation that an averaged frame lacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from livegen.errors import ModelError
from livegen.model.config import FrameConfig
from livegen.model.io import _read_config, init_noise_projection, load_checked_weights, write_model_dir
from livegen.model.spectral import (_LN10_20, LEVEL_GAIN_DB, SpectralModel, frame_rms_log,
                                    rayleigh_log, register_plane_buffers)

TEXTURE_FORMAT = "livegen-texture-vae"
TEXTURE_FORMAT_VERSION = 1
_TAU_ON = (0.01, 0.03, 0.1, 0.3, 1.0)
LEVEL_DBFS = -18.0
"""Mean RMS over one repeat of the pad centre's event at velocity 100 after `set_level`."""


@dataclass
class TextureConfig(FrameConfig):
    """Everything needed to rebuild a `TextureModel`; the rate is the material's own."""

    WHAT = "texture config"

    floor: float = 1e-4
    noise_gain: float = 1.0
    noise_rho: float = 0.9
    root_pitch: float = 48.0
    cycle_s: float = 0.5
    release_s: float = 0.15
    max_event_s: float = 1.5
    kind: str = "texture"
    gain_db: float = 0.0
    """Playing level: added to every frame (set after training so the pad's centre plays near
    `LEVEL_DBFS` at velocity 100, like the spectral models' level setting)."""
    families: list = field(default_factory=list)

    def __post_init__(self):
        super().__post_init__()
        if not self.cycle_s > 0 or not self.release_s > 0:
            raise ModelError("texture config cycle_s and release_s must be > 0")


class TextureModel(nn.Module):
    """Event encoder + per-frame decoder; `decode` returns linear magnitudes `[V, n_bins]`."""

    def __init__(self, config: TextureConfig | None = None):
        super().__init__()
        cfg = config or TextureConfig()
        self.config = cfg
        self.family_centroids: dict[str, tuple[float, float]] = {}
        self.metadata: dict = {}
        act = nn.LeakyReLU(0.1)
        n_in = cfg.latent_dim + 1 + len(_TAU_ON)
        layers: list[nn.Module] = []
        for i in range(cfg.n_layers):
            layers += [nn.Linear(n_in if i == 0 else cfg.hidden, cfg.hidden), act]
        layers.append(nn.Linear(cfg.hidden, cfg.n_bins))
        self.decoder = nn.Sequential(*layers)
        self.enc_frame = nn.Sequential(nn.Linear(cfg.n_bins, cfg.enc_hidden), act,
                                       nn.Linear(cfg.enc_hidden, cfg.enc_hidden), act)
        self.enc_head = nn.Sequential(nn.Linear(2 * cfg.enc_hidden + 1, cfg.enc_hidden), act,
                                      nn.Linear(cfg.enc_hidden, 2 * cfg.latent_dim))
        self.register_buffer("neg_inv_tau", -1.0 / torch.tensor(_TAU_ON), persistent=False)
        self.register_buffer("bin_index", torch.arange(cfg.n_bins, dtype=torch.float32), persistent=False)
        self.register_buffer("noise_proj", torch.zeros(cfg.noise_dim, 2 * cfg.n_bins))
        register_plane_buffers(self, cfg.latent_dim, cfg.n_bins)

    # ---------------------------------------------------------------- decoder
    def frame_logmag(self, z, velocity, t_on):
        """The decoder's natural-log magnitude `[V, n_bins]` at the material's own pitch."""
        t = torch.remainder(t_on.clamp(min=0.0), self.config.cycle_s)
        x = torch.cat([z, (velocity.unsqueeze(1) - 0.5) * 2.0, torch.exp(t.unsqueeze(1) * self.neg_inv_tau)], 1)
        return self.decoder(x)

    def transpose(self, logmag, pitch):
        """Scale the frequency axis by 2^((pitch - root_pitch)/12): bin k reads bin k / ratio
        (linear interpolation; what lies beyond Nyquist is dropped, what is missing is floored)."""
        cfg = self.config
        ratio = torch.exp2((pitch - cfg.root_pitch) / 12.0).unsqueeze(1)
        src = self.bin_index / ratio
        i0 = src.floor().clamp(0, cfg.n_bins - 1)
        w = (src - i0).clamp(0.0, 1.0)
        i0l = i0.long()
        i1l = (i0l + 1).clamp(max=cfg.n_bins - 1)
        out = torch.lerp(logmag.gather(1, i0l), logmag.gather(1, i1l), w)
        return torch.where(src > cfg.n_bins - 1, torch.full_like(out, math.log(cfg.floor)), out)

    def decode(self, z, pitch, velocity, t_on, t_off, noise=None):
        """One magnitude frame per voice, with `SpectralModel.decode`'s signature.

        t_off >= 0 (released) fades the voice with time constant `release_s`.
        """
        cfg = self.config
        logmag = self.frame_logmag(z, velocity, t_on)
        logmag = self.transpose(logmag, pitch)
        fade = torch.where(t_off >= 0, -t_off.clamp(min=0.0) / cfg.release_s, torch.zeros_like(t_off))
        logmag = logmag + (fade + cfg.gain_db * _LN10_20).unsqueeze(1)
        if noise is not None and cfg.noise_gain:
            logmag = torch.add(logmag, rayleigh_log(noise, self.noise_proj, cfg.n_bins), alpha=cfg.noise_gain)
        return torch.exp(logmag)

    def advance_noise(self, prev, fresh):
        """AR(1) step of the noise draws (as `SpectralModel.advance_noise`)."""
        rho = self.config.noise_rho
        return rho * prev + math.sqrt(max(0.0, 1.0 - rho * rho)) * fresh

    # ---------------------------------------------------------------- encoder
    def encode(self, logmag_frames, velocity):
        """Event frames `[B, T, n_bins]` (natural-log magnitude) -> latent (mu, logvar)."""
        x = (logmag_frames.clamp(min=math.log(self.config.floor)) - self.logmag_mean) / self.logmag_std
        h = self.enc_frame(x)
        h = torch.cat([h.mean(1), h.amax(1), velocity.unsqueeze(1)], 1)
        out = self.enc_head(h)
        d = self.config.latent_dim
        return out[:, :d], out[:, d:].clamp(-10.0, 5.0)

    # ---------------------------------------------------------------- XY plane: SpectralModel's
    xy_to_z = SpectralModel.xy_to_z
    xy_plane = SpectralModel.xy_plane
    z_to_xy = SpectralModel.z_to_xy
    fit_plane = SpectralModel.fit_plane


def set_level(model: TextureModel) -> float:
    """Set `gain_db` so the pad centre's event at velocity 100 (noiseless, one `cycle_s`, at the
    root pitch) has a mean RMS of `LEVEL_DBFS`; returns the gain (kept within the spectral
    models' `LEVEL_GAIN_DB`)."""
    cfg = model.config
    cfg.gain_db = 0.0
    n = max(1, int(round(cfg.cycle_s / cfg.hop_seconds)))
    with torch.no_grad():
        z = model.xy_to_z(torch.tensor([0.5, 0.5])).expand(n, -1)
        t = torch.arange(n, dtype=torch.float32) * cfg.hop_seconds
        frames = model.decode(z, torch.full((n,), cfg.root_pitch), torch.full((n,), 100 / 127), t,
                              torch.full((n,), -1.0))
        rms_db = float(frame_rms_log(frames, cfg.n_fft).exp().square().mean().sqrt().log()) / _LN10_20
    cfg.gain_db = round(min(max(LEVEL_DBFS - rms_db, LEVEL_GAIN_DB[0]), LEVEL_GAIN_DB[1]), 2)
    return cfg.gain_db


def init_texture(model: TextureModel, generator: torch.Generator, sample: torch.Tensor | None = None) -> None:
    """Noise projection (unit columns, Rayleigh factor of geometric mean 1), encoder input
    statistics and the decoder's output bias from `sample` frames `[N, n_bins]` (natural log)."""
    cfg = model.config
    init_noise_projection(model, generator)
    with torch.no_grad():
        if sample is not None and sample.numel():
            s = sample.clamp(min=math.log(cfg.floor))
            model.logmag_mean.copy_(s.mean(0))
            model.logmag_std.copy_(s.std(0).clamp(min=0.1))
            model.decoder[-1].bias.copy_(s.mean(0))


def save_texture_model(model: TextureModel, path, card_text: str | None = None, metadata: dict | None = None):
    """Write a texture model directory (config.json + weights.safetensors + card.md)."""
    return write_model_dir(model, path, fmt=TEXTURE_FORMAT, version=TEXTURE_FORMAT_VERSION, card_text=card_text,
                           metadata=metadata)


def load_texture_model(path, device="cpu") -> TextureModel:
    """Load a texture model directory (safetensors, checked against the config; never runs code)."""
    from pathlib import Path

    path = Path(path)
    data = _read_config(path, fmt=TEXTURE_FORMAT, version=TEXTURE_FORMAT_VERSION, kind="a livegen texture model")
    model = TextureModel(TextureConfig.from_dict(data.get("config", {})))
    load_checked_weights(model, path, data)
    return model.to(device).eval()
