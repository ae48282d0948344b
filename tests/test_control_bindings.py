"""MIDI learn management over OSC (/livegen/bindings, /livegen/unlearn) and the `record` button."""

from __future__ import annotations

import pytest

from conftest import require
from helpers import ask, jack_midi_out, wait_for
from livegen.control.fake import FakeTarget
from livegen.control.mapping import RECORD, Mapping, MidiMapper, load_map
from livegen.engine.params import ParamStore


def test_record_button_toggles_on_each_press():
    recording = [False]
    mapper = MidiMapper(ParamStore.for_model(8), [Mapping(RECORD, cc=20)], is_recording=lambda: recording[0])
    assert mapper.feed([0xB0, 20, 0]) == []
    (start,) = mapper.feed([0xB0, 20, 127])
    assert (start.type, start.value) == ("record", 1.0)
    assert mapper.feed([0xB0, 20, 127]) == []  # still held: no second toggle
    assert mapper.feed([0xB0, 20, 0]) == []  # release
    recording[0] = True  # the engine applied the start
    (stop,) = mapper.feed([0xB0, 20, 100])
    assert (stop.type, stop.value) == ("record", 0.0)


def test_learn_record_and_unlearn():
    mapper = MidiMapper(ParamStore.for_model(8))
    changes = []
    mapper.on_change = lambda: changes.append(1)
    mapper.arm(RECORD)
    assert mapper.feed([0xB2, 21, 127]) == []
    assert (RECORD, "CC 21 ch 3") in mapper.bindings()
    assert mapper.unlearn("z0") == 1 and not any(p == "z0" for p, _ in mapper.bindings())
    assert mapper.unlearn("z0") == 0 and len(changes) == 2


@pytest.fixture
def target():
    fake = FakeTarget(latent_dim=8)
    yield fake
    fake.close()


def test_bindings_unlearn_and_record_button_over_osc_and_jack_midi(jack_server, target, tmp_path):
    import rtmidi
    from pythonosc.udp_client import SimpleUDPClient

    from livegen.control.midi import MidiInput
    from livegen.control.osc import OscServer
    from livegen.control.oscwire import parse_packet

    require(rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api(), "python-rtmidi built with JACK support")
    map_path = tmp_path / "map.toml"
    midi = MidiInput(target, api=rtmidi.API_UNIX_JACK, map_path=map_path).start()
    osc = OscServer(target, port=0, midi=midi).start()
    out = None
    client = SimpleUDPClient("127.0.0.1", osc.port)

    def reply(address, *args, want):
        got = ask(client, address, args, want=want, timeout=3.0)
        assert got is not None, f"no {want} after {address}"
        return got

    try:
        out = jack_midi_out("bindctl")
        pairs = reply("/livegen/bindings", want="/livegen/bindings")
        bound = dict(zip(pairs[::2], pairs[1::2]))
        assert bound["z0"] == "CC 70 any ch" and bound["gain"] == "CC 7 any ch"
        pairs = reply("/livegen/unlearn", "gain", want="/livegen/bindings")
        assert "gain" not in pairs[::2] and "z0" in pairs[::2]
        saved, _ = load_map(map_path)
        assert not any(m.param == "gain" for m in saved) and any(m.param == "z0" for m in saved)
        assert "no MIDI binding" in reply("/livegen/unlearn", "gain", want="/livegen/error")[0]

        client.send_message("/livegen/learn", RECORD)
        wait_for(lambda: midi.armed == RECORD, 3, "MIDI learn armed for the record button")
        out.send_message([0xB0, 22, 127])
        message = parse_packet(client.receive(3.0))[0]
        assert (message.address, message.args) == ("/livegen/learned", (RECORD, "CC 22 ch 1"))
        out.send_message([0xB0, 22, 0])
        out.send_message([0xB0, 22, 127])  # press: record
        assert target.wait_for(lambda: target.recording, timeout=5)
        out.send_message([0xB0, 22, 0])
        out.send_message([0xB0, 22, 127])  # press again: stop
        assert target.wait_for(lambda: not target.recording, timeout=5)
        assert any(m.param == RECORD and m.cc == 22 for m in load_map(map_path)[0])
    finally:
        if out is not None:
            out.delete()
        osc.stop()
        midi.stop()
