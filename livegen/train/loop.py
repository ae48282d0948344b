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
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from livegen.data.datasets import open_dataset
from livegen.errors import ParameterError
from livegen.model import ModelConfig
from livegen.train import own
from livegen.train.config import TrainConfig
from livegen.train.data import NoteSampler, default_cache_dir, open_features
from livegen.train.finish import finish_model
from livegen.train.tasks import NoteTask

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
          max_minutes: float | None = None, kind: str = "auto", log=print, command: str | None = None) -> dict:
    """Train (or resume) a model on `data_dir`; returns a summary dict.

    Note datasets (NSynth, `livegen dataset gm`) train the spectral VAE on their labelled notes;
    any other folder goes through `livegen.train.own` (`kind`: auto, pitched or texture). Either
    model's card names `command` as how it was made (None: called from Python).
    """
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

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        dataset = open_dataset(data_dir)
        if dataset.layout not in ("nsynth", "gm") or kind == "texture":
            task = own.prepare(dataset, cfg, kind=kind, cache=cache, rank=rank, distributed=distributed,
                               progress=progress, log=log, steps_given=steps is not None,
                               max_minutes=max_minutes, command=command)
        else:
            mcfg = ModelConfig.from_dict(cfg.model) if cfg.model else ModelConfig()
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

            def finish_notes(model, model_dir, *, train_seconds, world):
                return finish_model(model, train_s, cfg, model_dir, train_seconds=train_seconds, world=world,
                                    data=data_dir, layout=dataset.layout, valid=valid_s, command=command,
                                    metrics_path=out / "metrics.jsonl", log=log)

            task = NoteTask(cfg, mcfg, train_s, valid_s, finish=finish_notes)
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
        summary = run_loop(cfg, task, out, resume=resume, dev=dev, rank=rank, world=world, progress=progress,
                           finish=finish, max_minutes=max_minutes)
        if distributed:  # rank 0 still saves: a rank that tears gloo down before it can abort (SIGABRT)
            dist.barrier()
        return summary
    finally:
        if distributed:
            dist.destroy_process_group()


def _bar_info(last: dict, left_s: float | None) -> str:
    text = "  ".join(f"{k} {v:.3f}" for k, v in last.items() if k not in ("step", "split", "lr", "seconds", "world_size")
                     and isinstance(v, float))[:60]
    if left_s is not None:
        text += f"  budget left {int(left_s // 60)}:{int(left_s % 60):02d}"
    return text


