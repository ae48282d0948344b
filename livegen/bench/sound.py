"""Measurements of the final audio the engine writes (`livegen render`), not of decoded frames.

Definitions (the same in `livegen eval`'s report and the model card):
- note level: RMS dBFS of one velocity-100 MIDI 60 note at default gain, drone off, over
  0.2-0.8 s after its note-on, at each point of a 5x5 grid over the XY pad (0, 0.25 .. 1 on
  each axis); pad spread = loudest minus quietest point.
- chord peak: eight velocity-127 notes (MIDI 48-76) struck together and held 2 s at a pad
  point; the output's peak dBFS, the leveller's and the limiter's largest gain reduction, and
  how far the limiter's gain moves 0.5-2 s after the strike (pumping), the worst over the grid.
- life: mean |dB[m+1] - dB[m]| over bins and frames of the note's |STFT| at 22.05 kHz (n_fft
  1024, hop 256, periodic Hann, `center=False`), dB floored 60 dB under the note's peak, frames
  lying 0.2-0.8 s into each note, MIDI 44-84; compared with real notes of six FluidR3 presets
  rendered the same way (`REAL_PROGRAMS`).
- pitch: CREPE (torchcrepe "tiny", periodicity > 0.5 = voiced) or YIN on the same final audio
  at 16 kHz, frames 0.05-1.0 s into each note, MIDI 36-84, each pitch at two pad points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from livegen.data.gm import RenderSettings, _Renderer
from livegen.dsp import stft_magnitude
from livegen.engine.notes import spectral_engine
from livegen.engine.events import Event
from livegen.session.replay import output_latency
from livegen.train.evaluate import track_pitch

LIFE_RATE = 22050
LIFE_FFT = 1024
LIFE_HOP = 256
LIFE_FLOOR_DB = 60.0
LIFE_WINDOW = (0.2, 0.8)
LEVEL_WINDOW = (0.2, 0.8)
GRID = 5
CHORD = (48, 52, 55, 60, 64, 67, 72, 76)
REAL_PROGRAMS = {"piano": 0, "organ": 16, "violin": 40, "trumpet": 56, "oboe": 68, "saw lead": 81}
"""FluidR3 (bank 0) presets whose notes set the life reference (never the evaluation SoundFont)."""
FLUID_R3 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
START_S = 0.5
"""First note-on: the drone switched off at t = 0 has released by then."""


@dataclass(frozen=True)
class Note:
    x: float
    y: float
    pitch: float
    velocity: int = 100
    hold: float = 1.0


def pad_grid(n: int = GRID) -> list[tuple[float, float]]:
    """n x n points over the whole pad, corners included."""
    ticks = np.linspace(0.0, 1.0, n)
    return [(float(x), float(y)) for y in ticks for x in ticks]


def render_notes(model, notes, *, samplerate: int = 48000, seed: int = 0, gap: float = 0.6,
                 params: dict | None = None, chord: bool = False):
    """Render `notes` one after another (all at once with `chord`) through the engine, drone off.

    Returns (audio, onsets, reduction): the output, each note's onset in output samples (the
    note-on's sample plus the inverter's and resampler's delay), and `[blocks, 2]` gain reduction
    in dB of the leveller and the limiter after each output block.
    """
    engine = spectral_engine(model, samplerate=samplerate, seed=seed)
    events = [Event("param", t=0.0, name="drone", value=0)]
    for name, value in (params or {}).items():
        events.append(Event("param", t=0.0, name=name, value=value))
    t = START_S
    times = []
    for note in notes:
        events += [Event("param", t=t - 0.25, name="x", value=note.x), Event("param", t=t - 0.25, name="y", value=note.y),
                   Event("note_on", t=t, pitch=note.pitch, velocity=note.velocity),
                   Event("note_off", t=t + note.hold, pitch=note.pitch)]
        times.append(t)
        if not chord:
            t += note.hold + gap
    end = max(times) + max(n.hold for n in notes) + gap
    engine.schedule(events)
    total = int(round(end * samplerate))
    out = np.zeros(total, np.float32)
    limiter = []
    filled = 0
    while filled < total:
        block = engine.step()
        n = min(len(block), total - filled)
        out[filled:filled + n] = block[:n]
        filled += len(block)
        limiter.append(engine.chain.reduction_db)
    cfg = engine.config
    delay = engine.inverter.latency * samplerate / cfg.sample_rate + output_latency(cfg.sample_rate, samplerate)
    hop_out = cfg.hop * samplerate / cfg.sample_rate
    onsets = [int(math.ceil(s * samplerate / hop_out - 1e-9) * hop_out + delay) for s in times]
    return out, onsets, np.array(limiter)


def _segment(audio, start: int, window, sr: int) -> np.ndarray:
    return audio[start + int(window[0] * sr):start + int(window[1] * sr)]


def rms_dbfs(x: np.ndarray) -> float:
    return 10.0 * math.log10(max(float(np.mean(np.square(x, dtype=np.float64))), 1e-20))


def note_levels(model, *, grid: int = GRID, pitch: float = 60.0, velocity: int = 100, samplerate: int = 48000,
                seed: int = 0, params: dict | None = None) -> np.ndarray:
    """`[grid, grid]` RMS dBFS of one note at each pad point (row = y, column = x)."""
    notes = [Note(x, y, pitch, velocity) for x, y in pad_grid(grid)]
    audio, onsets, _ = render_notes(model, notes, samplerate=samplerate, seed=seed, params=params)
    levels = [rms_dbfs(_segment(audio, o, LEVEL_WINDOW, samplerate)) for o in onsets]
    return np.array(levels).reshape(grid, grid)


def chord_peaks(model, *, points=None, samplerate: int = 48000, seed: int = 0, params: dict | None = None) -> dict:
    """Eight velocity-127 notes held 2 s at each point: the worst output peak, the largest gain
    reductions of the leveller and the limiter, and how far the limiter's gain moves while the
    chord is held (0.5-2 s after the strike; the pumping a listener would hear)."""
    points = points or pad_grid(GRID)
    worst = {"peak_dbfs": -200.0, "leveller_max_db": 0.0, "limiter_max_db": 0.0, "limiter_hold_range_db": 0.0,
             "point": None}
    for x, y in points:
        notes = [Note(x, y, p, 127, hold=2.0) for p in CHORD]
        audio, onsets, reduction = render_notes(model, notes, samplerate=samplerate, seed=seed, params=params, chord=True)
        peak = 20.0 * math.log10(max(float(np.abs(audio).max()), 1e-10))
        block = len(audio) / len(reduction)
        held = reduction[int((onsets[0] + 0.5 * samplerate) / block):int((onsets[0] + 2.0 * samplerate) / block), 1]
        if peak > worst["peak_dbfs"]:
            worst.update(peak_dbfs=round(peak, 2), point=(round(x, 2), round(y, 2)))
        worst["leveller_max_db"] = round(max(worst["leveller_max_db"], float(reduction[:, 0].max())), 2)
        worst["limiter_max_db"] = round(max(worst["limiter_max_db"], float(reduction[:, 1].max())), 2)
        worst["limiter_hold_range_db"] = round(max(worst["limiter_hold_range_db"], float(np.ptp(held))), 2)
    return worst


def note_db(audio: np.ndarray, sr: int, onset: int = 0) -> np.ndarray:
    """The note's floored dB spectrogram `[frames, bins]` as `life` reads it (22.05 kHz, frames
    0.2-0.8 s into the note, 60 dB under its peak)."""
    import soxr

    seg = audio[onset:onset + int((LIFE_WINDOW[1] + 0.1) * sr)]
    y = soxr.resample(seg, sr, LIFE_RATE) if sr != LIFE_RATE else seg
    S = stft_magnitude(np.ascontiguousarray(y, dtype=np.float32), n_fft=LIFE_FFT, hop=LIFE_HOP)
    centres = (np.arange(S.shape[0]) * LIFE_HOP + LIFE_FFT / 2) / LIFE_RATE
    S = S[(centres >= LIFE_WINDOW[0]) & (centres <= LIFE_WINDOW[1])]
    peak = max(float(S.max()), 1e-12)
    return 20.0 * np.log10(np.maximum(S, peak * 10 ** (-LIFE_FLOOR_DB / 20)) / peak)


def life_of(audio: np.ndarray, sr: int, onset: int = 0) -> tuple[float, float]:
    """(life, strong life) of one note: the mean |dB[m+1] - dB[m]| over all bins, and over the
    bins within 30 dB of the peak (the partials: vibrato and shimmer, not the hiss between them)."""
    db = note_db(audio, sr, onset)
    change = np.abs(np.diff(db, axis=0))
    strong = np.maximum(db[1:], db[:-1]) > -30.0
    return float(change.mean()), float(change[strong].mean()) if strong.any() else 0.0


def real_notes(pitches, *, samplerate: int = 48000, velocity: int = 100, programs=None):
    """{name: [mono notes]} of FluidR3 presets (1 s held, 0.5 s release)."""
    renderer = _Renderer(RenderSettings(soundfont=FLUID_R3, sample_rate=samplerate, hold_s=1.0, release_s=0.5))
    return {name: [renderer.note(0, program, int(p), velocity) for p in pitches]
            for name, program in (programs or REAL_PROGRAMS).items()}


def life_pitches(step: int = 4) -> list[int]:
    return list(range(44, 85, step))


def real_life(*, pitches=None, samplerate: int = 48000) -> dict:
    """Life of the six real instruments: per instrument and the mean over all their notes."""
    pitches = pitches or life_pitches()
    per = {}
    vals = []
    for name, notes in real_notes(pitches, samplerate=samplerate).items():
        mine = [life_of(n, samplerate) for n in notes]
        per[name] = round(float(np.mean([v[0] for v in mine])), 3)
        vals += mine
    return {"mean_db": round(float(np.mean([v[0] for v in vals])), 3),
            "strong_db": round(float(np.mean([v[1] for v in vals])), 3), "by_instrument": per, "notes": len(vals)}


def generated_notes(*, pitches, grid: int = GRID, per_pitch: int = 2) -> list[Note]:
    """Each pitch at `per_pitch` pad points, rotating through the grid."""
    points = pad_grid(grid)
    notes = []
    for k, p in enumerate(pitches):
        for r in range(per_pitch):
            x, y = points[(k * per_pitch + r) * 7 % len(points)]
            notes.append(Note(x, y, float(p), 100))
    return notes


def render_set(model, notes, *, samplerate: int = 48000, seed: int = 0, params: dict | None = None):
    """[(note, audio of that note from its onset, 1.5 s)] rendering notes grouped by pad point."""
    out = []
    by_point: dict = {}
    for note in notes:
        by_point.setdefault((note.x, note.y), []).append(note)
    for group in by_point.values():
        audio, onsets, _ = render_notes(model, group, samplerate=samplerate, seed=seed, params=params)
        for note, onset in zip(group, onsets):
            out.append((note, audio[onset:onset + int(1.5 * samplerate)]))
    return out


def pitch_of(rendered, *, samplerate: int, method: str) -> dict:
    """Share of voiced frames within 50 / 20 cents, tracked on the final audio."""
    import soxr

    cents = []
    for note, audio in rendered:
        seg = audio[:int(1.0 * samplerate)]
        sr = samplerate
        if method == "crepe":
            seg, sr = soxr.resample(seg, samplerate, 16000), 16000
        midi, voiced = track_pitch(np.ascontiguousarray(seg, dtype=np.float32), sr, method=method)
        voiced = voiced.copy()
        voiced[:5] = False
        cents.append(np.abs(midi[voiced] - note.pitch) * 100.0)
    c = np.concatenate(cents) if cents else np.zeros(0)
    return {"tracker": method, "notes": len(rendered), "voiced_frames": int(c.size),
            "within_50c": round(float((c <= 50).mean()), 4) if c.size else None,
            "within_20c": round(float((c <= 20).mean()), 4) if c.size else None}


def measure(model, *, samplerate: int = 48000, seed: int = 0, tracker: str = "crepe", params: dict | None = None,
            real: dict | None = None, pitch: bool = True) -> dict:
    """Every final-audio figure of one model (`real`: a `real_life` result to reuse)."""
    levels = note_levels(model, samplerate=samplerate, seed=seed, params=params)
    report = {"samplerate": samplerate,
              "level": {"grid_dbfs": np.round(levels, 2).tolist(), "min_dbfs": round(float(levels.min()), 2),
                        "max_dbfs": round(float(levels.max()), 2), "median_dbfs": round(float(np.median(levels)), 2),
                        "spread_db": round(float(levels.max() - levels.min()), 2)},
              "chord": chord_peaks(model, samplerate=samplerate, seed=seed, params=params)}
    real = real or real_life(samplerate=samplerate)
    life_notes = generated_notes(pitches=life_pitches(), per_pitch=3)
    rendered = render_set(model, life_notes, samplerate=samplerate, seed=seed, params=params)
    gen = np.array([life_of(audio, samplerate) for _, audio in rendered])
    report["life"] = {"generated_db": round(float(gen[:, 0].mean()), 3), "real_db": real["mean_db"],
                      "ratio": round(float(gen[:, 0].mean()) / real["mean_db"], 3),
                      "median_ratio": round(float(np.median(gen[:, 0])) / real["mean_db"], 3),
                      "strong_generated_db": round(float(gen[:, 1].mean()), 3), "strong_real_db": real["strong_db"],
                      "strong_ratio": round(float(gen[:, 1].mean()) / real["strong_db"], 3), "notes": len(gen),
                      "real_by_instrument": real["by_instrument"]}
    if pitch:
        pitch_notes = generated_notes(pitches=range(36, 85), per_pitch=2)
        report["pitch"] = pitch_of(render_set(model, pitch_notes, samplerate=samplerate, seed=seed, params=params),
                                   samplerate=samplerate, method=tracker)
    return report


def spectrogram_png(notes: dict, path, *, samplerate: int = 48000) -> bool:
    """One panel per labelled note (`{label: audio from its onset}`): its dB spectrogram at
    22.05 kHz, 0-1.2 s, 60 dB range, as `life` sees it. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    import soxr

    fig, axes = plt.subplots(1, len(notes), figsize=(2.6 * len(notes), 2.2), dpi=64, sharey=True)
    for ax, (label, audio) in zip(np.atleast_1d(axes), notes.items()):
        y = soxr.resample(audio[:int(1.2 * samplerate)], samplerate, LIFE_RATE)
        S = stft_magnitude(np.ascontiguousarray(y, dtype=np.float32), n_fft=LIFE_FFT, hop=LIFE_HOP)
        db = 20 * np.log10(np.maximum(S, S.max() * 1e-3) / S.max())
        ax.imshow(db.T, origin="lower", aspect="auto", cmap="magma", vmin=-60, vmax=0,
                  extent=(0, S.shape[0] * LIFE_HOP / LIFE_RATE, 0, LIFE_RATE / 2000))
        ax.set_ylim(0, 6)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("s", fontsize=7)
        ax.tick_params(labelsize=6)
    np.atleast_1d(axes)[0].set_ylabel("kHz", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def notes_png(model, path, *, pitch: int = 64, xy=(0.5, 0.5), samplerate: int = 48000) -> bool:
    """Spectrograms of a real FluidR3 violin and oboe note, this model's note at `xy`, and the same
    note with the model's playing settings (level, vibrato, shimmer, envelope at harmonics) off."""
    import dataclasses

    real = real_notes([pitch], samplerate=samplerate, programs={"violin": 40, "oboe": 68})
    panels = {f"FluidR3 {name}": notes[0] for name, notes in real.items()}
    panels["this model"] = render_set(model, [Note(*xy, float(pitch))], samplerate=samplerate)[0][1]
    plain = dataclasses.replace(model.config, level_dbfs=None, vibrato_cents=0.0, shimmer_db=0.0,
                                envelope_at_harmonics=False)
    saved, model.config = model.config, plain
    try:
        panels["playing settings off"] = render_set(model, [Note(*xy, float(pitch))], samplerate=samplerate)[0][1]
    finally:
        model.config = saved
    return spectrogram_png(panels, path, samplerate=samplerate)
