"""`livegen resynth` as a user runs it: a subprocess on real FluidSynth / espeak-ng audio files."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, require, require_binary
from helpers import envelope_lag

pytestmark = pytest.mark.slow  # each test runs the CLI or a benchmark in a process of its own


def _resynth(*args):
    return subprocess.run([sys.executable, "-m", "livegen", "resynth", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def _sc(stdout: str) -> float:
    m = re.search(r"spectral convergence: (-?\d+\.\d+) dB", stdout)
    assert m, stdout
    return float(m.group(1))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, gm_soundfont):
    from livegen.bench.phase import make_clips

    try:
        import fluidsynth  # noqa: F401
    except (ImportError, OSError) as exc:
        require(False, f"pyfluidsynth with libfluidsynth ({exc})")
    require_binary("espeak-ng")
    folder = tmp_path_factory.mktemp("resynth")
    c22 = make_clips(sr=22050, seconds=1.2, names=["drum_loop", "speech", "piano_chords"])
    c16 = make_clips(sr=16000, seconds=1.0, names=["speech"])
    paths = {
        "stereo": folder / "drums_speech.wav",
        "speech16": folder / "speech16.wav",
        "piano_flac": folder / "piano.flac",
        "short": folder / "short.wav",
        "empty": folder / "empty.wav",
        "junk": folder / "junk.wav",
    }
    sf.write(paths["stereo"], np.stack([c22["drum_loop"], c22["speech"]], axis=1), 22050, subtype="PCM_16")
    sf.write(paths["speech16"], c16["speech"], 16000, subtype="PCM_16")
    sf.write(paths["piano_flac"], c22["piano_chords"], 22050, format="FLAC")
    sf.write(paths["short"], c22["drum_loop"][:700], 22050)
    sf.write(paths["empty"], np.zeros((0,), np.float32), 22050)
    paths["junk"].write_text("this is not audio\n")
    paths["folder"] = folder
    return paths


def test_default_stereo_wav(inputs, tmp_path):
    out = tmp_path / "out.wav"
    r = _resynth(inputs["stereo"], "-o", out)
    assert r.returncode == 0, r.stderr
    sc = _sc(r.stdout)
    assert sc < -15.0
    assert "hybrid, look-ahead 2 = 512 samples / 23.2 ms, 8 iterations" in r.stdout
    y, sr = sf.read(inputs["stereo"], dtype="float32")
    z, sr_out = sf.read(out, dtype="float32")
    assert sr_out == sr == 22050 and z.shape == y.shape
    for ch in range(2):
        assert envelope_lag(z[:, ch], y[:, ch], 2048) in range(-8, 9)
    assert np.all(np.isfinite(z))


@pytest.mark.parametrize("args, expect", [
    (["--method", "rtpghi", "--lookahead", "0"], "rtpghi, look-ahead 0 = 0 samples / 0.0 ms, 0 iterations"),
    (["--method", "rtpghi"], "rtpghi, look-ahead 1 = 64 samples / 4.0 ms"),
    (["--method", "rtisi-la", "--lookahead", "1", "--iters", "3", "--momentum", "0"], "rtisi-la, look-ahead 1 = 64 samples"),
    (["--n-fft", "512", "--hop", "64", "--lookahead", "3"], "hybrid, look-ahead 3 = 192 samples / 12.0 ms, 3 iterations"),
])
def test_options_on_16k_speech(inputs, tmp_path, args, expect):
    out = tmp_path / "speech_out.wav"
    base = ["--n-fft", "512", "--hop", "64"] if "--n-fft" not in args else []
    r = _resynth(inputs["speech16"], "-o", out, *base, *args)
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout and "n_fft 512, hop 64, 16000 Hz, 1 channel" in r.stdout
    assert _sc(r.stdout) < -10.0
    y, _ = sf.read(inputs["speech16"], dtype="float32")
    z, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and z.shape == y.shape
    assert envelope_lag(z, y, 1024) in range(-8, 9)


def test_flac_input_and_short_input(inputs, tmp_path):
    r = _resynth(inputs["piano_flac"], "-o", tmp_path / "p.wav", "--iters", "4")
    assert r.returncode == 0, r.stderr
    assert "4 iterations" in r.stdout and _sc(r.stdout) < -15.0
    assert sf.info(tmp_path / "p.wav").frames == sf.info(inputs["piano_flac"]).frames
    r = _resynth(inputs["short"], "-o", tmp_path / "s.wav")  # shorter than one frame
    assert r.returncode == 0, r.stderr
    assert sf.info(tmp_path / "s.wav").frames == 700


@pytest.mark.parametrize("which, extra, message", [
    ("junk", [], r"cannot read audio from '.*junk\.wav' .*give a WAV, FLAC, OGG or MP3 file"),
    ("missing", [], r"input .*missing\.wav: no such file; give the path of an audio file"),
    ("empty", [], r"'.*empty\.wav' holds no samples: give a file with audio in it"),
    ("speech16", ["--n-fft", "1000", "--hop", "300"], r"hop=300 does not suit n_fft=1000: the hop must divide n_fft"),
    ("speech16", ["--n-fft", "1023"], r"n_fft=1023 is not usable: give an even integer in 16\.\.65536"),
    ("speech16", ["--n-fft", "1000000000"], r"n_fft=1000000000 is not usable"),
    ("speech16", ["--hop", "0"], r"hop=0 is not usable: give a positive integer"),
    ("speech16", ["--method", "griffin"], r"method='griffin' is unknown: choose one of hybrid, rtisi-la, rtpghi"),
    ("speech16", ["--method", "rtpghi", "--lookahead", "3"], r"lookahead=3 .*'rtpghi' supports look-ahead 0 or 1"),
    ("speech16", ["--iters", "-1"], r"iters=-1 is not usable"),
    ("speech16", ["--lookahead", "-1"], r"argument --lookahead: -1 is out of range; give an integer in 0\.\.16"),
    ("speech16", ["-o", "/nonexistent-dir/x.wav"], r"-o /nonexistent-dir/x\.wav: the folder /nonexistent-dir does not exist"),
    ("speech16", ["-o", "/"], r"-o /: that is a folder; give a file name"),
    ("folder", [], r"input .* is a folder: give an audio file"),
])
def test_errors_exit_2_with_a_clear_message(inputs, tmp_path, which, extra, message):
    src = inputs["folder"] / "missing.wav" if which == "missing" else inputs[which]
    args = [src, *(extra if "-o" in extra else ["-o", tmp_path / "x.wav", *extra])]
    r = _resynth(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert re.search(r"livegen resynth: error: " + message, r.stderr), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("n_fft, hop", [(4096, 32), (1024, 8)])
def test_fine_hops_resynthesise_a_tone(tmp_path, n_fft, hop):
    sr = 16000
    t = np.arange(sr * 3 // 4) / sr  # a few windows of the longest frame
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), sr)
    r = _resynth(tmp_path / "tone.wav", "-o", tmp_path / "out.wav", "--n-fft", n_fft, "--hop", hop)
    assert r.returncode == 0, r.stderr
    out, out_sr = sf.read(tmp_path / "out.wav")
    assert (out_sr, len(out)) == (sr, len(t)) and np.all(np.isfinite(out))
    assert _sc(r.stdout) < -10.0  # a steady tone comes back close to its magnitudes


@pytest.mark.parametrize("n_fft, hop", [(4096, 32), (1024, 8)])
def test_a_tone_shorter_than_the_window_at_fine_hops(tmp_path, n_fft, hop):
    """Once a 0.25 s tone under a 4096 window came back as one frame at a ninth of its level."""
    sr = 16000
    t = np.arange(sr // 4) / sr
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), sr)
    scs, levels = {}, {}
    for h in (hop, n_fft // 4):  # the fine hop, then the default one
        r = _resynth(tmp_path / "tone.wav", "-o", tmp_path / f"out{h}.wav", "--n-fft", n_fft, "--hop", h)
        assert r.returncode == 0, r.stderr
        out, _ = sf.read(tmp_path / f"out{h}.wav")
        assert len(out) == len(t)
        scs[h], levels[h] = _sc(r.stdout), np.sqrt(np.mean(out ** 2)) / (0.3 / np.sqrt(2))
    assert scs[hop] < -18.0 and scs[hop] < scs[n_fft // 4] + 6.0, scs
    assert 0.8 < levels[hop] < 1.2, levels


def test_resynth_over_its_own_input_is_refused(inputs, tmp_path):
    source = tmp_path / "mine.wav"
    source.write_bytes(inputs["speech16"].read_bytes())
    result = _resynth(source, "-o", source)
    assert result.returncode == 2 and f"-o {source} is the input" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and source.read_bytes() == inputs["speech16"].read_bytes()
