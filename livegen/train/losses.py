"""Spectral losses and metrics shared by training, calibration and `livegen eval`.

dB spectra are floored at `FLOOR_DB` below the note's peak magnitude: what lies 80 dB under a
note's loudest bin is inaudible beside it, and a fixed floor would let quiet notes dominate.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DB = 20.0 / math.log(10.0)   # natural log -> dB
FLOOR_DB = 80.0
EPS = 1e-7


def floored_db(logmag: torch.Tensor, log_peak: torch.Tensor) -> torch.Tensor:
    """Natural-log magnitudes `[B, F, bins]` -> dB, floored FLOOR_DB under each note's peak `[B]`."""
    floor = (log_peak - FLOOR_DB / DB).view(-1, *([1] * (logmag.dim() - 1)))
    return DB * torch.maximum(logmag, floor)


def envelope_l1(a: torch.Tensor, b: torch.Tensor, widths=(8, 32)) -> torch.Tensor:
    """L1 between band-averaged dB spectra at a few widths (a coarse multi-resolution term):
    the overall spectral shape counts even where fine peaks do not line up."""
    total = a.new_zeros(())
    x, y = a.flatten(0, -2).unsqueeze(1), b.flatten(0, -2).unsqueeze(1)
    for w in widths:
        total = total + (nn.functional.avg_pool1d(x, w, w, ceil_mode=True)
                         - nn.functional.avg_pool1d(y, w, w, ceil_mode=True)).abs().mean()
    return total / len(widths)


def frame_change_db(db: torch.Tensor) -> torch.Tensor:
    """Mean |dB[m+1] - dB[m]| over bins and consecutive frames of `[..., frames, bins]`."""
    return (db[..., 1:, :] - db[..., :-1, :]).abs().mean()


class VAELoss(nn.Module):
    """Wraps a SpectralModel so one forward = encode, sample z, decode frames, losses.

    DistributedDataParallel wraps this module; `eps` comes from the caller's seeded generator.
    """

    def __init__(self, model, *, beta: float, env_weight: float, rec_loss: str = "l1"):
        super().__init__()
        if rec_loss not in ("l1", "rms"):
            raise ValueError(f"rec_loss {rec_loss!r}: use 'l1' or 'rms'")
        self.model = model
        self.beta = beta
        self.env_weight = env_weight
        self.rec_loss = rec_loss

    def forward(self, enc_frames, pitch, velocity, frames, t_on, t_off, log_peak, eps, frame_pitch=None):
        """`frame_pitch` `[B, F]`: each target frame's own pitch (a recording's vibrato and
        glides) instead of the note's."""
        model = self.model
        mu, logvar = model.encode(enc_frames, pitch, velocity)
        z = mu + eps * torch.exp(0.5 * logvar)
        b, f = t_on.shape
        pr = pitch.repeat_interleave(f) if frame_pitch is None else frame_pitch.reshape(-1)
        params = model.decode_params(z.repeat_interleave(f, 0), pr, velocity.repeat_interleave(f),
                                     t_on.reshape(-1), t_off.reshape(-1))
        pred = torch.log(model.render(params, pr) + EPS).view(b, f, -1)
        pred_db = floored_db(pred, log_peak)
        tgt_db = floored_db(frames, log_peak)
        if self.rec_loss == "rms":
            # sqrt(mean square + 1e-3): a finite gradient on frames the model already matches.
            rec = ((pred_db - tgt_db).square().mean(-1) + 1e-3).sqrt().mean()
        else:
            rec = (pred_db - tgt_db).abs().mean()
        env = envelope_l1(pred_db, tgt_db)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(1).mean()
        loss = rec + self.env_weight * env + self.beta * kl
        return loss, torch.stack([rec.detach(), env.detach(), kl.detach()])
