"""`livegen eval`: measure a model on held-out notes and write a report (JSON + markdown + PNG)."""

from __future__ import annotations

import argparse
import json
import time

from livegen.data.datasets import open_dataset
from livegen.data.files import check_output_folder
from livegen.errors import ParameterError, ranged, seed_type


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval",
        help="measure a model: timbre LSD on unseen instruments, pitch accuracy, life, morphs, latent plane",
        description="Writes report.json and report.md into --out, with plane.png (given --data) and notes.png "
                    "(unless --no-audio). Pitch is tracked with CREPE "
                    "(torchcrepe, the `eval` extra) when installed, else librosa's YIN. The final-audio figures "
                    "(note level over the pad, the 8-note peak, life and pitch of what `livegen render` writes) "
                    "need no dataset: without --data only they are measured.",
    )
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--data", default=None,
                        help="dataset folder with train/test splits (e.g. `livegen dataset gm`); without it only the "
                             "final-audio figures are measured")
    parser.add_argument("--no-audio", action="store_true", help="skip the final-audio figures (levels, life, pitch)")
    parser.add_argument("--out", default=None, help="report folder (default MODEL/eval)")
    parser.add_argument("--cache", default=None, help="feature cache folder (default: the user cache, livegen/features)")
    parser.add_argument("--notes", type=ranged(int, 1), default=300, help="held-out notes for LSD (default 300)")
    parser.add_argument("--life-notes", type=ranged(int, 1), default=40, help="notes for the life metric (default 40)")
    parser.add_argument("--pitch-points", type=ranged(int, 1, 1000), default=20, help="latent points for the pitch test (default 20)")
    parser.add_argument("--per-pitch", type=ranged(int, 1, 20), default=2, help="latent points playing each tested pitch (default 2)")
    parser.add_argument("--pitch-step", type=ranged(float, 0.05, 48, hint="semitones; 48: MIDI 36 and 84 alone"), default=0.5, help="semitones between tested pitches (default 0.5: quarter tones)")
    parser.add_argument("--real-pitch-notes", type=ranged(int, 1), default=80, help="real notes tracked for comparison (default 80)")
    parser.add_argument("--tracker", choices=("auto", "crepe", "yin"), default="auto")
    parser.add_argument("--seed", type=seed_type(), default=0)
    parser.add_argument("--no-progress", action="store_true")
    return parser


TARGETS = {"pitch_50c": 0.97, "pitch_20c": 0.90, "lsd_db": 4.5, "life_ratio": 0.5, "morph_ratio": 1.0,
           "level_dbfs": (-24.0, -14.0), "pad_spread_db": 6.0, "limiter_hold_range_db": 1.0}


