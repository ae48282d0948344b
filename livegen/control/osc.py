"""OSC control: the `/livegen/...` address space over UDP, with replies and subscriptions.

One receive thread parses each datagram (`livegen.control.oscwire`), turns messages into
events posted to the engine (`ControlTarget.post`), and answers the sender on the same socket.
Bundles whose time tag lies ahead go to a scheduler thread that posts them at their time, so
the receive path never sleeps. A feedback thread sends applied changes and meters to
subscribers at up to 30 Hz, coalesced, never echoing a change to the source that sent it.

Address space (ints and floats both accepted; values are clamped to the parameter's range and
the sender is told with `/livegen/error s`):

=============================  =========  =========================================================
address                        args       effect / reply
=============================  =========  =========================================================
/livegen/xy                    f f        x, y on the latent plane, 0..1 each
/livegen/z/<i>                 f          latent offset z<i>, -4..4
/livegen/param/<name>          f          any parameter (see `/livegen/params`)
/livegen/note                  i i        pitch 0..127, velocity 0..127 (0 = note off)
/livegen/record                i          1 starts, 0 stops recording
/livegen/preset/store          i          store current parameters in slot 0..127
/livegen/preset/recall         i          recall slot 0..127 (stops a morph or loop)
/livegen/preset/morph          i f        glide every stored parameter to slot 0..127 over f seconds
                                          (>= 0); a parameter moved meanwhile leaves the morph
/livegen/preset/loop           f [i ...]  glide slot to slot, f seconds a leg, round and round: the
                                          slots given (at least 2, 0..127) or every stored slot;
                                          0 seconds stops; subscribers see the moving parameters
/livegen/learn                 s          arm MIDI learn for a parameter ("" cancels; "record": a
                                          button that toggles recording); replies
                                          /livegen/learned s s (parameter, control) once bound
/livegen/unlearn               s          remove a parameter's MIDI bindings (map file saved);
                                          replies /livegen/bindings
/livegen/model                 s          load another model directory while playing (the sound fades
                                          over); replies /livegen/model s (its path) once it plays
/livegen/seed                  s          continuation models: play an audio file's frames now, the
                                          model takes over where it ends; replies /livegen/seed s (its
                                          absolute path) once it is queued
/livegen/bindings                         replies /livegen/bindings s s ... (parameter, control pairs)
/livegen/get/<name>                       replies /livegen/param/<name> f
/livegen/params                           replies /livegen/params s f f f ... (name min max default)
/livegen/status                           replies /livegen/status s ? s ? ... (name/value pairs)
/livegen/subscribe             [i]        feedback to the sender (or to port i on its host) for a
                                          lease of 60 s; replies /livegen/subscribed i f (port,
                                          lease seconds). Send it again (every 20 s, say) to renew;
                                          any message from the subscribing socket renews too
/livegen/unsubscribe           [i]        stop feedback
(to subscribers)               i          /livegen/unsubscribed: the lease ran out (or sends to the
                                          port failed): subscribe again
(to subscribers)               f f        /livegen/meter: output peak and RMS dBFS of the last ~33 ms
(to subscribers)               f*64       /livegen/spectrum: 64 log-spaced band levels (dB), 30 Hz..Nyquist
(to subscribers)               s          /livegen/error s when a recording fails
=============================  =========  =========================================================
"""

from __future__ import annotations

import argparse
import collections
import heapq
import ipaddress
import math
import socket
import threading
import time

from livegen.control.mapping import RECORD
from livegen.control.oscwire import MAX_PACKET, OscParseError, encode_message, parse_packet
from livegen.engine.events import Event
from livegen.errors import DeviceError, ParameterError

PREFIX = "/livegen/"
FEEDBACK_HZ = 30.0
MAX_SUBSCRIBERS = 16
SUBSCRIPTION_LEASE = 60.0
"""Seconds a subscription lasts unless renewed: a tablet that left the network frees its slot."""
_RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11)),
            socket.AF_INET6: (socket.IPPROTO_IPV6, getattr(socket, "IPV6_RECVERR", 25))}
