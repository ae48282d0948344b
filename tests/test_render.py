"""`livegen render` as a command: deterministic files, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO
from helpers import assert_refused, livegen

pytestmark = pytest.mark.slow  # each test runs the CLI or a benchmark in a process of its own


def render(*args):
    return subprocess.run([sys.executable, "-m", "livegen", "render", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_render_writes_the_same_samples_twice_and_another_seed_differs(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "header", "seed": 2}\n'
                      '{"t": 0.05, "type": "note_on", "pitch": 62, "velocity": 90}\n'
                      '{"t": 0.2, "type": "param", "name": "drift", "value": 1}\n'
                      '{"t": 0.4, "type": "note_off", "pitch": 62}\n')
    outs = []
    for name, extra in (("a", []), ("b", []), ("c", ["--seed", "3"])):
        result = render(str(events), "-o", str(tmp_path / f"{name}.wav"), "--seconds", "0.6", "--model", "random", *extra)
        assert result.returncode == 0, result.stderr
        y, sr = sf.read(tmp_path / f"{name}.wav", dtype="float32")
        assert sr == 48000 and len(y) == 28800
        outs.append(y)
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])
    assert np.abs(outs[0]).max() > 1e-3 and np.abs(outs[0]).max() <= 10 ** (-0.3 / 20)


def test_a_16_bit_render_is_dithered_and_renders_again_the_same(tmp_path):
    """--subtype PCM_16 adds TPDF dither (+-1 LSB triangular) before rounding, seeded by the
    render's seed: the file is the same each time, and its error from the float render is
    noise of about half an LSB, not rounding's signal-following error."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"t": 0.05, "type": "note_on", "pitch": 62, "velocity": 90}\n'
                      '{"t": 0.4, "type": "note_off", "pitch": 62}\n')
    for name, subtype in (("float", "FLOAT"), ("a", "PCM_16"), ("b", "PCM_16")):
        result = render(str(events), "-o", str(tmp_path / f"{name}.wav"), "--seconds", "0.6", "--model", "random",
                        "--subtype", subtype)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    y, _ = sf.read(tmp_path / "float.wav", dtype="float64")
    ints, _ = sf.read(tmp_path / "a.wav", dtype="int16")
    error = ints - y * 32768
    assert np.abs(error).max() <= 1.5
    assert 0.4 < np.std(error) < 0.6, np.std(error)  # rounding alone: 0.29 at most


