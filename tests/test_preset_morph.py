"""Engine-side preset morphs and loops: the raised-cosine glide on the sample clock, the stop
rules, determinism and exact re-render of a session, the events file and the OSC addresses
(python-osc and liblo's oscsend over real UDP, and `livegen play --headless` on jackd dummy)."""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
import tracemalloc

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from conftest import require_binary
from helpers import ask, listen, stepped_osc, wait_for
from livegen.control.oscwire import parse_packet
from livegen.engine.events import Event, event_from_record, param, read_events, write_events
from livegen.errors import ParameterError

RATE = 48000

SLOTS = {  # slot -> parameter values stored there
    0: {"x": 0.125, "y": 0.875, "gain": -20.0, "z0": -1.0, "voices": 4},
    1: {"x": 0.875, "y": 0.25, "gain": -4.0, "z0": 2.0, "voices": 12},
    3: {"x": 0.5, "y": 0.5, "gain": -10.0, "z0": 0.0, "voices": 8},
}


@pytest.fixture(scope="module")
def model():
    import torch

    from livegen.engine.setup import load_engine_model

    torch.set_num_threads(1)
    return load_engine_model(None, log=lambda text: None)


def _engine(model, seed=3):
    from livegen.engine.notes import spectral_engine

    return spectral_engine(model[0], samplerate=RATE, seed=seed)


def _store_events(slots=SLOTS, t=0.0):
    """Events storing each slot's values (the last stored slot's values stay current)."""
    events = []
    for slot, values in slots.items():
        events += [param(name, value, t=t) for name, value in values.items()]
        events.append(Event("preset", t=t, action="store", slot=slot))
    return events


def _cosine(a, b, frac):
    w = 0.5 - 0.5 * math.cos(math.pi * frac)
    return a * (1 - w) + b * w


def _run_until(engine, sample, on_hop=None):
    """Step to `sample`; `on_hop(engine, at)` after each block, `at` the block's first sample (the
    clock at which that block's parameter values were set)."""
    while engine.samples_out < sample:
        at = engine.samples_out
        engine.step()
        if on_hop is not None:
            on_hop(engine, at)


def test_morph_glides_on_a_raised_cosine_and_lands_on_the_slot(model):
    engine = _engine(model)
    engine.schedule(_store_events() + [Event("preset", t=0.01, action="recall", slot=0),
                                       Event("preset", t=0.02, action="morph", slot=1, seconds=0.5)])
    applied = []
    engine.add_listener(applied.append)
    seen = []
    _run_until(engine, int(0.7 * RATE), lambda e, at: seen.append(
        (at, e.morphing, e.params.get("x"), e.params.get("z0"), e.params.get("voices"), e.params.get("gain"))))
    (morph,) = [event for event in applied if event.action == "morph"]
    start, span = morph.sample, 0.5 * RATE
    checked = 0
    previous_voices = 4.0
    for block_start, morphing, x, z0, voices, gain in seen:
        if block_start < start:
            continue
        frac = (block_start - start) / span
        if frac >= 1:
            assert not morphing
            assert (x, z0, voices, gain) == (0.875, 2.0, 12.0, -4.0)  # exactly the slot's values
            continue
        assert morphing
        assert x == pytest.approx(_cosine(0.125, 0.875, frac), abs=1e-12)
        assert z0 == pytest.approx(_cosine(-1.0, 2.0, frac), abs=1e-12)
        assert voices == round(_cosine(4, 12, frac)) and voices >= previous_voices  # integers step
        previous_voices = voices
        checked += 1
    assert checked > 80  # about 94 blocks of 256 samples in 0.5 s
    # the smoothed gain follows its moving target; the voice limit was enforced as it stepped
    assert engine.params.value("gain") == pytest.approx(-4.0, abs=0.05)