def run(args) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from livegen.model import load_model
    from livegen.train import evaluate as ev
    from livegen.train.data import NoteSampler, open_features

    out = Path(args.out) if args.out else Path(args.model) / "eval"
    if args.out:  # a model folder's own eval/ is checked once the model is known to be there
        check_output_folder(out, "--out")
    started = time.perf_counter()
    model = load_model(args.model)
    cfg = model.config
    if not args.out:
        check_output_folder(out, "--out (default MODEL/eval)")
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": str(args.model), "data": args.data and str(args.data), "targets": TARGETS,
                    "stft": {"sample_rate": cfg.sample_rate, "n_fft": cfg.n_fft, "hop": cfg.hop,
                             "hop_ms": round(cfg.hop_seconds * 1e3, 3), "bin_hz": round(cfg.bin_hz, 3)},
                    "pass": {}}
    tracker = ev._tracker() if args.tracker == "auto" else args.tracker
    if not args.no_audio:
        from livegen.bench import sound

        report["audio"] = sound.measure(model, seed=args.seed, tracker=tracker)
        report["audio_definition"] = sound.__doc__.split("\n\n", 1)[1].strip()
        from livegen.bench.phase import phase_quality

        report["phase"] = phase_quality(sr=cfg.sample_rate, n_fft=cfg.n_fft, hop=cfg.hop)
        png = out / "notes.png"
        report["notes_png"] = str(png) if sound.notes_png(model, png) else None
        a = report["audio"]
        lo, hi = TARGETS["level_dbfs"]
        report["pass"].update({
            "level_dbfs": lo <= a["level"]["min_dbfs"] and a["level"]["max_dbfs"] <= hi,
            "pad_spread_db": a["level"]["spread_db"] <= TARGETS["pad_spread_db"],
            "limiter_hold_range_db": a["chord"]["limiter_hold_range_db"] <= TARGETS["limiter_hold_range_db"],
            "life_audio": a["life"]["ratio"] >= TARGETS["life_ratio"],
            "pitch_audio_50c": (a["pitch"]["within_50c"] or 0) >= TARGETS["pitch_50c"],
            "pitch_audio_20c": (a["pitch"]["within_20c"] or 0) >= TARGETS["pitch_20c"],
        })
    if args.data is None:
        return _write_report(report, out, started)
    from livegen.train.data import default_cache_dir

    cache = Path(args.cache) if args.cache else default_cache_dir()
    features = open_features(args.data, cache_dir=cache, sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop=cfg.hop,
                             progress=not args.no_progress)
    rng = np.random.default_rng(args.seed)

    def pick(sampler, n, pitched=False):
        idx = [i for i in range(len(sampler)) if not pitched or sampler.family[i] not in ev.UNPITCHED_FAMILIES]
        return np.sort(rng.choice(idx, min(n, len(idx)), replace=False)) if idx else np.zeros(0, int)

    splits = {}
    for name in ("train", "test"):
        try:
            splits[name] = NoteSampler(features, name)
        except ParameterError:
            pass
    if "test" not in splits:
        raise ParameterError(f"{args.data} has no test split of pitched notes: held-out instruments are needed")
    test = splits["test"]
    report["test_split"] = {"notes": len(test), "instruments": len(set(test.instrument))}

    # Timbre: reconstruction LSD on instruments unseen in training (and on seen ones, for scale).
    lsd = {}
    for name, sampler in splits.items():
        notes = pick(sampler, args.notes)
        parts: dict = {}
        per_note = ev.note_lsd(model, sampler, notes, floors=(80.0, 60.0), parts=parts)
        lsd[name] = {"notes": len(notes), "mean_db": round(float(per_note[:, 0].mean()), 3),
                     "median_db": round(float(np.median(per_note[:, 0])), 3),
                     "mean_db_floor60": round(float(per_note[:, 1].mean()), 3), "where_db": parts}
    report["lsd"] = lsd
    report["lsd_definition"] = ("per frame sqrt(mean over bins (dB_gen - dB_real)^2), dB floored 80 dB (and, second "
                                "figure, 60 dB) under the real note's peak magnitude, averaged over all frames (hold + release) of each note, then over "
                                "notes; generated = reconstruction from the encoder mean, noiseless decode")

    life_notes = pick(test, args.life_notes, pitched=True)
    real, gen = ev.life(model, test, life_notes, seed=args.seed)
    report["life"] = {"notes": len(life_notes), "real_db_per_frame": round(real, 3), "generated_db_per_frame": round(gen, 3),
                      "ratio": round(gen / max(real, 1e-9), 3), "noise_gain": cfg.noise_gain, "harm_jitter": cfg.harm_jitter}
    # A sweep across the whole pad in 1.3 s (fast) and in 4 s (a slow gesture).
    report["morph_fast"] = ev.morph_flux(model, seed=args.seed, n_frames=240)
    report["morph"] = ev.morph_flux(model, seed=args.seed, n_frames=int(round(4.0 / cfg.hop_seconds)))

    # With CREPE, YIN runs too (cheap, and precise on clean harmonic notes: CREPE-tiny's
    # 20-cent bins bias some pitches by up to ~20 cents even on an ideal harmonic signal).
    trackers = [tracker] + (["yin"] if tracker == "crepe" else [])
    paths = {ex.id: ex.audio_path for ex in open_dataset(args.data)}
    real_notes = [i for i in pick(test, 10 * args.real_pitch_notes, pitched=True) if 36 <= test.pitch[i] <= 84]
    real_notes = real_notes[:args.real_pitch_notes]
    pairs = [(paths[test.rows[i]["id"]], float(test.pitch[i])) for i in real_notes if test.rows[i]["id"] in paths]
    for k, name in enumerate(trackers):
        suffix = "" if k == 0 else f"_{name}"
        report["pitch_generated" + suffix] = ev.pitch_accuracy_generated(
            model, n_points=args.pitch_points, seed=args.seed, method=name,
            pitches=np.arange(36.0, 84.0 + 1e-6, args.pitch_step), per_pitch=args.per_pitch)
        report["pitch_real" + suffix] = ev.pitch_accuracy_real(pairs, sample_rate=cfg.sample_rate, method=name)

    plane_mu, plane_fam = [], []
    for name, sampler in splits.items():
        notes = pick(sampler, 1500)
        plane_mu.append(ev.encode_notes(model, sampler, notes))
        plane_fam += [sampler.family[i] for i in notes]
    png = out / "plane.png"
    report["plane_png"] = str(png) if ev.plane_png(model, torch.cat(plane_mu), plane_fam, png) else None

    pg, pr = report["pitch_generated"], report["pitch_real"]
    report["pass"].update({
        "pitch_50c": pg["within_50c"] is not None and pg["within_50c"] >= TARGETS["pitch_50c"],
        "pitch_20c": pg["within_20c"] is not None and pg["within_20c"] >= TARGETS["pitch_20c"],
        "lsd_db": lsd["test"]["mean_db"] <= TARGETS["lsd_db"],
        "life_ratio": report["life"]["ratio"] >= TARGETS["life_ratio"],
        "morph_ratio": report["morph"]["ratio"] <= TARGETS["morph_ratio"],
    })
    report["pitch_step"] = args.pitch_step
    return _write_report(report, out, started)