def _keep_rows(path: Path, step: int) -> None:
    """Drop metrics lines logged after `step` (a resumed run logs them again)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


def run_loop(cfg, task, out: Path, *, resume: bool, dev, rank: int, world: int, progress: bool, finish: bool,
             max_minutes: float | None = None, stop_after: int | None = None, log=None) -> dict:
    """The one training loop every model kind plugs into (`task`: see `livegen.train.tasks`).

    Seeded per rank; DDP when `world` > 1 (gloo on CPU, NCCL on CUDA: the task's wrapper is what
    DDP wraps); checkpoints every `ckpt_every` steps, at the end and when the time budget is
    spent (`--resume` continues from the last and its metrics lines); a progress bar with the
    time left. The time budget counts time trained before a resume too, and all ranks stop
    together on rank 0's clock. `stop_after` ends the run after that many steps as an
    interruption would (checkpoint, no model), for resume tests.
    """
    if dev.type == "cpu" and world > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    model = task.model.to(dev)
    wrapper = task.wrapper.to(dev)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    # Each process draws its own batches: seed + rank.
    rng = np.random.default_rng([cfg.seed, rank])
    tgen = torch.Generator().manual_seed(cfg.seed * 1000 + rank)
    ckpt = out / CHECKPOINT
    start_step, elapsed_before = 0, 0.0
    if resume:
        state = load_checkpoint(ckpt, model, opt, rng, tgen)  # every rank restores the same weights
        saved_kind = state.get("kind") or state.get("train_config", {}).get("kind") or "pitched"
        if saved_kind != task.kind:
            raise ParameterError(f"--resume: {ckpt} holds a {saved_kind!r} model, this run trains {task.kind!r}; "
                                 "give the same --kind (or another --out)")
        start_step = int(state["step"])
        elapsed_before = float(state.get("train_seconds", 0.0))
        if world > 1:
            # Ranks restore rank 0's RNG stream; make them differ again, deterministically.
            rng = np.random.default_rng([cfg.seed, rank, start_step])
            tgen.manual_seed(cfg.seed * 1000 + rank + 7919 * start_step)
        if log is not None and rank == 0:
            log(f"{task.kind}: resuming at step {start_step} of {cfg.steps} from {ckpt}")
    net = wrapper
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(wrapper, device_ids=[dev.index] if dev.type == "cuda" else None)
    metrics_path = out / "metrics.jsonl"
    metrics = None
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if resume:
            _keep_rows(metrics_path, start_step)
        elif metrics_path.exists():
            metrics_path.unlink()
        metrics = open(metrics_path, "a")

    def validate():
        model.eval()
        try:
            return task.validate(wrapper, dev)
        finally:
            model.train()

    budget = None if max_minutes is None else max_minutes * 60.0
    bar = None
    if rank == 0 and progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn(f"training {task.kind}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
        bar.start()
        bar_task = bar.add_task("train", total=cfg.steps, completed=start_step, info="")
    t0 = time.perf_counter()
    model.train()
    last: dict = {}
    acc = None
    acc_loss, acc_n = 0.0, 0
    done = start_step
    stopped_early = interrupted = False

    def spent() -> float:
        return elapsed_before + time.perf_counter() - t0

    def checkpoint(**extra) -> None:
        if rank == 0:
            save_checkpoint(ckpt, model, opt, done, rng, tgen, cfg,
                            {"train_seconds": spent(), "world_size": world, "kind": task.kind,
                             **task.checkpoint_extra(), **extra})

    try:
        for step in range(start_step, cfg.steps):
            if stop_after is not None and step >= stop_after:
                interrupted = True
                break
            if budget is not None and _out_of_time(t0, (budget - elapsed_before) / 60.0, world, dev):
                stopped_early = True
                break
            share = step / cfg.steps if budget is None else max(step / cfg.steps, spent() / budget)
            lr = task.lr(step, share)
            for group in opt.param_groups:
                group["lr"] = lr
            b = task.batch(rng, share).to(dev)
            noise = task.noise(b, tgen)
            loss, parts = net(b, noise.to(dev) if isinstance(noise, torch.Tensor) else noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            parts = parts.detach().cpu()
            acc = parts.clone() if acc is None else acc + parts
            acc_loss += float(loss.detach())
            acc_n += 1
            done = step + 1
            log_due = done % cfg.log_every == 0 or done == cfg.steps
            val_due = done % cfg.val_every == 0 or done == cfg.steps
            if rank == 0 and (log_due or val_due):
                for row in task.rows(done, loss_avg=acc_loss / acc_n, parts_avg=acc / acc_n, parts_last=parts, lr=lr,
                                     seconds=spent(), world=world, log_due=log_due, val_due=val_due,
                                     validate=validate):
                    metrics.write(json.dumps(row) + "\n")
                    last = row if row.get("split", "train") == "train" else last
                metrics.flush()
            if log_due:
                acc, acc_loss, acc_n = None, 0.0, 0
            if done % cfg.ckpt_every == 0 and done < cfg.steps:
                checkpoint()
            if bar is not None:
                if budget is not None and done > start_step:
                    # The budget ends the run first: the bar's total is the steps it will reach.
                    rate = (done - start_step) / max(time.perf_counter() - t0, 1e-9)
                    bar.update(bar_task, total=min(cfg.steps, done + int(rate * max(0.0, budget - spent()))))
                bar.update(bar_task, completed=done,
                           info=_bar_info(last, None if budget is None else max(0.0, budget - spent())))
    finally:
        if bar is not None:
            bar.stop()
        if metrics is not None:
            metrics.close()
    checkpoint(**({"stopped_early": True} if stopped_early or interrupted else {}))
    train_seconds = spent()
    summary = {"kind": task.kind, "steps": done, "train_seconds": round(train_seconds, 1), "world_size": world,
               "last": last, "stopped_early": stopped_early or interrupted}
    if stopped_early:
        cfg.steps = done
    if interrupted:
        summary["checkpoint"] = str(ckpt)
    elif rank == 0 and finish:
        model.eval()
        summary.update(task.finish(model, out / "model", train_seconds=train_seconds, world=world))
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return summary
