"""A stand-in engine server for UI tests and the UI benchmark: python-osc on real UDP.

It records every message the UI sends, answers `/livegen/status` and `/livegen/get/<name>`,
remembers subscribers, and can push feedback (parameter changes, meters, spectra) to them
the way the real engine does. Run as a module it is the UI's child process in tests:
`python -m livegen.tui.fake_engine --osc-port P [--stamp FILE]`; SIGTERM ends it cleanly.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from livegen.control.oscwire import encode_message
from livegen.engine.params import ParamStore

PREFIX = "/livegen/"


class FakeEngine:
    def __init__(self, port: int = 0, *, latent_dim: int = 8):
        self.params = ParamStore.for_model(latent_dim)
        self.received: list[tuple[str, tuple]] = []
        self.subscribers: set[tuple[str, int]] = set()
        self.bindings: dict[str, str] = {}
        self.presets: dict[int, dict[str, float]] = {}
        self.status = {"samplerate": 48000, "blocksize": 256, "latency_ms": 10.7, "xruns": 0, "load": 0.12,
                       "voices": 0, "recording": 0, "device": "cpu", "audio_device": "fake",
                       "osc_port": 0, "midi_virtual": "livegen"}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._handle, needs_reply_address=True)
        self.server = ThreadingOSCUDPServer(("127.0.0.1", port), dispatcher)
        self.port = self.server.server_address[1]
        self.status["osc_port"] = self.port
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-engine", daemon=True)

    def start(self) -> "FakeEngine":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what the UI sent ------------------------------------------------------------------
    def _handle(self, client, address: str, *args) -> None:
        with self.lock:
            self.received.append((address, args))
            self.changed.notify_all()
        verb = address[len(PREFIX):] if address.startswith(PREFIX) else ""
        if verb == "status":
            pairs = []
            for key, value in self.status.items():
                pairs += [key, value]
            self.reply(client, PREFIX + "status", *pairs)
        elif verb.startswith("get/"):
            name = verb[4:]
            if name in self.params.specs:
                self.reply(client, f"{PREFIX}param/{name}", float(self.params.get(name)))
        elif verb == "subscribe":
            port = int(args[0]) if args else client[1]
            self.subscribers.add((client[0], port))
            self.reply(client, PREFIX + "subscribed", port)
        elif verb == "xy" and len(args) == 2:
            self.params.set("x", args[0])
            self.params.set("y", args[1])
        elif verb.startswith("param/") and args:
            if verb[6:] in self.params.specs:
                self.params.set(verb[6:], args[0])
        elif verb.startswith("z/") and args:
            self.params.set("z" + verb[2:], args[0])
        elif verb == "record" and args:
            self.status["recording"] = int(args[0])
        elif verb == "bindings":
            pairs = []
            for key, value in self.bindings.items():
                pairs += [key, value]
            self.reply(client, PREFIX + "bindings", *pairs)
        elif verb == "model" and args:
            self.reply(client, PREFIX + "model", str(args[0]))
        elif verb == "preset/store" and args:
            self.presets[int(args[0])] = self.params.snapshot()
        elif verb == "preset/recall" and args:
            self.params.restore(self.presets.get(int(args[0]), {}))
        elif verb == "unlearn" and args:
            self.bindings.pop(str(args[0]), None)

    def reply(self, client, address: str, *args) -> None:
        self.server.socket.sendto(encode_message(address, args), client)

    def push(self, address: str, *args) -> None:
        """Send to every subscriber, as the engine's feedback thread does."""
        data = encode_message(address, args)
        for subscriber in list(self.subscribers):
            self.server.socket.sendto(data, subscriber)

    def messages(self, prefix: str) -> list[tuple[str, tuple]]:
        with self.lock:
            return [(a, args) for a, args in self.received if a.startswith(prefix)]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 5.0) -> list[tuple[str, tuple]]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                found = [(a, args) for a, args in self.received if a.startswith(prefix)]
                if len(found) >= count or time.monotonic() > deadline:
                    return found
                self.changed.wait(0.05)

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.subscribers and time.monotonic() < deadline:
            time.sleep(0.02)
        return bool(self.subscribers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livegen.tui.fake_engine")
    parser.add_argument("--osc-port", type=int, default=0)
    parser.add_argument("--stamp", help="file to write 'started'/'stopped' into")
    parser.add_argument("--meters", type=float, default=0.0, help="push meters and spectra at this rate (Hz)")
    args, _ = parser.parse_known_args(argv)
    engine = FakeEngine(args.osc_port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.stamp:
        open(args.stamp, "w").write("started\n")
    print(f"fake engine on UDP {engine.port}", flush=True)
    tick = 0
    while not stop.is_set():
        if args.meters > 0:
            tick += 1
            level = -12.0 + 6.0 * ((tick % 60) / 60.0)
            engine.push(PREFIX + "meter", level, level - 8.0)
            engine.push(PREFIX + "spectrum", *[float(-90 + (i * 7 + tick) % 80) for i in range(64)])
            stop.wait(1.0 / args.meters)
        else:
            stop.wait(0.1)
    engine.stop()
    if args.stamp:
        open(args.stamp, "a").write("stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
