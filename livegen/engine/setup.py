"""Choosing the torch device and loading the engine's model, shared by `play`, `render` and benches."""

from __future__ import annotations

import sys

from livegen.errors import DeviceError
from livegen.model import ModelConfig, default_model_path, load_model, random_model
from livegen.model.kinds import load_any_model


def pick_device(name: str = "auto") -> str:
    """`auto` takes CUDA, then MPS, when present; an explicit choice that is missing is an error."""
    import torch

    name = (name or "auto").lower()
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA GPU is visible to torch; use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise DeviceError("--device mps: Apple's MPS is not available; use --device cpu or auto")
    if name not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"--device {name!r}: choose auto, cpu, cuda or mps")
    return name


def load_engine_model(path: str | None, *, device: str = "cpu", log=None):
    """The model at `path` ("random": the seed-0 random model); without one, `models/default`,
    or a random model of the same architecture (logged) until a trained default exists."""
    log = log or (lambda text: print(text, file=sys.stderr))
    if path == "random":
        log("model: a randomly initialised model (seed 0), as asked")
        return random_model(ModelConfig(), seed=0).to(device), "random"
    if path:
        model = load_any_model(path, device=device)
        log(f"model: {path}")
        return model, str(path)
    default = default_model_path()
    if (default / "config.json").is_file():
        model = load_model(default, device=device)
        log(f"model: {default}")
        return model, str(default)
    log("model: no models/default yet; using a randomly initialised model of the same architecture (seed 0)")
    return random_model(ModelConfig(), seed=0).to(device), "random"
