"""Subscriptions and feedback: what the engine applied, sent to subscribers at up to 30 Hz.

The engine's listener only enqueues; a feedback thread coalesces each tick's changes per
subscriber (latest value per parameter), never echoes a change to the source that sent it, adds
the moves of an engine-side preset morph (which moves parameters without events), status values
that changed and the output meters, and sends. A subscription is a lease: it ends unless renewed.
"""

from __future__ import annotations

import collections
import threading
import time

from livegen.control.oscaddress import PREFIX
from livegen.control.oscwire import encode_message

FEEDBACK_HZ = 30.0
METER_KEYS = ("load", "xruns", "voices", "recording", "peak", "rms", "level", "cpu")


class _Subscriber:
    def __init__(self, source: str, address: tuple[str, int], expires: float):
        self.source = source
        self.address = address
        self.expires = expires
        self.pending: dict[str, float] = {}
        self.notes: list[tuple[int, int]] = []
        self.meters: dict[str, float] = {}
        self.voices_xy: tuple[float, ...] = ()


class Feedback:
    """Subscribers of one server and the thread that feeds them.

    target: the `ControlTarget` (`params`, `status()`, `morph_names()`, `meters`).
    wire: the server's `OscSocket` (`send`, `drain_errors`).
    """

    def __init__(self, target, wire, stats, *, lease: float, max_subscribers: int):
        self.target = target
        self.wire = wire
        self.stats = stats
        self.lease = float(lease)
        self.max_subscribers = max_subscribers
        self._subscribers: dict[str, _Subscriber] = {}
        self._lock = threading.Lock()
        self._applied: collections.deque = collections.deque(maxlen=65536)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._meter_sequence = -1
        self._morph_sent: dict[str, float] = {}
        """Values of morphing parameters last sent to subscribers (see `_morph_moves`)."""

    def __len__(self) -> int:
        return len(self._subscribers)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="osc-feedback", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None

    # -- subscriptions -------------------------------------------------------------------------
    def subscribe(self, destination: tuple[str, int], source: str) -> bool:
        """(Re)subscribe `destination` for a lease; False when the table is full. Every
        (re)subscription gets every current value at once, so faders start in place."""
        key = f"{destination[0]}:{destination[1]}"
        expires = time.monotonic() + self.lease
        with self._lock:
            expired = self._expire(time.monotonic())
            subscriber = self._subscribers.get(key)
            if subscriber is None and len(self._subscribers) < self.max_subscribers:
                subscriber = self._subscribers[key] = _Subscriber(source, destination, expires)
            if subscriber is not None:
                subscriber.source = source
                subscriber.expires = expires
                subscriber.pending.update(self.target.params.snapshot())
        self._tell_expired(expired)
        return subscriber is not None

    def unsubscribe(self, destination: tuple[str, int]) -> None:
        with self._lock:
            self._subscribers.pop(f"{destination[0]}:{destination[1]}", None)

    def renew(self, source: str) -> None:
        """Any message from a subscribing socket extends its lease (no lock: one float store)."""
        if not self._subscribers:
            return
        expires = time.monotonic() + self.lease
        for subscriber in list(self._subscribers.values()):
            if subscriber.source == source:
                subscriber.expires = expires

    def unreachable(self, key: str) -> None:
        """A destination answered with ICMP "unreachable": it has gone away."""
        with self._lock:
            gone = self._subscribers.pop(key, None)
        if gone is not None:
            self.stats["subscribers_unreachable"] += 1

    def _expire(self, now: float) -> list:
        """Drop subscriptions whose lease ran out (call with the lock held); returns their
        addresses, to tell each once the lock is released (it may still be listening)."""
        gone = []
        for key, subscriber in list(self._subscribers.items()):
            if subscriber.expires <= now:
                del self._subscribers[key]
                self.stats["subscribers_expired"] += 1
                gone.append(subscriber.address)
        return gone

    def _tell_expired(self, addresses) -> None:
        for destination in addresses:
            self.wire.send(destination, encode_message(f"{PREFIX}unsubscribed", (destination[1],)))

    def broadcast(self, address: str, args=(), *, skip=None) -> None:
        """Send one message to every subscriber (any thread), but `skip`."""
        try:
            data = encode_message(address, tuple(args))
        except Exception:
            self.stats["encode_failed"] += 1
            return
        with self._lock:
            destinations = [subscriber.address for subscriber in self._subscribers.values()
                            if skip is None or tuple(subscriber.address) != tuple(skip[:2])]
        for destination in destinations:
            self.wire.send(destination, data)

    # -- feedback ------------------------------------------------------------------------------
    def on_applied(self, event) -> None:
        """The engine's listener, on its thread: only enqueue."""
        if not self._stop.is_set():
            self._applied.append(event)

    def _loop(self) -> None:
        period = 1.0 / FEEDBACK_HZ
        next_tick = time.monotonic()
        while not self._stop.is_set():
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_tick = time.monotonic()
            self.tick()

    def tick(self) -> None:
        events = []
        while True:
            try:
                events.append(self._applied.popleft())
            except IndexError:
                break
        self.wire.drain_errors()
        with self._lock:
            expired = self._expire(time.monotonic())
            subscribers = list(self._subscribers.values())
        self._tell_expired(expired)
        if not subscribers:
            return
        snapshot = None
        for event in events:
            for subscriber in subscribers:
                if event.source and event.source == subscriber.source:
                    continue
                if event.type == "param" and event.name is not None:
                    subscriber.pending[event.name] = float(event.value)
                elif event.type in ("note_on", "note_off") and len(subscriber.notes) < 256:
                    subscriber.notes.append((int(event.pitch), int(event.velocity or 0) if event.type == "note_on" else 0))
                elif event.type == "preset" and event.action == "recall":
                    snapshot = snapshot or self.target.params.snapshot()
                    subscriber.pending.update(snapshot)
                elif event.type == "record":
                    subscriber.meters.pop("recording", None)
        moving = self._morph_moves(any(event.type == "preset" and event.action in ("morph", "loop")
                                       for event in events))
        if moving:
            for subscriber in subscribers:
                subscriber.pending.update(moving)
        try:
            status = self.target.status()
        except Exception:
            status = {}
        levels = self._meter_messages()
        for subscriber in subscribers:
            self._flush(subscriber, status, levels)

    def _morph_moves(self, started: bool) -> dict:
        """Parameters an engine-side preset morph or loop moved since the last tick (it moves
        them without events, so subscribers would not see them otherwise), its end values once
        it ends, and, with `started` (a morph event was applied), every parameter that changed
        even when the morph began and ended between two ticks."""
        names = self.target.morph_names()
        if not (names or self._morph_sent or started):
            return {}
        params = self.target.params
        candidates = set(names) if names else set(self._morph_sent)
        if started and not names:
            candidates |= set(params.specs)
        moved = {}
        for name in candidates:
            value = float(params.get(name))
            if self._morph_sent.get(name) != value:
                moved[name] = value
        # a parameter the performer took over leaves the morph: no echo of their own value
        sent = self._morph_sent
        self._morph_sent = {name: moved[name] if name in moved else sent[name] for name in names}
        return moved

    def _meter_messages(self) -> list[bytes]:
        """`/livegen/meter f f` (peak, RMS dBFS) and `/livegen/spectrum f*64` when the target's
        meters finished a window since the last tick."""
        meters = self.target.meters
        if meters is None or meters.sequence == self._meter_sequence:
            return []
        self._meter_sequence = meters.sequence
        peak, rms = meters.levels()
        return [encode_message(f"{PREFIX}meter", (float(peak), float(rms))),
                encode_message(f"{PREFIX}spectrum", tuple(meters.spectrum()))]

    def _flush(self, subscriber: _Subscriber, status: dict, levels=()) -> None:
        out = list(levels)
        pending, subscriber.pending = subscriber.pending, {}
        for name, value in pending.items():
            out.append(encode_message(f"{PREFIX}param/{name}", (value,)))
            if name[:1] == "z" and name[1:].isdigit():
                out.append(encode_message(f"{PREFIX}z/{name[1:]}", (value,)))
        if "x" in pending or "y" in pending:
            params = self.target.params
            out.append(encode_message(f"{PREFIX}xy", (pending.get("x", params.get("x")), pending.get("y", params.get("y")))))
        for pitch, velocity in subscriber.notes:
            out.append(encode_message(f"{PREFIX}note", (pitch, velocity)))
        subscriber.notes = []
        for key, value in status.items():
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, (int, float)) or not any(key.startswith(m) for m in METER_KEYS):
                continue
            if subscriber.meters.get(key) != value:
                subscriber.meters[key] = value
                out.append(encode_message(f"{PREFIX}meter/{key}", (float(value),)))
        points = status.get("voices_xy")
        points = tuple(float(v) for v in points) if points is not None and not isinstance(points, str) else ()
        if points != subscriber.voices_xy:  # the voices' points as they move; no arguments once none sounds
            subscriber.voices_xy = points
            out.append(encode_message(f"{PREFIX}voices_xy", points))
        for data in out:
            self.wire.send(subscriber.address, data)
