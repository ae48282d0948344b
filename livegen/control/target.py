"""What the OSC server asks of the engine: the `ControlTarget` interface.

The OSC server codes against `ControlTarget` alone, so the engine lives in a separate sound
server process (`livegen.server.client.SoundServer` implements this interface for it) without
the server changing; `livegen.control.fake.FakeTarget` implements it for the control tests.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

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

    def sound_check(self, seconds: float, done: Done) -> None:
        """Listen to the audio input for `seconds`, then set `input_gain` for it; `done` with the result."""

