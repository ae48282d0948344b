"""Start and stop JACK clients with Python process callbacks in a loop, on a private `jackd -d dummy`
(not part of the package; docs/sound-server.md, "Stopping a JACK client").

    python scripts/jack_stop_stress.py both --cycles 100 --deadline 300 --runs 5 --busy-ms 3 [--sync]

Each run starts its own jackd (`-S` with --sync) and a child process that, CYCLES times, opens a
`JackStream` and/or a plain `jack.Client` through `ProcessCallback`, waits for 5 callbacks (each
busy BUSY_MS), stops and closes it, printing each finished cycle. Each cycle's clients have
names of their own: reopening a name at once, libjack now and then fails (`server_error`: the
server finds no notification socket under that name), whichever way the client was stopped. A child not done by the deadline
is killed and the run counted as a hang; with --stacks its threads' stacks go to a file first (gdb).
--repo runs another checkout's code: the figures before came from a copy whose
`ProcessCallback.deactivate` only called `client.deactivate()`, as every client did before it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

CHILD = r'''
import sys, threading, time
import jack
from livegen.audio.jackstream import JackStream, ProcessCallback

kind, cycles, busy = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
rate = int(sys.argv[4]) if len(sys.argv) > 4 else 48000


def busy_callback(seen):
    calls = []

    def callback(*args):
        end = time.perf_counter() + busy
        while time.perf_counter() < end:
            pass
        calls.append(1)
        if len(calls) >= 5:
            seen.set()
    return callback


def stream_cycle(i):
    seen = threading.Event()
    stream = JackStream(name=f"stress-{i}", device="system", samplerate=rate, channels=2, callback=busy_callback(seen))
    stream.start()
    assert seen.wait(30), "no callbacks"
    stream.stop()
    stream.close()


def plain_cycle(i):
    seen = threading.Event()
    client = jack.Client(f"stress-plain-{i}", no_start_server=True)
    client.outports.register("out")
    process = ProcessCallback(client, busy_callback(seen))
    process.activate()
    assert seen.wait(30), "no callbacks"
    if process.deactivate() is False:
        print("deactivated by jack_deactivate", flush=True)
    client.close()


for i in range(cycles):
    if kind in ("stream", "both"):
        stream_cycle(i)
    if kind in ("plain", "both"):
        plain_cycle(i)
    print(i + 1, flush=True)
'''


def start_jackd(name: str, env: dict, sync: bool, log) -> subprocess.Popen:
    """jackd under `name`; while libjack's 8 server slots are taken (other people's servers), wait."""
    for _ in range(60):
        jackd = subprocess.Popen(["jackd", "--no-realtime", "-t", "10000", "-n", name, *(["-S"] if sync else []),
                                  "-d", "dummy", "-r", "48000", "-p", "256"], stdout=log, stderr=subprocess.STDOUT,
                                 env=env)
        for _ in range(100):
            probe = subprocess.run([sys.executable, "-c", "import jack; jack.Client('p', no_start_server=True).close()"],
                                   env=env, capture_output=True)
            if probe.returncode == 0:
                return jackd
            if jackd.poll() is not None:
                break
            time.sleep(0.1)
        jackd.terminate()
        jackd.wait()
        time.sleep(1)
    raise SystemExit("jackd did not start in 60 tries (libjack's server slots all taken?)")


def run_once(args) -> str:
    name = f"livegen-stress-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1", JACK_NO_START_SERVER="1",
               OMP_NUM_THREADS="1", PYTHONPATH=str(args.repo))
    with tempfile.TemporaryFile("w+") as log:
        jackd = start_jackd(name, env, args.sync, log)
        try:
            child = subprocess.Popen([sys.executable, "-c", CHILD, args.kind, str(args.cycles), str(args.busy_ms)],
                                     env=env, cwd=args.repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                out, _ = child.communicate(timeout=args.deadline)
                hung = False
            except subprocess.TimeoutExpired:
                if args.stacks:
                    with open(f"{args.stacks}-{name}.txt", "w") as f:
                        subprocess.run(["gdb", "-p", str(child.pid), "-batch", "-ex", "thread apply all bt 30"],
                                       stdout=f, stderr=subprocess.STDOUT, timeout=120)
                child.kill()
                out, _ = child.communicate()
                hung = True
        finally:
            jackd.terminate()
            try:
                jackd.wait(30)
            except subprocess.TimeoutExpired:
                jackd.kill()
            log.seek(0)
            jackd_says = log.read().splitlines()[-8:]
    lines = out.splitlines()
    done = max([int(x) for x in lines if x.isdigit()], default=0)
    fallbacks = sum(line == "deactivated by jack_deactivate" for line in lines)
    other = [line for line in lines if line and not line.isdigit() and line != "deactivated by jack_deactivate"]
    state = "HUNG" if hung else ("ok" if done == args.cycles else f"exit {child.returncode}: {other[-6:]}")
    if state != "ok":
        state += f"\n  jackd's last lines: {jackd_says}"
    return f"{done}/{args.cycles} cycles {state}; plain clients deactivated by jack_deactivate: {fallbacks}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("stream", "plain", "both"))
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds a run may take before it counts as hung")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy-ms", type=float, default=3.0, help="milliseconds each callback spins")
    parser.add_argument("--sync", action="store_true", help="jackd in synchronous mode (-S)")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--stacks", help="path prefix for the gdb stacks of a hung child")
    args = parser.parse_args(argv)
    for run in range(args.runs):
        print(f"{args.kind} sync={args.sync} busy={args.busy_ms} ms run {run + 1}: {run_once(args)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
