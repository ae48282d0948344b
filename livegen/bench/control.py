"""`livegen bench control`: control latency (OSC and MIDI -> parameter applied) and a flood test.

Latency is measured from the moment a packet (OSC over UDP) or message (MIDI through a JACK
port) is sent to the moment the engine thread applies the event at a hop boundary (its
listener fires); sound follows one ring look-ahead later. Each figure is taken idle, while an
OSCQuery client fetches the whole namespace over HTTP as fast as it can (`polled`: discovery
must not slow OSC down), and under load (the engine playing four notes while another client
streams 1,000 OSC messages a second); the idle figure is the same-run baseline for the others.

The flood sends fuzzed OSC packets (random bytes, mutated and hostile messages, NaN/Inf,
bad bundles, oversized packets) and random MIDI messages while the engine plays, then
reports crashes, parameters out of range, xruns against a quiet period of the same length,
and whether `/livegen/status` kept answering.

Runs against the real engine (a private `jackd -d dummy` server, the engine's audio output
and decoder thread) unless `--target fake` or no JACK server can be started, in which case
it uses `livegen.control.fake.FakeTarget` and says so.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from livegen.audio import devices
from livegen.audio.realtime import REALTIME_PRIORITY, describe_process
from livegen.control.fake import FakeTarget
from livegen.control.mapping import Mapping, MidiMapper
from livegen.control.midi import MidiInput
from livegen.control.osc import OscServer
from livegen.control.oscwire import encode_message, parse_packet
from livegen.engine.events import note_on
from livegen.errors import ranged, seed_type
from livegen.server.client import RemoteEngine, SoundServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="livegen bench control", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", choices=("engine", "fake"), default="engine",
                   help="the real engine on jackd dummy (default) or the fake control target")
    p.add_argument("--model", help="model directory for the engine (default: models/default or a random model)")
    p.add_argument("--count", type=ranged(int, 1), default=200, help="latency samples per case (default 200)")
    p.add_argument("--flood", action="store_true", help="also run the flood test")
    p.add_argument("--osc-packets", type=ranged(int, 0), default=100_000)
    p.add_argument("--osc-rate", type=ranged(float, above=0), default=5_000.0, help="fuzzed OSC packets per second")
    p.add_argument("--midi-messages", type=ranged(int, 0), default=50_000)
    p.add_argument("--midi-rate", type=ranged(float, above=0), default=5_000.0, help="fuzzed MIDI messages per second")
    p.add_argument("--seed", type=seed_type(), default=0)
    p.add_argument("--realtime-priority", type=ranged(int, 0, 94), default=None, metavar="N",
                   help="decoder SCHED_FIFO priority as in `play` (default: play's; 0 = off)")
    return p


# -- set-up ------------------------------------------------------------------------------------
class _Jack:
    """A private `jackd -d dummy -r 48000 -p 256`: real-time (`-R -P 10`, as stage rigs run it)
    when the system allows, else `--no-realtime`; `scheduling` says what its threads obtained."""

    PRIORITY = 10

    def __init__(self):
        self.name = f"livegen-bench-{uuid.uuid4().hex[:8]}"
        self.process = None
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.realtime = False
        self.note = ""

    def start(self, *, realtime: bool = True) -> bool:
        jackd = shutil.which("jackd")
        if jackd is None:
            return False
        os.environ.update(JACK_DEFAULT_SERVER=self.name, JACK_NO_AUDIO_RESERVATION="1", JACK_NO_START_SERVER="1")
        mode = ["-R", "-P", str(self.PRIORITY)] if realtime else ["--no-realtime"]
        self.process = subprocess.Popen([jackd, *mode, "-n", self.name, "-d", "dummy", "-r", "48000",
                                         "-p", "256"], stdout=self.log, stderr=subprocess.STDOUT)
        import jack

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if realtime:  # real-time refused: go on without, and say so
                    self.note = "jackd -R refused here; running --no-realtime"
                    return self.start(realtime=False)
                return False
            try:
                with devices.quiet_stderr():  # libjack prints while the server comes up
                    jack.Client("probe", servername=self.name, no_start_server=True).close()
                self.realtime = "fifo" in describe_process(self.process.pid)
                if realtime and not self.realtime:
                    self.note = "jackd -R got no real-time thread here (no privilege)"
                return True
            except jack.JackError:
                time.sleep(0.1)
        return False

    @property
    def scheduling(self) -> str:
        mode = f"-R -P {self.PRIORITY}" if self.realtime else "--no-realtime"
        return f"jackd {mode}: {describe_process(self.process.pid)}" + (f" ({self.note})" if self.note else "")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)


def _engine_target(model_path, *, realtime_priority: int):
    """The engine as `play --headless` runs it: rendering in the sound server process's audio
    callback, this process the client (OSC, MIDI) talking to it through shared memory."""
    engine = RemoteEngine({"blocksize": 256, "latency": "low",
                           "realtime_priority": min(realtime_priority + 5, 99) if realtime_priority > 0 else 0},
                          {"model": model_path, "seed": 0, "device": "cpu"})
    engine.wait_ready()
    engine.start()
    server = SoundServer(engine)
    return server, f"real engine (model {model_path or 'models/default'}) on jackd dummy, {engine.samplerate} Hz, in the sound server"


def _midi_out(client: str, port: str = "livegen:livegen", *, seconds: float = 5.0):
    """A JACK MIDI output named `client`, connected to `port` (the engine's MIDI input, which
    appears once it has started: waited for up to `seconds`)."""
    import rtmidi

    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
    deadline = time.monotonic() + seconds
    while port not in out.get_ports() and time.monotonic() < deadline:
        time.sleep(0.05)
    out.open_port(out.get_ports().index(port))
    return out


# -- measuring ---------------------------------------------------------------------------------
class _Probe:
    """Listener that timestamps applied events of one parameter (engine thread: only stores)."""

    def __init__(self, params):
        self.params = params
        self.name = None
        self.applied: dict[float, float] = {}
        self.out_of_range = 0
        self.param_events = 0

    def __call__(self, event):
        if event.type != "param":
            return
        self.param_events += 1
        spec = self.params.specs.get(event.name)
        if spec is None or not (spec.minimum <= event.value <= spec.maximum) or event.value != event.value:
            self.out_of_range += 1
        if event.name == self.name:
            self.applied[round(float(event.value), 3)] = time.perf_counter()


def _until_applied(applied, key, send, *args) -> float | None:
    """Milliseconds from `send(*args)` to a listener stamping `key` into `applied` (key -> the
    `time.perf_counter()` at which the engine applied it); None when 2 s pass without."""
    applied.pop(key, None)
    sent = time.perf_counter()
    send(*args)
    deadline = sent + 2.0
    while key not in applied and time.perf_counter() < deadline:
        time.sleep(0.0002)
    return 1000 * (applied[key] - sent) if key in applied else None


def _latency(send, probe: _Probe, name: str, values, rng) -> list[float]:
    probe.name = name
    out = []
    for value in values:
        ms = _until_applied(probe.applied, round(float(value), 3), send, value)
        if ms is not None:
            out.append(ms)
        time.sleep(rng.uniform(0.002, 0.008))
    return out


def _summary(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return f"median {statistics.median(ordered):6.2f} ms   p99 {p99:6.2f} ms   (n={len(ordered)})"


def _background_osc(port: int, stop: threading.Event, rate: float = 1000.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = random.Random(1)
    sent = 0
    start = time.perf_counter()
    while not stop.is_set():
        sock.sendto(encode_message("/livegen/xy", (rng.random(), rng.random())), ("127.0.0.1", port))
        sent += 1
        ahead = sent / rate - (time.perf_counter() - start)
        if ahead > 0:
            time.sleep(ahead)
    sock.close()


def _poll_oscquery(port: int, stop: threading.Event, done: list) -> None:
    """GET / (the whole OSCQuery namespace) over one keep-alive connection until `stop`;
    appends (requests, bytes of the last, seconds)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    requests, size, start = 0, 0, time.perf_counter()
    try:
        while not stop.is_set():
            connection.request("GET", "/")
            size = len(connection.getresponse().read())
            requests += 1
    except (OSError, http.client.HTTPException) as exc:  # the phase then ran unloaded: say so
        done.append(f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    done.append((requests, size, time.perf_counter() - start))
    connection.close()


def _fuzz_osc_packets(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    addresses = ["/livegen/xy", "/livegen/z/0", "/livegen/z/99", "/livegen/param/gain", "/livegen/param/voices",
                 "/livegen/note", "/livegen/record", "/livegen/preset/recall", "/livegen/preset/store",
                 "/livegen/get/gain", "/livegen/learn", "/livegen/nope", "/livegen/subscribe",
                 "/livegen/voice/3/note", "/livegen/voice/3/bend", "/livegen/voice/127/xy", "/livegen/voice/9/pressure",
                 "/livegen/voice/200/x"]
    specials = [float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 0.0, 0.5, 1e-40]
    out = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.25:
            out.append(rng.randbytes(rng.randrange(0, 200)))
        elif kind < 0.6:
            args = [rng.choice(specials) if rng.random() < 0.5 else rng.uniform(-1e6, 1e6)
                    for _ in range(rng.randrange(0, 4))]
            out.append(encode_message(rng.choice(addresses), args))
        elif kind < 0.85:
            data = bytearray(encode_message(rng.choice(addresses), [rng.uniform(-10, 10)]))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            out.append(bytes(data))
        elif kind < 0.95:
            inner = encode_message(rng.choice(addresses), [rng.choice(specials)])
            sizes = [rng.choice([-4, 0, 3, len(inner), 1 << 30]) for _ in range(rng.randrange(1, 4))]
            out.append(b"#bundle\x00" + struct.pack(">Q", rng.choice([1, 0, 2**64 - 1]))
                       + b"".join(struct.pack(">i", s) + inner for s in sizes))
        else:
            out.append(b"/livegen/xy\x00,ff\x00" + rng.randbytes(9000))
    return out


def _fuzz_midi(count: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.4:
            out.append([rng.randrange(0x80, 0xF0), rng.randrange(128), rng.randrange(128)])
        elif kind < 0.6:
            out.append([0xB0 | rng.randrange(16), rng.choice([6, 16, 38, 48, 64, 70, 96, 98, 99, 100, 101, 123]),
                        rng.randrange(128)])
        elif kind < 0.75:
            out.append([rng.randrange(256) for _ in range(rng.randrange(1, 4))])
        elif kind < 0.85:
            out.append([0xF0] + [rng.randrange(128) for _ in range(rng.randrange(0, 20))] + [0xF7])
        else:
            out.append([rng.choice([0xF8, 0xFE, 0xFA, 0xFC, 0xF1, 0xF2, 0xF3, 0xF6])])
    return out


def _status_answers(port: int) -> tuple[bool, float]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        started = time.perf_counter()
        sock.sendto(encode_message("/livegen/status"), ("127.0.0.1", port))
        try:
            while True:
                data, _ = sock.recvfrom(65536)
                if parse_packet(data)[0].address == "/livegen/status":
                    return True, 1000 * (time.perf_counter() - started)
        except (socket.timeout, ValueError):
            return False, 0.0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    rng = random.Random(args.seed)
    jack = _Jack()
    have_jack = jack.start()
    target = live = None
    if args.target == "engine" and have_jack:
        try:
            if args.realtime_priority is None:
                args.realtime_priority = REALTIME_PRIORITY
            live, what = _engine_target(args.model, realtime_priority=args.realtime_priority)
            target = live
        except Exception as exc:  # say why, and go on with the fake
            print(f"engine unavailable ({type(exc).__name__}: {exc}); using the fake target", file=sys.stderr)
    if target is None:
        target = FakeTarget(latent_dim=8)
        what = "FAKE control target (livegen.control.fake.FakeTarget, 256-sample blocks at 48 kHz)"
    print(f"target: {what}")
    print(f"machine: {os.cpu_count()} cores, shared, load average {os.getloadavg()[0]:.1f}; "
          f"JACK {jack.scheduling if have_jack else 'not available'}")
    if live is not None:
        print(f"sound server: audio callback thread {live.status()['audio_policy']}")

    probe = _Probe(target.params)
    target.add_listener(probe)
    osc = OscServer(target, port=0, discovery=True, log=lambda text: print(text, file=sys.stderr)).start()
    midi = out = None
    if have_jack:
        import rtmidi

        mapper = MidiMapper(target.params, [Mapping("z1", cc=20, takeover=False)])
        midi = MidiInput(target, mapper=mapper, api=rtmidi.API_UNIX_JACK, save_learned=False,
                         map_path=os.path.join(tempfile.gettempdir(), "livegen-bench-map.toml")).start()
        out = _midi_out("bench-controller")
        time.sleep(0.2)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send_osc(value):
        sock.sendto(encode_message("/livegen/param/z0", (float(value),)), ("127.0.0.1", osc.port))

    def send_midi(value):
        out.send_message([0xB0, 20, int(value)])

    def midi_values(n):
        # 7-bit values, each different from the one before it (the probe keys on value)
        values, last = [], None
        for i in range(n):
            v = (i * 37) % 128
            values.append(v if v != last else (v + 1) % 128)
            last = values[-1]
        return values

    def midi_key(v):
        return -4.0 + 8.0 * v / 127.0

    def osc_values(n):
        return [round(-3.9 + 7.8 * ((i * 0.618034) % 1.0), 3) for i in range(n)]

    # Warm up (the engine's first seconds and first events are slow), then measure.
    time.sleep(2.0)
    _latency(send_osc, probe, "z0", osc_values(30), rng)
    if out is not None:
        _latency(lambda v: send_midi(v), _KeyedProbe(probe, midi_key), "z1", midi_values(30), rng)
    results = {}
    polled: list = []
    phases = ("idle", "polled", "loaded") if osc.query is not None else ("idle", "loaded")
    if osc.query is None:
        print("OSCQuery is not answering (its TCP port taken?): no polled phase")
    for label in phases:
        stop = threading.Event()
        background = None
        if label == "polled":
            background = threading.Thread(target=_poll_oscquery, args=(osc.port, stop, polled), daemon=True)
            background.start()
        if label == "loaded":
            for pitch in (48, 55, 60, 64):
                target.post(note_on(pitch, 90, source="bench"))
            background = threading.Thread(target=_background_osc, args=(osc.port, stop), daemon=True)
            background.start()
        time.sleep(0.3)
        results[("OSC", label)] = _latency(send_osc, probe, "z0", osc_values(args.count), rng)
        if out is not None:
            values = midi_values(args.count)
            samples = _latency(lambda v: send_midi(v), _KeyedProbe(probe, midi_key), "z1", values, rng)
            results[("MIDI", label)] = samples
        stop.set()
        if background is not None:
            background.join()
    print("\ncontrol latency: sent -> applied by the engine thread")
    for (kind, label), samples in results.items():
        print(f"  {kind:4s} {label:6s}  {_summary(samples)}")
    for kind in ("OSC", "MIDI"):
        idle = results.get((kind, "idle"))
        for label in ("polled", "loaded"):
            other = results.get((kind, label))
            if idle and other:
                print(f"  {kind:4s} {label}/idle median ratio {statistics.median(other) / statistics.median(idle):.2f}")
    for item in polled:
        if isinstance(item, str):
            print(f"  polled: the OSCQuery client stopped early ({item}): the phase ran partly unloaded")
            continue
        requests, size, seconds = item
        print(f"  polled: {requests} OSCQuery GET / ({size / 1024:.0f} KiB each) in {seconds:.1f} s, "
              f"{1000 * seconds / max(requests, 1):.1f} ms each, on one keep-alive connection")

    code = 0
    if args.flood:
        code = _flood(args, target, osc, midi, out, probe)
    sock.close()
    osc.stop()
    if midi is not None:
        out.close_port()
        midi.stop()
    if live is not None:
        live.stop()
    elif hasattr(target, "close"):
        target.close()
    jack.stop()
    return code


class _KeyedProbe:
    """Adapts the probe so `_latency` can key MIDI sends (0..127) by the applied value."""

    def __init__(self, probe: _Probe, to_value):
        self.probe = probe
        self.to_value = to_value

    @property
    def applied(self):
        return _KeyedDict(self.probe.applied, self.to_value)

    @property
    def name(self):
        return self.probe.name

    @name.setter
    def name(self, value):
        self.probe.name = value


class _KeyedDict:
    def __init__(self, inner, to_value):
        self.inner, self.to_value = inner, to_value

    def _key(self, key):
        return round(self.to_value(key), 3)

    def pop(self, key, default=None):
        return self.inner.pop(self._key(key), default)

    def __contains__(self, key):
        return self._key(key) in self.inner

    def __getitem__(self, key):
        return self.inner[self._key(key)]


def _flood_sender(port: int, args: dict, midi: bool, conn) -> None:
    """The flood's senders, in their own process as real controllers would be: fuzzed OSC packets,
    fuzzed MIDI through a JACK MIDI port, and a `/livegen/status` probe every 0.25 s."""
    packets = _fuzz_osc_packets(args["osc_packets"], args["seed"])
    messages = _fuzz_midi(args["midi_messages"], args["seed"] + 1) if midi else []
    out = None
    if messages:
        out = _midi_out("bench-flood")
    conn.send("ready")
    conn.recv()
    status_checks = []
    stop = threading.Event()

    def check_status():
        while not stop.wait(0.25):
            status_checks.append(_status_answers(port))

    checker = threading.Thread(target=check_status, daemon=True)
    checker.start()
    midi_refused = [0]

    def midi_flood():
        start = time.perf_counter()
        for i, message in enumerate(messages):
            try:
                out.send_message(message)
            except Exception:
                midi_refused[0] += 1
            ahead = (i + 1) / args["midi_rate"] - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)

    midi_thread = threading.Thread(target=midi_flood, daemon=True)
    midi_thread.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    start = time.perf_counter()
    sent = 0
    for i, packet in enumerate(packets):
        try:
            sock.sendto(packet, ("127.0.0.1", port))
            sent += 1
        except OSError:
            pass
        if i % 25 == 24:
            ahead = (i + 1) / args["osc_rate"] - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
    osc_seconds = time.perf_counter() - start
    midi_thread.join()
    time.sleep(0.5)
    stop.set()
    checker.join()
    if out is not None:
        out.close_port()
    conn.send((sent, osc_seconds, len(messages), midi_refused[0], status_checks))


def _flood(args, target, osc, midi, out, probe) -> int:
    import multiprocessing

    status = target.status
    duration = args.osc_packets / args.osc_rate
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    sender = context.Process(target=_flood_sender, args=(osc.port, {
        "osc_packets": args.osc_packets, "osc_rate": args.osc_rate, "midi_messages": args.midi_messages,
        "midi_rate": args.midi_rate, "seed": args.seed}, out is not None, there), daemon=True)
    sender.start()
    if not here.poll(120):
        print("flood: the sending process did not start")
        return 1
    here.recv()  # packets generated, MIDI port open
    # Same-run baseline: xruns over a quiet period as long as the flood.
    quiet_start = status().get("xruns", 0)
    time.sleep(duration)
    quiet_xruns = status().get("xruns", 0) - quiet_start
    probe.out_of_range = 0
    before = dict(osc.stats)
    midi_before = midi.messages if midi is not None else 0
    xruns_start = status().get("xruns", 0)
    here.send("go")
    sent, osc_seconds, n_midi, midi_refused, status_checks = here.recv()
    sender.join(5)
    xruns = status().get("xruns", 0) - xruns_start
    final_ok, final_ms = _status_answers(osc.port)
    stats = {k: osc.stats[k] - before.get(k, 0) for k in osc.stats}
    params = target.params
    out_of_range = [n for n, s in params.specs.items() if not (s.minimum <= params.get(n) <= s.maximum)]
    threads_alive = osc.alive and (midi is None or midi.alive)
    crashes = stats.get("internal_errors", 0) + (0 if threads_alive else 1) + (len(midi.errors) if midi else 0)
    answered = sum(1 for ok, _ in status_checks if ok)
    worst = max((ms for ok, ms in status_checks if ok), default=0.0)
    print(f"\nflood (sent from another process): {sent} fuzzed OSC packets in {osc_seconds:.1f} s "
          f"({sent / osc_seconds:,.0f}/s); {n_midi} MIDI messages at {args.midi_rate:,.0f}/s; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  OSC server received {stats.get('packets', 0)} packets (the rest dropped by the kernel's socket buffer), "
          f"malformed {stats.get('malformed', 0)}, messages {stats.get('messages', 0)}, posted {stats.get('posted', 0)}, "
          f"errors {stats.get('errors', 0)} (sent {stats.get('errors', 0) - stats.get('errors_unsent', 0)}, rate-limited)")
    if midi is not None:
        print(f"  MIDI input handled {midi.messages - midi_before} messages (rtmidi drops sysex, clock and active "
              f"sensing before the callback; {midi_refused} refused by the sending rtmidi); "
              f"mapper ignored {midi.mapper.ignored} malformed")
    print(f"  crashes {crashes} (internal errors {stats.get('internal_errors', 0)}, threads alive {threads_alive})"
          + (f"; last: {osc.last_internal_error}" if osc.last_internal_error else ""))
    print(f"  parameters out of range: {len(out_of_range)} now, {probe.out_of_range} applied events out of range "
          f"(of {probe.param_events})")
    now = status()
    print(f"  xruns during flood {xruns} vs {quiet_xruns} in a quiet period of the same length (same run); "
          f"whole run: underflows {now.get('underflows')}, late renders {now.get('late')}, "
          f"longest render {now.get('render_max_ms')} ms, "
          f"longest callback interval {now.get('audio_gap_ms')} ms")
    print(f"  /livegen/status answered {answered}/{len(status_checks)} probes during the flood "
          f"(slowest {worst:.1f} ms); after: {'yes' if final_ok else 'NO'} ({final_ms:.1f} ms)")
    return 0 if crashes == 0 and not out_of_range and probe.out_of_range == 0 and final_ok else 1


if __name__ == "__main__":
    sys.exit(main())
