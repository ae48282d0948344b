"""OSCQuery: the OSC address space as JSON over HTTP, on TCP at the OSC port's number.

Apps that find OSC devices by themselves (TouchOSC, TouchDesigner, Max, Chataigne, Vezér,
ossia score) read it to list livegen's addresses with their types, ranges and current values
(the protocol: github.com/Vidvox/OSCQueryProposal). The namespace is built on each request
from the one address table (`oscaddress.ADDRESSES`) and the engine's parameter specs, so it
follows a model switch. Only GET: nothing here changes the engine (OSC over UDP does that), and
the server runs on its own threads, beside the OSC server's, never in the sound server.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from livegen.control.mdns import advertised_addresses
from livegen.control.oscaddress import ADDRESSES, PREFIX
from livegen.engine.events import PRESET_SLOTS, VOICE_CONTROLS, VOICE_IDS

NAME = "livegen"
MAX_CLIENTS = 32
"""Connections served at once (a keep-alive one holds its place until closed or idle for
`_Handler.timeout`); more are closed at once, so a flood of them cannot pile up threads."""
VOICES_LISTED = 17
"""Voice ids listed under `/livegen/voice/` (0..16: an MPE zone's member channels 1-16 are voices
1-16); the engine takes any id 0..127, which the container's description says."""

EXTENSIONS = {"ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True, "UNIT": True,
              "CLIPMODE": True, "TAGS": False, "EXTENDED_TYPE": False, "CRITICAL": False,
              "OVERLOADS": False, "HTML": False, "LISTEN": False, "PATH_CHANGED": False}
"""What HOST_INFO says this server does: no WebSocket (LISTEN, PATH_CHANGED); subscribe over
OSC (`/livegen/subscribe`) for values as they change."""
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE", "DESCRIPTION", "UNIT", "CLIPMODE")
"""The attributes a `?NAME` query may ask for (besides HOST_INFO)."""

READ, WRITE = 1, 2
_MIDI = {"MIN": 0, "MAX": 127}
_SLOT = {"MIN": 0, "MAX": PRESET_SLOTS - 1}
RANGES = {
    "note": [_MIDI, _MIDI],
    "voice_note": [_MIDI, _MIDI],
    "voice_xy": [{"MIN": VOICE_CONTROLS[name][0], "MAX": VOICE_CONTROLS[name][1]} for name in ("x", "y")],
    "record": [{"MIN": 0, "MAX": 1}],
    "preset_store": [_SLOT],
    "preset_recall": [_SLOT],
    "preset_morph": [_SLOT, {"MIN": 0}],
    "preset_loop": [{"MIN": 0}],
}
"""Argument ranges of the methods that are not parameters, by handler (parameters' come from
their specs, a voice control's from `VOICE_CONTROLS`)."""
UNLISTED = frozenset({f"{PREFIX}get/<name>", f"{PREFIX}z/<i>", f"{PREFIX}input/<name>"})
"""Table addresses the tree leaves out; they still work over OSC (docs/osc.md lists them). Every
parameter is listed once, at `/livegen/param/<name>`: `/livegen/z/<i>` and `/livegen/input/<name>`
are other names of `z<i>` and `input_<name>`, and listing them too showed those parameters twice
in apps' browsers (two controls for one value). A parameter's value is its node's `VALUE`
(`GET /livegen/param/gain?VALUE`), so one query node per parameter, with no type and no value,
only repeated every parameter, and turned `/livegen/get` (a method taking the name) into a
container."""
STATUS_VALUES = {"record": "recording", "model": "model"}
"""Methods whose current value the engine's status gives, by handler."""
_PARAM_HANDLERS = ("xy", "param")


def osc_type(args: str) -> str:
    """The type tag string of a table entry's arguments, the optional ones left out (`f [i ...]` -> `f`)."""
    tags = []
    for token in args.split():
        if token.startswith("["):
            break
        tags.append(token)
    return "".join(tags)


def _instances(entry, specs) -> list[tuple[str, str]]:
    """(OSC path, what `<...>` stands for) for each address a table pattern covers."""
    prefix = entry.prefix
    if prefix is None:
        return [(entry.pattern, "")]
    voices = entry.pattern[len(prefix):].startswith("<id>")
    names = [str(voice) for voice in range(VOICES_LISTED)] if voices else list(specs)
    return [(f"{prefix}{name}{entry.suffix}", name) for name in names]


