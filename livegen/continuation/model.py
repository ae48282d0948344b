"""The continuation model: a GRU over blocks of spectral frames, steered by a style latent.

Representation. Log-magnitude frames (``log(|STFT| + 1e-5)``, the feature cache's) are
normalised per bin and projected on a PCA basis fitted to the training frames; the coefficients
are whitened (unit variance), so every dimension of the loss is on the same scale. What the
basis leaves out is put back at synthesis as per-bin Gaussian texture with the residual's
measured spread (the Rayleigh-like fluctuation of real spectra).

Time. At 187.5 frames/s (hop 128 at 24 kHz) consecutive frames overlap by 87.5 %, and a
one-frame-ahead predictor learns to copy its input: the seed LSTM's collapse to a static
frame. The GRU therefore steps once per *block* of ``block`` hops and predicts the whole next
block, as a mixture of diagonal Gaussians that the runtime samples from.

Style. A small encoder maps the statistics (mean, spread) of a window of a piece to a latent
``z`` (VAE, KL-regularised); the GRU sees ``z`` at every step. A plane fitted to the training
encodings gives the XY pad, like the spectral VAE's, so the performer's point steers the style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from livegen.errors import ModelError
from livegen.model.config import ModelConfig
from livegen.model.plane import XYPlane
from livegen.model.spectral import SpectralModel

FORMAT = "livegen-continuation"
FORMAT_VERSION = 1
LOG_FLOOR = 1e-5  # the feature cache's log(|STFT| + 1e-5)


class StftConfig:
    """What the engine reads from every continuation-format config like the spectral VAE's, and
    they are its: the STFT's derived sizes and the JSON round trip (unknown fields refused, in the
    same words)."""

    noise_dim = 0
    n_bins = ModelConfig.n_bins
    bin_hz = ModelConfig.bin_hz
    hop_seconds = ModelConfig.hop_seconds
    to_dict = ModelConfig.to_dict
    from_dict = classmethod(ModelConfig.from_dict.__func__)

    def check_positive(self, names, *, label: str) -> None:
        """ModelError naming the first of `names` that is not a positive integer."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ModelError(f"{label} field {name}={value!r} must be a positive integer")


@dataclass
class ContinuationConfig(StftConfig):
    """Everything needed to rebuild a `ContinuationModel` (weights aside)."""

    sample_rate: int = 24000
    n_fft: int = 1024
    hop: int = 128
    latent_dim: int = 8
    n_components: int = 64
    block: int = 8
    hidden: int = 192
    layers: int = 2
    mixtures: int = 2
    enc_hidden: int = 128
    coef_clip: float = 6.0
    # Sampling defaults, chosen by measurement on the bundled model (card.md): spectral flatness,
    # loudness and relative flux of generated seconds against real ones.
    temperature: float = 0.7
    texture: float = 0.5
    sample_rho: float = 0.97       # frame-to-frame correlation of the sampling noise
    smooth: float = 0.8            # one-pole smoothing of the played coefficients across hops (0 = none)
    genres: list = field(default_factory=list)

    def __post_init__(self):
        self.check_positive(("sample_rate", "n_fft", "hop", "latent_dim", "n_components", "block", "hidden", "layers",
                             "mixtures", "enc_hidden"), label="continuation config")
        if self.latent_dim < 2:
            raise ModelError(f"continuation config latent_dim={self.latent_dim} must be at least 2 (the XY plane)")
        if self.n_components > self.n_bins:
            raise ModelError(f"continuation config n_components={self.n_components} exceeds the {self.n_bins} bins")

    @property
    def step_dim(self) -> int:
        return self.block * self.n_components


