"""Which f0 tracker ingestion uses: pYIN vs YIN (librosa) vs CREPE-tiny on melodies with known notes.

    python scripts/measure_trackers.py /work/data/own/clarinet [--files 6]

Ground truth: `make_material.py melodies`' note list (pitch sounding from onset to note-off; the
gaps unvoiced). Scored on 10 ms frames, the first and last 30 ms of each note left out:
raw pitch accuracy (voiced truth frames within 50 cents), voicing recall/false alarms and
seconds of compute per minute of audio.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from livegen.errors import ranged

METHODS = ("pyin", "yin", "crepe")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path,
                        help="a `make_material.py melodies` output folder (its note list FOLDER_notes.json beside it)")
    parser.add_argument("--files", type=ranged(int, 1), default=6, help="melodies to score, from the first (default 6)")
    args = parser.parse_args(argv)
    notes = args.folder.parent / f"{args.folder.name}_notes.json"
    if not args.folder.is_dir():
        parser.error(f"folder {str(args.folder)!r} does not exist; give the --out folder of `make_material.py melodies`")
    if not notes.is_file():
        parser.error(f"{str(notes)!r} is missing: {args.folder} needs the note list `make_material.py melodies` "
                     "writes beside it (render the melodies with it first)")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    folder, n_files = args.folder, args.files
    meta = json.loads((folder.parent / f"{folder.name}_notes.json").read_text())
    from livegen.data.features import load_audio
    from livegen.data.pitch import track_f0

    sr, hop = 16000, 160
    results = {}
    for method in METHODS:
        ok = voiced_ok = truth_voiced = false_alarm = truth_unvoiced = 0
        seconds = spent = 0.0
        for line in meta["lines"][:n_files]:
            y, _ = load_audio(str(folder / line["file"]), sample_rate=sr)
            t0 = time.perf_counter()
            f0, voiced, _ = track_f0(y, sr=sr, hop=hop, method=method)
            spent += time.perf_counter() - t0
            seconds += y.size / sr
            times = np.arange(f0.size) * hop / sr
            truth = np.full(f0.size, np.nan)
            edge = np.zeros(f0.size, bool)
            notes = line["notes"]
            for k, (t, p, _v) in enumerate(notes):
                end = notes[k + 1][0] if k + 1 < len(notes) else y.size / sr
                # note-off at 90 % of the slot before the gap (make_material's melody timing)
                sel = (times >= t) & (times < end)
                truth[sel] = p
                edge |= (times >= t - 0.03) & (times < t + 0.03)
            keep = ~edge
            tv = keep & np.isfinite(truth)
            midi = 69 + 12 * np.log2(np.maximum(f0, 1e-3) / 440.0)
            good = tv & voiced & (np.abs(midi - np.nan_to_num(truth)) * 100 <= 50)
            ok += int(good.sum())
            voiced_ok += int((tv & voiced).sum())
            truth_voiced += int(tv.sum())
            tu = keep & ~np.isfinite(truth)
            truth_unvoiced += int(tu.sum())
            false_alarm += int((tu & voiced).sum())
        results[method] = {
            "raw_pitch_accuracy_50c": round(ok / max(truth_voiced, 1), 4),
            "pitch_accuracy_on_voiced_50c": round(ok / max(voiced_ok, 1), 4),
            "voicing_recall": round(voiced_ok / max(truth_voiced, 1), 4),
            "voicing_false_alarm": round(false_alarm / max(truth_unvoiced, 1), 4) if truth_unvoiced else None,
            "seconds_per_audio_minute": round(spent / seconds * 60, 2),
        }
        print(method, results[method], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
