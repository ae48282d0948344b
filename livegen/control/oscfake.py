"""A stand-in engine server for UI tests and the UI benchmark: python-osc on real UDP.

It records every message the UI sends, answers `/livegen/status`, `/livegen/get/<name>` and
`/livegen/params`, remembers subscribers, glides preset morphs and loops (pushing the moving
parameters, as the engine does), and can push feedback (parameter changes, meters, spectra)
the way the real engine does. `/livegen/model` switches its parameters to the model's
(`specs_for(path)`). Run as a module it is the UI's child process in tests:
`python -m livegen.control.oscfake --osc-port P [--stamp FILE]`; SIGTERM ends it cleanly.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from livegen.control.oscaddress import PREFIX, param_rows
from livegen.control.oscdispatch import status_pairs
from livegen.control.oscwire import encode_message, pack_bundles
from livegen.engine.params import ParamSpec, ParamStore, engine_param_specs, latent_param_specs

GLIDE_TICK = 1 / 60


def model_specs(path: str) -> list[ParamSpec]:
    """A VAE's parameters for the latent size its `config.json` gives (8 when it cannot tell)."""
    try:
        latent_dim = int(json.loads((Path(path) / "config.json").read_text())["config"]["latent_dim"])
    except (OSError, ValueError, KeyError, TypeError):
        latent_dim = 8
    return engine_param_specs() + latent_param_specs(latent_dim)


class FakeEngine:
    def __init__(self, port: int = 0, *, latent_dim: int = 8, specs_for=model_specs):
        self.params = ParamStore.for_model(latent_dim)
        self.specs_for = specs_for
        """`specs_for(path)`: the parameters of the model `/livegen/model` loads."""
        self._glide: threading.Event | None = None
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
            self.reply(client, PREFIX + "status", *status_pairs(self.status))
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
        elif verb == "params":
            rows = [encode_message(PREFIX + "params", row) for row in param_rows(self.params.specs)]
            for data in pack_bundles(rows):
                self.server.socket.sendto(data, client)
        elif verb == "model" and args:
            old, self.params = self.params, ParamStore(self.specs_for(str(args[0])))
            self.params.restore(old.snapshot())
            self.reply(client, PREFIX + "model", str(args[0]))
        elif verb == "preset/store" and args:
            self.presets[int(args[0])] = self.params.snapshot()
        elif verb == "preset/recall" and args:
            self._stop_glide()
            self.params.restore(self.presets.get(int(args[0]), {}))
        elif verb == "preset/morph" and len(args) == 2 and int(args[0]) in self.presets:
            self._start_glide([int(args[0])], float(args[1]), loop=False)
        elif verb == "preset/loop" and args:
            slots = [int(a) for a in args[1:]] or sorted(self.presets)
            if float(args[0]) > 0 and len(slots) >= 2 and all(s in self.presets for s in slots):
                self._start_glide(slots, float(args[0]), loop=True)
            else:
                self._stop_glide()
        elif verb == "unlearn" and args:
            self.bindings.pop(str(args[0]), None)

    # -- preset morphs and loops, glided as the engine does (on a line, not its raised cosine) --
    def _start_glide(self, slots: list[int], seconds: float, *, loop: bool) -> None:
        self._stop_glide()
        stop = self._glide = threading.Event()
        threading.Thread(target=self._glide_through, args=(slots, seconds, loop, stop), daemon=True).start()

    def _stop_glide(self) -> None:
        if self._glide is not None:
            self._glide.set()
            self._glide = None

    def _glide_through(self, slots, seconds, loop, stop) -> None:
        leg = 0
        while not stop.is_set():
            start, end = self.params.snapshot(), self.presets[slots[leg % len(slots)]]
            began = time.monotonic()
            fraction = 0.0
            while fraction < 1.0 and not stop.is_set():
                fraction = min((time.monotonic() - began) / max(seconds, 1e-3), 1.0)
                for name, b in end.items():
                    if name in self.params.specs and start.get(name, b) != b:
                        a = start[name]
                        value = a + (b - a) * fraction
                        if self.params.specs[name].integer:
                            value = float(math.floor(value + 0.5))
                        self.params.set(name, value)
                        self.push(f"{PREFIX}param/{name}", float(self.params.get(name)))
                stop.wait(GLIDE_TICK)
            leg += 1
            if not loop:
                return

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
    parser = argparse.ArgumentParser(prog="python -m livegen.control.oscfake")
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
