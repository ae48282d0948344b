"""`livegen bench master [WAV ...] [--takes DIR]`: the final audio checked as a mastering engineer does.

Given WAV files, it measures each; with `--takes DIR` it first writes a set of event files into
DIR (single notes over MIDI 21-108 at three velocities, a chord of 8 at velocity 127, 16 voices
at +12 dB gain with a 0 dBFS ceiling, the drone under XY moves, presets and morphs, a melody
with chords) and renders them with `livegen render` (a process of its own) at each
`--samplerates` rate. Measures (docs/sound.md, "Final audio checks"):
- sample peak and true peak (4x oversampled with soxr VHQ), dBFS / dBTP;
- DC offset; the first and last samples and the largest step within 20 ms of each end, against
  the take's 99th-percentile sample-to-sample change;
- non-finite and subnormal samples;
- integrated loudness, EBU R128 / ITU-R BS.1770-4 (K-weighting with the standard's 48 kHz
  coefficients after resampling to 48 kHz, 400 ms blocks, -70 LUFS and -10 LU gates);
- share of energy above `--band` Hz (the model's band: 12 kHz for a 24 kHz model), dB;
- for the `pitch` take: each note's pitch in cents from equal temperament (mean instantaneous
  frequency of its strongest partial, 0.35-1.15 s after note-on), and how far the rates differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import lfilter

K_SHELF = ([1.53512485958697, -2.69169618940638, 1.19839281085285], [1.0, -1.69065929318241, 0.73248077421585])
K_HIGHPASS = ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])
"""BS.1770-4's K-weighting at 48 kHz: the head's shelf, then the RLB high-pass."""
PITCH_NOTES = (36, 45, 57, 60, 69, 81, 93)
PITCH_STEP_S = 1.8
EDGE_S = 0.02


def _takes() -> dict[str, list[dict]]:
    """The event files `--takes` renders: name -> events."""
    def note(t, pitch, velocity, hold):
        return [{"t": t, "type": "note_on", "pitch": pitch, "velocity": velocity},
                {"t": round(t + hold, 3), "type": "note_off", "pitch": pitch}]

    drone_off = [{"t": 0.0, "type": "param", "name": "drone", "value": 0}]
    notes = list(drone_off)
    for i, (pitch, velocity) in enumerate((p, v) for p in (21, 33, 45, 60, 72, 84, 96, 108) for v in (1, 64, 127)):
        notes += note(round(0.2 + 1.4 * i, 3), pitch, velocity, 0.6)
    pitch = list(drone_off)
    for i, p in enumerate(PITCH_NOTES):
        pitch += note(round(0.1 + PITCH_STEP_S * i, 3), p, 100, 1.2)
    chord = [e for p in (48, 52, 55, 59, 62, 65, 69, 76) for e in note(0.5, p, 127, 2.0)]
    loud = [{"t": 0.0, "type": "param", "name": name, "value": value}
            for name, value in (("voices", 16), ("gain", 12), ("ceiling", 0))]
    many = (24, 31, 36, 40, 43, 48, 52, 55, 60, 64, 67, 72, 76, 84, 96, 108)
    loud += [e for p in many for e in note(0.3, p, 127, 2.0)]
    loud += [e for k in range(8) for p in many for e in note(round(3.0 + 0.25 * k, 3), p, 127, 0.1)]
    drone = [{"t": round(0.1 * k, 3), "type": "param", "name": axis, "value": round(0.5 + 0.45 * f(k * w), 4)}
             for k in range(40) for axis, f, w in (("x", np.sin, 0.4), ("y", np.cos, 0.3))]
    drone += [{"t": 4.2, "type": "param", "name": "drone_pitch", "value": 30},
              {"t": 5.0, "type": "param", "name": "drone_pitch", "value": 90}]
    presets = [{"t": 0.0, "type": "preset", "action": "store", "slot": 1, "values": {"x": 0.1, "y": 0.9, "gain": 0}},
               {"t": 0.0, "type": "preset", "action": "store", "slot": 2, "values": {"x": 0.9, "y": 0.1, "gain": -12}},
               {"t": 0.0, "type": "preset", "action": "store", "slot": 3, "values": {"x": 0.5, "y": 0.5}},
               {"t": 0.5, "type": "preset", "action": "recall", "slot": 1},
               {"t": 1.0, "type": "preset", "action": "morph", "slot": 2, "seconds": 1.5},
               *note(1.5, 64, 90, 1.5),
               {"t": 3.0, "type": "preset", "action": "loop", "seconds": 0.7, "slots": [1, 2, 3]},
               {"t": 6.0, "type": "preset", "action": "recall", "slot": 3}]
    melody = [e for i, p in enumerate((60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60))
              for e in note(round(0.5 + 0.4 * i, 3), p, 70 + 3 * i, 0.35)]
    melody += [e for j, ch in enumerate(((48, 55, 64, 67), (53, 57, 60, 65), (55, 59, 62, 67), (48, 52, 55, 60)))
               for p in ch for e in note(7.0 + 1.5 * j, p, 90, 1.3)]
    return {"notes": notes, "pitch": pitch, "chord8": chord, "fff16": loud, "drone": drone, "presets": presets,
            "typical": melody}


def loudness(y: np.ndarray, sr: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4, one channel); -inf for a silent take."""
    if sr != 48000:
        y = soxr.resample(np.asarray(y, dtype=np.float64), sr, 48000, "VHQ")
    y = lfilter(*K_HIGHPASS, lfilter(*K_SHELF, np.asarray(y, dtype=np.float64)))
    block, hop = 19200, 4800  # 400 ms, 75 % overlap
    if len(y) < block:
        return float("-inf")
    power = np.array([np.mean(y[i:i + block] ** 2) for i in range(0, len(y) - block + 1, hop)])
    power = power[power > 10 ** ((-70 + 0.691) / 10)]
    if not len(power):
        return float("-inf")
    relative = 10 * np.log10(power.mean()) - 10
    power = power[10 * np.log10(power) > relative]
    return float(-0.691 + 10 * np.log10(power.mean()))