def test_a_render_that_stops_on_a_sounding_chord_ends_without_a_click(tmp_path):
    """The drone and a chord still sound when the file ends: its last samples fade to silence as
    a stopped performance does, so no step larger than the take's own sample-to-sample changes."""
    events = tmp_path / "events.jsonl"
    events.write_text("".join(f'{{"t": 0.1, "type": "note_on", "pitch": {p}, "velocity": 110}}\n'
                              for p in (48, 55, 64, 67)))
    result = render(str(events), "-o", str(tmp_path / "out.wav"), "--seconds", "0.8", "--log", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr
    y, sr = sf.read(tmp_path / "out.wav", dtype="float64")
    steps = np.abs(np.diff(y))
    assert np.abs(y[-int(0.05 * sr):-int(0.01 * sr)]).max() > 0.05  # still sounding 10 ms before the end
    assert y[0] == 0.0 and y[-1] == 0.0
    assert steps[-int(0.02 * sr):].max() <= np.percentile(steps, 99)
    # its log renders the same samples again, fade included
    result = render(str(tmp_path / "out.jsonl"), "-o", str(tmp_path / "again.wav"))
    assert result.returncode == 0, result.stderr
    assert np.array_equal(sf.read(tmp_path / "again.wav", dtype="float64")[0], y)


def render_note(tmp_path, pitch: int, velocity: int, off: float, seconds: float, dtype="float64"):
    """Render one note from t=0.1 to `off` with the bundled model, drone off: (samples, rate)."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"t": 0.0, "type": "param", "name": "drone", "value": 0}\n'
                      f'{{"t": 0.1, "type": "note_on", "pitch": {pitch}, "velocity": {velocity}}}\n'
                      f'{{"t": {off}, "type": "note_off", "pitch": {pitch}}}\n')
    result = render(str(events), "-o", str(tmp_path / "out.wav"), "--seconds", str(seconds))
    assert result.returncode == 0, result.stderr
    return sf.read(tmp_path / "out.wav", dtype=dtype)


def test_a_released_note_ends_in_digital_silence(tmp_path):
    """A loud high note's release settles on the model's noise floor (-65 dBFS RMS, held until the
    4 s release limit before); the voice fades out once it is 60 dB under its loudest, and the
    take is silent 1.5 s after the note-off."""
    y, sr = render_note(tmp_path, 108, 127, off=0.7, seconds=3)
    assert np.abs(y[int(0.3 * sr):int(0.6 * sr)]).max() > 0.05
    assert np.abs(y[int(2.2 * sr):]).max() < 1e-6  # -120 dBFS


def test_silence_after_a_note_holds_no_subnormal_samples(tmp_path):
    """After a second of silence the DC blocker's decaying tail passed through float32's subnormal
    range into the file (which slows whatever processes it next); now it ends in exact zeros."""
    y, sr = render_note(tmp_path, 60, 100, off=0.4, seconds=3.5, dtype="float32")
    assert np.abs(y).max() > 0.05 and np.isfinite(y).all()
    subnormal = (y != 0) & (np.abs(y) < np.finfo(np.float32).tiny)
    assert not subnormal.any(), np.flatnonzero(subnormal)[:5] / sr
    assert not y[int(3.0 * sr):].any()


def test_bad_event_file_names_file_line_and_field(tmp_path):
    events = tmp_path / "bad.jsonl"
    events.write_text('{"t": 0, "type": "param", "name": "x", "value": 0.3}\n'
                      '{"t": 1, "type": "note_on", "pitch": 60}\n')
    result = render(str(events), "-o", str(tmp_path / "x.wav"))
    assert result.returncode == 2
    assert f"{events}:2" in result.stderr and "velocity" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_parameter_is_refused_before_rendering(tmp_path):
    events = tmp_path / "unknown.jsonl"
    events.write_text('{"t": 0.5, "type": "param", "name": "loudness", "value": 3}\n')
    result = render(str(events), "-o", str(tmp_path / "x.wav"), "--model", "random")
    assert result.returncode == 2
    assert "loudness" in result.stderr and "gain" in result.stderr and str(events) in result.stderr
    assert not (tmp_path / "x.wav").exists()


def test_log_played_with_other_weights_is_warned(tmp_path):
    from livegen.model import default_model_path
    from livegen.session.wiring import weights_sha256

    model = default_model_path()
    events = tmp_path / "session.jsonl"
    for sha, warned in (("0" * 64, True), (weights_sha256(model), False)):
        events.write_text('{"type": "header", "seed": 1, "model_dir": "%s", "weights_sha256": "%s"}\n'
                          '{"t": 0.05, "type": "note_on", "pitch": 60, "velocity": 90}\n' % (model, sha))
        result = render(str(events), "-o", str(tmp_path / "x.wav"), "--seconds", "0.2")
        assert result.returncode == 0, result.stderr
        assert ("warning" in result.stderr and "--model" in result.stderr) == warned, result.stderr


def test_a_restart_marker_starts_a_fresh_engine_at_its_sample(tmp_path):
    """A session log that went on across a lost audio device: before the `engine` `restart`
    marker the first engine plays, from its sample on a fresh one built as the marker says (its
    seed), continuing the sample clock; the render's own log keeps the marker."""
    from livegen.engine.events import Event, read_events
    from livegen.server import factory

    at, total = 9600, 28800
    log = tmp_path / "take.jsonl"
    log.write_text('{"type": "header", "seed": 2, "model": "random"}\n'
                   '{"t": 0.0, "sample": 0, "type": "note_on", "pitch": 62, "velocity": 90}\n'
                   f'{{"t": 0.2, "sample": {at}, "type": "engine", "action": "restart", "reason": "device", '
                   '"model_dir": null, "model": "random", "seed": 5, "lookahead": null}\n'
                   f'{{"t": 0.2, "sample": {at}, "type": "note_on", "pitch": 62, "velocity": 90}}\n')
    result = render(str(log), "-o", str(tmp_path / "out.wav"), "--seconds", "0.6", "--log", str(tmp_path / "again.jsonl"))
    assert result.returncode == 0, result.stderr
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32")

    loaded = factory.load("random", log=lambda text: None)
    first = loaded.engine(samplerate=48000, seed=2)
    first.schedule([Event("note_on", pitch=62, velocity=90, sample=0)])
    fresh = loaded.engine(samplerate=48000, seed=5)
    fresh.samples_out = at
    fresh.schedule([Event("note_on", pitch=62, velocity=90, sample=at)])
    expected = np.concatenate([first.render(at / 48000), fresh.render((total - at) / 48000)])
    assert np.array_equal(y, expected)
    first = loaded.engine(samplerate=48000, seed=2)
    first.schedule([Event("note_on", pitch=62, velocity=90, sample=0), Event("note_on", pitch=62, velocity=90, sample=at)])
    assert not np.array_equal(y[at:], first.render(total / 48000)[at:])  # one engine throughout is not it
    _, logged = read_events(tmp_path / "again.jsonl")
    assert [(e.type, e.sample) for e in logged] == [("note_on", 0), ("engine", at), ("note_on", at)]


@pytest.mark.parametrize("field, value", [("lookahead", 40), ("lookahead", -2), ("seed", -1), ("seed", "x")])
def test_a_restart_marker_with_a_bad_field_exits_2_naming_its_line(tmp_path, field, value):
    marker = {"t": 0.2, "sample": 9600, "type": "engine", "action": "restart", "model": "random", field: value}
    log = tmp_path / "take.jsonl"
    log.write_text('{"type": "header", "model": "random"}\n' + json.dumps(marker) + "\n")
    assert_refused(livegen("render", log, "-o", tmp_path / "x.wav"), "take.jsonl:2", repr(field), repr(value))


def test_a_header_seed_past_32_bits_renders_with_it(tmp_path):
    """An older run's log header may hold a seed above the 32 bits `--seed` takes: every seed of
    the engine and its sources is a numpy `SeedSequence`, which takes any size, so it renders
    as that seed (not refused, not cut to 32 bits)."""
    from livegen.engine.events import Event
    from livegen.server import factory

    seed = 2 ** 40
    log = tmp_path / "old.jsonl"
    log.write_text(f'{{"type": "header", "model": "random", "seed": {seed}}}\n'
                   '{"t": 0.0, "sample": 0, "type": "note_on", "pitch": 62, "velocity": 90}\n')
    result = render(str(log), "-o", str(tmp_path / "out.wav"), "--seconds", "0.3")
    assert result.returncode == 0, result.stderr
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    loaded = factory.load("random", log=lambda text: None)
    for s, same in ((seed, True), (seed % 2 ** 32, False)):
        engine = loaded.engine(samplerate=48000, seed=s)
        engine.schedule([Event("note_on", pitch=62, velocity=90, sample=0)])
        expected = engine.render(0.3)
        fade = engine.chain.fade_samples
        assert np.array_equal(y[:-fade], expected[:-fade]) == same


def test_read_centre_is_logged_and_renders_again_the_same(tmp_path):
    """`--read centre` changes the samples (a bend heard sooner), is written to the render's log
    header, and rendering that log again reads the same way: the same samples."""
    from livegen.engine.events import read_events

    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "header", "seed": 2}\n'
                      '{"t": 0.0, "type": "note_on", "pitch": 62, "velocity": 90, "voice": 1}\n'
                      '{"t": 0.2, "type": "voice", "voice": 1, "name": "bend", "value": 0.5}\n'
                      '{"t": 0.3, "type": "voice", "voice": 1, "name": "bend", "value": 0.3}\n')
    outs = {}
    for name, extra in (("window", []), ("centre", ["--read", "centre"])):
        result = render(str(events), "-o", str(tmp_path / f"{name}.wav"), "--seconds", "0.6", "--model", "random",
                        "--log", str(tmp_path / f"{name}.jsonl"), *extra)
        assert result.returncode == 0, result.stderr
        outs[name], _ = sf.read(tmp_path / f"{name}.wav", dtype="float32")
        header, _ = read_events(tmp_path / f"{name}.jsonl")
        assert header["read"] == name
    assert not np.array_equal(outs["window"], outs["centre"])
    result = render(str(tmp_path / "centre.jsonl"), "-o", str(tmp_path / "again.wav"))
    assert result.returncode == 0, result.stderr
    again, _ = sf.read(tmp_path / "again.wav", dtype="float32")
    assert np.array_equal(again, outs["centre"])


