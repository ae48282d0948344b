"""The panic (`/livegen/panic`) on a real engine, re-rendered from the session log, on the sound
server on jackd over real UDP OSC, and from the UI (its OSC side is in test_osc.py)."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import torch
from pythonosc.udp_client import SimpleUDPClient

from helpers import make_app, run, shown_keys, take_rendered_again, until, wait_for
from livegen.control.osc import OscServer
from livegen.control.oscdispatch import OscDispatcher
from livegen.engine import events as ev
from livegen.engine.carry import CarryOver
from livegen.engine.input import input_param_specs
from livegen.engine.notes import NotesSource, spectral_engine
from livegen.engine.params import ParamStore
from livegen.engine.voices import DRONE
from livegen.errors import ParameterError
from livegen.model import default_model_path, load_model
from livegen.server.client import RemoteEngine, SoundServer
from livegen.session.wiring import SessionControl, engine_header
from livegen.tui.screens import HelpScreen
from livegen.tui.screens.help import help_markdown
from livegen.tui.widgets import PresetBar, StatusLine

torch.set_num_threads(1)
SR = 48000
PANIC_AT = 0.8
"""A hop boundary: where the engine tests panic."""


# -- the event --------------------------------------------------------------------------------
def test_a_sound_off_of_every_note_is_read_and_written_and_checked(tmp_path):
    path = tmp_path / "events.jsonl"
    ev.write_events(path, [ev.sound_off(every=True, t=1.0), ev.sound_off(voice=2, t=1.5)])
    _, events = ev.read_events(path)
    assert [(e.type, e.action, e.voice) for e in events] == [("sound_off", "all", None), ("sound_off", None, 2)]
    for record, fragment in ((
            {"type": "sound_off", "action": "some"}, "field 'action' is 'some'"),
            ({"type": "sound_off", "action": "all", "voice": 2}, "with no 'voice' field")):
        with pytest.raises(ParameterError, match=fragment):
            ev.event_from_record(record)
    with pytest.raises(ParameterError, match="give one"):
        ev.sound_off(voice=2, every=True)


def test_the_carry_over_drops_every_note_a_panic_cut():
    carry = CarryOver()
    for event in (ev.param("sustain", 1), ev.note_on(48, 100, voice=2), ev.note_off(48, voice=2),
                  ev.note_on(60, 100, voice=3), ev.note_on(64, 100), ev.sound_off(every=True), ev.param("sustain", 0)):
        carry.posted(event)
    assert [e for e in carry.handover(voices=16) if e.type == "note_on"] == []


# -- a real engine ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return load_model(default_model_path())


class _Collect:
    """A spectral engine's parameters as the dispatcher sees them; what it posts is kept, to schedule."""

    def __init__(self, engine):
        self.params = engine.params
        self.posted = []
        self.errors = []

    def post(self, event):
        self.posted.append(event)

    def error(self, sender, text):
        self.errors.append(text)


def _panic_events(engine) -> list:
    """The events the OSC dispatcher posts for `/livegen/panic`, due at `PANIC_AT`."""
    collect = _Collect(engine)
    OscDispatcher(collect, collect, None, collections.Counter(), status=dict).handle("/livegen/panic", (), ("127.0.0.1", 1))
    assert collect.errors == []
    for event in collect.posted:
        event.t = PANIC_AT
    return collect.posted


def test_with_an_audio_input_the_panic_silences_its_voice_too():
    """`input_level` 0 as well, where the engine has one (a microphone's feedback loop stops)."""
    engine = type("Engine", (), {"params": ParamStore([*ParamStore.for_model(4).specs.values(), *input_param_specs()])})
    assert [(e.type, e.name) for e in _panic_events(engine)] == [
        ("preset", None), ("param", "sustain"), ("param", "drone"), ("param", "input_level"), ("sound_off", None)]


def _performance():
    """The drone on, plain notes held and pedal-held, voice 2 held, voice 3 ringing out, a loop
    of two presets gliding the pad: everything a panic must silence or stop."""
    return [ev.param("drone", 1), ev.param("x", 0.2), ev.Event("preset", action="store", slot=0),
            ev.param("x", 0.8, t=0.05), ev.Event("preset", t=0.05, action="store", slot=1),
            ev.Event("preset", t=0.1, action="loop", seconds=0.3, slots=(0, 1)),
            ev.note_on(48, 100, t=0.2), ev.param("sustain", 1, t=0.25), ev.note_on(55, 90, t=0.3),
            ev.note_off(55, t=0.4), ev.note_on(60, 100, voice=2, t=0.45), ev.note_on(67, 100, voice=3, t=0.5),
            ev.note_off(67, voice=3, t=0.7)]


def _db(y, start, end):
    return 10 * np.log10(np.mean(y[int(start * SR):int(end * SR)] ** 2) + 1e-20)