def test_loop_goes_from_slot_to_slot_round_and_round(model):
    engine = _engine(model)
    leg = 0.25
    engine.schedule(_store_events() + [param("x", 0.3, t=0.01),
                                       Event("preset", t=0.02, action="loop", seconds=leg, slots=(1, 0, 3))])
    applied = []
    engine.add_listener(applied.append)
    xs = {}
    _run_until(engine, int(1.6 * RATE), lambda e, at: xs.__setitem__(at, e.params.get("x")))
    (loop,) = [event for event in applied if event.action == "loop"]
    span = int(leg * RATE)
    # leg 0 from the current x (0.3) to slot 1, then 1 -> 0 -> 3 -> 1 -> 0 ...
    ends = [0.3, 0.875, 0.125, 0.5, 0.875, 0.125]
    for k, x in enumerate(ends):
        at = loop.sample + k * span
        if at in xs:  # leg boundaries that fall on a block boundary land exactly
            assert xs[at] == x
        nearest = min(xs, key=lambda s: abs(s - at))
        assert xs[nearest] == pytest.approx(x, abs=0.002)
    assert engine.morphing and engine.morph_names()

    # default slots: every stored slot in order (0, 1, 3)
    engine.post(Event("preset", action="loop", seconds=leg))
    start = engine.samples_out
    engine.step()
    xs.clear()
    _run_until(engine, start + 3 * span + 512, lambda e, at: xs.__setitem__(at, e.params.get("x")))
    for k, x in enumerate([0.125, 0.875, 0.5], start=1):
        nearest = min(xs, key=lambda s: abs(s - (start + k * span)))
        assert xs[nearest] == pytest.approx(x, abs=0.002)


def test_a_param_event_releases_that_parameter_only(model):
    engine = _engine(model)
    engine.schedule(_store_events() + [Event("preset", t=0.01, action="recall", slot=0),
                                       Event("preset", t=0.02, action="loop", seconds=0.3, slots=(1, 0))])
    _run_until(engine, int(0.15 * RATE))
    assert 0.125 < engine.params.get("x") < 0.875
    engine.post(param("x", 0.42))  # the performer grabs the pad's x
    _run_until(engine, int(1.0 * RATE))
    assert engine.params.get("x") == 0.42  # stays where the performer put it, every leg after
    assert "x" not in engine.morph_names() and "y" in engine.morph_names()
    y_before = engine.params.get("y")
    _run_until(engine, int(1.1 * RATE))
    assert engine.params.get("y") != y_before  # the rest keeps moving
    assert engine.morphing


@pytest.mark.parametrize("running", [Event("preset", t=0.02, action="morph", slot=1, seconds=0.5),
                                     Event("preset", t=0.02, action="loop", seconds=0.15, slots=(1, 0, 3))])
def test_a_fresh_engine_resumes_a_running_morph_or_loop_at_the_same_point_of_its_path(model, running):
    """A lost device or a model switch: the carry hands a fresh engine the morph or loop the old
    one ran (its path from the applied event's `moves`) and it goes on from the same point, the
    parameters the performer released staying released; so does the logged event (a render)."""
    from livegen.engine.carry import CarryOver

    old = _engine(model)
    carry = CarryOver()
    old.add_listener(carry.applied)
    old.schedule(_store_events() + [Event("preset", t=0.01, action="recall", slot=0), running])
    _run_until(old, int(0.15 * RATE))
    old.post(param("y", 0.42))  # the performer grabs the pad's y: released for the rest
    _run_until(old, int(0.3 * RATE) + 77)  # mid-block on purpose: the clock goes on from here
    assert old.morphing
    at = old.samples_out
    (resume,) = [e for e in carry.handover(at=at) if e.type == "preset" and e.action == running.action]
    assert resume.source == "carry" and "y" not in resume.extra["resume"]["rows"]
    assert {"x", "gain", "z0", "voices"} <= set(resume.extra["resume"]["rows"])
    names = ["x", "y", "gain", "z0", "voices"]

    def path(engine, blocks=60):  # each block's parameter values, and whether it still moves them
        moved = []
        for _ in range(blocks):
            engine.step()
            moved.append(([engine.params.get(name) for name in names], engine.morphing))
        return moved

    def fresh(event):
        new = _engine(model, seed=4)
        applied = []
        new.add_listener(applied.append)
        new.samples_out = at  # a server after a lost device goes on with the sample clock
        new.post(param("y", 0.42))  # the parameters as the spec carries them
        new.post(event)
        return new, applied

    new, applied = fresh(resume)
    resumed = path(new)
    (stamped,) = [e for e in applied if e.type == "preset"]
    logged, _ = fresh(event_from_record(json.loads(stamped.to_json())))  # what a render of the log gets
    expected = path(old)
    assert resumed == expected and path(logged) == expected
    assert expected[0][1] and expected[0][0][1] == 0.42 and len({tuple(v) for v, _ in expected}) > 20


