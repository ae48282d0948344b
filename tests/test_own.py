"""Training on any folder of audio, through the real CLI: real files in, `livegen render` out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livegen.cli import main
from livegen.model.kinds import load_any_model, model_format

TINY = {
    "batch_notes": 4, "frames_per_note": 4, "enc_frames": 6, "log_every": 2, "val_every": 2, "ckpt_every": 2,
    "plane_notes": 50, "calibrate_notes": 0,
    "model": {"latent_dim": 4, "hidden": 32, "enc_hidden": 32, "n_bands": 16, "max_harmonics": 64, "noise_dim": 8},
}
EVENTS = [
    {"t": 0.0, "type": "param", "name": "drone", "value": 0},
    {"t": 0.05, "type": "note_on", "pitch": 57, "velocity": 100},
    {"t": 0.4, "type": "note_off", "pitch": 57},
    {"t": 0.5, "type": "note_on", "pitch": 64, "velocity": 40},
    {"t": 0.9, "type": "note_off", "pitch": 64},
]


def tone_line(pitches, *, sr: int, note_s: float = 0.35, seed: int = 0) -> np.ndarray:
    """A monophonic line of harmonic notes with short gaps (a real file's worth of melody)."""
    rng = np.random.default_rng(seed)
    parts = []
    for p in pitches:
        f0 = 440.0 * 2 ** ((p - 69) / 12)
        t = np.arange(int(note_s * sr)) / sr
        y = sum(np.sin(2 * np.pi * k * f0 * t) / k ** 1.5 for k in range(1, 12) if k * f0 < sr / 2)
        env = np.minimum(1.0, t / 0.02) * np.minimum(1.0, (note_s - t) / 0.03)
        parts += [0.2 * float(rng.uniform(0.5, 1.0)) * env * y, np.zeros(int(0.04 * sr))]
    return np.concatenate(parts).astype(np.float32)


def drum_groove(*, sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Kick (falling sine) and hat (decaying noise) hits on eighths: unpitched material."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr) + sr, np.float32)
    t = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 120 * np.exp(-t / 0.03)) * t) * np.exp(-t / 0.08)
    hat = rng.standard_normal(t.size) * np.exp(-t / 0.03)
    hat = np.diff(hat, prepend=0.0)
    for i, start in enumerate(np.arange(0.0, seconds, 0.25)):
        a = int(start * sr)
        hit = kick if i % 4 == 0 else hat
        y[a:a + t.size] += 0.25 * float(rng.uniform(0.5, 1.0)) * hit
    return y[:int(seconds * sr)]


