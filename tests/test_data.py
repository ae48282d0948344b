"""Datasets: GM rendering with the real FluidSynth + SoundFont, loaders for each layout, features."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO
from helpers import assert_refused, livegen
from livegen.data.datasets import Example, open_dataset
from livegen.data.files import check_not_an_input
from livegen.data.features import compute_features, release_frame
from livegen.data.gm import parse_spec, program_family, program_split, render_gm_dataset
from livegen.errors import ParameterError

SR = 16000


def tone(seconds=0.5, *, sr=SR, freq=440.0, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path, y=None, sr=SR, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(**kw) if y is None else y, sr, **({"format": "WAV"} if str(path).endswith(".wav") else {}))
    return path


def midi_bytes(notes, *, ticks=480, tempo_us=500000):
    """A format-0 Standard MIDI File with (pitch, velocity, on_tick, off_tick) notes."""
    events = []
    for pitch, vel, on, off in notes:
        events.append((on, bytes([0x90, pitch, vel])))
        events.append((off, bytes([0x80, pitch, 0])))
    events.sort(key=lambda e: e[0])

    def vlq(n):
        out = [n & 0x7F]
        while n > 127:
            n >>= 7
            out.insert(0, (n & 0x7F) | 0x80)
        return bytes(out)

    track = b"\x00\xff\x51\x03" + tempo_us.to_bytes(3, "big")
    now = 0
    for tick, msg in events:
        track += vlq(tick - now) + msg
        now = tick
    track += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks) + b"MTrk" + struct.pack(">I", len(track)) + track


# --- SPEC and GM tables -----------------------------------------------------------------------

def test_parse_spec_forms():
    assert parse_spec("0-3", name="programs", low=0, high=127) == [0, 1, 2, 3]
    assert parse_spec("21-108:29", name="pitches", low=0, high=127) == [21, 50, 79, 108]
    assert parse_spec("67,60,64,60", name="pitches", low=0, high=127) == [60, 64, 67]
    assert parse_spec("0-7:4, 40", name="programs", low=0, high=127) == [0, 4, 40]
    assert parse_spec("-50-50:50", name="cents", low=-100, high=100) == [-50, 0, 50]
    for bad in ("", "a-b", "5-1", "0-200", "0-10:0", "1,,2"):
        with pytest.raises(ParameterError, match="programs"):
            parse_spec(bad, name="programs", low=0, high=127)


def test_gm_families_and_splits_cover_every_group():
    assert program_family(0) == ("piano", "keyboard")
    assert program_family(52) == ("ensemble", "vocal")
    assert program_family(73) == ("pipe", "flute")
    assert program_family(127) == ("sound_effects", "sound_effects")
    splits = [program_split(p) for p in range(128)]
    assert splits.count("test") == 16 and splits.count("valid") == 16
    for group in range(16):
        assert sorted(splits[group * 8:(group + 1) * 8]).count("train") == 6


# --- GM rendering with the real SoundFont ---------------------------------------------------

@pytest.fixture(scope="module")
def gm_dir(tmp_path_factory, gm_soundfont):
    out = tmp_path_factory.mktemp("gm") / "a"
    # Program 36 (slap bass) has no sample at MIDI 105 in FluidR3: one silent render.
    report = render_gm_dataset(out, soundfont=gm_soundfont, sample_rate=24000, programs=[0, 36],
                               pitches=[60, 105], velocities=[100], hold_s=0.3, release_s=0.2, progress=False)
    return out, report


@pytest.mark.slow
def test_gm_render_writes_nsynth_fields_and_wavs(gm_dir):
    out, report = gm_dir
    meta = json.loads((out / "examples.json").read_text())
    assert report["rendered"] == 4
    assert report["silent"] == ["bass_synthetic_036-105-100"]
    assert sorted(meta) == ["bass_synthetic_036-060-100", "keyboard_synthetic_000-060-100", "keyboard_synthetic_000-105-100"]
    ex = meta["keyboard_synthetic_000-060-100"]
    for field in ("note", "note_str", "pitch", "velocity", "instrument", "instrument_str", "instrument_source",
                  "instrument_source_str", "instrument_family", "instrument_family_str", "sample_rate",
                  "qualities", "qualities_str", "program", "bank", "soundfont", "hold_s", "release_s", "split"):
        assert field in ex, field
    assert (ex["pitch"], ex["velocity"], ex["sample_rate"], ex["program"]) == (60, 100, 24000, 0)
    assert ex["instrument_family_str"] == "keyboard" and ex["instrument_family"] == 4
    assert (ex["instrument_source"], ex["instrument_source_str"]) == (2, "synthetic")
    assert ex["split"] == program_split(0)
    assert ex["hold_s"] == pytest.approx(0.3, abs=64 / 24000)
    for name in meta:
        y, sr = sf.read(out / "audio" / f"{name}.wav")
        assert sr == 24000 and y.ndim == 1
        hold = round(meta[name]["hold_s"] * sr)
        assert len(y) == hold + round(meta[name]["release_s"] * sr)
        assert np.abs(y).max() > 0.01
        # Held part is louder than the end of the release tail: the note-off happened.
        assert np.sqrt(np.mean(y[:hold] ** 2)) > 2 * np.sqrt(np.mean(y[-len(y) // 10:] ** 2))
    assert not (out / "audio" / "bass_synthetic_036-105-100.wav").exists()


@pytest.mark.slow
def test_gm_render_is_deterministic_across_jobs_and_order(gm_dir, gm_soundfont, tmp_path):
    out, _ = gm_dir
    # Different job count, extra notes rendered before and in between: same samples.
    again = tmp_path / "b"
    render_gm_dataset(again, soundfont=gm_soundfont, sample_rate=24000, programs=[0, 16, 36],
                      pitches=[40, 60, 105], velocities=[100], hold_s=0.3, release_s=0.2, jobs=2, progress=False)
    for wav in sorted((out / "audio").glob("*.wav")):
        assert wav.read_bytes() == (again / "audio" / wav.name).read_bytes(), wav.name


def test_gm_render_variation_banks_follow_their_program(gm_soundfont, tmp_path):
    # FluidR3 bank 8 holds "Detuned EP 1" as program 4; bank 16 has no program 4.
    report = render_gm_dataset(tmp_path, soundfont=gm_soundfont, banks=[0, 8, 16], programs=[4], pitches=[60],
                               velocities=[90], hold_s=0.1, release_s=0.05, progress=False)
    meta = json.loads((tmp_path / "examples.json").read_text())
    assert report["missing_presets"] == ["16:4"]
    assert sorted((e["bank"], e["instrument"], e["preset_name"]) for e in meta.values()) == [
        (0, 4, "Rhodes EP"), (8, 1028, "Detuned EP 1")]
    assert {e["split"] for e in meta.values()} == {program_split(4)}


def test_gm_render_detunes_by_pitch_bend(gm_soundfont, tmp_path):
    render_gm_dataset(tmp_path, soundfont=gm_soundfont, programs=[73], pitches=[69], velocities=[100],
                      cents=[0, 50], hold_s=0.6, release_s=0.05, progress=False)
    ds = {e.id: e for e in open_dataset(tmp_path)}
    assert sorted(ds) == ["flute_synthetic_073-069-100", "flute_synthetic_073-069-100_+50c"]
    assert ds["flute_synthetic_073-069-100_+50c"].cents == 50 and ds["flute_synthetic_073-069-100"].cents == 0

    def f0(example):
        y, sr = sf.read(example.audio_path)
        y = y[sr // 10: sr // 2] * np.hanning(sr // 2 - sr // 10)
        spec = np.abs(np.fft.rfft(y, 1 << 18))
        k = np.argmax(spec[: int(600 / sr * (1 << 18))])
        a, b, c = np.log(spec[k - 1: k + 2])
        return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / (1 << 18)

    cents = 1200 * np.log2(f0(ds["flute_synthetic_073-069-100_+50c"]) / f0(ds["flute_synthetic_073-069-100"]))
    assert abs(cents - 50) < 5


def test_gm_subsample_keeps_a_fixed_share_covering_every_pitch():
    from livegen.data.gm import keep_note

    grid = [(p, k, v) for p in range(128) for k in range(21, 109) for v in (25, 50, 75, 100, 127)]
    kept = [(p, k, v) for p, k, v in grid if keep_note(0, p, k, v, 0, fraction=0.1, seed=0)]
    assert abs(len(kept) / len(grid) - 0.1) < 0.01
    assert {k for _, k, _ in kept} == set(range(21, 109))
    assert kept == [(p, k, v) for p, k, v in grid if keep_note(0, p, k, v, 0, fraction=0.1, seed=0)]
    assert kept != [(p, k, v) for p, k, v in grid if keep_note(0, p, k, v, 0, fraction=0.1, seed=1)]


def test_gm_render_bad_soundfont(tmp_path):
    with pytest.raises(ParameterError, match="SoundFont"):
        render_gm_dataset(tmp_path / "x", soundfont=tmp_path / "missing.sf2", progress=False)


# --- loaders ----------------------------------------------------------------------------------

def test_open_gm_output(gm_dir):
    out, _ = gm_dir
    ds = open_dataset(out)
    assert ds.layout == "gm" and len(ds) == 3
    ex = next(e for e in ds if e.id == "keyboard_synthetic_000-060-100")
    assert (ex.kind, ex.pitch, ex.velocity, ex.family, ex.sample_rate) == ("note", 60, 100, "keyboard", 24000)
    assert ex.release_s == pytest.approx(0.3, abs=64 / 24000) and os.path.isfile(ex.audio_path)


def _nsynth_split(folder, notes):
    meta = {}
    for i, (inst, family, pitch, vel) in enumerate(notes):
        name = f"{inst}-{pitch:03d}-{vel:03d}"
        write_wav(folder / "audio" / f"{name}.wav", freq=440 * 2 ** ((pitch - 69) / 12))
        meta[name] = {"note": i, "note_str": name, "pitch": pitch, "velocity": vel, "instrument_str": inst,
                      "instrument_family_str": family, "instrument_source_str": "acoustic", "sample_rate": SR}
    (folder / "examples.json").write_text(json.dumps(meta))


def test_open_official_nsynth_root_and_single_split(tmp_path):
    _nsynth_split(tmp_path / "nsynth-train", [("guitar_acoustic_001", "guitar", 60, 100), ("guitar_acoustic_001", "guitar", 62, 50)])
    _nsynth_split(tmp_path / "nsynth-valid", [("brass_acoustic_002", "brass", 64, 75)])
    _nsynth_split(tmp_path / "nsynth-test", [("flute_acoustic_003", "flute", 72, 127)])
    ds = open_dataset(tmp_path)
    assert ds.layout == "nsynth" and len(ds) == 4
    assert {e.split for e in ds} == {"train", "valid", "test"}
    assert [e.id for e in ds.split("valid")] == ["brass_acoustic_002-064-075"]
    ex = ds.split("test")[0]
    assert (ex.pitch, ex.velocity, ex.family, ex.release_s, ex.sample_rate) == (72, 127, "flute", 3.0, SR)
    single = open_dataset(tmp_path / "nsynth-valid")
    assert len(single) == 1 and single[0].split == "valid"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_open_maestro(tmp_path, fmt):
    rows = [("2018/a.wav", "2018/a.midi", "train", "Bach"), ("2018/b.wav", "2018/b.midi", "validation", "Chopin"),
            ("2017/c.wav", "2017/c.midi", "test", "Liszt")]
    for audio, midi, _, _ in rows:
        write_wav(tmp_path / audio, seconds=1.0)
        (tmp_path / midi).write_bytes(midi_bytes([(60, 90, 0, 480), (64, 70, 240, 960)]))
    cols = ["canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration"]
    records = [{"canonical_composer": c, "canonical_title": "t", "split": s, "year": 2018, "midi_filename": m,
                "audio_filename": a, "duration": 1.0} for a, m, s, c in rows]
    if fmt == "csv":
        lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in records]
        (tmp_path / "maestro-v3.0.0.csv").write_text("\n".join(lines) + "\n")
    else:  # v3 JSON is column-oriented
        table = {c: {str(i): r[c] for i, r in enumerate(records)} for c in cols}
        (tmp_path / "maestro-v3.0.0.json").write_text(json.dumps(table))
    ds = open_dataset(tmp_path)
    assert ds.layout == "maestro" and len(ds) == 3
    by_id = {e.id: e for e in ds}
    assert by_id["b"].split == "valid" and by_id["b"].label == "Chopin"
    assert by_id["a"].kind == "excerpt" and by_id["a"].pitch is None and by_id["a"].family == "keyboard"
    assert os.path.isfile(by_id["c"].audio_path) and os.path.isfile(by_id["c"].midi_path)


def test_open_gtzan(tmp_path):
    for genre in ("blues", "jazz"):
        for i in range(3):
            write_wav(tmp_path / "Data" / "genres_original" / genre / f"{genre}.{i:05d}.wav", seconds=0.2)
    ds = open_dataset(tmp_path)
    assert ds.layout == "gtzan" and len(ds) == 6
    assert {e.label for e in ds} == {"blues", "jazz"} and all(e.kind == "excerpt" for e in ds)
    assert [e.split for e in ds] == [e.split for e in open_dataset(tmp_path / "Data" / "genres_original")]


def test_open_any_audio_folder(tmp_path):
    write_wav(tmp_path / "drums" / "kick.wav", seconds=0.2)
    write_wav(tmp_path / "keys" / "deep" / "rhodes.flac", seconds=0.2)
    write_wav(tmp_path / "loose.ogg", seconds=0.2)
    (tmp_path / "notes.txt").write_text("not audio")
    ds = open_dataset(tmp_path)
    assert ds.layout == "folder"
    assert [e.id for e in ds] == ["drums/kick", "keys/deep/rhodes", "loose"]
    assert [e.label for e in ds] == ["drums", "keys", ""]
    assert all(e.split in ("train", "valid", "test") for e in ds)


def test_features_read_every_audio_format_and_stereo(tmp_path):
    stereo = np.stack([tone(0.3), tone(0.3, freq=660.0)], axis=1)
    (tmp_path / "in").mkdir()
    for name in ("a.wav", "b.flac", "c.ogg", "d.mp3"):
        sf.write(tmp_path / "in" / name, stereo, SR)
    fs = compute_features(open_dataset(tmp_path / "in"), sample_rate=24000, n_fft=512, hop=128,
                          cache_dir=tmp_path / "cache", progress=False)
    assert [r["id"] for r in fs.index] == ["a", "b", "c", "d"] and fs.report["skipped"] == []
    assert all(r["sample_rate"] == SR for r in fs.index)
    # Lossy codecs pad a little; every file still gives about 0.3 s of frames at 24 kHz.
    assert all(abs((r["stop"] - r["start"]) - (7200 - 512) // 128 - 1) <= 16 for r in fs.index)
    cut = compute_features(open_dataset(tmp_path / "in"), sample_rate=24000, n_fft=512, hop=128,
                           cache_dir=tmp_path / "cache", max_seconds=0.1, progress=False)
    assert cut.path != fs.path and all(r["stop"] - r["start"] == (2400 - 512) // 128 + 1 for r in cut.index)


def test_empty_wrong_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ParameterError, match="no dataset found.*NSynth.*MAESTRO.*GTZAN"):
        open_dataset(tmp_path)
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ParameterError, match=str(tmp_path)):
        open_dataset(tmp_path)
    with pytest.raises(ParameterError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "examples.json").write_text("[1, 2]")
    with pytest.raises(ParameterError, match="examples.json"):
        open_dataset(tmp_path)


# --- features ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_features_values_cache_and_skips(tmp_path, monkeypatch):
    write_wav(tmp_path / "data" / "a" / "one.wav", seconds=0.5, freq=440.0)
    write_wav(tmp_path / "data" / "a" / "two.wav", tone(0.25, sr=48000, freq=1000.0), sr=48000)
    write_wav(tmp_path / "data" / "b" / "silent.wav", np.zeros(SR // 2, np.float32))
    (tmp_path / "data" / "b" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    ds = open_dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    fs = compute_features(ds, sample_rate=24000, n_fft=256, hop=64, cache_dir=cache, progress=False)
    assert not fs.cache_hit and len(fs) == 2 and fs.bins == 129
    skipped = {s["id"]: s["reason"] for s in json.loads((cache / "report.json").read_text())["skipped"]}
    assert skipped["b/silent"] == "silent" and skipped["b/broken"].startswith("unreadable")
    # 0.5 s at 16 kHz -> 12000 samples at 24 kHz -> 1 + (12000 - 256) // 64 frames, peak at 440 Hz.
    one = fs.note_frames([r["id"] for r in fs.index].index("a/one"))
    assert one.shape == (1 + (12000 - 256) // 64, 129)
    assert abs(np.argmax(one[len(one) // 2]) * 24000 / 256 - 440) < 24000 / 256
    rows, offsets = fs.frame_table()
    assert len(rows) == fs.frames.shape[0] and offsets[0] == 0

    frames_file = fs.path / "frames.f16"
    mtime = frames_file.stat().st_mtime_ns
    import livegen.data.features as features

    def boom(*a, **k):
        raise AssertionError("cache hit must not read audio")

    monkeypatch.setattr(features, "load_audio", boom)
    again = compute_features(ds, sample_rate=24000, n_fft=256, hop=64, cache_dir=cache, progress=False)
    assert again.cache_hit and again.path == fs.path and frames_file.stat().st_mtime_ns == mtime
    assert np.array_equal(np.asarray(again.frames), np.asarray(fs.frames))
    monkeypatch.undo()
    other = compute_features(ds, sample_rate=24000, n_fft=256, hop=128, cache_dir=cache, progress=False)
    assert not other.cache_hit and other.path != fs.path
    # A changed file makes a new entry and retires the stale one of the same settings only.
    write_wav(tmp_path / "data" / "a" / "one.wav", seconds=0.6, freq=440.0)
    changed = compute_features(open_dataset(tmp_path / "data"), sample_rate=24000, n_fft=256, hop=64,
                               cache_dir=cache, progress=False)
    assert not changed.cache_hit and changed.path != fs.path
    assert not fs.path.exists() and other.path.exists()


@pytest.mark.slow
def test_features_of_notes_have_release_frames_and_splits(gm_dir, tmp_path):
    out, _ = gm_dir
    fs = compute_features(open_dataset(out), sample_rate=24000, n_fft=1024, hop=128, cache_dir=tmp_path, progress=False)
    assert len(fs) == 3 and fs.report["skipped"] == []
    hold_s = json.loads((out / "examples.json").read_text())["keyboard_synthetic_000-060-100"]["hold_s"]
    assert round(hold_s * 24000) == 7168  # 0.3 s rounded to FluidSynth's 64-sample blocks
    for row in fs.index:
        assert row["release_frame"] == release_frame(hold_s, sample_rate=24000, hop=128) == 56
        assert row["pitch"] in (60, 105) and row["velocity"] == 100
        assert row["release_s"] == pytest.approx(hold_s) and row["cents"] == 0
    # librosa's scale and framing (center=False, periodic Hann), stored as float16.
    import librosa

    y, _ = sf.read(out / "audio" / f"{fs[0]['id']}.wav", dtype="float32")
    ref = np.log(np.abs(librosa.stft(y, n_fft=1024, hop_length=128, center=False, window="hann")) + 1e-5).T
    assert fs.note_frames(0).shape == ref.shape
    assert np.abs(fs.note_frames(0) - ref).max() < 0.01
    assert sum(len(fs.split(s)) for s in ("train", "valid", "test")) == 3
    assert fs.frames.dtype == np.float16 and np.isfinite(np.asarray(fs.frames, np.float32)).all()
    two = compute_features(open_dataset(out), sample_rate=24000, n_fft=1024, hop=128, cache_dir=tmp_path / "j2",
                           progress=False, jobs=2)
    assert two.index == fs.index and np.array_equal(np.asarray(two.frames), np.asarray(fs.frames))


def test_release_frame_is_first_frame_at_or_after_note_off():
    assert release_frame(3.0, sample_rate=24000, hop=128) == 563  # 72000 / 128 = 562.5
    assert release_frame(None, sample_rate=24000, hop=128) == -1


# --- CLI --------------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "livegen", "dataset", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


@pytest.mark.slow
def test_cli_gm_and_info(gm_soundfont, tmp_path):
    out = tmp_path / "gm"
    done = _cli("gm", "--soundfont", str(gm_soundfont), "--out", str(out), "--programs", "24", "--pitches",
                "48-60:12", "--velocities", "80", "--hold", "0.2", "--release", "0.1", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "2 notes written" in done.stdout
    assert len(json.loads((out / "examples.json").read_text())) == 2
    sub = _cli("gm", "--soundfont", str(gm_soundfont), "--out", str(tmp_path / "sub"), "--programs", "24-25",
               "--pitches", "48-60", "--velocities", "80", "--hold", "0.1", "--release", "0.05", "--subsample", "0.25",
               "--seed", "3", "--no-progress")
    assert sub.returncode == 0, sub.stderr
    report = json.loads((tmp_path / "sub" / "render_report.json").read_text())
    assert 0 < report["rendered"] < 26 and report["subsample"] == 0.25 and report["seed"] == 3
    info = _cli("info", str(out))
    assert info.returncode == 0 and "layout gm, 2 examples" in info.stdout


@pytest.mark.slow
def test_cli_bad_spec_and_bad_folder_exit_2(gm_soundfont, tmp_path):
    bad = _cli("gm", "--soundfont", str(gm_soundfont), "--out", str(tmp_path / "x"), "--pitches", "60-200")
    assert bad.returncode == 2
    assert "--pitches" in bad.stderr and "'60-200'" in bad.stderr and "Traceback" not in bad.stderr
    empty = _cli("info", str(tmp_path))
    assert empty.returncode == 2 and "no dataset found" in empty.stderr and "Traceback" not in empty.stderr


@pytest.mark.parametrize("extra, named", [
    (["gm", "--soundfont", "{sf2}", "--out", "{file}"], ["--out {file}", "not a folder"]),
    (["gm-songs", "--soundfont", "{sf2}", "--out", "{file}/songs"], ["--out {file}/songs", "not a folder"]),
    (["gm", "--soundfont", "{sf2}", "--out", "{tmp}/x", "--sample-rate", "0"], ["--sample-rate", "0", "8000..192000"]),
    (["gm-songs", "--soundfont", "{sf2}", "--out", "{tmp}/x", "--seconds", "nan"], ["--seconds", "nan"]),
    (["gm", "--soundfont", "{sf2}", "--out", "{tmp}/x", "--gain", "nan"], ["--gain", "nan", "0..10"]),
    (["gm", "--soundfont", "{sf2}", "--out", "{tmp}/x", "--release", "nan"], ["--release", "nan"]),
    # a note is rendered whole in memory: 1e300 s was a numpy ValueError (maximum dimension exceeded)
    (["gm", "--soundfont", "{sf2}", "--out", "{tmp}/x", "--hold", "1e300"], ["--hold", "1e300", "<= 60"]),
    (["gm", "--soundfont", "{sf2}", "--out", "{tmp}/x", "--release", "1e300"], ["--release", "1e300", "0..60"]),
    # each job is a process: a mistyped count would have started that many
    (["gm", "--soundfont", "{sf2}", "--out", "{tmp}/x", "--jobs", "100000"], ["--jobs", "100000", "1..256"]),
    (["gm-songs", "--soundfont", "{sf2}", "--out", "{tmp}/x", "--jobs", "100000"], ["--jobs", "100000", "1..256"]),
    (["features", "{tmp}", "--cache", "{tmp}/c", "--jobs", "100000"], ["--jobs", "100000", "1..256"]),
    # every piece's task is listed before the first renders: 10**12 of them would fill the memory
    (["gm-songs", "--soundfont", "{sf2}", "--out", "{tmp}/x", "--songs", str(10 ** 12)], ["--songs", "1..100000"]),
    (["features", "{tmp}", "--cache", "{file}"], ["--cache {file}", "not a folder"]),
])
def test_cli_bad_output_or_number_exits_2_before_rendering(gm_soundfont, tmp_path, extra, named):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    def fill(text):
        return text.replace("{sf2}", str(gm_soundfont)).replace("{file}", str(taken)).replace("{tmp}", str(tmp_path))

    assert_refused(livegen("dataset", *map(fill, extra)), *map(fill, named))
    assert taken.read_text() == "mine"


def test_an_output_that_is_an_input_is_refused_through_links(tmp_path):
    source = write_wav(tmp_path / "take.wav")
    os.link(source, tmp_path / "hard.wav")
    os.symlink(source, tmp_path / "soft.wav")
    for name in ("take.wav", "hard.wav", "soft.wav"):
        with pytest.raises(ParameterError, match=rf"-o .*{name} is the input: writing it would destroy it"):
            check_not_an_input(tmp_path / name, "-o", {"the input": source})
    write_wav(tmp_path / "copy.wav")
    check_not_an_input(tmp_path / "copy.wav", "-o", {"the input": source})  # equal bytes, another file
    check_not_an_input(tmp_path / "new.wav", "-o", {"the input": source, "the log": None})


def test_example_is_a_plain_record():
    ex = Example(id="x", audio_path="/a.wav", kind="excerpt", instrument="", family="", split="train", label="")
    assert ex.pitch is None and ex.note_str == "x"


def test_read_midi_notes_from_hand_written_bytes(tmp_path):
    from livegen.data.midi import read_midi_notes

    path = tmp_path / "a.midi"
    # 480 ticks per beat at 120 bpm: one tick = 1/960 s.
    path.write_bytes(midi_bytes([(60, 90, 0, 480), (64, 70, 240, 960), (67, 50, 960, 1440)]))
    notes = read_midi_notes(path)
    assert [(n.pitch, n.velocity, n.onset_s, n.offset_s) for n in notes] == [
        (60, 90, 0.0, 0.5), (64, 70, 0.25, 1.0), (67, 50, 1.0, 1.5)]
    (tmp_path / "bad.midi").write_bytes(b"RIFFxxxx")
    with pytest.raises(ParameterError, match="Standard MIDI"):
        read_midi_notes(tmp_path / "bad.midi")


def test_read_midi_tempo_change_running_status_and_pedal(tmp_path):
    from livegen.data.midi import read_midi_notes

    track = bytes([
        0x00, 0xB0, 64, 127,                    # pedal down
        0x00, 0x90, 60, 100,                    # note on 60
        0x60, 62, 80,                           # 96 ticks later, running status: note on 62
        0x00, 0xFF, 0x51, 0x03, 0x0F, 0x42, 0x40,  # tempo -> 1 s per beat
        0x60, 0x80, 60, 0,                      # 96 ticks: note off 60 (held by pedal)
        0x00, 0x90, 62, 0,                      # note-on velocity 0 = off for 62
        0x60, 0xB0, 64, 0,                      # 96 ticks: pedal up
        0x00, 0xFF, 0x2F, 0x00,
    ])
    data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96) + b"MTrk" + struct.pack(">I", len(track)) + track
    (tmp_path / "p.mid").write_bytes(data)
    plain = read_midi_notes(tmp_path / "p.mid")
    assert [(n.pitch, n.onset_s, n.offset_s) for n in plain] == [(60, 0.0, 1.5), (62, 0.5, 1.5)]
    pedal = read_midi_notes(tmp_path / "p.mid", pedal=True)
    assert [(n.pitch, n.offset_s) for n in pedal] == [(60, 2.5), (62, 2.5)]


@pytest.mark.parametrize("argv, named", [
    (["melodies", "--seed", "-1"], ["--seed", "-1", "0..4294967295"]),
    (["grooves", "--seed", str(2 ** 32)], ["--seed", str(2 ** 32), "0..4294967295"]),
    (["grooves", "--swing", "9"], ["--swing", "9", "0..1"]),  # a step went backwards: it never ended
    (["melodies", "--low", "70", "--high", "60"], ["--low 70 --high 60"]),
    (["melodies", "--seconds", "nan"], ["--seconds", "nan"]),
])
def test_make_material_refuses_a_bad_number_before_rendering(tmp_path, argv, named):
    """scripts/make_material.py takes its seed as every `--seed` does, and refuses numbers that
    crashed or hung it, before a SoundFont or kit is read."""
    where = ["--soundfont", "x.sf2"] if argv[0] == "melodies" else ["--kit", str(tmp_path)]
    result = subprocess.run([sys.executable, "scripts/make_material.py", *argv, *where, "--out", str(tmp_path / "o")],
                            cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert_refused(result, *named)
    assert not (tmp_path / "o").exists()
