"""Shared fixtures: real components started for real.

Under CI=true a missing component fails the test; locally it skips with the reason.
Markers: `live` (the test starts jackd, `livegen play` or another long-running process: given
here to every test that uses `jack_server` or `jack_server_sync`, by hand to the others) and
`slow` (a second or more on a loaded machine; every live test is slow too). `pytest -m "not slow"`
is the inner loop, `pytest -m "not live"` runs without any server or child process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from livegen.control.oscfake import FakeEngine
from helpers import REPO, TINY_CONTINUATION, LivePlay, die_with_parent, music, seed_frames_from, wait_for

IN_CI = os.environ.get("CI", "").lower() == "true"
GM_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def require(condition: bool, what: str) -> None:
    """Fail (under CI) or skip (locally) when a real component is missing."""
    if condition:
        return
    message = f"missing component: {what}"
    if IN_CI:
        pytest.fail(message + " (CI=true: components must be installed by .ci/run)")
    pytest.skip(message)


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"`{name}` on PATH")
    return path


@pytest.fixture(scope="session")
def gm_soundfont() -> Path:
    require(GM_SOUNDFONT.exists(), f"General MIDI SoundFont at {GM_SOUNDFONT} (Debian fluid-soundfont-gm)")
    return GM_SOUNDFONT


JACK_REGISTRY = Path("/dev/shm/jack-shm-registry")
# jack_shm_header_t (JACK 1.9, shm.h): 8 server slots of {pid_t pid; char name[257]}, 264 bytes each.
_SLOTS, _SLOT_AT, _SLOT_SIZE = 8, 24, 264


def reclaim_dead_test_servers() -> list[str]:
    """Free the registry slots of test servers that died without unregistering (SIGKILL).

    JACK has 8 server slots for all users of the machine and frees a dead server's slot only when
    a server of the same name starts again; test servers have unique names, so killed ones would
    fill the table for good ("Too many servers already active"). Only slots named `livegen-...`
    whose process is gone are cleared; the names are returned.
    """
    freed = []
    try:
        fd = os.open(JACK_REGISTRY, os.O_RDWR)
    except OSError:
        return freed
    try:
        data = os.pread(fd, _SLOT_AT + _SLOTS * _SLOT_SIZE, 0)
        for i in range(_SLOTS):
            at = _SLOT_AT + i * _SLOT_SIZE
            pid = int.from_bytes(data[at:at + 4], "little", signed=True)
            name = data[at + 4:at + _SLOT_SIZE].split(b"\0")[0]
            if pid <= 0 or not name.startswith(b"jack-") or b":livegen-" not in name:
                continue
            try:
                os.kill(pid, 0)
                continue  # still running
            except ProcessLookupError:
                pass
            except PermissionError:
                continue  # someone else's, running
            os.pwrite(fd, bytes(_SLOT_SIZE), at)
            freed.append(name.decode(errors="replace"))
    finally:
        os.close(fd)
    return freed


class JackServer:
    """A `jackd -d dummy` server under a unique name; its clients find it via JACK_DEFAULT_SERVER."""

    def __init__(self, rate: int = 48000, period: int = 256, *, sync: bool = False):
        self.name = f"livegen-test-{uuid.uuid4().hex[:8]}"
        self.rate = rate
        self.period = period
        self.sync = sync
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["JACK_DEFAULT_SERVER"] = self.name
        env["JACK_NO_AUDIO_RESERVATION"] = "1"
        env["JACK_NO_START_SERVER"] = "1"
        return env

    def start(self, log_dir: Path, *, slot_timeout: float = 120.0) -> "JackServer":
        """Start jackd; while libjack's table of servers is full (other tests' and benches'
        servers on this machine), wait for a slot rather than fail."""
        jackd = require_binary("jackd")
        self.log_path = log_dir / f"{self.name}.log"
        deadline = time.monotonic() + slot_timeout
        while True:
            with self.log_path.open("w") as log:
                self.process = subprocess.Popen(
                    # clients get 10 s (not 500 ms) to answer: on a loaded machine a new client's
                    # first answer can take longer, and PortAudio then sees no JACK devices at all
                    [jackd, "--no-realtime", "-t", "10000", "-n", self.name, *(["--sync"] if self.sync else []),
                     "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)],
                    stdout=log, stderr=subprocess.STDOUT, env=self.env, preexec_fn=die_with_parent,
                )

            def up() -> bool:
                return self.process.poll() is not None or self.is_up()

            wait_for(up, 10, lambda: f"jackd to come up: {self.log_path.read_text()}", interval=0.1)
            if self.process.poll() is None:
                return self
            if "Too many servers" not in self.log_path.read_text() or time.monotonic() > deadline:
                break
            if not reclaim_dead_test_servers():
                time.sleep(0.5)  # the table is full of live servers (other tests, benches): wait for a slot
        raise RuntimeError(f"jackd exited: {self.log_path.read_text()}")

    def is_up(self) -> bool:
        probe = subprocess.run(
            [sys.executable, "-c",
             "import jack,sys; c=jack.Client('probe', servername=sys.argv[1], no_start_server=True); c.close()",
             self.name],
            capture_output=True, env=self.env, timeout=10,
        )
        return probe.returncode == 0

    def stop(self) -> None:
        """SIGTERM, and SIGKILL only after 30 s: a killed server keeps its registry slot."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _serve(server: JackServer, tmp_path, monkeypatch) -> JackServer:
    try:
        import jack  # noqa: F401
    except OSError as exc:  # libjack missing
        require(False, f"libjack for the JACK-Client package ({exc})")
    server.start(tmp_path)
    for key, value in server.env.items():
        if key.startswith("JACK_"):
            monkeypatch.setenv(key, value)
    return server