@pytest.mark.parametrize("case, extra, named", [
    ("output a folder", ["-o", "{tmp}"], ["-o {tmp}", "that is a folder"]),
    ("output in no folder", ["-o", "{tmp}/no/x.wav"], ["{tmp}/no/x.wav", "does not exist"]),
    ("unknown subtype", ["--subtype", "BOGUS"], ["--subtype BOGUS", "choose one of"]),
    ("subtype the format lacks", ["-o", "{tmp}/x.mp3", "--subtype", "FLOAT"], ["--subtype FLOAT", "MP3"]),
    ("log a folder", ["--log", "{tmp}"], ["--log {tmp}", "that is a folder"]),
    ("NaN length", ["--seconds", "nan"], ["--seconds", "nan", "finite"]),
    ("endless length", ["--seconds", "inf"], ["--seconds", "inf"]),
    ("length under a hop", ["--seconds", "1e-300"], ["--seconds", "1e-300", ">= 0.01"]),
    ("length 0", ["--seconds", "0"], ["--seconds", "0", ">= 0.01"]),
    ("negative length", ["--seconds", "-2"], ["--seconds", "-2", ">= 0.01"]),
    ("length beyond memory", ["--seconds", "1e12"], ["--seconds", "1e+12", "shorter"]),
    ("rate 0", ["--samplerate", "0"], ["--samplerate", "0", "8000..192000"]),
    ("negative seed", ["--seed", "-1"], ["--seed", "-1", "0..4294967295"]),
    ("negative look-ahead", ["--lookahead", "-1"], ["--lookahead", "-1", "0..16"]),
    ("huge look-ahead", ["--lookahead", "9" * 30], ["--lookahead", "9" * 30, "0..16"]),
    ("centre read without look-ahead", ["--read", "centre", "--lookahead", "0"],
     ["--read centre", "--lookahead 0", "--lookahead 1 or more", "--read committed"]),
    ("temperature below 0", ["--temperature", "-1"], ["--temperature", "-1", "0..1.5"]),
    ("temperature of a spectral model", ["--temperature", "0.5"], ["--temperature", "needs a continuation model"]),
])
def test_bad_option_exits_2_naming_it_and_writes_nothing(tmp_path, case, extra, named):
    events = tmp_path / "events.jsonl"
    events.write_text('{"t": 0.05, "type": "note_on", "pitch": 62, "velocity": 90}\n')
    def fill(text):
        return text.replace("{tmp}", str(tmp_path))

    extra = [fill(word) for word in extra]
    output = [] if "-o" in extra else ["-o", str(tmp_path / "out.wav")]
    result = livegen("render", events, *output, "--model", "random", *extra)
    assert_refused(result, *map(fill, named))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]  # nothing half-written


