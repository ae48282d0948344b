"""An audio input plays a voice of the model: the tracker, the source, `livegen render --input`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from conftest import REPO
from livegen.dsp.tracker import PitchTracker
from livegen.engine.events import Event
from livegen.engine.input import FileFeed, InputSource
from livegen.errors import ParameterError
from livegen.model.fast import NumpyFrameEncoder
from livegen.server import factory

SR = 24000
HOP = 128


def tone(midi: float, seconds: float, *, amp: float = 0.3, sr: int = SR) -> np.ndarray:
    """A harmonic tone with 10 ms fades (a sung vowel's shape, roughly)."""
    f = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(int(seconds * sr)) / sr
    env = np.clip(np.minimum(t / 0.01, (seconds - t) / 0.01), 0, 1)
    y = sum(a * np.sin(2 * np.pi * k * f * t + k) for k, a in ((1, 1.0), (2, 0.5), (3, 0.25)))
    return (amp / 1.75 * env * y).astype(np.float32)


def track(y: np.ndarray, sr: int = SR):
    """(f0 Hz, periodicity, level dBFS) per hop of `y`, with the project's tracker."""
    tracker = PitchTracker(samplerate=sr)
    out = []
    for i in range(0, len(y) - HOP + 1, HOP):
        tracker.push(y[i:i + HOP].astype(np.float64))
        out.append((tracker.f0, tracker.periodicity, tracker.level_db))
    return np.array(out)


def cents(f, midi):
    return 1200 * np.log2(np.maximum(f, 1e-9) / (440.0 * 2 ** ((midi - 69) / 12)))


@pytest.fixture(scope="module")
def loaded():
    return factory.load(None, log=lambda text: None)


def render_input(loaded, y, *, events=(), seconds=None, seed=0):
    feed = FileFeed(y, samplerate=SR, model_rate=loaded.config.sample_rate)
    engine = loaded.engine(samplerate=SR, seed=seed, input_feed=feed)
    out = engine.render_events([Event("param", t=0.0, name="drone", value=0), *events],
                               seconds=seconds or len(y) / SR + 0.2)
    return out, engine


def test_tracker_finds_the_pitch_of_tones_and_not_of_noise():
    for midi in (36, 48, 57, 60, 72, 84, 90):
        res = track(tone(midi, 0.5))
        steady = res[10:-6]
        assert np.abs(cents(steady[:, 0], midi)).max() < 5, midi
        assert steady[:, 1].min() > 0.9
    noise = np.random.default_rng(0).standard_normal(SR // 2).astype(np.float32) * 0.1
    assert track(noise)[10:, 1].max() < 0.5


def test_tracker_is_deterministic_and_hears_an_onset_within_three_hops():
    y = np.concatenate([np.zeros(SR // 4, np.float32), tone(64, 0.3)])
    a, b = track(y), track(y)
    assert np.array_equal(a, b)
    onset = SR // 4 // HOP
    assert abs(cents(a[onset + 2, 0], 64)) < 30 and a[onset + 2, 1] > 0.5


def test_output_follows_the_pitch_of_a_melody_and_gaps_are_silent(loaded):
    melody = (60, 64, 67, 72, 55)
    gap = np.zeros(int(0.25 * SR), np.float32)
    y = np.concatenate([np.concatenate([tone(m, 0.5), gap]) for m in melody])
    out, engine = render_input(loaded, y)
    res = track(out)
    step = int(0.75 * SR) // HOP
    for k, midi in enumerate(melody):
        note = res[k * step + 12:k * step + int(0.45 * SR) // HOP]
        assert np.median(np.abs(cents(note[:, 0], midi))) < 20, (midi, note[:, 0])
        quiet = res[k * step + int(0.62 * SR) // HOP:(k + 1) * step - 2]
        assert np.median(note[:, 2]) - quiet[:, 2].max() > 30, midi
    status = engine.status()
    assert status["input_clipped"] == 0 and status["nan"] == 0


def test_quantise_transpose_and_a_fixed_note_move_the_voice(loaded):
    y = tone(60.3, 0.6)
    free, _ = render_input(loaded, y)
    snapped, _ = render_input(loaded, y, events=[Event("param", t=0, name="input_quantise", value=1),
                                                 Event("param", t=0, name="input_transpose", value=-12)])
    fixed, _ = render_input(loaded, y, events=[Event("param", t=0, name="input_pitch", value=0),
                                               Event("param", t=0, name="input_note", value=67)])
    f_free = np.median(track(free)[15:-15, 0])
    f_snap = np.median(track(snapped)[15:-15, 0])
    assert abs(cents(f_free, 60.3)) < 15
    assert abs(cents(f_snap, 48.0)) < 15
    assert abs(cents(np.median(track(fixed)[15:-15, 0]), 67.0)) < 15


def test_dynamics_off_the_inputs_loudness_moves_the_level_alone(loaded):
    """input_dynamics 0: an input 6 dB louder plays the same frames twice as loud; 1 (the default):
    it also plays the model's louder dynamics, another timbre."""
    soft, loud = tone(62, 0.6, amp=0.03), tone(62, 0.6, amp=0.06)
    gate = Event("param", t=0, name="input_gate_db", value=-90)  # both open in the same hop
    level_only = [gate, Event("param", t=0, name="input_dynamics", value=0)]
    a, _ = render_input(loaded, soft, events=level_only)
    b, _ = render_input(loaded, loud, events=level_only)
    assert np.abs(a).max() > 1e-3
    assert np.abs(b - 2 * a).max() < 0.01 * np.abs(b).max()
    c, _ = render_input(loaded, soft, events=[gate])
    d, _ = render_input(loaded, loud, events=[gate])
    assert np.abs(d - 2 * c).max() > 0.05 * np.abs(d).max()


def test_unvoiced_input_plays_noise_alone_and_silence_plays_nothing(loaded):
    breath = (np.random.default_rng(1).standard_normal(int(0.6 * SR)) * 0.05).astype(np.float32)
    out, _ = render_input(loaded, breath)
    res = track(out)[15:-20]
    assert np.median(res[:, 2]) > -50  # it sounds
    assert np.median(res[:, 1]) < 0.6  # and it has no pitch
    voiced, _ = render_input(loaded, tone(60, 0.6, amp=0.05))
    assert np.median(track(voiced)[15:-20, 1]) > 0.9
    silent, _ = render_input(loaded, np.zeros(SR // 2, np.float32))
    assert np.abs(silent).max() < 1e-6


def test_clipping_input_is_counted_and_timbre_point_is_reported(loaded):
    y = np.clip(tone(57, 0.5, amp=1.6), -1, 1)
    out, engine = render_input(loaded, y, events=[Event("param", t=0, name="input_timbre", value=1)])
    status = engine.status()
    assert status["input_clipped"] > 100
    x, yy = status["input_xy"]
    assert np.isfinite(x) and np.isfinite(yy)
    pad, _ = render_input(loaded, y)
    assert not np.allclose(out, pad)  # the input's own latent point is not the pad's


def test_an_input_at_another_rate_is_resampled_and_a_feed_at_the_wrong_rate_refused(loaded, tmp_path):
    path = tmp_path / "in.wav"
    sf.write(path, np.stack([tone(62, 0.4, sr=44100)] * 2, 1), 44100)
    feed = FileFeed(path, model_rate=loaded.config.sample_rate)
    assert feed.samplerate == loaded.config.sample_rate and abs(feed.seconds - 0.4) < 1e-3
    assert feed.header()["sha256"] and feed.header()["samplerate"] == 44100
    with pytest.raises(ParameterError, match="model's rate"):
        InputSource(loaded.model, feed=FileFeed(tone(62, 0.1), samplerate=SR, model_rate=SR // 2))


def render_cli(*args):
    return subprocess.run([sys.executable, "-m", "livegen", "render", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.slow
def test_render_with_input_is_deterministic_and_its_log_renders_it_again(tmp_path):
    y = np.concatenate([tone(m, 0.3) for m in (62, 65, 69)])
    wav = tmp_path / "voice.wav"
    sf.write(wav, soxr.resample(y, SR, 48000), 48000, subtype="FLOAT")
    events = tmp_path / "events.jsonl"
    events.write_text('{"t": 0.3, "type": "param", "name": "input_transpose", "value": 12}\n'
                      '{"t": 0.5, "type": "note_on", "pitch": 48, "velocity": 80}\n'
                      '{"t": 0.8, "type": "note_off", "pitch": 48}\n')
    outs = []
    for name in ("a", "b"):
        result = render_cli(str(events), "--input", str(wav), "-o", str(tmp_path / f"{name}.wav"),
                            "--log", str(tmp_path / f"{name}.jsonl"))
        assert result.returncode == 0, result.stderr
        outs.append(sf.read(tmp_path / f"{name}.wav", dtype="float32")[0])
    assert np.array_equal(outs[0], outs[1]) and np.abs(outs[0]).max() > 1e-3
    header = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])
    assert header["input"]["file"] == str(wav.resolve()) and len(header["input"]["sha256"]) == 64

    again = render_cli(str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "again.wav"))
    assert again.returncode == 0, again.stderr
    assert np.array_equal(sf.read(tmp_path / "again.wav", dtype="float32")[0], outs[0])

    sf.write(wav, soxr.resample(y * 0.5, SR, 48000), 48000, subtype="FLOAT")  # the take's input changed
    changed = render_cli(str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "changed.wav"))
    assert changed.returncode == 2 and str(wav.resolve()) in changed.stderr and "changed" in changed.stderr
    assert "Traceback" not in changed.stderr and not (tmp_path / "changed.wav").exists()
    wav.unlink()
    missing = render_cli(str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "missing.wav"))
    assert missing.returncode == 2 and str(wav.resolve()) in missing.stderr and "not found" in missing.stderr
    nothing = render_cli("--input", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.wav"))
    assert nothing.returncode == 2 and "nope.wav" in nothing.stderr and "Traceback" not in nothing.stderr


def test_non_finite_input_is_silence_and_the_voice_goes_on(loaded):
    y = tone(64, 0.8)
    y[int(0.3 * SR):int(0.3 * SR) + 50] = np.nan
    y[int(0.31 * SR)] = np.inf
    feed = FileFeed(y, samplerate=SR, model_rate=SR)
    feed.samples[int(0.3 * SR):int(0.3 * SR) + 50] = np.nan  # FileFeed cleans a file; a live feed may not
    engine = loaded.engine(samplerate=SR, seed=0, input_feed=feed)
    out = engine.render_events([Event("param", t=0.0, name="drone", value=0)], seconds=1.0)
    assert np.isfinite(out).all() and engine.status()["nan"] == 0
    assert abs(cents(np.median(track(out)[int(0.5 * SR) // HOP:int(0.75 * SR) // HOP, 0]), 64)) < 20


def test_a_glide_quantised_steps_from_semitone_to_semitone(loaded):
    f = np.linspace(60, 63, 2 * SR)
    phase = 2 * np.pi * np.cumsum(440 * 2 ** ((f - 69) / 12)) / SR
    y = (0.1 * (np.sin(phase) + 0.5 * np.sin(2 * phase))).astype(np.float32)
    out, engine = render_input(loaded, y, events=[Event("param", t=0, name="input_quantise", value=1)])
    midi = 69 + 12 * np.log2(np.maximum(track(out)[20:-40, 0], 1) / 440)
    assert np.mean(np.abs(midi - np.round(midi)) < 0.3) > 0.85  # on semitones, not between
    assert set(np.round(midi).astype(int)) >= {60, 61, 62, 63}
    assert engine.status()["input_onsets"] >= 4  # each new semitone sounds at once


def test_numpy_encoder_matches_the_models_encode(loaded):
    model = loaded.model
    rng = np.random.default_rng(3)
    frames = (rng.standard_normal((10, model.config.n_bins)) * 2 - 4).astype(np.float32)
    encoder = NumpyFrameEncoder(model)
    rows = np.zeros((10, encoder.features), np.float32)
    for k in range(10):
        encoder.frame(frames[k], rows[k])
    z = encoder.head(rows, 57.0, 0.6).copy()
    with torch.inference_mode():
        mu, _ = model.encode(torch.from_numpy(frames)[None], torch.tensor([57.0]), torch.tensor([0.6]))
    np.testing.assert_allclose(z, mu[0].numpy(), rtol=1e-4, atol=1e-4)
