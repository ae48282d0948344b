"""`/livegen/seed s` in the client: read and analyse a seed file here, never in the sound server.

The continuation model's style encoder and the file's STFT take tens to hundreds of
milliseconds of interpreter time; the sound server must not spend that beside its callback. The
prepared frames travel to it as the `seed` event's payload (a shared-memory blob).
"""

from __future__ import annotations

from livegen.continuation.io import load_continuation
from livegen.continuation.seeds import prepare_seed, seed_event
from livegen.engine.prepare import Preparer


class SeedLoader:
    """One seed at a time, on a worker thread at low CPU priority (`Preparer`); the model is
    loaded once per directory."""

    def __init__(self):
        self._models: dict[str, object] = {}
        self._preparer = Preparer()

    def __call__(self, engine, path, done, source: str = "") -> None:
        def prepare():
            model_dir = str(engine.spec["model"])
            if model_dir not in self._models:
                self._models[model_dir] = load_continuation(model_dir)
            return seed_event(prepare_seed(self._models[model_dir], path), source=source)

        self._preparer.start(prepare, engine.post, done, what=f"/livegen/seed {path}: ", kind="seed")