def _db(x: float) -> float:
    return float(20 * np.log10(x)) if x > 0 else float("-inf")


def measure(path, *, band: float = 12000.0) -> dict:
    """The checks of one WAV file (first channel)."""
    info = sf.info(str(path))
    raw, sr = sf.read(str(path), dtype="float32", always_2d=True)
    raw = raw[:, 0]
    finite = np.isfinite(raw)
    y = np.where(finite, raw, 0).astype(np.float64)
    steps = np.abs(np.diff(y))
    moving = steps[steps > 0]
    typical = float(np.percentile(moving, 99)) if len(moving) else 0.0
    edge = max(1, int(EDGE_S * sr))
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2 if len(y) else np.zeros(1)
    freqs = np.fft.rfftfreq(len(y), 1 / sr) if len(y) else np.zeros(1)
    total = float(spectrum.sum())
    return {
        "file": os.path.basename(str(path)), "format": f"{info.format} {info.subtype} {info.channels} ch {sr} Hz",
        "seconds": round(len(y) / sr, 3),
        "peak_dbfs": round(_db(float(np.abs(y).max(initial=0.0))), 2),
        "true_peak_dbtp": round(_db(float(np.abs(soxr.resample(y, sr, 4 * sr, "VHQ")).max(initial=0.0))), 2),
        "dc": float(y.mean()) if len(y) else 0.0,
        "first": float(abs(y[0])) if len(y) else 0.0, "last": float(abs(y[-1])) if len(y) else 0.0,
        "edge_step": float(max(steps[:edge].max(initial=0.0), steps[-edge:].max(initial=0.0), abs(y[0]) if len(y) else 0,
                               abs(y[-1]) if len(y) else 0)),
        "typical_step": typical,
        "nonfinite": int((~finite).sum()),
        "subnormal": int(((raw != 0) & finite & (np.abs(raw) < np.finfo(np.float32).tiny)).sum()),
        "lufs": round(loudness(y, sr), 2),
        "above_band_db": round(10 * np.log10(spectrum[freqs > band].sum() / total), 1) if total > 0 and sr / 2 > band
        else None,
    }


