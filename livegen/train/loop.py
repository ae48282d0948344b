"""The training loop: seeded, checkpointed (safetensors + JSON, no pickles), DDP under torchrun.

`train(data_dir, out_dir, ...)` writes into `out_dir`:
- `metrics.jsonl`: one JSON object per logged step (`"split": "train"` or `"valid"`);
- `checkpoint/`: `model.safetensors`, `optim.safetensors`, `state.json` (step, RNG states, settings),
  replaced atomically every `ckpt_every` steps; `--resume` continues from it;
- `model/`: the finished model directory (`config.json`, `weights.safetensors`, `card.md`) after
  the XY plane is fitted to the training encodings and the noise is calibrated.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from livegen.errors import ParameterError
from livegen.model import ModelConfig, save_model
from livegen.model.io import init_output_bias, init_projections
from livegen.model.spectral import SpectralModel
from livegen.train.config import TrainConfig
from livegen.train.data import NoteSampler, default_cache_dir, open_features
from livegen.train.finish import finish_model
from livegen.train.losses import VAELoss

CHECKPOINT = "checkpoint"


def _dist_env():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _pick_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParameterError("--device cuda asked but no CUDA device is available; use --device cpu or auto")
        if device == "cuda":
            device = f"cuda:{local_rank}"
    elif device != "cpu":
        raise ParameterError(f"--device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))


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


# ------------------------------------------------------------------ checkpoints (no pickles)
def save_checkpoint(path: Path, model, opt, step: int, rng: np.random.Generator, tgen: torch.Generator,
                    cfg: TrainConfig, extra: dict) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            tensors[f"{idx}.{key}"] = torch.as_tensor(val).detach().cpu().contiguous()
    tensors["_torch_rng"] = tgen.get_state()
    save_file(tensors, str(tmp / "optim.safetensors"))
    state = {"step": step, "numpy_rng": rng.bit_generator.state, "param_groups": sd["param_groups"],
             "train_config": cfg.to_dict(), **extra}
    (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(path: Path, model, opt, rng: np.random.Generator, tgen: torch.Generator) -> dict:
    from safetensors.torch import load_file

    if not (path / "state.json").is_file():
        raise ParameterError(f"--resume: no checkpoint in {path} (expected {path}/state.json); train without --resume first")
    state = json.loads((path / "state.json").read_text())
    model.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    tensors = load_file(str(path / "optim.safetensors"))
    tgen.set_state(tensors.pop("_torch_rng"))
    opt_state: dict = {}
    for name, val in tensors.items():
        idx, key = name.split(".", 1)
        opt_state.setdefault(int(idx), {})[key] = val
    opt.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    rng.bit_generator.state = state["numpy_rng"]
    return state


def _out_of_time(t0: float, max_minutes: float, world: int, dev) -> bool:
    """Whether the time budget is spent; under DDP every rank follows rank 0's clock."""
    over = torch.tensor([float(time.perf_counter() - t0 > max_minutes * 60.0)], device=dev)
    if world > 1:
        import torch.distributed as dist

        dist.broadcast(over, 0)
    return bool(over.item())


# ------------------------------------------------------------------ the loop
def train(data_dir, out_dir, *, config: TrainConfig | None = None, resume: bool = False, steps: int | None = None,
          device: str = "auto", cache_dir=None, progress: bool = True, finish: bool = True,
          max_minutes: float | None = None) -> dict:
    """Train (or resume) a spectral VAE on the notes in `data_dir`; returns a summary dict."""
    cfg = config or TrainConfig()
    if steps is not None:
        cfg.steps = int(steps)
    world, rank, local = _dist_env()
    dev = _pick_device(device, local)
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
    out = Path(out_dir)
    mcfg = ModelConfig.from_dict(cfg.model) if cfg.model else ModelConfig()

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            features = open_features(data_dir, cache_dir=cache, sample_rate=mcfg.sample_rate, n_fft=mcfg.n_fft,
                                     hop=mcfg.hop, progress=progress)
        if distributed:
            dist.barrier()
        if rank != 0:
            features = open_features(data_dir, cache_dir=cache, sample_rate=mcfg.sample_rate, n_fft=mcfg.n_fft,
                                     hop=mcfg.hop, progress=False)
        train_s = NoteSampler(features, "train")
        try:
            valid_s = NoteSampler(features, "valid")
        except ParameterError:
            valid_s = None
        return _train(cfg, mcfg, train_s, valid_s, out, resume, dev, rank, world, progress, finish, max_minutes)
    finally:
        if distributed:
            dist.destroy_process_group()


