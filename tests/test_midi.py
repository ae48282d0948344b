"""MIDI through real JACK MIDI ports on `jackd -d dummy`: a test MidiOut plays the controller."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from conftest import require
from helpers import jack_midi_out, stepped, wait_for, wait_jack_connected
from livegen.control.fake import FakeTarget
from livegen.control.mapping import Mapping, MidiMapper, load_map
from livegen.errors import ParameterError
from livegen.control.midi import MidiInput, add_midi_arguments, midi_input_from_args, wait_for_port
from livegen.engine.events import param, read_events, write_events
from livegen.engine.notes import spectral_engine
from livegen.model import ModelConfig, random_model


@pytest.fixture
def rtmidi_jack():
    import rtmidi

    require(rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api(), "python-rtmidi built with JACK support")
    return rtmidi


@pytest.fixture
def target():
    fake = FakeTarget(latent_dim=8)
    yield fake
    fake.close()


def open_out(rtmidi, name="testctl"):
    return jack_midi_out(name)


def test_controller_on_the_virtual_port(jack_server, rtmidi_jack, target, tmp_path):
    mapper = MidiMapper(target.params, None)
    for m in mapper.mappings:
        m.takeover = False  # this test checks values; soft takeover has its own test below
    midi = MidiInput(target, mapper=mapper, api=rtmidi_jack.API_UNIX_JACK, map_path=tmp_path / "m.toml").start()
    out = open_out(rtmidi_jack)
    try:
        mapper.mappings.append(Mapping("drift", nrpn=(1 << 7) | 2, takeover=False))
        out.send_message([0xB0, 70, 127])  # default map: CC 70 -> z0
        out.send_message([0xB0, 16, 100])  # 14-bit pair CC 16/48 -> x
        out.send_message([0xB0, 48, 64])
        for cc in ([0xB0, 99, 1], [0xB0, 98, 2], [0xB0, 6, 32], [0xB0, 38, 0]):
            out.send_message(cc)
        out.send_message([0x90, 60, 100])
        out.send_message([0x90, 64, 90])
        out.send_message([0x90, 64, 0])  # note-on velocity 0 is a note-off
        out.send_message([0xE0, 0, 96])  # pitch bend up half way
        out.send_message([0xB0, 64, 127])  # sustain
        # garbage that must be ignored
        for junk in ([0xF0, 1, 2, 3, 0xF7], [0xF8], [0xFE], [0xB0, 7], [0x55], [0xB0, 200, 1], [0xE0, 1]):
            out.send_message(junk)
        out.send_message([0xC0, 3])  # program change -> preset recall 3
        assert target.wait_for(lambda: any(e.type == "preset" for e in target.applied))
        p = target.params
        assert p.get("z0") == 4.0
        assert p.get("x") == pytest.approx(((100 << 7) | 64) / 16383, abs=1e-6)
        assert p.get("drift") == pytest.approx((32 << 7) / 16383, abs=1e-6)
        assert p.get("bend") == pytest.approx((96 * 128 - 8192) / 8191, abs=1e-6)
        assert p.get("sustain") == 1.0
        assert p.get("gain") == -6.0  # the truncated CC 7 did nothing
        assert target.voices == {60.0: 100}
        preset = [e for e in target.applied if e.type == "preset"][0]
        assert (preset.action, preset.slot) == ("recall", 3)
        assert all(e.source == "midi:livegen" for e in target.applied)
        assert midi.status()["virtual"] == "livegen"
    finally:
        out.delete()
        midi.stop()


def test_soft_takeover_and_learn_through_jack(jack_server, rtmidi_jack, target, tmp_path):
    map_path = tmp_path / "learned.toml"
    midi = MidiInput(target, api=rtmidi_jack.API_UNIX_JACK, map_path=map_path).start()
    out = open_out(rtmidi_jack)
    try:
        out.send_message([0xB0, 71, 127])  # z1 is at 0: a knob at the top does not jump it
        out.send_message([0x90, 61, 1])  # ... as the note after it shows, once applied
        wait_for(lambda: any(e.type == "note_on" and e.pitch == 61 for e in list(target.applied)), 10, "the note after the CC")
        assert target.params.get("z1") == 0.0
        for value in (100, 64, 40):  # sweep down through the current value: picked up
            out.send_message([0xB0, 71, value])
        assert target.wait_for(lambda: target.params.get("z1") == pytest.approx(-4 + 8 * 40 / 127))
        learned = []
        midi.arm("glide", lambda p, c: learned.append((p, c)))
        out.send_message([0xB5, 30, 0])
        wait_for(lambda: learned, 10, "MIDI learn to bind glide")
        assert learned == [("glide", "CC 30 ch 6")]
        mappings, _ = load_map(map_path)
        assert any(m.param == "glide" and m.cc == 30 and m.channel == 6 for m in mappings)
        out.send_message([0xB5, 30, 2])  # within pick-up of glide's 0.05 s
        out.send_message([0xB5, 30, 127])
        assert target.wait_for(lambda: target.params.get("glide") == 5.0)
    finally:
        out.delete()
        midi.stop()


def test_connects_by_substring_and_reconnects(jack_server, rtmidi_jack, target, tmp_path):
    rtmidi = rtmidi_jack
    parser = argparse.ArgumentParser()
    add_midi_arguments(parser)
    args = parser.parse_args(["--midi-in", "knobs", "--midi-map", str(tmp_path / "none.toml")])
    (tmp_path / "none.toml").write_text('[[map]]\nparam = "z3"\ncc = 21\ntakeover = false\n')
    midi = midi_input_from_args(target, args)
    midi.api, midi.virtual, midi.poll_interval = rtmidi.API_UNIX_JACK, False, 0.2
    midi.start()
    hw = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="hw")
    try:
        assert midi.connections == {"knobs": None}
        hw.open_virtual_port("Knobs Controller")  # "plugged in"
        assert wait_for_port(midi, "knobs")
        assert midi.connections["knobs"] == "hw:Knobs Controller"
        wait_jack_connected("hw:Knobs Controller")
        hw.send_message([0xB0, 21, 127])
        assert target.wait_for(lambda: target.params.get("z3") == 4.0)
        hw.close_port()  # "unplugged"
        wait_for(lambda: midi.connections["knobs"] is None, 5, "the unplugged controller to be let go")
        assert midi.connections["knobs"] is None and midi.status()["missing"] == "knobs"
        hw.delete()
        hw = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="hw")
        hw.open_virtual_port("Knobs Controller")  # plugged back: reconnected by name
        assert wait_for_port(midi, "knobs")
        wait_jack_connected("hw:Knobs Controller")
        hw.send_message([0xB0, 21, 0])
        assert target.wait_for(lambda: target.params.get("z3") == -4.0)
        assert target.applied[-1].source == "midi:hw:Knobs Controller"
    finally:
        hw.delete()
        midi.stop()
    with pytest.raises(ParameterError, match="--midi-map"):
        midi_input_from_args(target, parser.parse_args(["--midi-map", str(tmp_path / "missing.toml")]))


def test_a_controller_unplugged_mid_note_lets_its_notes_and_pedal_go(jack_server, rtmidi_jack, target, tmp_path):
    """No note-off can come from a keyboard whose cable was pulled: the notes it held and its
    sustain pedal are released when its port goes away (they sounded on for good), and only its
    own: a note another controller holds sounds on."""
    rtmidi = rtmidi_jack
    (tmp_path / "none.toml").write_text("")
    said = []
    midi = MidiInput(target, connect=["keys"], map_path=tmp_path / "none.toml", api=rtmidi.API_UNIX_JACK,
                     poll_interval=0.2, save_learned=False, log=said.append)
    midi.start()
    hw = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="hw")
    other = open_out(rtmidi, "other")
    try:
        hw.open_virtual_port("Stage Keys")
        assert wait_for_port(midi, "keys")
        wait_jack_connected("hw:Stage Keys")
        hw.send_message([0xB0, 64, 127])  # pedal down
        hw.send_message([0x90, 60, 100])
        hw.send_message([0x91, 64, 90])
        other.send_message([0x90, 67, 80])  # through the virtual port: stays plugged
        assert target.wait_for(lambda: sum(e.type == "note_on" for e in target.applied) == 3)
        assert target.params.get("sustain") == 1
        hw.close_port()  # unplugged, keys and pedal still down
        wait_for(lambda: midi.connections["keys"] is None, 5, "the unplugged keyboard to be let go")
        assert target.wait_for(lambda: target.params.get("sustain") == 0
                               and {e.pitch for e in target.applied if e.type == "note_off"} == {60.0, 64.0})
        released = [e for e in target.applied if e.type == "note_off"]
        assert all(e.source == "midi:hw:Stage Keys" for e in released), released
        assert 67.0 not in {e.pitch for e in released}
        assert said == ["MIDI hw:Stage Keys (--midi-in keys) connected",  # the performer is told both
                        "MIDI hw:Stage Keys (--midi-in keys) went away: its notes and pedal are let go; it is "
                        "connected again when it comes back"], said
    finally:
        hw.delete()
        other.delete()
        midi.stop()


def test_osc_learn_arms_midi_and_reports_the_control(jack_server, rtmidi_jack, target, tmp_path):
    from pythonosc.udp_client import SimpleUDPClient

    from livegen.control.osc import OscServer
    from livegen.control.oscwire import parse_packet

    midi = MidiInput(target, api=rtmidi_jack.API_UNIX_JACK, map_path=tmp_path / "m.toml").start()
    osc = OscServer(target, port=0, midi=midi).start()
    out = open_out(rtmidi_jack)
    try:
        client = SimpleUDPClient("127.0.0.1", osc.port)
        client.send_message("/livegen/learn", "drift")
        wait_for(lambda: midi.armed == "drift", 10, "MIDI learn armed for drift")
        out.send_message([0xB0, 99, 0])  # NRPN 0/5 moved: learned as an NRPN control
        out.send_message([0xB0, 98, 5])
        out.send_message([0xB0, 6, 0])
        message = parse_packet(client.receive(10.0))[0]
        assert (message.address, message.args) == ("/livegen/learned", ("drift", "NRPN 5 ch 1"))
        client.send_message("/livegen/status", [])
        status = parse_packet(client.receive(10.0))[0].args
        pairs = dict(zip(status[::2], status[1::2]))
        assert pairs["midi_virtual"] == "livegen" and pairs["midi_learn"] == ""
    finally:
        out.delete()
        osc.stop()
        midi.stop()


def test_mpe_keyboard_through_jack(jack_server, rtmidi_jack, target, tmp_path):
    """An MPE stream as a keyboard sends it (configuration message, then per channel: bend,
    slide and pressure before each note) reaches the engine as voice events and voiced notes."""
    midi = MidiInput(target, api=rtmidi_jack.API_UNIX_JACK, map_path=tmp_path / "m.toml").start()
    out = open_out(rtmidi_jack, "seaboard")
    try:
        assert midi.status()["mpe"] == ""
        for cc in ([0xB0, 101, 0], [0xB0, 100, 6], [0xB0, 6, 15]):  # MCM: lower zone, 15 members
            out.send_message(cc)
        for channel, bend, slide, pressure, pitch in ((2, 9216, 96, 40, 60), (3, 7680, 32, 127, 64)):
            out.send_message([0xE0 | (channel - 1), bend & 0x7F, bend >> 7])
            out.send_message([0xB0 | (channel - 1), 74, slide])
            out.send_message([0xD0 | (channel - 1), pressure])
            out.send_message([0x90 | (channel - 1), pitch, 100])
        out.send_message([0xE1, 0, 64])  # voice 2's bend back to 0 while it sounds
        out.send_message([0x81, 60, 0])
        out.send_message([0x92, 64, 0])
        out.send_message([0xE0, 0, 96])  # the manager channel: the global bend, as ever
        assert target.wait_for(lambda: any(e.name == "bend" and e.type == "param" for e in target.applied), 10)
        got = [(e.type, e.voice, e.name, e.pitch if e.name is None else e.value) for e in target.applied]
        configured = [("voice", ch, name, 0.0) for ch in range(2, 17) for name in ("bend", "y", "pressure")]
        assert got[:46] == configured + [("param", None, "bend_range", 2.0)], got[:46]  # the MCM's resets
        assert got[46:] == [
            ("voice", 2, "bend", 6.0), ("voice", 2, "y", 0.25), ("voice", 2, "pressure", 40 / 127),
            ("note_on", 2, None, 60.0),
            ("voice", 3, "bend", -3.0), ("voice", 3, "y", -0.25), ("voice", 3, "pressure", 1.0),
            ("note_on", 3, None, 64.0),
            ("voice", 2, "bend", 0.0), ("note_off", 2, None, 60.0), ("note_off", 3, None, 64.0),
            ("param", None, "bend", 32 * 128 / 8191)], got
        assert all(e.source == "midi:livegen" for e in target.applied)
        assert midi.status()["mpe"] == "lower 15" and midi.status()["last"] == "ch1 bend 4096"
    finally:
        out.delete()
        midi.stop()


def test_mpe_manager_all_notes_off_releases_member_voices_in_the_engine(jack_server, rtmidi_jack, tmp_path):
    """All Notes Off on the zone's manager channel, through a JACK MIDI port into the real engine,
    lets go of the notes held on the member channels (MPE voices) as well as the manager's own."""
    engine = spectral_engine(random_model(ModelConfig(), seed=0), samplerate=48000)
    applied = []
    engine.add_listener(applied.append)
    midi = MidiInput(engine, mapper=MidiMapper(engine.params, [], mpe="lower"), api=rtmidi_jack.API_UNIX_JACK,
                     map_path=tmp_path / "m.toml").start()
    out = open_out(rtmidi_jack, "seaboard")
    try:
        with stepped(engine, 0.0005):
            for message in ([0x90, 48, 100], [0xE1, 0, 80], [0x91, 60, 100], [0xE2, 0, 40], [0x92, 64, 100]):
                out.send_message(message)  # a plain note on the manager, two bent MPE voices on 2 and 3
            wait_for(lambda: sum(e.type == "note_on" for e in list(applied)) == 3, 30, "the three notes applied")
            assert engine.status()["voices"] == 3
            out.send_message([0xB0, 123, 0])  # all notes off on the manager channel: the whole zone
            wait_for(lambda: sum(e.type == "note_off" for e in list(applied)) == 3, 30, "the zone's note-offs")
            offs = [(e.pitch, e.voice) for e in applied if e.type == "note_off"]
            assert offs == [(48.0, None), (60.0, 2), (64.0, 3)], offs
            # the release tails play out on the engine's clock
            wait_for(lambda: engine.status()["voices"] == 0, 60,
                     lambda: f"no voices left ({engine.status()['voices']})")
        assert all(e.source == "midi:livegen" for e in applied)
    finally:
        out.delete()
        midi.stop()


