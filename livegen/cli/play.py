"""`livegen play`: the instrument. `--headless` runs the engine server alone.

Process shape: the command is a light supervisor that starts the engine server as a child
process (audio stream, decoder thread, OSC) and restarts it when its audio device goes away
and comes back. PortAudio's JACK host API aborts a process whose JACK server died under an
open stream, so only a separate process can survive that; the supervisor itself never
imports PortAudio or torch.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

EXIT_DEVICE_LOST = 75
"""The engine server's exit status when its audio device vanished mid-performance."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "play", help="play the instrument (--headless: the engine server alone, controlled over OSC)",
        description="Play the instrument. --headless runs the engine server without the terminal UI: "
                    "audio out, decoder, OSC control. SIGINT/SIGTERM stop it cleanly.")
    parser.add_argument("--headless", action="store_true", help="engine server only (no terminal UI)")
    parser.add_argument("--model", help="model directory (default: models/default)")
    parser.add_argument("--audio-device", help="output device index or part of its name (see `livegen devices`)")
    parser.add_argument("--samplerate", type=int, help="output sample rate (default: the device's)")
    parser.add_argument("--blocksize", type=int, default=0, help="audio block size in frames (default: the host's)")
    parser.add_argument("--latency", default="low", help="PortAudio output latency: low, high or seconds")
    parser.add_argument("--ahead-ms", type=float, default=None,
                        help="how far the decoder keeps the ring buffer ahead of the callback (ms)")
    parser.add_argument("--osc-port", type=int, default=9000, help="OSC UDP port (0 = any free port)")
    parser.add_argument("--osc-host", default="127.0.0.1", help="OSC bind address (default loopback)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda or mps")
    parser.add_argument("--seed", type=int, default=0, help="noise and drift seed")
    parser.add_argument("--lookahead", type=int, help="inverter look-ahead frames (0 = lowest latency)")
    parser.add_argument("--events", help="also play this event file on the live clock (t in seconds from start)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--no-supervisor", action="store_true",
                        help="run the engine server in this process (no restart when the device returns)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the decoder")
    try:
        from livegen.session.wiring import add_session_arguments

        add_session_arguments(parser)
    except ImportError:
        pass
    try:
        from livegen.tui import add_ui_arguments

        add_ui_arguments(parser)
    except ImportError:
        pass
    return parser


def run(args) -> int:
    if not args.headless:
        from livegen.tui import run_ui

        return run_ui(args)
    if args.no_supervisor or os.environ.get("LIVEGEN_ENGINE_CHILD") == "1":
        from livegen.engine.server import serve

        return serve(args)
    return supervise(sys.argv[1:] if sys.argv[1:2] == ["play"] else ["play", *_rebuild_argv(args)])


def _rebuild_argv(args) -> list[str]:
    out = ["--headless"]
    for name in ("model", "audio_device", "samplerate", "blocksize", "latency", "ahead_ms", "osc_port",
                 "osc_host", "device", "seed", "lookahead", "events", "duration", "threads"):
        value = getattr(args, name)
        if value is not None:
            out += [f"--{name.replace('_', '-')}", str(value)]
    from livegen.session.wiring import session_argv

    return out + session_argv(args)


def _die_with_parent() -> None:
    """In the engine child: SIGTERM when the supervisor dies, however it dies."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def supervise(argv: list[str]) -> int:
    """Run the engine server; restart it when it reports a lost device, forward SIGINT/SIGTERM."""
    env = dict(os.environ, LIVEGEN_ENGINE_CHILD="1")
    stopping = False
    child: subprocess.Popen | None = None

    def forward(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    restarts = 0
    while True:
        if restarts:
            env["LIVEGEN_WAIT_DEVICE"] = "1"
        child = subprocess.Popen([sys.executable, "-m", "livegen", *argv], env=env,
                                 preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:
                continue
        if stopping or code != EXIT_DEVICE_LOST:
            if code < 0:  # killed by a signal (e.g. PortAudio's abort when JACK died at exit)
                print(f"livegen play: engine server died from signal {-code}", file=sys.stderr)
                if not stopping:
                    code = EXIT_DEVICE_LOST
                else:
                    return 0
            if code != EXIT_DEVICE_LOST:
                return 0 if stopping and code in (0, -signal.SIGTERM) else code
        restarts += 1
        print(f"livegen play: restarting the engine server (restart {restarts}) once the audio device is back",
              file=sys.stderr)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not stopping:
            time.sleep(0.05)
        if stopping:
            return 0