def _write_report(report: dict, out, started: float) -> int:
    """Stamp the run's seconds, write `report.json` and `report.md` into `out`, print the markdown."""
    report["seconds"] = round(time.perf_counter() - started, 1)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "report.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def audio_rows(r: dict) -> list[str]:
    """Table rows of the final-audio figures (`livegen.bench.sound`)."""
    a, p = r["audio"], r["pass"]
    ok = {True: "pass", False: "MISS"}
    lv, ch, life, pitch = a["level"], a["chord"], a["life"], a.get("pitch")
    rows = [
        f"| note level, final audio: one velocity-100 MIDI 60 note, RMS 0.2-0.8 s, 5x5 pad grid (min / median / max) | "
        f"{lv['min_dbfs']:.1f} / {lv['median_dbfs']:.1f} / {lv['max_dbfs']:.1f} dBFS | -24..-14 dBFS | {ok[p['level_dbfs']]} |",
        f"| pad spread of that level | {lv['spread_db']:.1f} dB | <= 6 dB | {ok[p['pad_spread_db']]} |",
        f"| 8 velocity-127 notes held 2 s, worst of the grid: peak; leveller / limiter largest reduction | "
        f"{ch['peak_dbfs']:.2f} dBFS; {ch['leveller_max_db']:.1f} / {ch['limiter_max_db']:.1f} dB | <= ceiling | |",
        f"| limiter gain movement while that chord is held (pumping) | {ch['limiter_hold_range_db']:.2f} dB | <= 1 dB | "
        f"{ok[p['limiter_hold_range_db']]} |",
        f"| life, final audio: generated / real ({life['notes']} notes, MIDI 44-84 over the pad; real: six FluidR3 presets) | "
        f"{life['ratio']:.2f} ({life['generated_db']:.2f} / {life['real_db']:.2f} dB; median note {life['median_ratio']:.2f}) "
        f"| >= 0.5 | {ok[p['life_audio']]} |",
        f"| life of the partials (bins within 30 dB of the peak): generated / real | {life['strong_ratio']:.2f} "
        f"({life['strong_generated_db']:.2f} / {life['strong_real_db']:.2f} dB) | (not hiss) | |",
    ]
    ph = r.get("phase")
    if ph:
        gl = next(k for k in ph if k.startswith("GL-"))
        vq = (f"; {ph['streaming']['visqol']:.3f} / {ph[gl]['visqol']:.3f}" if ph["streaming"]["visqol"] is not None
              else "; (ViSQOL not installed)")
        rows.append(f"| phase reconstruction at this model's STFT, streaming inverter / offline {gl} ({len(ph['clips'])} clips "
                    f"of GM music and speech): SC; ViSQOL v3 audio MOS-LQO | {ph['streaming']['sc_db']:.2f} / "
                    f"{ph[gl]['sc_db']:.2f} dB{vq} | (reference) | |")
    if pitch:
        rows.append(f"| pitch, final audio within 50 / 20 cents ({pitch['tracker']}, {pitch['notes']} notes, MIDI 36-84 over the pad) | "
                    f"{pitch['within_50c']:.1%} / {pitch['within_20c']:.1%} | >= 97 / 90 % | "
                    f"{ok[p['pitch_audio_50c'] and p['pitch_audio_20c']]} |")
    return rows


