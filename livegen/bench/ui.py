"""`livegen bench ui`: what the terminal UI costs, in a real pseudo-terminal.

The UI runs as its own process (`python -m livegen.tui --connect PORT`) attached to a stand-in
engine in this process that pushes meters and a 64-band spectrum at 30 Hz, as the engine's
feedback thread does. Figures:

- start-up: process spawn to the pad drawn on the terminal (its title seen in the output);
- CPU at idle (meters flowing, nobody touching it) and while dragging on the pad (SGR mouse
  motion written to the terminal at 60 Hz), as a share of one core;
- how many `/livegen/xy` messages the drag produced per second (coalescing caps them at 60);

each beside a bare Textual app (one Static) measured in the same run, the baseline.

`--soak SECONDS` adds the dropout check against the real engine on a private
`jackd -d dummy -r 48000 -p 256`: xruns while nothing watches the engine (baseline), then
xruns over the same time with the UI attached and redrawing at full rate (dragging on the
pad the whole time, each move an OSC message to the engine).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import time

from livegen.bench.control import _Jack
from livegen.control.oscfake import PREFIX, FakeEngine
from livegen.control.oscwire import encode_message
from livegen.data.files import check_output_file
from livegen.errors import ranged
from livegen.tui.child import free_udp_port

BASELINE_APP = """
import sys
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("latent plane (bare textual baseline)")
        yield Static("", id="tick")
    def on_mount(self):
        self.n = 0
        if float(sys.argv[1]) > 0:
            self.set_interval(1 / float(sys.argv[1]), self.tick)
    def tick(self):
        self.n += 1
        self.query_one("#tick").update(f"frame {self.n}")
