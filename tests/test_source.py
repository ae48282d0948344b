"""The engine's source interface, with the test-only `FakeSource`: parameters, events, slow
preparation, status and header fields, and mixing, through the engine and over real UDP OSC."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from helpers import ask, get_when, param_names, status_of, stepped_osc, wait_for
from livegen.engine.core import Engine
from livegen.engine.events import Event, note_on, param
from livegen.engine.fake import FakeConfig, FakeSource
from livegen.engine.params import ParamSpec
from livegen.session.wiring import engine_header


def _engine(*sources, **kwargs) -> Engine:
    return Engine(sources, config=FakeConfig(), samplerate=24000, **kwargs)


def _frames(engine, hops: int) -> list[np.ndarray]:
    """The mix frames the engine inverts over `hops` hops."""
    seen = []
    push = engine.inverter.push
    engine.inverter.push = lambda frame, onset=None, cut=False: (seen.append(frame[0].copy()), push(frame, onset, cut))[1]
    for _ in range(hops):
        engine.step()
    return seen


def test_two_sources_mix_into_one_frame():
    a, b = FakeSource("a_level", level=1.0, bins=slice(10, 20)), FakeSource("b_level", level=2.0, bins=slice(15, 30))
    engine = _engine(a, b)
    frame = _frames(engine, 3)[-1]
    assert np.all(frame[10:15] == 1.0) and np.all(frame[15:20] == 3.0) and np.all(frame[20:30] == 2.0)
    assert frame[:10].sum() == 0.0 and frame[30:].sum() == 0.0
    assert a.hops == b.hops == 3
    engine.render(0.5)
    assert np.abs(engine.render(0.2)).max() > 0.0


def test_params_events_status_and_header_of_a_source():
    fake = FakeSource("fake_level", level=1.0)
    engine = _engine(fake)
    names = engine.params.names
    assert "fake_level" in names and names.index("fake_level") < names.index("z0")  # before the offsets
    applied = []
    engine.add_listener(applied.append)
    engine.post(param("fake_level", 4.0))
    engine.post(note_on(60, 90))
    engine.post(Event("nobody"))                      # no source takes it: rejected, not logged
    frame = _frames(engine, 1)[0]
    assert frame[12] == 4.0 and fake.changed == [("fake_level", 4.0)]
    assert [e.type for e in fake.handled] == ["note_on"] and engine.rejected == 1
    assert [e.type for e in applied] == ["param", "note_on"] and applied[1].sample == 0
    status = engine.status()
    assert status["fake_level_events"] == 1 and "voices" not in status
    assert engine.log_header == {"fake_level_header": 1.0}
    assert engine_header(engine)["fake_level_header"] == 1.0
    assert engine.handles("fake") and not engine.handles("seed")


def test_a_preset_recall_tells_the_source_what_changed():
    fake = FakeSource("fake_level", level=1.0)
    engine = _engine(fake)
    engine.post(param("fake_level", 5.0))
    engine.post(Event("preset", action="store", slot=1))
    engine.post(param("fake_level", 2.0))
    engine.step()
    engine.post(Event("preset", action="recall", slot=1))
    engine.step()
    assert fake.changed[-1] == ("fake_level", 5.0)
    engine.post(Event("preset", action="recall", slot=1))  # nothing moves: nothing to tell
    engine.step()
    assert fake.changed.count(("fake_level", 5.0)) == 2


def test_slow_work_is_prepared_off_the_hop():
    fake = FakeSource()
    engine = _engine(fake)
    answers, done = [], threading.Event()
    engine.submit(Event("fake", extra={"path": "a.wav"}), lambda ok, text: (answers.append((ok, text)), done.set()))
    assert done.wait(10) and answers == [(True, "a.wav")]
    engine.step()
    assert fake.handled[0].payload == ("prepared", "a.wav")
    engine.schedule([Event("fake", t=0.0, extra={"path": "b.wav"})])  # scheduled: prepared now
    engine.step()
    assert fake.handled[1].payload == ("prepared", "b.wav") and engine.rejected == 0
    engine.post(Event("fake"))  # posted without preparing: the source refuses it
    engine.step()
    assert engine.rejected == 1


def test_a_parameter_declared_twice_must_agree():
    clash = FakeSource("drone")  # every engine has `drone`, with another range
    with pytest.raises(ValueError, match="drone"):
        _engine(clash)
    same = FakeSource("shared")
    _engine(same, FakeSource("shared"))  # the same spec twice: one parameter
    other = FakeSource("shared", level=2.0)
    with pytest.raises(ValueError, match="shared"):
        _engine(same, other)
    assert isinstance(same.params()[0], ParamSpec)


def test_a_source_parameter_over_osc():
    """Its parameter is set and read over OSC and listed in `/livegen/params`, its events come
    from `/livegen/note`, its status fields answer `/livegen/status`."""
    fake = FakeSource("fake_level")
    engine = _engine(fake)
    with stepped_osc(engine) as osc:
        client = SimpleUDPClient("127.0.0.1", osc.port)
        assert "fake_level" in param_names(client)
        client.send_message("/livegen/param/fake_level", 7.5)
        client.send_message("/livegen/note", [64, 100])
        assert get_when(client, "fake_level", 7.5) == pytest.approx(7.5)
        wait_for(lambda: fake.handled, what="the note at the fake source")
        assert fake.handled[0].pitch == 64
        assert status_of(client)["fake_level_events"] == 1
        error = ask(client, "/livegen/seed", ("x.wav",), want="/livegen/error")
    assert error and "not a continuation model" in error[0]
