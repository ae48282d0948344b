"""Training settings (`--config FILE`: JSON or TOML with these keys and a `model` table)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from livegen.errors import SEED_MAX, ParameterError, finite_number


def read_config(path) -> dict:
    """The raw settings table of a JSON or TOML training config (any kind of model)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"cannot read training config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ParameterError(f"training config {path} is not a UTF-8 text file: give a JSON or TOML file") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib  # Python 3.11 on; JSON configs work on 3.10 too

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise ParameterError(f"training config {path} is not valid {path.suffix or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ParameterError(f"training config {path} must hold a table/object of settings")
    return data


def _wanted(kind: str, value) -> str | None:
    """What a field of type `kind` (the dataclass's annotation) needs, or None if `value` is that."""
    if value is None and "None" in kind:
        return None
    number = finite_number(value)
    if kind.startswith("int"):
        return None if number and isinstance(value, int) and value >= 0 else "a whole number >= 0"
    if kind.startswith("float"):
        return None if number and value >= 0 else "a number >= 0"
    if kind == "str":
        return None if isinstance(value, str) else "a string"
    if kind == "dict":
        return None if isinstance(value, dict) else "a table of settings"
    return None


def checked_config(cls, data: dict, *, label: str, positive: tuple[str, ...] = ()):
    """Build a config dataclass from a dict, refusing unknown keys, values of the wrong type or
    negative, counts below 1 and a `seed` past `SEED_MAX` (the bound `--seed` has: training seeds
    torch with it times 1000, which a larger one overflows deep inside a run)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ParameterError(f"{label}: unknown keys {unknown}; known: {sorted(known)}")
    for f in dataclasses.fields(cls):
        wanted = _wanted(str(f.type), data[f.name]) if f.name in data else None
        if wanted:
            raise ParameterError(f"{label}: {f.name}={data[f.name]!r}; give {wanted}")
    if "seed" in data and data["seed"] > SEED_MAX:
        raise ParameterError(f"{label}: seed={data['seed']!r}; give a whole number in 0..{SEED_MAX}, the range --seed takes")
    cfg = cls(**data)
    for name in positive:
        if int(getattr(cfg, name)) < 1:
            raise ParameterError(f"{label}: {name}={getattr(cfg, name)!r} must be >= 1")
    return cfg


@dataclass
class TrainConfig:
    seed: int = 0
    steps: int = 3000
    batch_notes: int = 32          # notes per step (per process under torchrun)
    frames_per_note: int = 16      # decoded target frames per note
    enc_frames: int = 24           # frames the encoder sees per note
    lr: float = 2e-3
    lr_min: float = 1e-4
    warmup: int = 100
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    beta: float = 0.02             # KL weight (small: the plane is fitted to the encodings anyway)
    env_weight: float = 1.0
    rec_loss: str = "l1"           # "l1": mean |dB error|; "rms": per-frame RMS dB error (the LSD `eval` reports)
    onset_share: float = 0.35
    log_every: int = 25
    val_every: int = 250
    val_notes: int = 64
    ckpt_every: int = 250
    plane_notes: int = 4000        # train notes encoded to fit the XY plane
    calibrate_notes: int = 24      # notes used to calibrate the noise ("life")
    model: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, *, label: str = "training config") -> "TrainConfig":
        cfg = checked_config(cls, data, label=label,
                             positive=("steps", "batch_notes", "frames_per_note", "enc_frames",
                                       "log_every", "val_every", "ckpt_every"))
        if cfg.rec_loss not in ("l1", "rms"):
            raise ParameterError(f"{label}: rec_loss={cfg.rec_loss!r}; use \"l1\" or \"rms\"")
        return cfg

    @classmethod
    def load(cls, path) -> "TrainConfig":
        return cls.from_dict(read_config(path), label=f"training config {path}")
