"""Render the material `livegen train --data ANY_FOLDER` is measured on (not part of the package).

    python scripts/make_material.py melodies --soundfont /usr/share/sounds/sf2/TimGM6mb.sf2 --program 71 --out DIR
    python scripts/make_material.py notes    --soundfont ... --program 71 --pitches 55-84 --out DIR
    python scripts/make_material.py grooves  --kit /usr/share/hydrogen/data/drumkits/ColomboAcousticDrumkit --out DIR

- melodies: monophonic lines in C major (so the black keys inside the range are pitches the
  recordings never contain), 10 s per file at 44.1 kHz stereo, written as WAV, FLAC and OGG
  in two sub-folders: a folder as a performer would have it.
- notes: one held note per semitone (the real notes the learned timbre is compared with).
- grooves: drum patterns sequenced from a Hydrogen kit's own samples (recordings, 44.1 kHz
  stereo), tempo and pattern drawn from the seed; `--seed` gives an unheard groove of the same kit.
Never give this script `musescore-general-soundfont`: that SoundFont is reserved for evaluation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from livegen.data.pcm import write_audio
from livegen.errors import ranged, seed_type

MAJOR = (0, 2, 4, 5, 7, 9, 11)
SEEDS = seed_type()
PROGRAMS = ranged(int, 0, 127, hint="a General MIDI program")
PITCHES = ranged(int, 0, 127, hint="a MIDI pitch")
FILES = ranged(int, 1)
SECONDS = ranged(float, above=0, high=3600)


def _synth(soundfont: str, sr: int, program: int):
    import fluidsynth

    synth = fluidsynth.Synth(gain=0.6, samplerate=float(sr))
    synth.setting("synth.reverb.active", 0)
    synth.setting("synth.chorus.active", 0)
    sfid = synth.sfload(soundfont)
    synth.program_select(0, sfid, 0, program)
    return synth


def _render(synth, seconds: float) -> np.ndarray:
    n = int(round(seconds * 44100))
    return np.asarray(synth.get_samples(n), dtype=np.float32).reshape(-1, 2) / 32768.0


def melodies(args) -> None:
    sr = 44100
    rng = np.random.default_rng(args.seed)
    synth = _synth(args.soundfont, sr, args.program)
    scale = [p for p in range(args.low, args.high + 1) if p % 12 in MAJOR]
    out = Path(args.out)
    meta = []
    for i in range(args.files):
        parts, t, notes = [], 0.0, []
        idx = int(rng.integers(0, len(scale)))
        while t < args.seconds:
            idx = int(np.clip(idx + rng.choice([-2, -1, -1, 1, 1, 2, 3, -3]), 0, len(scale) - 1))
            p, v = scale[idx], int(rng.integers(55, 121))
            dur = float(rng.choice([0.2, 0.3, 0.4, 0.6, 0.8]))
            synth.noteon(0, p, v)
            parts.append(_render(synth, dur * 0.9))
            synth.noteoff(0, p)
            gap = dur * 0.1 + (float(rng.choice([0.0, 0.0, 0.0, 0.3])))
            parts.append(_render(synth, gap))
            notes.append([round(t, 3), p, v])
            t += dur * 0.9 + gap
        y = np.concatenate(parts)[: int(args.seconds * sr)]
        sub = out / ("take_a" if i % 2 else "take_b")
        sub.mkdir(parents=True, exist_ok=True)
        ext = ("wav", "flac", "ogg")[i % 3]
        write_audio(sub / f"line_{i:02d}.{ext}", y, sr, seed=(args.seed, i))  # 16-bit WAV/FLAC: dithered
        meta.append({"file": f"{sub.name}/line_{i:02d}.{ext}", "notes": notes})
    (out.parent / f"{out.name}_notes.json").write_text(json.dumps({"scale_pitches": scale, "lines": meta}) + "\n")
    print(f"{args.files} lines x {args.seconds:g} s in {out}; pitches {scale}")


def notes(args) -> None:
    sr = 44100
    synth = _synth(args.soundfont, sr, args.program)
    lo, hi = (int(x) for x in args.pitches.split("-"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for p in range(lo, hi + 1):
        synth.noteon(0, p, 100)
        y = _render(synth, 1.0)
        synth.noteoff(0, p)
        y = np.concatenate([y, _render(synth, 0.3)])
        write_audio(out / f"note_{p:03d}.wav", y, sr, seed=p)
    print(f"notes {lo}-{hi} in {out}")


def grooves(args) -> None:
    kit = Path(args.kit)
    files = sorted(kit.glob("*.flac")) + sorted(kit.glob("*.wav"))

    def pick(*words):
        return [f for f in files if any(w in f.name.lower() for w in words)]

    voices = {"kick": pick("bass", "bd", "kick"), "snare": pick("snare"), "hat": pick("closed", "hat"),
              "open": pick("open"), "ride": pick("ride"), "tom": pick("tom"), "crash": pick("crash")}
    samples = {}
    sr = None
    for name, paths in voices.items():
        samples[name] = []
        for p in paths:
            y, r = sf.read(p, dtype="float32", always_2d=True)
            sr = sr or r
            if r != sr:
                continue
            samples[name].append(y[:, :2] if y.shape[1] >= 2 else np.repeat(y, 2, axis=1))
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(args.files):
        bpm = float(rng.uniform(85, 135))
        step = 60.0 / bpm / 4  # sixteenths
        n = int(args.seconds * sr)
        y = np.zeros((n + 4 * sr, 2), np.float32)
        kick = rng.random(16) < np.array([.95, 0, .1, 0, 0, 0, .3, .2, .6, 0, .3, 0, 0, .1, .2, 0])
        snare = rng.random(16) < np.array([0, 0, 0, 0, .95, 0, 0, .1, 0, 0, 0, .15, .95, 0, .1, .2])
        hat_every = int(rng.choice([1, 2, 2]))
        top = "ride" if samples["ride"] and rng.random() < 0.3 else "hat"
        t, k = 0.0, 0
        while t < args.seconds:
            s = k % 16
            hits = []
            if kick[s]:
                hits.append(("kick", 0.9))
            if snare[s]:
                hits.append(("snare", 0.85))
            if s % hat_every == 0:
                hits.append((top, 0.4 + 0.3 * (s % 4 == 0)))
            if s == 14 and rng.random() < 0.25 and samples["open"]:
                hits.append(("open", 0.5))
            if k % 64 == 60 and samples["tom"]:
                hits.append(("tom", 0.8))
            if k % 128 == 0 and samples["crash"]:
                hits.append(("crash", 0.7))
            for name, gain in hits:
                if not samples[name]:
                    continue
                smp = samples[name][int(rng.integers(0, len(samples[name])))]
                a = int(round((t + rng.normal(0, 0.004)) * sr))
                a = max(a, 0)
                g = gain * float(rng.uniform(0.7, 1.0))
                y[a:a + len(smp)] += g * smp[: len(y) - a]
            t += step * (1.0 + (0.12 if s % 2 == 0 else -0.12) * args.swing)
            k += 1
        y = y[:n]
        y *= 0.5 / max(float(np.abs(y).max()), 1e-6)
        write_audio(out / f"groove_{args.seed:03d}_{i:02d}.flac", y, sr, seed=(args.seed, i))
    print(f"{args.files} grooves x {args.seconds:g} s from {kit.name} in {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("melodies")
    m.add_argument("--soundfont", required=True)
    m.add_argument("--program", type=PROGRAMS, default=71)
    m.add_argument("--low", type=PITCHES, default=60)
    m.add_argument("--high", type=PITCHES, default=84)
    m.add_argument("--files", type=FILES, default=18)
    m.add_argument("--seconds", type=SECONDS, default=10.0)
    m.add_argument("--seed", type=SEEDS, default=0)
    m.add_argument("--out", required=True)
    n = sub.add_parser("notes")
    n.add_argument("--soundfont", required=True)
    n.add_argument("--program", type=PROGRAMS, default=71)
    n.add_argument("--pitches", default="60-84")
    n.add_argument("--out", required=True)
    g = sub.add_parser("grooves")
    g.add_argument("--kit", required=True)
    g.add_argument("--files", type=FILES, default=12)
    g.add_argument("--seconds", type=SECONDS, default=10.0)
    g.add_argument("--seed", type=SEEDS, default=0)
    g.add_argument("--swing", type=ranged(float, 0, 1, hint="0: straight sixteenths"), default=0.0,
                   help="swing of the off-beat sixteenths (0: straight, 1: the most)")
    g.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.what == "melodies" and not [p for p in range(args.low, args.high + 1) if p % 12 in MAJOR]:
        parser.error(f"--low {args.low} --high {args.high} hold no pitch of C major; give --low <= --high")
    if "musescore" in str(getattr(args, "soundfont", "")).lower():
        raise SystemExit("musescore-general-soundfont is reserved for evaluation; render from another SoundFont")
    {"melodies": melodies, "notes": notes, "grooves": grooves}[args.what](args)


if __name__ == "__main__":
    main()
