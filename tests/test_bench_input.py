"""`livegen bench input`'s timbre figures: the mel-envelope distance, and the model's own voice
playing the melody's notes that the output is compared with beside the input."""

from __future__ import annotations

import numpy as np
import pytest

from livegen.bench import input as bench

SR = bench.SR


def _tone(partials, seconds=1.0):
    """Partials over a little noise (every mel band above the envelope's -120 dB floor)."""
    t = np.arange(int(seconds * SR)) / SR
    noise = 1e-3 * np.random.default_rng(0).standard_normal(len(t))
    return (sum(a * np.sin(2 * np.pi * f * t) for f, a in partials) + noise).astype(np.float32)


def test_envelope_distance_ignores_the_level_and_hears_the_timbre():
    dull = _tone([(220, 1.0), (440, 0.3), (660, 0.1)])
    bright = _tone([(220, 1.0), (440, 0.8), (660, 0.7), (880, 0.6), (1100, 0.5)])
    frames = np.ones(100, bool)
    assert bench.envelope_distance(dull, 0.1 * dull, frames) == pytest.approx(0.0, abs=1e-3)
    assert bench.envelope_distance(dull, bright, frames) > 3.0


@pytest.mark.slow  # renders with the bundled model in a process of its own
def test_the_models_own_voice_plays_the_notes_when_the_melody_does(tmp_path):
    notes = [(0.2, 67.0), (0.9, 60.0)]
    y = bench.render_notes(notes, tmp_path / "notes.jsonl", tmp_path / "notes.wav", seconds=1.6)
    assert len(y) == int(1.6 * SR)
    db = bench.frame_db(y, SR)
    assert db[:15].max() < -80  # nothing before the first note (the drone is off)
    for onset, _ in notes:  # each note sounds while it is held
        k = int(onset / bench.FRAME_S)
        assert db[k + 5:k + 40].min() > db.max() - 30, (onset, db[k:k + 45].round(1))


def test_settings_are_parameter_events_and_a_bad_one_is_named():
    events = bench.parse_settings(["input_dynamics=0", "input_gain=6"])
    assert [(e.type, e.name, e.value, e.t) for e in events] == [
        ("param", "input_dynamics", 0.0, 0.0), ("param", "input_gain", 6.0, 0.0)]
    for bad, said in (("input_dynamic=0", "not an input parameter"), ("input_gain=loud", "NAME=NUMBER"),
                      ("input_dynamics=2", "0..1")):
        with pytest.raises(bench.ParameterError, match=said) as caught:
            bench.parse_settings([bad])
        assert bad in str(caught.value)


def test_melodies_are_named_gm_programs_and_a_bad_one_is_refused_before_anything_runs(capsys):
    assert bench.melody_program("clarinet=71") == ("clarinet", 71)
    assert bench.melody_program(" oboe = 68 ") == ("oboe", 68)
    for bad in ("clarinet", "clarinet=128", "=71", "a/b=71", "sung=71", "flute=seventy"):
        with pytest.raises(bench.argparse.ArgumentTypeError, match="NAME=PROGRAM|espeak-ng"):
            bench.melody_program(bad)
    with pytest.raises(SystemExit) as exited:
        bench.main(["--melodies", "a=71,a=72", "--no-cost"])
    assert exited.value.code == 2 and "a name of its own" in capsys.readouterr().err
