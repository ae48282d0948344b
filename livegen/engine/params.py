"""The parameter registry: one list of named, ranged, unit-carrying parameters.

Like a plugin's parameter list, it serves every consumer at once: MIDI learn and CC maps
(ranges), OSC addresses (names), the TUI's sliders (units, defaults), presets and the
session log. Control sources never write here directly; they send events that the engine
applies at block boundaries (see `livegen.engine.events`), so the engine thread owns the
values and other threads only read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from livegen.errors import ParameterError


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its range, unit, default and how fast the engine follows a new value."""

    name: str
    minimum: float
    maximum: float
    default: float
    unit: str = ""
    smoothing: float = 0.0
    """Time constant in seconds of the one-pole smoother the engine applies (0 = jump)."""
    integer: bool = False
    description: str = ""

    def __post_init__(self):
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"{self.name}: default {self.default} outside [{self.minimum}, {self.maximum}]")

    def clamp(self, value: float) -> tuple[float, bool]:
        """Return the value brought into range (rounded for integer parameters) and whether it moved."""
        clamped = min(max(value, self.minimum), self.maximum)
        if self.integer:
            clamped = float(round(clamped))
        return clamped, clamped != value

    def to_unit(self, value: float) -> float:
        """Map a value to 0..1 over the range (what knobs, faders and the XY pad speak)."""
        return (value - self.minimum) / (self.maximum - self.minimum)

    def from_unit(self, fraction: float) -> float:
        return self.minimum + min(max(fraction, 0.0), 1.0) * (self.maximum - self.minimum)


def engine_param_specs() -> list[ParamSpec]:
    """Parameters every model shares; latent offsets come from `latent_param_specs`."""
    return [
        ParamSpec("x", 0.0, 1.0, 0.5, "", 0.0, description="XY pad horizontal position on the latent plane"),
        ParamSpec("y", 0.0, 1.0, 0.5, "", 0.0, description="XY pad vertical position on the latent plane"),
        ParamSpec("gain", -60.0, 12.0, -6.0, "dB", 0.02, description="output gain before the limiter"),
        ParamSpec("glide", 0.0, 5.0, 0.05, "s", 0.0, description="time constant of latent-point smoothing"),
        ParamSpec("drift", 0.0, 1.0, 0.0, "", 0.0, description="amount of autonomous latent motion (bounded random walk)"),
        ParamSpec("drift_speed", 0.01, 10.0, 0.5, "Hz", 0.0, description="speed of the autonomous latent motion"),
        ParamSpec("voices", 1, 16, 8, "", 0.0, integer=True, description="maximum simultaneous note voices (oldest stolen)"),
        ParamSpec("quality", 0, 16, 3, "iters", 0.0, integer=True, description="phase-reconstruction iterations per hop"),
        ParamSpec("ceiling", -24.0, 0.0, -0.3, "dBFS", 0.0, description="hard ceiling of the output limiter"),
        ParamSpec("drone", 0, 1, 1, "", 0.0, integer=True, description="latent point sounds without notes (1 on, 0 off)"),
        ParamSpec("drone_pitch", 21.0, 108.0, 48.0, "MIDI", 0.05, description="pitch of the drone voice"),
        ParamSpec("drone_level", 0.0, 1.0, 0.7, "", 0.02, description="velocity of the drone voice"),
        ParamSpec("bend", -1.0, 1.0, 0.0, "", 0.005, description="pitch bend position (-1..1)"),
        ParamSpec("bend_range", 0.0, 24.0, 2.0, "st", 0.0, description="pitch bend range in semitones"),
        ParamSpec("sustain", 0, 1, 0, "", 0.0, integer=True, description="sustain pedal (1 down, 0 up)"),
    ]


LATENT_RANGE = 4.0
"""Latent offsets span ±4 in the model's latent units (its prior is N(0, 1))."""


def latent_param_specs(latent_dim: int) -> list[ParamSpec]:
    return [
        ParamSpec(f"z{i}", -LATENT_RANGE, LATENT_RANGE, 0.0, "", 0.0,
                  description=f"offset along latent dimension {i} from the XY pad's point")
        for i in range(latent_dim)
    ]


class ParamStore:
    """Target and smoothed values of every parameter, in fixed order for cheap per-hop reads."""

    def __init__(self, specs: list[ParamSpec]):
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.specs: dict[str, ParamSpec] = {spec.name: spec for spec in specs}
        self.index: dict[str, int] = {name: i for i, name in enumerate(names)}
        self.targets = np.array([spec.default for spec in specs], dtype=np.float64)
        self.values = self.targets.copy()
        self._time_constants = np.array([spec.smoothing for spec in specs], dtype=np.float64)
        self._step_seconds = None
        self._coefficients = np.zeros_like(self._time_constants)

    @classmethod
    def for_model(cls, latent_dim: int) -> "ParamStore":
        return cls(engine_param_specs() + latent_param_specs(latent_dim))

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def spec(self, name: str) -> ParamSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise ParameterError(
                f"unknown parameter {name!r}; known parameters: {', '.join(self.specs)}"
            ) from None

    def check(self, name: str, value: float) -> tuple[float, bool]:
        """Validate and clamp a value for a parameter without applying it."""
        spec = self.spec(name)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"parameter {name!r} needs a number, got {value!r}") from None
        if not math.isfinite(value):
            raise ParameterError(f"parameter {name!r} needs a finite number, got {value!r}")
        return spec.clamp(value)

    def set(self, name: str, value: float) -> tuple[float, bool]:
        """Set a target value; returns (applied value, whether it was clamped)."""
        clamped, moved = self.check(name, value)
        i = self.index[name]
        self.targets[i] = clamped
        if self._time_constants[i] == 0.0:
            self.values[i] = clamped
        return clamped, moved

    def get(self, name: str) -> float:
        """The target value: what the performer last asked for."""
        return float(self.targets[self.index[self.spec(name).name]])

    def value(self, name: str) -> float:
        """The smoothed value the engine is using now."""
        return float(self.values[self.index[self.spec(name).name]])

    def advance(self, seconds: float) -> None:
        """Move smoothed values towards their targets by one engine step of `seconds`.

        Runs once per hop, so the coefficients are cached per step length and the update is
        done in place.
        """
        if seconds != self._step_seconds:
            with np.errstate(divide="ignore"):
                self._coefficients = np.where(self._time_constants > 0, np.exp(-seconds / self._time_constants), 0.0)
            self._step_seconds = seconds
        values = self.values
        np.subtract(values, self.targets, out=values)
        np.multiply(values, self._coefficients, out=values)
        np.add(values, self.targets, out=values)

    def snapshot(self) -> dict[str, float]:
        return {name: float(self.targets[i]) for name, i in self.index.items()}

    def restore(self, values: dict[str, float]) -> None:
        """Apply a preset; names this model does not have are ignored (presets move between models)."""
        for name, value in values.items():
            if name in self.specs:
                self.set(name, value)