def _param_node(names: list[str], specs, params, description: str) -> dict:
    """A method that sets parameters: their types, ranges, units and target values."""
    chosen = [specs[name] for name in names]
    node = {
        "TYPE": "".join("i" if spec.integer else "f" for spec in chosen),
        "ACCESS": READ | WRITE,
        "VALUE": [int(params.get(spec.name)) if spec.integer else params.get(spec.name) for spec in chosen],
        "RANGE": [{"MIN": _number(spec.minimum, spec.integer), "MAX": _number(spec.maximum, spec.integer)}
                  for spec in chosen],
        "CLIPMODE": ["both"] * len(chosen),
        "DESCRIPTION": description,
    }
    if any(spec.unit for spec in chosen):
        node["UNIT"] = [spec.unit for spec in chosen]
    return node


def _number(value: float, integer: bool):
    return int(value) if integer else float(value)


def _method_node(entry, status) -> dict:
    """A method that is not a parameter: type, range and (from the status) value where known."""
    tags = osc_type(entry.args)
    node = {"DESCRIPTION": entry.help, "ACCESS": WRITE if tags or not entry.query else 0}  # a panic acts with none
    if tags:
        node["TYPE"] = tags
    name = entry.suffix[1:]
    if name in VOICE_CONTROLS:
        low, high = VOICE_CONTROLS[name]
        node["RANGE"], node["CLIPMODE"] = [{"MIN": low, "MAX": high}], ["both"]
    elif entry.handler in RANGES:
        node["RANGE"] = RANGES[entry.handler]
    key = STATUS_VALUES.get(entry.handler)
    if tags and key is not None and key in status():
        node["ACCESS"] = READ | WRITE
        node["VALUE"] = [status()[key]]
    return node


def namespace(params, status, *, under: str = "/") -> dict:
    """The address space as an OSCQuery tree (`GET /`), from the address table and `params` (specs
    and target values); `status()` (the OSC server's `/livegen/status`) gives the rest, asked
    once at most. `under`: build only that node's part (with the containers above it)."""
    specs = dict(params.specs)
    status = _once(status)
    within = under.rstrip("/") + "/"
    root = {"FULL_PATH": "/", "ACCESS": 0, "CONTENTS": {},
            "DESCRIPTION": "livegen, a live neural instrument: send OSC over UDP to these addresses"}
    for entry in ADDRESSES:
        if entry.pattern in UNLISTED:
            continue
        for path, rest in _instances(entry, specs):
            if path != under and not path.startswith(within):
                continue
            if entry.handler in _PARAM_HANDLERS:
                names = ["x", "y"] if entry.handler == "xy" else [rest]
                description = entry.help if entry.handler == "xy" else specs[names[0]].description
                node = _param_node(names, specs, params, description)
            else:
                node = _method_node(entry, status)
            _place(root, path).update(node)
    voices = _find(root, f"{PREFIX}voice")
    if voices is not None:
        voices["DESCRIPTION"] = (f"per-touch voices: /livegen/voice/<id>/... takes any id 0..{VOICE_IDS - 1}; "
                                 f"ids 0..{VOICES_LISTED - 1} are listed here (docs/mpe.md)")
    return root


def _once(function):
    """`function` called on first use only."""
    kept = []

    def call():
        if not kept:
            kept.append(function())
        return kept[0]
    return call


def _place(root: dict, path: str) -> dict:
    """The node at `path`, made (with its containers) where missing."""
    node = root
    for depth, part in enumerate(path.strip("/").split("/")):
        contents = node.setdefault("CONTENTS", {})
        if part not in contents:
            full = "/" + "/".join(path.strip("/").split("/")[:depth + 1])
            contents[part] = {"FULL_PATH": full, "ACCESS": 0}
        node = contents[part]
    return node


def _find(root: dict, path: str) -> dict | None:
    node = root
    for part in [part for part in path.split("/") if part]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


def host_info(osc_port: int, osc_ip: str | None = None) -> dict:
    """`GET /?HOST_INFO`: who answers, where its OSC listens and what this server does."""
    info = {"NAME": NAME, "EXTENSIONS": dict(EXTENSIONS), "OSC_PORT": int(osc_port), "OSC_TRANSPORT": "UDP"}
    if osc_ip:
        info["OSC_IP"] = osc_ip
    return info


