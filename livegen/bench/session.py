"""`livegen bench session`: what recording costs the engine thread, and how fast the disk thread writes.

The engine thread's share of a recording is `write_audio` (a copy into the ring) and `log_event`
(a deque append). Both are timed per block against the same-run baseline of a bare `np.copyto`
of the block into a preallocated array (the least any tap can cost) and against the block period,
with the disk thread running, then again while the disk stalls for a second.

`--live-seconds S` adds the xrun check on a private `jackd -d dummy -r 48000 -p 256` (real-time
when allowed): `play --headless --record DIR` plays 8 voices for S seconds with a disk that
keeps up, then S seconds with a disk whose writes stall `--stall` seconds every
`--stall-every` seconds (a patched `SessionRecorder._write_frames`, as a slow or hung disk
would block the disk thread); engine and JACK xruns of each, and the frames the recorder dropped.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from livegen.server import factory
from livegen.bench.engine import _Jack, _free_port
from livegen.bench.ui import _status
from livegen.engine.events import Event, param
from livegen.session.recorder import SessionRecorder
from livegen.session.wiring import SessionControl, engine_header
from livegen.data.files import check_output_folder
from livegen.errors import ranged


def _percentiles(values, scale=1e6):
    import numpy as np

    values = np.asarray(values) * scale
    return float(np.median(values)), float(np.percentile(values, 99)), float(values.max())


def main(argv=None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(prog="livegen bench session", description=__doc__)
    parser.add_argument("--samplerate", type=ranged(int, 8000, 192000), default=48000)
    parser.add_argument("--blocksize", type=ranged(int, 1, 8192), default=256)
    parser.add_argument("--channels", type=ranged(int, 1, 64), default=2)
    parser.add_argument("--seconds", type=ranged(float, above=0), default=20.0, help="audio recorded per measurement")
    parser.add_argument("--subtype", default="FLOAT", choices=["FLOAT", "PCM_24"])
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    parser.add_argument("--engine-seconds", type=ranged(float, 0), default=4.0,
                        help="per trial of the engine-step comparison (0 skips it)")
    parser.add_argument("--model", default=None, help="model directory for the engine comparison")
    parser.add_argument("--live-seconds", type=ranged(float, 0), default=0.0,
                        help="also count xruns of `play --headless --record` with a normal and a stalling disk "
                             "on jackd dummy, this long each (0 skips)")
    parser.add_argument("--stall", type=ranged(float, 0), default=1.0, help="seconds each stalled write blocks (live check)")
    parser.add_argument("--stall-every", type=ranged(float, above=0), default=5.0, help="seconds between stalls (live check)")
    args = parser.parse_args(argv)
    if args.dir:
        check_output_folder(args.dir, "--dir")

    sr, bs, ch = args.samplerate, args.blocksize, args.channels
    blocks = int(args.seconds * sr / bs)
    block = np.random.default_rng(0).uniform(-1, 1, (bs, ch)).astype(np.float32)
    period = bs / sr
    clock = time.perf_counter

    # Baseline: the cheapest possible tap.
    sink = np.zeros_like(block)
    base = []
    for _ in range(blocks):
        t0 = clock()
        np.copyto(sink, block)
        base.append(clock() - t0)

    class Stalling(SessionRecorder):
        stall_at = None

        def _write_frames(self, frames):
            if self.stall_at is not None and time.monotonic() >= self.stall_at:
                self.stall_at = None
                time.sleep(1.0)
            super()._write_frames(frames)

    results = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for label, stall in (("disk keeping up", False), ("disk stalls 1 s", True)):
            rec = Stalling(directory, samplerate=sr, channels=ch, subtype=args.subtype, header={"bench": True}).start()
            if stall:
                rec.stall_at = time.monotonic() + 0.2
            writes, logs, copies = [], [], []
            start = clock()
            for i in range(blocks):
                t0 = clock()
                np.copyto(sink, block)  # the same-run baseline under the same contention
                t0, c = clock(), clock() - t0
                copies.append(c)
                rec.write_audio(block)
                t1 = clock()
                if i % 16 == 0:
                    event = param("z0", 0.1)
                    event.sample = i * bs
                    t2 = clock()
                    rec.log_event(event)
                    logs.append(clock() - t2)
                writes.append(t1 - t0)
                # Pace at 4x real time so the disk thread runs concurrently, as it would live.
                target = start + (i + 1) * period / 4
                while clock() < target:
                    pass
            t0 = clock()
            rec.stop()
            results[label] = (writes, logs, copies, rec.dropped, rec.frames_on_disk, rec.error)

        # Disk thread throughput, unpaced: seconds of audio written per wall second.
        rec = SessionRecorder(directory, samplerate=sr, channels=ch, subtype=args.subtype).start()
        t0 = clock()
        for _ in range(blocks):
            while rec._w - rec._r > rec._capacity // 2:
                time.sleep(0.001)
            rec.write_audio(block)
        rec.stop()
        throughput = args.seconds / (clock() - t0)

    med, p99, worst = _percentiles(base)
    print(f"session recorder, {sr} Hz, {ch} ch, {bs}-frame blocks ({period * 1e3:.2f} ms), {args.subtype}, "
          f"{args.seconds:g} s per run")
    print(f"  baseline np.copyto of one block: median {med:.2f} us, p99 {p99:.2f} us, max {worst:.1f} us")
    for label, (writes, logs, copies, dropped, on_disk, error) in results.items():
        wm, wp, ww = _percentiles(writes)
        lm, lp, lw = _percentiles(logs)
        cm, cp, cw = _percentiles(copies)
        print(f"  {label}: np.copyto in the same loop: median {cm:.2f} us, p99 {cp:.2f} us, max {cw:.1f} us")
        print(f"  {label}: write_audio median {wm:.2f} us ({wm / cm:.1f}x the copy, "
              f"{wm * 1e-6 / period * 100:.3f}% of the block period), p99 {wp:.2f} us, max {ww:.1f} us; "
              f"log_event median {lm:.2f} us, max {lw:.1f} us; dropped {dropped} frames; "
              f"on disk {on_disk}/{blocks * bs}; error {error}")
    print(f"  disk thread throughput (unpaced): {throughput:.1f}x real time")
    if args.engine_seconds > 0:
        _engine_steps(args)
    if args.live_seconds > 0:
        _live_xruns(args)
    return 0


def stalling_play() -> int:
    """`python -c 'from livegen.bench.session import stalling_play; stalling_play()' STALL EVERY play ...`:
    `livegen play` whose recorder's disk writes block STALL seconds every EVERY seconds."""
    import runpy
    import sys

    stall, every = float(sys.argv[1]), float(sys.argv[2])
    write = SessionRecorder._write_frames
    next_stall = [time.monotonic() + every]

    def stalling(self, frames):
        if time.monotonic() >= next_stall[0]:
            time.sleep(stall)  # the disk thread blocks, as in a write(2) to a hung disk
            next_stall[0] = time.monotonic() + every
        write(self, frames)

    SessionRecorder._write_frames = stalling
    # Run the program as `python -m livegen` would (the bench stands above the CLI's callers).
    sys.argv = ["livegen", *sys.argv[3:]]
    runpy.run_module("livegen", run_name="__main__", alter_sys=True)
    return 0


