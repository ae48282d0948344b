"""Note batches for training and evaluation, drawn from cached log-magnitude features.

A batch is B notes; for each, T frames spread over the note feed the encoder (-> z) and F frames
with their times since note-on/off are the decoder's targets. Frame m of a note covers samples
[m*hop, m*hop + n_fft) from the note-on, so its t_on is m*hop/sr; the engine asks for the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from livegen.data.datasets import open_dataset
from livegen.data.features import compute_features
from livegen.errors import ParameterError


def default_cache_dir():
    """Where features are cached unless told: the user's cache folder (never inside a model)."""
    from pathlib import Path

    import platformdirs

    return Path(platformdirs.user_cache_dir("livegen")) / "features"


def open_features(data_dir, *, cache_dir, sample_rate: int, n_fft: int, hop: int, progress: bool = True):
    """Open a dataset folder (any layout `livegen.data` knows) and compute/re-use its features."""
    dataset = open_dataset(data_dir)
    return compute_features(dataset, sample_rate=sample_rate, n_fft=n_fft, hop=hop, cache_dir=cache_dir,
                            progress=progress)


@dataclass
class NoteBatch:
    enc_frames: torch.Tensor   # [B, T, bins] natural-log magnitude
    pitch: torch.Tensor        # [B]
    velocity: torch.Tensor     # [B] 0..1
    frames: torch.Tensor       # [B, F, bins] targets (natural-log magnitude)
    t_on: torch.Tensor         # [B, F]
    t_off: torch.Tensor        # [B, F]
    log_peak: torch.Tensor     # [B] log of the note's peak magnitude (sets the dB floor)
    rows: np.ndarray           # [B] row numbers in the split
    frame_pitch: torch.Tensor | None = None  # [B, F] per-target-frame pitch (notes cut from recordings)

    def to(self, device):
        return NoteBatch(*(v.to(device) if isinstance(v, torch.Tensor) else v for v in self.__dict__.values()))


class NoteSampler:
    """Random (or fixed) note batches from one split of a `FeatureSet`.

    Only pitched notes (pitch >= 0) are used: the model is pitch-conditioned.
    """

    def __init__(self, features, split: str, *, min_frames: int = 8):
        self.features = features
        self.hop_s = features.hop / features.sample_rate
        rows = [r for r in features.split(split).index if r["kind"] == "note" and r["pitch"] >= 0
                and r["stop"] - r["start"] >= min_frames]
        if not rows:
            raise ParameterError(
                f"the {split!r} split of {features.path} has no pitched notes with >= {min_frames} frames; "
                "the spectral model trains on single notes (e.g. `livegen dataset gm` or NSynth)")
        self.rows = rows
        self.start = np.array([r["start"] for r in rows], dtype=np.int64)
        self.length = np.array([r["stop"] - r["start"] for r in rows], dtype=np.int64)
        self.release = np.array([r["release_frame"] for r in rows], dtype=np.int64)
        # Continuous pitch: notes rendered off the semitone grid (`dataset gm --cents`) teach the
        # decoder the pitches between semitones that bends and quarter tones reach.
        self.pitch = np.array([r["pitch"] + r.get("cents", 0.0) / 100.0 for r in rows], dtype=np.float32)
        vel = np.array([r["velocity"] for r in rows], dtype=np.float32)
        self.velocity = np.where(vel < 0, 100.0, vel) / 127.0
        self.family = [r["family"] for r in rows]
        self.instrument = [r["instrument"] for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def _read(self, flat: np.ndarray) -> np.ndarray:
        order = np.argsort(flat, kind="stable")
        out = np.empty((flat.size, self.features.bins), np.float32)
        out[order] = self.features.frames[flat[order]]
        return out

    def times(self, note: np.ndarray, offsets: np.ndarray):
        t_on = offsets * self.hop_s
        rel = self.release[note][..., None] if offsets.ndim == 2 else self.release[note]
        t_off = np.where(rel >= 0, (offsets - rel) * self.hop_s, -1.0)
        return t_on.astype(np.float32), t_off.astype(np.float32)

    def batch(self, rng: np.random.Generator, n_notes: int, n_frames: int, n_enc: int,
              onset_share: float = 0.35, notes: np.ndarray | None = None) -> NoteBatch:
        """`n_notes` random notes (or `notes`), `n_enc` encoder frames and `n_frames` targets each.

        A share of the targets is drawn from the first 0.25 s, where attacks change fastest.
        """
        note = rng.integers(0, len(self), n_notes) if notes is None else np.asarray(notes)
        b = note.size
        length = self.length[note][:, None]
        enc_off = np.sort(rng.integers(0, length, (b, n_enc)), axis=1)
        u = rng.random((b, n_frames))
        early = np.minimum(length, max(1, int(round(0.25 / self.hop_s))))
        tgt_off = np.where(rng.random((b, n_frames)) < onset_share, (u * early).astype(np.int64),
                           (u * length).astype(np.int64))
        return self._make(note, enc_off, tgt_off)

    def note_batch(self, notes: np.ndarray, n_enc: int, frame_offsets: np.ndarray | None = None) -> NoteBatch:
        """Deterministic batch: encoder frames evenly spread over each note; targets = `frame_offsets`
        (clipped to each note) or the encoder frames themselves."""
        note = np.asarray(notes)
        length = self.length[note][:, None]
        enc_off = np.minimum((np.arange(n_enc)[None, :] * length) // n_enc, length - 1)
        tgt_off = enc_off if frame_offsets is None else np.minimum(np.asarray(frame_offsets)[None, :], length - 1)
        return self._make(note, enc_off, np.broadcast_to(tgt_off, (note.size, tgt_off.shape[-1])))

    def _make(self, note, enc_off, tgt_off) -> NoteBatch:
        b, t = enc_off.shape
        f = tgt_off.shape[1]
        base = self.start[note][:, None]
        both = self._read(np.concatenate([(base + enc_off).ravel(), (base + tgt_off).ravel()]))
        enc = both[:b * t].reshape(b, t, -1)
        tgt = both[b * t:].reshape(b, f, -1)
        t_on, t_off = self.times(note, tgt_off)
        peak = np.maximum(enc.max(axis=(1, 2)), tgt.max(axis=(1, 2)))
        return NoteBatch(
            enc_frames=torch.from_numpy(enc), pitch=torch.from_numpy(self.pitch[note]),
            velocity=torch.from_numpy(self.velocity[note].astype(np.float32)), frames=torch.from_numpy(tgt),
            t_on=torch.from_numpy(t_on), t_off=torch.from_numpy(t_off), log_peak=torch.from_numpy(peak),
            rows=note,
        )

    def full_note(self, i: int) -> np.ndarray:
        """All frames of note `i` (natural-log magnitude) `[n, bins]`."""
        return np.asarray(self.features.frames[self.start[i]:self.start[i] + self.length[i]], dtype=np.float32)
