"""`/livegen/seed s` in the client: read and analyse a seed file here, never in the sound server.

The continuation model's style encoder and the file's STFT take tens to hundreds of
milliseconds of interpreter time; the sound server must not spend that beside its callback. The
prepared frames travel to it as the `seed` event's payload (a shared-memory blob).
"""

from __future__ import annotations

import os
import threading

from livegen.continuation.io import load_continuation
from livegen.continuation.seeds import prepare_seed, seed_event
from livegen.errors import LivegenError


class SeedLoader:
    """One seed at a time, on a worker thread at low CPU priority; the model is loaded once per directory."""

    def __init__(self):
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()
        self._busy = False

    def __call__(self, engine, path, done, source: str = "") -> None:
        with self._lock:
            if self._busy:
                done(False, f"/livegen/seed {path}: another seed file is still being read; try again when it plays")
                return
            self._busy = True
        threading.Thread(target=self._prepare, args=(engine, path, done, source), name="livegen-seed",
                         daemon=True).start()

    def _prepare(self, engine, path, done, source: str) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (OSError, AttributeError):
            pass
        try:
            model_dir = str(engine.spec["model"])
            if model_dir not in self._models:
                self._models[model_dir] = load_continuation(model_dir)
            prepared = prepare_seed(self._models[model_dir], path)
        except LivegenError as exc:
            ok, text = False, str(exc)
        except Exception as exc:  # a bad file must not end the performance
            ok, text = False, f"/livegen/seed {path}: cannot use it ({type(exc).__name__}: {exc})"
        else:
            engine.post(seed_event(prepared, source=source))
            ok, text = True, prepared.path
        finally:
            with self._lock:
                self._busy = False
        done(ok, text)
