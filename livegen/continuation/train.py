"""Training the continuation model on a music folder (GTZAN, MAESTRO or any audio folder).

Loss: the mixture's negative log-likelihood of the next block (not MSE: a mean-squared
predictor regresses to the average frame, which is the seed LSTM's grey, static output), plus a
small KL on the style latent. Against exposure bias (the model feeding on its own samples at
play time) inputs get Gaussian noise, and a share of them (ramped up over training) are replaced
by the model's own samples from a first, gradient-free pass (parallel scheduled sampling).

Under torchrun (``WORLD_SIZE`` set) it trains with DistributedDataParallel like `livegen train`:
each rank draws its own batches; rank 0 writes.

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
import time
from dataclasses import dataclass, field
from pathlib import Path

from livegen.continuation import baseline as seed_recipe
from livegen.continuation.io import save_continuation
from livegen.continuation.model import ContinuationConfig, ContinuationModel, fit_basis
from livegen.data.datasets import open_dataset
from livegen.data.features import compute_features
from livegen.data.progress import progress_bar
from livegen.errors import ParameterError
from livegen.train.config import checked_config
from livegen.train.data import default_cache_dir
from livegen.train.loop import CHECKPOINT, load_checkpoint, save_checkpoint


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
    def from_dict(cls, data: dict) -> "ContinuationTrainConfig":
        label = "continuation training config"
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
        import numpy as np
        import torch

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
    import numpy as np
    import torch

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
    import torch

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


def _lr(cfg: ContinuationTrainConfig, step: int, p: float) -> float:
    """Warm-up, then cosine over the run's progress `p` (0..1, steps or time, whichever is further)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * p))


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


