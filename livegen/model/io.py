"""Model directories: `config.json` + `weights.safetensors` (+ `card.md`). Loading never unpickles."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from livegen.errors import ModelError
from livegen.model.config import FORMAT, FORMAT_VERSION, GM_FAMILIES, ModelConfig
from livegen.model.spectral import RAYLEIGH_LOG_MEAN, SpectralModel
from livegen.paths import bundled_model_dir

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
CARD_NAME = "card.md"


def default_model_path() -> Path:
    """The bundled model (`models/default`), from the checkout or the installed package."""
    return bundled_model_dir("default")


def _read_config(path: Path, *, fmt: str = FORMAT, version: int = FORMAT_VERSION,
                 kind: str = "a livegen model config") -> dict:
    """`path/config.json`, checked to be of format `fmt` at `version` (ModelError naming `kind` if not)."""
    cfg_path = path / CONFIG_NAME
    if not cfg_path.is_file():
        raise ModelError(f"{path} has no {CONFIG_NAME}; a model directory holds {CONFIG_NAME} + {WEIGHTS_NAME}")
    try:
        data = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {cfg_path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ModelError(f"{cfg_path} is not {kind} (expected \"format\": \"{fmt}\")")
    found = data.get("format_version")
    if found != version:
        raise ModelError(
            f"{cfg_path} has format_version {found!r}; this livegen reads version {version}: "
            "retrain the model or use a matching livegen version")
    return data


def load_model(path, device="cpu") -> SpectralModel:
    """Load a model directory into a `SpectralModel` in eval mode on `device`.

    Shapes, dtypes and the set of tensors are checked against the config; weights are read with
    safetensors, which never runs code.
    """
    path = Path(os.fspath(path))
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise ModelError(f"model directory {path} {what} (give a folder with {CONFIG_NAME} + {WEIGHTS_NAME})")
    data = _read_config(path)
    config = ModelConfig.from_dict(data.get("config", {}))
    model = SpectralModel(config)
    load_checked_weights(model, path, data)
    return model.to(device).eval()


def load_checked_weights(model, path: Path, data: dict) -> None:
    """Fill `model` from `path/weights.safetensors` after checking the tensors' names, shapes,
    dtypes and finiteness against its own; `family_centroids` and `metadata` from config `data`.
    Shared by every model format (safetensors never runs code)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_path = path / WEIGHTS_NAME
    if not weights_path.is_file():
        raise ModelError(f"{path} has no {WEIGHTS_NAME}")
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot read {weights_path} as safetensors: {exc}; the file is damaged or cut short "
                         "(an unfinished copy?): copy the model folder again") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{weights_path} does not match its config: missing tensors {missing[:5]}, unexpected {unexpected[:5]}")
    for name, ref in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(ref.shape):
            raise ModelError(
                f"{weights_path}: tensor {name} has shape {tuple(got.shape)}, the config needs {tuple(ref.shape)}")
        if got.dtype != ref.dtype:
            raise ModelError(f"{weights_path}: tensor {name} is {got.dtype}, expected {ref.dtype}")
        if not torch.isfinite(got).all():
            raise ModelError(f"{weights_path}: tensor {name} holds NaN or Inf values")
    model.load_state_dict(tensors, strict=True)
    cents = data.get("family_centroids", {}) or {}
    try:
        model.family_centroids = {str(k): (float(v[0]), float(v[1])) for k, v in cents.items()}
    except (TypeError, ValueError, IndexError, AttributeError):
        raise ModelError(f"{path / CONFIG_NAME}: family_centroids must map names to [x, y]") from None
    model.metadata = data.get("metadata", {}) or {}


def save_model(model: SpectralModel, path, card_text: str | None = None, metadata: dict | None = None) -> Path:
    """Write `config.json` + `weights.safetensors` (+ `card.md`) into `path` (created if needed)."""
    return write_model_dir(model, path, fmt=FORMAT, version=FORMAT_VERSION, card_text=card_text, metadata=metadata)


