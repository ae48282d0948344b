"""The spectral VAE: a note encoder and a per-frame harmonic-plus-noise decoder.

The decoder is stateless per frame so that it streams: from (z, continuous pitch, velocity,
time since note-on, time since note-off) an MLP predicts a harmonic spectral envelope (on a mel
axis, read at each harmonic's frequency), per-harmonic corrections for the lowest harmonics, an
inharmonicity coefficient and a noise envelope. The frame is then *drawn*: every harmonic
k*f0*sqrt(1+B k^2) below Nyquist is placed at its fractional bin with the Hann window's lobe
shape, so pitch is exact and continuous (bends, quarter tones) rather than snapped to the
pitches seen in training; the noise envelope is modulated by the caller's standard-normal draws,
which gives real frames' Rayleigh-like fluctuation. Everything is batched over voices and
harmonics: no Python loops in `decode`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from livegen.dsp.stft import HANN_MEAN_SQUARE
from livegen.model.config import ModelConfig
from livegen.model.plane import XYPlane

# E[log |u + iv|] for u, v ~ N(0, 1): the noise projection is divided by exp() of it so that the
# Rayleigh factor's geometric mean is 1, and training on the noiseless frame (log domain)
# matches the noisy one on average.
RAYLEIGH_LOG_MEAN = 0.5 * (math.log(2.0) - 0.5772156649015329)
_TAU_ON = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
_TAU_OFF = (0.02, 0.06, 0.2, 0.6, 2.0)
_LN2_12 = math.log(2.0) / 12.0
_LOG_F0_BIN0 = math.log(440.0) - 69.0 * _LN2_12
_LN10_20 = math.log(10.0) / 20.0

LEVEL_REF_VELOCITY = 100.0 / 127.0
LEVEL_REF_SECONDS = 0.3
LEVEL_GAIN_DB = (-30.0, 40.0)
"""The level normalisation's gain stays in this range (a timbre that fades to silence off the
plane is lifted by at most 40 dB, not to full level)."""
PLAYING_DEFAULTS = {"level_dbfs": -12.5, "vibrato_cents": 10.0, "vibrato_hz": 5.5, "shimmer_db": 2.0,
                    "envelope_at_harmonics": True}
"""The playing settings a newly trained model gets (the bundled default model's; docs/sound.md
has how they were chosen): a velocity-100 note near -19 dBFS at the engine's default gain."""
VIBRATO_ONSET = (0.15, 0.45)
"""Seconds after note-on over which the vibrato fades in (players start a note straight)."""
SHIMMER_HZ = (0.7, 6.0)