"""Linux: report ICMP errors (port/host unreachable) for an unconnected UDP socket, with the
address that caused them, on its error queue (without it Linux, like the BSDs, drops them)."""
_UNREACHABLE = (ConnectionRefusedError, ConnectionResetError)
MAX_SCHEDULED = 4096
MAX_AHEAD = 60.0
"""A bundle may ask for a time at most this many seconds ahead."""
PRESET_SLOTS = 128
ERRORS_PER_SECOND = 50.0
QUERIES = tuple(f"{PREFIX}{verb}" for verb in ("status", "get", "params", "subscribe", "unsubscribe", "bindings"))
"""Addresses that only ask: not shown as the last address received (`osc_last`)."""
METER_KEYS = ("load", "xruns", "voices", "recording", "peak", "rms", "level", "cpu")


def _number(value) -> float | None:
    """OSC numbers: i, h, f, d (and T/F as 1/0); None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


class _Subscriber:
    def __init__(self, source: str, address: tuple[str, int], expires: float):
        self.source = source
        self.address = address
        self.expires = expires
        self.pending: dict[str, float] = {}
        self.notes: list[tuple[int, int]] = []
        self.meters: dict[str, float] = {}


class OscServer:
    """Listen for OSC on `host:port` and drive `target` (the engine's control protocol).

    Parameters
    ----------
    target : ControlTarget
        Has `params`, `post(event)`, `status()`, `add_listener(callback)`.
    host, port : where to listen; port 0 picks any free port (see `.port` after `start`).
    allow : CIDR strings or networks; datagrams from other addresses are dropped silently
        (no reply, so the instrument cannot be used to reflect traffic). None allows all.
    midi : optional MIDI input with `arm(param, on_learned)` / `disarm()` for `/livegen/learn`.
    lease : seconds a subscription lasts without renewal (`/livegen/subscribe` again, or any
        message from the subscribing socket).
    """

    def __init__(self, target, host: str = "127.0.0.1", port: int = 9000, allow=None, *,
                 midi=None, max_packet: int = MAX_PACKET, lease: float = SUBSCRIPTION_LEASE):
        if not lease > 0:
            raise ParameterError(f"subscription lease {lease!r} must be a positive number of seconds")
        self.lease = float(lease)
        self.target = target
        self.host = host
        self.requested_port = int(port)
        self.allow = parse_allow(allow) if allow is not None else None
        self.midi = midi
        self.max_packet = max_packet
        self.port: int | None = None
        self.stats = collections.Counter()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._scheduled: list = []
        self._scheduled_seq = 0
        self._schedule_cv = threading.Condition()
        self._subscribers: dict[str, _Subscriber] = {}
        self._subscribers_lock = threading.Lock()
        self._applied: collections.deque = collections.deque(maxlen=65536)
        self._error_budget: dict[str, list[float]] = {}
        self._listening = False
        self.last_internal_error: str | None = None
        self.last_address = ""
        self._meter_sequence = -1
        self._morph_sent: dict[str, float] = {}
        """Values of morphing parameters last sent to subscribers (see `_morph_feedback`)."""

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> "OscServer":
        try:
            infos = socket.getaddrinfo(self.host, self.requested_port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise ParameterError(
                f"cannot listen for OSC on host {self.host!r}: {exc.strerror}; give an address "
                "of this machine with --osc-host (127.0.0.1 for loopback, 0.0.0.0 for all)") from None
        if not 0 <= self.requested_port <= 65535:
            raise ParameterError(f"OSC port {self.requested_port} is out of range; choose 0..65535 with --osc-port")
        family, _, _, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            sock.close()
            raise DeviceError(
                f"cannot listen for OSC on {self.host}:{self.requested_port}: {exc.strerror or exc}; "
                "choose another port with --osc-port (0 picks a free one)") from None
        sock.settimeout(0.2)
        self._recverr = _enable_recverr(sock, family)
        self._sock = sock
        self.port = sock.getsockname()[1]
        if not self._listening:
            self.target.add_listener(self._on_applied)
            self._listening = True
        self._stop.clear()
        for name, loop in (("osc-receive", self._receive_loop), ("osc-schedule", self._schedule_loop),
                           ("osc-feedback", self._feedback_loop)):
            thread = threading.Thread(target=loop, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._schedule_cv:
            self._schedule_cv.notify_all()
        for thread in self._threads:
            thread.join(2)
        self._threads.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        remove = getattr(self.target, "remove_listener", None)  # not in the protocol; the callback goes quiet anyway
        if remove is not None and self._listening:
            remove(self._on_applied)
            self._listening = False

    def __enter__(self):
        return self.start() if self._sock is None else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- receiving -----------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            try:
                data, sender = sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                self._drop_unreachable()  # an ICMP error a reply caused surfaces here too
                continue
            try:
                self.handle_datagram(data, sender)
            except Exception as exc:  # never let one packet end the server
                self.stats["internal_errors"] += 1
                self.last_internal_error = repr(exc)
                self._error(sender, f"internal error handling packet: {type(exc).__name__}: {exc}")

    def handle_datagram(self, data: bytes, sender: tuple, *, now: float | None = None) -> None:
        """Everything the server does with one datagram (public so tests can fuzz it without UDP)."""
        self.stats["packets"] += 1
        if self.allow is not None and not _allowed(sender[0], self.allow):
            self.stats["refused"] += 1
            return
        try:
            messages = parse_packet(data, max_size=self.max_packet)
        except OscParseError as exc:
            self.stats["malformed"] += 1
            self._error(sender, f"malformed packet: {exc}")
            return
        if self._subscribers:
            self._renew(f"osc:{sender[0]}:{sender[1]}")
        now = time.time() if now is None else now
        for message in messages:
            if message.time is not None and message.time > now + 0.0005:
                self._schedule(message, sender, now)
            else:
                self.handle_message(message.address, message.args, sender)

    def _schedule(self, message, sender, now: float) -> None:
        if message.time - now > MAX_AHEAD:
            self._error(sender, f"{message.address}: bundle time is {message.time - now:.1f} s ahead; "
                                f"at most {MAX_AHEAD:.0f} s (check the sender's clock)")
            return
        with self._schedule_cv:
            if len(self._scheduled) >= MAX_SCHEDULED:
                self._error(sender, f"{message.address}: {MAX_SCHEDULED} bundled messages already wait; dropped")
                return
            self._scheduled_seq += 1
            heapq.heappush(self._scheduled, (message.time, self._scheduled_seq, message.address, message.args, sender))
            self.stats["scheduled"] += 1
            self._schedule_cv.notify()

    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            with self._schedule_cv:
                if not self._scheduled:
                    self._schedule_cv.wait(0.5)
                    continue
                wait = self._scheduled[0][0] - time.time()
                if wait > 0:
                    self._schedule_cv.wait(min(wait, 0.5))
                    continue
                _, _, address, args, sender = heapq.heappop(self._scheduled)
            try:
                self.handle_message(address, args, sender)
            except Exception as exc:
                self.stats["internal_errors"] += 1
                self.last_internal_error = repr(exc)
                self._error(sender, f"internal error: {type(exc).__name__}: {exc}")

    # -- the address space -------------------------------------------------------------------
    def handle_message(self, address: str, args: tuple, sender: tuple) -> None:
        self.stats["messages"] += 1
        if not address.startswith(QUERIES):  # the UI's own polling would hide what was played
            self.last_address = address[:64]
        source = f"osc:{sender[0]}:{sender[1]}"
        if not address.startswith(PREFIX):
            self._error(sender, f"unknown address {address!r}; livegen listens under {PREFIX}")
            return
        path = address[len(PREFIX):]
        head, _, rest = path.partition("/")
        params = self.target.params
        if head == "xy" and not rest:
            values = self._numbers(address, args, 2, sender)
            if values is not None:
                checked = [self._checked(address, name, v, sender) for name, v in zip(("x", "y"), values)]
                for name, value in zip(("x", "y"), checked):
                    if value is not None:
                        self._post(Event("param", name=name, value=value), source)
        elif head in ("z", "param") and rest:
            name = f"z{rest}" if head == "z" else rest
            if name not in params.specs:
                what = f"latent dimension {rest!r} (this model has z0..z{self._latent_count() - 1})" \
                    if head == "z" else f"parameter {rest!r}"
                self._error(sender, f"{address}: no {what}; /livegen/params lists them")
                return
            values = self._numbers(address, args, 1, sender)
            if values is not None:
                value = self._checked(address, name, values[0], sender)
                if value is not None:
                    self._post(Event("param", name=name, value=value), source)
        elif head == "get":
            name = rest or (args[0] if len(args) == 1 and isinstance(args[0], str) else "")
            if name not in params.specs:
                self._error(sender, f"{address}: no parameter {name!r}; /livegen/params lists them")
                return
            self._reply(sender, f"{PREFIX}param/{name}", (float(params.get(name)),))
        elif head == "note" and not rest:
            values = self._numbers(address, args, 2, sender)
            if values is None:
                return
            pitch, velocity = values
            if not 0 <= pitch <= 127:
                self._error(sender, f"{address}: pitch {pitch:g} outside 0..127; refused")
                return
            if not 0 <= velocity <= 127:
                clamped = min(max(velocity, 0.0), 127.0)
                self._error(sender, f"{address}: velocity {velocity:g} clamped to {clamped:g} (0..127)")
                velocity = clamped
            velocity = int(round(velocity))
            event = Event("note_on", pitch=pitch, velocity=velocity) if velocity > 0 else Event("note_off", pitch=pitch)
            self._post(event, source)
        elif head == "record" and not rest:
            values = self._numbers(address, args, 1, sender)
            if values is not None:
                self._post(Event("record", value=1.0 if values[0] >= 0.5 else 0.0), source)
        elif head == "preset" and rest in ("morph", "loop"):
            self._preset_morph(address, rest, args, sender, source)
        elif head == "preset" and rest in ("store", "recall"):
            values = self._numbers(address, args, 1, sender)
            if values is None:
                return
            slot = values[0]
            if slot != int(slot) or not 0 <= slot < PRESET_SLOTS:
                self._error(sender, f"{address}: slot {slot:g} must be a whole number 0..{PRESET_SLOTS - 1}; refused")
                return
            self._post(Event("preset", action=rest, slot=int(slot)), source)
        elif head == "learn" and not rest:
            self._learn(address, args, sender)
        elif head == "model" and not rest:
            self._load_model(address, args, sender)
        elif head == "seed" and not rest:
            self._seed(address, args, sender, source)
        elif head == "unlearn" and not rest:
            self._unlearn(address, args, sender)
        elif head == "bindings" and not rest:
            flat = [text for pair in (self.midi.bindings() if self.midi is not None else []) for text in pair]
            self._reply(sender, f"{PREFIX}bindings", tuple(flat))
        elif head == "params" and not rest:
            flat = []
            for name, spec in params.specs.items():
                flat += [name, float(spec.minimum), float(spec.maximum), float(spec.default)]
            self._reply(sender, f"{PREFIX}params", tuple(flat))
        elif head == "status" and not rest:
            self._reply(sender, f"{PREFIX}status", tuple(_status_pairs(self.status())))
        elif head in ("subscribe", "unsubscribe") and not rest:
            self._subscribe(address, args, sender, source, on=head == "subscribe")
        else:
            self._error(sender, f"unknown address {address!r}; see the address table in the README")

    def status(self) -> dict:
        """The engine's status plus this server's and the MIDI input's."""
        status = dict(self.target.status())
        status["osc_port"] = self.port or 0
        status["osc_subscribers"] = len(self._subscribers)
        status["osc_last"] = self.last_address
        if self.midi is not None and hasattr(self.midi, "status"):
            for key, value in self.midi.status().items():
                status[f"midi_{key}"] = value
        return status

    def _latent_count(self) -> int:
        return sum(1 for name in self.target.params.specs if name[:1] == "z" and name[1:].isdigit())

    def _numbers(self, address, args, count, sender) -> list[float] | None:
        if len(args) != count:
            self._error(sender, f"{address}: expected {count} number{'s' if count > 1 else ''}, got {len(args)} arguments")
            return None
        values = [_number(arg) for arg in args]
        if any(value is None for value in values):
            kinds = ", ".join(type(arg).__name__ for arg in args)
            self._error(sender, f"{address}: arguments must be numbers (int or float), got {kinds}")
            return None
        if not all(math.isfinite(value) for value in values):
            self._error(sender, f"{address}: {', '.join(f'{v:g}' for v in values)} is not finite; refused")
            return None
        return values

    def _checked(self, address, name, value, sender) -> float | None:
        try:
            clamped, moved = self.target.params.check(name, value)
        except ParameterError as exc:
            self._error(sender, f"{address}: {exc}; refused")
            return None
        if moved:
            spec = self.target.params.spec(name)
            self._error(sender, f"{address}: {value:g} clamped to {clamped:g} ({name} range {spec.minimum:g}..{spec.maximum:g})")
        return clamped

    def _post(self, event: Event, source: str) -> None:
        event.source = source
        self.target.post(event)
        self.stats["posted"] += 1

    def _preset_morph(self, address, action, args, sender, source) -> None:
        """`/livegen/preset/morph i f` and `/livegen/preset/loop f [i ...]` (engine-side glides)."""
        if action == "morph":
            values = self._numbers(address, args, 2, sender)
            if values is None:
                return
            slot, seconds = values
            slots = [slot]
        else:
            if not args:
                self._error(sender, f"{address}: expected seconds per leg, then optional slots; got no arguments")
                return
            values = self._numbers(address, args, len(args), sender)
            if values is None:
                return
            seconds, slots = values[0], values[1:]
            if seconds > 0 and len(slots) == 1:
                self._error(sender, f"{address}: a loop needs at least 2 slots (or none: every stored slot), "
                                    f"got slot {slots[0]:g}; refused")
                return
        if seconds < 0:
            self._error(sender, f"{address}: seconds {seconds:g} must be >= 0"
                                f"{' (0 stops the loop)' if action == 'loop' else ''}; refused")
            return
        for slot in slots:
            if slot != int(slot) or not 0 <= slot < PRESET_SLOTS:
                self._error(sender, f"{address}: slot {slot:g} must be a whole number 0..{PRESET_SLOTS - 1}; refused")
                return
        if action == "morph":
            event = Event("preset", action="morph", slot=int(slots[0]), seconds=seconds)
        else:
            event = Event("preset", action="loop", seconds=seconds,
                          slots=tuple(int(slot) for slot in slots) if slots and seconds > 0 else None)
        self._post(event, source)

    def _learn(self, address, args, sender) -> None:
        if self.midi is None:
            self._error(sender, f"{address}: MIDI input is off; start with MIDI enabled to learn")
            return
        if len(args) != 1 or not isinstance(args[0], str):
            self._error(sender, f"{address}: expected one string (a parameter name, or '' to cancel)")
            return
        name = args[0]
        if not name:
            self.midi.disarm()
            return
        if name not in self.target.params.specs and name != RECORD:
            self._error(sender, f"{address}: no parameter {name!r}; /livegen/params lists them "
                                f"('{RECORD}' binds a button that starts and stops recording)")
            return

        def learned(param, control):
            self._reply(sender, f"{PREFIX}learned", (param, control))

        self.midi.arm(name, learned)

    def _load_model(self, address, args, sender) -> None:
        load = getattr(self.target, "load_model", None)
        if load is None:
            self._error(sender, f"{address}: this engine cannot load another model while playing")
            return
        if len(args) != 1 or not isinstance(args[0], str) or not args[0]:
            self._error(sender, f"{address}: expected one string, a model directory")
            return

        def done(ok: bool, text: str) -> None:  # from the loading thread
            if ok:
                self._reply(sender, f"{PREFIX}model", (text,))
                self.broadcast(f"{PREFIX}model", (text,), skip=sender)
            else:
                self._error(sender, f"{address}: {text}")

        load(args[0], done)

    def _seed(self, address, args, sender, source) -> None:
        engine = getattr(self.target, "engine", self.target)  # a LiveEngine plays one engine at a time
        if not engine.handles("seed"):
            self._error(sender, f"{address}: the model playing is not a continuation model; load one first "
                                "(/livegen/model models/continuation)")
            return
        if len(args) != 1 or not isinstance(args[0], str) or not args[0]:
            self._error(sender, f"{address}: expected one string, the path of an audio file")
            return

        def done(ok: bool, text: str) -> None:  # from the thread that read the file
            if ok:
                self._reply(sender, f"{PREFIX}seed", (text,))
            else:
                self._error(sender, text)  # it names the address and the file

        engine.submit(Event("seed", source=source, extra={"path": args[0]}), done, what=f"{address} {args[0]}: ")

    def _unlearn(self, address, args, sender) -> None:
        if self.midi is None:
            self._error(sender, f"{address}: MIDI input is off; nothing is bound")
            return
        if len(args) != 1 or not isinstance(args[0], str):
            self._error(sender, f"{address}: expected one string (a parameter name)")
            return
        if not self.midi.unlearn(args[0]):
            self._error(sender, f"{address}: {args[0]!r} has no MIDI binding; /livegen/bindings lists them")
            return
        flat = [text for pair in self.midi.bindings() for text in pair]
        self._reply(sender, f"{PREFIX}bindings", tuple(flat))

    def _subscribe(self, address, args, sender, source, *, on: bool) -> None:
        port = sender[1]
        if args:
            value = _number(args[0]) if len(args) == 1 else None
            if value is None or not 1 <= value <= 65535 or value != int(value):
                self._error(sender, f"{address}: optional argument is a UDP port 1..65535, got {args!r}")
                return
            port = int(value)
        destination = (sender[0], port)
        key = f"{destination[0]}:{destination[1]}"
        expires = time.monotonic() + self.lease
        with self._subscribers_lock:
            if not on:
                self._subscribers.pop(key, None)
                return
            expired = self._expire(time.monotonic())
            subscriber = self._subscribers.get(key)
            if subscriber is None and len(self._subscribers) < MAX_SUBSCRIBERS:
                subscriber = self._subscribers[key] = _Subscriber(source, destination, expires)
            if subscriber is not None:
                subscriber.source = source
                subscriber.expires = expires
                # Every (re)subscription gets every current value at once, so faders start in place.
                subscriber.pending.update(self.target.params.snapshot())
        self._tell_expired(expired)
        if subscriber is None:
            self._error(sender, f"{address}: {MAX_SUBSCRIBERS} subscribers already (each lasts "
                                f"{self.lease:g} s unless renewed); unsubscribe one first")
            return
        self._reply(sender, f"{PREFIX}subscribed", (port, self.lease))

    def _renew(self, source: str) -> None:
        """Any message from a subscribing socket extends its lease (no lock: one float store)."""
        expires = time.monotonic() + self.lease
        for subscriber in list(self._subscribers.values()):
            if subscriber.source == source:
                subscriber.expires = expires

    def _expire(self, now: float) -> list:
        """Drop subscriptions whose lease ran out (call with `_subscribers_lock` held); returns
        their addresses, to tell each once the lock is released (it may still be listening)."""
        gone = []
        for key, subscriber in list(self._subscribers.items()):
            if subscriber.expires <= now:
                del self._subscribers[key]
                self.stats["subscribers_expired"] += 1
                gone.append(subscriber.address)
        return gone

    def _tell_expired(self, addresses) -> None:
        for destination in addresses:
            self._send(destination, encode_message(f"{PREFIX}unsubscribed", (destination[1],)))

    def _drop_unreachable(self) -> None:
        """Read the socket's error queue (Linux, IP_RECVERR) and drop the subscribers it names:
        a destination answering "port unreachable" has gone away (ends a pending socket error too)."""
        sock = self._sock
        if sock is None or not self._recverr:
            return
        for _ in range(256):
            try:
                _, _, _, offender = sock.recvmsg(1, 256, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not offender:
                continue
            key = f"{offender[0]}:{offender[1]}"
            with self._subscribers_lock:
                gone = self._subscribers.pop(key, None)
            if gone is not None:
                self.stats["subscribers_unreachable"] += 1

    # -- feedback ------------------------------------------------------------------------------
    def _on_applied(self, event) -> None:
        # Called on the engine thread: only enqueue.
        if not self._stop.is_set():
            self._applied.append(event)

    def _feedback_loop(self) -> None:
        period = 1.0 / FEEDBACK_HZ
        next_tick = time.monotonic()
        while not self._stop.is_set():
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_tick = time.monotonic()
            events = []
            while True:
                try:
                    events.append(self._applied.popleft())
                except IndexError:
                    break
            self._drop_unreachable()
            with self._subscribers_lock:
                expired = self._expire(time.monotonic())
                subscribers = list(self._subscribers.values())
            self._tell_expired(expired)
            if not subscribers:
                continue
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
            moving = self._morph_feedback(any(event.type == "preset" and event.action in ("morph", "loop")
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

    def _morph_feedback(self, started: bool) -> dict:
        """Parameters an engine-side preset morph or loop moved since the last tick (it moves
        them without events, so subscribers would not see them otherwise), its end values once
        it ends, and, with `started` (a morph event was applied), every parameter that changed
        even when the morph began and ended between two ticks."""
        engine = getattr(self.target, "engine", self.target)
        names = engine.morph_names() if hasattr(engine, "morph_names") else []
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
        meters (optional `meters` attribute) finished a window since the last tick."""
        meters = getattr(self.target, "meters", None)
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
        for data in out:
            self._send(subscriber.address, data)

    # -- replies -------------------------------------------------------------------------------
    def broadcast(self, address: str, args=(), *, skip=None) -> None:
        """Send one message to every subscriber (any thread): engine-side news such as a
        recording that failed (`/livegen/error s`)."""
        try:
            data = encode_message(address, tuple(args))
        except Exception:
            self.stats["encode_failed"] += 1
            return
        with self._subscribers_lock:
            destinations = [subscriber.address for subscriber in self._subscribers.values()
                            if skip is None or tuple(subscriber.address) != tuple(skip[:2])]
        for destination in destinations:
            self._send(destination, data)

    def _reply(self, sender, address, args) -> None:
        try:
            data = encode_message(address, args)
        except Exception as exc:  # a value we cannot encode must not end the server
            self.stats["encode_failed"] += 1
            data = encode_message(f"{PREFIX}error", (f"cannot encode reply {address}: {type(exc).__name__}",))
        if len(data) > self.max_packet:  # what this server would refuse, no client should have to take
            self.stats["reply_too_large"] += 1
            data = encode_message(f"{PREFIX}error", (f"reply {address} is {len(data)} bytes, over the "
                                                     f"{self.max_packet}-byte packet limit; not sent",))
        self._send(sender, data)

    def _send(self, destination, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        for attempt in range(4):  # each failure drains the error queue; more ICMPs may have come meanwhile
            try:
                sock.sendto(data, destination)
                self.stats["sent"] += 1
                return
            except _UNREACHABLE:
                # With IP_RECVERR an ICMP error an earlier datagram caused (perhaps to another
                # destination) fails this send unsent: drop whoever caused it, then send once more.
                self._drop_unreachable()
            except OSError:
                break
        self.stats["send_failed"] += 1

    def _error(self, sender, text: str) -> None:
        """Tell the sender what was wrong, at most ERRORS_PER_SECOND a second per sender."""
        self.stats["errors"] += 1
        key = f"{sender[0]}:{sender[1]}"
        now = time.monotonic()
        budget = self._error_budget.get(key)
        if budget is None:
            if len(self._error_budget) > 1024:
                self._error_budget.clear()
            budget = self._error_budget[key] = [ERRORS_PER_SECOND, now]
        budget[0] = min(ERRORS_PER_SECOND, budget[0] + (now - budget[1]) * ERRORS_PER_SECOND)
        budget[1] = now
        if budget[0] < 1:
            self.stats["errors_unsent"] += 1
            return
        budget[0] -= 1
        self._reply(sender, f"{PREFIX}error", (text[:480].replace("\x00", ""),))


def _enable_recverr(sock: socket.socket, family) -> bool:
    """Ask for ICMP errors on the error queue; False where the platform has no such option."""
    option = _RECVERR.get(family)
    if option is None or not hasattr(socket, "MSG_ERRQUEUE") or not hasattr(sock, "recvmsg"):
        return False
    try:
        sock.setsockopt(option[0], option[1], 1)
    except OSError:
        return False
    return True


def _status_pairs(status: dict) -> list:
    pairs = []
    for key, value in status.items():
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        elif not isinstance(value, (int, float, str)):
            value = str(value)
        pairs += [str(key), value]
    return pairs


def parse_allow(allow) -> list:
    """CIDR strings ('192.168.1.0/24', '10.0.0.5') -> networks; errors name --osc-allow."""
    if isinstance(allow, str):
        allow = [allow]
    networks = []
    for item in allow:
        if isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            networks.append(item)
            continue
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ParameterError(f"--osc-allow {item!r} is not an address or CIDR network "
                                 "(e.g. 192.168.1.0/24 or 127.0.0.1)") from None
    return networks


def _allowed(host: str, networks) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def add_osc_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --osc-port, --osc-host, --osc-allow, --no-osc (shared by `play` and `play --headless`)."""
    group = parser.add_argument_group("OSC control")
    group.add_argument("--osc-port", type=int, default=9000, metavar="PORT",
                       help="UDP port for OSC control (default 9000; 0 picks a free port)")
    group.add_argument("--osc-host", default="127.0.0.1", metavar="HOST",
                       help="address to listen on (default 127.0.0.1, loopback only; 0.0.0.0 for all interfaces)")
    group.add_argument("--osc-allow", nargs="+", default=None, metavar="CIDR",
                       help="only accept OSC from these addresses/networks (e.g. 192.168.1.0/24); others are ignored")
    group.add_argument("--no-osc", action="store_true", help="do not listen for OSC")


def osc_server_from_args(target, args, *, midi=None) -> OscServer | None:
    """Build (not start) the server the CLI options ask for; None with --no-osc."""
    if getattr(args, "no_osc", False):
        return None
    return OscServer(target, host=args.osc_host, port=args.osc_port, allow=args.osc_allow, midi=midi)
