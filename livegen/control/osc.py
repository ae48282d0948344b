"""OSC control: the `/livegen/...` address space over UDP, with replies and subscriptions.

`OscServer` puts three parts together: the wire and scheduling (`oscsocket.OscSocket`: the
socket, a receive thread, bundles timed ahead), the dispatch (`oscdispatch.OscDispatcher`, driven
by the address table in `oscaddress`, which also writes `docs/osc.md`), and subscriptions and
feedback (`oscfeedback.Feedback`: applied changes and meters to subscribers at up to 30 Hz).

With `discovery` it also answers OSCQuery over HTTP on TCP at its port's number (`oscquery`)
and, bound to an address other machines reach, advertises itself over mDNS (`mdns`).

It talks to the engine only through `livegen.control.target.ControlTarget`: `params` (read),
`post(event)`, `status()`, `add_listener(callback)`, `remove_listener(callback)`,
`morph_names()`, `load_model(path, done)`, `load_seed(path, done, source=)` and `meters`.
"""

from __future__ import annotations

import argparse
import collections
import errno
import re

from livegen.control.mdns import Advertisement, is_loopback
from livegen.control.oscdispatch import OscDispatcher
from livegen.control.oscfeedback import Feedback
from livegen.control.oscquery import OscQueryServer
from livegen.control.oscsocket import OscSocket, parse_allow, source_of
from livegen.control.oscwire import MAX_PACKET
from livegen.errors import ParameterError, ranged

MAX_SUBSCRIBERS = 16
SUBSCRIPTION_LEASE = 60.0
"""Seconds a subscription lasts unless renewed: a tablet that left the network frees its slot."""
FREE_PORT_TRIES = 8
"""With port 0 and discovery: UDP ports tried until the same TCP port is free too."""

_LISTENING = re.compile(r"OSC listening on UDP (\S+):(\d+)$", re.MULTILINE)


def listening_line(host: str, port: int) -> str:
    """The line `play` logs once OSC is bound: with `--osc-port 0` the only place the port chosen
    is told, so that a program that started it (a test, a script) can find it (`listening_port`)."""
    return f"OSC listening on UDP {host}:{port}"


def listening_port(text: str) -> int | None:
    """The port the first `listening_line` in `text` (a play log) names, else None."""
    found = _LISTENING.search(text)
    return int(found.group(2)) if found else None


