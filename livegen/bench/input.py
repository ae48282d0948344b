"""`livegen bench input`: an audio input playing the model, measured on `livegen render --input` audio.

Material made at run time (deterministic): a monophonic flute melody with gaps (`melody`), the
same on a violin (`violin`), played with FluidR3 by default (the default model trained on its
single notes, not on melodies; `--soundfont` plays them with one it never heard), espeak-ng singing "laa" at
seven pitches with gaps (`sung`), speaking a sentence (`speech`) and whispering one (`whisper`,
unvoiced: the model's noise part alone should play). Each is rendered by the
`livegen render --input FILE -o OUT.wav` command (the default model, the pad at its centre,
default settings, or those `--set NAME=VALUE` gives) and measured on the 48 kHz file it writes:

- pitch: CREPE (torchcrepe "tiny", 10 ms hop, periodicity > 0.5 = voiced, as `livegen eval`)
  on the output; each voiced output frame is compared with the input's note `lag` earlier (the
  melodies: the note last struck; espeak-ng: the input's own pitch, CREPE or pYIN where CREPE
  hears no voice, at the nearest voiced input frame within 30 ms), `lag` being the delay of
  0-100 ms that fits the output best; a frame with no note to compare counts as a miss. Share
  within 50 cents (target >= 95 %). `onset`: the median delay from an onset of the input to
  the output's (1 ms levels crossing 20 dB under each one's loudest, after 30 ms of silence);
- gaps: the output's RMS over the input's silent stretches (10 ms frames under -60 dBFS, the
  first 60 ms of each dropped: the voice's release), against its RMS over the input's notes
  (frames within 30 dB of the input's loudest, now and 30 ms before) (target >= 30 dB below);
- timbre: the mean log-mel envelope (64 bands to 11 kHz) of the output's and the input's
  note frames, each levelled to 0 dB mean, RMS difference over the bands (target >= 3 dB:
  the output is the model's timbre, not the input passed through); beside it (the melodies),
  the same distance from the model's own voice playing the melody's notes as note events
  (`livegen render EVENTS`, the pad at its centre, over the same frames): small against the
  input's when the output is the model's timbre; and (`own-in`) that voice's own distance from
  the input: how far the model's timbre at the pad's centre is from the input's instrument, the
  most an output that is the model's timbre can reach there.
- unvoiced (`whisper`): the output's RMS over the input's loud frames (it sounds) and the share
  of them in which CREPE hears a voice (it should not: harmonics are off);
- cost: the engine's offline render at 48 kHz on one thread, best of `--repeats`, in the
  process's CPU time (on a shared machine the others' work does not count, the cache they take
  still does): nothing sounding, two held notes, and a held input tone followed (pad timbre;
  input timbre); the extra cost of following against that of two note voices (target <= 1).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from livegen.bench._report import REPO
from livegen.data.files import check_output_folder
from livegen.data.gm import RenderSettings, _Renderer
from livegen.data.pitch import hz_to_midi, track_f0
from livegen.engine.events import Event, note_off, note_on, param, write_events
from livegen.engine.input import FileFeed, input_param_specs
from livegen.errors import ParameterError, comma_list, ranged
from livegen.server import factory
from livegen.train.evaluate import track_pitch

SR = 48000
FLUID_R3 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
MELODY = (67, 69, 71, 72, 74, 72, 71, 69, 67, 64, 62, 60, 55, 60)
NOTE_S = 0.45
GAP_S = 0.25
ESPEAK_CLIPS = ("sung", "speech", "whisper")
SUNG_PITCHES = (20, 35, 50, 65, 80, 50, 35)
SPEECH = "Play it with your voice, and hear the model sing along."
WHISPER = "Whisper it and hear the model breathe."
SILENT_DB = -60.0
RELEASE_SKIP_S = 0.06
FRAME_S = 0.01
MAX_LAG_S = 0.1


def make_melody(path: Path, *, program: int, soundfont: str = FLUID_R3, rate: int = 24000) -> list:
    """A monophonic melody (`MELODY`) with gaps, written to `path`; returns [(onset s, MIDI)]."""
    import soundfile as sf

    renderer = _Renderer(RenderSettings(soundfont=soundfont, sample_rate=rate, hold_s=NOTE_S, release_s=0.1))
    parts, notes, t = [np.zeros(int(0.2 * rate), np.float32)], [], 0.2
    for midi in MELODY:
        y = renderer.note(0, program, midi, 100)
        notes.append((t, float(midi)))
        parts += [y, np.zeros(int(GAP_S * rate), np.float32)]
        t += (len(y) + int(GAP_S * rate)) / rate
    sf.write(path, np.concatenate(parts), rate, subtype="FLOAT")
    return notes


def make_espeak(path: Path, *, sung: bool = False, whisper: bool = False) -> None:
    """espeak-ng singing "laa" at `SUNG_PITCHES` with gaps, speaking `SPEECH`, or whispering `WHISPER`."""
    import soundfile as sf

    if not sung:
        voice, text = ("en+whisper", WHISPER) if whisper else ("en", SPEECH)
        subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(path), text], check=True)
        return
    parts, rate = [], 22050
    with tempfile.TemporaryDirectory() as tmp:
        for i, pitch in enumerate(SUNG_PITCHES):
            one = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en", "-s", "90", "-p", str(pitch), "-w", str(one), "laa"], check=True)
            y, rate = sf.read(one, dtype="float32")
            parts += [y, np.zeros(int(GAP_S * rate), np.float32)]
    sf.write(path, np.concatenate(parts), rate, subtype="FLOAT")


def _render(out: Path, *args: str) -> np.ndarray:
    """`livegen render ARGS -o OUT` in a process of its own; the 48 kHz mono output."""
    import soundfile as sf

    result = subprocess.run([sys.executable, "-m", "livegen", "render", *args, "-o", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    if result.returncode:
        raise RuntimeError(f"livegen render {' '.join(args)} failed: {result.stderr.strip()}")
    y, sr = sf.read(out, dtype="float32")
    assert sr == SR
    return y


def render(input_path: Path, out: Path, *extra: str) -> np.ndarray:
    """`livegen render --input` in a process of its own; the 48 kHz mono output."""
    return _render(out, "--input", str(input_path), *extra)


def render_notes(notes: list, events_path: Path, out: Path, *, seconds: float) -> np.ndarray:
    """The model's own voice playing `notes` ([(onset s, MIDI)], each held `NOTE_S`, velocity 100,
    as `make_melody` plays them) as note events through `livegen render`, drone off, the pad at
    its centre (the defaults, as for `render`); the 48 kHz mono output, `seconds` long."""
    events = [param("drone", 0)]
    for t, midi in notes:
        events += [note_on(midi, 100, t=t), note_off(midi, t=t + NOTE_S)]
    write_events(events_path, events)
    return _render(out, str(events_path), "--seconds", f"{seconds:.3f}")


def mel_envelope(y: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The mean log-mel envelope (dB, 64 bands to 11 kHz, levelled to 0 dB mean) of the 10 ms
    frames of `y` (48 kHz) where `frames` is true."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=int(FRAME_S * SR), n_mels=64,
                                         fmax=11000, center=False)
    mel_db = 10 * np.log10(np.maximum(mel, 1e-12))
    k = min(mel_db.shape[1], len(frames))
    env = 10 * np.log10(np.mean(10 ** (mel_db[:, :k][:, frames[:k]] / 10), axis=1))
    return env - env.mean()


def envelope_distance(a: np.ndarray, b: np.ndarray, frames: np.ndarray) -> float:
    """RMS difference (dB) over the bands of the mel envelopes of `a` and `b` over `frames`."""
    return float(np.sqrt(np.mean((mel_envelope(a, frames) - mel_envelope(b, frames)) ** 2)))


def frame_db(y: np.ndarray, sr: int, *, seconds: float = FRAME_S) -> np.ndarray:
    """RMS dBFS of consecutive frames of `seconds`."""
    n = int(round(seconds * sr))
    m = len(y) // n
    ms = np.mean(y[:m * n].astype(np.float64).reshape(m, n) ** 2, axis=1)
    return 10 * np.log10(np.maximum(ms, 1e-14))


def onsets_ms(y: np.ndarray, *, threshold_db: float) -> np.ndarray:
    """Where the 1 ms level first rises over `threshold_db` after 30 ms under `SILENT_DB`."""
    db = frame_db(y, SR, seconds=0.001)
    out, quiet = [], 0
    for k, v in enumerate(db):
        if v > threshold_db and quiet >= 30:
            out.append(k)
        quiet = quiet + 1 if v < SILENT_DB else (0 if v > threshold_db else quiet)
    return np.array(out, float)


def latency_ms(x: np.ndarray, y: np.ndarray) -> float:
    """Median delay from each onset of the input to the output's next, at 20 dB under each one's
    loudest 10 ms."""
    a = onsets_ms(x, threshold_db=frame_db(x, SR).max() - 20)
    b = onsets_ms(y, threshold_db=frame_db(y, SR).max() - 20)
    delays = [b[b >= t][0] - t for t in a if np.any((b >= t) & (b < t + 100))]
    return float(np.median(delays)) if delays else float("nan")


def crepe(y: np.ndarray, sr: int):
    import soxr

    midi, voiced = track_pitch(np.ascontiguousarray(soxr.resample(y, sr, 16000), np.float32), 16000, method="crepe")
    return midi, voiced


def input_pitch(x: np.ndarray):
    """(MIDI, voiced) of the input per 10 ms frame: CREPE, and where CREPE hears no voice, pYIN
    (`livegen.data.pitch`: CREPE-tiny calls espeak-ng's low "laa" unvoiced for whole syllables)."""
    import soxr

    midi, voiced = crepe(x, SR)
    f0, pvoiced, _ = track_f0(soxr.resample(x, SR, 16000), sr=16000, hop=160, method="pyin")
    k = min(len(midi), len(f0))
    fill = ~voiced[:k] & pvoiced[:k]
    midi, voiced = midi.copy(), voiced.copy()
    midi[:k][fill] = hz_to_midi(f0[:k][fill])
    voiced[:k] |= fill
    return midi, voiced


def measure_clip(x: np.ndarray, x_sr: int, y: np.ndarray, *, notes: list | None,
                 own: np.ndarray | None = None) -> dict:
    """Pitch, gap and timbre figures of output `y` (48 kHz) against input `x` (see the module's
    note); `own`: the model's own voice playing the same notes (48 kHz), for the timbre beside it."""
    import soxr

    x48 = soxr.resample(x, x_sr, SR).astype(np.float32)
    x_db, y_db = frame_db(x48, SR), frame_db(y, SR)
    y_midi, y_voiced = crepe(y, SR)
    n = len(y_midi)
    ref = np.full(n, np.nan)
    if notes is not None:  # the output follows the notes with the delay that fits it best
        onsets = np.array([t for t, _ in notes])
        pitches = np.array([p for _, p in notes])
        best = -1.0
        for delay in np.arange(0.0, MAX_LAG_S + 0.0005, 0.001):
            i = np.searchsorted(onsets, np.arange(n) * FRAME_S - delay, side="right") - 1
            r = np.where(i >= 0, pitches[np.maximum(i, 0)], np.nan)
            share = np.mean(np.abs(y_midi[y_voiced] - r[y_voiced]) <= 0.5)
            if share > best:
                best, ref, lag_ms = share, r, 1000.0 * delay
    else:  # the input's own pitch: the nearest voiced frame within 30 ms, the delay that fits best
        x_midi, x_voiced = input_pitch(x48)
        voiced_idx = np.flatnonzero(x_voiced)
        best = -1.0
        for shift in range(int(round(MAX_LAG_S / FRAME_S)) + 1):
            r = np.full(n, np.nan)
            if len(voiced_idx):
                j = np.arange(n) - shift
                pos = np.clip(np.searchsorted(voiced_idx, j), 1, len(voiced_idx) - 1)
                near = np.where(np.abs(voiced_idx[pos] - j) < np.abs(voiced_idx[pos - 1] - j),
                                voiced_idx[pos], voiced_idx[pos - 1])
                r = np.where(np.abs(near - j) <= 3, x_midi[near], np.nan)
            share = np.mean(np.abs(y_midi[y_voiced] - r[y_voiced]) <= 0.5)
            if share > best:
                best, ref, lag_ms = share, r, 1000.0 * shift * FRAME_S
    cents = np.abs(y_midi[y_voiced] - ref[y_voiced]) * 100.0
    within = float(np.mean(np.nan_to_num(cents, nan=1e9) <= 50)) if cents.size else float("nan")

    # An output frame is in a gap when the input was silent over it and the `RELEASE_SKIP_S` before
    # (the output answers the input after it, never before, so no alignment is needed).
    m = min(len(x_db), len(y_db))
    xs, ys = x_db[:m], y_db[:m]
    silent = xs < SILENT_DB
    skip = int(round(RELEASE_SKIP_S / FRAME_S))
    gap = np.zeros(m, bool)
    run = 0
    for k in range(m):
        run = run + 1 if silent[k] else 0
        gap[k] = run > skip
    loud = np.zeros(m, bool)  # a note's frames: the input loud now and 30 ms before
    loud[3:] = (xs[3:] > xs.max() - 30) & (xs[:-3] > xs.max() - 30)
    power = lambda d: 10 * np.log10(np.mean(10 ** (d / 10)))  # noqa: E731
    note_db = power(ys[loud])
    gap_db = power(ys[gap]) if gap.any() else float("nan")

    timbre = envelope_distance(x48, y, loud)
    own_timbre = envelope_distance(own, y, loud) if own is not None else float("nan")
    own_input = envelope_distance(own, x48, loud) if own is not None else float("nan")
    return {"voiced_frames": int(y_voiced.sum()), "within_50c": within, "note_db": note_db, "gap_db": gap_db,
            "gap_below_db": note_db - gap_db, "timbre_db": timbre, "own_timbre_db": own_timbre,
            "own_input_db": own_input, "lag_ms": lag_ms,
            "onset_ms": latency_ms(x48, y)}


def measure_unvoiced(x: np.ndarray, x_sr: int, y: np.ndarray) -> dict:
    """The output's level over the input's loud frames (within 30 dB of its loudest) and the share
    of them CREPE hears a voice in, in the output and in the input."""
    import soxr

    x48 = soxr.resample(x, x_sr, SR).astype(np.float32)
    x_db, y_db = frame_db(x48, SR), frame_db(y, SR)
    _, y_voiced = crepe(y, SR)
    _, x_voiced = crepe(x48, SR)
    m = min(len(x_db), len(y_db), len(y_voiced), len(x_voiced))
    loud = x_db[:m] > x_db.max() - 30
    return {"level_db": float(10 * np.log10(np.mean(10 ** (y_db[:m][loud] / 10)))),
            "output_voiced": float(y_voiced[:m][loud].mean()), "input_voiced": float(x_voiced[:m][loud].mean())}


def cost(model, *, seconds: float, repeats: int) -> dict:
    """Seconds per second of output (best of `repeats`) of each engine setting (see the module's note)."""
    rate = model.config.sample_rate
    t = np.arange(int((seconds + 0.5) * rate)) / rate
    held = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    loaded = factory.LoadedModel("bench", model)
    settings = {
        "nothing": ([], False),
        "two held notes": ([Event("note_on", t=0.0, pitch=55, velocity=100),
                            Event("note_on", t=0.0, pitch=62, velocity=100)], False),
        "input followed (pad timbre)": ([], True),
        "input followed (input timbre)": ([Event("param", t=0.0, name="input_timbre", value=1)], True),
    }
    best = {}
    for _ in range(repeats):
        for name, (events, with_input) in settings.items():
            feed = FileFeed(held, samplerate=rate, model_rate=rate) if with_input else None
            engine = loaded.engine(samplerate=SR, seed=0, input_feed=feed)
            engine.render_events([Event("param", t=0.0, name="drone", value=0), *events], seconds=0.3)
            started = time.process_time()
            engine.render(seconds)
            spent = (time.process_time() - started) / seconds
            best[name] = min(best.get(name, np.inf), spent)
    return best


def melody_program(item: str) -> tuple[str, int]:
    """An argparse `type`: one `NAME=PROGRAM` of `--melodies` (a GM program 0..127 played as a melody)."""
    name, equals, program = (part.strip() for part in item.partition("="))
    if not equals or not program.isdigit() or not 0 <= int(program) <= 127 or not re.fullmatch(r"[\w-]+", name):
        raise argparse.ArgumentTypeError(f"{item!r}: give NAME=PROGRAM, a name of letters, digits, _ or -, and a "
                                         "GM program 0..127, e.g. clarinet=71")
    if name in ESPEAK_CLIPS:
        raise argparse.ArgumentTypeError(f"{item!r}: {name} is an espeak-ng clip's name; call the melody otherwise")
    return name, int(program)


def parse_settings(items: list[str]) -> list[Event]:
    """`NAME=VALUE` items as parameter events at 0 s (checked against the input's parameters)."""
    known = {spec.name: spec for spec in input_param_specs()}
    events = []
    for item in items:
        name, _, value = item.partition("=")
        if name not in known:
            raise ParameterError(f"--set {item!r}: not an input parameter; one of {', '.join(sorted(known))}")
        try:
            number = float(value)
        except ValueError:
            raise ParameterError(f"--set {item!r}: give NAME=NUMBER, e.g. input_dynamics=1") from None
        spec = known[name]
        if not spec.minimum <= number <= spec.maximum:
            raise ParameterError(f"--set {item!r}: {name} takes {spec.minimum:g}..{spec.maximum:g}")
        events.append(param(name, number))
    return events


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="livegen bench input", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="folder for the inputs and renders (default: a temporary one)")
    parser.add_argument("--seconds", type=ranged(float, above=0), default=5.0, help="audio rendered per cost figure")
    parser.add_argument("--repeats", type=ranged(int, 1), default=3, help="cost: best of this many")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost figures")
    parser.add_argument("--no-clips", action="store_true", help="skip the clips (the cost figures alone)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter the clips are rendered with (e.g. input_dynamics=1); repeatable "
                             "(default: the defaults)")
    parser.add_argument("--soundcheck", action="store_true",
                        help="render each clip with `--soundcheck` (input_gain set from the clip, as a performer's "
                             "sound check would) instead of input_gain 0")
    parser.add_argument("--soundfont", default=FLUID_R3,
                        help="SoundFont the melodies are played with (default FluidR3, whose notes the default "
                             "model trained on; e.g. /usr/share/sounds/sf2/TimGM6mb.sf2, or MuseScore_General for "
                             "evaluation, for instruments it never heard)")
    parser.add_argument("--melodies", type=comma_list(melody_program), default=[("melody", 73), ("violin", 40)],
                        metavar="NAME=PROGRAM,...",
                        help="the melody clips: a name and the GM program (0-127) that plays the melody, "
                             "e.g. clarinet=71,trumpet=56 (default melody=73,violin=40: flute and violin)")
    args = parser.parse_args(argv)
    if len({name for name, _ in args.melodies}) != len(args.melodies) or not args.melodies:
        parser.error(f"--melodies: give each melody a name of its own (got {', '.join(n for n, _ in args.melodies)})")
    if args.out:
        check_output_folder(args.out, "--out")
    settings = parse_settings(args.set)  # a bad --set is said before the model loads

    import soundfile as sf
    import torch

    torch.set_num_threads(1)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="livegen-input-"))
    out.mkdir(parents=True, exist_ok=True)
    loaded = factory.load(None, log=lambda text: None)
    if not Path(args.soundfont).is_file():
        raise ParameterError(f"--soundfont {args.soundfont}: no such file (Debian: fluid-soundfont-gm, "
                             "timgm6mb-soundfont, musescore-general-soundfont)")
    print(f"model: {loaded.name}; melodies on {Path(args.soundfont).name}; output {SR} Hz; pad at its centre, "
          f"{'settings ' + ', '.join(args.set) if args.set else 'default settings'}"
          f"{', input_gain from a sound check of each clip' if args.soundcheck else ''}; "
          f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    clips = {} if args.no_clips else {
        **{name: (lambda p, program=program: make_melody(p, program=program, soundfont=args.soundfont))
           for name, program in args.melodies},
        "sung": lambda p: make_espeak(p, sung=True), "speech": lambda p: make_espeak(p, sung=False)}
    extra = ("--soundcheck",) if args.soundcheck else ()
    if settings:
        write_events(out / "settings.jsonl", settings)
        extra = (str(out / "settings.jsonl"), *extra)
    if clips:
        print("\nfollowing an input, on `livegen render --input` audio (targets: pitch >= 95 %, gaps >= 30 dB, "
              "timbre >= 3 dB)")
        print(f"  {'input':32s} {'voiced':>7s} {'<=50c':>7s} {'notes':>8s} {'gaps':>8s} {'below':>7s} "
              f"{'timbre':>7s} {'own':>7s} {'own-in':>7s} {'lag':>6s} {'onset':>6s}")
        for name, make in clips.items():
            path = out / f"{name}.wav"
            notes = make(path)
            x, x_sr = sf.read(path, dtype="float32")
            y = render(path, out / f"{name}.out.wav", *extra)
            own = None if notes is None else render_notes(notes, out / f"{name}.notes.jsonl",
                                                          out / f"{name}.notes.wav", seconds=len(y) / SR)
            r = measure_clip(x, x_sr, y, notes=notes, own=own)
            own_text = (f"{r['own_timbre_db']:5.1f}dB {r['own_input_db']:5.1f}dB" if own is not None
                        else f"{'-':>7s} {'-':>7s}")
            print(f"  {name:32s} {r['voiced_frames']:7d} {100 * r['within_50c']:6.1f}% {r['note_db']:6.1f}dB "
                  f"{r['gap_db']:6.1f}dB {r['gap_below_db']:5.1f}dB {r['timbre_db']:5.1f}dB {own_text} "
                  f"{r['lag_ms']:4.0f}ms {r['onset_ms']:4.0f}ms")
        path = out / "whisper.wav"
        make_espeak(path, whisper=True)
        x, x_sr = sf.read(path, dtype="float32")
        r = measure_unvoiced(x, x_sr, render(path, out / "whisper.out.wav", *extra))
        print(f"  {'whisper (unvoiced)':32s} output {r['level_db']:.1f} dBFS over the input's loud frames; "
              f"CREPE hears a voice in {100 * r['output_voiced']:.1f} % of them "
              f"(in the input: {100 * r['input_voiced']:.1f} %)")
        print("  (notes / gaps: the output's RMS dBFS over the input's notes / silent stretches; timbre / own: the "
              "output's mel envelope from the input's / from the model's own voice playing the same notes as note "
              "events; own-in: the model's own voice from the input's; lag: the delay that fits the pitch best; onset: median delay from the input's onsets to the "
              "output's)")

    if not args.no_cost:
        best = cost(loaded.model, seconds=args.seconds, repeats=args.repeats)
        base = best["nothing"]
        notes2 = best["two held notes"] - base
        print(f"\ncost: engine render at {SR} Hz, one thread, CPU time, best of {args.repeats} x {args.seconds:g} s "
              "(x real time; extra: seconds per output second over nothing sounding)")
        for name, spent in best.items():
            extra = spent - base
            ratio = f"   {extra / notes2:4.2f} x two notes' extra" if name.startswith("input") and notes2 > 0 else ""
            print(f"  {name:32s} {1 / spent:6.1f}x   extra {1000 * extra:6.2f} ms/s{ratio}")
    print(f"\nfiles: {out}")
    return 0
