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
    parser.add_argument("--voices", default="1,8", help="comma-separated voice counts (default 1,8)")
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    from livegen.model import default_model_path, load_model, random_model

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
    for v in [int(x) for x in args.voices.split(",") if x.strip()]:
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
