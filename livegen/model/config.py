"""Model configuration: architecture, STFT settings and conditioning, saved as `config.json`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from livegen.errors import ModelError

FORMAT = "livegen-spectral-vae"
FORMAT_VERSION = 1

# Instrument families of `livegen dataset gm` (NSynth's names first, then the GM-only groups);
# a trained model stores the families of its own training data instead.
GM_FAMILIES = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead",
    "vocal", "synth_pad", "synth_effects", "ethnic", "percussive", "sound_effects",
)


@dataclass
class FrameConfig:
    """The fields every frame model's config starts with, what derives from them, the JSON round trip."""

    WHAT = "model config"
    POSITIVE = ("sample_rate", "n_fft", "hop", "latent_dim", "noise_dim", "hidden", "n_layers", "enc_hidden")

    sample_rate: int = 24000
    n_fft: int = 1024
    hop: int = 128
    latent_dim: int = 8
    noise_dim: int = 32
    hidden: int = 256
    n_layers: int = 3
    enc_hidden: int = 256

    def __post_init__(self):
        for name in self.POSITIVE:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ModelError(f"{self.WHAT} field {name}={value!r} must be a positive integer")
        if self.hop > self.n_fft:
            raise ModelError(f"{self.WHAT} hop={self.hop} must not exceed n_fft={self.n_fft}")
        if self.latent_dim < 2:
            raise ModelError(f"{self.WHAT} latent_dim={self.latent_dim} must be at least 2 (the XY plane)")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def bin_hz(self) -> float:
        return self.sample_rate / self.n_fft

    @property
    def hop_seconds(self) -> float:
        return self.hop / self.sample_rate

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        if not isinstance(data, dict):
            raise ModelError(f"{cls.WHAT} must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"{cls.WHAT} has unknown fields {unknown}; was it written by a newer livegen?")
        return cls(**data)


@dataclass
class ModelConfig(FrameConfig):
    """Everything needed to rebuild a `SpectralModel` (weights aside).

    The STFT settings (24 kHz, n_fft 1024, hop 128: a 5.33 ms hop and 23.4 Hz bins) are the
    project's shared decision; the engine and the inverter read them from here.
    """

    POSITIVE = FrameConfig.POSITIVE + ("n_bands", "n_resid_harmonics", "max_harmonics", "kernel_halfwidth")

    n_bands: int = 64
    n_resid_harmonics: int = 24
    max_harmonics: int = 192
    kernel_halfwidth: int = 3
    max_inharmonicity: float = 4e-4
    floor: float = 1e-4
    # Calibrated after training so that sustained generated notes move as much as real ones.
    noise_gain: float = 1.0
    harm_jitter: float = 0.05
    noise_rho: float = 0.0
    # Playing settings, set after training (None / 0 = off, as in models made before them).
    level_dbfs: float | None = None
    """Every frame is scaled so that a held reference note at the same z and pitch (velocity 100,
    0.3 s in, noiseless) would play at this RMS dBFS before the engine's gain: an even level over
    the pad and the keyboard, while velocity, attack and release keep their shape."""
    vibrato_cents: float = 0.0
    """Depth of the harmonics' vibrato (it fades in 0.15-0.45 s after note-on)."""
    vibrato_hz: float = 5.5
    shimmer_db: float = 0.0
    """Depth of each harmonic's slow amplitude wander (its own rate, 0.7-6 Hz)."""
    envelope_at_harmonics: bool = False
    """Read the harmonic envelope once at each harmonic's frequency and draw its lobe with that
    amplitude, instead of multiplying the drawn lobes by the envelope bin by bin (as in
    training): a steep envelope under a low partial tilted its lobe, moving the pitch the
    inverter found by up to 80 cents."""
    families: list = field(default_factory=lambda: list(GM_FAMILIES))

    def __post_init__(self):
        super().__post_init__()
        if self.n_bands < 2:
            raise ModelError(f"model config n_bands={self.n_bands} must be at least 2")
        if self.n_resid_harmonics > self.max_harmonics:
            raise ModelError("model config n_resid_harmonics must not exceed max_harmonics")
        if not self.noise_rho:
            self.noise_rho = hann_frame_correlation(self.n_fft, self.hop)


def hann_frame_correlation(n_fft: int, hop: int) -> float:
    """Correlation of a white-noise STFT bin between consecutive frames (periodic Hann window).

    Real noise in an overlapping STFT is correlated from frame to frame; the decoder's noise
    draws are smoothed with this coefficient (an AR(1) step) so generated noise moves alike.
    """
    w = [0.5 - 0.5 * math.cos(2 * math.pi * n / n_fft) for n in range(n_fft)]
    num = sum(w[n] * w[n + hop] for n in range(n_fft - hop))
    den = sum(v * v for v in w)
    return num / den