def test_mpe_manager_all_sound_off_cuts_the_zone_in_the_engine_and_renders_again(jack_server, rtmidi_jack, tmp_path):
    """All Sound Off on the zone's manager channel, through a JACK MIDI port into the real engine,
    cuts the manager's note, a member's held note and another member's release tail at the hop it
    applies (no voices left, where All Notes Off leaves tails ringing; 60 dB down 60 ms on), and
    the events the engine applied, written as a session log, render again to the samples it played."""
    engine = spectral_engine(random_model(ModelConfig(), seed=0), samplerate=48000)
    applied, played = [], []
    engine.add_listener(applied.append)
    engine.add_tap(lambda block: played.append(np.array(block, copy=True)))
    midi = MidiInput(engine, mapper=MidiMapper(engine.params, [], mpe="lower"), api=rtmidi_jack.API_UNIX_JACK,
                     map_path=tmp_path / "m.toml").start()
    out = open_out(rtmidi_jack, "seaboard")
    try:
        engine.post(param("drone", 0))  # before the first hop: no drone (not a note: no sound-off cuts it)
        with stepped(engine, 0.0005):
            for message in ([0x90, 48, 100], [0xE1, 0, 80], [0x91, 60, 100], [0x92, 64, 100]):
                out.send_message(message)  # the manager's note, voice 2 bent, voice 3
            wait_for(lambda: sum(e.type == "note_on" for e in list(applied)) == 3, 30, "the notes applied")
            wait_for(lambda at=engine.samples_out: engine.samples_out > at + 12000, 30, "0.25 s of them")
            out.send_message([0x82, 64, 0])  # voice 3 let go: its release tail rings
            wait_for(lambda: any(e.type == "note_off" for e in list(applied)), 30, "the note-off applied")
            assert engine.status()["voices"] == 3
            out.send_message([0xB0, 120, 0])  # all sound off on the manager channel: the whole zone
            wait_for(lambda: sum(e.type == "sound_off" for e in list(applied)) == 16, 30, "the zone's sound-offs")
            cuts = [e for e in applied if e.type == "sound_off"]
            assert [e.voice for e in cuts] == [None, *range(2, 17)] and len({e.sample for e in cuts}) == 1
            offs = [(e.pitch, e.voice) for e in applied if e.type == "note_off" and e.sample == cuts[0].sample]
            assert offs == [(48.0, None), (60.0, 2)], offs  # the held notes' note-offs come first
            at = cuts[0].sample
            wait_for(lambda: engine.samples_out > at + 4800, 30, "0.1 s played after the cut")
        assert engine.status()["voices"] == 0 and all(e.source == "midi:livegen" for e in applied if e.type != "param")
    finally:
        out.delete()
        midi.stop()
    y = np.concatenate(played)
    before = np.mean(y[at - 2400:at] ** 2)
    assert before > 1e-8 and np.mean(y[at + 2880:at + 4800] ** 2) < before * 1e-6
    log = tmp_path / "take.jsonl"
    write_events(log, applied)
    _, logged = read_events(log)
    again = spectral_engine(random_model(ModelConfig(), seed=0), samplerate=48000)
    again.schedule(logged)
    assert np.array_equal(again.render(frames=len(y)), y)


