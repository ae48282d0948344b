"""Shared fixtures: real components started for real.

Under CI=true a missing component fails the test; locally it skips with the reason.
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

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parent.parent
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
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jackd exited: {self.log_path.read_text()}")
            if self.is_up():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"jackd did not come up in 10 s: {self.log_path.read_text()}")

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