def markdown(r: dict) -> str:
    head = ["| measure | value | target | |", "|---|---|---|---|"]
    audio = audio_rows(r) if "audio" in r else []
    if "lsd" not in r:
        return "\n".join(head + audio + ["", "Final audio: " + r.get("audio_definition", ""), ""])
    pg, pr, lsd = r["pitch_generated"], r["pitch_real"], r["lsd"]
    ok = {True: "pass", False: "MISS"}
    p = r["pass"]
    lines = head + audio + [
        f"| pitch, generated notes within 50 cents ({pg['tracker']}, {pg['notes']} notes, {pg['latent_points']} latent points, "
        f"MIDI 36-84, {r['pitch_step']}-semitone steps) | {pg['within_50c']:.1%} | >= 97% | {ok[p['pitch_50c']]} |",
        f"| pitch, generated notes within 20 cents | {pg['within_20c']:.1%} | >= 90% | {ok[p['pitch_20c']]} |",
        f"| pitch, real rendered notes within 50 / 20 cents (same tracker, {pr['notes']} notes) | "
        f"{pr['within_50c']:.1%} / {pr['within_20c']:.1%} | (reference) | |",
    ]
    if "pitch_generated_yin" in r:
        gy, ry = r["pitch_generated_yin"], r["pitch_real_yin"]
        lines += [
            f"| pitch with YIN: generated within 50 / 20 cents | {gy['within_50c']:.1%} / {gy['within_20c']:.1%} | (second tracker) | |",
            f"| pitch with YIN: real notes within 50 / 20 cents | {ry['within_50c']:.1%} / {ry['within_20c']:.1%} | (reference) | |",
        ]
    lines += [
        f"| LSD, held-out instruments ({lsd['test']['notes']} notes), 80 dB floor | {lsd['test']['mean_db']:.2f} dB | <= 4.5 dB | {ok[p['lsd_db']]} |",
        f"| LSD, held-out instruments, 60 dB floor | {lsd['test']['mean_db_floor60']:.2f} dB | (reference) | |",
        "| held-out LSD by part, 80 dB floor (frames: first 50 ms, held, released; RMS dB error by band) | "
        + ", ".join(f"{k} {v:.1f}" for k, v in lsd["test"].get("where_db", {}).items()) + " dB | (reference) | |",
    ]
    if "train" in lsd:
        lines.append(f"| LSD, training instruments ({lsd['train']['notes']} notes), 80 / 60 dB floor | "
                     f"{lsd['train']['mean_db']:.2f} / {lsd['train']['mean_db_floor60']:.2f} dB | (reference) | |")
    lines += [
        f"| life: generated / real frame-to-frame dB change in sustained notes | {r['life']['ratio']:.2f} "
        f"({r['life']['generated_db_per_frame']:.2f} / {r['life']['real_db_per_frame']:.2f} dB) | >= 0.5 | {ok[p['life_ratio']]} |",
        f"| morph: spectral flux during an XY sweep / steady notes at points on its path (8 stretches) | {r['morph']['ratio']:.2f} "
        f"({r['morph']['sweep_flux_db']:.2f} / {r['morph']['steady_flux_db']:.2f} dB; max noiseless jump "
        f"{r['morph']['max_noiseless_jump_db']:.2f} dB; whole pad in {r['morph']['sweep_seconds']} s) | <= 1.0 | {ok[p['morph_ratio']]} |",
        f"| morph vs one steady note at the centre, shared floor (earlier definition) | {r['morph']['centre_ratio']:.2f} "
        f"({r['morph']['centre_sweep_flux_db']:.2f} / {r['morph']['centre_steady_flux_db']:.2f} dB) | (reference) | |",
        f"| morph, fast: whole pad in {r['morph_fast']['sweep_seconds']} s | {r['morph_fast']['ratio']:.2f} "
        f"(max noiseless jump {r['morph_fast']['max_noiseless_jump_db']:.2f} dB) | (reference) | |",
        "",
        f"LSD: {r['lsd_definition']}.",
        "",
    ]
    return "\n".join(lines)
