"""Render generated multi-instrument pieces through FluidSynth into a GTZAN-like folder.

The continuation model needs *music* (chords, melodies, drums that evolve over seconds), and the
project makes its data without downloads. Each piece is generated from a genre-like style
(tempo range, scale, chord progressions, instruments, comping and drum patterns): two sections of
a repeating chord progression, a bass line, a melody built from a motif that comes back with
small changes, and drums on GM channel 10. The layout is GTZAN's
(``genres_original/<genre>/<genre>.<nnnnn>.wav``), so ``open_dataset`` reads it as ``gtzan``
with the genre as label; ``songs.json`` beside it lists each piece's tempo, key and programs.

Determinism: the piece at index i depends only on (seed, i); every piece is rendered by a fresh
FluidSynth state (reverb and chorus off) with events on 64-sample block boundaries, so the same
arguments give the same files, whatever ``jobs`` is.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from livegen.data.gm import FLUID_BLOCK, RenderSettings, _Renderer
from livegen.data.pcm import write_audio
from livegen.data.progress import progress_bar
from livegen.errors import ParameterError

REPORT_NAME = "songs.json"
DRUM_CHANNEL = 9  # GM channel 10
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
DORIAN = (0, 2, 3, 5, 7, 9, 10)
MIXOLYDIAN = (0, 2, 4, 5, 7, 9, 10)

# GM drum notes
KICK, SNARE, CLAP, HAT, OPEN_HAT, RIDE, CRASH, CLAVE, CONGA_HI, CONGA_LO, SHAKER = 36, 38, 39, 42, 46, 51, 49, 75, 62, 64, 70

# 16-step patterns (one bar of 4/4 in sixteenths): drum -> string of velocities '.' = rest,
# '1'-'9' = velocity / 9 * 110 + 17.
DRUMS = {
    "rock": {KICK: "9...5...9.5.....", SNARE: "....9.......9...", HAT: "7.5.7.5.7.5.7.5."},
    "pop": {KICK: "9.....5.9.......", SNARE: "....9.......9..3", HAT: "5353535353535353"},
    "four": {KICK: "9...9...9...9...", CLAP: "....8.......8...", OPEN_HAT: "..6...6...6...6.", HAT: "3.3.3.3.3.3.3.3."},
    "swing": {RIDE: "7..57..57..57..5", KICK: "3...........3...", HAT: "....6.......6..."},
    "shuffle": {KICK: "8.....4.8.....4.", SNARE: "....8.......8...", HAT: "6..46..46..46..4"},
    "latin": {CLAVE: "7..7..7...7.7...", CONGA_HI: "..5...5..5...5.5", CONGA_LO: "5...5.....5.5...", SHAKER: "3333333333333333", KICK: "7.....5.7.....5."},
    "soft": {SHAKER: "4.2.4.2.4.2.4.2.", KICK: "5.......5......."},
    "none": {},
}


@dataclass(frozen=True)
class Style:
    """What makes a genre-like label: tempo, harmony, instruments, comping, drums, density."""

    tempo: tuple[int, int]
    scales: tuple[tuple[int, ...], ...]
    progressions: tuple[tuple[int, ...], ...]   # scale degrees (0-based) of each bar's chord
    lead: tuple[int, ...]                       # GM programs
    comp: tuple[int, ...]
    bass: tuple[int, ...]
    comp_style: tuple[str, ...]                 # block | arp | strum | offbeat
    drums: tuple[str, ...]
    density: float                              # chance of a melody note per eighth
    sevenths: bool = False
    swing: float = 0.0                          # delay of the off-beat eighth, share of an eighth
    velocity: int = 90


STYLES: dict[str, Style] = {
    "pop": Style((92, 124), (MAJOR,), ((0, 4, 5, 3), (0, 5, 3, 4), (3, 0, 4, 5)), (0, 4, 80, 73),
                 (0, 48, 24, 4), (33, 34, 38), ("strum", "block", "arp"), ("pop",), 0.55),
    "rock": Style((108, 142), (MINOR, MIXOLYDIAN), ((0, 6, 5, 6), (0, 3, 4, 3), (0, 5, 2, 6)), (30, 29, 81),
                  (29, 30, 27), (34, 33), ("strum", "offbeat"), ("rock",), 0.5, velocity=100),
    "jazz": Style((96, 168), (MAJOR, DORIAN), ((1, 4, 0, 0), (5, 1, 4, 0), (0, 5, 1, 4)), (65, 66, 56, 11),
                  (0, 4, 26), (32,), ("offbeat", "block"), ("swing",), 0.65, sevenths=True, swing=0.33, velocity=80),
    "classical": Style((66, 100), (MAJOR, MINOR), ((0, 3, 4, 0), (0, 5, 1, 4), (0, 4, 5, 2, 3, 0, 3, 4)), (73, 40, 68, 71),
                       (48, 0, 46, 49), (42, 43), ("arp", "block"), ("none",), 0.6, velocity=75),
    "electronic": Style((120, 132), (MINOR,), ((0, 5, 2, 6), (0, 0, 5, 6), (0, 3, 5, 4)), (81, 80, 84, 87),
                        (89, 90, 81, 63), (38, 39, 87), ("offbeat", "arp"), ("four",), 0.5, velocity=95),
    "ambient": Style((60, 80), (MAJOR, DORIAN), ((0, 3), (0, 5, 3, 4), (0, 1)), (14, 11, 98, 92),
                     (88, 89, 91, 94, 95), (89, 42), ("block",), ("none", "soft"), 0.25, velocity=70),
    "latin": Style((96, 120), (MINOR, MAJOR), ((0, 3, 4, 0), (0, 6, 5, 4), (1, 4, 0, 5)), (12, 24, 73, 56),
                   (24, 0, 21), (32, 33), ("offbeat", "arp"), ("latin",), 0.6, velocity=90),
    "blues": Style((72, 104), (MIXOLYDIAN,), ((0, 3, 0, 0, 3, 3, 0, 0, 4, 3, 0, 4),), (27, 16, 65, 22),
                   (0, 16, 26), (32, 33), ("strum", "offbeat"), ("shuffle",), 0.5, sevenths=True, swing=0.33, velocity=90),
}
GENRES = tuple(STYLES)


@dataclass
class Piece:
    """One generated piece: MIDI-like events in seconds plus what was chosen."""

    genre: str
    tempo: float
    key: int
    scale: tuple[int, ...]
    programs: dict[str, int]
    events: list = field(default_factory=list)  # (time_s, order, kind, channel, a, b)

    def to_meta(self) -> dict:
        return {"genre": self.genre, "tempo": round(self.tempo, 3), "key": self.key,
                "scale": list(self.scale), "programs": self.programs, "notes": sum(1 for e in self.events if e[2] == "on")}


def _chord(scale, key: int, degree: int, *, sevenths: bool) -> list[int]:
    """Pitch classes (as semitones above key, unreduced) of the chord built on `degree`."""
    steps = (0, 2, 4, 6) if sevenths else (0, 2, 4)
    n = len(scale)
    return [key + scale[(degree + s) % n] + 12 * ((degree + s) // n) for s in steps]


def generate_piece(index: int, *, seed: int = 0, seconds: float = 30.0, genre: str | None = None) -> Piece:
    """The piece at `index` for `seed` (its genre cycles through `GENRES` unless given)."""
    import numpy as np

    rng = np.random.default_rng([int(seed), int(index), 0x50_4E_47])
    genre = genre or GENRES[index % len(GENRES)]
    st = STYLES[genre]
    tempo = float(rng.uniform(*st.tempo))
    key = int(rng.integers(0, 12))
    scale = st.scales[int(rng.integers(len(st.scales)))]
    programs = {"lead": int(rng.choice(st.lead)), "comp": int(rng.choice(st.comp)), "bass": int(rng.choice(st.bass))}
    comp_style = str(rng.choice(st.comp_style))
    drum_style = str(rng.choice(st.drums))
    piece = Piece(genre, tempo, key, scale, programs)
    ev = piece.events
    channels = {"lead": 0, "comp": 1, "bass": 2}
    for i, (part, ch) in enumerate(channels.items()):
        ev.append((0.0, i, "program", ch, programs[part], 0))
        ev.append((0.0, i, "cc", ch, 7, (100, 80, 100)[i]))
    beat = 60.0 / tempo
    eighth = beat / 2

    def at(bar: int, eighth_i: float) -> float:
        swung = eighth_i + (st.swing if int(eighth_i) % 2 == 1 and eighth_i == int(eighth_i) else 0.0)
        return (bar * 8 + swung) * eighth

    def note(t: float, dur: float, ch: int, pitch: int, vel: int) -> None:
        if t >= seconds or not 0 <= pitch <= 127:
            return
        vel = int(np.clip(vel, 1, 127))
        ev.append((t, 2, "on", ch, int(pitch), vel))
        ev.append((min(t + dur, seconds), 1, "off", ch, int(pitch), 0))

    n_bars = int(np.ceil(seconds / (8 * eighth)))
    sections = [st.progressions[int(rng.integers(len(st.progressions)))] for _ in range(2)]
    motifs = []
    for _ in sections:  # a two-bar motif per section: (eighth offset, length in eighths, scale step)
        motif, pos, step = [], 0, int(rng.integers(-2, 5))
        while pos < 16:
            length = int(rng.choice((1, 1, 2, 2, 3, 4)))
            if rng.random() < st.density:
                step = int(np.clip(step + rng.choice((-2, -1, -1, 1, 1, 2, 3, -3)), -3, 9))
                motif.append((pos, length, step))
            pos += length
        motifs.append(motif)
    lead_octave = 72 if programs["lead"] not in (32, 33, 34, 42, 43) else 60
    section_bars = 8 if len(sections[0]) <= 4 else 12
    for bar in range(n_bars):
        sec = (bar // section_bars) % 2
        prog = sections[sec]
        degree = prog[bar % len(prog)]
        chord = _chord(scale, key, degree, sevenths=st.sevenths)
        vel = st.velocity + int(rng.integers(-8, 9))
        # comping
        comp_root = 48 + chord[0] % 12
        voicing = [comp_root + (c - chord[0]) for c in chord]
        if comp_style == "block":
            for p in voicing:
                note(at(bar, 0), 8 * eighth * 0.95, 1, p, vel - 15)
        elif comp_style == "strum":
            for k in range(4):
                for j, p in enumerate(voicing):
                    note(at(bar, 2 * k) + 0.012 * j, 2 * eighth * 0.85, 1, p, vel - 10 - 6 * (k % 2))
        elif comp_style == "arp":
            order = voicing + [voicing[1] + 12] if len(voicing) == 3 else voicing
            for k in range(8):
                note(at(bar, k), eighth * 1.4, 1, order[k % len(order)] + (12 if k >= 4 and rng.random() < 0.3 else 0), vel - 12)
        else:  # offbeat stabs
            for k in (1, 3, 5, 7):
                if rng.random() < 0.85:
                    for p in voicing:
                        note(at(bar, k), eighth * 0.6, 1, p, vel - 12)
        # bass: root on 1, fifth or approach on 3, walking in swing styles
        root = 36 + chord[0] % 12
        if st.swing and genre == "jazz":
            walk = [root, root + (chord[1] - chord[0]), root + (chord[2] - chord[0]), root + int(rng.choice((-1, 1, 2)))]
            for k, p in enumerate(walk):
                note(at(bar, 2 * k), beat * 0.9, 2, p, vel - 5)
        else:
            pattern = ((0, 3, 0), (4, 3, 7)) if rng.random() < 0.6 else ((0, 2, 0), (3, 1, 0), (4, 2, 7), (6, 2, 12))
            for off, length, interval in pattern:
                note(at(bar, off), length * eighth * 0.9, 2, root + interval, vel)
        # melody: the section's motif on bar pairs, varied a little on repeats
        motif = motifs[sec]
        half = bar % 2
        for pos, length, step in motif:
            if pos // 8 != half:
                continue
            if rng.random() < 0.15:
                step = step + int(rng.choice((-1, 1)))
            pitch = key + lead_octave + scale[step % 7] + 12 * (step // 7)
            note(at(bar, pos % 8), length * eighth * 0.9, 0, pitch, vel + int(rng.integers(-6, 7)))
        # drums
        pattern = DRUMS[drum_style]
        fill = bar % 4 == 3 and drum_style not in ("none", "soft")
        for drum, steps in pattern.items():
            for k, c in enumerate(steps):
                if c == "." or (fill and k >= 12):
                    continue
                v = int(int(c) / 9 * 110 + 17) + int(rng.integers(-6, 7))
                note(at(bar, k / 2), 0.1, DRUM_CHANNEL, drum, v)
        if fill:
            for k in range(12, 16):
                note(at(bar, k / 2), 0.1, DRUM_CHANNEL, (SNARE, SNARE, 45, 43)[k - 12] if drum_style != "latin" else CONGA_HI, 70 + 8 * (k - 12))
        if bar % section_bars == 0 and drum_style not in ("none", "soft") and bar:
            note(at(bar, 0), 0.1, DRUM_CHANNEL, CRASH, 100)
    ev.sort(key=lambda e: (e[0], e[1], e[3], e[4]))
    return piece


def render_piece(piece: Piece, *, soundfont: str, sample_rate: int = 24000, seconds: float = 30.0,
                 gain: float = 0.5):
    """Mono float32 samples of `piece` (FluidSynth, reverb/chorus off, a fresh synth)."""
    import numpy as np

    r = _Renderer(RenderSettings(soundfont=soundfont, sample_rate=sample_rate, gain=gain))
    synth = r.synth
    total = int(round(seconds * sample_rate / FLUID_BLOCK)) * FLUID_BLOCK
    out = np.zeros(total, np.float32)
    pos = 0
    for t, _, kind, ch, a, b in piece.events:
        due = min(total, int(round(t * sample_rate / FLUID_BLOCK)) * FLUID_BLOCK)
        if due > pos:
            out[pos:due] = r._render(due - pos).mean(axis=1)
            pos = due
        if kind == "on":
            synth.noteon(ch, a, b)
        elif kind == "off":
            synth.noteoff(ch, a)
        elif kind == "program":
            synth.program_select(ch, r.sfid, 0, a)
        elif kind == "cc":
            synth.cc(ch, a, b)
    if pos < total:
        out[pos:] = r._render(total - pos).mean(axis=1)
    synth.delete()
    return out


def _render_task(task) -> dict:
    import numpy as np

    index, seed, seconds, soundfont, sample_rate, gain, path = task
    piece = generate_piece(index, seed=seed, seconds=seconds)
    y = render_piece(piece, soundfont=soundfont, sample_rate=sample_rate, seconds=seconds, gain=gain)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.98:  # keep the mix unclipped; a fixed rule, so still deterministic
        y = y * np.float32(0.98 / peak)
    write_audio(path, y, sample_rate, subtype="PCM_16", seed=(seed, index))
    meta = piece.to_meta()
    meta.update({"index": index, "file": os.path.relpath(path, Path(path).parents[2]), "peak": round(peak, 4)})
    return meta


def render_songs(out, *, soundfont, songs: int = 80, seconds: float = 30.0, seed: int = 0,
                 sample_rate: int = 24000, gain: float = 0.5, jobs: int = 1, progress: bool = True) -> dict:
    """Render `songs` pieces into `out/genres_original/<genre>/<genre>.<nnnnn>.wav` + `out/songs.json`."""
    soundfont = Path(soundfont)
    if not soundfont.is_file():
        raise ParameterError(f"SoundFont {str(soundfont)!r} does not exist; give a .sf2 file, e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2")
    if songs < 1:
        raise ParameterError(f"--songs {songs} must be >= 1")
    if not 1.0 <= seconds <= 600.0:
        raise ParameterError(f"--seconds {seconds} must be within 1..600")
    if jobs < 1:
        raise ParameterError(f"--jobs {jobs} must be >= 1")
    out = Path(out)
    tasks = []
    for i in range(songs):
        genre = GENRES[i % len(GENRES)]
        folder = out / "genres_original" / genre
        folder.mkdir(parents=True, exist_ok=True)
        tasks.append((i, int(seed), float(seconds), str(soundfont.resolve()), int(sample_rate), float(gain),
                      str(folder / f"{genre}.{i // len(GENRES):05d}.wav")))
    start = time.perf_counter()
    results = []
    with progress_bar(progress, len(tasks), "rendering songs") as advance:
        if jobs == 1:
            for task in tasks:
                results.append(_render_task(task))
                advance()
        else:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                for result in pool.imap_unordered(_render_task, tasks):
                    results.append(result)
                    advance()
    results.sort(key=lambda r: r["index"])
    elapsed = time.perf_counter() - start
    report = {"soundfont": soundfont.name, "songs": songs, "seconds": seconds, "seed": seed,
              "sample_rate": sample_rate, "gain": gain, "genres": list(GENRES), "pieces": results,
              }
    (out / REPORT_NAME).write_text(json.dumps(report, indent=1) + "\n")
    return {**report, "render_seconds": round(elapsed, 2)}


def read_songs_report(root) -> dict | None:
    """The `songs.json` that `render_songs` left in `root` (how its pieces were made), or None for
    a folder it did not write."""
    try:
        report = json.loads((Path(root) / REPORT_NAME).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return report if isinstance(report, dict) else None
