"""Training the continuation model on a music folder (GTZAN, MAESTRO or any audio folder).

Loss: the mixture's negative log-likelihood of the next block (not MSE: a mean-squared
predictor regresses to the average frame, which is the seed LSTM's grey, static output), plus a
small KL on the style latent. Against exposure bias (the model feeding on its own samples at
play time) inputs get Gaussian noise, and a share of them (ramped up over training) are replaced
by the model's own samples from a first, gradient-free pass (parallel scheduled sampling).

The steps run in `livegen.train.loop.run_loop`, the one loop every model kind shares (progress
bar, metrics, checkpoints, time budget, DDP): `ContinuationTask` plugs in. Under torchrun
(``WORLD_SIZE`` set) DistributedDataParallel wraps the step's loss module like any kind's: each
rank draws its own batches; rank 0 writes.

Checkpoints and ``--resume`` as `livegen train` has them, in its format (`livegen.train.loop`'s
`save_checkpoint`/`load_checkpoint`: `OUT/checkpoint/` with ``model.safetensors``,
``optim.safetensors`` and ``state.json``; no pickles): every `ckpt_every` steps, at the end and
when ``--max-minutes`` stops the run. A resumed run draws the same batches and noise as the
uninterrupted one (both RNG streams are in the checkpoint, and every random draw of a step comes
from them), so a run stopped and resumed on the same machine and thread count ends with the same
weights, bit for bit; with ``--max-minutes`` the schedules follow the clock and it cannot (the
budget then counts the time trained before the interruption too, so the schedules go on where
they were rather than starting again).

``kind = "seed_lstm"`` trains the seed document's recipe instead (`livegen.continuation.baseline`:
LSTM(256) + sigmoid Dense, MSE), through the same data loading, schedule and checkpoints, as a
baseline for comparison; its losses are logged as ``mse``/``val_mse``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from livegen.continuation.baseline import KIND, SeedLSTMConfig, SeedLSTMModel, fit_levels, window_loss
from livegen.continuation.card import split_figures, write_continuation_card
from livegen.continuation.io import save_continuation
from livegen.continuation.model import ContinuationConfig, ContinuationModel, fit_basis
from livegen.data.datasets import open_dataset
from livegen.data.features import compute_features
from livegen.errors import ParameterError
from livegen.train.config import checked_config
from livegen.train.data import default_cache_dir
from livegen.train.loop import CHECKPOINT, run_loop
from livegen.train.tasks import Task


@dataclass
class ContinuationTrainConfig:
    kind: str = "continuation"
    seed: int = 0
    steps: int = 4000
    batch: int = 24
    seq_blocks: int = 48           # GRU steps per training sequence (48 x 8 hops = 2 s)
    style_frames: int = 384        # frames the style encoder sees (from elsewhere in the same piece)
    lr: float = 2e-3
    lr_min: float = 1e-4
    warmup: int = 100
    grad_clip: float = 1.0
    beta: float = 0.01
    input_noise: float = 0.3
    sched_max: float = 0.5         # final share of inputs replaced by the model's own samples
    sched_start: int = 200
    val_every: int = 250
    val_batches: int = 4
    log_every: int = 25
    ckpt_every: int = 250
    weight_decay: float = 1e-5
    basis_frames: int = 60000
    max_seconds: float | None = None
    model: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict, *, label: str = "continuation training config") -> "ContinuationTrainConfig":
        cfg = checked_config(cls, data, label=label,
                             positive=("steps", "batch", "seq_blocks", "style_frames", "val_every", "log_every",
                                       "ckpt_every"))
        if cfg.kind not in ("continuation", "seed_lstm"):
            raise ParameterError(f"{label}: kind={cfg.kind!r}, expected 'continuation' (or 'seed_lstm', the seed's "
                                 "LSTM recipe as a baseline)")
        return cfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class SongFrames:
    """Whitened coefficients of every piece of one split, in memory, with batch sampling."""

    def __init__(self, coefs: list, labels: list[str]):
        self.coefs = coefs
        self.labels = labels

    def batch(self, rng, *, n: int, frames: int, style_frames: int):
        pieces = rng.integers(0, len(self.coefs), size=n)
        seq, style = [], []
        for p in pieces:
            c = self.coefs[p]
            s = int(rng.integers(0, c.shape[0] - frames + 1))
            seq.append(c[s:s + frames])
            s2 = int(rng.integers(0, max(1, c.shape[0] - style_frames + 1)))
            style.append(c[s2:s2 + style_frames])
        return (torch.from_numpy(np.stack(seq).astype(np.float32)),
                torch.from_numpy(np.stack(style).astype(np.float32)), pieces)


def load_split(model, feats, split: str, *, min_frames: int):
    """Analyse one split of a `FeatureSet` into `SongFrames` (pieces shorter than min_frames skipped)."""
    sub = feats.split(split)
    coefs, labels = [], []
    with torch.no_grad():
        for row in sub:
            if row["stop"] - row["start"] < min_frames:
                continue
            x = torch.from_numpy(np.asarray(feats.frames[row["start"]:row["stop"]], dtype=np.float32))
            coefs.append(model.analyse(x).numpy().astype(np.float16))
            labels.append(str(row.get("label") or row.get("family") or ""))
    return SongFrames(coefs, labels)


def sequence_loss(model, seq, style, *, noise: float, sched: float, generator=None):
    """NLL of each next block + KL, with noisy and partly self-generated inputs."""
    blocks = model.to_blocks(seq)
    mu, logvar = model.encode(style)
    z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1).mean()
    inputs, targets = blocks[:, :-1], blocks[:, 1:]
    if sched > 0:
        with torch.no_grad():
            mix, _ = model(inputs, z)
            own = model.sample(mix, generator=generator)           # own[:, t] predicts inputs[:, t+1]
            replace = torch.rand(inputs.shape[:2], generator=generator) < sched
            replace[:, 0] = False
            shifted = torch.cat([inputs[:, :1], own[:, :-1]], 1)
            inputs = torch.where(replace.unsqueeze(-1), shifted, inputs)
    if noise > 0:
        inputs = inputs + noise * torch.randn(inputs.shape, generator=generator)
    mix, _ = model(inputs, z)
    nll = model.nll(mix, targets)
    return nll, kl


def _checked_resume_state(path: Path, cfg: ContinuationTrainConfig, mcfg) -> dict:
    """The checkpoint's state.json, refused (naming the difference) when it was written for another
    model shape or genre list, which its weights could not be loaded into."""
    if not (path / "state.json").is_file():
        raise ParameterError(f"--resume: no checkpoint in {path} (expected {path}/state.json); train without --resume first")
    state = json.loads((path / "state.json").read_text())
    saved = state.get("train_config", {})
    if saved.get("kind") != cfg.kind:
        wanted = "a continuation model" if cfg.kind == "continuation" else f"a {cfg.kind!r} baseline"
        raise ParameterError(f"--resume: {path} holds a checkpoint of kind {saved.get('kind', 'vae')!r}, not "
                             f"{wanted}; give another --out or drop --resume")
    if saved.get("model", {}) != cfg.model or state.get("genres") != mcfg.genres:
        raise ParameterError(f"--resume: {path} was trained with model settings {saved.get('model')} and genres "
                             f"{state.get('genres')}; this run has {cfg.model} and {mcfg.genres} (same --config and "
                             "--data, or drop --resume)")
    return state


class _Batch:
    """One step's sequences, style windows and scheduled-sampling share (`.to` for the loop)."""

    def __init__(self, seq, style, sched: float):
        self.seq, self.style, self.sched = seq, style, sched

    def to(self, device):
        return _Batch(self.seq.to(device), self.style.to(device), self.sched)


