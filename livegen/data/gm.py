"""Render an NSynth-format dataset of single notes from a General MIDI SoundFont with FluidSynth.

Every note is rendered like NSynth's: note-on, held ``hold`` seconds, note-off, ``release``
seconds of release tail, mono. The result is a folder that ``open_dataset`` (and any NSynth
reader) understands: ``examples.json`` keyed by ``note_str`` plus ``audio/<note_str>.wav``.

Families follow the 16 GM program groups, named like NSynth's families where one exists
(see ``GM_GROUPS``); instruments (programs) are assigned whole to train/valid/test, so the test
split holds instruments never seen in training.

Determinism: reverb and chorus are off, every note starts on a 64-sample FluidSynth block
boundary, and each note is preceded by a muted "priming" render of the same note so that the
voice slots it reuses hold the same leftover state whatever was rendered before. Hence the same
arguments give the same files, whatever ``jobs`` is and in whatever order workers take notes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from livegen.data.pcm import write_audio
from livegen.data.progress import progress_bar
from livegen.errors import ParameterError

# FluidSynth renders and applies events in blocks of this many samples.
FLUID_BLOCK = 64
BEND_RANGE_SEMITONES = 2

# The 16 GM program groups (8 programs each): (GM group name, family written to examples.json).
# Families reuse NSynth's names where the instruments match (keyboard, mallet, organ, guitar,
# bass, string, brass, reed, flute, synth_lead, vocal); the other groups keep their GM name.
GM_GROUPS: tuple[tuple[str, str], ...] = (
    ("piano", "keyboard"),
    ("chromatic_percussion", "mallet"),
    ("organ", "organ"),
    ("guitar", "guitar"),
    ("bass", "bass"),
    ("strings", "string"),
    ("ensemble", "string"),  # programs 52-54 (choir, voice oohs, synth voice) are "vocal"
    ("brass", "brass"),
    ("reed", "reed"),
    ("pipe", "flute"),
    ("synth_lead", "synth_lead"),
    ("synth_pad", "synth_pad"),
    ("synth_effects", "synth_effects"),
    ("ethnic", "ethnic"),
    ("percussive", "percussive"),
    ("sound_effects", "sound_effects"),
)
VOCAL_PROGRAMS = frozenset({52, 53, 54})

# NSynth's family ids first (0-10, as in its examples.json), then the GM-only families.
FAMILY_IDS: dict[str, int] = {
    name: i
    for i, name in enumerate((
        "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string",
        "synth_lead", "vocal", "synth_pad", "synth_effects", "ethnic", "percussive", "sound_effects",
    ))
}

NSYNTH_QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic",
    "nonlinear_env", "percussive", "reverb", "tempo-synced",
)

DEFAULT_PROGRAMS = "0-127"
DEFAULT_PITCHES = "21-108"
DEFAULT_VELOCITIES = "25,50,75,100,127"
SPLITS = ("train", "valid", "test")


_SPEC_PART = re.compile(r"(?P<a>-?\d+)(?:\s*-\s*(?P<b>-?\d+))?(?:\s*:\s*(?P<step>\d+))?")


def parse_spec(spec: str, *, name: str, low: int, high: int) -> list[int]:
    """Parse ``"0-127"``, ``"21-108:3"`` (step 3), ``"60,64,67"``, mixes like ``"0-7,40,56-63:2"``,
    or negative values where the range allows them (``"-50-50:25"``, ``"-50,0,50"``).

    Returns sorted unique integers; any value outside ``[low, high]`` or malformed part raises
    ParameterError naming ``name`` so the CLI can say which option is wrong.
    """
    values: set[int] = set()
    text = str(spec).strip()
    if not text:
        raise ParameterError(f"--{name} is empty; give e.g. '{low}-{high}', '{low}-{high}:2' or '{low},{high}'")
    for part in text.split(","):
        part = part.strip()
        match = _SPEC_PART.fullmatch(part)
        if match is None:
            raise ParameterError(
                f"--{name}: cannot read {part!r} in {spec!r}; use 'A-B', 'A-B:STEP' or 'A,B,C' "
                f"with integers in {low}..{high}"
            )
        a = int(match["a"])
        b = int(match["b"]) if match["b"] is not None else a
        step = int(match["step"]) if match["step"] is not None else 1
        if step < 1:
            raise ParameterError(f"--{name}: step must be >= 1 in {part!r}")
        if a > b:
            raise ParameterError(f"--{name}: range {part!r} runs backwards; write it as {b}-{a}")
        if a < low or b > high:
            raise ParameterError(f"--{name}: {part!r} is outside {low}..{high}")
        values.update(range(a, b + 1, step))
    return sorted(values)


def program_family(program: int) -> tuple[str, str]:
    """(GM group, family) of a GM program number 0-127."""
    group, family = GM_GROUPS[program // 8]
    if program in VOCAL_PROGRAMS:
        family = "vocal"
    return group, family


def program_split(program: int) -> str:
    """Split of a whole instrument: in each GM group of 8, one program is test and one valid.

    The choice is a fixed hash of the group, so it does not depend on which programs are
    rendered: a program is in the same split in every dataset. That gives 16 test and 16 valid
    instruments of 128 (12.5 % each), every family represented in each. Variation banks (e.g.
    FluidR3's bank 8 "Detuned EP 1" for program 4) follow their program, so a test program's
    variants never leak into training.
    """
    group = program // 8
    digest = hashlib.sha256(f"livegen-split:{group}".encode()).digest()
    order = sorted(range(8), key=lambda i: digest[i])
    slot = program % 8
    if slot == order[0]:
        return "test"
    if slot == order[1]:
        return "valid"
    return "train"


def keep_note(bank: int, program: int, pitch: int, velocity: int, cents: int, *, fraction: float, seed: int) -> bool:
    """Whether a note is in a random ``fraction`` of the grid, fixed by ``seed``.

    Each program keeps a different random subset of pitches and velocities, so a subsample
    still covers every pitch across instruments (a fixed pitch step would leave the same gaps
    in all of them, and a decoder learns to snap to the pitches it saw).
    """
    key = f"livegen-subsample:{seed}:{bank}:{program}:{pitch}:{velocity}:{cents}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") < fraction * 2**64


def note_str(instrument_str: str, pitch: int, velocity: int, cents: int = 0) -> str:
    """NSynth's ``<instrument_str>-<pitch>-<velocity>``; detuned notes add ``_+25c``-style suffixes."""
    base = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
    return f"{base}_{cents:+d}c" if cents else base


@dataclass(frozen=True)
class RenderSettings:
    soundfont: str
    sample_rate: int = 24000
    hold_s: float = 3.0
    release_s: float = 1.0
    gain: float = 0.7
    subtype: str = "PCM_16"
    silence_db: float = -70.0

    @property
    def hold_samples(self) -> int:
        # Rounded to FluidSynth's block so that note-off lands exactly at hold_samples.
        return max(1, round(self.hold_s * self.sample_rate / FLUID_BLOCK)) * FLUID_BLOCK

    @property
    def release_samples(self) -> int:
        return max(0, round(self.release_s * self.sample_rate / FLUID_BLOCK)) * FLUID_BLOCK


class _Renderer:
    """One FluidSynth instance with the SoundFont loaded; renders one note at a time."""

    PRIME_SAMPLES = 2048  # long enough for every GM preset's voices to settle (measured)
    FLUSH_SAMPLES = 256

    def __init__(self, settings: RenderSettings):
        from ctypes import c_int, c_void_p

        import fluidsynth

        self.settings = settings
        self._write_float = fluidsynth.cfunc(
            "fluid_synth_write_float", c_int, ("synth", c_void_p, 1), ("len", c_int, 1),
            ("lbuf", c_void_p, 1), ("loff", c_int, 1), ("lincr", c_int, 1),
            ("rbuf", c_void_p, 1), ("roff", c_int, 1), ("rincr", c_int, 1),
        )
        synth = fluidsynth.Synth(gain=float(settings.gain), samplerate=float(settings.sample_rate))
        synth.setting("synth.reverb.active", 0)
        synth.setting("synth.chorus.active", 0)
        synth.setting("synth.cpu-cores", 1)
        self.synth = synth
        self.sfid = synth.sfload(str(settings.soundfont))
        if self.sfid < 0:
            raise ParameterError(f"FluidSynth could not load the SoundFont {settings.soundfont!r}")
        # Pitch-bend range: exactly BEND_RANGE_SEMITONES (RPN 0), whatever the SoundFont's default.
        for control, value in ((101, 0), (100, 0), (6, BEND_RANGE_SEMITONES), (38, 0), (101, 127), (100, 127)):
            synth.cc(0, control, value)

    def preset_name(self, bank: int, program: int) -> str | None:
        name = self.synth.sfpreset_name(self.sfid, bank, program)
        return name or None

    def _render(self, n: int):
        import numpy as np

        buf = np.zeros(2 * n, np.float32)
        if n:
            self._write_float(self.synth.synth, n, buf.ctypes.data, 0, 2, buf.ctypes.data, 1, 2)
        return buf.reshape(n, 2)

    def _silence_channel(self) -> None:
        # Ramp the channel volume to 0 before killing the voices, so the slots they free hold
        # no leftover amplitude that a later voice would ramp from.
        self.synth.cc(0, 7, 0)
        self._render(128)
        self.synth.all_sounds_off(0)
        self._render(self.FLUSH_SAMPLES)
        self.synth.cc(0, 7, 100)

    def note(self, bank: int, program: int, pitch: int, velocity: int, cents: int = 0):
        """Mono float32 samples of one note: hold, note-off, release; ``cents`` by pitch bend."""
        import numpy as np

        s = self.settings
        self.synth.program_select(0, self.sfid, bank, program)
        self.synth.pitch_bend(0, bend_value(cents))
        self.synth.cc(0, 7, 0)
        self.synth.noteon(0, pitch, velocity)
        self._render(self.PRIME_SAMPLES)
        self._silence_channel()
        self.synth.noteon(0, pitch, velocity)
        held = self._render(s.hold_samples)
        self.synth.noteoff(0, pitch)
        released = self._render(s.release_samples)
        self._silence_channel()
        self.synth.pitch_bend(0, 0)
        stereo = np.concatenate([held, released])
        return stereo.mean(axis=1, dtype=np.float32)


_WORKER: _Renderer | None = None


def _worker_init(settings: RenderSettings) -> None:
    global _WORKER
    _WORKER = _Renderer(settings)


def bend_value(cents: float) -> int:
    """Pitch-wheel offset (-8192..8191) that detunes by ``cents`` with the fixed bend range."""
    return max(-8192, min(8191, round(cents / (100 * BEND_RANGE_SEMITONES) * 8192)))


def _render_one(task: tuple[int, int, int, int, int, str, str]) -> dict:
    import numpy as np

    bank, program, pitch, velocity, cents, name, wav_path = task
    renderer = _WORKER
    assert renderer is not None
    s = renderer.settings
    y = renderer.note(bank, program, pitch, velocity, cents)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    peak_db = 20 * np.log10(peak) if peak > 0 else -np.inf
    result = {"note_str": name, "peak": peak, "silent": bool(peak_db < s.silence_db), "clipped": peak > 1.0}
    if not result["silent"]:
        write_audio(wav_path, np.clip(y, -1.0, 1.0), s.sample_rate, subtype=s.subtype, seed=name)
    return result


def render_gm_dataset(
    out: str | os.PathLike,
    *,
    soundfont: str | os.PathLike,
    sample_rate: int = 24000,
    programs: list[int] | None = None,
    pitches: list[int] | None = None,
    velocities: list[int] | None = None,
    cents: list[int] | None = None,
    subsample: float = 1.0,
    seed: int = 0,
    hold_s: float = 3.0,
    release_s: float = 1.0,
    banks: list[int] | None = None,
    gain: float = 0.7,
    subtype: str = "PCM_16",
    jobs: int = 1,
    progress: bool = True,
) -> dict:
    """Render notes into ``out`` (NSynth layout) and return the render report.

    ``examples.json`` lists only notes that sounded; the report (also written to
    ``out/render_report.json``) lists the silent ones, the clipped ones, and the speed.
    """
    soundfont = Path(soundfont)
    if not soundfont.is_file():
        raise ParameterError(f"SoundFont {str(soundfont)!r} does not exist; give a .sf2 file, e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2")
    if sample_rate < 8000 or sample_rate > 192000:
        raise ParameterError(f"sample rate {sample_rate} is outside 8000..192000 Hz")
    if hold_s <= 0 or release_s < 0:
        raise ParameterError(f"hold ({hold_s} s) must be > 0 and release ({release_s} s) >= 0")
    if subtype not in ("PCM_16", "PCM_24", "FLOAT"):
        raise ParameterError(f"WAV subtype {subtype!r} is not one of PCM_16, PCM_24, FLOAT")
    if jobs < 1:
        raise ParameterError(f"--jobs {jobs} must be >= 1")
    programs = list(range(128)) if programs is None else list(programs)
    banks = [0] if banks is None else list(banks)
    cents = [0] if cents is None else list(cents)
    if not 0.0 < subsample <= 1.0:
        raise ParameterError(f"subsample {subsample} must be in (0, 1]: the share of notes to keep")
    if any(not -100 <= c <= 100 for c in cents):
        raise ParameterError(f"cents {cents}: detune by -100..100 cents (a semitone either way at most)")
    pitches = parse_spec(DEFAULT_PITCHES, name="pitches", low=0, high=127) if pitches is None else list(pitches)
    velocities = parse_spec(DEFAULT_VELOCITIES, name="velocities", low=1, high=127) if velocities is None else list(velocities)
    if not programs or not pitches or not velocities or not banks:
        raise ParameterError("nothing to render: banks, programs, pitches and velocities must each name at least one value")
    if any(not 0 <= b < 128 for b in banks):
        raise ParameterError(f"banks {banks}: use 0-127 (bank 128 holds drum kits, which are not pitched instruments)")

    settings = RenderSettings(
        soundfont=str(soundfont.resolve()), sample_rate=int(sample_rate), hold_s=float(hold_s),
        release_s=float(release_s), gain=float(gain), subtype=subtype,
    )
    out = Path(out)
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)

    probe = _Renderer(settings)
    preset_names = {(b, p): probe.preset_name(b, p) for b in banks for p in programs}
    del probe
    missing = [f"{b}:{p}" for (b, p), n in preset_names.items() if n is None]
    playable = [bp for bp in preset_names if preset_names[bp] is not None]
    if not playable:
        raise ParameterError(f"the SoundFont {soundfont.name!r} has no preset for banks {banks} x programs {programs}")

    examples: dict[str, dict] = {}
    tasks = []
    for bank, program in playable:
        group, family = program_family(program)
        instrument = bank * 128 + program
        instrument_str = f"{family}_synthetic_{instrument:03d}"
        for pitch, velocity, detune in itertools.product(pitches, velocities, cents):
            if subsample < 1.0 and not keep_note(bank, program, pitch, velocity, detune, fraction=subsample, seed=seed):
                continue
            name = note_str(instrument_str, pitch, velocity, detune)
            examples[name] = {
                "note": len(examples),
                "note_str": name,
                "pitch": pitch,
                "velocity": velocity,
                "detune_cents": detune,
                "instrument": instrument,
                "instrument_str": instrument_str,
                "instrument_source": 2,  # NSynth: acoustic 0, electronic 1, synthetic 2
                "instrument_source_str": "synthetic",
                "instrument_family": FAMILY_IDS[family],
                "instrument_family_str": family,
                "sample_rate": settings.sample_rate,
                "qualities": [0] * len(NSYNTH_QUALITIES),
                "qualities_str": [],
                "program": program,
                "bank": bank,
                "gm_group": group,
                "preset_name": preset_names[bank, program],
                "soundfont": soundfont.name,
                "hold_s": settings.hold_samples / settings.sample_rate,
                "release_s": settings.release_samples / settings.sample_rate,
                "split": program_split(program),
            }
            tasks.append((bank, program, pitch, velocity, detune, name, str(audio_dir / f"{name}.wav")))

    if not tasks:
        raise ParameterError(f"--subsample {subsample} kept none of the {len(playable) * len(pitches) * len(velocities) * len(cents)} notes; raise it")
    results: list[dict] = []
    start = time.perf_counter()
    with progress_bar(progress, len(tasks), "rendering notes") as advance:
        if jobs == 1:
            _worker_init(settings)
            for task in tasks:
                results.append(_render_one(task))
                advance()
        else:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            chunk = max(1, min(32, len(tasks) // (jobs * 8) or 1))
            with ctx.Pool(jobs, initializer=_worker_init, initargs=(settings,)) as pool:
                for result in pool.imap_unordered(_render_one, tasks, chunksize=chunk):
                    results.append(result)
                    advance()
    elapsed = time.perf_counter() - start

    silent = sorted(r["note_str"] for r in results if r["silent"])
    clipped = sorted(r["note_str"] for r in results if r["clipped"])
    for name in silent:
        del examples[name]
        stale = audio_dir / f"{name}.wav"
        if stale.exists():
            stale.unlink()
    for new_id, ex in enumerate(examples.values()):
        ex["note"] = new_id
    (out / "examples.json").write_text(json.dumps(examples, indent=1, sort_keys=False) + "\n")

    split_counts = {s: sum(1 for e in examples.values() if e["split"] == s) for s in SPLITS}
    report = {
        "soundfont": str(soundfont),
        "settings": {
            "sample_rate": settings.sample_rate, "hold_s": settings.hold_samples / settings.sample_rate,
            "release_s": settings.release_samples / settings.sample_rate,
            "gain": settings.gain, "subtype": settings.subtype, "silence_db": settings.silence_db,
        },
        "banks": banks,
        "programs": programs,
        "pitches": pitches,
        "velocities": velocities,
        "cents": cents,
        "subsample": subsample,
        "seed": seed,
        "missing_presets": missing,
        "rendered": len(results),
        "written": len(examples),
        "silent": silent,
        "clipped": clipped,
        "split_counts": split_counts,
        "jobs": jobs,
        "seconds": round(elapsed, 3),
        "notes_per_second": round(len(results) / elapsed, 2) if elapsed > 0 else None,
    }
    (out / "render_report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