def test_mpe_zone_from_the_options_and_the_map_file(target, tmp_path):
    parser = argparse.ArgumentParser()
    add_midi_arguments(parser)
    map_path = tmp_path / "m.toml"
    map_path.write_text('mpe = "upper:4"\n')
    built = midi_input_from_args(target, parser.parse_args(["--midi-map", str(map_path)]))
    assert built.status()["mpe"] == "upper 4"
    built = midi_input_from_args(target, parser.parse_args(["--midi-map", str(map_path), "--mpe"]))
    assert built.status()["mpe"] == "lower 15"
    built = midi_input_from_args(target, parser.parse_args(["--midi-map", str(map_path), "--mpe", "off"]))
    assert built.status()["mpe"] == ""
    with pytest.raises(ParameterError, match="--midi-channel 3"):
        midi_input_from_args(target, parser.parse_args(["--mpe", "--midi-channel", "3", "--midi-map", str(map_path)]))


def test_midi_comes_back_with_a_restarted_jack_server(jack_server, live_play, tmp_path):
    """JACK MIDI ports die with the JACK server. When it is restarted mid-take, the audio came
    back but MIDI stayed dead: the virtual port gone, the `--midi-in` controller never found
    again. Now both are opened again with the audio, a note the lost controller held is let go
    (not carried to the new server), and the take goes on."""
    import rtmidi

    takes = tmp_path / "takes"
    play = live_play("--model", "random", "--midi-in", "keys", "--record", str(takes))
    hw = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="hw")
    hw.open_virtual_port("Stage Keys")
    play.wait_status(lambda s: s.get("midi_connected"), 30, "the keyboard connected")
    wait_jack_connected("hw:Stage Keys")
    hw.send_message([0x90, 60, 100])
    play.wait_status(lambda s: s.get("midi_messages", 0) >= 1, 30, "the note heard")
    hw.delete()
    jack_server.stop()
    play.wait_status(lambda s: s.get("audio") == "lost", 30, "the engine to notice the server going away")
    jack_server.start(tmp_path)
    play.wait_status(lambda s: s.get("audio") == "ok", 60, "the engine back on the new server")
    hw = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="hw")
    hw.open_virtual_port("Stage Keys")
    try:
        play.wait_status(lambda s: s.get("midi_connected") == "keys=hw:Stage Keys", 30, "the keyboard connected again")
        wait_jack_connected("hw:Stage Keys")
        hw.send_message([0x90, 64, 100])
        play.wait_status(lambda s: s.get("midi_messages", 0) >= 2, 30, "a note from the keyboard again")
        other = jack_midi_out("other")  # the virtual port is there again
        other.send_message([0x90, 67, 100])
        play.wait_status(lambda s: s.get("midi_messages", 0) >= 3, 30, "a note through the virtual port")
        other.delete()
    finally:
        hw.delete()
    assert play.stop(30) == 0, play.log
    assert "MIDI ports open again" in play.log and "Traceback" not in play.log, play.log
    (log,) = takes.glob("*.jsonl")
    events = [json.loads(line) for line in log.read_text().splitlines()[1:]]
    (restart,) = [i for i, e in enumerate(events) if e["type"] == "engine" and e.get("action") == "restart"]
    after = {e["pitch"] for e in events[restart:] if e["type"] == "note_on"}
    assert after == {64.0, 67.0}, events  # the lost keyboard's held note was not carried over
