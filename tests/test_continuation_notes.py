"""Notes while a continuation model plays: pitched voices from a spectral voice model at the same
latent point, summed with the stream; polyphony, sustain, release; deterministic renders and logs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from helpers import MUSIC_SR as SR

from livegen.server import factory
from livegen.continuation.source import continuation_engine, render_continuation
from livegen.continuation.io import save_continuation
from livegen.continuation.notes import resolve_voice_model, voice_model_from_header
from livegen.engine.events import Event, write_events
from livegen.engine.notes import NotesSource
from livegen.errors import ModelError
from livegen.model import ModelConfig, default_model_path, random_model, save_model


@pytest.fixture(scope="module")
def voice_model():
    return random_model(ModelConfig(), seed=0)


def _band_energy(y, *, hz: float, sr: int = SR, width: float = 30.0) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    return float((spectrum[(freqs > hz - width) & (freqs < hz + width)] ** 2).sum() / (spectrum ** 2).sum())


NOTES = [Event(t=0.1, type="note_on", pitch=69, velocity=110), Event(t=0.6, type="note_off", pitch=69)]


@pytest.mark.slow
def test_notes_sound_beside_the_stream_and_render_the_same_twice(tiny_model, voice_model):
    kw = dict(model=tiny_model, samplerate=SR, seconds=1.2, seed=4, voice_model=voice_model)
    a, engine = render_continuation(NOTES, **kw)
    b, _ = render_continuation(NOTES, **kw)
    np.testing.assert_array_equal(a, b)
    # The stream alone: the voice model changes nothing while no note plays ...
    bare, _ = render_continuation([], **kw)
    ignored, old = render_continuation(NOTES, **{**kw, "voice_model": None})
    np.testing.assert_array_equal(bare, ignored)
    np.testing.assert_array_equal(a[:int(0.1 * SR)], bare[:int(0.1 * SR)])
    assert old.find(NotesSource) is None and engine.find(NotesSource) is not None
    assert old.rejected == len(NOTES)  # without a voice model notes are refused
    # ... and the note is A440 from the voice model, summed with the stream while it is held.
    held = slice(int(0.25 * SR), int(0.55 * SR))
    assert _band_energy(a[held], hz=440.0) > 5 * _band_energy(bare[held], hz=440.0)
    assert np.sqrt(np.mean((a[held] - bare[held]) ** 2)) > 1e-3
    # Released, then freed (its peak under the silence threshold, or the longest release): the bank
    # is empty again.
    bank = engine.find(NotesSource).voices
    slots = bank.active_slots()
    assert len(slots) <= 1 and (bank.t_off[slots] >= 0).all() and not bank.key_down.any()
    engine.render(4.0)
    assert engine.status()["voices"] == 0 and not bank.active.any()


def test_polyphony_sustain_and_steals(tiny_model, voice_model):
    e = continuation_engine(tiny_model, samplerate=SR, seed=0, voice_model=voice_model)
    bank = e.find(NotesSource).voices
    e.schedule([Event(t=0.0, type="param", name="voices", value=4)]
               + [Event(t=0.05 + 0.01 * i, type="note_on", pitch=60 + i, velocity=100) for i in range(6)]
               + [Event(t=0.2, type="param", name="sustain", value=1)]
               + [Event(t=0.25, type="note_off", pitch=60 + i) for i in range(6)])
    e.render(0.3)
    assert len(bank.sounding_notes()) == 4 and bank.steals == 2   # 4-voice limit: the 2 oldest stolen
    assert bank.sustained.sum() == 4                                  # held by the pedal after their note-off
    e.schedule([Event(t=0.35, type="param", name="sustain", value=0)])
    e.render(0.2)
    notes = bank.sounding_notes()
    assert not bank.sustained.any() and (bank.t_off[notes] >= 0).all()  # pedal up: released
    e.render(4.0)
    assert len(bank.sounding_notes()) == 0 and not bank.active.any()    # and freed
    assert e.status()["drone"] == 1     # the stream is the drone: the bank's drone slot was never used


def _build(model_dir, *, seed: int = 0, voice_model="auto"):
    """The engine `play` builds for continuation model `model_dir` (the factory)."""
    return factory.load(str(model_dir), voice_model=voice_model, log=lambda text: None).engine(samplerate=SR, seed=seed)


def test_voice_model_choice_header_and_stft_check(tmp_path, tiny_model, voice_model):
    model_dir = save_continuation(tiny_model, tmp_path / "cont")
    assert resolve_voice_model(model_dir) == default_model_path()
    config = json.loads((model_dir / "config.json").read_text())
    save_model(voice_model, tmp_path / "voices")
    config["voice_model"] = "../voices"                   # relative to the continuation model
    (model_dir / "config.json").write_text(json.dumps(config))
    assert resolve_voice_model(model_dir) == (tmp_path / "voices").resolve()
    engine = _build(model_dir)
    assert engine.find(NotesSource) is not None
    assert engine.log_header["voice_model"] == str((tmp_path / "voices").resolve())
    assert len(engine.log_header["voice_model_sha256"]) == 64
    none = _build(model_dir, voice_model=None)
    assert none.find(NotesSource) is None and none.log_header["voice_model"] is None
    config["voice_model"] = None                          # the config turns notes off
    (model_dir / "config.json").write_text(json.dumps(config))
    assert resolve_voice_model(model_dir) is None
    # a voice model with other STFT settings cannot be summed before the one inverter
    save_model(random_model(ModelConfig(hop=256), seed=0), tmp_path / "hop256")
    with pytest.raises(ModelError, match="same STFT settings"):
        _build(model_dir, voice_model=tmp_path / "hop256")
    # which voice model a log renders with
    warned = []
    assert voice_model_from_header({"voice_model": None}, model_dir) is None
    assert voice_model_from_header({"temperature": 0.7}, model_dir) is None   # logged before notes played
    gone = {"voice_model": str(tmp_path / "gone"), "temperature": 0.7}
    assert voice_model_from_header(gone, model_dir, warn=warned.append) is None and "missing" in warned[-1]
    changed = {"voice_model": str(tmp_path / "voices"), "voice_model_sha256": "0" * 64}
    assert voice_model_from_header(changed, model_dir, warn=warned.append) == tmp_path / "voices"
    assert "not the voice model" in warned[-1]


def test_session_log_rerenders_its_notes(tmp_path, tiny_model, voice_model, capfd):
    """A session log carries the voice model (path + sha256): `livegen render LOG` plays its notes
    again, the same samples as the engine that recorded it, twice."""
    from livegen.cli import main

    model_dir = save_continuation(tiny_model, tmp_path / "cont")
    save_model(voice_model, tmp_path / "voices")
    engine = _build(model_dir, seed=2, voice_model=tmp_path / "voices")
    events = NOTES + [Event(t=0.3, type="param", name="x", value=0.8)]
    applied = []
    engine.add_listener(applied.append)
    engine.schedule(events)
    recorded = engine.render(1.0)
    header = {"model_dir": str(model_dir), "samplerate": SR, "seed": 2, **engine.log_header}
    write_events(tmp_path / "take.jsonl", applied, header=header)
    outs = []
    for name in ("a.wav", "b.wav"):
        assert main(["render", str(tmp_path / "take.jsonl"), "--seconds", "1", "-o", str(tmp_path / name)]) == 0
        outs.append(sf.read(tmp_path / name, dtype="float32")[0])
    assert "notes: voice model" in capfd.readouterr().err
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], recorded)
    # the same log without the voice model (as logged before notes played) renders the stream alone
    old = {k: v for k, v in header.items() if not k.startswith("voice_model")}
    write_events(tmp_path / "old.jsonl", applied, header=old)
    assert main(["render", str(tmp_path / "old.jsonl"), "--seconds", "1", "-o", str(tmp_path / "old.wav")]) == 0
    assert "notes are ignored" in capfd.readouterr().err
    assert not np.array_equal(sf.read(tmp_path / "old.wav", dtype="float32")[0], recorded)


def test_notes_over_udp_while_the_bundled_model_plays_rerender_exactly(live_play, tmp_path):
    """`livegen play --headless --model models/continuation` on a dummy jackd: `/livegen/note`
    messages sound (voice model models/default); the recording's log renders to the same samples."""
    from livegen.continuation.io import default_continuation_path
    from livegen.cli import main
    from livegen.engine.events import read_events

    takes = tmp_path / "takes"
    play = live_play("--no-midi", "--model", str(default_continuation_path()), "--record-dir", str(takes),
                     "--samplerate", "48000")
    play.send("/livegen/record", 1)
    play.wait_status(lambda pairs: pairs.get("record_seconds", 0) > 0.3, 30, "0.3 s recorded")
    for pitch in (60, 64, 67):
        play.send("/livegen/note", pitch, 110)
    pairs = play.wait_status(lambda pairs: pairs["voices"] == 3, 30, "three voices")
    assert pairs["continuation"] == 1, pairs
    held = pairs["record_seconds"]
    play.wait_status(lambda pairs: pairs["record_seconds"] > held + 0.5, 30, "the notes held 0.5 s")
    for pitch in (60, 64, 67):
        play.send("/livegen/note", pitch, 0)
    released = play.status()["record_seconds"]
    play.wait_status(lambda pairs: pairs["record_seconds"] > released + 0.5, 30, "0.5 s after the release")
    play.send("/livegen/record", 0)
    play.wait_status(lambda pairs: not pairs["recording"], 30, "the recording stopped")
    assert play.stop() == 0, play.log
    log_text = play.log
    assert "notes: voice model" in log_text
    (wav,) = takes.glob("*.wav")
    header, events = read_events(wav.with_suffix(".jsonl"))
    assert header["voice_model"] == str(default_model_path().resolve()) and len(header["voice_model_sha256"]) == 64
    assert [e.type for e in events if e.type.startswith("note")] == ["note_on"] * 3 + ["note_off"] * 3, events
    again = tmp_path / "again.wav"
    assert main(["render", str(wav.with_suffix(".jsonl")), "-o", str(again)]) == 0
    recorded, _ = sf.read(wav, dtype="float32")
    rendered, _ = sf.read(again, dtype="float32")
    assert len(rendered) == len(recorded) and np.abs(recorded).max() > 1e-3
    assert np.abs(rendered - recorded).max() <= 1e-6
    # the notes were heard: the same log rendered without its voice model differs
    write_events(tmp_path / "no_notes.jsonl", events, header={**header, "voice_model": None})
    assert main(["render", str(tmp_path / "no_notes.jsonl"), "--seconds", str(len(recorded) / 48000),
                 "-o", str(tmp_path / "stream.wav")]) == 0
    stream, _ = sf.read(tmp_path / "stream.wav", dtype="float32")
    assert np.abs(stream[:len(recorded)] - recorded).max() > 1e-3
