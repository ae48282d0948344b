"""Continuation model directories: `config.json` + `weights.safetensors` (+ `card.md`), no pickles."""

from __future__ import annotations

import json
import os
from pathlib import Path

from livegen.continuation.baseline import SeedLSTMConfig, SeedLSTMModel
from livegen.continuation.model import ContinuationConfig, ContinuationModel, FORMAT, FORMAT_VERSION
from livegen.model.io import CONFIG_NAME, _read_config, load_checked_weights, write_model_dir
from livegen.paths import bundled_model_dir


def default_continuation_path() -> Path:
    """The bundled continuation model (`models/continuation`), from the checkout or the installed package."""
    return bundled_model_dir("continuation")


def is_continuation_model(path) -> bool:
    """True when `path` is a model directory whose config says it is a continuation model."""
    if not path:
        return False
    cfg = Path(os.fspath(path)) / CONFIG_NAME
    try:
        return json.loads(cfg.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def save_continuation(model, path, card_text: str | None = None, metadata: dict | None = None) -> Path:
    """Write a continuation model directory (the same layout `livegen.model.io.save_model` writes)."""
    return write_model_dir(model, path, fmt=FORMAT, version=FORMAT_VERSION, card_text=card_text, metadata=metadata)


def load_continuation(path, device: str = "cpu"):
    """Load a continuation model directory (eval mode); shapes and finiteness are checked."""
    path = Path(os.fspath(path))
    data = _read_config(path, fmt=FORMAT, version=FORMAT_VERSION, kind="a continuation model")
    config = data.get("config", {})
    if isinstance(config, dict) and config.get("kind") is not None:  # the seed-recipe baseline (comparison only)

        model = SeedLSTMModel(SeedLSTMConfig.from_dict(config))
    else:
        model = ContinuationModel(ContinuationConfig.from_dict(config))
    load_checked_weights(model, path, data)
    return model.to(device).eval()
