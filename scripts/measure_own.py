"""The own-sound targets, measured on the audio `livegen render` writes (not part of the package).

    python scripts/measure_own.py pitched --model RUN/model --real-notes DIR --heard 60,62,... --out DIR
    python scripts/measure_own.py texture --model RUN/model --unheard DIR --out DIR

pitched: a note at every semitone over the range (0.8 s each, velocity 100), rendered by
`livegen render`; each note's voiced frames (after its first 80 ms, before its note-off) are
tracked with CREPE-tiny (torchcrepe) and counted within 50 cents, for pitches heard and never
heard in training. Timbre: each rendered note's mean mel spectrum (0.1-0.7 s, 96 bands to
16 kHz, dB) against the real note of the same pitch (`make_material.py notes`), over the bands
from 0.8 x f0 up, level-matched (mean difference removed): the mean absolute dB difference. The
same for the bundled default model at each point of a 4 x 4 grid of pad positions; the ratio is
ours / the default's best point.
texture: a 20 s groove of notes (16ths at 110 bpm, velocities 50-120, pitch = the model's root)
rendered by `livegen render`; its long-term mel envelope (mean power per band over the whole
render, 64 bands 30 Hz-20 kHz, dB) against grooves the model never heard, level-matched: the
mean absolute dB difference; also for the bundled default model on the same events.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 48000
CLI = [sys.executable, str(Path(__file__).resolve().parents[1] / "cli.py")]


def render(events: list[dict], model: str, out: Path, seconds: float) -> np.ndarray:
    path = out.with_suffix(".jsonl")
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    subprocess.run([*CLI, "render", str(path), "--model", model, "-o", str(out), "--seconds", str(seconds),
                    "--samplerate", str(SR)], check=True, capture_output=True)
    y, sr = sf.read(out, dtype="float32")
    assert sr == SR
    return y


def mel_db(y: np.ndarray, *, n_mels: int, fmin: float, fmax: float) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    m = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=4096, hop_length=1024, n_mels=n_mels, fmin=fmin, fmax=fmax,
                                       power=2.0)
    freqs = librosa.mel_frequencies(n_mels=n_mels, fmin=fmin, fmax=fmax)
    return 10 * np.log10(m.mean(1) + 1e-12), freqs


def level_matched(a: np.ndarray, b: np.ndarray) -> float:
    d = a - b
    return float(np.abs(d - d.mean()).mean())


def pitched(args) -> None:
    sys.path.insert(0, "/work/data/own/pylib")
    import torch

    from livegen.data.pitch import import_torchcrepe

    torchcrepe = import_torchcrepe()
    heard = {int(x) for x in args.heard.split(",")}
    lo, hi = min(heard), max(heard)
    pitches = list(range(lo, hi + 1))
    note_s, gap_s = 0.8, 0.3
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def events(x=None, y=None):
        ev = [{"t": 0.0, "type": "param", "name": "drone", "value": 0}]
        if x is not None:
            ev += [{"t": 0.0, "type": "param", "name": "x", "value": x}, {"t": 0.0, "type": "param", "name": "y", "value": y}]
        for k, p in enumerate(pitches):
            t = 0.2 + k * (note_s + gap_s)
            ev += [{"t": t, "type": "note_on", "pitch": p, "velocity": 100},
                   {"t": t + note_s, "type": "note_off", "pitch": p}]
        return ev

    seconds = 0.4 + len(pitches) * (note_s + gap_s)
    ours = render(events(), args.model, out / "ours.wav", seconds)
    # Pitch: CREPE-tiny on each note's held part.
    results = {}
    for k, p in enumerate(pitches):
        t = 0.2 + k * (note_s + gap_s)
        seg = ours[int((t + 0.08) * SR):int((t + note_s) * SR)]
        x = torch.from_numpy(soxr.resample(seg, SR, 16000).astype(np.float32))[None]
        f0, per = torchcrepe.predict(x, 16000, hop_length=160, fmin=50.0, fmax=2000.0, model="tiny",
                                     return_periodicity=True, batch_size=512, device="cpu",
                                     decoder=torchcrepe.decode.weighted_argmax)
        f0, per = f0[0].numpy(), per[0].numpy()
        v = per > 0.5
        cents = np.abs(69 + 12 * np.log2(np.maximum(f0[v], 1e-3) / 440.0) - p) * 100
        results[p] = (int((cents <= 50).sum()), int(v.sum()), int(v.size))

    def share(sel):
        ok = sum(results[p][0] for p in sel)
        tot = sum(results[p][1] for p in sel)
        return round(ok / tot, 4) if tot else None

    unheard = [p for p in pitches if p not in heard]
    report = {"pitches": pitches, "unheard": unheard,
              "within_50c_all": share(pitches), "within_50c_heard": share([p for p in pitches if p in heard]),
              "within_50c_unheard": share(unheard),
              "voiced_share": round(sum(r[1] for r in results.values()) / sum(r[2] for r in results.values()), 4),
              "per_pitch": {p: round(r[0] / r[1], 3) if r[1] else None for p, r in results.items()}}
    print(json.dumps({k: v for k, v in report.items() if k != "per_pitch"}), flush=True)

    # Timbre against the real notes.
    def envelopes(y):
        envs = []
        for k, p in enumerate(pitches):
            t = 0.2 + k * (note_s + gap_s)
            seg = y[int((t + 0.1) * SR):int((t + 0.7) * SR)]
            db, freqs = mel_db(seg, n_mels=96, fmin=30.0, fmax=16000.0)
            envs.append((db, freqs))
        return envs

    real_env = []
    for p in pitches:
        y, sr = sf.read(Path(args.real_notes) / f"note_{p:03d}.wav", dtype="float32", always_2d=True)
        y = soxr.resample(y.mean(1), sr, SR)
        real_env.append(mel_db(y[int(0.1 * SR):int(0.7 * SR)], n_mels=96, fmin=30.0, fmax=16000.0))

    def distance(envs):
        d = []
        for p, (g, freqs), (r, _) in zip(pitches, envs, real_env):
            f0 = 440.0 * 2 ** ((p - 69) / 12)
            sel = freqs >= 0.8 * f0
            d.append(level_matched(g[sel], r[sel]))
        return float(np.mean(d))

    report["timbre_ours_db"] = round(distance(envelopes(ours)), 3)
    grid = {}
    for x in (0.125, 0.375, 0.625, 0.875):
        for yv in (0.125, 0.375, 0.625, 0.875):
            y = render(events(x, yv), args.default_model, out / f"default_{x}_{yv}.wav", seconds)
            grid[f"{x},{yv}"] = round(distance(envelopes(y)), 3)
            print("default", x, yv, grid[f"{x},{yv}"], flush=True)
    best = min(grid, key=grid.get)
    report.update(timbre_default_grid_db=grid, timbre_default_best_db=grid[best], timbre_default_best_point=best,
                  timbre_ratio=round(report["timbre_ours_db"] / grid[best], 3))
    (out / "pitched.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("per_pitch", "timbre_default_grid_db")}))


def texture(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((Path(args.model) / "config.json").read_text())["config"]
    root = float(cfg.get("root_pitch", 48.0))
    rng = np.random.default_rng(0)
    step = 60.0 / 110.0 / 4
    ev = [{"t": 0.0, "type": "param", "name": "drone", "value": 0}]
    t = 0.1
    while t < args.seconds - 0.5:
        v = int(rng.integers(50, 121))
        ev += [{"t": round(t, 4), "type": "note_on", "pitch": root, "velocity": v},
               {"t": round(t + step * 0.9, 4), "type": "note_off", "pitch": root}]
        t += step
    ref = []
    for f in sorted(Path(args.unheard).rglob("*.flac")) + sorted(Path(args.unheard).rglob("*.wav")):
        y, sr = sf.read(f, dtype="float32", always_2d=True)
        ref.append(soxr.resample(y.mean(1), sr, SR))
    ref_db, _ = mel_db(np.concatenate(ref), n_mels=64, fmin=30.0, fmax=20000.0)
    report = {}
    for name, model in (("ours", args.model), ("default", args.default_model)):
        y = render(ev, model, out / f"{name}.wav", args.seconds)
        db, _ = mel_db(y, n_mels=64, fmin=30.0, fmax=20000.0)
        report[name] = {"mel_envelope_db": round(level_matched(db, ref_db), 3), "finite": bool(np.isfinite(y).all()),
                        "rms_dbfs": round(float(10 * np.log10(np.mean(y ** 2) + 1e-20)), 1),
                        "silent_seconds": round(float(_silent_seconds(y)), 2)}
        print(name, report[name], flush=True)
    (out / "texture.json").write_text(json.dumps(report, indent=1) + "\n")


def _silent_seconds(y: np.ndarray) -> float:
    """Seconds of 0.1 s windows quieter than -80 dBFS."""
    w = int(0.1 * SR)
    n = len(y) // w
    if not n:
        return 0.0
    rms = np.sqrt((y[:n * w].reshape(n, w) ** 2).mean(1))
    return float((rms < 1e-4).sum() * 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("pitched")
    p.add_argument("--model", required=True)
    p.add_argument("--default-model", default="models/default")
    p.add_argument("--real-notes", required=True)
    p.add_argument("--heard", required=True)
    p.add_argument("--out", required=True)
    t = sub.add_parser("texture")
    t.add_argument("--model", required=True)
    t.add_argument("--default-model", default="models/default")
    t.add_argument("--unheard", required=True)
    t.add_argument("--seconds", type=float, default=20.0)
    t.add_argument("--out", required=True)
    args = parser.parse_args()
    {"pitched": pitched, "texture": texture}[args.what](args)


if __name__ == "__main__":
    main()
