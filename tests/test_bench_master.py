"""`livegen bench master`: its measures read known signals right (real WAV files, no renders)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from livegen.bench.master import PITCH_NOTES, PITCH_STEP_S, loudness, measure, pitch_cents
from livegen.cli import main


@pytest.mark.parametrize("sr", [44100, 48000])
def test_loudness_of_a_sine_is_the_standards_figure(sr):
    """BS.1770-4: a 997 Hz sine at 0 dBFS peak reads -3.01 LUFS (one channel), so -23.01 at -20 dBFS."""
    t = np.arange(5 * sr) / sr
    assert loudness(0.1 * np.sin(2 * np.pi * 997 * t), sr) == pytest.approx(-23.01, abs=0.05)
    assert loudness(np.zeros(sr), sr) == float("-inf")


def test_measure_reads_true_peak_edges_and_bad_samples(tmp_path):
    sr = 48000
    n = np.arange(sr)
    y = (0.5 * np.sin(2 * np.pi * n / 4 + np.pi / 4)).astype(np.float32)  # samples at +-0.354, peak 0.5 between
    ramp = np.sin(np.linspace(0, np.pi / 2, 4800)) ** 2  # no step at the ends to ring
    sf.write(tmp_path / "tone.wav", y * np.concatenate([ramp, np.ones(sr - 9600), ramp[::-1]]), sr, subtype="FLOAT")
    m = measure(tmp_path / "tone.wav")
    assert m["peak_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert m["true_peak_dbtp"] == pytest.approx(20 * np.log10(0.5), abs=0.05)
    assert m["first"] == 0.0 and m["edge_step"] < m["typical_step"] and m["nonfinite"] == 0 and m["subnormal"] == 0
    y[1000] = np.nan
    y[2000:2003] = 1e-40  # subnormal in float32
    sf.write(tmp_path / "bad.wav", y, sr, subtype="FLOAT")
    m = measure(tmp_path / "bad.wav")
    assert m["nonfinite"] == 1 and m["subnormal"] == 3
    assert m["first"] == pytest.approx(0.354, abs=1e-3) and m["edge_step"] >= m["first"]
    assert m["format"] == "WAV FLOAT 1 ch 48000 Hz"


def test_pitch_cents_finds_a_detuned_note_under_vibrato(tmp_path):
    sr = 48000
    detune = {0: 0.0, 3: 7.0, 6: -4.0}
    y = np.zeros(int((0.1 + PITCH_STEP_S * len(PITCH_NOTES)) * sr))
    for i, p in enumerate(PITCH_NOTES):
        f0 = 440.0 * 2 ** ((p - 69 + detune.get(i, 0.0) / 100) / 12)
        start = int((0.1 + PITCH_STEP_S * i) * sr)
        t = np.arange(int(1.2 * sr)) / sr
        # a 10-cent vibrato at 5.5 Hz: at MIDI 93 its first sidebands outweigh the carrier
        phase = 2 * np.pi * np.cumsum(f0 * 2 ** (10 * np.sin(2 * np.pi * 5.5 * t) / 1200)) / sr
        y[start:start + len(t)] = sum(0.1 / k * np.sin(k * phase) for k in range(1, 5) if k * f0 < 11000)
    sf.write(tmp_path / "pitch_48000.wav", y, sr, subtype="FLOAT")
    cents = pitch_cents(tmp_path / "pitch_48000.wav")
    assert cents == pytest.approx([detune.get(i, 0.0) for i in range(len(PITCH_NOTES))], abs=0.2)


def test_bench_master_prints_a_row_per_file(tmp_path, capsys):
    sf.write(tmp_path / "a.wav", np.zeros(4800, dtype=np.float32), 48000, subtype="PCM_24")
    assert main(["bench", "master", str(tmp_path / "a.wav")]) == 0
    out = capsys.readouterr().out
    assert "| a.wav | WAV PCM_24 1 ch 48000 Hz | -inf |" in out
