"""Cost of notes beside a continuation model: ``python -m livegen.continuation.bench_notes``.

Per-hop time of the continuation engine's `step()` (48 kHz out, one thread) without a voice
model (notes ignored: the engine as it was before notes played), with one and with 8 held note
voices, against the spectral engine (`models/default`) playing the same 8 voices in the same
run, and the continuation stream alone (its own target: at most 0.5 ms a hop). Medians of
single hops (robust to the shared machine's preemptions) and the real-time factor of the mean.
"""

from __future__ import annotations

import argparse
import time


def _hops(engine, *, hops: int, warmup: int = 200):
    import numpy as np

    for _ in range(warmup):
        engine.step()
    spent = np.empty(hops)
    for i in range(hops):
        t = time.perf_counter()
        engine.step()
        spent[i] = time.perf_counter() - t
    return spent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livegen.continuation.bench_notes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="continuation model (default models/continuation)")
    parser.add_argument("--hops", type=int, default=3000, help="timed hops per case (default 3000)")
    parser.add_argument("--samplerate", type=int, default=48000)
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from livegen.continuation.engine_hook import ContinuationEngine, load_for_engine
    from livegen.continuation.io import default_continuation_path
    from livegen.continuation.notes import load_voice_model, resolve_voice_model
    from livegen.engine.core import Engine
    from livegen.engine.events import Event

    torch.set_num_threads(1)
    threadpool_limits(1, user_api="blas")
    model_dir = args.model or default_continuation_path()
    model = load_for_engine(model_dir)
    voice_dir = resolve_voice_model(model_dir)
    voices = load_voice_model(voice_dir, config=model.config)
    notes = [Event(t=0.0, type="note_on", pitch=48 + 3 * i, velocity=100) for i in range(8)]
    hop_out = model.config.hop / model.config.sample_rate
    budget_us = hop_out * 1e6
    print(f"continuation {model_dir}, voice model {voice_dir}; {args.hops} hops per case at {args.samplerate} Hz, "
          f"one thread; hop budget {budget_us:.0f} µs")

    cases = [("continuation, no voice model (before)", dict(voice_model=None), notes),
             ("continuation + voice model, 0 notes", dict(voice_model=voices), []),
             ("continuation + voice model, 1 note", dict(voice_model=voices), notes[:1]),
             ("continuation + voice model, 8 notes", dict(voice_model=voices), notes)]
    rows = []
    for name, kw, events in cases:
        engine = ContinuationEngine(model, samplerate=args.samplerate, seed=0, **kw)
        engine.schedule(events)
        spent = _hops(engine, hops=args.hops)
        sounding = len(engine.voices.sounding_notes())
        rows.append((name, spent, sounding))
    spectral = Engine(voices, samplerate=args.samplerate, seed=0)
    spectral.schedule([Event(t=0.0, type="param", name="drone", value=0)] + notes)
    rows.append(("spectral engine (models/default), 8 notes", _hops(spectral, hops=args.hops),
                 len(spectral.voices.sounding_notes())))
    from livegen.continuation.runtime import ContinuationStream

    stream = ContinuationStream(model, seed=0)
    z = np.zeros(model.config.latent_dim, np.float32)
    for _ in range(200):
        stream.next_frame(z)
    stream_us = []
    for _ in range(args.hops):
        t = time.perf_counter()
        stream.next_frame(z)
        stream_us.append(time.perf_counter() - t)
    base = float(np.median(rows[0][1]))
    print(f"{'case':45s} {'voices':>6s} {'median µs':>10s} {'mean µs':>8s} {'p99 µs':>8s} {'x real time':>11s} {'vs before':>9s}")
    for name, spent, sounding in rows:
        med, mean = float(np.median(spent)) * 1e6, float(spent.mean()) * 1e6
        print(f"{name:45s} {sounding:6d} {med:10.1f} {mean:8.1f} {np.percentile(spent, 99) * 1e6:8.1f} "
              f"{budget_us / mean:11.1f} {med / (base * 1e6):8.2f}x")
    s = np.array(stream_us) * 1e6
    print(f"{'continuation stream alone (target <= 500 µs)':45s} {'':6s} {np.median(s):10.1f} {s.mean():8.1f} "
          f"{np.percentile(s, 99):8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
