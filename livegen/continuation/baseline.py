"""Baseline for comparison only: the seed document's LSTM recipe (seeds/004), not a product model.

The seed: spectrograms in dB re their maximum (``librosa.amplitude_to_db(ref=np.max)``, floor
``top_db`` = 80 dB below it), min-max scaled to 0..1; windows of 64 frames in, the *next* 64
frames (offset ``window``) out; one ``LSTM(256, return_sequences=True)`` and a
``Dense(bins, sigmoid)``; MSE; Adam (lr 1e-3, no clipping), batch 32. Generation re-runs the
network on the last 64 frames and appends its last output frame, over and over.

Kept here so `livegen bench continuation --model DIR` can measure our continuation model against
it on the same data, budget and metrics (models/continuation/card.md). What differs from the seed,
and why: our STFT (24 kHz, n_fft 1024, hop 128: the engine's), so 64 frames are 0.34 s, not 1.5 s;
the 0..1 map is fixed over the training set (the loudest bin in the basis sample is 1, 80 dB below
it 0) instead of per spectrogram, because the stream has no whole-file maximum to scale by when it
plays autonomously; the seed's PNG round trip of a matplotlib figure is left out. It has no style
latent (z and the XY pad change nothing) and no sampling (MSE: one deterministic prediction).

Saved as a `livegen-continuation` directory whose config says ``"kind": "seed_lstm"``, so
`load_continuation`, the engine (`ContinuationStream` hands such a model to `SeedLSTMStream`)
and the bench take it like the real one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from livegen.continuation.model import StftConfig
from livegen.continuation.runtime import ContinuationStream
from livegen.errors import ModelError
from livegen.model.plane import XYPlane

KIND = "seed_lstm"
DB_PER_NEPER = 20.0 / math.log(10.0)   # dB per unit of natural-log magnitude
LOG_FLOOR = 1e-5


@dataclass
class SeedLSTMConfig(StftConfig):
    """Everything needed to rebuild a `SeedLSTMModel` (weights aside)."""

    kind: str = KIND
    sample_rate: int = 24000
    n_fft: int = 1024
    hop: int = 128
    hidden: int = 256              # LSTM(256)
    window: int = 64               # patch_size: frames in
    target_offset: int = 64        # targets are the frames `target_offset` later (the seed: patch_size)
    top_db: float = 80.0           # librosa.amplitude_to_db's default floor
    latent_dim: int = 2            # no style latent: z is ignored; 2 only so the engine's XY pad exists
    temperature: float = 0.0       # no sampling; present because the engine shows the parameter
    genres: list = field(default_factory=list)

    def __post_init__(self):
        if self.kind != KIND:
            raise ModelError(f"seed LSTM config kind={self.kind!r}, expected {KIND!r}")
        self.check_positive(("sample_rate", "n_fft", "hop", "hidden", "window", "target_offset", "latent_dim"),
                            label="seed LSTM config")

    def describe(self) -> str:
        return (f"seed-recipe baseline: LSTM 1x{self.hidden} + sigmoid Dense, MSE, {self.window}-frame window, "
                f"target {self.target_offset} frames ahead")


class SeedLSTMModel(nn.Module):
    """``LSTM(hidden)`` over 0..1-scaled dB frames + ``Dense(n_bins, sigmoid)`` per step."""

    def __init__(self, config: SeedLSTMConfig | None = None):
        super().__init__()
        cfg = config or SeedLSTMConfig()
        self.config = cfg
        self.family_centroids: dict[str, tuple[float, float]] = {}
        self.metadata: dict = {}
        n = cfg.n_bins
        self.lstm = nn.LSTM(n, cfg.hidden, batch_first=True)
        self.dense = nn.Linear(cfg.hidden, n)
        self.register_buffer("ref_log", torch.zeros(()))   # natural log of the magnitude mapped to 1
        self.register_buffer("bin_mean", torch.zeros(n))   # mean log magnitude (the bench's profile origin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, n_bins]`` scaled frames -> ``[B, T, n_bins]`` predictions in 0..1."""
        y, _ = self.lstm(x)
        return torch.sigmoid(self.dense(y))

    def analyse(self, logmag: torch.Tensor) -> torch.Tensor:
        """Natural-log magnitudes -> the seed's 0..1 scale (dB re the reference, floor -top_db)."""
        top = self.config.top_db
        return ((logmag - self.ref_log) * DB_PER_NEPER + top).clamp(0.0, top) / top

    def synthesise(self, x: torch.Tensor) -> torch.Tensor:
        """0..1 frames -> linear magnitude (librosa STFT scale)."""
        top = self.config.top_db
        logmag = (x * top - top) / DB_PER_NEPER + self.ref_log
        return (torch.exp(logmag) - LOG_FLOOR).clamp(min=0.0)

    def encode(self, coef: torch.Tensor):
        """No style: zeros, so callers written for the real model's style path still run."""
        zeros = torch.zeros(coef.shape[0], self.config.latent_dim)
        return zeros, zeros

    def xy_to_z(self, xy):
        xy = torch.as_tensor(xy, dtype=torch.float32)
        return torch.zeros(*xy.shape[:-1], self.config.latent_dim)

    def xy_plane(self):
        return XYPlane.flat(self.config.latent_dim)