def write_model_dir(model, path, *, fmt: str, version: int, card_text: str | None = None,
                    metadata: dict | None = None) -> Path:
    """A model directory of format `fmt`: config (the model's `config.to_dict()`, family centroids,
    metadata), float32 safetensors weights written via a temporary file, and the card."""
    from safetensors.torch import save_file

    path = Path(os.fspath(path))
    path.mkdir(parents=True, exist_ok=True)
    meta = dict(model.metadata)
    if metadata:
        meta.update(metadata)
    data = {
        "format": fmt,
        "format_version": version,
        "config": model.config.to_dict(),
        "family_centroids": {k: [float(v[0]), float(v[1])] for k, v in model.family_centroids.items()},
        "metadata": meta,
    }
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    tmp = path / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp), metadata={"format": fmt, "format_version": str(version)})
    os.replace(tmp, path / WEIGHTS_NAME)
    (path / CONFIG_NAME).write_text(json.dumps(data, indent=2) + "\n")
    if card_text is not None:
        (path / CARD_NAME).write_text(card_text)
    return path


def init_noise_projection(model, generator: torch.Generator) -> None:
    """Fill the fixed random projection that turns noise draws into per-bin fluctuations (a
    spectral or a texture model's `noise_proj`).

    Columns have unit norm, so each bin's (re, im) pair is standard normal when the draws are,
    scaled so the resulting Rayleigh factor has geometric mean 1.
    """
    cfg = model.config
    with torch.no_grad():
        p = torch.randn(cfg.noise_dim, 2 * cfg.n_bins, generator=generator)
        model.noise_proj.copy_(p / p.norm(dim=0, keepdim=True) * math.exp(-RAYLEIGH_LOG_MEAN))


def init_projections(model: SpectralModel, generator: torch.Generator) -> None:
    """Fill the fixed random projections: the noise projection (`init_noise_projection`), then the
    harmonic jitter's (unit-norm columns)."""
    cfg = model.config
    init_noise_projection(model, generator)
    with torch.no_grad():
        j = torch.randn(cfg.noise_dim, cfg.max_harmonics, generator=generator)
        model.jitter_proj.copy_(j / j.norm(dim=0, keepdim=True))


def random_model(config: ModelConfig | None = None, seed: int = 0) -> SpectralModel:
    """A model of the final architecture with random weights and a usable default plane.

    Its output biases give a plausible decaying harmonic tone, so other parts (engine, UI,
    tests) can be exercised before a trained model exists.
    """
    config = config or ModelConfig()
    g = torch.Generator().manual_seed(int(seed))
    model = SpectralModel(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                module.weight.copy_((torch.rand(module.weight.shape, generator=g) * 2 - 1) * bound)
                module.bias.copy_((torch.rand(module.bias.shape, generator=g) * 2 - 1) * bound)
        init_output_bias(model)
        last = model.decoder[-1]
        last.weight.mul_(0.3)
    init_projections(model, g)
    names = [f for f in config.families] or list(GM_FAMILIES)
    model.family_centroids = {
        name: (round(0.5 + 0.35 * math.cos(2 * math.pi * i / len(names)), 4),
               round(0.5 + 0.35 * math.sin(2 * math.pi * i / len(names)), 4))
        for i, name in enumerate(names)
    }
    model.metadata = {"trained": False, "note": "random weights; family centroids are placeholders on a circle"}
    return model.eval()


def init_output_bias(model: SpectralModel) -> None:
    """Start the decoder at a soft, decaying harmonic tone over a quiet noise floor."""
    cfg = model.config
    with torch.no_grad():
        bias = model.decoder[-1].bias
        bias.zero_()
        bands = torch.arange(cfg.n_bands, dtype=torch.float32) / cfg.n_bands
        bias[:cfg.n_bands] = math.log(30.0) - 8.0 * bands
        bias[cfg.n_bands:2 * cfg.n_bands] = math.log(0.02) - 3.0 * bands
        bias[-1] = -6.0  # inharmonicity starts near zero