@pytest.mark.parametrize("stop", [Event("preset", action="recall", slot=3),
                                  Event("preset", action="loop", seconds=0.0),
                                  Event("preset", action="morph", slot=3, seconds=0.0)])
def test_recall_loop_zero_and_a_new_morph_stop_a_loop(model, stop):
    engine = _engine(model)
    engine.schedule(_store_events() + [Event("preset", t=0.01, action="loop", seconds=0.2)])
    _run_until(engine, int(0.3 * RATE))
    assert engine.morphing
    engine.post(stop)
    engine.step()
    held = engine.params.snapshot()
    _run_until(engine, int(0.6 * RATE))
    assert not engine.morphing
    assert engine.params.snapshot() == held
    if stop.slot == 3:
        assert engine.params.get("x") == 0.5


def test_morphs_to_empty_slots_are_rejected(model):
    engine = _engine(model)
    engine.schedule(_store_events({0: SLOTS[0]}) + [Event("preset", t=0.01, action="morph", slot=5, seconds=1.0),
                                                    Event("preset", t=0.01, action="loop", seconds=1.0),
                                                    Event("preset", t=0.01, action="loop", seconds=1.0, slots=(0, 5))])
    _run_until(engine, int(0.05 * RATE))
    assert engine.rejected == 3 and not engine.morphing


def _performance():
    return _store_events() + [
        note_on_event(60, t=0.05), Event("preset", t=0.1, action="loop", seconds=0.3, slots=(0, 1, 3)),
        param("z0", 1.5, t=0.5), Event("preset", t=0.9, action="morph", slot=0, seconds=0.2),
    ]


def note_on_event(pitch, *, t):
    return Event("note_on", t=t, pitch=pitch, velocity=100)


def test_morph_renders_are_deterministic_and_survive_the_events_file(model, tmp_path):
    from livegen.session.render import render_events

    events = _performance()
    first, _ = render_events(events, model=model[0], samplerate=RATE, seed=2, seconds=1.2)
    path = tmp_path / "events.jsonl"
    write_events(path, events, header={"samplerate": RATE, "seed": 2})
    _, again = read_events(path)
    assert [(e.action, e.slots, e.seconds) for e in again if e.type == "preset"] == \
        [(e.action, e.slots, e.seconds) for e in events if e.type == "preset"]
    second, _ = render_events(again, model=model[0], samplerate=RATE, seed=2, seconds=1.2)
    assert np.array_equal(first, second)
    without = [e for e in events if e.action not in ("loop", "morph")]
    still, _ = render_events(without, model=model[0], samplerate=RATE, seed=2, seconds=1.2)
    assert np.abs(still - first).max() > 1e-3  # the loop is audible, so the comparison can fail


