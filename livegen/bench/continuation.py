"""`livegen bench continuation`: no collapse, continuation fit, and cost per hop on one core.

1. No collapse: `--seconds` (60) of autonomous generation (drift on, no seed) through the real
   engine; spectral flux of the output in the last 10 s against the first 10 s (target >= 0.5),
   and every second must be neither silent (RMS > -60 dBFS) nor static (flux >= 5 % of the
   first 10 s) nor frozen: its mean spectrum must differ from the second before by at least
   `FROZEN_DB` (RMS over bins, dB). The flux tests alone pass a model that is frozen from its
   first second on (flux relative to its own start; a fixed magnitude frame still has some flux
   after phase reconstruction): the seed-recipe baseline did. Real held-out music changes by
   3-13 dB from second to second (printed with the fit part as a reference). Same-run baseline: the same model run greedily (temperature 0, what an MSE
   predictor does), the seed LSTM's failure mode.
2. Continuation fit: seeds of `--seed-seconds` from held-out pieces; the correlation of the mean
   log spectrum (minus the model's average) of the first generated second with the seed's last
   second, against the same figure with the seeds shuffled (each continuation compared with
   another piece's seed), and the real next second as a reference.
3. Cost: time per hop of the stream with one torch thread: the GRU step of each block is spread
   over hops (input layer, each GRU layer, head + draw), so the median of every kind of hop is
   reported, and the amortised mean; against the spectral VAE decoding 8 voices in the same run and
   against the hop's real-time budget.
4. Notes beside it: the continuation engine's whole hop (48 kHz out, one thread) without a voice
   model, with 0, 1 and 8 held notes, against the spectral engine playing the same 8 notes in the
   same run (`livegen.continuation.bench_notes`; `--notes-hops` per case). Target: with 8 notes
   the mean hop stays inside the hop's real-time budget.

`--model` may be given more than once: every model runs parts 1-3 on the same seeds and the run
ends with one table of them side by side (the listening level, RMS dBFS per 10 s, too). Targets
count for the first model only; e.g. ``--model models/continuation --model DIR`` with DIR a
baseline trained with ``kind = "seed_lstm"`` (the seed document's LSTM recipe, card.md).
"""

from __future__ import annotations

import argparse
import time

from livegen.continuation.bench_notes import notes_figures
from livegen.continuation.source import continuation_engine
from livegen.continuation.io import default_continuation_path, load_continuation
from livegen.continuation.runtime import ContinuationStream
from livegen.data.datasets import open_dataset
from livegen.data.features import load_audio, log_magnitude
from livegen.data.songs import render_songs
from livegen.dsp.stft import stft_magnitude
from livegen.engine.events import Event
from livegen.model import ModelConfig, random_model
from livegen.errors import comma_list, one_of, ranged, seed_type


FROZEN_DB = 2.0  # real music: 3.3 dB at the least (80 second pairs); a steady sound with noise: about 1 dB


