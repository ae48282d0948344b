"""Streaming continuation: one magnitude frame per hop, the GRU stepping once per block.

`ContinuationStream.next_frame(z)` returns the next linear-magnitude frame ``[n_bins]``. While
seed frames are queued (`feed`), they are played as they are and teacher-force the GRU; when
they run out the model takes over from the state they left.

Cost is spread over the hops: as soon as a block is known (sampled, or a seed block
complete), the GRU step that consumes it is started and run one stage per hop (input layer,
each GRU layer, then the mixture head and the draw) during the block being played, so no hop
pays for a whole step. The result is the same as running the step at once (`flush`). Every random draw comes from one
seeded numpy `Generator`, so the same seed, frames and z sequence give the same output.
"""

from __future__ import annotations

import numpy as np
import torch

from livegen.model.config import hann_frame_correlation


class ContinuationStream:
    """Stateful runtime of a `ContinuationModel` (CPU). Only the network stages use torch; the
    per-hop synthesis and the sampling are numpy on precomputed matrices."""

    def __new__(cls, model, **kwargs):
        # The seed-recipe baseline (`livegen.continuation.baseline`) streams its own way; handing it
        # over here lets the engine and the bench run it unchanged, for comparison.
        if cls is ContinuationStream and getattr(model.config, "kind", None) is not None:
            # Local: the baseline borrows this class's methods, so it imports this module.
            from livegen.continuation.baseline import SeedLSTMStream

            return SeedLSTMStream(model, **kwargs)
        return super().__new__(cls)

    def __init__(self, model, *, seed: int = 0, temperature: float | None = None):
        self.model = model
        cfg = model.config
        self.config = cfg
        self.block = cfg.block
        self.k = cfg.n_components
        self.temperature = float(cfg.temperature if temperature is None else temperature)
        # Separate streams for the block draws and the per-hop texture, so that when a step's
        # stages run does not change which numbers either one gets.
        draw_seq, tex_seq = np.random.SeedSequence(int(seed)).spawn(2)
        self.rng = np.random.default_rng(draw_seq)
        self.tex_rng = np.random.default_rng(tex_seq)
        with torch.no_grad():
            std = model.bin_std.detach().cpu().numpy().astype(np.float64)
            coef_scale = model.coef_scale.detach().cpu().numpy()
            basis = model.basis.detach().cpu().numpy()
            self._w = ((coef_scale[:, None] * basis.T) * std).astype(np.float32)       # [k, n_bins]
            self._b = model.bin_mean.detach().cpu().numpy().astype(np.float32)
            self._tex_scale = (model.resid_std.detach().cpu().numpy() * cfg.texture * std).astype(np.float32)
            self._a_w = (basis / std[:, None] / coef_scale[None, :]).astype(np.float32)  # [n_bins, k]
        rnn = model.rnn
        self._layers = [tuple(getattr(rnn, f"{n}_l{i}").detach() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                        for i in range(cfg.layers)]
        self._rho = float(cfg.sample_rho)
        self._tex_rho = hann_frame_correlation(cfg.n_fft, cfg.hop)
        self._eps = self.rng.standard_normal(self.k).astype(np.float32)           # AR(1) sampling noise
        self._tex = self.tex_rng.standard_normal(cfg.n_bins).astype(np.float32)       # AR(1) texture noise
        # The hop's float32 factors and buffers, made once: the hop makes no array.
        # (0-d arrays: a numpy scalar or Python number in a ufunc makes an array)
        self._tex_r = np.array(self._tex_rho, np.float32)
        self._tex_q = np.array((1.0 - self._tex_rho * self._tex_rho) ** 0.5, np.float32)
        self._smooth_of = None
        self._smooth_f = (np.zeros((), np.float32), np.zeros((), np.float32))
        self._fresh = np.zeros(cfg.n_bins, np.float32)
        self._coef_t = np.zeros(self.k, np.float32)
        self._frame = np.zeros(cfg.n_bins, np.float32)
        self._limits = (np.array(12.0, np.float32), np.array(1e-5, np.float32), np.array(0.0, np.float32))
        self._h = [torch.zeros(1, cfg.hidden) for _ in range(cfg.layers)]
        self._pending = np.zeros((0, self.k), np.float32)  # frames of the block being played
        self._pending_pos = 0
        self._next: np.ndarray | None = None               # the sampled block that plays next
        self._stage = -1                                   # -1: no step under way
        self._work_input: np.ndarray | None = None
        self._work_z: torch.Tensor | None = None
        self._work_sample = False
        self._x: torch.Tensor | None = None
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
        self.last_work = ""

    # ----------------------------------------------------------------- seed, input, return
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
        c = (np.asarray(logmag, np.float32) - self._b) @ self._a_w
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
        self.flush()
        self._saved = ([h.clone() for h in self._h], None if self._next is None else self._next.copy())

    def return_to_saved(self) -> bool:
        """Go back to the remembered state (e.g. where the seed ended); False when none."""
        if self._saved is None:
            return False
        h, nxt = self._saved
        self._h = [x.clone() for x in h]
        self._next = None if nxt is None else nxt.copy()
        self._stage = -1
        self._pending = self._pending[:0]
        self._pending_pos = 0
        return True

    # ----------------------------------------------------------------- the GRU step, in stages
    def _start(self, block: np.ndarray, z, *, sample: bool) -> None:
        self.flush()
        self._work_input = np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
        self._work_z = torch.from_numpy(np.asarray(z, dtype=np.float32).reshape(1, -1).copy())
        self._work_sample = sample
        self._stage = 0

    def _run_stage(self) -> None:
        """One stage of the step under way: 0 input layer, 1..L GRU layers, L+1 head + draw."""
        n_layers = self.config.layers
        stage = self._stage
        with torch.inference_mode():
            if stage == 0:
                x = self._work_input
                if self._heard_block is not None:
                    x = self.follow * self._heard_block + (1.0 - self.follow) * x
                    self._heard_block = None
                inp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(1, -1)
                self._x = self.model.inp(torch.cat([inp, self._work_z], 1))
                self.last_work += "i"
            elif stage <= n_layers:
                w_ih, w_hh, b_ih, b_hh = self._layers[stage - 1]
                self._x = self._h[stage - 1] = torch.gru_cell(self._x, self._h[stage - 1], w_ih, w_hh, b_ih, b_hh)
                self.last_work += "g"
            else:
                out = self.model.head(torch.cat([self._x, self._work_z], 1))
                self._next = self._draw(self.model._mixture(out))
                self.last_work += "h"
        self._stage = stage + 1
        if self._stage > n_layers + (1 if self._work_sample else 0):
            self._stage = -1
            self.steps += 1

    def flush(self) -> None:
        """Finish the step under way now (needed before its result is used)."""
        while self._stage >= 0:
            self._run_stage()

    def _draw(self, mix) -> np.ndarray:
        logits, mean, log_std = mix
        logits = logits.reshape(-1).numpy().astype(np.float64)
        p = np.exp(logits - logits.max())
        comp = min(int(np.searchsorted(np.cumsum(p / p.sum()), self.rng.random(), side="right")), p.size - 1)
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
        block = np.clip(mu + self.temperature * sd * eps.reshape(-1), -clip, clip)
        return block.astype(np.float32).reshape(self.block, self.k)

    def _next_seed_row(self) -> np.ndarray:
        """The next queued seed frame (log magnitudes), taken off the queue."""
        frames = self._seed_frames[0]
        row = frames[self._seed_pos]
        self._seed_pos += 1
        if self._seed_pos >= frames.shape[0]:
            self._seed_frames.pop(0)
            self._seed_pos = 0
        return row

    # ----------------------------------------------------------------- the hop
    def next_frame(self, z) -> np.ndarray:
        """The next magnitude frame ``[n_bins]`` float32 (librosa STFT scale): a buffer the next
        call overwrites."""
        self.hops += 1
        self.last_work = ""
        if self._stage >= 0:
            self._run_stage()
        if self._seed_frames:
            row = self._next_seed_row()
            self._seed_block.append(self.analyse(row))
            if len(self._seed_block) == self.block:
                self._start(np.stack(self._seed_block), z, sample=True)
                self._seed_block = []
            if not self._seed_frames:
                self._seed_block = []          # a partial last block is dropped; the model takes over
                self.save_point()
            self.seeded_hops += 1
            return np.maximum(np.exp(row) - np.float32(1e-5), 0.0).astype(np.float32)
        if self._pending_pos >= self._pending.shape[0]:
            if self._next is None:             # nothing to continue from: start from a zero block
                self._start(np.zeros(self.config.step_dim, np.float32), z, sample=True)
            self.flush()
            self._pending, self._pending_pos = self._next, 0
            self._next = None
            self._start(self._pending, z, sample=True)
        coef = self._pending[self._pending_pos]
        self._pending_pos += 1
        if self.smooth > 0.0:
            if self._coef_s is None:
                self._coef_s = coef.copy()
            if self.smooth != self._smooth_of:
                self._smooth_of = self.smooth
                self._smooth_f = (np.array(self.smooth, np.float32), np.array(1.0 - self.smooth, np.float32))
            self._coef_s *= self._smooth_f[0]
            self._coef_s += np.multiply(self._smooth_f[1], coef, out=self._coef_t)
            coef = self._coef_s
        # The same float32 operations as `coef @ w + b + tex * scale`, in buffers kept for the hop.
        self._tex *= self._tex_r
        self.tex_rng.standard_normal(out=self._fresh, dtype=np.float32)
        self._tex += np.multiply(self._tex_q, self._fresh, out=self._fresh)
        logmag = np.matmul(coef, self._w, out=self._frame)
        logmag += self._b
        logmag += np.multiply(self._tex, self._tex_scale, out=self._fresh)
        top, floor, zero = self._limits
        np.minimum(logmag, top, out=logmag)
        out = np.exp(logmag, out=logmag)
        np.subtract(out, floor, out=out)
        return np.maximum(out, zero, out=out)

    def run(self, z, hops: int) -> np.ndarray:
        """`hops` frames at a fixed z: ``[hops, n_bins]`` (offline use and tests)."""
        return np.stack([self.next_frame(z).copy() for _ in range(hops)])
