"""Cost of notes beside a continuation model: ``python -m livegen.continuation.bench_notes``
(also the ``notes`` part of `livegen bench continuation`).

Per-hop time of the continuation engine's `step()` (48 kHz out, one thread) without a voice
model (notes ignored: the engine as it was before notes played), with one and with 8 held note
voices, against the spectral engine (`models/default`) playing the same 8 voices in the same
run, and the continuation stream alone (its own target: at most 0.5 ms a hop). Medians of
single hops (robust to the shared machine's preemptions) and the real-time factor of the mean.
"""

from __future__ import annotations

import argparse
import time

from livegen.continuation.io import default_continuation_path, load_continuation
from livegen.continuation.notes import load_voice_model, resolve_voice_model
from livegen.continuation.runtime import ContinuationStream
from livegen.continuation.source import continuation_engine
from livegen.engine.events import Event
from livegen.engine.notes import spectral_engine


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


def notes_figures(model_dir=None, *, hops: int = 3000, samplerate: int = 48000, log=print) -> dict:
    """Time the cases of the module docstring, print a table through `log`, return the figures.

    The result has ``budget_us`` (one hop at the model's rate) and ``rows``: per case its name,
    the voices decoding (``None`` without a voice model), median, mean and p99 µs a hop.
    """
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    model_dir = model_dir or default_continuation_path()
    with threadpool_limits(1, user_api="blas"):
        model = load_continuation(model_dir)
        voice_dir = resolve_voice_model(model_dir)
        voices = load_voice_model(voice_dir, config=model.config)
        notes = [Event(t=0.0, type="note_on", pitch=48 + 3 * i, velocity=100) for i in range(8)]
        budget_us = model.config.hop / model.config.sample_rate * 1e6
        log(f"continuation {model_dir}, voice model {voice_dir}; {hops} hops per case at {samplerate} Hz, "
            f"one thread; hop budget {budget_us:.0f} µs")

        cases = [("continuation, no voice model (before)", dict(voice_model=None), notes),
                 ("continuation + voice model, 0 notes", dict(voice_model=voices), []),
                 ("continuation + voice model, 1 note", dict(voice_model=voices), notes[:1]),
                 ("continuation + voice model, 8 notes", dict(voice_model=voices), notes)]
        timed = []
        for name, kw, events in cases:
            engine = continuation_engine(model, samplerate=samplerate, seed=0, **kw)
            engine.schedule(events, warn=lambda text: None)
            spent = _hops(engine, hops=hops)
            timed.append((name, spent, engine.status().get("voices")))
        spectral = spectral_engine(voices, samplerate=samplerate, seed=0)
        spectral.schedule([Event(t=0.0, type="param", name="drone", value=0)] + notes)
        timed.append(("spectral engine (models/default), 8 notes", _hops(spectral, hops=hops),
                      spectral.status()["voices"]))

        stream = ContinuationStream(model, seed=0)
        z = np.zeros(model.config.latent_dim, np.float32)
        for _ in range(200):
            stream.next_frame(z)
        stream_s = np.empty(hops)
        for i in range(hops):
            t = time.perf_counter()
            stream.next_frame(z)
            stream_s[i] = time.perf_counter() - t

    rows = [{"case": name, "voices": sounding, "median_us": float(np.median(spent)) * 1e6,
             "mean_us": float(spent.mean()) * 1e6, "p99_us": float(np.percentile(spent, 99)) * 1e6}
            for name, spent, sounding in timed]
    base = rows[0]["median_us"]
    log(f"{'case':45s} {'voices':>6s} {'median µs':>10s} {'mean µs':>8s} {'p99 µs':>8s} {'x real time':>11s} {'vs before':>9s}")
    for row in rows:
        voices_text = "-" if row["voices"] is None else str(row["voices"])
        log(f"{row['case']:45s} {voices_text:>6s} {row['median_us']:10.1f} {row['mean_us']:8.1f} {row['p99_us']:8.1f} "
            f"{budget_us / row['mean_us']:11.1f} {row['median_us'] / base:8.2f}x")
    s = stream_s * 1e6
    log(f"{'continuation stream alone (target <= 500 µs)':45s} {'':6s} {np.median(s):10.1f} {s.mean():8.1f} "
        f"{np.percentile(s, 99):8.1f}")
    return {"budget_us": budget_us, "rows": rows, "stream_median_us": float(np.median(s))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livegen.continuation.bench_notes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="continuation model (default models/continuation)")
    parser.add_argument("--hops", type=int, default=3000, help="timed hops per case (default 3000)")
    parser.add_argument("--samplerate", type=int, default=48000)
    args = parser.parse_args(argv)
    notes_figures(args.model, hops=args.hops, samplerate=args.samplerate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
