"""Helpers shared by the test modules: waiting on conditions, OSC over real UDP, processes.

Fixtures live in `conftest.py`; test modules import plain functions from here, never from each
other. Waits poll a condition on a deadline and fail saying what did not happen: never a fixed
sleep standing in for "long enough".
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import ifaddr
import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from livegen.control.osc import OscServer, listening_port
from livegen.control.oscwire import parse_packet
from livegen.engine.events import Event
from livegen.errors import NO_INPUT, NOT_CONTINUATION
from livegen.tui.app import LivegenApp
from livegen.tui.model_info import ModelInfo
from livegen.tui.osc import OscLink

REPO = Path(__file__).resolve().parent.parent


def livegen(*args, env=None, timeout: float = 120, cwd=REPO) -> subprocess.CompletedProcess:
    """Run `livegen ARGS...` as a user does: its own process, output captured, stdin closed."""
    return subprocess.run([sys.executable, "-m", "livegen", *map(str, args)], cwd=cwd, env=env, check=False,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def assert_refused(result: subprocess.CompletedProcess, *named: str) -> None:
    """The command refused its input as the CLI's convention says: exit code 2, one `error:`
    line naming each of `named` (the value, the option), no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    line = next((line for line in result.stderr.splitlines() if "error:" in line), "")
    for text in named:
        assert text in line, (text, result.stderr)


def _describe(what: str | Callable[[], str]) -> str:
    return what() if callable(what) else what


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str | Callable[[], str] = "the condition",
             *, interval: float = 0.02):
    """Poll `predicate` until it returns something truthy (returned) or fail after `timeout` s.

    `what` says what was awaited (or is a callable giving it, e.g. a log read at failure time).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {_describe(what)}")
        time.sleep(interval)


# ------------------------------------------------------------------------ the terminal UI
TUI_CENTROIDS = {"piano": (0.2, 0.7), "organ": (0.6, 0.3), "strings": (0.8, 0.8)}
TUI_SIZE = (100, 32)


def shown_keys(app) -> dict[str, str]:
    """The keys the footer shows on the app's screen, with what it says they do."""
    return {key: binding.description for key, (_, binding, _, _) in app.screen.active_bindings.items()
            if binding.show}


def make_app(port: int, *, engine=None, model_roots=None) -> LivegenApp:
    """The UI attached to an engine (or a `FakeEngine`) on `port`, with a test model's info."""
    link = OscLink("127.0.0.1", port)
    info = ModelInfo(path="/models/test", latent_dim=8, centroids=dict(TUI_CENTROIDS))
    return LivegenApp(link, engine=engine, info=info, model_roots=model_roots)


def run(app: LivegenApp, scenario, size=TUI_SIZE) -> None:
    """Run `scenario(pilot)` in `app` under Pilot, closing its OSC link after."""
    async def main():
        try:
            async with app.run_test(size=size) as pilot:
                await until(pilot, lambda: app.sliders)  # the engine answered /livegen/params
                await scenario(pilot)
        finally:
            app.link.close()
    asyncio.run(main())


def shown_values(app: LivegenApp, name: str) -> list:
    """Every value the engine's feedback shows for parameter `name` from now on."""
    seen = []
    show = app.show_value
    app.show_value = lambda n, value: (seen.append(value) if n == name else None, show(n, value))[1]
    return seen


def last_args(fake, address: str):
    """The args of the last message `fake` (a FakeEngine) received at `address`, or None."""
    found = [args for a, args in fake.messages(address) if a == address]
    return found[-1] if found else None


