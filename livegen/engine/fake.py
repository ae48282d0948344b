"""A source for tests: a flat spectrum at a level it declares, and a count of what it was told.

Like pedalboard's test-only plugins, it exercises the engine's source interface (parameters,
events, slow preparation, status and header fields, mixing) without a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livegen.engine.params import ParamSpec
from livegen.engine.source import Hop, Source, SourceContext


@dataclass(frozen=True)
class FakeConfig:
    """The settings an engine needs from a model (a 24 kHz STFT of 1024/128, 2 latent dimensions)."""

    sample_rate: int = 24000
    n_fft: int = 1024
    hop: int = 128
    latent_dim: int = 2

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


class FakeSource(Source):
    """Adds ``level`` (its parameter, named `name`) to the bins `bins` (a slice) every hop; takes
    `fake` events and note-ons (counted), prepares `fake` events by attaching a payload."""

    events = ("fake", "note_on")

    def __init__(self, name: str = "fake_level", *, level: float = 1.0, bins=slice(10, 20)):
        self.name = name
        self.level = float(level)
        self.bins = bins
        self.reacts_to = (name,)
        self.handled: list = []
        self.changed: list = []
        self.hops = 0

    def params(self):
        return [ParamSpec(self.name, 0.0, 10.0, self.level, "", 0.0, description="the fake source's level")]

    def bind(self, context: SourceContext) -> None:
        self._index = context.params.index[self.name]

    def add(self, frame: np.ndarray, hop: Hop) -> None:
        frame[self.bins] += np.float32(hop.values[self._index])
        self.hops += 1

    def handle(self, event) -> bool:
        if event.type == "fake" and event.payload is None:
            return False  # never prepared
        self.handled.append(event)
        return True

    def param_changed(self, name: str, value: float) -> None:
        self.changed.append((name, value))

    def prepare(self, event, *, log_path=None, warn=None):
        if event.type == "fake" and event.payload is None:
            event.payload = ("prepared", event.extra.get("path"))
        return event

    def status(self) -> dict:
        return {f"{self.name}_events": len(self.handled)}

    def header(self) -> dict:
        return {f"{self.name}_header": self.level}
