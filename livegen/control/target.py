"""What the OSC server asks of the engine: the `ControlTarget` interface, and a bridge to today's engine.

The OSC server codes against `ControlTarget` alone, so the engine can move into a separate sound
server process (its client then implements this interface) without the server changing.
`InProcessTarget` adapts the in-process `LiveEngine`, which lacks a few of these methods; it
goes once the engine implements the interface itself.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

from livegen.engine.events import Event
from livegen.errors import NOT_CONTINUATION

Done = Callable[[bool, str], None]
"""`done(ok, text)`: called (from any thread) when slow work ends; `text` is the result or what
was wrong, fit for `/livegen/error s`."""


@runtime_checkable
class ControlTarget(Protocol):
    """The engine as its controllers see it.

    `params` is read-only for controllers: `specs` (name -> spec with `minimum`, `maximum`,
    `default`, `unit`, `integer`, `description`), `spec(name)`, `get(name)` (target value),
    `check(name, value)` (clamped value, whether it moved; raises `ParameterError`) and
    `snapshot()`. Every change goes through `post`.
    """

    params: object
    meters: object | None
    """Output meters (`sequence`, `levels()` -> (peak, rms) dBFS, `spectrum()`), or None."""

    def post(self, event) -> None:
        """Thread-safe, non-blocking: the engine applies the event at its next hop."""

    def status(self) -> dict:
        """Name/value pairs for `/livegen/status` (ints, floats, strings)."""

    def add_listener(self, callback) -> None:
        """`callback(event)` for every applied event, stamped, on the engine's thread."""

    def remove_listener(self, callback) -> None: ...

    def morph_names(self) -> list[str]:
        """Parameters a running preset morph or loop still moves (it moves them without events)."""

    def load_model(self, path: str, done: Done) -> None:
        """Play another model directory (or `random`) with a fade; `done` when it plays or failed."""

    def load_seed(self, path: str, done: Done, *, source: str = "") -> None:
        """Continuation models: play an audio file's frames, then continue; `done` once queued."""




class InProcessTarget:
    """Today's `LiveEngine` (the engine server's, in this process) as a `ControlTarget`.

    It plays one `Engine` at a time (`live.engine`, swapped on a model change): preset morphs
    and seeds are that engine's, and only an engine with a source that takes `seed` events (a
    continuation model's) takes seeds.
    """

    def __init__(self, live):
        self.live = live

    @property
    def params(self):
        return self.live.params  # follows a model change

    @property
    def meters(self):
        return self.live.meters

    def post(self, event) -> None:
        self.live.post(event)

    def status(self) -> dict:
        return self.live.status()

    def add_listener(self, callback) -> None:
        self.live.add_listener(callback)

    def remove_listener(self, callback) -> None:
        self.live.remove_listener(callback)

    @property
    def engine(self):
        """The engine playing now (another after a model switch)."""
        return self.live.engine

    def morph_names(self) -> list[str]:
        return self.engine.morph_names()

    def load_model(self, path: str, done: Done) -> None:
        self.live.load_model(path, done)

    def load_seed(self, path: str, done: Done, *, source: str = "") -> None:
        engine = self.engine
        if not engine.handles("seed"):
            done(False, NOT_CONTINUATION)
            return
        # read and analysed on a worker thread, then posted; `done` names the file or what was wrong
        engine.submit(Event("seed", source=source, extra={"path": path}), done, what=f"/livegen/seed {path}: ")


def as_control_target(target) -> ControlTarget:
    """`target` itself when it implements `ControlTarget`, else a `LiveEngine` bridged."""
    return target if isinstance(target, ControlTarget) else InProcessTarget(target)
