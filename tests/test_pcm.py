"""Float signals written to 16-bit files: TPDF dither, seeded (`livegen.data.pcm`)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from livegen.data.pcm import write_audio

SR = 48000
N = 1 << 17
LSB = 2.0 ** -15
BIN = 1000  # a tone on an FFT bin: no leakage, its harmonics on bins 3 * BIN, 5 * BIN


def tone(amplitude: float) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * BIN * np.arange(N) / N)).astype(np.float32)


def written(tmp_path, y, name="x.wav", **kw) -> np.ndarray:
    write_audio(tmp_path / name, y, SR, **kw)
    out, sr = sf.read(tmp_path / name, dtype="float64")
    assert sr == SR and out.shape == y.shape
    return out


def test_a_tone_below_one_lsb_is_heard_in_the_dither_noise(tmp_path):
    """A -100 dBFS tone is a third of a 16-bit step: quantised as it is, it becomes silence or a
    one-step square wave (libsndfile's conversion: odd harmonics a third, a fifth... of it);
    dithered, it stands tens of dB above a noise that no harmonic rises out of."""
    out = written(tmp_path, tone(10 ** (-100 / 20)), subtype="PCM_16")
    spectrum = np.abs(np.fft.rfft(out))
    noise = np.median(spectrum)
    assert spectrum[BIN] > 30 * noise, (spectrum[BIN], noise)
    for harmonic in (3, 5):
        assert spectrum[harmonic * BIN] < 5 * noise, (harmonic, spectrum[harmonic * BIN], noise)


def test_the_error_of_a_quiet_tone_is_noise_not_harmonics(tmp_path):
    """At 1.3 LSB, plain rounding turns the tone into a stepped wave (odd harmonics); with TPDF
    dither the error is signal-independent noise of 1/4 LSB^2 (rounding's 1/12 plus the
    triangle's 1/6), uncorrelated with the tone, and no harmonic stands out of it."""
    y = tone(1.3 * LSB)
    out = written(tmp_path, y, subtype="PCM_16")
    error = (out - y) / LSB
    assert 0.22 < np.mean(error ** 2) < 0.28, np.mean(error ** 2)
    assert abs(np.corrcoef(error, y)[0, 1]) < 0.02
    spectrum = np.abs(np.fft.rfft(out))
    noise = np.median(spectrum)
    for harmonic in (3, 5, 7):
        assert spectrum[harmonic * BIN] < 5 * noise, (harmonic, spectrum[harmonic * BIN] / noise)


def test_the_same_seed_writes_the_same_file_and_full_scale_clips(tmp_path):
    y = np.concatenate([tone(0.5)[:4096], [1.0, -1.0, 1.2, -1.2, np.nan]]).astype(np.float32)
    a = written(tmp_path, y, "a.wav", subtype="PCM_16", seed=(7, 1))
    b = written(tmp_path, y, "b.wav", subtype="PCM_16", seed=(7, 1))
    c = written(tmp_path, y, "c.wav", subtype="PCM_16", seed=8)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert not np.array_equal(a, c)
    assert np.abs(a - np.clip(np.nan_to_num(y), -1, 1))[:-4].max() <= 1.5 * LSB + 1e-12
    ints, _ = sf.read(tmp_path / "a.wav", dtype="int16")
    assert ints[-5] >= 32766 and ints[-4] <= -32767  # near full scale, never wrapped to the other sign
    assert ints[-3] == 32767 and ints[-2] == -32768 and abs(int(ints[-1])) <= 1


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_24"])
def test_float_and_24_bit_are_written_as_they_are(tmp_path, subtype):
    y = tone(0.25)[:20000]
    write_audio(tmp_path / "mine.wav", y, SR, subtype=subtype)
    sf.write(tmp_path / "plain.wav", y, SR, subtype=subtype)
    assert (tmp_path / "mine.wav").read_bytes() == (tmp_path / "plain.wav").read_bytes()


def test_stereo_and_the_format_default(tmp_path):
    """Frames x channels as soundfile takes them; no subtype: the name's format's default (FLAC: 16 bits, dithered)."""
    y = np.stack([tone(0.1), tone(-0.1)], axis=1)[:70000]
    out = written(tmp_path, y, "x.flac")
    assert sf.info(tmp_path / "x.flac").subtype == "PCM_16"
    assert np.abs(out - y).max() <= 1.5 * LSB and not np.array_equal(out[:, 0], -out[:, 1])
