"""The sound server: its shared rings, its event records, and a real server process on jackd whose
applied events and audio come back to the client exactly as an offline render gives them."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from conftest import REPO
from helpers import take_rendered_again, wait_for

from livegen.engine.notes import spectral_engine
from livegen.engine.events import Event
from livegen.engine.setup import load_engine_model
from livegen.server import factory
from livegen.server.client import RemoteEngine, SoundServer
from livegen.server.process import audio_lead
from livegen.server.shm import Counter, SharedBlock
from livegen.server.wire import decode_applied, decode_posted, encode_applied, encode_posted
from livegen.session.wiring import SessionControl, engine_header


@pytest.fixture
def block():
    made = SharedBlock(n_params=8, samplerate=8000)
    yield made
    made.close(unlink=True)


def test_byte_ring_wraps_keeps_order_and_counts_what_did_not_fit(block):
    other = SharedBlock(n_params=8, samplerate=8000, name=block.name)  # the server's mapping
    records = [bytes([i % 251]) * (1 + (i * 7919) % 3000) for i in range(400)]
    got = []
    for record in records:
        while not block.inbox.put(record):  # full: the reader catches up, nothing is overwritten
            assert block[Counter.INBOX_DROPPED] > 0
            got.append(other.inbox.get())
    while (record := other.inbox.get()) is not None:
        got.append(record)
    assert got == records
    assert not block.inbox.put(b"x" * (block.inbox.capacity + 1))  # never fits: refused, not wrapped over
    other.close()


def test_audio_ring_hands_on_every_sample_and_skips_what_a_lapped_reader_lost(block):
    ring = block.audio
    data = np.arange(3 * ring.capacity // 2, dtype=np.float32)
    ring.write(data[:1000])
    first, got = ring.read(600)
    assert first == 0 and np.array_equal(got, data[:600])
    ring.write(data[1000:])  # the reader is now more than a ring behind
    first, got = ring.read(len(data))
    assert block[Counter.AUDIO_DROPPED] == len(data) - 600 - ring.capacity
    assert first == len(data) - ring.capacity and np.array_equal(got, data[first:])


def test_status_record_is_whole_or_absent(block):
    assert block.read_status() == (0, None)
    block.write_status(b'{"a": 1}')
    seq, data = block.read_status()
    assert data == b'{"a": 1}' and seq % 2 == 0
    block[Counter.STATUS_SEQ] += 1  # a writer half-way
    assert block.read_status()[1] is None


def test_event_records_round_trip_with_their_numbers():
    names = ["gain", "x", "y"]
    index = {name: i for i, name in enumerate(names)}
    posted = [Event("param", name="x", value=0.25, source="osc"), Event("note_on", pitch=61.5, velocity=90),
              Event("note_off", pitch=61.5), Event("preset", action="loop", seconds=2.0, slots=(1, 3)),
              Event("param", name="gain", value="loud"), Event("param", name="nope", value=1.0),
              Event("note_on", pitch=64.0, velocity=80, voice=3), Event("note_off", pitch=64.0, voice=3),
              Event("voice", voice=3, name="bend", value=-0.25), Event("voice", voice=70000, name="x", value=0.5)]
    for number, event in enumerate(posted, start=10):
        record, blob = encode_posted(number, event, index)
        assert blob is None
        back = decode_posted(record, names)
        assert back.extra.pop("_wire_id") == number
        assert (back.type, back.name, back.value, back.pitch, back.velocity, back.voice, back.action, back.slots) == \
            (event.type, event.name, event.value, event.pitch, event.velocity, event.voice, event.action, event.slots)
        applied = Event(back.type, name=back.name, value=0.5 if back.type == "param" else back.value, pitch=back.pitch,
                        sample=1280, extra={"_wire_id": number, **({"clamped_from": 0.9} if number == 10 else {})})
        kind, *fields = decode_applied(encode_applied(applied))
        if kind == "ack":
            assert fields[0] == number and fields[1] == 1280
            assert fields[3] == (number == 10) and (fields[4] == 0.9 if number == 10 else True)
        else:
            assert fields[0].extra["_wire_id"] == number and fields[0].sample == 1280


def test_events_the_server_makes_come_back_equal_and_plain_ones_flat():
    """A MIDI keyboard's notes, voice controls, sound-offs and parameter moves are made in the server: they
    come back as the same events (the session log's bytes), flat instead of pickled."""
    plain = [Event("note_on", pitch=64.0, velocity=100, voice=3, source="midi:Seaboard Block"),
             Event("note_off", pitch=64.0, source="midi"), Event("voice", voice=3, name="bend", value=-0.25),
             Event("param", name="x", value=0.5, source="midi:ü"), Event("voice", voice=0, name="pressure", value=1.0),
             Event("sound_off", voice=18, source="midi"), Event("sound_off", source="midi")]
    whole = [Event("param", name="x", value=1, source="midi"), Event("param", name="x", value=math.nan),
             Event("preset", action="recall", slot=2), Event("param", name="", value=0.5),
             Event("note_on", pitch=60.0, velocity=True), Event("param", name="x", value=0.5, extra={"clamped_from": 2.0})]
    for k, event in enumerate(plain + whole):
        applied = event.stamped(1280 + k, (1280 + k) / 48000)
        record = encode_applied(applied)
        assert (record[0] == 6) == (event in plain), event
        kind, back = decode_applied(record)
        assert kind == "event" and type(back.value) is type(applied.value), event
        assert back.to_json() == applied.to_json() and (back == applied or event.value != event.value)


def test_a_payload_travels_as_a_shared_memory_blob_mapped_without_copying():
    frames = np.random.default_rng(0).standard_normal((300, 513)).astype(np.float32)
    event = Event("seed", extra={"path": "/x.wav"}, payload={"frames": frames})
    record, blob = encode_posted(7, event, {})
    try:
        assert blob is not None and len(record) < 1024  # the frames are not in the record
        back = decode_posted(record, [])
        assert np.array_equal(back.payload["frames"], frames) and not back.payload["frames"].flags.owndata
    finally:
        blob.release()


def _remote(model="random", seed=3, lead=0, **options):
    return RemoteEngine({"samplerate": 48000, "blocksize": 256, **options}, {"model": model, "seed": seed, "device": "cpu"},
                        lead=lead)


@pytest.mark.parametrize("lead", [0, -1], ids=["in-callback", "render-thread-one-period"])
def test_the_server_renders_what_an_offline_render_of_its_applied_events_gives(jack_server, lead):
    """Events posted from the client while the server plays come back stamped; the audio that
    comes back is, sample for sample, what the offline engine renders from those stamped events,
    whether the callback renders or a render thread does, a lead ahead."""
    engine = _remote(lead=lead).wait_ready()
    applied, audio = [], []
    engine.add_listener(applied.append)
    engine.add_tap(lambda block: audio.append(block.copy()))
    try:
        assert engine.shared[Counter.AUDIO_WRITTEN] == 0
        engine.start()
        script = [Event("note_on", pitch=60, velocity=100, source="test"), Event("param", name="x", value=0.8),
                  Event("param", name="gain", value=99.0), Event("note_on", pitch=67.5, velocity=80),
                  Event("preset", action="store", slot=2), Event("note_off", pitch=60), Event("param", name="drift", value=0.3)]
        for event in script:
            engine.post(event)
            target = engine.samples_out + 4096
            deadline = time.monotonic() + 10
            while engine.samples_out < target and time.monotonic() < deadline:
                time.sleep(0.005)
        before_stop = engine.samples_out  # the stop fades what follows
        status = engine.status()
        engine.stop(fade=False)
    finally:
        engine.kill()
        engine.close()
    assert [e.type for e in applied] == [e.type for e in script]
    assert applied[0].source == "test" and applied[2].value == 12.0 and applied[2].extra["clamped_from"] == 99.0
    assert status["lead"] == (256 if lead else 0), status
    samples = [e.sample for e in applied]
    assert samples == sorted(samples) and all(s % 256 == 0 for s in samples)
    heard = np.concatenate(audio)[:before_stop]
    model, _ = load_engine_model("random", device="cpu")
    offline = spectral_engine(model, samplerate=48000, seed=3)
    offline.schedule(applied)
    again = offline.render(len(heard) / 48000)
    assert np.array_equal(again, heard), (np.flatnonzero(again != heard)[:3], [(e.type, e.sample) for e in applied])


def _wait_heard(heard, predicate, what, start=0):
    deadline = time.monotonic() + 10
    while not any(predicate(event) for event in heard[start:]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any(predicate(event) for event in heard[start:]), (what, heard[start:])


def test_a_model_switch_resumes_a_running_loop_where_the_old_server_had_it(jack_server):
    """A loop running at a model switch goes on in the new server from the point of its path the
    old one had reached when it took over (the carry's `resume`), and keeps moving there."""
    first = _remote().wait_ready()
    server = SoundServer(first)
    heard = []
    server.add_listener(heard.append)
    first.start()
    for event in (Event("param", name="x", value=0.1), Event("preset", action="store", slot=2),
                  Event("param", name="x", value=0.9), Event("preset", action="store", slot=5),
                  Event("preset", action="loop", seconds=0.5, slots=(2, 5))):
        server.post(event)
    _wait_heard(heard, lambda e: e.type == "preset" and e.action == "loop", "the loop applied")
    (started,) = [e for e in heard if e.type == "preset" and e.action == "loop"]
    second = _remote(seed=4).wait_ready()
    before, earliest = len(heard), first.samples_out
    server.swap(second, since=first.params.snapshot())
    try:
        _wait_heard(heard, lambda e: e.type == "preset" and "resume" in e.extra, "the loop resumed", before)
        (resumed,) = [e for e in heard[before:] if e.type == "preset" and e.action == "loop"]
        elapsed = resumed.extra["resume"]["elapsed"]
        assert earliest - started.sample <= elapsed <= first.samples_out - started.sample
        assert resumed.extra["resume"]["rows"]["x"] == started.extra["moves"]["rows"]["x"]
        assert resumed.extra["moves"]["start"] == resumed.sample - elapsed  # on the new server's clock
        seen = set()
        wait_for(lambda: seen.add(second.params.get("x")) or len(seen) >= 5, 20, "x moving on the new server")
    finally:
        server.stop(fade=False)


def test_a_new_server_takes_over_with_the_presets_and_notes_of_the_old_one_which_stops(jack_server, tmp_path):
    """A model switch: the new server starts with the old one's presets (one stored a moment
    before the swap too), the parameters turned since its spec was taken and the held note; a
    take recorded on the old one ends before its fade-out and re-renders exactly."""
    first = _remote().wait_ready()
    server = SoundServer(first)
    session = SessionControl(first, directory=tmp_path, header=engine_header(first, model_name="random")).attach()
    session.record(True)
    heard = []
    server.add_listener(heard.append)
    first.start()
    for event in (Event("param", name="x", value=0.8), Event("preset", action="store", slot=5),
                  Event("param", name="x", value=0.3), Event("note_on", pitch=60, velocity=100)):
        server.post(event)
    _wait_heard(heard, lambda e: e.type == "note_on", "the note applied")
    (stored,) = [e for e in heard if e.type == "preset"]
    assert stored.values["x"] == 0.8 and stored.sample is not None  # the values the server stored
    since = first.params.snapshot()  # when the new one's spec was taken
    second = _remote(seed=4).wait_ready()
    assert second.shared[Counter.AUDIO_WRITTEN] == 0  # silent until it takes over
    before = len(heard)
    # Turned while the new one loaded, and stored a moment before the swap: both go over.
    server.post(Event("param", name="y", value=0.4))
    server.post(Event("preset", action="store", slot=6))
    # A thread that posts while the swap waits for the old one to apply those does not wait too.
    posted = threading.Event()
    during = []
    settle = first.settle

    def settle_with_a_post(*args, **kwargs):
        threading.Thread(target=lambda: (server.post(Event("param", name="x", value=0.55)), posted.set()),
                         daemon=True).start()
        during.append(posted.wait(10))  # before: the post waited on the lock the swap held while settling
        settle(*args, **kwargs)

    first.settle = settle_with_a_post
    server.swap(second, since=since)
    session.close()
    try:
        assert not first.alive and server.engine is second
        server.post(Event("param", name="x", value=0.1))
        _wait_heard(heard, lambda e: e.type == "param" and e.name == "x" and e.value == 0.1,
                    "the listener moved to the new server", before)
        # The preset and the held note came first, as events (a session log of the new one has them).
        (late_store,) = [e for e in heard[before:] if e.type == "preset" and e.slot == 6 and e.source != "carry"]
        assert late_store.values["y"] == pytest.approx(0.4) and late_store.values["x"] == pytest.approx(0.3)
        carried = [e for e in heard[before:] if e.source == "carry"]
        assert [(e.type, e.name or e.slot or e.pitch) for e in carried] == [
            ("preset", 5), ("preset", 6), ("param", "y"), ("note_on", 60.0)]
        assert carried[0].values == stored.values and carried[1].values == late_store.values
        assert len({e.sample for e in carried}) == 1
        assert during == [True], "a post during the swap's settle returned at once"
        (meanwhile,) = [i for i, e in enumerate(heard) if e.type == "param" and e.name == "x" and e.value == 0.55]
        assert meanwhile > heard.index(carried[-1]), "posted during the swap: to the new one, after the carried"
        status = server.status()
        assert status["server_pid"] == second.pid and status["callbacks"] > 0 and status["voices"] == 1
        server.post(Event("preset", action="recall", slot=5))
        _wait_heard(heard, lambda e: e.type == "preset" and e.action == "recall", "the recall applied", before)
        assert second.params.get("x") == 0.8 and server.status()["rejected"] == 0
        server.post(Event("preset", action="recall", slot=6))
        _wait_heard(heard, lambda e: e.type == "preset" and e.slot == 6 and e.action == "recall", "recall 6", before)
        assert second.params.get("y") == pytest.approx(0.4) and server.status()["rejected"] == 0
    finally:
        server.stop(fade=False)
    (wav,) = tmp_path.glob("*.wav")
    recorded, rendered = take_rendered_again(wav)
    assert len(recorded) > 4800 and np.array_equal(rendered, recorded)


def test_an_engine_that_runs_torch_every_hop_renders_beside_the_callback():
    """torch never runs in the audio callback: a model decoding with torch (a GPU, a continuation
    model) gets one period ahead unless a lead was given; the CPU numpy decoder keeps lead 0."""
    assert audio_lead(0, False) == 0 and audio_lead(0, True) == -1
    assert audio_lead(-2, True) == -2 and audio_lead(480, True) == 480 and audio_lead(480, False) == 480
    model, _ = load_engine_model("random", device="cpu")
    assert not spectral_engine(model, samplerate=48000, seed=3).calls_torch
    continuation = factory.load(str(REPO / "models" / "continuation"), device="cpu", log=lambda text: None)
    assert continuation.engine(samplerate=48000, seed=0, lookahead=None, threads=1).calls_torch


def test_the_reading_the_server_plays_with_reaches_the_session_header_and_restart_marker(jack_server):
    """`play --read centre` renders in the sound server; a recording's header and a restart
    marker carry it, so `livegen render` of the log reads the frames the same way."""
    engine = RemoteEngine({"samplerate": 48000, "blocksize": 256},
                          {"model": "random", "seed": 3, "device": "cpu", "read": "centre"}).wait_ready()
    try:
        assert engine_header(engine)["read"] == "centre"
        assert engine.restart_event(0, reason="device").extra["read"] == "centre"
    finally:
        engine.kill()
        engine.close()