@pytest.fixture
def jack_server(tmp_path, monkeypatch):
    """A fresh dummy JACK server for one test; the test's environment points at it."""
    server = _serve(JackServer(), tmp_path, monkeypatch)
    yield server
    server.stop()


@pytest.fixture
def jack_server_sync(tmp_path, monkeypatch):
    """`jack_server` in synchronous mode: each cycle waits for every client's callback, so clients
    see one cycle's frame time together however loaded the machine is (asynchronous mode goes on
    without a late client, which then runs in the next cycle)."""
    server = _serve(JackServer(sync=True), tmp_path, monkeypatch)
    yield server
    server.stop()


@pytest.fixture
def fake():
    """A stand-in engine on real UDP that records what the UI sends (`livegen.control.oscfake`)."""
    engine = FakeEngine().start()
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def tiny_model():
    """A small continuation model (untrained GRU, basis fitted on `music`) for one test module."""
    import numpy as np
    import torch

    from livegen.continuation.model import ContinuationConfig, ContinuationModel, fit_basis

    torch.manual_seed(0)
    model = ContinuationModel(ContinuationConfig(**TINY_CONTINUATION))
    frames = np.concatenate([seed_frames_from(music(2.0, s)) for s in range(3)])
    fit_basis(model, torch.from_numpy(frames))
    return model.eval()


IN_MOUNT_NAMESPACE = "LIVEGEN_TEST_IN_NAMESPACE"


@pytest.fixture
def tmpfs(request, tmp_path):
    """`tmpfs(size)` mounts a small tmpfs (a disk that fills up for real) and returns its path.

    Where this process may not mount (not root, a container), the whole test runs again in a
    user and mount namespace of its own, where it may; `tmpfs` then returns None once that run
    passed (the test returns at once) and fails the test when it did not.
    """
    mounts: list[Path] = []

    def mount(size: str) -> Path | None:
        path = tmp_path / f"tmpfs-{len(mounts)}"
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            mounts.append(path)
            return path
        require(not os.environ.get(IN_MOUNT_NAMESPACE), f"a tmpfs mount, even in a namespace ({done.stderr.strip()})")
        unshare = require_binary("unshare")
        probe = subprocess.run([unshare, "--user", "--map-root-user", "--mount", "true"], capture_output=True, text=True)
        require(probe.returncode == 0, f"`mount -t tmpfs` ({done.stderr.strip()}) or `unshare --user --mount` "
                                       f"({probe.stderr.strip()}) for a small full disk")
        child = subprocess.run([unshare, "--user", "--map-root-user", "--mount", sys.executable, "-m", "pytest", "-q",
                                "-rs", "-p", "no:cacheprovider", request.node.nodeid], cwd=REPO, capture_output=True,
                               text=True, env=dict(os.environ, **{IN_MOUNT_NAMESPACE: "1"}), timeout=600)
        assert child.returncode == 0 and "1 passed" in child.stdout and "skipped" not in child.stdout, \
            child.stdout[-4000:] + child.stderr[-2000:]
        return None

    yield mount
    for path in mounts:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def live_play(jack_server, tmp_path):
    """Starts `livegen play --headless ARGS...` on the test's dummy JACK server and returns a
    `LivePlay` handle once it answers `/livegen/status`; every play started is stopped after
    the test. MIDI goes through JACK, and the configuration (MIDI map) stays in `tmp_path`."""
    yield from _live_play(jack_server, tmp_path)


@pytest.fixture
def live_play_sync(jack_server_sync, tmp_path):
    """`live_play` on `jack_server_sync`: for a test that measures audio a client of its own
    plays into or takes from play's ports, which a late client in asynchronous mode would
    find repeated or dropped."""
    yield from _live_play(jack_server_sync, tmp_path)


def _live_play(jack_server, tmp_path):
    started: list[LivePlay] = []
    env = dict(jack_server.env, LIVEGEN_MIDI_API="jack", XDG_CONFIG_HOME=str(tmp_path / "config"))

    def start(*args: str, timeout: float = 90.0) -> LivePlay:
        log_path = tmp_path / ("play.log" if not started else f"play-{len(started) + 1}.log")
        play = LivePlay(["--nice", "0", "--duration", "600", *args], env=env, log_path=log_path)
        started.append(play)
        return play.start(timeout)

    yield start
    for play in started:
        play.stop()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if {"jack_server", "jack_server_sync"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)
        if item.get_closest_marker("live") is not None:
            item.add_marker(pytest.mark.slow)