class _Loss(torch.nn.Module):
    """The step's loss as a module DDP can wrap: (loss, [nll or mse, kl, sched])."""

    def __init__(self, model, cfg: ContinuationTrainConfig, baseline: bool):
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.baseline = baseline

    def forward(self, b: _Batch, generator, *, noise: float | None = None):
        cfg = self.cfg
        if self.baseline:
            nll, kl = window_loss(self.model, b.seq), torch.zeros(())
            loss = nll
        else:
            nll, kl = sequence_loss(self.model, b.seq, b.style, noise=cfg.input_noise if noise is None else noise,
                                    sched=b.sched, generator=generator)
            loss = nll + cfg.beta * kl / self.model.config.step_dim
        return loss, torch.stack([nll.detach(), kl.detach(), torch.tensor(float(b.sched))])


class ContinuationTask(Task):
    """The continuation model (or the seed's LSTM recipe) for `livegen.train.loop.run_loop`."""

    def __init__(self, cfg: ContinuationTrainConfig, model, mcfg, train_set, valid_set, *, frames: int,
                 finish):
        self.cfg, self.model, self.mcfg = cfg, model, mcfg
        self.kind = cfg.kind
        self.baseline = cfg.kind == KIND
        self.loss_name = "mse" if self.baseline else "nll"
        self.train_set, self.valid_set, self.frames = train_set, valid_set, frames
        self.wrapper = _Loss(model, cfg, self.baseline)
        self._finish = finish

    def batch(self, rng, share: float = 0.0) -> _Batch:
        cfg = self.cfg
        # Scheduled sampling ramps up with the run's progress (steps or time, whichever is further).
        sched = cfg.sched_max * min(1.0, max(0.0, 2.0 * share - 0.1)) if self._step >= cfg.sched_start else 0.0
        self._step += 1
        seq, style, _ = self.train_set.batch(rng, n=cfg.batch, frames=self.frames, style_frames=cfg.style_frames)
        return _Batch(seq, style, sched)

    _step = 0

    def noise(self, batch, generator):
        return generator  # every random draw of the step comes from the loop's checkpointed generator

    def lr(self, step: int, share: float) -> float:
        cfg = self.cfg
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(1.0, share)))

    def validate(self, wrapper, dev) -> float:
        cfg = self.cfg
        seed = cfg.seed + 12345
        vr = np.random.default_rng(seed)
        vg = torch.Generator().manual_seed(seed)
        losses = []
        with torch.no_grad():
            for _ in range(cfg.val_batches):
                seq, style, _ = self.valid_set.batch(vr, n=cfg.batch, frames=self.frames, style_frames=cfg.style_frames)
                _, parts = wrapper(_Batch(seq, style, 0.0), vg, noise=0.0)
                losses.append(float(parts[0]))
        return float(np.mean(losses))

    def rows(self, done, *, loss_avg, parts_avg, parts_last, lr, seconds, world, log_due, val_due, validate):
        if not log_due:
            return []
        digits = 5 if self.baseline else 4
        row = {"step": done, self.loss_name: round(float(parts_last[0]), digits), "kl": round(float(parts_last[1]), 3),
               "sched": round(float(parts_last[2]), 3), "lr": round(lr, 6), "seconds": round(seconds, 1)}
        if val_due:
            row["val_" + self.loss_name] = round(validate(), digits)
        return [row]

    def checkpoint_extra(self) -> dict:
        return {"genres": self.mcfg.genres}

    def finish(self, model, out_dir, *, train_seconds: float, world: int) -> dict:
        return self._finish(model, out_dir, train_seconds=train_seconds, world=world)


