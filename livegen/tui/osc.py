"""The UI's OSC link to the engine server: one UDP socket, a receive thread, coalesced updates.

The engine replies to the address a request came from, so the UI sends and receives on the
same socket. The receive thread never touches widgets: it folds what arrives into a small
`EngineDelta` (latest value per parameter, latest meter, spectrum rows, status pairs, rows of
the parameter table) and wakes the UI with one message only when the previous delta has been
taken. However fast the engine talks, the UI sees at most one pending update, and redraws at
its own pace.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket, ParseError

from livegen.control.oscaddress import PREFIX
from livegen.control.oscwire import encode_message
from livegen.tui.params import ParamInfo, info_from_args

MAX_SPECTRUM_ROWS = 64


@dataclass
class EngineDelta:
    """Everything the engine said since the UI last looked; newest value wins per key."""

    params: dict[str, float] = field(default_factory=dict)
    meter: tuple[float, float] | None = None
    spectra: list[list[float]] = field(default_factory=list)
    status: dict[str, object] | None = None
    errors: list[str] = field(default_factory=list)
    learned: list[tuple[str, str]] = field(default_factory=list)
    bindings: list[tuple[str, str]] | None = None
    model: str | None = None
    seeded: str | None = None
    sound_checked: str | None = None
    """`/livegen/input/soundcheck`'s answer: the gain it set and what it heard."""
    param_rows: list[tuple[int, int, ParamInfo]] = field(default_factory=list)
    """`/livegen/params` replies: (index, count, parameter)."""
    voices_xy: list[tuple[float, float]] | None = None
    """The pad points of the sounding voices with an id (status `voices_xy`); None: not told."""
    received: int = 0
    last_address: str = ""

    def empty(self) -> bool:
        return self.received == 0


def param_address(name: str) -> str:
    """Latent offsets go to `/livegen/z/<i>`, everything else to `/livegen/param/<name>`."""
    if name.startswith("z") and name[1:].isdigit():
        return f"{PREFIX}z/{name[1:]}"
    return f"{PREFIX}param/{name}"


def _pairs(args) -> list[tuple[str, object]]:
    return [(str(args[i]), args[i + 1]) for i in range(0, len(args) - 1, 2)]


def status_numbers(value) -> list[float]:
    """A status value that is a list of numbers, or its text over OSC (`[0.2, 0.5]`; numpy's
    `[0.2 0.5]`), as floats; [] when it is neither."""
    if isinstance(value, str):
        value = value.strip("[]() ").replace(",", " ").split()
    if not isinstance(value, (list, tuple)):
        return []
    try:
        return [float(part) for part in value]
    except (TypeError, ValueError):
        return []


def voice_points(value) -> list[tuple[float, float]]:
    """`voices_xy` (flat x, y, x, y, ...) as points on the pad, clipped to it; non-finite ones dropped."""
    flat = status_numbers(value)
    return [(min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0))
            for x, y in zip(flat[0::2], flat[1::2]) if math.isfinite(x) and math.isfinite(y)]


class OscLink:
    """Send OSC to the engine and collect its replies and subscriptions in the background.

    `wake` is called (from the receive thread) when a delta becomes non-empty; the UI then
    calls `take()` to swap it out. Sending is a plain `sendto` and never blocks the UI.
    """

    def __init__(self, host: str, port: int, *, wake: Callable[[], None] | None = None):
        self.host = host
        self.port = port
        self.wake = wake
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1" if host in ("127.0.0.1", "localhost") else "0.0.0.0", 0))
        self.sock.settimeout(0.2)
        self.local_port = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        self._delta = EngineDelta()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.last_sent = ""
        self.last_reply_time = 0.0

    # -- sending ---------------------------------------------------------------------------
    def send(self, address: str, *args) -> None:
        try:
            self.sock.sendto(encode_message(address, args), (self.host, self.port))
        except OSError:
            return  # engine not up yet or gone: the status line says so
        self.sent += 1
        self.last_sent = address

    def xy(self, x: float, y: float) -> None:
        self.send(PREFIX + "xy", float(x), float(y))

    def param(self, name: str, value: float) -> None:
        self.send(param_address(name), float(value))

    def note(self, pitch: int, velocity: int) -> None:
        self.send(PREFIX + "note", int(pitch), int(velocity))

    def subscribe(self) -> None:
        self.send(PREFIX + "subscribe", self.local_port)

    def ask_params(self) -> None:
        """The engine answers with its parameter table (see `livegen.tui.params`)."""
        self.send(PREFIX + "params")

    # -- receiving -------------------------------------------------------------------------
    def start(self) -> "OscLink":
        self._thread = threading.Thread(target=self._receive, name="livegen-ui-osc", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self.sock.close()

    def take(self) -> EngineDelta:
        with self._lock:
            delta, self._delta = self._delta, EngineDelta()
        return delta

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # e.g. ICMP port unreachable while the engine starts
                continue
            try:
                messages = OscPacket(data).messages
            except (ParseError, ValueError, IndexError, TypeError):
                continue
            with self._lock:
                was_empty = self._delta.empty()
                for timed in messages:
                    self._fold(timed.message)
                woke = was_empty and not self._delta.empty()
            if woke and self.wake is not None:
                self.wake()

    def _fold(self, message: OscMessage) -> None:
        address, args = message.address, message.params
        delta = self._delta
        if not address.startswith(PREFIX):
            return
        verb = address[len(PREFIX):]
        self.last_reply_time = time.monotonic()
        try:
            if verb.startswith("param/") and args:
                delta.params[verb[6:]] = float(args[0])
            elif verb.startswith("z/") and args:
                delta.params["z" + verb[2:]] = float(args[0])
            elif verb == "xy" and len(args) >= 2:
                delta.params["x"] = float(args[0])
                delta.params["y"] = float(args[1])
            elif verb == "meter" and len(args) >= 2:
                delta.meter = (float(args[0]), float(args[1]))
            elif verb.startswith("meter/") and args:
                # The engine's live status values (load, xruns, voices, ...) at feedback rate.
                status = delta.status if delta.status is not None else {}
                status[verb[6:]] = args[0]
                delta.status = status
            elif verb == "spectrum" and args:
                delta.spectra.append([float(a) for a in args])
                del delta.spectra[:-MAX_SPECTRUM_ROWS]
            elif verb == "status":
                status = delta.status if delta.status is not None else {}
                pairs = dict(_pairs(args))
                status.update(pairs)
                delta.status = status
                delta.voices_xy = voice_points(pairs.get("voices_xy"))  # absent: no voice sounds
            elif verb == "voices_xy":
                delta.voices_xy = voice_points(list(args))
            elif verb == "error":
                delta.errors.append(" ".join(str(a) for a in args))
            elif verb == "learned" and len(args) >= 2:
                delta.learned.append((str(args[0]), str(args[1])))
            elif verb == "bindings":
                delta.bindings = [(str(a), str(b)) for a, b in _pairs(args)]
            elif verb == "model" and args:
                delta.model = str(args[0])
            elif verb == "seed" and args:
                delta.seeded = str(args[0])
            elif verb == "input/soundcheck" and args:
                delta.sound_checked = str(args[0])
            elif verb == "params":
                delta.param_rows.append(info_from_args(args))
            elif verb in ("subscribed", "note"):
                pass  # replies that only prove the engine is there
            else:
                return
        except (TypeError, ValueError):
            return
        delta.received += 1
        delta.last_address = address
