"""`livegen train`: train a model on any folder of audio (DDP when run under torchrun)."""

from __future__ import annotations

import argparse

from livegen.data.files import check_output_folder
from livegen.errors import ParameterError, ranged, seed_type


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a playable model on any folder of audio (or a note dataset: NSynth, `livegen dataset gm`)",
        description="Any folder of recordings (wav/flac/ogg/mp3/aiff, any rate and channels, sub-folders; MAESTRO "
                    "and GTZAN layouts too) becomes a playable model in RUN/model: --kind auto decides pitched "
                    "(a harmonic-plus-noise model notes play at any pitch) or texture (a spectrogram VAE the pad "
                    "moves, notes trigger and transpose) and says why. Note datasets train the spectral VAE on "
                    "their labelled notes. Trains with a progress bar, validation, checkpoints (--resume) and a "
                    "JSON-lines metrics log; under `torchrun --nproc_per_node=N -m livegen train ...` with "
                    "DistributedDataParallel (gloo on CPU, NCCL on CUDA).",
    )
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument("--out", required=True, help="output folder (checkpoint/, metrics.jsonl, model/)")
    parser.add_argument("--kind", default="auto", choices=("auto", "pitched", "texture"),
                        help="what model a folder of recordings becomes (default auto: decided from the material)")
    parser.add_argument("--config", default=None, help="training settings, JSON or TOML (keys of TrainConfig, `model` table; "
                             "kind = \"continuation\" trains the continuation model instead)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    parser.add_argument("--steps", type=ranged(int, 1), default=None, help="total steps (overrides the config)")
    parser.add_argument("--seed", type=seed_type(), default=None, help="random seed (overrides the config)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--cache", default=None, help="feature cache folder (default: the user cache, livegen/features)")
    parser.add_argument("--threads", type=ranged(int, 1, 256), default=None, help="torch CPU threads")
    parser.add_argument("--max-minutes", type=ranged(float, above=0), default=None,
                        help="stop after this much training time (checkpoint + finished model); for a folder of "
                             "recordings without --steps the learning rate follows this budget")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args) -> int:
    import json
    from pathlib import Path

    import torch

    from livegen.continuation.train_entry import maybe_run_continuation
    from livegen.train import TrainConfig, train
    from livegen.train.card import train_command
    from livegen.train.loop import CHECKPOINT

    check_output_folder(args.out, "--out")
    if args.cache:
        check_output_folder(args.cache, "--cache")
    held = [name for name in (CHECKPOINT, "model") if (Path(args.out) / name).exists()]
    if held and not args.resume:  # a new run would overwrite the trained model and its checkpoint
        raise ParameterError(f"--out {args.out} already holds a training run ({' and '.join(held)}); continue it with "
                             "--resume, or give another --out (nothing there was changed)")
    code = maybe_run_continuation(args)  # a config with kind = "continuation" trains that model
    if code is not None:
        return code

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    if args.seed is not None:
        cfg.seed = args.seed
    summary = train(args.data, args.out, config=cfg, resume=args.resume, steps=args.steps, device=args.device,
                    cache_dir=args.cache, progress=not args.no_progress,
                    max_minutes=args.max_minutes, kind=args.kind, command=train_command(args))
    if summary:
        summary.pop("card", None)
        print(json.dumps(summary, indent=1, default=str))
    return 0
