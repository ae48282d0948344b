"""The real `livegen play` (terminal UI + engine child) in tmux against `jackd -d dummy`.

It must start, draw the pad, answer keys (the engine's latent point moves), and quit with
exit code 0 leaving no engine behind.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import uuid

import pytest

from conftest import REPO, require_binary
from test_play import Osc

pytestmark = pytest.mark.slow


def ask(port: int, address: str, reply: str, timeout: float = 2.0):
    """The reply's arguments, or None (a python-osc client on its own socket)."""
    osc = Osc(port)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = osc.ask(address, reply=reply)
            if message is not None:
                return message.params
        return None
    finally:
        osc.sock.close()


def engine_pids(port: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"--headless" in cmdline and str(port).encode() in cmdline:
            pids.append(int(entry))
    return pids


class Tmux:
    def __init__(self, env: dict[str, str]):
        self.tmux = require_binary("tmux")
        self.socket = f"livegen-tui-{uuid.uuid4().hex[:8]}"
        self.env = env

    def run(self, *args: str, check: bool = True) -> str:
        return subprocess.run([self.tmux, "-L", self.socket, *args], env=self.env, capture_output=True,
                              text=True, check=check, timeout=10).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "ui", check=False)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.25)
        raise AssertionError(f"{text!r} never appeared on the screen:\n{self.screen()}")

    def kill(self) -> None:
        self.run("kill-server", check=False)


def test_livegen_play_ui_in_tmux_on_jack_dummy(jack_server, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exit_file = tmp_path / "exit"
    log = tmp_path / "engine.log"
    command = (f"cd {shlex.quote(str(REPO))} && {shlex.quote(sys.executable)} -m livegen play "
               f"--osc-port {port} --ui-log {shlex.quote(str(log))}; echo $? > {shlex.quote(str(exit_file))}")
    env = dict(jack_server.env, TERM="xterm-256color")
    tmux = Tmux(env)
    tmux.run("new-session", "-d", "-s", "ui", "-x", "100", "-y", "30", command)
    try:
        screen = tmux.wait_for("latent plane", timeout=30)
        assert "parameters" in screen and "presets" in screen
        tmux.wait_for("● running", timeout=90)  # the engine child answered /livegen/status
        x0 = ask(port, "/livegen/get/x", "/livegen/param/x")
        assert x0 == [pytest.approx(0.5)]
        tmux.run("send-keys", "-t", "ui", "Right", "Right", "Right", "Right")
        deadline = time.monotonic() + 10
        x = x0
        while time.monotonic() < deadline and x == x0:
            time.sleep(0.2)
            x = ask(port, "/livegen/get/x", "/livegen/param/x")
        assert x == [pytest.approx(0.6, abs=1e-3)], f"arrow keys move the engine's latent point; log: {log.read_text()}"
        pids = engine_pids(port)
        assert pids, "the engine runs as a child process"
        tmux.run("send-keys", "-t", "ui", "C-q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not exit_file.exists():
            time.sleep(0.2)
        assert exit_file.read_text().strip() == "0", f"livegen play exits 0; screen:\n{tmux.screen()}"
        time.sleep(0.5)
        assert engine_pids(port) == [], "quit leaves no engine process running"
        assert ask(port, "/livegen/status", "/livegen/status", timeout=1.0) is None
    finally:
        tmux.kill()
        for pid in engine_pids(port):
            os.kill(pid, 9)
