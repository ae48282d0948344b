"""A CPU fast path for `SpectralModel.decode`: the same frame in numpy and numba, no torch per call.

At one to a few voices a decoded frame is a few hundred tiny tensor operations, and on CPU
torch's per-operation overhead (even traced) costs far more than their arithmetic. Here the MLP
is a handful of BLAS calls into preallocated buffers, the harmonic drawing (192 harmonics placed
at fractional bins with the Hann lobe table) and the envelope read-out are one numba kernel,
and the per-bin transcendental functions are numpy's SIMD loops over all voices at once.
Outputs match `decode` to float32 rounding (and, rarely, a neighbouring lobe-table step).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from livegen.dsp.stft import add_bin_energy, frame_mean_square
from livegen.model.spectral import (
    _LN2_12, _LN10_20, _LOBE_STEPS, _LOG_F0_BIN0, LEVEL_GAIN_DB, LEVEL_REF_SECONDS, LEVEL_REF_VELOCITY, VIBRATO_ONSET,
)


@numba.njit(cache=True, nogil=True)
def _inputs(z, pitch, velocity, t_on, t_off, neg_inv_tau, shift, scale, x):
    """x[v] = shift + scale * [z, pitch, velocity, exp(time features)] (z rows: 1 or V)."""
    v_count = x.shape[0]
    d = z.shape[1]
    n_time = neg_inv_tau.shape[1]
    for v in range(v_count):
        zr = 0 if z.shape[0] == 1 else v
        for i in range(d):
            x[v, i] = np.float32(z[zr, i]) * scale[i] + shift[i]
        x[v, d] = np.float32(pitch[v]) * scale[d] + shift[d]
        x[v, d + 1] = np.float32(velocity[v]) * scale[d + 1] + shift[d + 1]
        a = np.float32(t_on[v])
        if not a >= 0:
            a = np.float32(1e9)
        b = np.float32(t_off[v])
        if not b >= 0:
            b = np.float32(1e9)
        for j in range(n_time):
            x[v, d + 2 + j] = np.float32(math.exp(a * neg_inv_tau[0, j] + b * neg_inv_tau[1, j])) \
                * scale[d + 2 + j] + shift[d + 2 + j]


@numba.njit(cache=True, nogil=True)
def _bias_act(h, bias, slope):
    """h += bias, then LeakyReLU(slope) in place (slope < 0: no activation)."""
    for v in range(h.shape[0]):
        for i in range(h.shape[1]):
            x = h[v, i] + bias[i]
            if slope >= 0 and x < 0:
                x *= slope
            h[v, i] = x


@numba.njit(cache=True, nogil=True)
def _power(c, out):
    """out = max(|c_re|^2 + |c_im|^2, 1e-12) with c = [re | im] halves (hypot without its cost)."""
    n = out.shape[1]
    for v in range(out.shape[0]):
        for i in range(n):
            s = c[v, i] * c[v, i] + c[v, n + i] * c[v, n + i]  # c: [V, >= 2n]; extra columns ignored
            out[v, i] = s if s > np.float32(1e-12) else np.float32(1e-12)


@numba.njit(cache=True, nogil=True)
def _draw(params, pitch, jitter, jitter_gain, rayleigh, noise_gain, log_k, harm_k2, lobe,
          band_lo, band_hi, band_frac, n_bands, n_resid, halfwidth, max_inharm, log_bin0, harm, env,
          shimmer, t_on, nominal, rate, phase, spread, weight, at_harmonics, mel_scale):
    """Harmonics scatter-added at their fractional bins into `harm` [V, padded bins], and the
    harmonic / noise log envelopes read out per bin into `env` [V, 2, n_bins] (noise envelope
    plus `noise_gain` x `rayleigh` when that is given; each harmonic's log amplitude plus
    `shimmer` x weight x sin(rate t_on + phase + spread x nominal pitch) when `shimmer`; with
    `at_harmonics`, plus the harmonic envelope read at its frequency, `mel_scale` = (bin_hz / 700,
    (n_bands - 1) / log1p(nyquist / 700)))."""
    v_count = env.shape[0]
    n_bins = env.shape[2]
    n_harm = log_k.shape[0]
    width = 2 * halfwidth
    limit = np.float32(n_bins + halfwidth)
    last = params.shape[1] - 1
    steps = np.float32(_LOBE_STEPS)
    use_jitter = jitter.shape[0] > 0
    use_noise = rayleigh.shape[0] > 0
    for v in range(v_count):
        hv = harm[v]
        hv[:] = 0.0
        inharm = np.float32(1.0 / (1.0 + math.exp(-params[v, last]))) * max_inharm
        p = np.float32(min(max(pitch[v], 0.0), 135.0))
        lb0 = p * np.float32(_LN2_12) + log_bin0
        for k in range(n_harm):
            b = np.float32(math.exp(lb0 + log_k[k] + np.float32(0.5) * np.float32(math.log1p(inharm * harm_k2[k]))))
            if b >= limit:
                break  # clamped harmonics land past the visible bins, and so do all higher ones
            base = math.floor(b)
            row = int(np.rint((b - np.float32(base)) * steps))
            la = params[v, 2 * n_bands + k] if k < n_resid else np.float32(0.0)
            if use_jitter:
                la += jitter_gain * jitter[v, k]
            if shimmer != 0.0:
                la += np.float32(shimmer * weight[k] * math.sin(np.float64(np.float32(t_on[v])) * rate[k] + phase[k]
                                                                 + np.float64(np.float32(nominal[v])) * spread[k]))
            if at_harmonics:
                pos = np.float32(math.log1p(b * mel_scale[0])) * mel_scale[1]
                pos = min(max(pos, np.float32(0.0)), np.float32(n_bands - 1))
                i0 = min(math.floor(pos), n_bands - 2)
                e0 = params[v, i0]
                la += e0 + (pos - np.float32(i0)) * (params[v, i0 + 1] - e0)
            amp = np.float32(math.exp(la))
            start = int(base) + 1
            for o in range(width):
                hv[start + o] += amp * lobe[row, o]
        for i in range(n_bins):
            f = band_frac[i]
            lo = band_lo[i]
            hi = band_hi[i]
            h0 = params[v, lo]
            env[v, 0, i] = h0 + f * (params[v, hi] - h0)
            n0 = params[v, n_bands + lo]
            ne = n0 + f * (params[v, n_bands + hi] - n0)
            if use_noise:
                ne += noise_gain * np.float32(0.5) * rayleigh[v, i]  # log |c| = 0.5 log |c|^2
            env[v, 1, i] = ne


@numba.njit(cache=True, nogil=True)
def _vibrato(t_on, pitch, cents, hz, t0, t1, out):
    """out = pitch + `vibrato_semitones` (the same arithmetic, float64)."""
    for v in range(len(pitch)):
        t = np.float64(np.float32(t_on[v]))
        p = np.float64(np.float32(pitch[v]))
        ramp = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
        arg = 2 * math.pi * hz * t + 0.07 * hz / 0.29 * math.sin(2 * math.pi * 0.29 * t + 1.3 * p) + 0.5 * p
        out[v] = np.float32(p) + np.float32(cents / 100.0 * ramp * math.sin(arg))


@numba.njit(cache=True, nogil=True)
def _level_gain(params, env, harm, n_fft, target, lo, hi, n_env, at_harmonics):
    """Add to the first `n_env` params of each row the log gain that brings the reference frame
    (exp(env[:, 0]) * harm + exp(env[:, 1]), rows alike) to RMS exp(`target`) (`frame_rms_log`)."""
    n = env.shape[2]
    for v in range(params.shape[0]):
        energy = 0.0
        for i in range(n):
            h = harm[v, i] if at_harmonics else np.float32(math.exp(env[v, 0, i])) * harm[v, i]
            m = np.float64(h + np.float32(math.exp(env[v, 1, i])))
            energy = add_bin_energy(energy, m * m, i, n)
        g = target - 0.5 * math.log(frame_mean_square(max(energy, 1e-30), n_fft))
        g = np.float32(min(max(g, lo), hi))
        for j in range(n_env):
            params[v, j] += g


class NumpyFrameDecoder:
    """`model.decode` for a per-hop CPU loop: numpy arrays in, a reused `[V, n_bins]` float32 view out.

    The weights are copied once (later changes to the model are not seen); the returned array
    is overwritten by the next call, so use or copy it first. Inputs: z `[latent_dim]` (shared
    by all voices) or `[V, latent_dim]` numpy arrays; pitch, velocity, t_on, t_off `[V]`; noise
    `[V, noise_dim]` float32 C-contiguous, or None. Buffers grow if more than `max_voices` voices are asked for.
    `level=False` skips the level normalisation (for a caller that sets each frame's level itself).
    """

    def __init__(self, model, *, max_voices: int = 17, level: bool = True):
        import torch

        cfg = model.config
        self.config = cfg

        def arr(t, dtype=np.float32):
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=dtype)

        self.layers = []
        modules = list(model.decoder)
        for i, module in enumerate(modules):
            if isinstance(module, torch.nn.Linear):
                nxt = modules[i + 1] if i + 1 < len(modules) else None
                slope = float(nxt.negative_slope) if isinstance(nxt, torch.nn.LeakyReLU) else None
                self.layers.append((arr(module.weight.T), arr(module.bias), slope))
        self.neg_inv_tau = arr(model.neg_inv_tau)
        self.in_shift = arr(model.in_shift)
        self.in_scale = arr(model.in_scale)
        self.band_lo = arr(model.band_lo, np.int64)
        self.band_hi = arr(model.band_hi, np.int64)
        self.band_frac = arr(model.band_frac)
        self.log_k = arr(model.log_k)
        self.harm_k2 = arr(model.harm_k2)
        self.lobe = arr(model.lobe_table)
        # Noise -> per-bin (re, im) and per-harmonic jitter in one product: [noise_dim, 2 n_bins + K].
        self.proj = np.ascontiguousarray(np.concatenate([arr(model.noise_proj), arr(model.jitter_proj)], 1))
        self.noise_gain = np.float32(cfg.noise_gain)
        self.harm_jitter = np.float32(cfg.harm_jitter)
        self.max_inharm = np.float32(cfg.max_inharmonicity)
        self.log_bin0 = np.float32(_LOG_F0_BIN0 - math.log(cfg.bin_hz))
        self._pad_bins = cfg.n_bins + 3 * cfg.kernel_halfwidth + 1
        self._empty2 = np.zeros((0, 1), np.float32)
        self.level = cfg.level_dbfs is not None and level
        self.level_target = float(cfg.level_dbfs or 0.0) * _LN10_20
        self.level_lo, self.level_hi = (db * _LN10_20 for db in LEVEL_GAIN_DB)
        self.shimmer = float(cfg.shimmer_db) * _LN10_20
        self.at_harmonics = bool(cfg.envelope_at_harmonics)
        self.mel_scale = np.array([cfg.bin_hz / 700.0, (cfg.n_bands - 1) / math.log1p(cfg.sample_rate / 2 / 700.0)],
                                  np.float32)
        self.shimmer_rate, self.shimmer_phase, self.shimmer_spread, self.shimmer_weight = (
            arr(t, np.float64) for t in (model.shimmer_rate, model.shimmer_phase, model.shimmer_spread,
                                         model.shimmer_weight))
        self._allocate(max(1, int(max_voices)))
        # Compile (or load from numba's cache) both variants now, not on the first live hop.
        one = np.zeros(1)
        self(np.zeros(cfg.latent_dim), one + 60.0, one + 0.5, one, one - 1.0)
        self(np.zeros(cfg.latent_dim), one + 60.0, one + 0.5, one, one - 1.0,
             np.zeros((1, cfg.noise_dim), np.float32))

    def _allocate(self, n: int) -> None:
        cfg = self.config
        self.capacity = n
        self._cache = {}
        rows = 2 * n  # voices, then their level references
        self._x = np.zeros((rows, self.layers[0][0].shape[0]), np.float32)
        self._h = [np.zeros((rows, w.shape[1]), np.float32) for w, _, _ in self.layers]
        self._proj = np.zeros((n, 2 * cfg.n_bins + cfg.max_harmonics), np.float32)
        self._rayleigh = np.zeros((n, cfg.n_bins), np.float32)
        self._harm = np.zeros((rows, self._pad_bins), np.float32)
        self._env = np.zeros((rows, 2, cfg.n_bins), np.float32)
        self._out = np.zeros((n, cfg.n_bins), np.float32)
        self._ref = (np.full(n, LEVEL_REF_VELOCITY), np.full(n, LEVEL_REF_SECONDS), np.full(n, -1.0))
        self._drawn = np.zeros(n)
        for v in range(1, n + 1):  # every voice count's views now: the first hop of a count makes no array
            self._views(v)

    def _views(self, v: int):
        """The buffers cut to `v` voices, built once per voice count (slicing costs per call)."""
        views = self._cache.get(v)
        if views is None:
            cfg = self.config
            w = cfg.kernel_halfwidth
            rows = 2 * v if self.level else v
            layers = [(wt, b, np.float32(-1.0 if slope is None else slope), h[:rows])
                      for (wt, b, slope), h in zip(self.layers, self._h)]
            views = (self._x[:rows], layers, self._proj[:v, 2 * cfg.n_bins:], self._proj[:v], self._rayleigh[:v],
                     self._env[:v], self._env[:v, 0], self._env[:v, 1], self._harm[:v],
                     self._harm[:v, w:w + cfg.n_bins], self._out[:v],
                     self._h[-1][:v], self._h[-1][v:2 * v], self._x[v:2 * v], self._env[v:2 * v],
                     self._harm[v:2 * v], self._harm[v:2 * v, w:w + cfg.n_bins], tuple(a[:v] for a in self._ref),
                     self._drawn[:v])
            self._cache[v] = views
        return views

    def __call__(self, z, pitch, velocity, t_on, t_off, noise=None):
        cfg = self.config
        v = len(pitch)
        if v > self.capacity:
            self._allocate(v)
        if z.ndim == 1:
            z = z.reshape(1, -1)
        (x, layers, jitter_buf, proj, rayleigh_buf, env, env_h, env_n, harm, harm_bins, out,
         params, ref_params, ref_x, ref_env, ref_harm, ref_harm_bins, ref_in, drawn) = self._views(v)
        _inputs(z, pitch, velocity, t_on, t_off, self.neg_inv_tau, self.in_shift, self.in_scale, x)
        if self.level:
            _inputs(z, pitch, ref_in[0], ref_in[1], ref_in[2], self.neg_inv_tau, self.in_shift, self.in_scale, ref_x)
        for wt, b, slope, h in layers:
            np.dot(x, wt, out=h)
            _bias_act(h, b, slope)
            x = h
        if self.level:  # the noiseless reference frames, then their gains added to the envelopes
            _draw(ref_params, pitch, self._empty2, self.harm_jitter, self._empty2, self.noise_gain, self.log_k,
                  self.harm_k2, self.lobe, self.band_lo, self.band_hi, self.band_frac, cfg.n_bands,
                  cfg.n_resid_harmonics, cfg.kernel_halfwidth, self.max_inharm, self.log_bin0, ref_harm, ref_env,
                  0.0, t_on, pitch, self.shimmer_rate, self.shimmer_phase, self.shimmer_spread, self.shimmer_weight,
                  self.at_harmonics, self.mel_scale)
            _level_gain(params, ref_env, ref_harm_bins, cfg.n_fft, self.level_target, self.level_lo, self.level_hi,
                        2 * cfg.n_bands, self.at_harmonics)
        jitter = rayleigh = self._empty2
        if noise is not None and (cfg.harm_jitter or cfg.noise_gain):
            np.dot(noise, self.proj, out=proj)
            if cfg.harm_jitter:
                jitter = jitter_buf
            if cfg.noise_gain:
                rayleigh = rayleigh_buf
                _power(proj, rayleigh)
                np.log(rayleigh, out=rayleigh)
        if cfg.vibrato_cents:
            _vibrato(t_on, pitch, float(cfg.vibrato_cents), float(cfg.vibrato_hz), VIBRATO_ONSET[0], VIBRATO_ONSET[1],
                     drawn)
        else:
            drawn = pitch
        _draw(params, drawn, jitter, self.harm_jitter, rayleigh, self.noise_gain, self.log_k, self.harm_k2,
              self.lobe, self.band_lo, self.band_hi, self.band_frac, cfg.n_bands, cfg.n_resid_harmonics,
              cfg.kernel_halfwidth, self.max_inharm, self.log_bin0, harm, env,
              self.shimmer, t_on, pitch, self.shimmer_rate, self.shimmer_phase, self.shimmer_spread, self.shimmer_weight,
              self.at_harmonics, self.mel_scale)
        np.exp(env, out=env)
        if self.at_harmonics:
            out[:] = harm_bins
        else:
            np.multiply(env_h, harm_bins, out=out)
        out += env_n
        return out

    def noise_part(self, v: int) -> np.ndarray:
        """The noise magnitudes `[v, n_bins]` of the last call (its frame minus the harmonics; a
        reused view, overwritten by the next call)."""
        return self._views(v)[7]


class NumpyFrameEncoder:
    """`SpectralModel.encode` split for a per-hop loop: `frame` turns one log-magnitude frame into
    its encoder features (numpy, into a given row), `head` pools rows (mean and max, as `encode`)
    and returns the latent mean. Weights copied once; no torch per call, no allocation."""

    def __init__(self, model):
        cfg = model.config
        self.frame_layers = _linear_layers(model.enc_frame)
        self.head_layers = _linear_layers(model.enc_head)
        self.latent_dim = int(cfg.latent_dim)
        self.log_floor = np.float32(math.log(cfg.floor))
        self.mean = np.ascontiguousarray(model.logmag_mean.detach().cpu().numpy(), np.float32)
        self.inv_std = np.ascontiguousarray(1.0 / model.logmag_std.detach().cpu().numpy(), np.float32)
        self.features = self.frame_layers[-1][0].shape[1]
        self._x = np.zeros((1, len(self.mean)), np.float32)
        self._h = [np.zeros((1, w.shape[1]), np.float32) for w, _, _ in self.frame_layers]
        self._hx = np.zeros((1, self.head_layers[0][0].shape[0]), np.float32)
        self._hh = [np.zeros((1, w.shape[1]), np.float32) for w, _, _ in self.head_layers]

    def frame(self, logmag: np.ndarray, out: np.ndarray) -> None:
        """Encoder features of one natural-log magnitude frame `[n_bins]` into `out` `[features]`."""
        _normalise(logmag, self.log_floor, self.mean, self.inv_std, self._x[0])
        x = self._x
        for (wt, b, slope), h in zip(self.frame_layers, self._h):
            np.dot(x, wt, out=h)
            _bias_act(h, b, slope)
            x = h
        out[:] = x[0]

    def head(self, rows: np.ndarray, pitch: float, velocity: float) -> np.ndarray:
        """The latent mean `[latent_dim]` (a reused view) of frames whose features are `rows` `[T, features]`."""
        _pool(rows, np.float32((pitch - 60.0) / 24.0), np.float32(velocity), self._hx[0])
        x = self._hx
        for (wt, b, slope), h in zip(self.head_layers, self._hh):
            np.dot(x, wt, out=h)
            _bias_act(h, b, slope)
            x = h
        return x[0, :self.latent_dim]


def _linear_layers(seq) -> list:
    """(weight.T, bias, LeakyReLU slope or -1) float32 numpy per Linear of a torch Sequential."""
    import torch

    layers = []
    modules = list(seq)
    for i, module in enumerate(modules):
        if isinstance(module, torch.nn.Linear):
            nxt = modules[i + 1] if i + 1 < len(modules) else None
            slope = np.float32(nxt.negative_slope if isinstance(nxt, torch.nn.LeakyReLU) else -1.0)
            layers.append((np.ascontiguousarray(module.weight.detach().cpu().numpy().T, np.float32),
                           np.ascontiguousarray(module.bias.detach().cpu().numpy(), np.float32), slope))
    return layers


@numba.njit(cache=True, nogil=True)
def _normalise(logmag, floor, mean, inv_std, out):
    for i in range(len(out)):
        v = logmag[i] if logmag[i] > floor else floor
        out[i] = (v - mean[i]) * inv_std[i]


@numba.njit(cache=True, nogil=True)
def _pool(rows, pitch, velocity, out):
    """out = [mean over rows, max over rows, pitch, velocity] (`encode`'s pooled input)."""
    t, f = rows.shape
    for i in range(f):
        s = np.float32(0.0)
        m = rows[0, i]
        for r in range(t):
            v = rows[r, i]
            s += v
            if v > m:
                m = v
        out[i] = s / np.float32(t)
        out[f + i] = m
    out[2 * f] = pitch
    out[2 * f + 1] = velocity


@numba.njit(cache=True, nogil=True)
def _texture_inputs(z, velocity, t_on, cycle, neg_inv_tau, x):
    """x[v] = [z, (velocity - 0.5) * 2, exp(-(t_on mod cycle) / tau)] (`TextureModel.frame_logmag`'s input)."""
    d = z.shape[1]
    for v in range(x.shape[0]):
        zr = 0 if z.shape[0] == 1 else v
        for i in range(d):
            x[v, i] = np.float32(z[zr, i])
        x[v, d] = (np.float32(velocity[v]) - np.float32(0.5)) * np.float32(2.0)
        t = np.float32(t_on[v])
        t = max(t, np.float32(0.0))
        t = t - np.float32(math.floor(t / cycle)) * np.float32(cycle)
        for j in range(neg_inv_tau.shape[0]):
            x[v, d + 1 + j] = np.float32(math.exp(t * neg_inv_tau[j]))


@numba.njit(cache=True, nogil=True)
def _texture_frame(logmag, pitch, t_off, root, release, log_floor, power, noise_gain, gain, out):
    """`TextureModel.decode` after the MLP: transpose (bin i reads bin i / ratio, linear), the
    release fade, the Rayleigh factor (`power` = |c|^2, empty: none), exp."""
    n = logmag.shape[1]
    use_noise = power.shape[0] > 0
    for v in range(logmag.shape[0]):
        ratio = np.float32(2.0 ** ((np.float32(pitch[v]) - root) / 12.0))
        fade = gain
        if t_off[v] >= 0:
            fade = gain - np.float32(t_off[v]) / release
        for i in range(n):
            src = np.float32(i) / ratio
            if src > n - 1:
                val = log_floor
            else:
                i0 = int(math.floor(src))
                w = src - np.float32(i0)
                i1 = min(i0 + 1, n - 1)
                val = logmag[v, i0] + w * (logmag[v, i1] - logmag[v, i0])
            val += fade
            if use_noise:
                val += noise_gain * np.float32(0.5) * np.float32(math.log(power[v, i]))
            out[v, i] = np.float32(math.exp(val))


class NumpyTextureDecoder:
    """`TextureModel.decode` for the engine's per-hop CPU loop (numpy and numba, no torch per call),
    with `NumpyFrameDecoder`'s contract: the returned `[V, n_bins]` view is overwritten next call."""

    def __init__(self, model, *, max_voices: int = 17):
        cfg = model.config
        self.config = cfg

        def arr(t):
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

        self.layers = _linear_layers(model.decoder)
        self.neg_inv_tau = arr(model.neg_inv_tau)
        self.proj = arr(model.noise_proj)
        self._empty = np.zeros((0, cfg.n_bins), np.float32)
        # The kernels' float32 constants, made once (np.float32 makes an array: not on every hop).
        self._cycle = np.float32(cfg.cycle_s)
        self._frame_constants = (np.float32(cfg.root_pitch), np.float32(cfg.release_s), np.float32(math.log(cfg.floor)))
        self._noise_gain, self._gain = np.float32(cfg.noise_gain), np.float32(cfg.gain_db * _LN10_20)
        self._allocate(max(1, int(max_voices)))
        one = np.zeros(1)
        self(np.zeros(cfg.latent_dim), one + cfg.root_pitch, one + 0.5, one, one - 1.0)
        self(np.zeros(cfg.latent_dim), one + cfg.root_pitch, one + 0.5, one, one - 1.0,
             np.zeros((1, cfg.noise_dim), np.float32))

    def _allocate(self, n: int) -> None:
        cfg = self.config
        self.capacity = n
        self._x = np.zeros((n, self.layers[0][0].shape[0]), np.float32)
        self._h = [np.zeros((n, w.shape[1]), np.float32) for w, _, _ in self.layers]
        self._c = np.zeros((n, 2 * cfg.n_bins), np.float32)
        self._power = np.zeros((n, cfg.n_bins), np.float32)
        self._out = np.zeros((n, cfg.n_bins), np.float32)

    def __call__(self, z, pitch, velocity, t_on, t_off, noise=None):
        cfg = self.config
        v = len(pitch)
        if v > self.capacity:
            self._allocate(v)
        z2 = z.reshape(1, -1) if z.ndim == 1 else z
        x = self._x[:v]
        _texture_inputs(z2, velocity, t_on, self._cycle, self.neg_inv_tau, x)
        h_in = x
        for (wt, b, slope), h in zip(self.layers, self._h):
            out = h[:v]
            np.dot(h_in, wt, out=out)
            _bias_act(out, b, slope)
            h_in = out
        power = self._empty
        if noise is not None and cfg.noise_gain:
            c = self._c[:v]
            np.dot(noise, self.proj, out=c)
            power = self._power[:v]
            _power(c, power)
        out = self._out[:v]
        _texture_frame(h_in, pitch, t_off, *self._frame_constants, power, self._noise_gain, self._gain, out)
        return out
