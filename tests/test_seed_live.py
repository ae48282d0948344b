"""Seeding a continuation model while it plays, and switching to and from continuation models.

Real components: the engine and session recorder with a small continuation model, real WAV
files, and `livegen play --headless` on a dummy JACK server driven over real UDP.
"""

from __future__ import annotations

import argparse
import threading

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO
from helpers import MUSIC_SR as SR, default_input_name, listen, music as _music, param_names
from livegen.continuation.io import save_continuation
from livegen.continuation.seeds import prepare_seed, seed_event
from livegen.continuation.source import ContinuationSource, continuation_engine
from livegen.engine.events import Event, event_from_record, read_events

BUNDLED = REPO / "models" / "continuation"
DEFAULT = REPO / "models" / "default"


def _load_seed(engine, path) -> tuple[bool, str]:
    """`/livegen/seed` as the OSC server asks it (`engine.submit`), and wait for its answer (the
    file is read on a worker thread)."""
    answer, done = [], threading.Event()
    engine.submit(Event("seed", source="test", extra={"path": str(path)}),
                  lambda ok, text: (answer.append((ok, text)), done.set()), what=f"/livegen/seed {path}: ")
    assert done.wait(30), "the seed was never answered"
    return answer[0]


def test_seed_event_format_round_trips():
    """A seed event's log line names the file and its hash; the prepared frames never go in it."""
    prepared = argparse.Namespace()
    event = Event("seed", t=1.5, extra={"path": "/a/b.wav", "sha256": "ab" * 32}, payload=prepared)
    line = event.to_json()
    assert '"path": "/a/b.wav"' in line and "payload" not in line and "Namespace" not in line
    back = event_from_record({"t": 1.5, "type": "seed", "path": "/a/b.wav", "sha256": "ab" * 32})
    assert back.type == "seed" and back.extra == {"path": "/a/b.wav", "sha256": "ab" * 32} and back.payload is None
    from livegen.errors import ParameterError

    with pytest.raises(ParameterError, match="'path'"):
        event_from_record({"t": 0, "type": "seed", "path": ""})
    with pytest.raises(ParameterError, match="needs field 'path'"):
        event_from_record({"t": 0, "type": "seed"})


def test_seed_while_playing_plays_the_file_then_the_model_takes_over(tiny_model, tmp_path):
    """After the event the seed's frames play as they are (the engine's output is the seed's
    frames inverted), and its length in hops later the model has taken over."""
    seed_wav = tmp_path / "seed.wav"
    sf.write(seed_wav, _music(0.5, 7), SR, subtype="FLOAT")
    engine = continuation_engine(tiny_model, samplerate=SR, seed=2)
    engine.render(0.25)
    before = engine.find(ContinuationSource).stream.seeded_hops
    prepared = prepare_seed(tiny_model, seed_wav)
    engine.post(seed_event(prepared))
    seen = []
    original = engine.find(ContinuationSource).stream.next_frame

    def spy(z):
        frame = original(z)
        seen.append(frame.copy())
        return frame

    engine.find(ContinuationSource).stream.next_frame = spy
    while engine.find(ContinuationSource).stream.seeding or not seen:
        engine.step()
    engine.step()
    assert engine.find(ContinuationSource).stream.seeded_hops - before == prepared.hops
    expected = np.maximum(np.exp(prepared.logmag) - np.float32(1e-5), 0.0)
    np.testing.assert_allclose(np.stack(seen[:prepared.hops]), expected, rtol=1e-6)
    assert not np.allclose(seen[prepared.hops], expected[-1])  # the model's own frame, not the seed's
    assert engine.status()["seed"] == "seed.wav"


def test_load_seed_errors_name_the_file_and_what_to_do(tiny_model, tmp_path):
    engine = continuation_engine(tiny_model, samplerate=SR)
    ok, text = _load_seed(engine, tmp_path / "nowhere.wav")
    assert not ok and "/livegen/seed" in text and "nowhere.wav" in text and "no such file" in text
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(200, np.float32), SR)
    ok, text = _load_seed(engine, short)
    assert not ok and "short.wav" in text and "too short" in text and "at least" in text
    notaudio = tmp_path / "notes.txt"
    notaudio.write_text("not audio")
    ok, text = _load_seed(engine, notaudio)
    assert not ok and "notes.txt" in text and "cannot read it as audio" in text
    assert engine.find(ContinuationSource).stream.seeded_hops == 0 and engine.rejected == 0


