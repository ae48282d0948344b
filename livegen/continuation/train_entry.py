"""`livegen train --config X` with ``kind = "continuation"`` in X: train the continuation model.

`maybe_run_continuation(args)` is what `livegen train` calls first: it returns None when the
config does not select the continuation kind (the spectral VAE trains as before), else the
exit code. ``kind = "seed_lstm"`` trains the seed document's LSTM recipe instead, a baseline kept
for comparison (`livegen.continuation.baseline`).
"""

from __future__ import annotations

import json

import torch

from livegen.continuation.train import ContinuationTrainConfig, train_continuation
from livegen.errors import ParameterError
from livegen.train.card import train_command
from livegen.train.config import read_config

KINDS = ("continuation", "seed_lstm")


def maybe_run_continuation(args) -> int | None:
    """Train the continuation model when `args.config` says ``kind = "continuation"``; else None."""
    if not getattr(args, "config", None):
        return None
    data = read_config(args.config)
    if data.get("kind", "vae") not in KINDS:
        return None
    if getattr(args, "device", "auto") not in ("auto", "cpu"):
        raise ParameterError(f"--device {args.device}: the continuation model trains on the CPU (it is small); use cpu or auto")
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    cfg = ContinuationTrainConfig.from_dict(data, label=f"continuation training config {args.config}")
    if getattr(args, "seed", None) is not None:
        cfg.seed = args.seed
    summary = train_continuation(args.data, args.out, config=cfg, steps=getattr(args, "steps", None),
                                 max_minutes=getattr(args, "max_minutes", None), cache_dir=getattr(args, "cache", None),
                                 progress=not getattr(args, "no_progress", False),
                                 resume=bool(getattr(args, "resume", False)), command=train_command(args))
    print(json.dumps(summary, indent=1, default=str))
    return 0
