"""The OSC server's wire: one UDP socket, a receive thread, a scheduler thread for bundles timed
ahead, and sending (replies, rate-limited errors, ICMP errors read back on Linux).

It knows datagrams and senders, not addresses: each message goes to `on_message(address, args,
sender)`, on the receive thread when it is due now, on the scheduler thread at its bundle's time
(so the receive path never sleeps).
"""

from __future__ import annotations

import heapq
import ipaddress
import socket
import threading
import time

from livegen.control.oscwire import MAX_PACKET, OscParseError, encode_message, pack_bundles, parse_packet
from livegen.errors import DeviceError, ParameterError

ERROR_ADDRESS = "/livegen/error"
ERRORS_PER_SECOND = 50.0
MAX_SCHEDULED = 4096
MAX_AHEAD = 60.0
"""A bundle may ask for a time at most this many seconds ahead."""
_RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11)),
            socket.AF_INET6: (socket.IPPROTO_IPV6, getattr(socket, "IPV6_RECVERR", 25))}
"""Linux: report ICMP errors (port/host unreachable) for an unconnected UDP socket, with the
address that caused them, on its error queue (without it Linux, like the BSDs, drops them)."""
_UNREACHABLE = (ConnectionRefusedError, ConnectionResetError)


def source_of(sender) -> str:
    """The event source for a sender: `osc:HOST:PORT` (feedback is not echoed to it)."""
    return f"osc:{sender[0]}:{sender[1]}"


class OscSocket:
    """Receive, schedule and send for an OSC server.

    on_message(address, args, sender): one message to act on now.
    on_packet(sender): a well-formed packet arrived (subscription leases renew on it).
    on_unreachable("host:port"): a destination answered a send with ICMP "unreachable".
    """

    def __init__(self, host: str, port: int, stats, *, on_message, on_packet, on_unreachable,
                 allow=None, max_packet: int = MAX_PACKET):
        self.host = host
        self.requested_port = int(port)
        self.port: int | None = None
        self.stats = stats
        self.allow = allow
        self.max_packet = max_packet
        self.on_message = on_message
        self.on_packet = on_packet
        self.on_unreachable = on_unreachable
        self.last_internal_error: str | None = None
        self._sock: socket.socket | None = None
        self._recverr = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._scheduled: list = []
        self._scheduled_seq = 0
        self._schedule_cv = threading.Condition()
        self._error_budget: dict[str, list[float]] = {}

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        if not 0 <= self.requested_port <= 65535:  # before getaddrinfo, which blames the host for it
            raise ParameterError(f"OSC port {self.requested_port} is out of range; choose 0..65535 with --osc-port")
        try:
            infos = socket.getaddrinfo(self.host, self.requested_port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise ParameterError(
                f"cannot listen for OSC on host {self.host!r}: {exc.strerror}; give an address "
                "of this machine with --osc-host (127.0.0.1 for loopback, 0.0.0.0 for all)") from None
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
        self._stop.clear()
        for name, loop in (("osc-receive", self._receive_loop), ("osc-schedule", self._schedule_loop)):
            thread = threading.Thread(target=loop, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

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

    @property
    def open(self) -> bool:
        return self._sock is not None

    def allows(self, host: str) -> bool:
        """Whether `--osc-allow` lets `host` in (everyone without it)."""
        return self.allow is None or _allowed(host, self.allow)

    @property
    def alive(self) -> bool:
        """Whether its receive and schedule threads are all still running (none ended on an error)."""
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    # -- receiving ---------------------------------------------------------------------------
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
                self.drain_errors()  # an ICMP error a reply caused surfaces here too
                continue
            try:
                self.datagram(data, sender)
            except Exception as exc:  # never let one packet end the server
                self._internal_error(sender, "internal error handling packet", exc)

    def datagram(self, data: bytes, sender: tuple, *, now: float | None = None) -> None:
        """Everything done with one datagram: allow list, parse, then act now or schedule."""
        self.stats["packets"] += 1
        if self.allow is not None and not _allowed(sender[0], self.allow):
            self.stats["refused"] += 1
            return
        try:
            messages = parse_packet(data, max_size=self.max_packet)
        except OscParseError as exc:
            self.stats["malformed"] += 1
            self.error(sender, f"malformed packet: {exc}")
            return
        self.on_packet(sender)
        now = time.time() if now is None else now
        for message in messages:
            if message.time is not None and message.time > now + 0.0005:
                self._schedule(message, sender, now)
            else:
                self.on_message(message.address, message.args, sender)

    def _schedule(self, message, sender, now: float) -> None:
        if message.time - now > MAX_AHEAD:
            self.error(sender, f"{message.address}: bundle time is {message.time - now:.1f} s ahead; "
                               f"at most {MAX_AHEAD:.0f} s (check the sender's clock)")
            return
        with self._schedule_cv:
            if len(self._scheduled) >= MAX_SCHEDULED:
                self.error(sender, f"{message.address}: {MAX_SCHEDULED} bundled messages already wait; dropped")
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
                self.on_message(address, args, sender)
            except Exception as exc:
                self._internal_error(sender, "internal error", exc)

    def _internal_error(self, sender, what: str, exc: Exception) -> None:
        self.stats["internal_errors"] += 1
        self.last_internal_error = repr(exc)
        self.error(sender, f"{what}: {type(exc).__name__}: {exc}")

    def drain_errors(self) -> None:
        """Read the socket's error queue (Linux, IP_RECVERR) and report the destinations it names
        to `on_unreachable` (this also ends a pending socket error)."""
        sock = self._sock
        if sock is None or not self._recverr:
            return
        for _ in range(256):
            try:
                _, _, _, offender = sock.recvmsg(1, 256, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except OSError:  # BlockingIOError: the queue is empty
                return
            if offender:
                self.on_unreachable(f"{offender[0]}:{offender[1]}")

    # -- sending -----------------------------------------------------------------------------
    def send(self, destination, data: bytes) -> None:
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
                self.drain_errors()
            except OSError:
                break
        self.stats["send_failed"] += 1

    def reply(self, sender, address: str, args) -> None:
        self.send(sender, self.encode_reply(address, args))

    def reply_bundled(self, sender, address: str, messages) -> None:
        """Several messages to one address, in as few bundles as the packet limit allows."""
        for data in pack_bundles([self.encode_reply(address, args, room=20) for args in messages],
                                 max_size=self.max_packet):
            self.send(sender, data)

    def encode_reply(self, address: str, args, *, room: int = 0) -> bytes:
        """The message, or an error in its place when it cannot be encoded or would not fit a packet."""
        try:
            data = encode_message(address, args)
        except Exception as exc:  # a value we cannot encode must not end the server
            self.stats["encode_failed"] += 1
            return encode_message(ERROR_ADDRESS, (f"cannot encode reply {address}: {type(exc).__name__}",))
        if len(data) > self.max_packet - room:  # what this server would refuse, no client should have to take
            self.stats["reply_too_large"] += 1
            return encode_message(ERROR_ADDRESS, (f"reply {address} is {len(data)} bytes, over the "
                                                  f"{self.max_packet}-byte packet limit; not sent",))
        return data

    def error(self, sender, text: str) -> None:
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
        self.reply(sender, ERROR_ADDRESS, (text[:480].replace("\x00", ""),))


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