def frame_rms_log(frames: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Natural log of the RMS of the signal whose periodic-Hann `center=False` |STFT| frames are `frames`.

    Parseval over the full spectrum, divided by the window's mean square (3/8): a sine of amplitude
    A (RMS A/sqrt 2) peaks at A n_fft / 4 and gives log(A / sqrt 2).
    """
    e = frames.square()
    energy = 2.0 * e.sum(1) - e[:, 0] - e[:, -1]
    return 0.5 * torch.log(energy.clamp(min=1e-30) / (n_fft * n_fft * HANN_MEAN_SQUARE))


def life_tables(max_harmonics: int):
    """Per-harmonic shimmer rate (rad/s), phase and phase step per semitone, and weight: golden-ratio
    sequences, so neighbouring harmonics and neighbouring notes wander independently."""
    k = torch.arange(1, max_harmonics + 1, dtype=torch.float64)
    frac = lambda a: torch.remainder(k * a, 1.0)  # noqa: E731
    rate = 2 * math.pi * (SHIMMER_HZ[0] + (SHIMMER_HZ[1] - SHIMMER_HZ[0]) * frac(0.6180339887498949))
    phase = 2 * math.pi * frac(0.41421356237309515)
    spread = 2 * math.pi * frac(0.7548776662466927)
    weight = torch.ones(max_harmonics, dtype=torch.float64)
    weight[0] = 0.5  # the fundamental steadier than its overtones
    return rate, phase, spread, weight


def vibrato_semitones(t_on, pitch, *, cents: float, hz: float):
    """The vibrato's pitch offset: delayed onset, rate wandering +-7 %, phase set by the pitch."""
    t = t_on.double() if isinstance(t_on, torch.Tensor) else t_on
    ramp = ((t - VIBRATO_ONSET[0]) / (VIBRATO_ONSET[1] - VIBRATO_ONSET[0])).clamp(0.0, 1.0)
    p = pitch.double()
    arg = 2 * math.pi * hz * t + 0.07 * hz / 0.29 * torch.sin(2 * math.pi * 0.29 * t + 1.3 * p) + 0.5 * p
    return (cents / 100.0 * ramp * torch.sin(arg)).to(pitch.dtype)


def _mel(f):
    return torch.log1p(f / 700.0)


def _band_positions(n_bands: int, n_bins: int, nyquist: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each bin: the two neighbouring band centres (equally spaced in mel) and the weight of
    the upper one, so an envelope reads out with two index_selects and a lerp."""
    freqs = torch.linspace(0.0, nyquist, n_bins, dtype=torch.float64)
    pos = _mel(freqs) / _mel(torch.tensor(nyquist, dtype=torch.float64)) * (n_bands - 1)
    i0 = pos.floor().clamp(max=n_bands - 2).long()
    return i0, i0 + 1, (pos - i0).float()


def hann_lobe(d: torch.Tensor) -> torch.Tensor:
    """|DFT| of a periodic Hann window at `d` bins from a sinusoid, normalised to 1 at d = 0."""
    den = 1.0 - d * d
    near = den.abs() < 1e-9
    return torch.where(near, torch.full_like(d, 0.5), torch.sinc(d) / torch.where(near, torch.ones_like(d), den)).abs()


def _lobe_polynomials(halfwidth: int, degree: int = 6) -> torch.Tensor:
    """[degree, 2*halfwidth] polynomial coefficients in the fractional bin position.

    A harmonic at bin b = floor(b) + frac touches bins floor(b) + o, o in (-w, w]; the lobe value
    there is a smooth function of frac, fitted once here (max error ~2e-5) so that `render`
    evaluates the whole kernel with one power and one matmul instead of a dozen small ops.
    """
    frac = torch.linspace(0.0, 1.0, 2001, dtype=torch.float64)
    vander = frac.unsqueeze(1) ** torch.arange(degree, dtype=torch.float64)
    offsets = torch.arange(-halfwidth + 1, halfwidth + 1, dtype=torch.float64)
    target = hann_lobe(offsets.unsqueeze(0) - frac.unsqueeze(1))
    return torch.linalg.lstsq(vander, target).solution.float()


_LOBE_STEPS = 1024


def _lobe_table(halfwidth: int) -> torch.Tensor:
    """[_LOBE_STEPS + 1, 2*halfwidth] lobe values at fractional positions k/_LOBE_STEPS."""
    frac = torch.linspace(0.0, 1.0, _LOBE_STEPS + 1, dtype=torch.float64)
    offsets = torch.arange(-halfwidth + 1, halfwidth + 1, dtype=torch.float64)
    return hann_lobe(offsets.unsqueeze(0) - frac.unsqueeze(1)).float()


def register_plane_buffers(module: nn.Module, latent_dim: int, n_bins: int) -> None:
    """The saved XY plane (origin, two axes, 2-98 % spread) and encoder input statistics."""
    module.register_buffer("plane_origin", torch.zeros(latent_dim))
    axes = torch.zeros(2, latent_dim)
    axes[0, 0] = axes[1, 1] = 1.0
    module.register_buffer("plane_axes", axes)
    module.register_buffer("plane_lo", torch.full((2,), -2.0))
    module.register_buffer("plane_hi", torch.full((2,), 2.0))
    module.register_buffer("logmag_mean", torch.zeros(n_bins))
    module.register_buffer("logmag_std", torch.ones(n_bins))


def rayleigh_log(noise: torch.Tensor, proj: torch.Tensor, n_bins: int) -> torch.Tensor:
    """log of each bin's Rayleigh factor `[V, n_bins]`: noise draws projected onto (re, im) pairs."""
    c = (noise @ proj).view(-1, 2, n_bins)
    return torch.log(torch.hypot(c[:, 0], c[:, 1]).clamp(min=1e-6))


def pitch_to_hz(pitch: torch.Tensor) -> torch.Tensor:
    """Continuous MIDI pitch -> frequency in Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * torch.exp2((pitch - 69.0) / 12.0)


class SpectralModel(nn.Module):
    """Pitch- and velocity-conditioned spectral VAE whose decoder runs one frame per hop.

    Build it with `random_model` or `load_model`; `decode` returns linear magnitudes on
    librosa's STFT scale, `[voices, n_bins]` float32.
    """

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        cfg = config or ModelConfig()
        self.config = cfg
        self.family_centroids: dict[str, tuple[float, float]] = {}
        self.metadata: dict = {}
        act = nn.LeakyReLU(0.1)
        n_time = len(_TAU_ON) + len(_TAU_OFF) + 1
        n_in = cfg.latent_dim + 2 + n_time
        layers: list[nn.Module] = []
        for i in range(cfg.n_layers):
            layers += [nn.Linear(n_in if i == 0 else cfg.hidden, cfg.hidden), act]
        # Output layout: [harmonic envelope | noise envelope | low-harmonic corrections | inharmonicity]
        self.n_out = 2 * cfg.n_bands + cfg.n_resid_harmonics + 1
        layers.append(nn.Linear(cfg.hidden, self.n_out))
        self.decoder = nn.Sequential(*layers)

        self.enc_frame = nn.Sequential(
            nn.Linear(cfg.n_bins, cfg.enc_hidden), act, nn.Linear(cfg.enc_hidden, cfg.enc_hidden), act,
        )
        self.enc_head = nn.Sequential(
            nn.Linear(2 * cfg.enc_hidden + 2, cfg.enc_hidden), act, nn.Linear(cfg.enc_hidden, 2 * cfg.latent_dim),
        )

        nyq = cfg.sample_rate / 2
        w = cfg.kernel_halfwidth
        k = torch.arange(1, cfg.max_harmonics + 1, dtype=torch.float32)
        # Conditioning: input scale/shift (pitch, velocity) and time constants, as one affine map.
        shift = torch.zeros(n_in)
        scale = torch.ones(n_in)
        shift[cfg.latent_dim] = -60.0 / 24.0
        scale[cfg.latent_dim] = 1.0 / 24.0
        taus = torch.zeros(2, n_time)
        taus[0, :len(_TAU_ON)] = -1.0 / torch.tensor(_TAU_ON)
        taus[1, len(_TAU_ON):-1] = -1.0 / torch.tensor(_TAU_OFF)
        taus[1, -1] = -1e-6  # 1 once released, 0 while held (held notes map t_off to 1e9 below)
        band_lo, band_hi, band_frac = _band_positions(cfg.n_bands, cfg.n_bins, nyq)
        # Derived from the config alone: not saved.
        for name, value in {
            "in_shift": shift, "in_scale": scale, "neg_inv_tau": taus,
            "band_lo": band_lo, "band_hi": band_hi, "band_frac": band_frac,
            "log_k": torch.log(k), "harm_k2": k * k,
            "lobe_offsets": torch.arange(1, 2 * w + 1),  # o + w for o in (-w, w]
            "lobe_poly": _lobe_polynomials(w), "lobe_table": _lobe_table(w),
        }.items():
            self.register_buffer(name, value, persistent=False)
        for name, value in zip(("shimmer_rate", "shimmer_phase", "shimmer_spread", "shimmer_weight"),
                               life_tables(cfg.max_harmonics)):
            self.register_buffer(name, value, persistent=False)
        self._pad_bins = cfg.n_bins + 3 * w + 1
        # Saved: the random projections that turn noise draws into per-bin / per-harmonic
        # fluctuations, the XY plane fitted to the training encodings, encoder input statistics.
        self.register_buffer("noise_proj", torch.zeros(cfg.noise_dim, 2 * cfg.n_bins))
        self.register_buffer("jitter_proj", torch.zeros(cfg.noise_dim, cfg.max_harmonics))
        register_plane_buffers(self, cfg.latent_dim, cfg.n_bins)

    # ---------------------------------------------------------------- decoder
    def decode_params(self, z, pitch, velocity, t_on, t_off):
        """The MLP's raw output `[V, n_out]` (envelopes in natural-log magnitude)."""
        tt = torch.stack([t_on, t_off], 1)
        tt = torch.where(tt >= 0, tt, 1e9)
        x = torch.cat([z, pitch.unsqueeze(1), velocity.unsqueeze(1), torch.exp(tt @ self.neg_inv_tau)], 1)
        return self.decoder(torch.addcmul(self.in_shift, x, self.in_scale))

    def render(self, params, pitch, noise=None, shimmer=None):
        """Draw harmonics and noise from `params` into linear magnitude frames `[V, n_bins]`
        (`shimmer`: `[V, max_harmonics]` log-amplitude offsets of the harmonics)."""
        cfg = self.config
        nb, nr = cfg.n_bands, cfg.n_resid_harmonics
        v = params.shape[0]
        bands = params[:, :2 * nb].reshape(2 * v, nb)                                 # harmonic, noise
        env = torch.lerp(bands.index_select(1, self.band_lo), bands.index_select(1, self.band_hi),
                         self.band_frac).view(v, 2, cfg.n_bins)
        harm_env, noise_env = env[:, 0], env[:, 1]
        inharm = torch.sigmoid(params[:, -1:]) * cfg.max_inharmonicity
        # log of harmonic k's frequency in bins: log f0 + log k + 0.5 log(1 + B k^2)
        log_b = (pitch.clamp(0.0, 135.0).unsqueeze(1) * _LN2_12 + (_LOG_F0_BIN0 - math.log(cfg.bin_hz))
                 + self.log_k + 0.5 * torch.log1p(inharm * self.harm_k2))
        b = torch.exp(log_b).clamp(max=cfg.n_bins + cfg.kernel_halfwidth)
        base = b.floor()
        if torch.is_grad_enabled():
            # Differentiable in the fractional position (the inharmonicity learns through it).
            powers = (b - base).unsqueeze(2).expand(v, cfg.max_harmonics, self.lobe_poly.shape[0] - 1).cumprod(2)
            lobe = torch.addmm(self.lobe_poly[0], powers.view(-1, powers.shape[2]), self.lobe_poly[1:])
        else:
            # Inference: the same lobe from a table (1/1024-bin steps, error < 1e-3): 3 cheap ops.
            lobe = self.lobe_table.index_select(0, ((b - base) * _LOBE_STEPS).round().long().view(-1))
        lobe = lobe.view(v, cfg.max_harmonics, 2 * cfg.kernel_halfwidth)                # [V, K, W]
        loga = nn.functional.pad(params[:, 2 * nb:2 * nb + nr], (0, cfg.max_harmonics - nr))
        if noise is not None and cfg.harm_jitter:
            loga = torch.addmm(loga, noise, self.jitter_proj, alpha=cfg.harm_jitter)
        if shimmer is not None:
            loga = loga + shimmer
        if cfg.envelope_at_harmonics:
            loga = loga + self._envelope_at(bands.view(v, 2, nb)[:, 0], b)
        span = cfg.max_harmonics * 2 * cfg.kernel_halfwidth
        idx = (base.long().unsqueeze(2) + self.lobe_offsets).view(v, span)
        harm = torch.zeros(v, self._pad_bins, dtype=params.dtype, device=params.device)
        harm = harm.scatter_add(1, idx, (torch.exp(loga).unsqueeze(2) * lobe).view(v, span))
        harm = harm[:, cfg.kernel_halfwidth:cfg.kernel_halfwidth + cfg.n_bins]
        if noise is not None and cfg.noise_gain:
            noise_env = torch.add(noise_env, rayleigh_log(noise, self.noise_proj, cfg.n_bins), alpha=cfg.noise_gain)
        if cfg.envelope_at_harmonics:
            return torch.exp(noise_env) + harm
        return torch.addcmul(torch.exp(noise_env), torch.exp(harm_env), harm)

    def _envelope_at(self, bands, b):
        """The band envelope `bands [V, n_bands]` read at harmonic positions `b [V, K]` (in bins)."""
        cfg = self.config
        nb = cfg.n_bands
        nyq = cfg.sample_rate / 2
        pos = (torch.log1p(b * (cfg.bin_hz / 700.0)) * ((nb - 1) / math.log1p(nyq / 700.0))).clamp(0.0, nb - 1.0)
        i0 = pos.floor().clamp(max=nb - 2)
        lo = bands.gather(1, i0.long())
        return lo + (pos - i0) * (bands.gather(1, i0.long() + 1) - lo)

    def decode(self, z, pitch, velocity, t_on, t_off, noise=None):
        """One magnitude frame per voice.

        z: [V, latent_dim]; pitch: [V] continuous MIDI; velocity: [V] in 0..1;
        t_on: [V] seconds since note-on; t_off: [V] seconds since note-off (negative while held);
        noise: [V, noise_dim] standard-normal draws from the caller's seeded RNG (None = the
        noiseless mean frame). Returns [V, n_bins] float32 linear magnitude (librosa STFT scale).
        """
        cfg = self.config
        params = self.decode_params(z, pitch, velocity, t_on, t_off)
        if cfg.level_dbfs is not None:
            params = self.level(params, z, pitch)
        drawn, shimmer = pitch, None
        if cfg.vibrato_cents:
            drawn = pitch + vibrato_semitones(t_on, pitch, cents=cfg.vibrato_cents, hz=cfg.vibrato_hz)
        if cfg.shimmer_db:
            arg = (t_on.double().unsqueeze(1) * self.shimmer_rate + self.shimmer_phase
                   + pitch.double().unsqueeze(1) * self.shimmer_spread)
            shimmer = (cfg.shimmer_db * _LN10_20 * self.shimmer_weight * torch.sin(arg)).to(params.dtype)
        return self.render(params, drawn, noise, shimmer)

    def level(self, params, z, pitch):
        """`params` with both envelopes moved by the gain that brings the held reference note at
        the same z and pitch to `config.level_dbfs` (see `ModelConfig.level_dbfs`)."""
        cfg = self.config
        ref = self.decode_params(z, pitch, torch.full_like(pitch, LEVEL_REF_VELOCITY),
                                 torch.full_like(pitch, LEVEL_REF_SECONDS), torch.full_like(pitch, -1.0))
        gain = (cfg.level_dbfs * _LN10_20 - frame_rms_log(self.render(ref, pitch), cfg.n_fft)).clamp(
            LEVEL_GAIN_DB[0] * _LN10_20, LEVEL_GAIN_DB[1] * _LN10_20)
        nb2 = 2 * cfg.n_bands
        return torch.cat([params[:, :nb2] + gain.unsqueeze(1), params[:, nb2:]], 1)

    def frame_decoder(self, *, trace: bool = True):
        """A callable with `decode`'s signature for a per-hop loop, about twice as fast on CPU.

        It is `decode` traced with TorchScript (two graphs: with and without noise), which cuts
        the per-op overhead that dominates a one-voice frame; outputs are identical to `decode`.
        Build it after the model is on its device and its config final (values such as
        `noise_gain` are baked in). Falls back to plain `decode` if tracing fails.
        """
        if not trace:
            return self.decode
        import warnings

        model = self

        class _Decode(nn.Module):
            def __init__(self, with_noise: bool):
                super().__init__()
                self.model = model
                self.with_noise = with_noise

            def forward(self, z, pitch, velocity, t_on, t_off, noise):
                return self.model.decode(z, pitch, velocity, t_on, t_off, noise if self.with_noise else None)

        cfg = self.config
        dev = self.plane_origin.device
        v = 3
        example = (torch.zeros(v, cfg.latent_dim, device=dev), torch.full((v,), 60.0, device=dev),
                   torch.full((v,), 0.5, device=dev), torch.full((v,), 0.1, device=dev),
                   torch.full((v,), -1.0, device=dev), torch.zeros(v, cfg.noise_dim, device=dev))
        try:
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")
                graphs = [torch.jit.freeze(torch.jit.trace(_Decode(w).eval(), example, check_trace=False))
                          for w in (False, True)]
        except Exception:  # TorchScript missing or unable: the eager path is always correct
            return self.decode
        plain, noisy = graphs

        def decode(z, pitch, velocity, t_on, t_off, noise=None):
            if noise is None:
                return plain(z, pitch, velocity, t_on, t_off, z)  # noise argument unused in this graph
            return noisy(z, pitch, velocity, t_on, t_off, noise)

        return decode

    def advance_noise(self, prev, fresh):
        """AR(1) step that keeps draws standard normal but correlated like overlapping STFT frames.

        The engine may keep one noise state per voice: `state = model.advance_noise(state, randn)`;
        independent draws each hop also work, with livelier (less correlated) noise.
        """
        rho = self.config.noise_rho
        return rho * prev + math.sqrt(max(0.0, 1.0 - rho * rho)) * fresh

    # ---------------------------------------------------------------- encoder
    def encode(self, logmag_frames, pitch, velocity):
        """A note or excerpt -> latent (mu, logvar).

        logmag_frames: [B, T, n_bins] natural-log magnitudes (log |STFT|, any floor); pitch [B]
        MIDI; velocity [B] in 0..1.
        """
        x = (logmag_frames.clamp(min=math.log(self.config.floor)) - self.logmag_mean) / self.logmag_std
        h = self.enc_frame(x)
        h = torch.cat([h.mean(1), h.amax(1), ((pitch - 60.0) / 24.0).unsqueeze(1), velocity.unsqueeze(1)], 1)
        out = self.enc_head(h)
        d = self.config.latent_dim
        return out[:, :d], out[:, d:].clamp(-10.0, 5.0)
    # ---------------------------------------------------------------- XY plane
    def xy_to_z(self, xy):
        """XY pad position(s) in 0..1 `[..., 2]` -> latent `[..., latent_dim]` on the fitted plane."""
        xy = torch.as_tensor(xy, dtype=self.plane_origin.dtype, device=self.plane_origin.device)
        coords = self.plane_lo + xy * (self.plane_hi - self.plane_lo)
        return self.plane_origin + coords @ self.plane_axes

    def xy_plane(self):
        """The plane as numpy (`XYPlane`), for the engine's per-hop mapping without torch."""
        return XYPlane.from_buffers(self.plane_origin, self.plane_axes, self.plane_lo, self.plane_hi)

    def z_to_xy(self, z):
        """Project latents onto the plane, in the pad's 0..1 coordinates (may leave 0..1)."""
        z = torch.as_tensor(z, dtype=self.plane_origin.dtype, device=self.plane_origin.device)
        coords = (z - self.plane_origin) @ self.plane_axes.T
        return (coords - self.plane_lo) / (self.plane_hi - self.plane_lo)

    def fit_plane(self, mu, families=None, *, fit_on=None, lo_pct=2.0, hi_pct=98.0):
        """Fit the XY plane to training encodings `mu [N, D]`: mean, 2 principal directions and
        their 2-98 % spread (N(0,1) prior samples were half as varied as real instruments).

        `fit_on` (bool `[N]`) picks the encodings that define the plane (the pitched instruments,
        so every point of the pad plays a note); centroids are given for every family in `families`,
        clamped to the pad.
        """
        mu = mu.detach().to(torch.float64).cpu()
        basis = mu if fit_on is None else mu[torch.as_tensor(fit_on, dtype=torch.bool)]
        origin = basis.mean(0)
        _, _, vh = torch.linalg.svd(basis - origin, full_matrices=False)
        axes = vh[:2]
        coords = (basis - origin) @ axes.T
        lo = torch.quantile(coords, lo_pct / 100.0, dim=0)
        hi = torch.quantile(coords, hi_pct / 100.0, dim=0)
        hi = torch.maximum(hi, lo + 1e-3)
        with torch.no_grad():
            self.plane_origin.copy_(origin.float())
            self.plane_axes.copy_(axes.float())
            self.plane_lo.copy_(lo.float())
            self.plane_hi.copy_(hi.float())
        if families is not None:
            xy = (((mu - origin) @ axes.T - lo) / (hi - lo)).float()
            cent = {}
            for name in sorted(set(families)):
                sel = torch.tensor([f == name for f in families])
                m = xy[sel].mean(0).clamp(0.0, 1.0)
                cent[name] = (round(float(m[0]), 4), round(float(m[1]), 4))
            self.family_centroids = cent
