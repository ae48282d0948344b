"""`start_controls`: the one call the engine server makes to bring up OSC and MIDI."""

from __future__ import annotations

import argparse

import pytest
from pythonosc.udp_client import SimpleUDPClient

from livegen.control.fake import FakeTarget
from livegen.control.oscwire import parse_packet
from livegen.control.setup import add_control_arguments, start_controls


@pytest.fixture
def target():
    fake = FakeTarget()
    yield fake
    fake.close()


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_control_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.slow
def test_osc_and_midi_come_up_together(jack_server, target, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEGEN_MIDI_API", "jack")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # the user's map file lives here
    logs = []
    controls = start_controls(target, parse("--osc-port", "0", "--midi-in", "nothing-plugged", "--mpe", "upper:3"),
                              log=logs.append)
    try:
        assert controls.midi is not None and controls.osc.midi is controls.midi
        assert "MIDI in 'livegen' (nothing-plugged -> waiting), MPE upper 3" in controls.describe()
        client = SimpleUDPClient("127.0.0.1", controls.osc.port)
        client.send_message("/livegen/status", [])
        args = parse_packet(client.receive(10.0))[0].args
        pairs = dict(zip(args[::2], args[1::2]))
        assert pairs["midi_missing"] == "nothing-plugged" and pairs["midi_virtual"] == "livegen"
        assert pairs["midi_mpe"] == "upper 3"
    finally:
        controls.stop()
    assert len(logs) == 1 and "reachable from this machine alone" in logs[0], logs  # OSC on loopback: no mDNS


def test_midi_failure_is_logged_and_osc_plays_on(target, monkeypatch):
    monkeypatch.setenv("LIVEGEN_MIDI_API", "jack")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "livegen-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    logs = []
    controls = start_controls(target, parse("--osc-port", "0"), log=logs.append)
    try:
        assert controls.midi is None and controls.osc.port > 0
        assert logs and "MIDI is off" in logs[0] and "--no-midi" in logs[0]
    finally:
        controls.stop()
    off = start_controls(target, parse("--no-osc", "--no-midi"), log=logs.append)
    assert off.osc is None and off.midi is None and off.describe() == "OSC off, MIDI off"


def test_osc_server_stop_removes_its_listener_from_the_sound_server():
    from livegen.control.osc import OscServer
    from livegen.engine.notes import spectral_engine
    from livegen.engine.setup import load_engine_model
    from livegen.server.client import SoundServer

    model, _ = load_engine_model("random", device="cpu")
    engine = spectral_engine(model, samplerate=48000)  # in place of the remote one: the same listener interface
    live = SoundServer(engine)
    before = list(engine._listeners)
    server = OscServer(live, port=0).start()
    assert len(engine._listeners) == len(before) + 1
    server.stop()
    assert engine._listeners == before