@pytest.fixture(autouse=True)
def own_data_home(tmp_path, monkeypatch):
    """Trained models are listed in the user's data folder: a test's own, here."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))


@pytest.fixture(scope="module")
def pitched_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pitched")
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    sr = 32000
    line = tone_line(scale + scale[::-1] + scale, sr=sr, seed=1)
    sf.write(d / "take1.wav", np.stack([line, line * 0.9], 1), sr)                  # stereo
    (d / "more").mkdir()
    sf.write(d / "more" / "take2.flac", tone_line(scale[::-1] * 2, sr=sr, seed=2), sr)
    return d


@pytest.fixture(scope="module")
def drum_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("drums")
    for i in range(3):
        sf.write(d / f"groove{i}.wav", drum_groove(sr=48000, seconds=3.0, seed=i), 48000)
    return d


def _config(tmp_path) -> str:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return str(path)


def _train(tmp_path, data, out, *extra, steps: int = 4):
    return main(["train", "--data", str(data), "--out", str(out), "--config", _config(tmp_path), "--steps", str(steps),
                 "--cache", str(tmp_path / "cache"), "--device", "cpu", "--no-progress", *extra])


def _render(tmp_path, model_dir) -> np.ndarray:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    wav = tmp_path / "out.wav"
    assert main(["render", str(events), "--model", str(model_dir), "-o", str(wav), "--seconds", "1.2"]) == 0
    y, sr = sf.read(wav, dtype="float32")
    assert sr == 48000 and np.isfinite(y).all()
    return y


@pytest.mark.slow
def test_pitched_folder_auto_trains_renders_and_writes_a_card(pitched_dir, tmp_path, capsys):
    assert _train(tmp_path, pitched_dir, tmp_path / "run") == 0
    text = capsys.readouterr().out
    assert "kind: pitched" in text and "voiced" in text
    model_dir = tmp_path / "run" / "model"
    assert model_format(model_dir) == "livegen-spectral-vae"
    model = load_any_model(model_dir)
    assert model.config.sample_rate == 32000 and model.metadata["own"]["kind"] == "pitched"
    assert model.metadata["own"]["pitches_heard"][0] == 60
    card = (model_dir / "card.md").read_text()
    assert "pitch accuracy" in card and "held-out LSD" in card and f"livegen play --model {model_dir}" in card
    assert "never-heard pitches" in card  # 61, 63, 66, 68, 70 lie inside the range and are never played
    assert f"--data {pitched_dir} --out {tmp_path / 'run'} --steps 4 --device cpu --cache" in card  # the exact command
    y = _render(tmp_path, model_dir)
    assert np.abs(y).max() > 1e-3


@pytest.mark.slow
def test_drum_folder_auto_picks_texture_and_plays_notes(drum_dir, tmp_path, capsys):
    assert _train(tmp_path, drum_dir, tmp_path / "run") == 0
    text = capsys.readouterr().out
    assert "kind: texture" in text
    model = load_any_model(tmp_path / "run" / "model")
    assert model_format(tmp_path / "run" / "model") == "livegen-texture-vae"
    assert model.config.gain_db == model.metadata["gain_db"]  # the playing level set after training
    assert model.config.sample_rate == 48000 and model.config.n_fft == 2048  # the material's bandwidth kept
    y = _render(tmp_path, tmp_path / "run" / "model")
    assert np.abs(y).max() > 1e-3
    # Transposition: an octave above the root reads bin k of the root's frame at bin 2k.
    import torch

    z = model.xy_to_z(torch.tensor([[0.5, 0.5]])).expand(2, -1)
    with torch.no_grad():
        frames = model.decode(z, torch.tensor([48.0, 60.0]), torch.tensor([0.8, 0.8]), torch.tensor([0.02, 0.02]),
                              torch.tensor([-1.0, -1.0])).numpy()
    assert model.config.root_pitch == 48
    assert np.allclose(frames[1, 2:400:2], frames[0, 1:200], rtol=1e-4)


def test_pitched_material_as_texture_says_what_it_gives_up(pitched_dir, tmp_path, capsys):
    assert _train(tmp_path, pitched_dir, tmp_path / "run", "--kind", "texture", steps=2) == 0
    assert "trained as texture: notes transpose the recorded sound" in capsys.readouterr().out
    assert model_format(tmp_path / "run" / "model") == "livegen-texture-vae"


def test_maestro_and_gtzan_layouts_train_and_render(tmp_path, capsys):
    sr = 22050
    maestro = tmp_path / "maestro"
    (maestro / "2018").mkdir(parents=True)
    rows = ["canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration"]
    for i, split in enumerate(("train", "train", "validation")):
        chord = sum(tone_line([48 + i, 52 + i, 55 + i] * 4, sr=sr, seed=i + k) for k in range(1))
        sf.write(maestro / "2018" / f"piece{i}.wav", chord, sr)
        rows.append(f"Someone,Piece {i},{split},2018,2018/piece{i}.midi,2018/piece{i}.wav,4.0")
    (maestro / "maestro-v3.0.0.csv").write_text("\n".join(rows) + "\n")
    gtzan = tmp_path / "gtzan" / "genres_original"
    for genre in ("rock", "jazz"):
        (gtzan / genre).mkdir(parents=True)
        for i in range(2):
            sf.write(gtzan / genre / f"{genre}.{i:05d}.wav", drum_groove(sr=sr, seconds=2.5, seed=i), sr)
    for name, data in (("maestro", maestro), ("gtzan", tmp_path / "gtzan")):
        assert _train(tmp_path, data, tmp_path / name, "--kind", "texture") == 0
        assert f"({name} layout)" in capsys.readouterr().out
        model = load_any_model(tmp_path / name / "model")
        assert model.config.sample_rate == sr
        assert np.abs(_render(tmp_path, tmp_path / name / "model")).max() > 1e-4


def test_bad_files_are_listed_and_skipped_and_odd_audio_is_handled(drum_dir, tmp_path, capsys):
    data = tmp_path / "mixed"
    shutil.copytree(drum_dir, data)
    (data / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    sf.write(data / "empty.wav", np.zeros((0, 1), np.float32), 48000)
    sf.write(data / "silent.flac", np.zeros(48000, np.float32), 48000)
    loud = np.clip(drum_groove(sr=22050, seconds=3.0, seed=5) * 8 + 0.2, -1, 1)   # clipped, DC, another rate
    sf.write(data / "hot.wav", np.stack([loud, loud], 1), 22050)
    assert _train(tmp_path, data, tmp_path / "run", "--kind", "texture") == 0
    text = capsys.readouterr().out
    for name, reason in (("broken.wav", "unreadable"), ("empty.wav", "empty"), ("silent.flac", "silent")):
        assert f"{name}: {reason}" in text
    assert "clipping in hot" in text and "DC offset removed" in text
    assert "22050 Hz x1, 48000 Hz x5" in text  # the header read counts empty and silent files too
    card = (tmp_path / "run" / "model" / "card.md").read_text()
    assert "skipped: " in card and "4 used of 7 found" in card


def test_long_files_are_read_in_chunks_without_seams(tmp_path, monkeypatch):
    """Features of a file read 0.5 s at a time (resampled on the way) equal those of the whole file."""
    import livegen.data.features as features
    from livegen.data.datasets import open_dataset

    y = drum_groove(sr=44100, seconds=2.2, seed=3) + 0.3 * tone_line([60, 64, 67] * 3, sr=44100)[:int(2.2 * 44100)]
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "long.wav", y, 44100)
    whole = features.compute_features(open_dataset(tmp_path / "in"), sample_rate=24000, n_fft=512, hop=64,
                                      cache_dir=tmp_path / "a", progress=False)
    monkeypatch.setattr(features, "CHUNK_SECONDS", 0.5)
    chunked = features.compute_features(open_dataset(tmp_path / "in"), sample_rate=24000, n_fft=512, hop=64,
                                        cache_dir=tmp_path / "b", progress=False)
    a, b = whole.note_frames(0), chunked.note_frames(0)
    assert a.shape == b.shape
    assert np.abs(a - b).max() < 0.02  # float16 storage; soxr streams the same samples in pieces


def test_too_little_audio_names_found_and_needed(tmp_path, capsys):
    data = tmp_path / "short"
    data.mkdir()
    sf.write(data / "blip.wav", drum_groove(sr=24000, seconds=1.0), 24000)
    assert _train(tmp_path, data, tmp_path / "run", "--kind", "texture") == 2
    err = capsys.readouterr().err
    assert "s of sounding audio found for training, 4 s needed" in err and str(data) in err
    (data / "blip.wav").unlink()
    (data / "dead.wav").write_bytes(b"nope")
    assert _train(tmp_path, data, tmp_path / "run2", "--kind", "texture") == 2
    assert "none of the 1 files is usable audio" in capsys.readouterr().err


def test_resume_continues_exactly(drum_dir, tmp_path):
    assert _train(tmp_path, drum_dir, tmp_path / "full", steps=6) == 0
    assert _train(tmp_path, drum_dir, tmp_path / "part", steps=4) == 0
    assert _train(tmp_path, drum_dir, tmp_path / "part", "--resume", steps=6) == 0
    rows = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    again = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in again if r["split"] == "train"] == [2, 4, 6]
    assert again[-1]["loss"] == pytest.approx(rows[-1]["loss"], rel=1e-5)
    state = json.loads((tmp_path / "part" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6 and state["kind"] == "texture"
    # The UI's model picker (F3) lists what was trained, newest first.
    from livegen.tui.screens.model_picker import find_models

    listed = find_models([])
    assert listed[:2] == [(tmp_path / "part" / "model").resolve(), (tmp_path / "full" / "model").resolve()]


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(drum_dir, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun ships with torch"
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "livegen", "train", "--data", str(drum_dir),
         "--out", str(out), "--config", _config(tmp_path), "--steps", "4", "--device", "cpu", "--no-progress",
         "--cache", str(tmp_path / "cache")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["world_size"] for r in rows if r["split"] == "train"] == [2, 2]
    assert model_format(out / "model") == "livegen-texture-vae"


def test_texture_numpy_decoder_matches_the_model():
    """The engine's CPU decoder of a texture model gives `decode`'s frames (noise on and off)."""
    import torch

    from livegen.model.fast import NumpyTextureDecoder
    from livegen.model.texture import TextureConfig, TextureModel, init_texture

    model = TextureModel(TextureConfig(n_fft=512, hop=64, hidden=32, enc_hidden=32, noise_dim=8, gain_db=6.0)).eval()
    init_texture(model, torch.Generator().manual_seed(0))
    fast = NumpyTextureDecoder(model, max_voices=2)
    rng = np.random.default_rng(0)
    z = rng.standard_normal(model.config.latent_dim)
    pitch, vel = np.array([48.0, 55.3, 36.0]), np.array([0.8, 0.3, 1.0])
    t_on, t_off = np.array([0.01, 0.7, 1.3]), np.array([-1.0, 0.1, -1.0])
    for noise in (None, rng.standard_normal((3, 8)).astype(np.float32)):
        got = fast(z, pitch, vel, t_on, t_off, noise).copy()
        with torch.no_grad():
            want = model.decode(*(torch.tensor(a, dtype=torch.float32) for a in (np.tile(z, (3, 1)), pitch, vel, t_on,
                                                                                   t_off)),
                                None if noise is None else torch.from_numpy(noise)).numpy()
        assert np.allclose(np.log(got), np.log(want), atol=1e-3)


def test_bundled_kit_model_plays_and_is_offered(tmp_path):
    """`models/hydrogen-kits` (trained by this path on Debian's recorded drum kits) renders and the
    model picker lists it."""
    from livegen.tui.screens.model_picker import find_models

    bundled = Path(__file__).resolve().parents[1] / "models" / "hydrogen-kits"
    assert model_format(bundled) == "livegen-texture-vae"
    assert sum(f.stat().st_size for f in bundled.iterdir()) < 10 * 2**20
    y = _render(tmp_path, bundled)
    assert np.sqrt(np.mean(y ** 2)) > 10 ** (-50 / 20)
    # Without notes the drone sounds the pad's point on its own.
    events = tmp_path / "none.jsonl"
    events.write_text(json.dumps({"t": 0.0, "type": "param", "name": "x", "value": 0.3}) + "\n")
    assert main(["render", str(events), "--model", str(bundled), "-o", str(tmp_path / "drone.wav"), "--seconds", "1.5"]) == 0
    drone, _ = sf.read(tmp_path / "drone.wav", dtype="float32")
    assert np.isfinite(drone).all() and np.sqrt(np.mean(drone[4800:] ** 2)) > 10 ** (-40 / 20)
    assert bundled.resolve() in find_models([bundled.parent])
