"""A sound check sets `input_gain` from what the performer plays: the same analysis live
(`/livegen/input/soundcheck`, tested with a real JACK input in test_input_live.py) and offline
(`livegen render --input FILE --soundcheck`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from pythonosc.udp_client import SimpleUDPClient

from livegen.control.fake import FakeTarget
from livegen.control.osc import OscServer
from livegen.engine.events import Event
from livegen.engine.input import LOUDNESS_REF_DB, sound_check
from livegen.errors import ParameterError
from test_input import HOP, SR, loaded, render_cli, render_input, tone  # noqa: F401 (a fixture)
from test_osc import replies


def melody(amp: float) -> np.ndarray:
    """Five tones with gaps of silence between."""
    gap = np.zeros(int(0.2 * SR), np.float32)
    return np.concatenate([part for m in (60, 64, 67, 72, 67) for part in (tone(m, 0.4, amp=amp), gap)])


def test_a_steady_tone_is_brought_to_the_reference_level():
    amp = 0.05
    y = (amp * np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR)).astype(np.float32)
    checked = sound_check(y, samplerate=SR, hop=HOP)
    rms_db = 20 * np.log10(amp / np.sqrt(2))
    assert checked.loud_db == pytest.approx(rms_db, abs=0.1)
    assert checked.gain_db == round(2 * (LOUDNESS_REF_DB - rms_db)) / 2 and not checked.clamped
    assert "input_gain +9.0 dB" in checked.describe()


def test_the_gaps_do_not_count_and_the_gain_follows_the_input_level():
    soft, loud = (sound_check(melody(amp), samplerate=SR, hop=HOP) for amp in (0.02, 0.08))
    assert soft.gain_db - loud.gain_db == pytest.approx(12.0, abs=0.5)  # 0.02 -> 0.08 is 12.04 dB
    assert 1.6 <= soft.playing_seconds <= 2.6, soft  # five 0.4 s tones (and their window's edges), not the gaps


def test_too_little_played_or_a_level_out_of_range_is_told():
    with pytest.raises(ParameterError, match="stayed under -80 dBFS"):
        sound_check(np.zeros(SR, np.float32), samplerate=SR, hop=HOP)
    blip = np.zeros(SR, np.float32)
    blip[1000:1500] = tone(69, 500 / SR)
    with pytest.raises(ParameterError, match="only 0.0.* s of 1.0 s was played"):
        sound_check(blip, samplerate=SR, hop=HOP)
    whisper = (1e-3 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR)).astype(np.float32)
    checked = sound_check(whisper, samplerate=SR, hop=HOP)
    assert checked.gain_db == 36.0 and checked.clamped and "too quiet" in checked.describe()


def test_a_sound_checked_input_plays_the_same_whatever_its_level(loaded):  # noqa: F811
    """Gain staging: the same melody recorded 12 dB apart plays alike once sound-checked."""
    levels = {}
    for amp in (0.02, 0.08):
        y = melody(amp)
        gain = sound_check(y, samplerate=SR, hop=HOP).gain_db
        for checked in (False, True):
            events = [Event("param", t=0.0, name="input_gain", value=gain)] if checked else []
            out, _ = render_input(loaded, y, events=events)
            levels[amp, checked] = 10 * np.log10(np.mean(out.astype(np.float64) ** 2))
    assert abs(levels[0.02, True] - levels[0.08, True]) < 1.0, levels
    assert abs(levels[0.02, False] - levels[0.08, False]) > 6.0, levels  # unchecked, the level shows


@pytest.mark.slow
def test_render_soundcheck_logs_the_gain_and_re_renders_exactly(tmp_path):
    wav = tmp_path / "voice.wav"
    sf.write(wav, melody(0.02), SR, subtype="FLOAT")
    result = render_cli("--input", str(wav), "--soundcheck", "-o", str(tmp_path / "a.wav"),
                        "--log", str(tmp_path / "a.jsonl"))
    assert result.returncode == 0, result.stderr
    gain = sound_check(melody(0.02), samplerate=SR, hop=HOP).gain_db
    assert f"input_gain {gain:+.1f} dB" in result.stderr
    logged = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()[1:]]
    assert {"t": 0.0, "type": "param", "name": "input_gain", "value": gain, "sample": 0} in logged
    again = render_cli(str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "again.wav"))
    assert again.returncode == 0, again.stderr
    assert np.array_equal(sf.read(tmp_path / "again.wav")[0], sf.read(tmp_path / "a.wav")[0])

    no_input = render_cli(str(tmp_path / "a.jsonl"), "--soundcheck", "-o", str(tmp_path / "b.wav"))
    assert no_input.returncode == 2 and "--soundcheck listens to the --input file" in no_input.stderr
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR, np.float32), SR)
    quiet = render_cli("--input", str(silent), "--soundcheck", "-o", str(tmp_path / "c.wav"))
    assert quiet.returncode == 2 and f"--soundcheck: {silent}" in quiet.stderr and "Traceback" not in quiet.stderr
    assert not (tmp_path / "c.wav").exists()


def test_osc_soundcheck_without_an_input_or_with_a_bad_length_is_refused():
    target = FakeTarget(latent_dim=8)
    osc = OscServer(target, port=0).start()
    client = SimpleUDPClient("127.0.0.1", osc.port)
    try:
        client.send_message("/livegen/input/soundcheck", [])
        heard = replies(client, timeout=5, until=lambda address: address == "/livegen/error")
        assert heard[-1][0] == "/livegen/error" and "no audio input to check" in heard[-1][1][0], heard
        assert "--input-device" in heard[-1][1][0]
        client.send_message("/livegen/input/soundcheck", [0.5])
        heard = replies(client, timeout=5, until=lambda address: address == "/livegen/error")
        assert "0.5 s refused" in heard[-1][1][0] and "1..30" in heard[-1][1][0], heard
    finally:
        osc.stop()
        target.close()