class OscServer:
    """Listen for OSC on `host:port` and drive `target` (a `ControlTarget`).

    Parameters
    ----------
    target : ControlTarget
    host, port : where to listen; port 0 picks any free port (see `.port` after `start`).
    allow : CIDR strings or networks; datagrams from other addresses are dropped silently
        (no reply, so the instrument cannot be used to reflect traffic). None allows all.
    midi : optional MIDI input with `arm(param, on_learned)` / `disarm()` for `/livegen/learn`.
    lease : seconds a subscription lasts without renewal (`/livegen/subscribe` again, or any
        message from the subscribing socket).
    discovery : also answer OSCQuery on TCP at the same port number, and advertise both over
        mDNS when `host` is not loopback; a taken TCP port or a failed advertisement is one
        `log` line and OSC plays on.
    log : where those lines go.
    """

    def __init__(self, target, host: str = "127.0.0.1", port: int = 9000, allow=None, *,
                 midi=None, max_packet: int = MAX_PACKET, lease: float = SUBSCRIPTION_LEASE,
                 discovery: bool = False, log=print):
        if not lease > 0:
            raise ParameterError(f"subscription lease {lease!r} must be a positive number of seconds")
        self.target = target
        self.midi = midi
        self.stats = collections.Counter()
        self.wire = OscSocket(host, port, self.stats, allow=parse_allow(allow) if allow is not None else None,
                              max_packet=max_packet, on_message=self.handle_message,
                              on_packet=lambda sender: self.feedback.renew(source_of(sender)),
                              on_unreachable=lambda key: self.feedback.unreachable(key))
        self.feedback = Feedback(target, self.wire, self.stats, lease=lease, max_subscribers=MAX_SUBSCRIBERS)
        self.dispatch = OscDispatcher(target, self.wire, self.feedback, self.stats, midi=midi, status=self.status)
        self._listening = False
        self.discovery = discovery
        self.log = log
        self.query: OscQueryServer | None = None
        """The OSCQuery server while it answers."""
        self.advertisement: Advertisement | None = None

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> "OscServer":
        self.wire.start()
        if self.discovery:
            self._start_discovery()
        if not self._listening:
            self.target.add_listener(self.feedback.on_applied)
            self._listening = True
        self.feedback.start()
        return self

    def _start_discovery(self) -> None:
        for attempt in range(FREE_PORT_TRIES):
            query = OscQueryServer(self.target, self.host, self.port, status=self.status, allows=self.wire.allows)
            try:
                self.query = query.start()
                break
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE and self.wire.requested_port == 0 and attempt + 1 < FREE_PORT_TRIES:
                    self.wire.stop()  # any free port was asked for: find one free for both
                    self.wire.start()
                    continue
                self.log(f"OSCQuery is off: cannot listen on TCP {self.host}:{self.port} ({exc.strerror or exc}); "
                         "OSC over UDP works as before (another program holds that TCP port: "
                         "choose another --osc-port, or --no-discovery)")
                break
        if is_loopback(self.host):
            self.log(f"OSC on {self.host} is reachable from this machine alone: not advertised over mDNS "
                     "(--osc-host 0.0.0.0 lets apps on the network find livegen)")
            return
        self.advertisement = Advertisement(self.host, self.port, http=self.query is not None, log=self.log).start()

    def stop(self) -> None:
        if self.advertisement is not None:
            self.advertisement.close()
            self.advertisement = None
        if self.query is not None:
            self.query.stop()
            self.query = None
        self.feedback.stop()
        self.wire.stop()
        if self._listening:
            self.target.remove_listener(self.feedback.on_applied)
            self._listening = False

    @property
    def alive(self) -> bool:
        """Whether all its threads are still running (a check for floods and soaks)."""
        return self.wire.alive and self.feedback.alive

    def __enter__(self):
        return self.start() if not self.wire.open else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def host(self) -> str:
        return self.wire.host

    @property
    def port(self) -> int | None:
        return self.wire.port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def allow(self) -> list | None:
        return self.wire.allow

    @property
    def lease(self) -> float:
        return self.feedback.lease

    @property
    def last_internal_error(self) -> str | None:
        return self.wire.last_internal_error

    @property
    def last_address(self) -> str:
        return self.dispatch.last_address

    # -- messages ------------------------------------------------------------------------------
    def handle_datagram(self, data: bytes, sender: tuple, *, now: float | None = None) -> None:
        """Everything the server does with one datagram (public so tests can fuzz it without UDP)."""
        self.wire.datagram(data, sender, now=now)

    def handle_message(self, address: str, args: tuple, sender: tuple) -> None:
        self.dispatch.handle(address, args, sender)

    def status(self) -> dict:
        """The engine's status plus this server's and the MIDI input's."""
        status = dict(self.target.status())
        status["osc_port"] = self.port or 0
        status["osc_subscribers"] = len(self.feedback)
        status["osc_last"] = self.last_address
        status["osc_unknown"] = self.stats["unknown"]
        status["osc_query"] = self.query.url if self.query is not None else ""
        advertisement = self.advertisement
        status["osc_name"] = (advertisement.name or "") if advertisement is not None else ""
        if self.midi is not None and hasattr(self.midi, "status"):
            for key, value in self.midi.status().items():
                status[f"midi_{key}"] = value
        return status

    def broadcast(self, address: str, args=(), *, skip=None) -> None:
        """Send one message to every subscriber (any thread): engine-side news such as a
        recording that failed (`/livegen/error s`)."""
        self.feedback.broadcast(address, args, skip=skip)


def add_osc_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --osc-port, --osc-host, --osc-allow, --no-osc (shared by `play` and `play --headless`)."""
    group = parser.add_argument_group("OSC control")
    group.add_argument("--osc-port", type=ranged(int, 0, 65535, hint="0 picks a free port"), default=9000, metavar="PORT",
                       help="UDP port for OSC control (default 9000; 0 picks a free port)")
    group.add_argument("--osc-host", default="127.0.0.1", metavar="HOST",
                       help="address to listen on (default 127.0.0.1, loopback only; 0.0.0.0 for all interfaces)")
    group.add_argument("--osc-allow", nargs="+", default=None, metavar="CIDR",
                       help="only accept OSC from these addresses/networks (e.g. 192.168.1.0/24); others are ignored")
    group.add_argument("--no-osc", action="store_true", help="do not listen for OSC")
    group.add_argument("--no-discovery", action="store_true",
                       help="no OSCQuery (HTTP on TCP at the OSC port's number) and no mDNS advertisement")


def osc_server_from_args(target, args, *, midi=None, log=print) -> OscServer | None:
    """Build (not start) the server the CLI options ask for; None with --no-osc."""
    if getattr(args, "no_osc", False):
        return None
    return OscServer(target, host=args.osc_host, port=args.osc_port, allow=args.osc_allow, midi=midi,
                     discovery=not getattr(args, "no_discovery", False), log=log)