def test_a_panic_silences_everything_and_re_renders_exactly(model, tmp_path):
    """Every note (held, pedal-held, with and without an id, ringing out) and the drone are 60 dB
    down 60 ms after the panic; the pedal is up, the drone off, the loop stopped; the applied
    events written as a session log render the same samples in a fresh engine."""
    engine = spectral_engine(model, samplerate=SR, seed=1)
    applied = []
    engine.add_listener(applied.append)
    engine.schedule([*_performance(), *_panic_events(engine)])
    first = engine.render(1.1)
    before = _db(first, PANIC_AT - 0.05, PANIC_AT)
    assert before > -60 and _db(first, PANIC_AT + 0.06, 1.1) < before - 60
    bank = engine.find(NotesSource).voices
    assert not bank.active.any() and not bank.active[DRONE] and engine.status()["voices"] == 0
    assert engine.params.get("sustain") == 0 and engine.params.get("drone") == 0 and not engine.morphing
    assert engine.rejected == 0
    assert [(e.type, e.action) for e in applied if e.t >= PANIC_AT] == [("preset", "loop"), ("param", None), ("param", None), ("sound_off", "all")]
    log = tmp_path / "take.jsonl"
    ev.write_events(log, applied)
    _, logged = ev.read_events(log)
    again = spectral_engine(model, samplerate=SR, seed=1)
    again.schedule(logged)
    assert np.array_equal(again.render(1.1), first)


def test_a_held_drone_plays_on_through_a_cut_of_every_note(model):
    """The event alone (a log edited by hand) cuts the notes; the drone, still on, is no note."""
    engine = spectral_engine(model, samplerate=SR, seed=1)
    for event in (ev.param("drone", 1), ev.note_on(60, 100), ev.note_on(64, 100, voice=4)):
        engine.post(event)
    engine.step()
    engine.post(ev.sound_off(every=True))
    engine.step()
    bank = engine.find(NotesSource).voices
    assert bank.active[DRONE] and not bank.stolen[DRONE] and len(bank.sounding_notes()) == 0


# -- the sound server on jackd ------------------------------------------------------------------
def test_a_take_with_a_panic_over_osc_on_the_sound_server_re_renders_exactly(jack_server, tmp_path):
    """Notes and the pedal over real UDP OSC to the OSC server of a real sound server on jackd, a
    recorded take, `/livegen/panic`: the voices are gone, `drone` and `sustain` are 0, the take's
    log holds the panic's events and renders its recording sample for sample."""
    engine = RemoteEngine({"samplerate": 48000, "blocksize": 256}, {"model": "random", "seed": 3, "device": "cpu"},
                          lead=0).wait_ready()
    session = SessionControl(engine, directory=tmp_path, header=engine_header(engine, model_name="random")).attach()
    osc = OscServer(SoundServer(engine), port=0).start()
    client = SimpleUDPClient("127.0.0.1", osc.port)
    applied = []
    engine.add_listener(applied.append)

    def played(what):
        wait_for(lambda target=engine.samples_out + 4096: engine.samples_out >= target, 10, f"4096 samples after {what}")

    try:
        engine.start()
        session.record(True)
        for address, args in (("/livegen/param/drone", 1), ("/livegen/param/sustain", 1), ("/livegen/note", [48, 100]),
                              ("/livegen/note", [48, 0]), ("/livegen/voice/2/note", [60, 100]),
                              ("/livegen/voice/3/note", [67, 90])):
            client.send_message(address, args)
        wait_for(lambda: sum(e.type == "note_on" for e in applied) == 3, 10, "the notes applied")
        played("the notes")
        assert engine.status()["voices"] == 3
        client.send_message("/livegen/panic", [])
        wait_for(lambda: any(e.type == "sound_off" for e in applied), 10, "the panic applied")
        played("the panic")
        status = engine.status()
        assert engine.params.get("drone") == 0 and engine.params.get("sustain") == 0
    finally:
        osc.stop()
        session.close()
        engine.stop(fade=False)
        engine.kill()
        engine.close()
    assert status["voices"] == 0
    (wav,) = tmp_path.glob("*.wav")
    logged = [json.loads(line) for line in wav.with_suffix(".jsonl").read_text().splitlines()]
    panic = [(r["type"], r.get("action"), r.get("name")) for r in logged if r.get("t", 0) and r["type"] != "record"][-4:]
    assert panic == [("preset", "loop", None), ("param", None, "sustain"), ("param", None, "drone"),
                     ("sound_off", "all", None)]
    recorded, rendered = take_rendered_again(wav)
    assert len(recorded) > 2 * 4096 and np.array_equal(rendered, recorded)


# -- the UI -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_f5_sends_the_panic_from_anywhere_lets_the_keyboard_go_and_is_shown(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        shown = shown_keys(app)
        assert shown.get("f5") == "panic", shown
        assert "| `F5` | panic" in help_markdown()
        await pilot.press("backslash", "a")  # a latched C
        assert fake.wait_for("/livegen/note", 1)[0][1] == (60, 100)
        await pilot.press("f5")
        assert fake.wait_for("/livegen/panic", 1)[0][1] == ()
        assert app.notes.held == {} and app.query_one(StatusLine).osc_last == "/livegen/panic"
        app.query_one(PresetBar).focus()
        await pilot.press("f5")
        assert len(fake.wait_for("/livegen/panic", 2)) == 2
        await pilot.press("f1")
        assert await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("f5")  # an overlay open: the panic still goes
        assert len(fake.wait_for("/livegen/panic", 3)) == 3 and isinstance(app.screen, HelpScreen)
        assert fake.messages("/livegen/record") == [] and len(fake.messages("/livegen/note")) == 1

    run(app, scenario)