@pytest.mark.slow
def test_session_with_a_live_seed_rerenders_exactly(tiny_model, tmp_path, capfd):
    """A recording during which a seed file was given while playing: the log names the file and
    its sha256, and `livegen render` of the log gives the recorded samples; a changed file is
    warned about, a missing one too (and the render then differs)."""
    from livegen.cli import main
    from livegen.app.play import _attach_session

    model_dir = save_continuation(tiny_model, tmp_path / "m")
    seed_wav = tmp_path / "seed.wav"
    sf.write(seed_wav, _music(0.6, 31), SR, subtype="FLOAT")
    engine = continuation_engine(tiny_model, samplerate=SR, seed=4, temperature=0.5)
    args = argparse.Namespace(record=str(tmp_path / "rec"), record_dir=str(tmp_path / "rec"), record_format="FLOAT")
    session = _attach_session(engine, args, model_name=str(model_dir), blocksize=None)
    engine.post(Event(t=0.0, type="param", name="drift", value=0.5, source="test"))
    while engine.samples_out < int(0.4 * SR):
        engine.step()
    ok, text = _load_seed(engine, seed_wav)   # the decoder loop goes on meanwhile, as live
    assert ok and text == str(seed_wav.resolve())
    while engine.samples_out < int(1.6 * SR):
        engine.step()
    session.record(False)
    engine.step()
    session.close()
    (log,) = (tmp_path / "rec").glob("*.jsonl")
    _, events = read_events(log, tolerate_truncation=True)
    (seed,) = [e for e in events if e.type == "seed"]
    assert seed.extra["path"] == str(seed_wav.resolve()) and len(seed.extra["sha256"]) == 64 and seed.sample > 0
    recorded, _ = sf.read(log.with_name(log.stem + ".wav"), dtype="float32")

    assert main(["render", str(log), "-o", str(tmp_path / "again.wav")]) == 0
    again, _ = sf.read(tmp_path / "again.wav", dtype="float32")
    np.testing.assert_array_equal(again, recorded)
    assert "warning" not in capfd.readouterr().err

    moved = log.with_name("seed.wav")       # beside the log under its name: found there
    seed_wav.rename(moved)
    assert main(["render", str(log), "-o", str(tmp_path / "beside.wav")]) == 0
    np.testing.assert_array_equal(sf.read(tmp_path / "beside.wav", dtype="float32")[0], recorded)
    assert "warning" not in capfd.readouterr().err
    moved.rename(seed_wav)

    sf.write(seed_wav, _music(0.6, 32), SR, subtype="FLOAT")
    assert main(["render", str(log), "-o", str(tmp_path / "changed.wav")]) == 0
    err = capfd.readouterr().err
    assert "is not the seed audio this log was played with" in err
    seed_wav.unlink()
    assert main(["render", str(log), "-o", str(tmp_path / "missing.wav")]) == 0
    err = capfd.readouterr().err
    assert "seed event at t=" in err and "missing" in err and str(seed_wav.resolve()) in err
    assert not np.array_equal(sf.read(tmp_path / "missing.wav", dtype="float32")[0], recorded)