def _train(cfg, mcfg, train_s, valid_s, out, resume, dev, rank, world, progress, finish, max_minutes=None):
    if dev.type == "cpu" and world > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    model = build_model(mcfg, cfg.seed, train_s).to(dev)
    wrapper = VAELoss(model, beta=cfg.beta, env_weight=cfg.env_weight, rec_loss=cfg.rec_loss).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # Each process draws its own batches: seed + rank.
    rng = np.random.default_rng([cfg.seed, rank])
    tgen = torch.Generator().manual_seed(cfg.seed * 1000 + rank)
    ckpt = out / CHECKPOINT
    start_step, elapsed_before = 0, 0.0
    if resume:
        state = load_checkpoint(ckpt, model, opt, rng, tgen)  # every rank restores the same weights
        start_step = int(state["step"])
        elapsed_before = float(state.get("train_seconds", 0.0))
        if world > 1:
            # Ranks restore rank 0's RNG stream; make them differ again, deterministically.
            rng = np.random.default_rng([cfg.seed, rank, start_step])
            tgen.manual_seed(cfg.seed * 1000 + rank + 7919 * start_step)
    net = wrapper
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(wrapper, device_ids=[dev.index] if dev.type == "cuda" else None)
    metrics_path = out / "metrics.jsonl"
    if rank == 0 and not resume and metrics_path.exists():
        metrics_path.unlink()
    log = open(metrics_path, "a") if rank == 0 else None
    val_batch = None
    if valid_s is not None:
        val_batch = valid_s.batch(np.random.default_rng(12345), min(cfg.val_notes, len(valid_s)),
                                  cfg.frames_per_note, cfg.enc_frames).to(dev)

    def validate(step):
        if val_batch is None:
            return None
        model.eval()
        with torch.no_grad():
            vb = val_batch
            loss, parts = wrapper(vb.enc_frames, vb.pitch, vb.velocity, vb.frames, vb.t_on, vb.t_off, vb.log_peak,
                                  torch.zeros(vb.pitch.shape[0], mcfg.latent_dim, device=dev))
        model.train()
        return {"step": step, "split": "valid", "loss": float(loss), "rec_db": float(parts[0]),
                "env_db": float(parts[1]), "kl": float(parts[2])}

    bar = None
    if rank == 0 and progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                       TimeElapsedColumn(), TimeRemainingColumn())
        bar.start()
        task = bar.add_task("train", total=cfg.steps, completed=start_step, info="")
    t0 = time.perf_counter()
    model.train()
    last = {}
    acc = torch.zeros(3)
    acc_loss, acc_n = 0.0, 0
    try:
        for step in range(start_step, cfg.steps):
            lr = _lr(cfg, step)
            for group in opt.param_groups:
                group["lr"] = lr
            b = train_s.batch(rng, cfg.batch_notes, cfg.frames_per_note, cfg.enc_frames, cfg.onset_share).to(dev)
            eps = torch.randn(b.pitch.shape[0], mcfg.latent_dim, generator=tgen).to(dev)
            loss, parts = net(b.enc_frames, b.pitch, b.velocity, b.frames, b.t_on, b.t_off, b.log_peak, eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            acc += parts.cpu()
            acc_loss += float(loss.detach())
            acc_n += 1
            done = step + 1
            if rank == 0 and (done % cfg.log_every == 0 or done == cfg.steps):
                last = {"step": done, "split": "train", "loss": acc_loss / acc_n, "rec_db": float(acc[0] / acc_n),
                        "env_db": float(acc[1] / acc_n), "kl": float(acc[2] / acc_n), "lr": lr,
                        "seconds": round(elapsed_before + time.perf_counter() - t0, 2), "world_size": world}
                log.write(json.dumps(last) + "\n")
                log.flush()
                acc.zero_()
                acc_loss, acc_n = 0.0, 0
                if bar is not None:
                    bar.update(task, info=f"loss {last['loss']:.3f}  rec {last['rec_db']:.2f} dB  kl {last['kl']:.2f}")
            if rank == 0 and (done % cfg.val_every == 0 or done == cfg.steps):
                v = validate(done)
                if v is not None:
                    log.write(json.dumps(v) + "\n")
                    log.flush()
            if rank == 0 and (done % cfg.ckpt_every == 0 or done == cfg.steps):
                save_checkpoint(out / CHECKPOINT, model, opt, done, rng, tgen, cfg,
                                {"train_seconds": elapsed_before + time.perf_counter() - t0, "world_size": world})
            if bar is not None:
                bar.update(task, completed=done)
            if max_minutes is not None and _out_of_time(t0, max_minutes, world, dev):
                if rank == 0:
                    save_checkpoint(out / CHECKPOINT, model, opt, done, rng, tgen, cfg,
                                    {"train_seconds": elapsed_before + time.perf_counter() - t0, "world_size": world,
                                     "stopped_early": True})
                cfg.steps = done
                break
    finally:
        if bar is not None:
            bar.stop()
        if log is not None:
            log.close()
    train_seconds = elapsed_before + time.perf_counter() - t0
    summary = {"steps": cfg.steps, "train_seconds": round(train_seconds, 1), "world_size": world, "last": last}
    if rank == 0 and finish:
        model.eval()

        summary.update(finish_model(model, train_s, cfg, out / "model", train_seconds=train_seconds, world=world))
    return summary
