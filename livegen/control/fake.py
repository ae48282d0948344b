"""A stand-in for the engine that speaks the control protocol, for tests and benchmarks.

It implements the whole `ControlTarget` interface and behaves like the engine towards its
controllers: `post` is thread-safe and non-blocking, events are applied on its own thread at
block boundaries (clamped through the ParamStore and stamped with a sample time), and listeners
hear every applied event on that thread.
"""

from __future__ import annotations

import queue
import threading
import time

from livegen.errors import NO_INPUT, NOT_CONTINUATION
from livegen.engine.events import Event
from livegen.engine.params import ParamStore


class FakeTarget:
    """Engine-shaped target: applies posted events every `blocksize / samplerate` seconds."""

    def __init__(self, *, latent_dim: int = 8, samplerate: int = 48000, blocksize: int = 256):
        self.params = ParamStore.for_model(latent_dim)
        self.samplerate = samplerate
        self.blocksize = blocksize
        self.applied: list[Event] = []
        self.voices: dict[float, int] = {}
        self.presets: dict[int, dict[str, float]] = {}
        self.recording = False
        self.sample = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._listeners: list = []
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="fake-engine", daemon=True)
        self._thread.start()

    # -- the ControlTarget protocol -------------------------------------------------------
    def post(self, event: Event) -> None:
        self._queue.put(event)

    def status(self) -> dict:
        return {
            "xruns": 0, "samplerate": self.samplerate, "blocksize": self.blocksize,
            "voices": len(self.voices), "recording": int(self.recording), "load": 0.1,
            "engine": "fake",
        }

    def add_listener(self, callback) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    meters = None
    """No audio, no meters."""

    def morph_names(self) -> list[str]:
        return []  # presets recall at once here: nothing glides

    def load_model(self, path: str, done) -> None:
        done(False, "this engine cannot load another model while playing")

    def load_seed(self, path: str, done, *, source: str = "") -> None:
        done(False, NOT_CONTINUATION)

    def sound_check(self, seconds: float, done) -> None:
        done(False, NO_INPUT)

    # -- helpers for tests ------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Block until `predicate()` holds after some block was applied (or the timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
        return True

    def _loop(self) -> None:
        period = self.blocksize / self.samplerate
        while not self._stop.is_set():
            time.sleep(period)
            self.sample += self.blocksize
            batch = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for event in batch:
                if self._apply(event):
                    event.sample = self.sample
                    self.applied.append(event)
                    for listener in self._listeners:
                        listener(event)
            with self._changed:
                self._changed.notify_all()

    def _apply(self, event: Event) -> bool:
        if event.type == "param":
            if event.name not in self.params.specs:
                return False
            event.value, _ = self.params.set(event.name, event.value)
        elif event.type == "note_on":
            self.voices[event.pitch] = event.velocity
        elif event.type == "note_off":
            self.voices.pop(event.pitch, None)
        elif event.type == "preset":
            if event.action == "store":
                self.presets[event.slot] = self.params.snapshot()
            elif event.slot in self.presets:
                self.params.restore(self.presets[event.slot])
        elif event.type == "record":
            self.recording = bool(event.value)
        return True