def fit_levels(model: SeedLSTMModel, logmag) -> dict:
    """The 0..1 map's top (loudest bin of frames ``[N, n_bins]``) and the mean log spectrum."""
    x = np.asarray(logmag.detach().cpu().numpy() if torch.is_tensor(logmag) else logmag, dtype=np.float64)
    with torch.no_grad():
        model.ref_log.fill_(float(x.max()))
        model.bin_mean.copy_(torch.from_numpy(x.mean(0).astype(np.float32)))
    floor = float(np.mean(model.analyse(torch.from_numpy(x.astype(np.float32))).numpy() <= 0.0))
    return {"ref_db": float(x.max() * DB_PER_NEPER), "share_at_floor": floor, "frames": int(x.shape[0])}


def window_loss(model: SeedLSTMModel, seq: torch.Tensor) -> torch.Tensor:
    """MSE of the predictions for the frames `target_offset` after each input frame (``seq``:
    ``[B, window + target_offset, n_bins]`` scaled frames)."""
    cfg = model.config
    inputs = seq[:, :cfg.window]
    targets = seq[:, cfg.target_offset:cfg.target_offset + cfg.window]
    return torch.mean((model(inputs) - targets) ** 2)


class SeedLSTMStream:
    """`ContinuationStream`'s interface for the baseline: seed frames play and fill the window; then
    each hop re-runs the network on the last `window` frames and appends its last output (the
    seed's generation loop). Deterministic; `temperature`, `follow` and z change nothing."""

    def __init__(self, model: SeedLSTMModel, *, seed: int = 0, temperature: float | None = None):
        self.model = model
        self.config = model.config
        self.temperature = float(model.config.temperature if temperature is None else temperature)
        self.follow = 1.0
        self.smooth = 0.0
        n = model.config.n_bins
        self._window = np.zeros((model.config.window, n), np.float32)   # starts from silence, like our model's zero block
        self._saved: np.ndarray | None = None
        self._seed_frames: list[np.ndarray] = []
        self._seed_pos = 0
        self._seed_block: list = []           # attributes the engine resets when a new seed starts
        self._pending = np.zeros((0, n), np.float32)
        self._pending_pos = 0
        self._coef_s = None
        self.hops = 0
        self.seeded_hops = 0
        self.steps = 0
        self.last_work = ""

    seeding = ContinuationStream.seeding
    feed = ContinuationStream.feed
    _next_seed_row = ContinuationStream._next_seed_row
    run = ContinuationStream.run

    def _push(self, scaled: np.ndarray) -> None:
        self._window[:-1] = self._window[1:]
        self._window[-1] = scaled

    def _scale(self, logmag: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model.analyse(torch.from_numpy(np.asarray(logmag, np.float32))).numpy()

    def listen(self, logmag_row: np.ndarray) -> None:
        """Heard input enters the window (the recipe has no other way to follow it)."""
        self._push(self._scale(logmag_row))

    def save_point(self) -> None:
        self._saved = self._window.copy()

    def return_to_saved(self) -> bool:
        if self._saved is None:
            return False
        self._window[:] = self._saved
        return True

    def flush(self) -> None:
        pass

    def next_frame(self, z) -> np.ndarray:
        self.hops += 1
        if self._seed_frames:
            row = self._next_seed_row()
            self._push(self._scale(row))
            if not self._seed_frames:
                self.save_point()
            self.seeded_hops += 1
            self.last_work = ""
            return np.maximum(np.exp(row) - np.float32(LOG_FLOOR), 0.0).astype(np.float32)
        with torch.inference_mode():
            pred = self.model(torch.from_numpy(self._window)[None])[0, -1]
            out = self.model.synthesise(pred).numpy().astype(np.float32)
        self._push(pred.numpy())
        self.steps += 1
        self.last_work = "w"
        return out
