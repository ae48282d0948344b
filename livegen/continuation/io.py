"""Continuation model directories: `config.json` + `weights.safetensors` (+ `card.md`), no pickles."""

from __future__ import annotations

import json
import os
from pathlib import Path

from livegen.errors import ModelError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
CARD_NAME = "card.md"


def default_continuation_path() -> Path:
    """The bundled continuation model (`models/continuation`)."""
    return Path(__file__).resolve().parents[2] / "models" / "continuation"


def is_continuation_model(path) -> bool:
    """True when `path` is a model directory whose config says it is a continuation model."""
    from livegen.continuation.model import FORMAT

    if not path:
        return False
    cfg = Path(os.fspath(path)) / CONFIG_NAME
    try:
        return json.loads(cfg.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def save_continuation(model, path, card_text: str | None = None, metadata: dict | None = None) -> Path:
    import torch
    from safetensors.torch import save_file

    from livegen.continuation.model import FORMAT, FORMAT_VERSION

    path = Path(os.fspath(path))
    path.mkdir(parents=True, exist_ok=True)
    meta = dict(model.metadata)
    meta.update(metadata or {})
    data = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict(),
        "family_centroids": {k: [float(v[0]), float(v[1])] for k, v in model.family_centroids.items()},
        "metadata": meta,
    }
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    tmp = path / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    os.replace(tmp, path / WEIGHTS_NAME)
    (path / CONFIG_NAME).write_text(json.dumps(data, indent=2) + "\n")
    if card_text is not None:
        (path / CARD_NAME).write_text(card_text)
    return path


def load_continuation(path, device: str = "cpu"):
    """Load a continuation model directory (eval mode); shapes and finiteness are checked."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from livegen.continuation.model import FORMAT, FORMAT_VERSION, ContinuationConfig, ContinuationModel

    path = Path(os.fspath(path))
    cfg_path = path / CONFIG_NAME
    try:
        data = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {cfg_path}: {exc}; a continuation model directory holds {CONFIG_NAME} + {WEIGHTS_NAME}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{cfg_path} is not a continuation model (expected \"format\": \"{FORMAT}\")")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{cfg_path} has format_version {data.get('format_version')!r}; this livegen reads {FORMAT_VERSION}")
    model = ContinuationModel(ContinuationConfig.from_dict(data.get("config", {})))
    try:
        tensors = load_file(str(path / WEIGHTS_NAME), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot read {path / WEIGHTS_NAME} as safetensors: {exc}") from None
    expected = model.state_dict()
    if set(expected) != set(tensors):
        raise ModelError(f"{path / WEIGHTS_NAME} does not match its config: missing {sorted(set(expected) - set(tensors))[:5]}, "
                         f"unexpected {sorted(set(tensors) - set(expected))[:5]}")
    for name, ref in expected.items():
        if tuple(tensors[name].shape) != tuple(ref.shape):
            raise ModelError(f"{path / WEIGHTS_NAME}: tensor {name} has shape {tuple(tensors[name].shape)}, the config needs {tuple(ref.shape)}")
        if not torch.isfinite(tensors[name]).all():
            raise ModelError(f"{path / WEIGHTS_NAME}: tensor {name} holds NaN or Inf values")
    model.load_state_dict(tensors, strict=True)
    model.family_centroids = {str(k): (float(v[0]), float(v[1])) for k, v in (data.get("family_centroids") or {}).items()}
    model.metadata = data.get("metadata", {}) or {}
    return model.to(device).eval()