def test_a_recorded_session_with_a_loop_rerenders_exactly(model, tmp_path):
    from livegen.session.render import render_events
    from livegen.session.wiring import SessionControl, engine_header

    engine = _engine(model, seed=7)
    errors = []
    session = SessionControl(engine, directory=tmp_path, header=engine_header(engine, model_name=model[1]),
                             on_error=errors.append).attach()
    engine.schedule(_performance() + [Event("record", t=0.2, value=1), Event("record", t=1.1, value=0)])
    wait_for(lambda: session._armed is not None, 10, "the session to arm a recorder")
    engine.render(1.3)
    session.close()
    assert errors == []
    (rec,) = session.recordings
    import soundfile

    audio, _ = soundfile.read(rec.path, dtype="float32")
    header, logged = read_events(rec.log_path)
    kinds = [(e.action, e.seconds, e.slots) for e in logged if e.type == "preset" and e.action in ("loop", "morph")]
    assert kinds == [("loop", 0.3, (0, 1, 3)), ("morph", 0.2, None)]
    start = header["start_sample"]
    y, _ = render_events(logged, model=model[0], samplerate=header["samplerate"], seed=header["seed"],
                         lookahead=header["lookahead"], seconds=(start + len(audio)) / header["samplerate"])
    assert np.abs(audio).max() > 1e-3
    assert np.abs(y[start:start + len(audio)] - audio).max() <= 1e-6


def test_the_per_block_morph_work_allocates_no_arrays(model):
    engine = _engine(model)
    engine.schedule(_store_events() + [Event("preset", action="loop", seconds=0.01, slots=(0, 1, 3))])
    engine.step()
    assert engine.morphing
    for _ in range(10):  # compiled and warm
        engine._morph_advance()

    def peak_during(work):
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(200):
                engine.samples_out += 256
                work()
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    steady = peak_during(engine._morph_advance)
    # the same work plus one parameter-sized temporary array a block: what the test must catch
    with_array = peak_during(lambda: (engine._morph_advance(), np.empty(len(engine.params.names))))
    assert steady < with_array
    assert steady < 1024, steady


@pytest.mark.parametrize("line, message", [
    ('{"t": 1, "type": "preset", "action": "morph", "slot": 1}', "needs field 'seconds'"),
    ('{"t": 1, "type": "preset", "action": "morph", "slot": 1, "seconds": -2}', "field 'seconds' is -2"),
    ('{"t": 1, "type": "preset", "action": "morph", "slot": 128, "seconds": 2}', "slots are whole numbers 0..127"),
    ('{"t": 1, "type": "preset", "action": "morph", "slot": 1.5, "seconds": 2}', "field 'slot' has slot 1.5"),
    ('{"t": 1, "type": "preset", "action": "morph", "seconds": 2}', "needs field 'slot'"),
    ('{"t": 1, "type": "preset", "action": "loop", "seconds": "fast"}', "field 'seconds' is 'fast'"),
    ('{"t": 1, "type": "preset", "action": "loop", "seconds": 1, "slots": [3]}', "at least 2 slots"),
    ('{"t": 1, "type": "preset", "action": "loop", "seconds": 1, "slots": [3, -1]}', "field 'slots' has slot -1"),
    ('{"t": 1, "type": "preset", "action": "loop", "seconds": 1, "slots": [' + ", ".join(["0, 1"] * 65) + ']}',
     "field 'slots' has 130 slots; a loop goes through at most 128"),
    ('{"t": 1, "type": "preset", "action": "morph", "slot": 1, "seconds": 1, "slots": [1, 2]}', "belongs to a preset loop"),
    ('{"t": 1, "type": "preset", "action": "glide", "slot": 1}', "store, recall, morph, loop"),
])
def test_the_events_file_names_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"t": 0, "type": "param", "name": "x", "value": 0.5}\n' + line + "\n")
    with pytest.raises(ParameterError, match=r"bad\.jsonl:2: ") as info:
        read_events(path)
    assert message in str(info.value)


def test_the_new_actions_round_trip_through_json_lines(tmp_path):
    events = [Event("preset", t=0.5, action="morph", slot=2, seconds=1.5),
              Event("preset", t=1.0, action="loop", seconds=2.0, slots=(0, 2, 7)),
              Event("preset", t=3.0, action="loop", seconds=0.0)]
    path = tmp_path / "e.jsonl"
    write_events(path, events)
    assert '"slots": [0, 2, 7]' in path.read_text()
    _, back = read_events(path)
    assert back == events