@pytest.mark.parametrize("line, named", [
    ('{"t": 1e300, "type": "param", "name": "x", "value": 0.2}', ["t=1e+300", "shorter"]),
    ('{"t": 1' + "0" * 400 + ', "type": "param", "name": "x", "value": 0.2}', ["bad.jsonl:2", "field 't'"]),
    ("hello world", ["bad.jsonl:2", "not valid JSON"]),  # a whole bad last line is no crash's cut
])
def test_bad_last_event_line_exits_2_naming_it(tmp_path, line, named):
    events = tmp_path / "bad.jsonl"
    events.write_text('{"t": 0, "type": "param", "name": "x", "value": 0.3}\n' + line + "\n")
    assert_refused(livegen("render", events, "-o", tmp_path / "x.wav", "--model", "random"), *named)


@pytest.mark.parametrize("header, named", [
    ('{"type": "header", "samplerate": "abc"}', ["log.jsonl:1", "'samplerate'", "'abc'"]),
    ('{"type": "header", "seed": -4}', ["log.jsonl:1", "'seed'", "-4", ">= 0"]),
    ('{"type": "header", "seed": 1' + "0" * 400 + "}", ["log.jsonl:1", "'seed'"]),  # too large for a float
    ('{"type": "header", "start_sample": "z"}', ["log.jsonl:1", "'start_sample'"]),
    ('{"type": "header", "lookahead": -1}', ["log.jsonl:1", "'lookahead'", "-1", "0..16"]),
    ('{"type": "header", "lookahead": 17}', ["log.jsonl:1", "'lookahead'", "17", "0..16"]),
    ('{"type": "header", "model": "random", "seconds": 1e-300}', ["the log header's seconds", "1e-300", "0.01 s"]),
    ('{"type": "header", "model": "random", "lookahead": 0, "read": "centre"}',
     ["the log header's read centre", "the log header's lookahead 0", "--lookahead 1 or more"]),
    ('{"type": "header", "model": "random", "samplerate": 4000}', ["the log header's samplerate 4000", "8000..192000"]),
    ('{"type": "header", "model": "random", "samplerate": 10000000}', ["the log header's samplerate 10000000"]),
    ('{"type": "header", "start_sample": 0, "wav": "takes/a.wav"}', ["log.jsonl:1", "'wav'", "takes/a.wav"]),
    ('{"type": "header", "start_sample": 0, "wav": 5}', ["log.jsonl:1", "'wav'"]),
    ('{"type": "header", "model": "random", "fade_end": "yes"}', ["log.jsonl:1", "'fade_end'", "true or false"]),
    # a take 2e12 samples into its session: the replay before it would not fit in memory
    ('{"type": "header", "model": "random", "start_sample": 2000000000000}', ["log.jsonl", "session's start", "GiB"]),
    ('{"type": "header", "model_dir": "/nowhere/model"}', ["/nowhere/model", "is not there", "--model"]),
])
def test_edited_log_header_exits_2_naming_the_field(tmp_path, header, named):
    log = tmp_path / "log.jsonl"
    log.write_text(header + '\n{"t": 0.1, "type": "param", "name": "x", "value": 0.3}\n')
    assert_refused(livegen("render", log, "-o", tmp_path / "x.wav"), *named)