def second_changes_db(logmag, *, fps: float):
    """RMS over bins (dB) of the change of the mean log spectrum from each second to the next."""
    import numpy as np

    n = int(logmag.shape[0] // fps)
    means = np.stack([logmag[int(i * fps):int((i + 1) * fps)].mean(0) for i in range(n)]) * (20.0 / np.log(10.0))
    return np.sqrt((np.diff(means, axis=0) ** 2).mean(1))


def _flux_and_rms(y, *, n_fft: int, hop: int, sr: int):
    import numpy as np

    S = stft_magnitude(y, n_fft=n_fft, hop=hop)                  # [frames, bins]
    flux = np.sqrt((np.clip(np.diff(S, axis=0), 0, None) ** 2).sum(1))
    fps = sr / hop
    return flux, fps


def collapse_figures(y, *, sr: int, n_fft: int = 1024, hop: int = 256, window_s: float = 10.0) -> dict:
    """Flux of the first and last `window_s`, and per-second silence/static checks."""
    import numpy as np

    flux, fps = _flux_and_rms(y, n_fft=n_fft, hop=hop, sr=sr)
    w = int(window_s * fps)
    first, last = float(flux[:w].mean()), float(flux[-w:].mean())
    secs = int(len(y) // sr)
    rms_db = [20 * np.log10(np.sqrt(np.mean(y[i * sr:(i + 1) * sr] ** 2)) + 1e-12) for i in range(secs)]
    sec_flux = [float(flux[int(i * fps):int((i + 1) * fps)].mean()) for i in range(secs)]
    silent = sum(r < -60.0 for r in rms_db)
    static = sum(f < 0.05 * first for f in sec_flux)

    change = second_changes_db(log_magnitude(y, n_fft=n_fft, hop=hop), fps=fps)
    per = max(1, int(window_s))
    rms_windows = [20 * np.log10(np.sqrt(np.mean(y[i * sr:(i + per) * sr] ** 2)) + 1e-12)
                   for i in range(0, secs - per + 1, per)]
    return {"flux_first": first, "flux_last": last, "ratio": last / first if first > 0 else 0.0,
            "silent_seconds": int(silent), "static_seconds": int(static), "min_rms_db": float(min(rms_db)),
            "rms_windows_db": [float(r) for r in rms_windows],
            "change_median_db": float(np.median(change)) if change.size else 0.0,
            "frozen_seconds": int((change < FROZEN_DB).sum())}


def _autonomous(model, *, seconds: float, seed: int, temperature: float | None, drift: float):
    engine = continuation_engine(model, seed=seed, temperature=temperature, samplerate=model.config.sample_rate)
    engine.schedule([Event(t=0.0, type="param", name="drift", value=drift)])
    return engine.render(seconds)


def fit_figures(model, seeds, nexts, *, seed: int = 0) -> dict:
    """Correlation of generated-next-second to seed-last-second, matched vs shuffled, vs real."""
    import numpy as np
    import torch

    fps = model.config.sample_rate / model.config.hop
    n1 = int(fps)
    mean = model.bin_mean.numpy()

    def prof(logmag):
        v = logmag.mean(0) - mean
        return (v - v.mean()) / (v.std() + 1e-9)

    gen, last, real = [], [], []
    for i, (s, nx) in enumerate(zip(seeds, nexts)):
        stream = ContinuationStream(model, seed=seed + i)
        with torch.no_grad():
            mu, _ = model.encode(model.analyse(torch.from_numpy(s))[None])
        stream.feed(s)
        z = mu[0].numpy()
        for _ in range(s.shape[0]):
            stream.next_frame(z)
        out = stream.run(z, n1)
        gen.append(prof(np.log(out + 1e-5)))
        last.append(prof(s[-n1:]))
        real.append(prof(nx[:n1]))
    n = len(seeds)
    corr = lambda a, b: float(np.mean(a * b))  # noqa: E731  (profiles are standardised)
    matched = [corr(gen[i], last[i]) for i in range(n)]
    shuffled = [corr(gen[i], last[(i + 1 + (i % max(1, n - 1))) % n]) if n > 1 else 0.0 for i in range(n)]
    reference = [corr(real[i], last[i]) for i in range(n)]
    return {"pieces": n, "matched": float(np.mean(matched)), "shuffled": float(np.mean(shuffled)),
            "real_next": float(np.mean(reference)),
            "wins": int(sum(m > s for m, s in zip(matched, shuffled)))}


def _held_out_seeds(data, *, model, seed_seconds: float, pieces: int, test_only: bool = True):
    """Seed excerpts and the real second after them from a dataset's test split (else rendered)."""
    import numpy as np

    cfg = model.config
    fps = cfg.sample_rate / cfg.hop
    ds = open_dataset(data)
    rows = ([ex for ex in ds if ex.split == "test"] if test_only else []) or list(ds)
    seeds, nexts, labels = [], [], []
    for ex in rows[:pieces]:
        y, _ = load_audio(ex.audio_path, sample_rate=cfg.sample_rate, max_seconds=seed_seconds + 8.0)
        lm = log_magnitude(y, n_fft=cfg.n_fft, hop=cfg.hop)
        start = int(3.0 * fps)                   # skip the first seconds (count-in, first chord)
        cut = start + int(seed_seconds * fps)
        if lm.shape[0] < cut + int(fps):
            continue
        seeds.append(np.ascontiguousarray(lm[start:cut]))
        nexts.append(np.ascontiguousarray(lm[cut:cut + int(fps)]))
        labels.append(ex.label)
    return seeds, nexts, labels


def describe(model) -> str:
    """One line naming a continuation model's architecture (the baseline says what it is)."""
    cfg = model.config
    if hasattr(cfg, "describe"):
        return cfg.describe()
    return f"GRU {cfg.layers}x{cfg.hidden}, block {cfg.block} hops, {cfg.n_components} PCA components, {cfg.mixtures} mixtures"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="livegen bench continuation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=None,
                        help="continuation model directory (default models/continuation); again to compare models")
    parser.add_argument("--data", default=None, help="music folder for held-out seeds (GTZAN layout; default: render "
                                                     "16 pieces with `gm-songs --seed 99` into a temporary folder)")
    parser.add_argument("--seconds", type=ranged(float, above=0), default=60.0, help="autonomous length (default 60)")
    parser.add_argument("--seed-seconds", type=ranged(float, above=0), default=4.0, help="seed length (default 4)")
    parser.add_argument("--pieces", type=ranged(int, 1), default=16, help="seed pieces (default 16)")
    parser.add_argument("--drift", type=ranged(float, 0, 1), default=0.3, help="drift amount of the autonomous run (default 0.3)")
    parser.add_argument("--seed", type=seed_type(), default=0)
    parser.add_argument("--iters", type=ranged(int, 1), default=2000, help="hops per timing repeat")
    parser.add_argument("--repeats", type=ranged(int, 1), default=5)
    parser.add_argument("--notes-hops", type=ranged(int, 1), default=3000, help="timed engine hops per notes case (default 3000)")
    parser.add_argument("--skip", type=comma_list(one_of("collapse", "fit", "cost", "notes")), default="", help="comma list of parts to skip: collapse,fit,cost,notes")
    args = parser.parse_args(argv)

    import tempfile

    import numpy as np
    import torch

    torch.set_num_threads(1)
    skip = set(args.skip)
    paths = args.model or [None]
    models = [load_continuation(p or default_continuation_path()) for p in paths]
    ok = True
    seeds = nexts = None
    if "fit" not in skip:  # the same held-out seeds for every model
        with tempfile.TemporaryDirectory() as tmp:
            data = args.data
            if data is None:
                data = tmp  # seed 99: pieces the bundled model never saw; all of them are held out
                render_songs(tmp, soundfont="/usr/share/sounds/sf2/FluidR3_GM.sf2", songs=args.pieces,
                             seconds=args.seed_seconds + 8.0, seed=99, progress=False)
            seeds, nexts, _ = _held_out_seeds(data, model=models[0], seed_seconds=args.seed_seconds,
                                              pieces=args.pieces, test_only=args.data is not None)
        fps = models[0].config.sample_rate / models[0].config.hop
        real = np.concatenate([second_changes_db(np.concatenate([a, b]), fps=fps) for a, b in zip(seeds, nexts)])
        if real.size:
            print(f"real held-out music ({len(seeds)} pieces, {args.seed_seconds + 1:g} s each): mean spectrum's change "
                  f"from second to second median {np.median(real):.2f} dB, range {real.min():.2f}-{real.max():.2f} dB")
    rows = []
    for i, (path, model) in enumerate(zip(paths, models)):
        if i:
            print("\n" + "-" * 78)
        figures = _bench_model(model, path or default_continuation_path(), args, skip, seeds, nexts, counted=i == 0)
        ok &= figures.pop("ok") or i > 0
        rows.append(figures)
    if len(rows) > 1:
        _print_table(rows)
    if "notes" not in skip:
        t0 = time.perf_counter()
        print("\n[notes beside the stream: the engine's whole hop, voice model decoding the notes]")
        notes = notes_figures(paths[0], hops=args.notes_hops, log=lambda line: print("  " + line))
        eight = next(r for r in notes["rows"] if r["case"].endswith("voice model, 8 notes"))
        before = notes["rows"][0]["mean_us"]
        # A timing, so a report and not the exit code: it says how fast this machine is right now.
        print(f"  ({time.perf_counter() - t0:.1f} s wall) target: 8 notes in real time (mean hop {eight['mean_us']:.0f} µs "
              f"< {notes['budget_us']:.0f} µs budget, {eight['mean_us'] / before:.2f}x the hop without a voice model "
              f"in this run): {'met' if eight['mean_us'] < notes['budget_us'] else 'missed'}")
    return 0 if ok else 1


def _print_table(rows) -> None:
    print("\n[side by side]")
    print("| model | flux ratio last/first 10 s | silent s | static s | change s to s, median dB | frozen s "
          "| RMS dBFS per 10 s | fit matched | shuffled | wins | real next | amortised µs/hop | worst hop µs |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        c, f, k = r.get("collapse"), r.get("fit"), r.get("cost")
        cells = [r["name"]]
        cells += ([f"{c['ratio']:.2f}", str(c["silent_seconds"]), str(c["static_seconds"]), f"{c['change_median_db']:.2f}",
                   str(c["frozen_seconds"]), " / ".join(f"{v:.1f}" for v in c["rms_windows_db"])] if c else ["-"] * 6)
        cells += ([f"{f['matched']:.3f}", f"{f['shuffled']:.3f}", f"{f['wins']}/{f['pieces']}", f"{f['real_next']:.3f}"]
                  if f else ["-"] * 4)
        cells += [f"{k['amortised_us']:.0f}", f"{k['worst_us']:.0f}"] if k else ["-"] * 2
        print("| " + " | ".join(cells) + " |")


def _bench_model(model, path, args, skip, seeds, nexts, *, counted: bool) -> dict:
    """Parts 1-3 for one model; returns its figures (and whether its targets passed)."""
    import numpy as np
    import torch

    cfg = model.config
    sr = cfg.sample_rate
    ok = True
    figures: dict = {"name": str(path)}
    note = "" if counted else " (compared model: its targets are not counted)"
    print(f"model {path}: {describe(model)}; torch threads 1{note}")
    if "collapse" not in skip:
        t0 = time.perf_counter()
        y = _autonomous(model, seconds=args.seconds, seed=args.seed, temperature=None, drift=args.drift)
        sampled = collapse_figures(y, sr=sr)
        runs = [("as configured", sampled)]
        if getattr(cfg, "kind", None) is None:  # the baseline has no sampling: temperature 0 is the same run
            runs.append(("temperature 0", collapse_figures(
                _autonomous(model, seconds=args.seconds, seed=args.seed, temperature=0.0, drift=args.drift), sr=sr)))
        print(f"\n[no collapse] {args.seconds:g} s autonomous, drift {args.drift} ({time.perf_counter() - t0:.1f} s wall)")
        for name, f in runs:
            print(f"  {name:16s} flux first 10 s {f['flux_first']:.3f}, last 10 s {f['flux_last']:.3f}, ratio {f['ratio']:.2f}; "
                  f"silent seconds {f['silent_seconds']}, static seconds {f['static_seconds']}, min RMS {f['min_rms_db']:.1f} dBFS")
            print(f"  {'':16s} RMS dBFS per 10 s: " + " ".join(f"{v:.1f}" for v in f["rms_windows_db"]))
            print(f"  {'':16s} mean spectrum's change from second to second: median {f['change_median_db']:.2f} dB; "
                  f"frozen seconds (< {FROZEN_DB:g} dB) {f['frozen_seconds']}")
        passed = (sampled["ratio"] >= 0.5 and sampled["silent_seconds"] == 0 and sampled["static_seconds"] == 0
                  and sampled["frozen_seconds"] == 0)
        ok &= passed
        figures["collapse"] = sampled
        print(f"  target ratio >= 0.5, never silent, static or frozen: {'PASS' if passed else 'FAIL'}")
    if seeds is not None:
        t0 = time.perf_counter()
        fit = fit_figures(model, seeds, nexts, seed=args.seed)
        print(f"\n[continuation fit] {fit['pieces']} seeds of {args.seed_seconds:g} s ({time.perf_counter() - t0:.1f} s wall)")
        print(f"  correlation of the first generated second with the seed's last second: {fit['matched']:.3f}")
        print(f"  same with shuffled seeds (baseline):                                 {fit['shuffled']:.3f}")
        print(f"  the real next second (reference):                                    {fit['real_next']:.3f}")
        print(f"  matched beats shuffled for {fit['wins']}/{fit['pieces']} seeds")
        ok &= fit["matched"] > fit["shuffled"]
        figures["fit"] = fit
    if "cost" not in skip:
        stream = ContinuationStream(model, seed=args.seed)
        z = np.zeros(cfg.latent_dim, np.float32)
        by_work: dict[str, list[float]] = {}
        for _ in range(200):
            stream.next_frame(z)
        for _ in range(args.repeats * args.iters):
            t = time.perf_counter()
            stream.next_frame(z)
            by_work.setdefault(stream.last_work, []).append((time.perf_counter() - t) * 1e6)
        names = {"": "synthesis only", "i": "+ input layer", "g": "+ one GRU layer", "h": "+ head and draw",
                 "w": "window re-run"}
        medians = {w: float(np.median(v)) for w, v in by_work.items()}
        counts = {w: len(v) for w, v in by_work.items()}
        total = sum(counts.values())
        amortised = sum(medians[w] * counts[w] for w in medians) / total
        worst = max(medians.values())
        vae = random_model(ModelConfig(), seed=0)
        v = 8
        zz, pitch = torch.zeros(v, vae.config.latent_dim), torch.linspace(48, 72, v)
        vel, ton, toff = torch.full((v,), 0.8), torch.full((v,), 0.5), torch.full((v,), -1.0)
        noise = torch.randn(v, vae.config.noise_dim)
        vae_calls = []
        with torch.inference_mode():
            for _ in range(max(200, args.iters // 2)):
                t = time.perf_counter()
                vae.decode(zz, pitch, vel, ton, toff, noise)
                vae_calls.append((time.perf_counter() - t) * 1e6)
        vae_us = float(np.median(vae_calls[20:]))
        budget = cfg.hop / sr * 1e6
        all_calls = np.concatenate([np.array(v) for v in by_work.values()])
        print(f"\n[cost per hop, one thread, {total} hops; medians, robust to the shared machine's preemptions]")
        for w in sorted(medians, key=len):
            print(f"  hops with {names.get(w, w):18s} ({counts[w]:6d}): {medians[w]:7.1f} µs")
        print(f"  amortised {amortised:.1f} µs per hop, worst kind of hop {worst:.1f} µs "
              f"(raw mean {all_calls.mean():.1f} µs, p99 {np.percentile(all_calls, 99):.1f} µs)")
        print(f"  spectral VAE decoding 8 voices, same run: {vae_us:.1f} µs per hop -> continuation amortised = {amortised / vae_us:.2f}x of it")
        print(f"  hop budget {budget:.0f} µs: continuation {100 * amortised / budget:.1f} %, worst hop {100 * worst / budget:.1f} %, "
              f"with the 8 voices {100 * (amortised + vae_us) / budget:.1f} %")
        figures["cost"] = {"amortised_us": amortised, "worst_us": worst}
        # A timing, so a report and not the exit code (the ratios above are this run's own).
        print(f"  target <= 500 µs per hop (every kind of hop): {'met' if worst <= 500.0 else 'missed'}")
    figures["ok"] = ok
    return figures