def test_seed_and_model_switch_over_udp(live_play, tmp_path):
    """`livegen play --headless` with the VAE model: /livegen/seed is refused naming the model
    to load; /livegen/model loads the bundled continuation model while playing; then
    /livegen/seed plays a file (a recording of it re-renders exactly), bad files are told
    about; /livegen/model goes back to models/default."""
    import soundfile

    from livegen.cli import main

    takes = tmp_path / "takes"
    seed_wav = tmp_path / "seed.wav"
    sf.write(seed_wav, _music(0.8, 5), SR, subtype="FLOAT")
    play = live_play("--no-midi", "--model", "random", "--record-dir", str(takes), "--samplerate", "48000")
    watcher = play.subscriber()
    error = play.ask("/livegen/seed", str(seed_wav), want="/livegen/error", timeout=10)
    assert error and "not a continuation model" in error[0] and "/livegen/model models/continuation" in error[0]

    # The subscriber reads while the model loads: its socket must not fill with meters meanwhile.
    play.send("/livegen/model", str(BUNDLED))
    heard = listen(watcher, lambda address, args: address == "/livegen/model", timeout=90)
    assert ("/livegen/model", (str(BUNDLED),)) in heard, heard[-5:]
    assert ("/livegen/model", (str(BUNDLED),)) in listen(play.client, lambda address, args: address == "/livegen/model")
    pairs = play.status()
    assert pairs["model"] == str(BUNDLED) and pairs["continuation"] == 1 and pairs["audio"] == "ok", pairs
    assert "temperature" in param_names(play.client)

    error = play.ask("/livegen/seed", str(tmp_path / "nowhere.wav"), want="/livegen/error", timeout=30)
    assert error and "nowhere.wav" in error[0] and "no such file" in error[0], error
    play.send("/livegen/record", 1)
    play.wait_status(lambda pairs: pairs.get("record_seconds", 0) > 0.5, 30, "0.5 s recorded")
    assert play.ask("/livegen/seed", str(seed_wav), timeout=30) == (str(seed_wav),)
    pairs = play.wait_status(lambda pairs: pairs.get("seed") == "seed.wav", 30, "the seed playing")
    seeded = pairs["record_seconds"]
    play.wait_status(lambda pairs: pairs["record_seconds"] > seeded + 1.5, 30, "1.5 s recorded after the seed")
    play.send("/livegen/record", 0)
    play.wait_status(lambda pairs: not pairs["recording"], 30, "the recording stopped")

    assert play.ask("/livegen/model", str(DEFAULT), timeout=90) == (str(DEFAULT),)
    pairs = play.status()
    assert pairs["model"] == str(DEFAULT) and "continuation" not in pairs and "seed" not in pairs, pairs
    error = play.ask("/livegen/seed", str(seed_wav), want="/livegen/error", timeout=10)
    assert error and "not a continuation model" in error[0]
    assert play.stop() == 0, play.log
    (wav,) = takes.glob("*.wav")
    header, events = read_events(wav.with_suffix(".jsonl"))
    assert header["model_dir"] == str(BUNDLED) and any(e.type == "seed" for e in events), events
    again = tmp_path / "again.wav"
    assert main(["render", str(wav.with_suffix(".jsonl")), "-o", str(again)]) == 0
    recorded, _ = soundfile.read(wav, dtype="float32")
    rendered, _ = soundfile.read(again, dtype="float32")
    assert len(rendered) == len(recorded) and np.abs(recorded).max() > 1e-3
    diff = np.abs(rendered - recorded).max()
    print(f"live seed over UDP: recorded {len(recorded)} samples; render max abs diff {diff}")
    assert diff <= 1e-6, diff


def test_scheduled_seed_events_read_their_files(tiny_model, tmp_path):
    """A seed event from an event file (no prepared frames) reads its file when scheduled, and
    plays the same samples as the live path's prepared event at the same sample."""
    seed_wav = tmp_path / "seed.wav"
    sf.write(seed_wav, _music(0.4, 3), SR, subtype="FLOAT")
    from_file = continuation_engine(tiny_model, samplerate=SR, seed=6)
    from_file.schedule([event_from_record({"t": 0.2, "type": "seed", "path": str(seed_wav)})])
    live = continuation_engine(tiny_model, samplerate=SR, seed=6)
    live.schedule([seed_event(prepare_seed(tiny_model, seed_wav), t=0.2)])
    a, b = from_file.render(1.0), live.render(1.0)
    np.testing.assert_array_equal(a, b)
    assert from_file.find(ContinuationSource).stream.seeded_hops > 0 and from_file.rejected == 0
    with pytest.warns(UserWarning, match="missing"):
        continuation_engine(tiny_model, samplerate=SR).schedule(
            [event_from_record({"t": 0.2, "type": "seed", "path": str(tmp_path / "gone.wav")})])


def test_live_input_follows_into_a_continuation_model_loaded_later(live_play, jack_server, tmp_path, tiny_model):
    """`--input-device` with a continuation model: after switching to a VAE model and back
    (`/livegen/model`), the newly loaded continuation engine hears the input too."""
    model_dir = save_continuation(tiny_model, tmp_path / "m")
    name = default_input_name(jack_server.env)
    play = live_play("--no-midi", "--model", str(model_dir), "--input-device", name)
    play.wait_status(lambda pairs: pairs.get("input_frames", 0) >= 20, 30, "20 input frames heard")
    assert play.ask("/livegen/model", "random", timeout=90) == ("random",)
    assert "input_frames" not in play.status()
    assert play.ask("/livegen/model", str(model_dir), timeout=90) == (str(model_dir),)
    frames = set()
    play.wait_status(lambda pairs: frames.add(pairs.get("input_frames", 0)) or (len(frames) >= 3 and max(frames) > 0),
                     30, "input frames counting up in the new engine")
    assert play.stop() == 0, play.log
