"""`livegen bench session`: what recording costs the engine thread, and how fast the disk thread writes.

The engine thread's share of a recording is `write_audio` (a copy into the ring) and `log_event`
(a deque append). Both are timed per block against the same-run baseline of a bare `np.copyto`
of the block into a preallocated array (the least any tap can cost) and against the block period,
with the disk thread running, then again while the disk stalls for a second.
"""

from __future__ import annotations

import argparse
import tempfile
import time


def _percentiles(values, scale=1e6):
    import numpy as np

    values = np.asarray(values) * scale
    return float(np.median(values)), float(np.percentile(values, 99)), float(values.max())


def main(argv=None) -> int:
    import numpy as np

    from livegen.engine.events import param
    from livegen.session.recorder import SessionRecorder

    parser = argparse.ArgumentParser(prog="livegen bench session", description=__doc__)
    parser.add_argument("--samplerate", type=int, default=48000)
    parser.add_argument("--blocksize", type=int, default=256)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="audio recorded per measurement")
    parser.add_argument("--subtype", default="FLOAT", choices=["FLOAT", "PCM_24"])
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    parser.add_argument("--engine-seconds", type=float, default=4.0,
                        help="per trial of the engine-step comparison (0 skips it)")
    parser.add_argument("--model", default=None, help="model directory for the engine comparison")
    args = parser.parse_args(argv)

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
    return 0


def _engine_steps(args) -> None:
    """The decoder's step time with and without a recording running beside it (same run, alternating)."""
    import numpy as np
    import torch

    from livegen.engine.core import Engine
    from livegen.engine.events import Event
    from livegen.engine.setup import load_engine_model
    from livegen.session.wiring import SessionControl, engine_header

    torch.set_num_threads(1)
    model, name = load_engine_model(args.model, log=lambda text: None)
    period = None
    steps = {False: [], True: []}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for trial in range(4):
            recording = trial % 2 == 1
            engine = Engine(model, samplerate=args.samplerate, seed=0)
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