def train_continuation(data, out, *, config: ContinuationTrainConfig | None = None, steps: int | None = None,
                       max_minutes: float | None = None, cache_dir=None, progress: bool = True,
                       log=print, resume: bool = False, stop_after: int | None = None,
                       command: str | None = None) -> dict:
    """Train on the dataset folder `data`; write `out/model` (+ metrics.jsonl, checkpoint/). Returns a summary.

    The steps run in `livegen.train.loop.run_loop`, the loop every model kind shares. `resume`
    continues from `out/checkpoint` (`livegen train --resume`). `stop_after` ends the run after
    that many steps as an interruption would (checkpoint written, no model), with the schedules
    still those of `steps`: what a resume test needs. `command` is the command line the model's
    card names as how it was made (`livegen train` passes its own).
    """
    cfg = config or ContinuationTrainConfig()
    cfg.steps = int(steps or cfg.steps)
    out = Path(out)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    owns_group = False
    if distributed:
        if not dist.is_initialized():
            dist.init_process_group("gloo")
            owns_group = True
        rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(cfg.seed + rank)
    is_baseline = cfg.kind == KIND
    config_type = SeedLSTMConfig if is_baseline else ContinuationConfig
    mcfg = config_type.from_dict(cfg.model) if cfg.model else config_type()
    ds = open_dataset(data)
    if cache_dir is None:  # the same default as `livegen train`: the user cache, never the output folder
        cache_dir = default_cache_dir()
    feats = compute_features(ds, sample_rate=mcfg.sample_rate, n_fft=mcfg.n_fft, hop=mcfg.hop,
                             cache_dir=cache_dir, max_seconds=cfg.max_seconds,
                             progress=progress and rank == 0)
    train_rows = feats.split("train")
    if not len(train_rows):
        raise ParameterError(f"{data}: no training examples after feature extraction")
    genres = sorted({str(r.get("label") or "") for r in train_rows})
    mcfg.genres = genres
    model = SeedLSTMModel(mcfg) if is_baseline else ContinuationModel(mcfg)
    # Basis from a fixed sample of training frames (same on every rank: seeded by cfg.seed alone).
    pick_rng = np.random.default_rng(cfg.seed)
    all_idx = np.concatenate([np.arange(r["start"], r["stop"]) for r in train_rows])
    pick = np.sort(pick_rng.choice(all_idx, size=min(cfg.basis_frames, all_idx.size), replace=False))
    basis_info = (fit_levels if is_baseline else fit_basis)(
        model, torch.from_numpy(np.asarray(feats.frames[pick], dtype=np.float32)))
    ckpt = out / CHECKPOINT
    if resume:  # before the splits are analysed: the basis is part of the checkpoint
        _checked_resume_state(ckpt, cfg, mcfg)
        model.load_state_dict(load_file(str(ckpt / "model.safetensors")), strict=True)
    frames = mcfg.window + mcfg.target_offset if is_baseline else (cfg.seq_blocks + 1) * mcfg.block
    min_frames = max(frames, 64)
    train_set = load_split(model, feats, "train", min_frames=min_frames)
    valid_set = load_split(model, feats, "valid", min_frames=min_frames)
    hop_s = mcfg.hop_seconds
    pieces = {"layout": ds.layout, "train": split_figures(train_set.coefs, len(train_rows), hop_seconds=hop_s),
              "valid": split_figures(valid_set.coefs, len(feats.split("valid")), hop_seconds=hop_s),
              "test": len(feats.split("test")), "unreadable": len(feats.report.get("skipped", []))}
    if not len(valid_set.coefs):
        valid_set = train_set
        pieces["valid"] = None
    if rank == 0:
        valid_note = (f"{len(valid_set.coefs)} valid pieces" if pieces["valid"] is not None
                      else "no valid pieces (validating on the train pieces)")
        log(f"continuation: {len(train_set.coefs)} train / {valid_note}, genres {genres}, "
            + (mcfg.describe() if is_baseline else f"PCA {mcfg.n_components} explains {basis_info['explained_variance']:.3f}"))

    def finish(model, out_dir, *, train_seconds, world):
        summary = {"pieces": len(train_set.coefs)}
        loss_name = "mse" if is_baseline else "nll"
        summary["val_" + loss_name] = round(task.validate(task.wrapper, torch.device("cpu")), 5 if is_baseline else 4)
        meta = {"trained": True, "data": str(data), "steps": cfg.steps, "train_seconds": round(train_seconds, 1),
                "train_config": cfg.to_dict()}
        if is_baseline:
            meta.update(baseline="the seed document's LSTM recipe, for comparison", val_mse=summary["val_mse"],
                        levels=basis_info)
        else:
            summary["explained_variance"] = round(basis_info["explained_variance"], 4)
            # XY plane over the style encodings of the training pieces (a few windows each)
            mus, labels = [], []
            with torch.no_grad():
                pr = np.random.default_rng(cfg.seed + 7)
                for c, label in zip(train_set.coefs, train_set.labels):
                    for _ in range(4):
                        s = int(pr.integers(0, max(1, c.shape[0] - cfg.style_frames + 1)))
                        mu, _ = model.encode(torch.from_numpy(c[s:s + cfg.style_frames].astype(np.float32))[None])
                        mus.append(mu[0])
                        labels.append(label)
            model.fit_plane(torch.stack(mus), labels)
            meta.update(val_nll=summary["val_nll"], explained_variance=summary["explained_variance"])
        model.metadata = meta
        save_continuation(model, out_dir)
        write_continuation_card(model, out_dir, cfg=cfg, data=data, pieces=pieces, command=command,
                                basis_info=basis_info, val_loss=summary["val_" + loss_name],
                                train_seconds=train_seconds, world=world, metrics_path=out / "metrics.jsonl", log=log)
        summary["model"] = str(out_dir)
        return summary

    task = ContinuationTask(cfg, model, mcfg, train_set, valid_set, frames=frames, finish=finish)
    if resume:
        task._step = int(json.loads((ckpt / "state.json").read_text())["step"])
    summary = run_loop(cfg, task, out, resume=resume, dev=torch.device("cpu"), rank=rank, world=world,
                       progress=progress, finish=True, max_minutes=max_minutes, stop_after=stop_after, log=log)
    summary.pop("last", None)
    if distributed:  # rank 0 still saves: a rank that exits with gloo up before it can abort (SIGABRT)
        dist.barrier()
        if owns_group:
            dist.destroy_process_group()
    return summary