def test_render_over_its_own_take_or_log_is_refused_and_leaves_them_alone(tmp_path):
    take, log = tmp_path / "take.wav", tmp_path / "take.jsonl"
    sf.write(take, np.full(4800, 0.25, np.float32), 48000)
    log.write_text('{"type": "header", "model": "random", "samplerate": 48000, "start_sample": 0, "wav": "take.wav"}\n'
                   '{"t": 0.05, "type": "param", "name": "x", "value": 0.3, "sample": 2400}\n')
    before = (take.read_bytes(), log.read_bytes())
    assert_refused(livegen("render", log, "-o", take), f"-o {take}", "the take this log records")
    assert_refused(livegen("render", log, "-o", tmp_path / "again.wav", "--log", log), f"--log {log}", "the event file")
    assert_refused(livegen("render", "--input", take, "-o", take, "--model", "random"), "the --input file")
    assert_refused(livegen("render", log, "-o", tmp_path / "again.wav", "--log", tmp_path / "again.wav"),
                   "--log", "the -o file")
    assert (take.read_bytes(), log.read_bytes()) == before


def test_input_file_without_samples_is_refused(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 48000)
    assert_refused(livegen("render", "--input", empty, "-o", tmp_path / "x.wav", "--model", "random"),
                   f"input file {empty}", "holds no samples")


def test_input_file_shorter_than_a_hop_is_refused_with_its_length(tmp_path):
    """8 samples would be heard as nothing at all in a 2 s render that reported 'input 0.000 s'."""
    tiny = tmp_path / "tiny.wav"
    sf.write(tiny, np.full(8, 0.1, np.float32), 48000)
    assert_refused(livegen("render", "--input", tiny, "-o", tmp_path / "x.wav"),
                   f"input file {tiny} is 0.17 ms long (8 samples at 48000 Hz)", "shorter than one hop")
    assert not (tmp_path / "x.wav").exists()


def test_a_killed_take_renders_as_its_wav_and_its_log_gives_back_the_lost_tail(tmp_path):
    """`kill -9` (or a power cut) leaves the WAV's header up to half a second behind the log, which
    is flushed line by line. `livegen render LOG` renders what the WAV holds, sample for sample,
    and says the log goes on, with the --seconds that renders all of it: a render that starts
    with the WAV and holds the tail its header lost."""
    header = ('{"type": "header", "samplerate": 48000, "channels": 1, "subtype": "FLOAT", "wav": "take.wav", '
              '"model": "random", "model_dir": null, "seed": 0, "start_sample": 0}\n')
    log = tmp_path / "take.jsonl"
    log.write_text(header + '{"t": 0.5, "type": "note_on", "pitch": 60, "velocity": 100, "sample": 24000}\n'
                            '{"t": 1.25, "type": "note_on", "pitch": 67, "velocity": 90, "sample": 60000}\n')
    heard = tmp_path / "heard.wav"  # what the performer heard: the log rendered on past the kill
    result = render(str(log), "-o", str(heard), "--seconds", "1.5")
    assert result.returncode == 0, result.stderr
    y, _ = sf.read(heard, dtype="float32")
    sf.write(tmp_path / "take.wav", y[:48000], 48000, subtype="FLOAT")  # the header had reached 1.0 s
    result = render(str(log), "-o", str(tmp_path / "again.wav"))
    assert result.returncode == 0, result.stderr
    again, _ = sf.read(tmp_path / "again.wav", dtype="float32")
    assert np.array_equal(again, y[:48000])
    assert "goes on 0.25 s past the end of take.wav" in result.stderr and "--seconds 1.8" in result.stderr, result.stderr
    result = render(str(log), "-o", str(tmp_path / "whole.wav"), "--seconds", "1.8")
    assert result.returncode == 0, result.stderr
    whole, _ = sf.read(tmp_path / "whole.wav", dtype="float32")
    assert len(whole) == 86400 and np.array_equal(whole[:72000], y)
