"""Streaming continuation: one magnitude frame per hop, the GRU stepping once per block.

`ContinuationStream.next_frame(z)` returns the next linear-magnitude frame ``[n_bins]``. While
seed frames are queued (`feed`), they are played as they are and teacher-force the GRU; when
they run out the model takes over from the state they left. Every random draw comes from one
seeded numpy `Generator`, so the same seed, frames and z sequence give the same output.
"""

from __future__ import annotations

import numpy as np
import torch


class ContinuationStream:
    """Stateful runtime of a `ContinuationModel` (CPU). Only the GRU step uses torch; the
    per-hop synthesis and the sampling are numpy on precomputed matrices."""

    def __init__(self, model, *, seed: int = 0, temperature: float | None = None):
        from livegen.model.config import hann_frame_correlation

        self.model = model
        cfg = model.config
        self.config = cfg
        self.block = cfg.block
        self.k = cfg.n_components
        self.temperature = float(cfg.temperature if temperature is None else temperature)
        self.rng = np.random.default_rng(int(seed))
        with torch.no_grad():
            std = model.bin_std.detach().cpu().numpy().astype(np.float64)
            self._w = ((model.coef_scale.detach().cpu().numpy()[:, None] * model.basis.detach().cpu().numpy().T)
                       * std).astype(np.float32)                                   # [k, n_bins]
            self._b = model.bin_mean.detach().cpu().numpy().astype(np.float32)
            self._tex_scale = (model.resid_std.detach().cpu().numpy() * cfg.texture * std).astype(np.float32)
            self._a_mean = model.bin_mean.detach().cpu().numpy().astype(np.float32)
            self._a_w = (model.basis.detach().cpu().numpy() / std[:, None]
                         / model.coef_scale.detach().cpu().numpy()[None, :]).astype(np.float32)  # [n_bins, k]
        self._rho = float(cfg.sample_rho)
        self._tex_rho = hann_frame_correlation(cfg.n_fft, cfg.hop)
        self._eps = self.rng.standard_normal(self.k).astype(np.float32)           # AR(1) sampling noise
        self._tex = self.rng.standard_normal(cfg.n_bins).astype(np.float32)       # AR(1) texture noise
        self._h = None
        self._prev = torch.zeros(1, 1, cfg.step_dim)       # last block fed to the GRU (input)
        self._pending = np.zeros((0, self.k), np.float32)  # generated frames not played yet
        self._pending_pos = 0
        self._seed_frames: list[np.ndarray] = []           # queued seed log-magnitudes
        self._seed_pos = 0
        self._seed_block: list[np.ndarray] = []
        self._saved = None
        self._heard: list[np.ndarray] = []                 # listened frames of the current block
        self._heard_block: np.ndarray | None = None        # last complete listened block
        self.follow = 1.0
        self.smooth = float(cfg.smooth)
        self._coef_s: np.ndarray | None = None
        self.steps = 0
        self.hops = 0
        self.seeded_hops = 0

    # ----------------------------------------------------------------- seed
    def feed(self, logmag: np.ndarray) -> None:
        """Queue seed frames (natural-log magnitudes ``[T, n_bins]``) to play and teacher-force."""
        logmag = np.asarray(logmag, dtype=np.float32)
        if logmag.ndim != 2 or logmag.shape[1] != self.config.n_bins:
            raise ValueError(f"seed frames must be [T, {self.config.n_bins}], got {logmag.shape}")
        if logmag.shape[0]:
            self._seed_frames.append(logmag)

    @property
    def seeding(self) -> bool:
        return bool(self._seed_frames)

    def analyse(self, logmag: np.ndarray) -> np.ndarray:
        """Whitened coefficients of log-magnitude frames (numpy twin of `model.analyse`)."""
        c = (np.asarray(logmag, np.float32) - self._a_mean) @ self._a_w
        return np.clip(c, -self.config.coef_clip, self.config.coef_clip)

    def listen(self, logmag_row: np.ndarray) -> None:
        """Hear one frame of live input (not played): the GRU's next input becomes the heard
        block (mixed with its own by `follow`, 0..1), so the model follows or answers the input."""
        self._heard.append(self.analyse(logmag_row))
        if len(self._heard) == self.block:
            self._heard_block = np.stack(self._heard).reshape(-1)
            self._heard = []

    def save_point(self) -> None:
        """Remember the current state (the "return" action goes back to it)."""
        self._saved = (None if self._h is None else self._h.clone(), self._prev.clone())

    def return_to_saved(self) -> bool:
        """Go back to the remembered state (e.g. where the seed ended); False when none."""
        if self._saved is None:
            return False
        h, prev = self._saved
        self._h = None if h is None else h.clone()
        self._prev = prev.clone()
        self._pending = self._pending[:0]
        self._pending_pos = 0
        return True

    # ----------------------------------------------------------------- the hop
    def _step(self, z: np.ndarray, given: np.ndarray | None = None) -> None:
        """Run the GRU on the previous block; queue either `given` (seed) or a sampled block."""
        zt = torch.from_numpy(np.asarray(z, dtype=np.float32).reshape(1, -1))
        if self._heard_block is not None and given is None:
            own = self._prev.reshape(-1).numpy()
            mixed = self.follow * self._heard_block + (1.0 - self.follow) * own
            self._prev = torch.from_numpy(mixed.astype(np.float32)).reshape(1, 1, -1)
            self._heard_block = None
        with torch.inference_mode():
            (logits, mean, log_std), self._h = self.model(self._prev, zt, self._h)
        self.steps += 1
        if given is None:
            logits = logits.reshape(-1).numpy().astype(np.float64)
            p = np.exp(logits - logits.max())
            comp = int(np.searchsorted(np.cumsum(p / p.sum()), self.rng.random(), side="right"))
            comp = min(comp, p.size - 1)
            mu = mean.reshape(-1, mean.shape[-1])[comp].numpy()
            sd = np.exp(log_std.reshape(-1, log_std.shape[-1])[comp].numpy())
            # Frame-correlated draws: independent ones would flicker at the hop rate.
            r, q = self._rho, (1.0 - self._rho ** 2) ** 0.5
            fresh = self.rng.standard_normal((self.block, self.k)).astype(np.float32)
            eps = np.empty((self.block, self.k), np.float32)
            prev = self._eps
            for i in range(self.block):
                prev = r * prev + q * fresh[i]
                eps[i] = prev
            self._eps = prev
            clip = self.config.coef_clip
            block = np.clip(mu + self.temperature * sd * eps.reshape(-1), -clip, clip).astype(np.float32)
            self._pending = block.reshape(self.block, self.k)
            self._pending_pos = 0
        else:
            block = given.reshape(-1)
        self._prev = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)).reshape(1, 1, -1)

    def next_frame(self, z) -> np.ndarray:
        """The next magnitude frame ``[n_bins]`` float32 (librosa STFT scale)."""
        self.hops += 1
        if self._seed_frames:
            frames = self._seed_frames[0]
            row = frames[self._seed_pos]
            self._seed_pos += 1
            if self._seed_pos >= frames.shape[0]:
                self._seed_frames.pop(0)
                self._seed_pos = 0
            self._seed_block.append(self.analyse(row))
            if len(self._seed_block) == self.block:
                self._step(z, np.stack(self._seed_block))
                self._seed_block = []
            if not self._seed_frames:
                self._seed_block = []          # a partial last block is dropped; the model takes over
                self.save_point()
            self.seeded_hops += 1
            return np.maximum(np.exp(row) - np.float32(1e-5), 0.0).astype(np.float32)
        if self._pending_pos >= self._pending.shape[0]:
            self._step(z)
        coef = self._pending[self._pending_pos]
        self._pending_pos += 1
        if self.smooth > 0.0:
            if self._coef_s is None:
                self._coef_s = coef.copy()
            self._coef_s *= np.float32(self.smooth)
            self._coef_s += np.float32(1.0 - self.smooth) * coef
            coef = self._coef_s
        r = self._tex_rho
        self._tex *= np.float32(r)
        self._tex += np.float32((1.0 - r * r) ** 0.5) * self.rng.standard_normal(self.config.n_bins, dtype=np.float32)
        logmag = coef @ self._w + self._b + self._tex * self._tex_scale
        np.minimum(logmag, 12.0, out=logmag)
        out = np.exp(logmag) - np.float32(1e-5)
        return np.maximum(out, 0.0, out=out)

    def run(self, z, hops: int) -> np.ndarray:
        """`hops` frames at a fixed z: ``[hops, n_bins]`` (offline use and tests)."""
        return np.stack([self.next_frame(z) for _ in range(hops)])