def _live_xruns(args) -> None:
    import os
    import signal
    import subprocess
    import sys

    import numpy as np

    from pythonosc.udp_client import SimpleUDPClient

    print(f"  live: play --headless --record on jackd dummy -r 48000 -p 256, 8 voices, xy change every 10 ms, "
          f"{args.live_seconds:g} s per case")
    for label, stall in (("disk keeping up", 0.0), (f"disk stalls {args.stall:g} s every {args.stall_every:g} s", args.stall)):
        jack = _Jack(capture=False)
        port = _free_port()
        with tempfile.TemporaryDirectory(dir=args.dir) as directory:
            code = "import sys; from livegen.bench.session import stalling_play; sys.exit(stalling_play())"
            every = args.stall_every if stall > 0 else 1e9
            proc = subprocess.Popen([sys.executable, "-c", code, str(stall), str(every), "play", "--headless",
                                     "--osc-port", str(port), "--blocksize", "256", "--no-midi", "--record", directory],
                                    env=jack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + 120
                while _status(port, timeout=0.5) is None and time.monotonic() < deadline and proc.poll() is None:
                    pass
                jack.connect()
                time.sleep(1.0)
                osc = SimpleUDPClient("127.0.0.1", port)
                for i in range(8):
                    osc.send_message("/livegen/note", [48 + 3 * i, 100])
                before = _status(port) or {}
                jack_before = jack.xruns
                loads = []
                end = time.monotonic() + args.live_seconds
                next_at = time.monotonic()
                rng = np.random.default_rng(0)
                while time.monotonic() < end:
                    osc.send_message("/livegen/xy", [float(v) for v in rng.uniform(0, 1, 2)])
                    next_at += 0.010
                    if len(loads) < (time.monotonic() - end + args.live_seconds) / 10:
                        loads.append(os.getloadavg()[0])
                    time.sleep(max(0.0, next_at - time.monotonic()))
                after = _status(port) or {}
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                scheduling = jack.scheduling
                jack.close()
        xruns = after.get("xruns", 0) - before.get("xruns", 0)
        print(f"    {label}: engine xruns {xruns} (underflows {after.get('underflows', 0) - before.get('underflows', 0)}, "
              f"late renders {after.get('late', 0) - before.get('late', 0)}), JACK xruns "
              f"{jack.xruns - jack_before}; recorder dropped {after.get('record_dropped', '?')} frames, "
              f"recording {after.get('recording', '?')}; audio thread {after.get('audio_policy', '?')}, "
              f"longest render {after.get('render_max_ms', 0):.1f} ms; "
              f"load average {np.mean(loads) if loads else os.getloadavg()[0]:.1f}")
    print(f"    scheduling: {scheduling}")


def _engine_steps(args) -> None:
    """The decoder's step time with and without a recording running beside it (same run, alternating)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    loaded = factory.load(args.model, log=lambda text: None)
    name = loaded.name
    period = None
    steps = {False: [], True: []}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for trial in range(4):
            recording = trial % 2 == 1
            engine = loaded.engine(samplerate=args.samplerate, seed=0)
            session = None
            if recording:
                session = SessionControl(engine, directory=directory, header=engine_header(engine, model_name=name)).attach()
                engine.post(Event("record", value=1.0))
            for _ in range(20):
                engine.step()
            start = time.perf_counter()
            produced = engine.samples_out
            # Paced at real time, like the live decoder keeping its ring a few blocks ahead.
            while time.perf_counter() - start < args.engine_seconds:
                t0 = time.perf_counter()
                block = engine.step()
                steps[recording].append(time.perf_counter() - t0)
                period = len(block) / args.samplerate
                target = start + (engine.samples_out - produced) / args.samplerate
                while time.perf_counter() < target:
                    time.sleep(0.0005)
            if session is not None:
                session.close()
    (m0, p0, w0), (m1, p1, w1) = (_percentiles(steps[False], 1e3), _percentiles(steps[True], 1e3))
    print(f"  engine step ({name}, block {period * 1e3:.2f} ms), real-time paced, {args.engine_seconds:g} s x 2 trials each:")
    print(f"    not recording: median {m0:.3f} ms, p99 {p0:.3f} ms, max {w0:.1f} ms")
    print(f"    recording:     median {m1:.3f} ms, p99 {p1:.3f} ms, max {w1:.1f} ms "
          f"(median {m1 / m0:.2f}x, p99 {p1 / p0:.2f}x not recording)")


if __name__ == "__main__":
    raise SystemExit(main())