class ContinuationModel(nn.Module):
    """Style encoder + block GRU with a mixture-density head, and the spectral basis.

    Shapes: a *block* is ``[block, n_components]`` whitened coefficients, flattened to
    ``step_dim``; sequences are ``[B, T, step_dim]``.
    """

    def __init__(self, config: ContinuationConfig | None = None):
        super().__init__()
        cfg = config or ContinuationConfig()
        self.config = cfg
        self.family_centroids: dict[str, tuple[float, float]] = {}
        self.metadata: dict = {}
        d, k = cfg.step_dim, cfg.n_components
        act = nn.LeakyReLU(0.1)
        self.enc = nn.Sequential(nn.Linear(2 * k, cfg.enc_hidden), act, nn.Linear(cfg.enc_hidden, cfg.enc_hidden), act,
                                 nn.Linear(cfg.enc_hidden, 2 * cfg.latent_dim))
        self.inp = nn.Sequential(nn.Linear(d + cfg.latent_dim, cfg.hidden), act)
        self.rnn = nn.GRU(cfg.hidden, cfg.hidden, num_layers=cfg.layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden + cfg.latent_dim, cfg.mixtures * (2 * d + 1))
        n = cfg.n_bins
        # Spectral basis (fitted to data, saved): logmag -> (x - mean) / std -> @ basis -> / scale
        self.register_buffer("bin_mean", torch.zeros(n))
        self.register_buffer("bin_std", torch.ones(n))
        self.register_buffer("basis", torch.eye(n)[:k].T.contiguous())          # [n_bins, k]
        self.register_buffer("coef_scale", torch.ones(k))
        self.register_buffer("resid_std", torch.zeros(n))
        # XY plane over the style encodings (same meaning as the spectral VAE's)
        self.register_buffer("plane_origin", torch.zeros(cfg.latent_dim))
        axes = torch.zeros(2, cfg.latent_dim)
        axes[0, 0] = axes[1, 1] = 1.0
        self.register_buffer("plane_axes", axes)
        self.register_buffer("plane_lo", torch.full((2,), -2.0))
        self.register_buffer("plane_hi", torch.full((2,), 2.0))

    # ------------------------------------------------------------- representation
    def analyse(self, logmag: torch.Tensor) -> torch.Tensor:
        """Log-magnitude frames ``[..., n_bins]`` -> whitened coefficients ``[..., k]``."""
        x = (logmag - self.bin_mean) / self.bin_std
        return (x @ self.basis) / self.coef_scale

    def synthesise(self, coef: torch.Tensor, texture: torch.Tensor | None = None) -> torch.Tensor:
        """Whitened coefficients ``[..., k]`` -> linear magnitude ``[..., n_bins]`` (librosa scale).

        ``texture``: standard-normal draws ``[..., n_bins]`` scaled by the residual spread (None:
        the smooth frame).
        """
        x = (coef * self.coef_scale) @ self.basis.T
        if texture is not None:
            x = x + texture * (self.resid_std * self.config.texture)
        logmag = x * self.bin_std + self.bin_mean
        return (torch.exp(logmag.clamp(max=12.0)) - LOG_FLOOR).clamp(min=0.0)

    def to_blocks(self, coef: torch.Tensor) -> torch.Tensor:
        """``[B, T*block, k]`` frame coefficients -> ``[B, T, step_dim]`` (trailing frames dropped)."""
        b, n, k = coef.shape
        t = n // self.config.block
        return coef[:, :t * self.config.block].reshape(b, t, self.config.step_dim)

    # ------------------------------------------------------------- style
    def encode(self, coef: torch.Tensor):
        """A window of frame coefficients ``[B, T, k]`` -> style (mu, logvar) ``[B, latent_dim]``."""
        stats = torch.cat([coef.mean(1), coef.std(1, unbiased=False)], 1)
        out = self.enc(stats)
        d = self.config.latent_dim
        return out[:, :d], out[:, d:].clamp(-8.0, 4.0)

    # ------------------------------------------------------------- sequence
    def forward(self, blocks: torch.Tensor, z: torch.Tensor, h=None):
        """Teacher-forced run: ``blocks [B, T, D]`` inputs, ``z [B, latent]`` -> mixture params
        for the *next* block at each step (logits [B,T,M], mean [B,T,M,D], log_std [B,T,M,D]), h."""
        b, t, _ = blocks.shape
        zz = z.unsqueeze(1).expand(b, t, z.shape[1])
        y, h = self.rnn(self.inp(torch.cat([blocks, zz], 2)), h)
        return self._mixture(self.head(torch.cat([y, zz], 2))), h

    def _mixture(self, out: torch.Tensor):
        cfg = self.config
        m, d = cfg.mixtures, cfg.step_dim
        logits = out[..., :m]
        rest = out[..., m:].reshape(*out.shape[:-1], m, 2, d)
        return logits, rest[..., 0, :], rest[..., 1, :].clamp(-5.0, 3.0)

    @staticmethod
    def nll(mix, target: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per dimension of ``target [B, T, D]`` under the mixture."""
        logits, mean, log_std = mix
        t = target.unsqueeze(-2)
        comp = -0.5 * (((t - mean) * torch.exp(-log_std)) ** 2) - log_std - 0.5 * math.log(2 * math.pi)
        ll = torch.logsumexp(torch.log_softmax(logits, -1) + comp.sum(-1), -1)
        return -ll.mean() / target.shape[-1]

    def sample(self, mix, *, generator: torch.Generator | None = None, temperature: float = 1.0,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """One draw per row from the mixture (component by its weight, then the Gaussian).

        ``noise``: the standard-normal draws to use (the runtime passes frame-correlated ones).
        """
        logits, mean, log_std = mix
        probs = torch.softmax(logits, -1)
        flat = probs.reshape(-1, probs.shape[-1])
        idx = torch.multinomial(flat, 1, generator=generator).reshape(*probs.shape[:-1], 1, 1)
        idx = idx.expand(*probs.shape[:-1], 1, mean.shape[-1])
        mu = mean.gather(-2, idx).squeeze(-2)
        sd = torch.exp(log_std.gather(-2, idx).squeeze(-2))
        if noise is None:
            noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        clip = self.config.coef_clip
        return (mu + temperature * sd * noise).clamp(-clip, clip)

    # ------------------------------------------------------------- XY plane (same as the VAE's)
    def xy_to_z(self, xy):
        return SpectralModel.xy_to_z(self, xy)

    def xy_plane(self):
        return XYPlane.from_buffers(self.plane_origin, self.plane_axes, self.plane_lo, self.plane_hi)

    def z_to_xy(self, z):
        return SpectralModel.z_to_xy(self, z)

    def fit_plane(self, mu, families=None):
        return SpectralModel.fit_plane(self, mu, families)


def fit_basis(model: ContinuationModel, logmag: torch.Tensor) -> dict:
    """Fit the per-bin normalisation, the PCA basis and the residual spread to frames ``[N, n_bins]``."""
    import numpy as np

    k = model.config.n_components
    x = np.asarray(logmag.detach().cpu().numpy() if torch.is_tensor(logmag) else logmag, dtype=np.float64)
    mean = x.mean(0)
    std = np.maximum(x.std(0, ddof=1), 1e-3)
    xn = (x - mean) / std
    evals, evecs = np.linalg.eigh(xn.T @ xn / xn.shape[0])
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    # Fix each component's sign (largest entry positive): the same data gives the same basis.
    basis = evecs[:, :k] * np.sign(evecs[np.abs(evecs[:, :k]).argmax(0), np.arange(k)])
    coef = xn @ basis
    scale = np.maximum(coef.std(0, ddof=1), 1e-4)
    resid = xn - coef @ basis.T
    with torch.no_grad():
        for buf, value in ((model.bin_mean, mean), (model.bin_std, std), (model.basis, basis),
                           (model.coef_scale, scale), (model.resid_std, resid.std(0, ddof=1))):
            buf.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
    return {"explained_variance": float(evals[:k].sum() / evals.sum()), "frames": int(x.shape[0])}