def pitch_cents(path, notes=PITCH_NOTES, *, step: float = PITCH_STEP_S, first: float = 0.1) -> list[float]:
    """Cents from equal temperament of each note of the `pitch` take: the mean instantaneous
    frequency (slope of the unwrapped analytic phase) of its strongest partial among the first
    four, band-passed a semitone either side, over 0.35-1.15 s after note-on. A spectral peak
    would not do: a 10-cent vibrato at 5.5 Hz on a high partial puts more energy in the first
    sidebands than in the carrier."""
    y, sr = sf.read(str(path), dtype="float64", always_2d=True)
    y = y[:, 0]
    out = []
    for i, p in enumerate(notes):
        t0 = first + step * i
        seg = y[int((t0 + 0.35) * sr):int((t0 + 1.15) * sr)]
        spectrum = np.fft.rfft(seg)
        freqs = np.fft.rfftfreq(len(seg), 1 / sr)
        expected = 440.0 * 2 ** ((p - 69) / 12)
        bands = [(k, (freqs > k * expected * 2 ** (-1 / 12)) & (freqs < k * expected * 2 ** (1 / 12)))
                 for k in range(1, 5) if k * expected * 2 ** (1 / 12) < min(sr / 2, 11500)]
        k, band = max(bands, key=lambda kb: float(np.sum(np.abs(spectrum[kb[1]]) ** 2)))
        analytic = np.fft.ifft(np.concatenate([2 * np.where(band, spectrum, 0), np.zeros(len(seg) - len(spectrum))]))
        phase = np.unwrap(np.angle(analytic))
        t = np.arange(len(seg)) / sr
        edge = int(0.05 * sr)  # the band-pass rings at the segment's ends
        slope = np.polyfit(t[edge:-edge], phase[edge:-edge], 1)[0]
        out.append(round(float(1200 * np.log2(slope / (2 * np.pi * k * expected))), 2))
    return out


def render_takes(directory, *, model: str | None, samplerates) -> list[str]:
    """Write the event files into `directory` and render each at each rate with `livegen render`."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, events in _takes().items():
        events_path = os.path.join(directory, f"{name}.jsonl")
        with open(events_path, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in events)
        for rate in samplerates:
            out = os.path.join(directory, f"{name}_{rate}.wav")
            cmd = [sys.executable, "-m", "livegen", "render", events_path, "-o", out, "--samplerate", str(rate)]
            cmd += ["--model", model] if model else []
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
            paths.append(out)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="livegen bench master", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="WAV files to measure")
    parser.add_argument("--takes", metavar="DIR", help="write and render the standard takes into DIR, then measure them")
    parser.add_argument("--model", help="model directory for --takes (default: livegen render's)")
    parser.add_argument("--samplerates", default="44100,48000,96000", help="rates for --takes (comma-separated)")
    parser.add_argument("--band", type=float, default=12000.0, help="the model's band edge in Hz (default 12000)")
    args = parser.parse_args(argv)
    files = list(args.files)
    if args.takes:
        rates = [int(r) for r in args.samplerates.split(",") if r.strip()]
        files += render_takes(args.takes, model=args.model, samplerates=rates)
    if not files:
        parser.error("give WAV files, or --takes DIR")
    columns = ("peak_dbfs", "true_peak_dbtp", "dc", "first", "last", "edge_step", "typical_step", "nonfinite",
               "subnormal", "lufs", "above_band_db")
    print("| file | format | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 2) + "|")
    pitch = {}
    for path in files:
        m = measure(path, band=args.band)
        cells = [f"{m[c]:.2e}" if c in ("dc", "first", "last", "edge_step", "typical_step") else str(m[c])
                 for c in columns]
        print(f"| {m['file']} | {m['format']} | " + " | ".join(cells) + " |")
        if os.path.basename(str(path)).startswith("pitch"):
            pitch[m["file"]] = pitch_cents(path)
    if pitch:
        print("\npitch take, cents from equal temperament, MIDI " + ", ".join(map(str, PITCH_NOTES)))
        for name, cents in pitch.items():
            print(f"  {name}: {cents}")
        spread = np.ptp(np.array(list(pitch.values())), axis=0)
        print(f"  largest difference between files: {spread.max():.2f} cents")
    return 0
