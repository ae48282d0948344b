"""Shared fixtures: real components started for real.

Under CI=true a missing component fails the test; locally it skips with the reason.
Markers: `live` (the test starts jackd, `livegen play` or another long-running process; given
automatically to every test that uses `jack_server`) and `slow` (seconds or more: `pytest -m
"not slow"` is the inner loop).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from livegen.control.oscfake import FakeEngine
from helpers import REPO, TINY_CONTINUATION, LivePlay, music, seed_frames_from, wait_for

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


class JackServer:
    """A `jackd -d dummy` server under a unique name; its clients find it via JACK_DEFAULT_SERVER."""

    def __init__(self, rate: int = 48000, period: int = 256):
        self.name = f"livegen-test-{uuid.uuid4().hex[:8]}"
        self.rate = rate
        self.period = period
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["JACK_DEFAULT_SERVER"] = self.name
        env["JACK_NO_AUDIO_RESERVATION"] = "1"
        env["JACK_NO_START_SERVER"] = "1"
        return env

    def start(self, log_dir: Path) -> "JackServer":
        jackd = require_binary("jackd")
        self.log_path = log_dir / f"{self.name}.log"
        self.process = subprocess.Popen(
            [jackd, "--no-realtime", "-n", self.name, "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)],
            stdout=self.log_path.open("w"), stderr=subprocess.STDOUT, env=self.env,
        )

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"jackd exited: {self.log_path.read_text()}")
            return self.is_up()

        wait_for(up, 10, lambda: f"jackd to come up: {self.log_path.read_text()}", interval=0.1)
        return self

    def is_up(self) -> bool:
        probe = subprocess.run(
            [sys.executable, "-c",
             "import jack,sys; c=jack.Client('probe', servername=sys.argv[1], no_start_server=True); c.close()",
             self.name],
            capture_output=True, env=self.env, timeout=10,
        )
        return probe.returncode == 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def jack_server(tmp_path, monkeypatch):
    """A fresh dummy JACK server for one test; the test's environment points at it."""
    try:
        import jack  # noqa: F401
    except OSError as exc:  # libjack missing
        require(False, f"libjack for the JACK-Client package ({exc})")
    server = JackServer().start(tmp_path)
    for key, value in server.env.items():
        if key.startswith("JACK_"):
            monkeypatch.setenv(key, value)
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


@pytest.fixture
def live_play(jack_server, tmp_path):
    """Starts `livegen play --headless ARGS...` on the test's dummy JACK server and returns a
    `LivePlay` handle once it answers `/livegen/status`; every play started is stopped after
    the test. MIDI goes through JACK, and the configuration (MIDI map) stays in `tmp_path`."""
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
        if "jack_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.live)