async def until(pilot, predicate: Callable[[], Any], timeout: float = 5.0) -> bool:
    """`wait_for` for Textual Pilot scenarios: lets the app run between polls; returns the outcome."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await pilot.pause(0.02)
    return bool(predicate())


async def settle(pilot, count: Callable[[], int], *, quiet: float = 0.15, timeout: float = 5.0) -> None:
    """Let the app run until `count()` (messages sent, rows drawn, ...) stops changing for `quiet` s."""
    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError(f"still changing after {timeout:g} s (last count {last})")


def network_address() -> str | None:
    """This machine's first IPv4 address other machines could reach (not loopback or link-local)."""
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if ip.is_IPv4 and not ip.ip.startswith(("127.", "169.254.")):
                return ip.ip
    return None


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def udp_port_taken(port: int) -> bool:
    """True once something (oscdump, a server) has bound `port` on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def ask(client: SimpleUDPClient, address: str, args=(), *, want: str, timeout: float = 2.0):
    """Send `address` and return the args of the first reply at `want` (None after `timeout`)."""
    client.send_message(address, list(args))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.receive(0.2)
        if data:
            for message in parse_packet(data):
                if message.address == want:
                    return message.args
    return None


def status_of(client: SimpleUDPClient, timeout: float = 2.0) -> dict:
    """`/livegen/status` as a dict ({} when nothing answered)."""
    status = ask(client, "/livegen/status", want="/livegen/status", timeout=timeout)
    return dict(zip(status[::2], status[1::2])) if status else {}


def wait_played(client: SimpleUDPClient, seconds: float, timeout: float = 30.0) -> None:
    """Wait until the engine's clock (its status' `seconds`) has moved `seconds` on: events spaced
    in the music's time, whatever the machine's load."""
    start = wait_for(lambda: status_of(client).get("seconds"), timeout, "the engine's status")
    wait_for(lambda: status_of(client).get("seconds", 0) >= start + seconds, timeout,
             f"{seconds:g} s more on the engine's clock", interval=0.01)


def get_when(client: SimpleUDPClient, name: str, expected, timeout: float = 30.0):
    """`/livegen/get/<name>` until it answers `expected` (the engine applies at its next hop,
    which on a loaded machine can lag) or the timeout; returns the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = ask(client, f"/livegen/get/{name}", want=f"/livegen/param/{name}")
        if (got and got[0] == pytest.approx(expected)) or time.monotonic() > deadline:
            return got[0] if got else None
        time.sleep(0.05)


def listen(client: SimpleUDPClient, wanted: Callable[[str, tuple], bool], timeout: float = 20.0) -> list:
    """Messages (address, args) a subscriber hears until `wanted(address, args)` or the timeout."""
    heard = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.receive(0.2)
        for message in parse_packet(data) if data else []:
            heard.append((message.address, message.args))
            if wanted(message.address, message.args):
                return heard
    return heard