# ------------------------------------------------------------------------------------------ OSC
@pytest.fixture
def served(model):
    """A real engine stepped on its own thread (as the live decoder does) behind an OscServer."""
    engine = _engine(model)
    with stepped_osc(engine) as server:
        yield engine, server


def _wait(condition, timeout=10.0):
    try:
        return wait_for(condition, timeout)
    except AssertionError:
        return False


def _errors(client, timeout=10.0):
    """The errors answered to what `client` sent so far: the server answers in order, so they
    all come before the reply to a `/livegen/status` sent now."""
    client.send_message("/livegen/status", [])
    heard = listen(client, lambda address, args: address == "/livegen/status", timeout)
    assert heard and heard[-1][0] == "/livegen/status", heard
    return [args[0] for address, args in heard if address == "/livegen/error"]


def test_osc_morph_and_loop_drive_the_engine(served):
    engine, server = served
    applied = []
    engine.add_listener(applied.append)
    client = SimpleUDPClient("127.0.0.1", server.port)
    for slot in (0, 1):
        client.send_message("/livegen/xy", [SLOTS[slot]["x"], SLOTS[slot]["y"]])
        client.send_message("/livegen/preset/store", slot)
    client.send_message("/livegen/preset/recall", 0)
    assert _wait(lambda: engine.params.get("x") == 0.125)
    client.send_message("/livegen/preset/morph", [1, 0.5])  # int slot, float seconds
    assert _wait(lambda: 0.125 < engine.params.get("x") < 0.875)
    assert _wait(lambda: engine.params.get("x") == 0.875 and not engine.morphing)
    client.send_message("/livegen/preset/loop", [0.5])  # ints or floats; every stored slot
    assert _wait(lambda: engine.morphing)
    client.send_message("/livegen/preset/loop", [0])
    assert _wait(lambda: not engine.morphing)
    client.send_message("/livegen/preset/loop", [0.25, 1, 0.0])  # a float slot that is whole is fine
    assert _wait(lambda: engine.morphing)
    client.send_message("/livegen/preset/loop", [0.0])
    assert _wait(lambda: not engine.morphing)
    posted = [(e.action, e.slot, e.seconds, e.slots) for e in applied if e.type == "preset" and e.action in ("morph", "loop")]
    assert posted == [("morph", 1, 0.5, None), ("loop", None, 0.5, None), ("loop", None, 0.0, None),
                      ("loop", None, 0.25, (1, 0)), ("loop", None, 0.0, None)]
    assert all(e.source.startswith("osc:127.0.0.1:") for e in applied if e.type == "preset")
    assert engine.rejected == 0


@pytest.mark.parametrize("address, args, message", [
    ("/livegen/preset/morph", [200, 1.0], "slot 200 must be a whole number 0..127"),
    ("/livegen/preset/morph", [1.5, 1.0], "slot 1.5 must be a whole number 0..127"),
    ("/livegen/preset/morph", [1, -3.0], "seconds -3 must be >= 0"),
    ("/livegen/preset/morph", [1], "expected 2 numbers, got 1"),
    ("/livegen/preset/morph", ["one", 1.0], "must be numbers"),
    ("/livegen/preset/loop", [], "expected seconds per leg"),
    ("/livegen/preset/loop", [-1.0], "seconds -1 must be >= 0 (0 stops the loop)"),
    ("/livegen/preset/loop", [1.0, 4], "at least 2 slots"),
    ("/livegen/preset/loop", [1.0, 4, 130], "slot 130 must be a whole number 0..127"),
    ("/livegen/preset/loop", [float("inf")], "not finite"),
    ("/livegen/preset/loop", [1.0] + [0, 1] * 65, "a loop goes through at most 128 slots, got 130"),
])
def test_osc_bad_values_are_answered_with_an_error(served, address, args, message):
    engine, server = served
    client = SimpleUDPClient("127.0.0.1", server.port)
    client.send_message(address, args)
    errors = _errors(client)
    assert len(errors) == 1 and message in errors[0] and address in errors[0], errors
    assert not engine.morphing


