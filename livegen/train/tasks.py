"""What the training loop (`livegen.train.loop.run_loop`) trains: one task per model kind.

A task has `kind`, `model`, `wrapper` (the `nn.Module` DDP wraps: forward(batch, noise) ->
(loss, logged parts)), `batch(rng, share)`, `noise(batch, generator)`, `lr(step, share)`,
`rows(...)` (its metrics lines), `checkpoint_extra()` and `finish(model, out_dir, ...)`. `Task`
holds the defaults the VAE kinds share; the continuation model's task lives beside it
(`livegen.continuation.train`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from livegen.model import ModelConfig
from livegen.model.io import init_output_bias, init_projections
from livegen.model.spectral import SpectralModel
from livegen.model.texture import TextureModel, init_texture
from livegen.train.config import TrainConfig
from livegen.train.data import NoteSampler
from livegen.train.losses import VAELoss, envelope_l1, floored_db


def build_model(mcfg: ModelConfig, seed: int, sampler: NoteSampler) -> SpectralModel:
    """A fresh model: seeded init, output biases at a plausible tone, encoder input statistics
    from the training frames."""
    torch.manual_seed(seed)
    model = SpectralModel(mcfg)
    g = torch.Generator().manual_seed(seed)
    init_output_bias(model)
    init_projections(model, g)
    rng = np.random.default_rng(seed)
    sample = sampler.batch(rng, min(256, len(sampler)), 4, 8).enc_frames.reshape(-1, mcfg.n_bins)
    sample = sample.clamp(min=math.log(mcfg.floor))
    with torch.no_grad():
        model.logmag_mean.copy_(sample.mean(0))
        model.logmag_std.copy_(sample.std(0).clamp(min=0.1))
    return model


class Task:
    """Defaults of a training task: latent noise `eps`, the warm-up + cosine learning rate (over
    the steps, or over the time budget with `time_schedule`), VAE metrics rows."""

    kind = "task"
    time_schedule = False
    part_names = ("rec_db", "env_db", "kl")
    cfg = None
    latent_dim = 0

    def noise(self, batch, generator: torch.Generator):
        """What the wrapper gets beside the batch: z's reparameterisation noise, from the loop's generator."""
        return torch.randn(batch.velocity.shape[0], self.latent_dim, generator=generator)

    def lr(self, step: int, share: float) -> float:
        """Warm-up, then cosine to `lr_min` over the steps (or, `time_schedule`, over `share` of the budget)."""
        cfg = self.cfg
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        t = share if self.time_schedule else (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(1.0, t)))

    def val_batch(self):
        return None

    def validate(self, wrapper, dev) -> dict | None:
        """Validation figures on a fixed batch (None: nothing to validate on)."""
        vb = getattr(self, "_val", False)
        if vb is False:
            vb = self._val = self.val_batch()
            if vb is not None:
                vb = self._val = vb.to(dev)
        if vb is None:
            return None
        with torch.no_grad():
            loss, parts = wrapper(vb, torch.zeros(vb.velocity.shape[0], self.latent_dim, device=dev))
        return {"loss": float(loss), **{n: float(v) for n, v in zip(self.part_names, parts)}}

    def rows(self, done: int, *, loss_avg: float, parts_avg, parts_last, lr: float, seconds: float, world: int,
             log_due: bool, val_due: bool, validate) -> list[dict]:
        """Metrics lines after step `done`: a train line every `log_every` steps (averages since the
        last), a valid line every `val_every`."""
        rows = []
        if log_due:
            rows.append({"step": done, "split": "train", "loss": loss_avg,
                         **{n: float(v) for n, v in zip(self.part_names, parts_avg)}, "lr": lr,
                         "seconds": round(seconds, 2), "world_size": world})
        if val_due:
            v = validate()
            if v is not None:
                rows.append({"step": done, "split": "valid", **v})
        return rows

    def checkpoint_extra(self) -> dict:
        return {}


class NoteTask(Task):
    """The spectral VAE on notes (NSynth / `livegen dataset gm`, or notes cut from recordings)."""

    kind = "pitched"

    def __init__(self, cfg: TrainConfig, mcfg: ModelConfig, train_s, valid_s, *, finish):
        self.cfg, self.mcfg, self.train_s, self.valid_s = cfg, mcfg, train_s, valid_s
        self.latent_dim = mcfg.latent_dim
        self.model = build_model(mcfg, cfg.seed, train_s)
        self.wrapper = NoteLoss(VAELoss(self.model, beta=cfg.beta, env_weight=cfg.env_weight, rec_loss=cfg.rec_loss))
        self._finish = finish

    def batch(self, rng, share: float = 0.0):
        cfg = self.cfg
        return self.train_s.batch(rng, cfg.batch_notes, cfg.frames_per_note, cfg.enc_frames, cfg.onset_share)

    def val_batch(self):
        if self.valid_s is None:
            return None
        return self.valid_s.batch(np.random.default_rng(12345), min(self.cfg.val_notes, len(self.valid_s)),
                                  self.cfg.frames_per_note, self.cfg.enc_frames)

    def finish(self, model, out_dir, *, train_seconds: float, world: int) -> dict:
        """Save the trained model with its card (`finish`: the caller's, which knows the data and command)."""
        return self._finish(model, out_dir, train_seconds=train_seconds, world=world)


class NoteLoss(torch.nn.Module):
    """`VAELoss` taking a whole `NoteBatch` (the loop's one calling convention for every kind)."""

    def __init__(self, inner: VAELoss):
        super().__init__()
        self.inner = inner

    def forward(self, b, eps):
        return self.inner(b.enc_frames, b.pitch, b.velocity, b.frames, b.t_on, b.t_off, b.log_peak, eps,
                          frame_pitch=b.frame_pitch)




class TextureLoss(torch.nn.Module):
    """Encode an event's frames, sample z, decode its target frames: floored dB error (RMS per
    frame, like LSD) + band-envelope L1 + beta * KL."""

    def __init__(self, model: TextureModel, *, beta: float, env_weight: float):
        super().__init__()
        self.model = model
        self.beta = beta
        self.env_weight = env_weight

    def forward(self, b, eps):
        model = self.model
        mu, logvar = model.encode(b.enc_frames, b.velocity)
        z = mu + eps * torch.exp(0.5 * logvar)
        n, f = b.t_on.shape
        pred = model.frame_logmag(z.repeat_interleave(f, 0), b.velocity.repeat_interleave(f), b.t_on.reshape(-1))
        pred_db = floored_db(pred.view(n, f, -1), b.log_peak)
        tgt_db = floored_db(b.frames, b.log_peak)
        rec = ((pred_db - tgt_db).square().mean(-1) + 1e-3).sqrt().mean()
        env = envelope_l1(pred_db, tgt_db)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(1).mean()
        return rec + self.env_weight * env + self.beta * kl, torch.stack([rec.detach(), env.detach(), kl.detach()])


class TextureTask(NoteTask):
    """The texture model on events cut from recordings (batches as `NoteTask`'s)."""

    kind = "texture"

    def __init__(self, cfg: TrainConfig, tcfg, train_s, valid_s, *, finish):
        self.cfg, self.mcfg, self.train_s, self.valid_s = cfg, tcfg, train_s, valid_s
        self.latent_dim = tcfg.latent_dim
        torch.manual_seed(cfg.seed)
        self.model = TextureModel(tcfg)
        sample = train_s.batch(np.random.default_rng(cfg.seed), min(256, len(train_s)), 4, 8).enc_frames
        init_texture(self.model, torch.Generator().manual_seed(cfg.seed), sample.reshape(-1, tcfg.n_bins))
        self.wrapper = TextureLoss(self.model, beta=cfg.beta, env_weight=cfg.env_weight)
        self._finish = finish


__all__ = ["Task", "NoteLoss", "NoteTask", "TextureLoss", "TextureTask", "build_model"]
