"""The engine server as a child process of the UI: start, watch, stop, restart.

The engine owns audio, MIDI and OSC input; the UI is only another OSC controller. Running it
in its own process means a stalled redraw can never starve the audio thread, and a crash of
either side leaves the other able to report it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

STOP_SECONDS = 15.0
"""How long quit waits for the engine to finalise recordings before killing it."""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the UI process dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


UI_ONLY = {"--ui-log": 1}
"""Options the engine must not see, with how many values each takes."""


def engine_argv(play_argv: list[str], osc_port: int) -> list[str]:
    """`play` arguments for the headless engine: the user's own, minus UI-only options,
    plus `--headless` and the OSC port the UI talks to."""
    out: list[str] = []
    skip = 0
    for arg in play_argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in UI_ONLY:
            skip = 0 if "=" in arg else UI_ONLY[name]
            continue
        if name == "--osc-port":
            skip = 0 if "=" in arg else 1
            continue
        if arg == "--headless":
            continue
        out.append(arg)
    return [*out, "--headless", "--osc-port", str(osc_port)]


def play_argv_from_sys() -> list[str]:
    """The arguments given after `play` on this process's command line (empty if none)."""
    argv = sys.argv[1:]
    return argv[argv.index("play") + 1:] if "play" in argv else []


class EngineProcess:
    """One engine child; its output goes to a log file (the terminal belongs to the UI)."""

    def __init__(self, command: list[str], *, log_path: Path, env: dict[str, str] | None = None):
        self.command = list(command)
        self.log_path = Path(log_path)
        self.env = env
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "EngineProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                start_new_session=True,  # Ctrl+C in the terminal reaches the UI only
            )
        finally:
            log.close()
        self.starts += 1
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def poll(self) -> int | None:
        """None while running (or never started), else the exit code."""
        return None if self.process is None else self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_SECONDS) -> int | None:
        """SIGTERM, wait for the engine to finalise its recording, SIGKILL if it hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def restart(self) -> "EngineProcess":
        self.stop()
        return self.start()

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the engine and its own children (the supervisor's engine
        server), from /proc; None where there is no /proc or no process."""
        if not self.running():
            return None
        tick = os.sysconf("SC_CLK_TCK")
        parents: dict[int, int] = {}
        times: dict[int, float] = {}
        try:
            entries = [e for e in os.listdir("/proc") if e.isdigit()]
        except OSError:
            return None
        for entry in entries:
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
        tree, total = {self.process.pid}, 0.0
        for _ in range(3):  # child, grandchild, great-grandchild
            tree |= {pid for pid, parent in parents.items() if parent in tree}
        for pid in tree:
            total += times.get(pid, 0.0)
        return total

    def log_tail(self, lines: int = 12) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 8192))
                data = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])