Bare().run()
"""


class PtyProcess:
    """A child on a pseudo-terminal; a thread drains its output and notes when a marker shows."""

    def __init__(self, argv: list[str], *, cols: int, rows: int, marker: bytes):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        self.started = time.perf_counter()
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.marker = marker
        self.drawn_at: float | None = None
        self._tail = b""
        self._stop = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            if self.drawn_at is None:
                self._tail = (self._tail + data)[-4096:]
                if self.marker in self._tail:
                    self.drawn_at = time.perf_counter()

    def wait_drawn(self, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while self.drawn_at is None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"{self.process.args} never drew {self.marker!r}")
            time.sleep(0.005)
        return self.drawn_at - self.started

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_share(self, seconds: float, during=None) -> float:
        before, t0 = self.cpu_seconds(), time.perf_counter()
        if during is None:
            time.sleep(seconds)
        else:
            during(seconds)
        return (self.cpu_seconds() - before) / (time.perf_counter() - t0)

    def close(self) -> None:
        self.write(b"\x11")  # ctrl+q
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stop = True
        self._thread.join(1)
        os.close(self.master)


def drag(proc: PtyProcess, seconds: float, *, cols: int, rows: int, rate: float = 60.0) -> None:
    """Press on the pad and move in a circle for `seconds`, as SGR mouse reports (1-based)."""
    import math

    cx, cy = cols // 4, rows // 3
    rx, ry = max(cols // 6, 2), max(rows // 5, 2)
    proc.write(f"\x1b[<0;{cx};{cy}M".encode())
    start = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - start < seconds:
        angle = 2 * math.pi * (now - start) / 2.0
        x, y = cx + round(rx * math.cos(angle)), cy + round(ry * math.sin(angle))
        proc.write(f"\x1b[<32;{x};{y}M".encode())
        n += 1
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
    proc.write(f"\x1b[<0;{cx};{cy}m".encode())


def _status(port: int, timeout: float = 2.0) -> dict | None:
    import socket

    from pythonosc.osc_message import OscMessage

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        sock.sendto(encode_message("/livegen/status"), ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65536)
            except (OSError, TimeoutError):
                continue
            message = OscMessage(data)
            if message.address == "/livegen/status":
                args = message.params
                return {str(args[i]): args[i + 1] for i in range(0, len(args) - 1, 2)}
    return None


def soak(seconds: float, *, cols: int, rows: int) -> int:
    """Engine xruns with and without the UI redrawing at full rate (see the module docstring)."""
    import tempfile

    jack = _Jack()
    if not jack.start():
        print("livegen bench ui --soak: could not start jackd -d dummy; install jackd2")
        return 1
    port = free_udp_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    engine = subprocess.Popen([sys.executable, "-m", "livegen", "play", "--headless", "--osc-port", str(port),
                               "--blocksize", "256"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while (status := _status(port)) is None:
            if engine.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                print(f"livegen bench ui --soak: the engine did not start:\n{log.read()}")
                return 1
        time.sleep(2.0)  # let the start-up settle
        x0 = _status(port)["xruns"]
        time.sleep(seconds)
        x1 = _status(port)["xruns"]
        load_quiet = os.getloadavg()[0]
        ui = PtyProcess([sys.executable, "-m", "livegen.tui", "--connect", str(port)],
                        marker=b"latent plane", cols=cols, rows=rows)
        ui.wait_drawn()
        time.sleep(1.0)
        x2 = _status(port)["xruns"]
        cpu = ui.cpu_share(seconds, lambda s: drag(ui, s, cols=cols, rows=rows))
        status = _status(port)
        x3 = status["xruns"]
        load_ui = os.getloadavg()[0]
        ui.close()
        print(f"soak on jackd dummy -r 48000 -p 256, {seconds:g} s each, engine blocksize 256:")
        print(f"  xruns without the UI (baseline): {x1 - x0}   (load average {load_quiet:.1f})")
        print(f"  xruns with the UI dragging/redrawing: {x3 - x2}   (UI CPU {100 * cpu:.1f} % of one core; "
              f"load average {load_ui:.1f})")
        print(f"  engine load at the end: {status.get('load', 0):.3f}; underflows {status.get('underflows')}, late "
              f"renders {status.get('late')} in all; longest render "
              f"{status.get('render_max_ms', 0):.1f} ms, longest callback interval {status.get('audio_gap_ms', 0):.1f} ms")
        print(f"  scheduling: {jack.scheduling}; audio callback thread {status.get('audio_policy')}, UI normal")
        return 0
    finally:
        if engine.poll() is None:
            engine.terminate()
            try:
                engine.wait(15)
            except subprocess.TimeoutExpired:
                engine.kill()
        jack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="livegen bench ui", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=ranged(float, above=0), default=10.0, help="length of each CPU measurement")
    parser.add_argument("--cols", type=ranged(int, 20), default=100)
    parser.add_argument("--rows", type=ranged(int, 5), default=30)
    parser.add_argument("--meter-hz", type=ranged(float, above=0), default=30.0, help="feedback rate of the stand-in engine")
    parser.add_argument("--profile", metavar="FILE", help="run the UI under cProfile, stats to FILE")
    parser.add_argument("--soak", type=ranged(float, 0), default=0.0, metavar="SECONDS",
                        help="also measure engine xruns with and without the UI on jackd dummy (e.g. 300)")
    args = parser.parse_args(argv)
    if args.profile:
        check_output_file(args.profile, "--profile", example="ui.prof")

    engine = FakeEngine().start()
    feeding = threading.Event()
    done = threading.Event()

    def feed() -> None:
        tick = 0
        while not done.is_set():
            if feeding.is_set() and engine.subscribers:
                tick += 1
                level = -12.0 + 6.0 * ((tick % 60) / 60.0)
                engine.push(PREFIX + "meter", level, level - 8.0)
                engine.push(PREFIX + "spectrum", *[float(-90 + (i * 7 + tick) % 80) for i in range(64)])
            done.wait(1.0 / args.meter_hz)

    threading.Thread(target=feed, daemon=True).start()
    size = dict(cols=args.cols, rows=args.rows)
    print(f"livegen bench ui: {args.cols}x{args.rows} pty, {args.seconds:g} s per figure, "
          f"stand-in engine feedback {args.meter_hz:g} Hz (meter + 64-band spectrum)")
    try:
        base = PtyProcess([sys.executable, "-c", BASELINE_APP, "0"], marker=b"bare textual", **size)
        base_start = base.wait_drawn()
        time.sleep(1.0)
        base_idle = base.cpu_share(args.seconds)
        base.close()
        base = PtyProcess([sys.executable, "-c", BASELINE_APP, str(args.meter_hz)], marker=b"bare textual", **size)
        base.wait_drawn()
        time.sleep(1.0)
        base_busy = base.cpu_share(args.seconds)
        base.close()

        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        ui = PtyProcess([sys.executable, *profile, "-m", "livegen.tui", "--connect", str(engine.port)],
                        marker=b"latent plane", **size)
        ui_start = ui.wait_drawn()
        engine.wait_subscribed(10)
        time.sleep(1.0)
        ui_quiet = ui.cpu_share(args.seconds)
        feeding.set()
        time.sleep(1.0)
        ui_idle = ui.cpu_share(args.seconds)
        before = len(engine.messages("/livegen/xy"))
        t0 = time.perf_counter()
        ui_drag = ui.cpu_share(args.seconds, lambda s: drag(ui, s, **size))
        time.sleep(0.2)
        xy_rate = (len(engine.messages("/livegen/xy")) - before) / (time.perf_counter() - t0 - 0.2)
        ui.close()
    finally:
        done.set()
        engine.stop()

    def pct(x: float) -> str:
        return f"{100 * x:5.1f} % of one core"

    print(f"{'':34s}{'livegen UI':>22s}{'bare Textual':>22s}{'ratio':>8s}")
    print(f"{'start-up to a drawn screen':34s}{ui_start:20.2f} s{base_start:20.2f} s{ui_start / base_start:8.2f}")
    print(f"{'CPU, idle, no feedback':34s}{pct(ui_quiet):>22s}{pct(base_idle):>22s}")
    print(f"{'CPU, idle, feedback flowing':34s}{pct(ui_idle):>22s}{pct(base_busy):>22s}"
          f"{ui_idle / max(base_busy, 1e-4):8.1f}")
    print(f"{'CPU, dragging at 60 Hz':34s}{pct(ui_drag):>22s}{pct(base_busy):>22s}{ui_drag / max(base_busy, 1e-4):8.1f}")
    print(f"{'/livegen/xy sent while dragging':34s}{xy_rate:18.1f} /s  (coalesced: at most 60/s)")
    print(f"(bare Textual: one Static; in the feedback rows it updates one line at {args.meter_hz:g} Hz)")
    if args.soak > 0:
        return soak(args.soak, cols=args.cols, rows=args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
