"""What the UI needs from a model directory: latent size and family centroids for the pad.

Read straight from `config.json` (plain JSON) so the UI process never imports torch: the
engine child loads the weights; the UI only draws the plane.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from livegen.paths import bundled_model_dir

DEFAULT_LATENT_DIM = 8
CONTINUATION_FORMAT = "livegen-continuation"
"""`config.json`'s format of a continuation model (`livegen.continuation.model.FORMAT`, without torch)."""
RANDOM_MODEL = "random"
"""What `--model` and `/livegen/model` take for the seed-0 random model (no directory)."""


@dataclass
class ModelInfo:
    path: str = ""
    latent_dim: int = DEFAULT_LATENT_DIM
    centroids: dict[str, tuple[float, float]] = field(default_factory=dict)
    problem: str = ""
    continuation: bool = False
    """A continuation model (it takes seed files, and has temperature/follow/return)."""

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else "?"


def default_model_dir() -> Path:
    """`models/default`, as `livegen.model.default_model_path` (without torch)."""
    return bundled_model_dir("default")


def read_model_info(path) -> ModelInfo:
    """Never raises: a bad directory gives defaults and a `problem` the status line shows."""
    if str(path) == RANDOM_MODEL:
        return ModelInfo(path=RANDOM_MODEL)  # the default architecture, no families to draw
    path = Path(path) if path else default_model_dir()
    info = ModelInfo(path=str(path))
    try:
        data = json.loads((path / "config.json").read_text())
        latent_dim = int(data.get("config", {}).get("latent_dim", DEFAULT_LATENT_DIM))
        if latent_dim < 2:
            raise ValueError(f"latent_dim {latent_dim}")
        info.latent_dim = latent_dim
        info.continuation = data.get("format") == CONTINUATION_FORMAT
        for name, xy in (data.get("family_centroids") or {}).items():
            info.centroids[str(name)] = (min(max(float(xy[0]), 0.0), 1.0), min(max(float(xy[1]), 0.0), 1.0))
    except FileNotFoundError:
        info.problem = f"no {path}/config.json: the pad shows no instrument families"
    except (OSError, ValueError, TypeError, IndexError, AttributeError) as exc:
        info.problem = f"cannot read {path}/config.json ({exc}): the pad shows no instrument families"
    return info
