"""mDNS/DNS-SD advertisement (Bonjour) of the OSC server, with the `zeroconf` package.

Apps list livegen by itself when it is advertised as `_oscjson._tcp` (OSCQuery over HTTP) and
`_osc._udp` (plain OSC), both at the OSC port's number. Only an OSC server reachable from other
machines is advertised; the registration (probing takes about 1.5 s) runs on its own thread so
`play` never waits for it, and any failure (a network without multicast) is one log line.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zeroconf import ServiceInfo, Zeroconf


OSCJSON_TYPE = "_oscjson._tcp.local."
OSC_TYPE = "_osc._udp.local."
NAME = "livegen"
MAX_INSTANCES = 16
LOOKUP_MS = 500
"""How long to wait for an answer from another instance of a name before taking it."""
_FLAGS_QUERY, _TYPE_SRV, _CLASS_IN = 0x0000, 33, 1
"""A DNS query's flags, the SRV record type and the Internet class (RFC 1035, RFC 2782)."""


def _resolve(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(socket.getaddrinfo(host or "0.0.0.0", None, type=socket.SOCK_DGRAM)[0][4][0])


def is_loopback(host: str) -> bool:
    """Whether an OSC server bound to `host` can be reached from this machine alone."""
    return _resolve(host).is_loopback


def advertised_addresses(host: str) -> list[str]:
    """The addresses other machines reach a server bound to `host` at: itself, or for a wildcard
    (0.0.0.0, ::) this machine's non-loopback ones (IPv6 only for ::)."""
    address = _resolve(host)
    if not address.is_unspecified:
        return [str(address)]
    found = []
    import ifaddr  # here: zeroconf and ifaddr cost every livegen command ~40 ms to import

    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if ip.is_IPv6 and address.version == 4:
                continue
            value = ipaddress.ip_address(ip.ip[0] if ip.is_IPv6 else ip.ip)
            if not (value.is_loopback or value.is_link_local) and str(value) not in found:
                found.append(str(value))
    return found


def instance_name(number: int) -> str:
    """`livegen`, then `livegen-2`, `livegen-3` ... when several run on one network."""
    return NAME if number == 1 else f"{NAME}-{number}"


def service_infos(name: str, addresses: list[str], *, osc_port: int, http: bool, server: str) -> list[ServiceInfo]:
    """What is advertised: `_osc._udp` always, `_oscjson._tcp` when OSCQuery answers (`http`)."""
    from zeroconf import ServiceInfo

    types = ([OSCJSON_TYPE] if http else []) + [OSC_TYPE]
    return [ServiceInfo(kind, f"{name}.{kind}", port=int(osc_port), parsed_addresses=addresses, server=server)
            for kind in types]


class Advertisement:
    """Advertise an OSC server bound to `host` (not loopback) on `osc_port` until `close`.

    http: whether OSCQuery answers there (then `_oscjson._tcp` is advertised too);
    log(text): one line once advertised, or what failed.
    """

    def __init__(self, host: str, osc_port: int, *, http: bool, log):
        self.host = host
        self.osc_port = int(osc_port)
        self.http = http
        self.log = log
        self.name: str | None = None
        """The instance name as registered for every kind (None until then, or when it failed)."""
        self.infos: list[ServiceInfo] = []
        self.done = threading.Event()
        """Set once registered or failed."""
        self._zeroconf: Zeroconf | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Advertisement":
        self._thread = threading.Thread(target=self._run, name="mdns-advertise", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        from zeroconf import InterfaceChoice, IPVersion, Zeroconf

        try:
            addresses = advertised_addresses(self.host)
            if not addresses:
                raise OSError("this machine has no network address besides loopback")
            address = _resolve(self.host)
            with self._lock:
                if self._closing.is_set():
                    return
                if address.is_unspecified:
                    self._zeroconf = Zeroconf(interfaces=InterfaceChoice.All,
                                              ip_version=IPVersion.V4Only if address.version == 4 else IPVersion.All)
                else:
                    self._zeroconf = Zeroconf(interfaces=[str(address)],
                                              ip_version=IPVersion.V4Only if address.version == 4 else IPVersion.V6Only)
            zeroconf = self._zeroconf
            server = f"{socket.gethostname().split('.')[0] or NAME}.local."
            infos = self._register(zeroconf, addresses, server)
            if infos is None:
                return
            name = self.name
            kinds = " and ".join(info.type.removesuffix(".local.") for info in infos)
            self.log(f"advertised as {name!r} ({kinds}) over mDNS at {', '.join(addresses)} port {self.osc_port}")
        except Exception as exc:  # no multicast here, an interface gone: play goes on without
            if not self._closing.is_set():
                self.log(f"mDNS advertisement failed ({type(exc).__name__}: {exc}); apps will not list livegen "
                         f"by itself, enter its address and port {self.osc_port} in them")
        finally:
            self.done.set()

    def _register(self, zeroconf: Zeroconf, addresses: list[str], server: str) -> list[ServiceInfo] | None:
        """Register every kind under one instance name that no other responder holds; the infos
        as registered (None once closed).

        zeroconf's own renaming (`allow_name_change`) renames each kind apart and appends to the
        name asked (`livegen-2-2`), so names are taken here, number by number, and a name another
        responder holds moves on to the next. zeroconf does not settle two probes of one name at
        once (RFC 6762's tie-break), so once registered the name is asked for again: of two
        holders, the one with the greater (host, port) leaves it for the next number."""
        from zeroconf import NonUniqueNameException

        first = self._first_free(zeroconf)
        for number in range(first, first + MAX_INSTANCES):
            infos = service_infos(instance_name(number), addresses, osc_port=self.osc_port, http=self.http,
                                  server=server)
            held = []
            try:
                for info in infos:
                    if self._closing.is_set():
                        return None
                    zeroconf.register_service(info)  # probes first; raises when the name is answered for
                    held.append(info)
            except NonUniqueNameException:
                pass
            else:
                if not self._contested(zeroconf, infos, server):
                    with self._lock:
                        if self._closing.is_set():
                            return None
                        self.infos = infos  # the names as registered: what zeroconf answers for
                        self.name = infos[0].name.removesuffix(f".{infos[0].type}")
                    return infos
            for info in held:
                zeroconf.unregister_service(info)
        raise OSError(f"instance names {instance_name(1)!r} to {instance_name(first + MAX_INSTANCES - 1)!r} are "
                      "all taken on this network")

    def _first_free(self, zeroconf: Zeroconf) -> int:
        """The number of the first instance name no other livegen on the network answers for."""
        for number in range(1, MAX_INSTANCES + 1):
            name = instance_name(number)
            if all(zeroconf.get_service_info(kind, f"{name}.{kind}", timeout=LOOKUP_MS) is None
                   for kind in (OSCJSON_TYPE, OSC_TYPE)):
                return number
        return MAX_INSTANCES + 1

    def _contested(self, zeroconf: Zeroconf, infos: list[ServiceInfo], server: str) -> bool:
        """Whether another responder answers for one of these names and wins the tie: its
        (host, port) is the smaller. Both holders reach the same verdict, so one name stays."""
        from zeroconf import DNSOutgoing, DNSQuestion, current_time_millis

        query = DNSOutgoing(_FLAGS_QUERY)
        for info in infos:
            query.add_question(DNSQuestion(info.name, _TYPE_SRV, _CLASS_IN))
        zeroconf.send(query)
        self._closing.wait(LOOKUP_MS / 1000)  # answers land in the cache meanwhile
        ours = (server.lower(), self.osc_port)
        now = current_time_millis()
        for info in infos:
            for record in zeroconf.cache.get_all_by_details(info.name, _TYPE_SRV, _CLASS_IN):
                theirs = (record.server.lower(), record.port)
                if theirs != ours and theirs < ours and not record.is_expired(now):
                    return True
        return False

    def close(self) -> None:
        """Say goodbye (the services leave the apps' lists at once) and stop."""
        with self._lock:
            self._closing.set()
            zeroconf, self._zeroconf = self._zeroconf, None
        if zeroconf is not None:
            try:
                zeroconf.unregister_all_services()
            finally:
                zeroconf.close()
        if self._thread is not None:
            self._thread.join(2)
