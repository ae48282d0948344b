"""`livegen bench model`: decoder cost per frame for 1 and 8 voices on one core.

Targets (issue 3): <= 0.3 ms per frame for one voice and <= 1 ms for 8 voices batched. The
machine is shared and noisy, so beside each figure we print a baseline measured in the same
run: the decoder's MLP alone (same layers, same batch), i.e. what a plain MLP frame decoder of
this size costs; the ratio says what drawing harmonics and noise adds. `traced` is
`model.frame_decoder()` (TorchScript, identical output), what a per-hop loop should call.
"""

from __future__ import annotations

import argparse
import statistics
import time

from livegen.data.datasets import open_dataset
from livegen.data.features import load_audio
from livegen.dsp import invert, spectral_convergence, stft_magnitude
from livegen.errors import comma_list, ranged
from livegen.model import default_model_path, load_model, random_model
from livegen.train.evaluate import UNPITCHED_FAMILIES, track_pitch


def _time(fn, *, iters: int, repeats: int) -> float:
    """Median over `repeats` of the mean time per call (µs)."""
    for _ in range(max(10, iters // 10)):
        fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        runs.append((time.perf_counter() - start) / iters * 1e6)
    return statistics.median(runs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="livegen bench model", description=__doc__)
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model, else a random one)")
    parser.add_argument("--voices", type=comma_list(ranged(int, 1, 16)), default="1,8", help="comma-separated voice counts (default 1,8)")
    parser.add_argument("--iters", type=ranged(int, 1), default=300)
    parser.add_argument("--repeats", type=ranged(int, 1), default=7)
    parser.add_argument("--threads", type=ranged(int, 1, 256), default=1, help="torch threads (default 1: one core)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stft-tradeoff", metavar="DATA", default=None,
                        help="instead: measure the STFT trade-off on real notes of a `livegen dataset gm` folder")
    args = parser.parse_args(argv)
    if args.stft_tradeoff:
        return stft_tradeoff(args.stft_tradeoff)

    import torch

    torch.set_num_threads(args.threads)
    if args.model:
        model, name = load_model(args.model, device=args.device), args.model
    elif (default_model_path() / "config.json").is_file():
        model, name = load_model(default_model_path(), device=args.device), "bundled default"
    else:
        model, name = random_model().to(args.device), "random (no bundled model yet)"
    cfg = model.config
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    print(f"model: {name}; {args.threads} thread(s); device {args.device}; "
          f"hop {cfg.hop} samples = {cfg.hop_seconds * 1e3:.2f} ms at {cfg.sample_rate} Hz")
    fast = model.frame_decoder()
    print(f"{'voices':>6} {'decode µs':>10} {'traced µs':>10} {'MLP-only µs':>12} {'ratio':>6} {'traced ratio':>12} "
          f"{'target µs':>10} {'traced % of hop':>15}")
    gen = torch.Generator(device="cpu").manual_seed(0)
    for v in args.voices:
        z = torch.randn(v, cfg.latent_dim, generator=gen).to(args.device)
        pitch = torch.linspace(36.0, 84.5, v).to(args.device)
        vel = torch.full((v,), 0.7, device=args.device)
        t_on = torch.full((v,), 0.4, device=args.device)
        t_off = torch.full((v,), -1.0, device=args.device)
        noise = torch.randn(v, cfg.noise_dim, generator=gen).to(args.device)
        x = torch.randn(v, model.decoder[0].in_features, generator=gen).to(args.device)

        def decode():
            model.decode(z, pitch, vel, t_on, t_off, noise)
            sync()

        def traced():
            fast(z, pitch, vel, t_on, t_off, noise)
            sync()

        def mlp():
            model.decoder(x)
            sync()

        with torch.inference_mode():
            t_dec = _time(decode, iters=args.iters, repeats=args.repeats)
            t_tr = _time(traced, iters=args.iters, repeats=args.repeats)
            t_mlp = _time(mlp, iters=args.iters, repeats=args.repeats)
        target = 300.0 if v == 1 else 1000.0 * v / 8
        print(f"{v:>6} {t_dec:>10.1f} {t_tr:>10.1f} {t_mlp:>12.1f} {t_dec / t_mlp:>6.2f} {t_tr / t_mlp:>12.2f} "
              f"{target:>10.0f} {t_tr / (cfg.hop_seconds * 1e6) * 100:>14.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def stft_tradeoff(data_dir, *, settings=((512, 64), (1024, 128), (2048, 256)), pitches=(36, 48, 60, 72),
                  notes_per_pitch: int = 4, sample_rate: int = 24000) -> int:
    """Real notes through each STFT geometry (87.5 % overlap): how well bass harmonics are
    resolved, how well the streaming inverter reconstructs them, pitch after inversion, cost.

    harmonic contrast: mean over harmonics 1-8 of (dB at k*f0 - dB at (k+0.5)*f0) in the
    sustained frames of the MIDI 36 notes: near 0 dB means the harmonics merge into one lobe.
    """
    import numpy as np

    ds = [ex for ex in open_dataset(data_dir) if ex.kind == "note" and ex.family not in UNPITCHED_FAMILIES
          and ex.split == "test" and (ex.velocity or 0) >= 80]
    chosen = []
    for p in pitches:
        chosen += [ex for ex in ds if ex.pitch == p][:notes_per_pitch]
    if not chosen:
        print(f"no pitched test notes at MIDI {pitches} in {data_dir}")
        return 1
    audio = [(ex, load_audio(ex.audio_path, sample_rate=sample_rate, max_seconds=1.0)[0]) for ex in chosen]
    print(f"{len(audio)} real test-split notes at MIDI {', '.join(map(str, pitches))}, {sample_rate} Hz, 1 s each")
    print(f"{'n_fft':>5} {'hop':>4} {'window ms':>9} {'hop ms':>6} {'bin Hz':>6} {'bins':>5} "
          f"{'MIDI36 contrast dB':>18} {'inverter SC dB':>14} {'YIN within 20c':>14}")
    for n_fft, hop in settings:
        contrast, sc, cents = [], [], []
        for ex, y in audio:
            S = stft_magnitude(y, n_fft=n_fft, hop=hop)
            if ex.pitch == 36:
                f0 = 440.0 * 2 ** ((36 - 69) / 12)
                bin_hz = sample_rate / n_fft
                mean = 20 * np.log10(S[S.shape[0] // 4: S.shape[0] * 3 // 4].mean(0) + 1e-6)
                for k in range(1, 9):
                    a = mean[int(round(k * f0 / bin_hz))]
                    b = mean[int(round((k + 0.5) * f0 / bin_hz))]
                    contrast.append(a - b)
            y2 = invert(S, n_fft=n_fft, hop=hop)
            sc.append(spectral_convergence(y2, S, n_fft=n_fft, hop=hop))
            midi, voiced = track_pitch(y2, sample_rate, method="yin")
            voiced[:5] = False
            cents.append(np.abs(midi[voiced] - ex.pitch) * 100)
        c = np.concatenate(cents)
        print(f"{n_fft:>5} {hop:>4} {n_fft / sample_rate * 1e3:>9.1f} {hop / sample_rate * 1e3:>6.2f} "
              f"{sample_rate / n_fft:>6.1f} {n_fft // 2 + 1:>5} {np.mean(contrast) if contrast else float('nan'):>18.1f} "
              f"{np.mean(sc):>14.1f} {(c <= 20).mean():>14.1%}")
    return 0