def train_continuation(data, out, *, config: ContinuationTrainConfig | None = None, steps: int | None = None,
                       max_minutes: float | None = None, cache_dir=None, progress: bool = True,
                       log=print, resume: bool = False, stop_after: int | None = None) -> dict:
    """Train on the dataset folder `data`; write `out/model` (+ metrics.jsonl, checkpoint/). Returns a summary.

    `resume` continues from `out/checkpoint` (`livegen train --resume`). `stop_after` ends the run
    after that many steps as an interruption would (checkpoint written, no model), with the
    schedules still those of `steps`: what a resume test needs.
    """
    import numpy as np
    import torch

    cfg = config or ContinuationTrainConfig()
    total = int(steps or cfg.steps)
    out = Path(out)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    if distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(cfg.seed + rank)
    is_baseline = cfg.kind == seed_recipe.KIND
    loss_name = "mse" if is_baseline else "nll"
    config_type = seed_recipe.SeedLSTMConfig if is_baseline else ContinuationConfig
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
    rng = np.random.default_rng([cfg.seed, rank])
    genres = sorted({str(r.get("label") or "") for r in train_rows})
    mcfg.genres = genres
    model = seed_recipe.SeedLSTMModel(mcfg) if is_baseline else ContinuationModel(mcfg)
    # Basis from a fixed sample of training frames (same on every rank: seeded by cfg.seed alone).
    pick_rng = np.random.default_rng(cfg.seed)
    all_idx = np.concatenate([np.arange(r["start"], r["stop"]) for r in train_rows])
    pick = np.sort(pick_rng.choice(all_idx, size=min(cfg.basis_frames, all_idx.size), replace=False))
    basis_info = (seed_recipe.fit_levels if is_baseline else fit_basis)(
        model, torch.from_numpy(np.asarray(feats.frames[pick], dtype=np.float32)))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank)
    ckpt = out / CHECKPOINT
    step, elapsed_before = 0, 0.0
    if resume:  # before the splits are analysed: the basis is part of the checkpoint
        _checked_resume_state(ckpt, cfg, mcfg)
        state = load_checkpoint(ckpt, model, opt, rng, gen)
        step = int(state["step"])
        elapsed_before = float(state.get("train_seconds", 0.0))
        if world > 1:  # every rank restored rank 0's streams: make them differ again, as `livegen train` does
            rng = np.random.default_rng([cfg.seed, rank, step])
            gen.manual_seed(cfg.seed * 1000 + rank + 7919 * step)
        log(f"continuation: resuming at step {step} of {total} from {ckpt}")
    frames = mcfg.window + mcfg.target_offset if is_baseline else (cfg.seq_blocks + 1) * mcfg.block

    def step_loss(seq, style, *, noise, sched, generator):
        if is_baseline:
            return seed_recipe.window_loss(model, seq), torch.zeros(())
        return sequence_loss(net if not distributed else net.module, seq, style, noise=noise, sched=sched,
                             generator=generator)

    min_frames = max(frames, 64)
    train_set = load_split(model, feats, "train", min_frames=min_frames)
    valid_set = load_split(model, feats, "valid", min_frames=min_frames)
    if not len(valid_set.coefs):
        valid_set = train_set
    log(f"continuation: {len(train_set.coefs)} train / {len(valid_set.coefs)} valid pieces, genres {genres}, "
        + (mcfg.describe() if is_baseline else f"PCA {mcfg.n_components} explains {basis_info['explained_variance']:.3f}"))
    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model)
    out.mkdir(parents=True, exist_ok=True)
    metrics = None
    if rank == 0:
        metrics_path = out / "metrics.jsonl"
        kept = []
        if resume and metrics_path.exists():  # rows logged after the checkpoint are logged again
            kept = [line for line in metrics_path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= step]
        metrics_path.write_text("".join(line + "\n" for line in kept))
        metrics = metrics_path.open("a")
    val_rng_seed = cfg.seed + 12345
    started = time.perf_counter() - elapsed_before
    history = []
    stopped_early = False

    def checkpoint(**extra) -> None:
        if rank == 0:
            save_checkpoint(ckpt, model, opt, step, rng, gen, cfg,
                            {"train_seconds": time.perf_counter() - started, "world_size": world,
                             "genres": mcfg.genres, **extra})

    def validate() -> float:
        vr = np.random.default_rng(val_rng_seed)
        vg = torch.Generator().manual_seed(val_rng_seed)
        model.eval()
        losses = []
        with torch.no_grad():
            for _ in range(cfg.val_batches):
                seq, style, _ = valid_set.batch(vr, n=cfg.batch, frames=frames, style_frames=cfg.style_frames)
                nll, _ = step_loss(seq, style, noise=0.0, sched=0.0, generator=vg)
                losses.append(float(nll))
        model.train()
        return float(np.mean(losses))

    model.train()
    with progress_bar(progress and rank == 0, total, "training continuation") as advance:
        advance(step)
        while step < total:
            # With --max-minutes the schedules follow time too, so a short run still anneals.
            progress_share = step / total
            if max_minutes is not None:
                progress_share = max(progress_share, (time.perf_counter() - started) / (max_minutes * 60))
            if progress_share >= 1.0:
                stopped_early = step < total
                break
            if stop_after is not None and step >= stop_after:
                stopped_early = True
                break
            lr = _lr(cfg, step, progress_share)
            for g in opt.param_groups:
                g["lr"] = lr
            sched = cfg.sched_max * min(1.0, max(0.0, 2.0 * progress_share - 0.1) if step >= cfg.sched_start else 0.0)
            seq, style, _ = train_set.batch(rng, n=cfg.batch, frames=frames, style_frames=cfg.style_frames)
            nll, kl = step_loss(seq, style, noise=cfg.input_noise, sched=sched, generator=gen)
            loss = nll if is_baseline else nll + cfg.beta * kl / mcfg.step_dim
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if distributed:
                import torch.distributed as dist

                for p in params:
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= world
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            step += 1
            advance()
            if rank == 0 and (step % cfg.log_every == 0 or step == total):
                row = {"step": step, loss_name: round(float(nll.detach()), 5 if is_baseline else 4),
                       "kl": round(float(kl.detach()), 3), "sched": round(sched, 3),
                       "lr": round(lr, 6), "seconds": round(time.perf_counter() - started, 1)}
                if step % cfg.val_every == 0 or step == total:
                    row["val_" + loss_name] = round(validate(), 5 if is_baseline else 4)
                history.append(row)
                metrics.write(json.dumps(row) + "\n")
                metrics.flush()
            if step % cfg.ckpt_every == 0 and step < total:
                checkpoint()
    checkpoint(**({"stopped_early": True} if stopped_early else {}))
    elapsed = time.perf_counter() - started
    if stopped_early and stop_after is not None:
        if metrics is not None:
            metrics.close()
        if distributed:
            import torch.distributed as dist

            dist.barrier()
        return {"steps": step, "train_seconds": round(elapsed, 1), "stopped_early": True, "checkpoint": str(ckpt)}
    summary = {"steps": step, "train_seconds": round(elapsed, 1), "pieces": len(train_set.coefs)}
    if not is_baseline:
        summary["explained_variance"] = round(basis_info["explained_variance"], 4)
    if rank == 0 and is_baseline:
        summary["val_mse"] = round(validate(), 5)
        model.metadata = {"trained": True, "baseline": "the seed document's LSTM recipe, for comparison",
                          "data": str(data), "steps": step, "train_seconds": round(elapsed, 1),
                          "val_mse": summary["val_mse"], "levels": basis_info, "train_config": cfg.to_dict()}
        save_continuation(model, out / "model")
        summary["model"] = str(out / "model")
        metrics.close()
    elif rank == 0:
        summary["val_nll"] = round(validate(), 4)
        model.eval()
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
        model.metadata = {"trained": True, "data": str(data), "steps": step, "train_seconds": round(elapsed, 1),
                          "val_nll": summary["val_nll"], "explained_variance": summary["explained_variance"],
                          "train_config": cfg.to_dict()}
        save_continuation(model, out / "model")
        summary["model"] = str(out / "model")
        metrics.close()
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    return summary