def param_names(client: SimpleUDPClient, timeout: float = 5.0) -> list:
    """The parameter names `/livegen/params` lists (one message each: index, count, name, ...)."""
    client.send_message("/livegen/params", [])
    rows = {}

    def complete():
        data = client.receive(0.2)
        for message in parse_packet(data) if data else []:
            if message.address == "/livegen/params":
                rows[message.args[0]] = message.args
        return rows and len(rows) == next(iter(rows.values()))[1]

    wait_for(complete, timeout, lambda: f"the whole /livegen/params table (got {len(rows)} rows)", interval=0)
    return [args[2] for _, args in sorted(rows.items())]


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` of a process a test starts (jackd, play): the kernel sends it SIGTERM when the
    test run dies, so a run killed mid-test (a CI timeout, Ctrl+C twice) leaves no server behind
    to load the machine and hold a JACK slot."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> int:
    """SIGTERM, then SIGKILL after `timeout` s; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def jack_midi_out(name: str = "ctl", *, port: str = "livegen:livegen", timeout: float = 10.0):
    """An rtmidi JACK MIDI output connected to `port`, returned once JACK shows the connection.

    Close it with `delete()` before the test's JACK server stops: `close_port()` leaves its JACK
    client open, and a client outliving its server makes libjack tear down its process-wide state
    ("Jack server was closed but clients are still allocated, cleanup...") when the next test opens
    a client, on that test's own server.
    """
    import jack
    import rtmidi

    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    wait_for(lambda: port in out.get_ports(), timeout, lambda: f"MIDI port {port} (ports: {out.get_ports()})")
    out.open_port(out.get_ports().index(port))
    wait_jack_connected(port, name, timeout)
    return out


def wait_jack_connected(port: str, peer: str = "", timeout: float = 10.0) -> None:
    """Wait until JACK shows `port` connected to a port whose name starts with `peer`.

    A connection rtmidi (or `livegen play`'s `--midi-in`) has asked for carries messages only
    from the cycle JACK's graph takes it in: a message sent before is lost, so a test sends none
    until the connection shows.
    """
    import jack

    probe = jack.Client(f"probe-{uuid.uuid4().hex[:8]}", no_start_server=True)
    try:
        wait_for(lambda: any(p.name.startswith(peer) for p in probe.get_all_connections(port)),
                 timeout, f"JACK to connect {port} to {peer or 'a port'}")
    finally:
        probe.close()


class LivePlay:
    """`livegen play --headless --osc-port 0`, its output in a log file: play binds a port of
    the system's choosing and logs it (`listening_port` reads it back), so no port is picked
    here, released and taken by another suite before play binds it.

    `start` returns once it answers `/livegen/status`; `client` is a python-osc client on its
    own socket, so replies come back to it.
    """

    def __init__(self, args, *, env: dict, log_path: Path):
        self.port: int | None = None
        """The OSC port play bound, once `start` has read it from the log."""
        self.args = ["--headless", "--osc-port", "0", *args]
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.client: SimpleUDPClient | None = None

    def start(self, timeout: float = 90.0) -> "LivePlay":
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "livegen", "play", *self.args], cwd=REPO,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while self.port is None and time.monotonic() < deadline and self.process.poll() is None:
            self.port = listening_port(self.log)
            if self.port is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(0.1)  # until the line is logged, or play exits
        if self.port is not None:
            self.client = SimpleUDPClient("127.0.0.1", self.port)
        while self.client is not None and time.monotonic() < deadline and self.process.poll() is None:
            if self.ask("/livegen/status", timeout=0.5) is not None:
                return self
        self.stop()
        raise AssertionError(f"livegen play {' '.join(self.args)} did not answer /livegen/status "
                             f"(exit code {self.process.returncode}):\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def new_client(self) -> SimpleUDPClient:
        """Another client on its own socket (a second performer, a watcher)."""
        return SimpleUDPClient("127.0.0.1", self.port)

    def subscriber(self) -> SimpleUDPClient:
        """A new client subscribed to feedback (returned once `/livegen/subscribed` came back)."""
        watcher = self.new_client()
        assert ask(watcher, "/livegen/subscribe", want="/livegen/subscribed") is not None, self.log
        return watcher

    def send(self, address: str, *args) -> None:
        self.client.send_message(address, list(args))

    def ask(self, address: str, *args, want: str | None = None, timeout: float = 2.0):
        """The args of the reply at `want` (default: `address` itself), or None."""
        return ask(self.client, address, args, want=want or address, timeout=timeout)

    def status(self) -> dict:
        return status_of(self.client)

    def get_when(self, name: str, expected, timeout: float = 30.0):
        return get_when(self.client, name, expected, timeout)

    def played(self, seconds: float, timeout: float = 30.0) -> None:
        """Wait until the engine has played `seconds` more (on its own clock)."""
        wait_played(self.client, seconds, timeout)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "the condition"):
        """`wait_for`, failing with play's log too."""
        return wait_for(predicate, timeout, lambda: f"{what}; play's log:\n{self.log}", interval=0.1)

    def wait_status(self, predicate: Callable[[dict], Any], timeout: float = 30.0, what: str = "the status"):
        """Poll `/livegen/status` until `predicate(status)` holds; returns that status."""
        seen = {}

        def check():
            seen.update(self.status())
            return seen if seen and predicate(seen) else None

        return wait_for(check, timeout, lambda: f"{what}; last status {seen}; play's log:\n{self.log}", interval=0.1)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (SIGKILL after `timeout` s); the exit code."""
        return stop_process(self.process, timeout) if self.process is not None else None


# ------------------------------------------------------------------- audio and models for tests
MUSIC_SR = 24000
TINY_CONTINUATION = {"n_components": 16, "block": 4, "hidden": 32, "layers": 2, "mixtures": 2, "enc_hidden": 16,
                     "latent_dim": 4}


def music(seconds: float, seed: int) -> np.ndarray:
    """A few harmonic notes changing every 0.25 s, with a decaying click on each beat (MUSIC_SR)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * MUSIC_SR)) / MUSIC_SR
    y = np.zeros_like(t)
    for start in np.arange(0, seconds, 0.25):
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        seg = (t >= start) & (t < start + 0.25)
        tt = t[seg] - start
        for k in range(1, 6):
            y[seg] += np.sin(2 * np.pi * f0 * k * tt) / k * np.exp(-3 * tt)
        y[seg][:200] += rng.standard_normal(min(200, seg.sum())) * 0.3
    return (0.2 * y / np.abs(y).max()).astype(np.float32)


def seed_frames_from(y: np.ndarray) -> np.ndarray:
    from livegen.data.features import log_magnitude

    return log_magnitude(y, n_fft=1024, hop=128)


def write_songs(root, n: int = 4, seconds: float = 3.0):
    """A GTZAN-shaped folder (genres_original/<genre>/<genre>.NNNNN.wav) of `music` clips."""
    import soundfile as sf

    for i in range(n):
        genre = ("alpha", "beta")[i % 2]
        folder = root / "genres_original" / genre
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{genre}.{i:05d}.wav", music(seconds, 100 + i), MUSIC_SR, subtype="PCM_16")


def take_rendered_again(wav: Path) -> tuple[np.ndarray, np.ndarray]:
    """(the take's recording, `livegen render` of its session log): a take re-renders exactly
    when the two are equal. Fails if the render fails or warns."""
    import soundfile as sf

    again = wav.with_name(wav.stem + "-again.wav")
    done = subprocess.run([sys.executable, "-m", "livegen", "render", str(wav.with_suffix(".jsonl")), "-o", str(again)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    return sf.read(wav, dtype="float32")[0], sf.read(again, dtype="float32")[0]


def default_input_name(env) -> str:
    """The default PortAudio input device's name as a process with `env` sees it."""
    proc = subprocess.run([sys.executable, "-c", "import sounddevice as sd; print(sd.query_devices(kind='input')['name'])"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def envelope_lag(out: np.ndarray, ref: np.ndarray, max_lag: int) -> int:
    """Lag (samples) of the cross-correlation peak of the smoothed amplitude envelopes.

    Waveform correlation is no alignment measure after phase reconstruction: on tonal sound a
    consistent but different phase moves its peak by up to a period (seen: -533 samples on the
    piano clip). Envelopes keep the timing; a look-ahead left in would show as k*hop.
    """
    import scipy.signal

    win = np.hanning(256)
    e_out = scipy.signal.fftconvolve(np.abs(out), win, "same")
    e_ref = scipy.signal.fftconvolve(np.abs(ref), win, "same")
    c = scipy.signal.correlate(e_out - e_out.mean(), e_ref - e_ref.mean(), mode="full", method="fft")
    lags = np.arange(-len(ref) + 1, len(out))
    near = np.abs(lags) <= max_lag
    return int(lags[near][np.argmax(c[near])])


class SteppedEngine:
    """A bare in-process `Engine` as the OSC server's `ControlTarget`: no meters, no model switch."""

    meters = None

    def __init__(self, engine):
        self.engine = engine

    @property
    def params(self):
        return self.engine.params

    def post(self, event) -> None:
        self.engine.post(event)

    def status(self) -> dict:
        return self.engine.status()

    def add_listener(self, callback) -> None:
        self.engine.add_listener(callback)

    def remove_listener(self, callback) -> None:
        self.engine.remove_listener(callback)

    def morph_names(self) -> list[str]:
        return self.engine.morph_names()

    def load_model(self, path: str, done) -> None:
        done(False, "this engine cannot load another model while playing")

    def load_seed(self, path: str, done, *, source: str = "") -> None:
        if not self.engine.handles("seed"):
            done(False, NOT_CONTINUATION)
            return
        # read and analysed on a worker thread, then posted; `done` names the file or what was wrong
        self.engine.submit(Event("seed", source=source, extra={"path": path}), done, what=f"/livegen/seed {path}: ")

    def sound_check(self, seconds: float, done) -> None:
        done(False, NO_INPUT)


@contextlib.contextmanager
def stepped(engine, pause: float = 0.001):
    """`engine`'s virtual clock stepped on its own thread, as the live decoder does."""
    stop = threading.Event()

    def run():
        while not stop.is_set():
            engine.step()
            time.sleep(pause)

    stepper = threading.Thread(target=run, daemon=True)
    stepper.start()
    try:
        yield engine
    finally:
        stop.set()
        stepper.join(5)


@contextlib.contextmanager
def stepped_osc(engine):
    """`engine` stepped on its own thread (as the live decoder does) behind an `OscServer`."""
    with stepped(engine):
        server = OscServer(SteppedEngine(engine), port=0).start()
        try:
            yield server
        finally:
            server.stop()