def test_liblo_oscsend_morphs_and_subscribers_see_the_glide(served):
    engine, server = served
    oscsend = require_binary("oscsend")
    send = lambda *argv: subprocess.run([oscsend, "127.0.0.1", str(server.port), *argv], check=True)  # noqa: E731
    send("/livegen/xy", "ff", "0.125", "0.875")
    send("/livegen/preset/store", "i", "0")
    send("/livegen/xy", "ff", "0.875", "0.25")
    send("/livegen/preset/store", "i", "1")
    send("/livegen/preset/recall", "i", "0")
    assert _wait(lambda: engine.params.get("x") == 0.125)
    watcher = SimpleUDPClient("127.0.0.1", server.port)
    watcher.send_message("/livegen/subscribe", [])
    assert _wait(lambda: server.status()["osc_subscribers"] == 1)
    send("/livegen/preset/morph", "if", "1", "1.0")
    heard = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and 0.875 not in heard:
        data = watcher.receive(0.2)
        heard += [m.args[0] for m in parse_packet(data) if m.address == "/livegen/param/x"] if data else []
    assert heard and heard[-1] == 0.875
    assert any(0.125 < x < 0.875 for x in heard), heard  # the glide itself, not a jump
    send("/livegen/preset/loop", "fii", "0.5", "0", "1")
    assert _wait(lambda: engine.morphing)
    send("/livegen/preset/loop", "i", "0")
    assert _wait(lambda: not engine.morphing)
    send("/livegen/preset/morph", "ii", "999", "1")
    assert engine.rejected == 0 and not engine.morphing


def test_play_headless_morphs_and_loops_over_osc(live_play):
    """The engine server itself (`livegen play --headless` on jackd dummy) driven by oscsend."""
    oscsend = require_binary("oscsend")
    play = live_play()
    send = lambda *argv: subprocess.run([oscsend, "127.0.0.1", str(play.port), *argv], check=True)  # noqa: E731
    client = play.client

    def x_now():
        got = ask(client, "/livegen/get/x", want="/livegen/param/x")
        return got[0] if got else None

    send("/livegen/xy", "ff", "0.1", "0.5")
    send("/livegen/preset/store", "i", "2")
    send("/livegen/xy", "ff", "0.9", "0.5")
    send("/livegen/preset/store", "i", "5")
    send("/livegen/preset/recall", "i", "2")
    assert _wait(lambda: x_now() == pytest.approx(0.1), 30)
    send("/livegen/preset/morph", "if", "5", "2.0")
    assert _wait(lambda: 0.1 < (x_now() or 0) < 0.9, 30), play.log
    assert _wait(lambda: x_now() == pytest.approx(0.9), 30)
    send("/livegen/preset/loop", "fii", "0.4", "2", "5")
    values = set()
    assert _wait(lambda: values.add(round(x_now() or 0, 3)) or len(values) > 5, 30)
    send("/livegen/preset/loop", "f", "0")
    # the loop stopped where it was: x holds still over more than a leg (0.4 s on the engine's clock)
    sent_at = play.status()["seconds"]
    play.wait_status(lambda pairs: pairs["seconds"] > sent_at + 0.3, 30, "0.3 s played after the stop")
    held, held_at = x_now(), play.status()["seconds"]
    play.wait_status(lambda pairs: pairs["seconds"] > held_at + 0.5, 30, "0.5 s more played")
    assert x_now() == held
    assert ask(client, "/livegen/preset/morph", [5, -1.0], want="/livegen/error") is not None
    assert play.process.poll() is None