def answer(url: str, *, params, status, osc_port: int, osc_ip: str | None = None) -> tuple[int, dict | None]:
    """(HTTP status, JSON body) for a GET of `url`: a node, one attribute of it, or HOST_INFO.

    `status` is called only when a node is asked for. An unknown path is 404, an unknown or
    unsupported attribute 400, the VALUE of a method that cannot be read 204 (no body)."""
    parts = urlsplit(url)
    path = unquote(parts.path) or "/"
    attribute = parts.query.partition("&")[0].partition("=")[0]
    if attribute == "HOST_INFO":
        return HTTPStatus.OK, host_info(osc_port, osc_ip)
    if attribute and attribute not in ATTRIBUTES:
        return HTTPStatus.BAD_REQUEST, {"ERROR": f"attribute {attribute!r} is not supported; ask for one of "
                                                 f"{', '.join(ATTRIBUTES)} or HOST_INFO (e.g. /livegen/xy?VALUE)"}
    path = "/" + path.strip("/")
    node = _find(namespace(params, status, under=path), path)
    if node is None:
        return HTTPStatus.NOT_FOUND, {"ERROR": f"no OSC address or container {path!r}; GET / lists the "
                                               "namespace (docs/osc.md describes it)"}
    if not attribute:
        return HTTPStatus.OK, node
    if attribute == "VALUE" and not node.get("ACCESS", 0) & READ:
        return HTTPStatus.NO_CONTENT, None
    return HTTPStatus.OK, ({attribute: node[attribute]} if attribute in node else {})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"
    """A request too malformed to name its version still gets a status line with its error."""
    timeout = 10.0
    """Seconds a client may take to send its request: a stalled one frees its thread."""
    server_version = f"{NAME}-oscquery"
    disable_nagle_algorithm = True
    """The headers and the body go out as written: with Nagle's algorithm a keep-alive client's
    delayed ACK held each reply back by about 40 ms."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._reply(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply(head=True)

    def _reply(self, *, head: bool) -> None:
        owner = self.server.owner
        try:
            code, body = answer(self.path, params=owner.target.params, status=owner.status,
                                osc_port=owner.osc_port, osc_ip=owner.osc_ip or self.connection.getsockname()[0])
        except Exception as exc:  # never let one request end the server
            code, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"ERROR": f"{type(exc).__name__}: {exc}"}
        data = b"" if body is None else json.dumps(body, allow_nan=False, default=str).encode()
        self.send_response(code)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")  # browser-based clients
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None) -> None:
        """http.server's own refusals (a malformed or overlong request, a method other than GET
        or HEAD) in JSON too, and then the connection closes."""
        phrase = HTTPStatus(code).phrase
        data = json.dumps({"ERROR": f"{message or phrase}; OSCQuery answers GET, e.g. GET /?HOST_INFO"}).encode()
        self.close_connection = True
        self.send_response(code, phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's name)
        """Quiet: a client polling values would fill the log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 2 * MAX_CLIENTS
    """socketserver's 5 made a burst of connections (an app opening several at once) wait for
    the kernel's 1 s SYN retry."""

    def __init__(self, sockaddr, family, owner):
        self.address_family = family
        self.owner = owner
        self.places = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__(sockaddr, _Handler)

    def server_bind(self) -> None:
        """http.server's, but without its reverse DNS lookup of the host (`socket.getfqdn`),
        which on a stage network with no DNS can hold `play`'s start for seconds."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def verify_request(self, request, client_address) -> bool:
        return self.owner.allows(client_address[0])

    def process_request(self, request, client_address) -> None:
        if not self.places.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.places.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.places.release()


class OscQueryServer:
    """HTTP on TCP `host:port` (the OSC server's), answering OSCQuery for `target`.

    status: the OSC server's `/livegen/status` callable; allows(host): whether `--osc-allow`
    lets a client in (others are closed on at once, as OSC ignores them); osc_ip: the address
    HOST_INFO names for OSC (None: the one each client reached this server on).
    """

    def __init__(self, target, host: str, port: int, *, status, allows=lambda host: True, osc_ip: str | None = None):
        self.target = target
        self.host = host
        self.osc_port = int(port)
        self.status = status
        self.allows = allows
        self.osc_ip = osc_ip
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        """Where it answers, e.g. `http://127.0.0.1:9000/` (for 0.0.0.0, at this machine's first
        network address); "" until started."""

    def start(self) -> "OscQueryServer":
        """Listen; raises OSError when the TCP port is taken or the host is not this machine's."""
        family, _, _, _, sockaddr = socket.getaddrinfo(self.host, self.osc_port, type=socket.SOCK_STREAM)[0]
        self._server = _Server(sockaddr, family, self)
        host = sockaddr[0]
        if host in ("0.0.0.0", "::"):
            host = (advertised_addresses(host) or ["127.0.0.1"])[0]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.osc_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="oscquery-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None
