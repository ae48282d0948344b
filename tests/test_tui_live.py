"""The real `livegen play` (terminal UI + engine child) in tmux against `jackd -d dummy`.

It must start, draw the pad, answer keys (the engine's latent point moves), and quit with
exit code 0 leaving no engine behind.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid

import pytest
from pythonosc.udp_client import SimpleUDPClient

from conftest import REPO, require_binary
from helpers import ask as ask_client, free_udp_port, run, until, wait_for

pytestmark = pytest.mark.slow


def ask(port: int, address: str, reply: str, timeout: float = 2.0):
    """The reply's arguments as a list, or None (a python-osc client on its own socket)."""
    client = SimpleUDPClient("127.0.0.1", port)
    try:
        got = ask_client(client, address, want=reply, timeout=timeout)
        return list(got) if got is not None else None
    finally:
        client._sock.close()


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
        return wait_for(lambda: (lambda screen: screen if text in screen else None)(self.screen()), timeout,
                        lambda: f"{text!r} on the screen:\n{self.screen()}", interval=0.25)

    def kill(self) -> None:
        self.run("kill-server", check=False)


def test_livegen_play_ui_in_tmux_on_jack_dummy(jack_server, tmp_path):
    port = free_udp_port()
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
        wait_for(lambda: ask(port, "/livegen/get/x", "/livegen/param/x") == [pytest.approx(0.6, abs=1e-3)], 10,
                 lambda: f"four Right presses to move the engine's x to 0.6; log: {log.read_text()}", interval=0.2)
        pids = engine_pids(port)
        assert pids, "the engine runs as a child process"
        tmux.run("send-keys", "-t", "ui", "C-q")
        wait_for(lambda: exit_file.exists() and exit_file.read_text().strip(), 30,
                 lambda: f"livegen play to exit; screen:\n{tmux.screen()}", interval=0.2)
        assert exit_file.read_text().strip() == "0", f"livegen play exits 0; screen:\n{tmux.screen()}"
        wait_for(lambda: engine_pids(port) == [], 5, lambda: f"no engine process left running: {engine_pids(port)}")
        assert ask(port, "/livegen/status", "/livegen/status", timeout=1.0) is None
    finally:
        tmux.kill()
        for pid in engine_pids(port):
            os.kill(pid, 9)


def test_ui_attached_to_the_real_engine_shows_its_meters_and_loads_a_model(live_play):
    """Pilot drives the UI in attach mode against a real `play --headless` on jackd dummy: the
    meter and the waterfall fill with what the engine measures (finite, changing), the status
    line shows the engine's `osc_last` after a key played a note, and the model picker switches
    the engine to another model (`/livegen/model s`)."""
    import math

    from livegen.tui.app import LivegenApp
    from livegen.tui.model_info import read_model_info
    from livegen.tui.osc import OscLink
    from livegen.tui.screens import ModelPickerScreen

    play = live_play("--no-midi")
    app = LivegenApp(OscLink("127.0.0.1", play.port), info=read_model_info(None))

    async def scenario(pilot):
        meter, waterfall = app.meter, app.waterfall
        assert await until(pilot, lambda: meter.peak_db is not None and len(waterfall.rows) >= 10, 30), \
            "the engine's /livegen/meter and /livegen/spectrum reach the widgets"
        levels = set()
        assert await until(pilot, lambda: levels.add((meter.peak_db, meter.rms_db)) or len(levels) > 3, 10), \
            "the meter moves"
        rows = [list(row) for row in list(waterfall.rows)[:20]]
        assert all(len(row) == 64 for row in rows), "64 bands a row"
        assert all(math.isfinite(v) and -130 <= v <= 10 for row in rows for v in row), "band levels in dB"
        assert all(math.isfinite(p) and math.isfinite(r) and r <= p + 1e-6 and p <= 0.5 for p, r in levels)
        assert len(levels) > 1, "the meter moves"
        assert len({tuple(row) for row in rows}) > 1, "the spectrum rows change"
        assert max(p for p, _ in levels) > -60, "the drone is heard"
        assert "record_bytes" in app.status and "midi_last" not in app.status, "--no-midi: no MIDI keys"
        await pilot.press("a")  # a note from the computer keyboard: the engine's osc_last says so
        assert await until(pilot, lambda: app.status.get("osc_last") == "/livegen/note", 10), app.status
        assert "note" in str(app.status_line.render())
        # The model picker asks the engine for another model; the pad follows its answer.
        before = len(waterfall.rows)
        await pilot.press("f3", "tab")
        assert isinstance(app.screen, ModelPickerScreen)
        await pilot.press(*"random", "enter")
        assert await until(pilot, lambda: app.info.path == "random", 90), \
            f"/livegen/model answered; status: {app.status}"
        assert "random" in app.pad.border_title
        assert await until(pilot, lambda: app.status.get("model") == "random", 10), app.status
        count = len(waterfall.rows)
        assert await until(pilot, lambda: len(waterfall.rows) > count + 5 or len(waterfall.rows) == 200, 10), \
            "meters keep coming from the new engine"
        assert len(waterfall.rows) > before

    run(app, scenario, size=(100, 30))


def test_engine_refusing_its_model_is_shown_and_play_exits_2(jack_server, tmp_path):
    """The engine child refuses a model folder that is not there: the UI shows its error line
    (not only an exit code) and `livegen play` exits 2 when the performer quits."""
    exit_file = tmp_path / "exit"
    missing = tmp_path / "no-such-model"
    command = (f"cd {shlex.quote(str(REPO))} && {shlex.quote(sys.executable)} -m livegen play --no-midi "
               f"--osc-port {free_udp_port()} --model {shlex.quote(str(missing))} "
               f"--ui-log {shlex.quote(str(tmp_path / 'engine.log'))}; echo $? > {shlex.quote(str(exit_file))}")
    tmux = Tmux(dict(jack_server.env, TERM="xterm-256color"))
    tmux.run("new-session", "-d", "-s", "ui", "-x", "160", "-y", "30", command)
    try:
        screen = tmux.wait_for("The engine stopped (exit code 2)", timeout=90)
        assert "no-such-model" in screen and "does not exist" in screen, screen
        tmux.run("send-keys", "-t", "ui", "q")
        wait_for(lambda: exit_file.exists() and exit_file.read_text().strip(), 30,
                 lambda: f"livegen play to exit; screen:\n{tmux.screen()}", interval=0.2)
        assert exit_file.read_text().strip() == "2", tmux.screen()
    finally:
        tmux.kill()
