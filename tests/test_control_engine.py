"""End to end against the real engine: `livegen play --headless` on jackd dummy, driven over OSC;
and MIDI through JACK into the real Engine (parameters and voices)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from pythonosc.udp_client import SimpleUDPClient

from conftest import REPO, require
from livegen.control.oscwire import parse_packet


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(client, address, args=(), *, want, timeout=2.0):
    client.send_message(address, list(args))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.receive(0.2)
        if data:
            for message in parse_packet(data):
                if message.address == want:
                    return message.args
    return None


def get_when(client, name, expected, timeout=30.0):
    """`/livegen/get/<name>` until it answers `expected` (the engine applies at its next hop,
    which on a loaded machine can lag) or the timeout; returns the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = ask(client, f"/livegen/get/{name}", want=f"/livegen/param/{name}")
        if (got and got[0] == pytest.approx(expected)) or time.monotonic() > deadline:
            return got[0] if got else None
        time.sleep(0.05)


def test_play_headless_over_osc(jack_server, tmp_path):
    port = _free_udp_port()
    log = open(tmp_path / "play.log", "w")
    play = subprocess.Popen(
        [sys.executable, "-m", "livegen", "play", "--headless", "--no-supervisor", "--osc-port", str(port),
         "--duration", "120"],
        cwd=REPO, env=jack_server.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        status = None
        deadline = time.monotonic() + 90
        while status is None and time.monotonic() < deadline and play.poll() is None:
            status = ask(client, "/livegen/status", want="/livegen/status", timeout=0.5)
        assert status is not None, (tmp_path / "play.log").read_text()
        pairs = dict(zip(status[::2], status[1::2]))
        for key in ("xruns", "samplerate", "blocksize", "voices", "recording", "load"):
            assert key in pairs, pairs

        client.send_message("/livegen/param/gain", -3)
        client.send_message("/livegen/xy", [0.1, 0.9])
        assert get_when(client, "gain", -3.0) == -3.0, (tmp_path / "play.log").read_text()
        assert get_when(client, "y", 0.9) == pytest.approx(0.9)
        error = ask(client, "/livegen/z/0", [99.0], want="/livegen/error")
        assert error and "clamped to 4" in error[0]
        assert get_when(client, "z0", 4.0) == 4.0

        client.send_message("/livegen/note", [60, 100])
        deadline = time.monotonic() + 30
        voices = None
        while voices != 1 and time.monotonic() < deadline:
            status = ask(client, "/livegen/status", want="/livegen/status")
            voices = dict(zip(status[::2], status[1::2]))["voices"] if status else None
        assert voices == 1

        # feedback: a subscriber hears another client's change, not its own
        watcher = SimpleUDPClient("127.0.0.1", port)
        assert ask(watcher, "/livegen/subscribe", want="/livegen/subscribed") is not None
        client.send_message("/livegen/param/drift", 0.5)
        heard = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(v == pytest.approx(0.5) for v in heard):
            data = watcher.receive(0.2)
            heard += [m.args[0] for m in parse_packet(data) if m.address == "/livegen/param/drift"] if data else []
        assert any(v == pytest.approx(0.5) for v in heard), heard

        client._sock.sendto(b"\xff" * 64, ("127.0.0.1", port))
        got = client.receive(2.0)
        assert parse_packet(got)[0].address == "/livegen/error"
        assert ask(client, "/livegen/status", want="/livegen/status") is not None
        assert play.poll() is None
    finally:
        _stop(play)
        log.close()


def test_midi_into_the_real_engine(jack_server, tmp_path):
    import rtmidi

    require(rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api(), "python-rtmidi built with JACK support")
    from livegen.control.mapping import Mapping, MidiMapper
    from livegen.control.midi import MidiInput
    from livegen.engine.factory import spectral_engine
    from livegen.model import ModelConfig, random_model

    engine = spectral_engine(random_model(ModelConfig(), seed=0), samplerate=48000)
    stop = threading.Event()
    applied = []
    engine.add_listener(applied.append)

    def run():  # the engine's virtual clock, stepped on one thread as the live decoder does
        while not stop.is_set():
            engine.step()
            time.sleep(0.0005)

    stepper = threading.Thread(target=run, daemon=True)
    stepper.start()
    mapper = MidiMapper(engine.params, [Mapping("z0", cc=70, takeover=False), Mapping("x", cc=16, takeover=False)])
    midi = MidiInput(engine, mapper=mapper, api=rtmidi.API_UNIX_JACK, map_path=tmp_path / "m.toml").start()
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="ctl")
    try:
        deadline = time.monotonic() + 5
        while "livegen:livegen" not in out.get_ports() and time.monotonic() < deadline:
            time.sleep(0.05)
        out.open_port(out.get_ports().index("livegen:livegen"))
        time.sleep(0.1)
        for message in ([0xB0, 70, 0], [0xB0, 16, 127], [0xB0, 48, 127], [0x90, 60, 100], [0x90, 67, 80],
                        [0xE0, 0, 0], [0xB0, 64, 127], [0xF8], [0xB0, 7], [0xF0, 1, 0xF7]):
            out.send_message(message)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(e.name == "sustain" for e in list(applied)):
            time.sleep(0.05)
        assert engine.params.get("z0") == -4.0
        assert engine.params.get("x") == 1.0
        assert engine.params.get("bend") == -1.0
        assert engine.params.get("sustain") == 1.0
        assert engine.status()["voices"] == 2
        out.send_message([0x80, 60, 0])  # held by the sustain pedal
        out.send_message([0xB0, 64, 0])  # pedal up: 60 releases
        out.send_message([0x90, 67, 0])
        deadline = time.monotonic() + 60  # the release tails play out on the engine's clock
        while time.monotonic() < deadline and engine.status()["voices"] != 0:
            time.sleep(0.05)
        assert engine.status()["voices"] == 0
        assert all(e.source == "midi:livegen" for e in applied)
    finally:
        out.close_port()
        midi.stop()
        stop.set()
        stepper.join(5)


def _start_play(jack_server, tmp_path, *extra):
    """`livegen play --headless` on a free port; returns (process, port, log path) once it answers."""
    port = _free_udp_port()
    log_path = tmp_path / "play.log"
    log = open(log_path, "w")
    play = subprocess.Popen([sys.executable, "-m", "livegen", "play", "--headless", "--osc-port", str(port),
                             "--nice", "0", "--duration", "120", *extra],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(jack_server.env, LIVEGEN_MIDI_API="jack", XDG_CONFIG_HOME=str(tmp_path / "config")))
    log.close()
    client = SimpleUDPClient("127.0.0.1", port)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and play.poll() is None:
        if ask(client, "/livegen/status", want="/livegen/status", timeout=0.5) is not None:
            return play, port, log_path
    _stop(play)
    raise AssertionError(log_path.read_text())


def _stop(play):
    play.send_signal(signal.SIGTERM)
    try:
        play.wait(20)
    except subprocess.TimeoutExpired:
        play.kill()
        play.wait()


def _listen(client, wanted, timeout=20.0):
    """Messages (address, args) a subscriber hears until `wanted(address, args)` or the timeout."""
    heard = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.receive(0.2)
        for message in parse_packet(data) if data else []:
            heard.append((message.address, message.args))
            if wanted(message.address, message.args):
                return heard
    return heard


def test_failed_recording_is_told_to_subscribers(jack_server, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the recordings should go")
    play, port, log_path = _start_play(jack_server, tmp_path, "--no-midi", "--record-dir", str(blocked / "takes"))
    try:
        watcher = SimpleUDPClient("127.0.0.1", port)
        assert ask(watcher, "/livegen/subscribe", want="/livegen/subscribed") is not None
        SimpleUDPClient("127.0.0.1", port).send_message("/livegen/record", 1)
        heard = _listen(watcher, lambda address, args: address == "/livegen/error")
        errors = [args[0] for address, args in heard if address == "/livegen/error"]
        assert errors and "not-a-directory" in errors[0], (heard[-5:], log_path.read_text())
    finally:
        _stop(play)


def _jack_midi_out(name="ctl"):
    import rtmidi

    require(rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api(), "python-rtmidi built with JACK support")
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    deadline = time.monotonic() + 10
    while "livegen:livegen" not in out.get_ports() and time.monotonic() < deadline:
        time.sleep(0.05)
    out.open_port(out.get_ports().index("livegen:livegen"))
    time.sleep(0.1)
    return out


def test_subscribers_get_meters_spectrum_and_last_controls(jack_server, tmp_path):
    play, port, log_path = _start_play(jack_server, tmp_path, "--record-dir", str(tmp_path / "takes"))
    midi = None
    try:
        watcher = SimpleUDPClient("127.0.0.1", port)
        assert ask(watcher, "/livegen/subscribe", want="/livegen/subscribed") is not None
        heard = _listen(watcher, lambda address, args: address == "/livegen/spectrum")
        spectra = [args for address, args in heard if address == "/livegen/spectrum"]
        assert spectra and len(spectra[0]) == 64 and all(-120.0 <= v <= 10.0 for v in spectra[0]), heard[-3:]
        client = SimpleUDPClient("127.0.0.1", port)
        client.send_message("/livegen/param/gain", 0.0)
        client.send_message("/livegen/note", [57, 120])
        heard = _listen(watcher, lambda address, args: address == "/livegen/meter" and args[0] > -40.0)
        meters = [args for address, args in heard if address == "/livegen/meter"]
        assert meters and meters[-1][0] > -40.0 and meters[-1][1] <= meters[-1][0], meters[-5:]
        midi = _jack_midi_out()
        midi.send_message([0xB0, 71, 99])
        client.send_message("/livegen/record", 1)
        deadline = time.monotonic() + 20
        pairs = {}
        while time.monotonic() < deadline and not (pairs.get("midi_last") and pairs.get("record_bytes")):
            status = ask(client, "/livegen/status", want="/livegen/status")
            pairs = dict(zip(status[::2], status[1::2])) if status else {}
            time.sleep(0.1)
        assert pairs.get("midi_last") == "ch1 CC 71 99", pairs
        assert pairs.get("osc_last") == "/livegen/record" and pairs.get("record_bytes", 0) > 0, pairs
        # the whole status in one reply (more than the 64 values replies were once cut to)
        assert len(pairs) > 32 and {"steals", "underflows", "rejected", "midi_virtual"} <= set(pairs), pairs
    finally:
        if midi is not None:
            midi.close_port()
        _stop(play)


def test_load_another_model_while_playing_then_record_and_render_it(jack_server, tmp_path):
    import numpy as np
    import soundfile

    from livegen.engine.events import read_events

    takes = tmp_path / "takes"
    play, port, log_path = _start_play(jack_server, tmp_path, "--no-midi", "--record-dir", str(takes),
                                       "--samplerate", "48000")
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        watcher = SimpleUDPClient("127.0.0.1", port)
        assert ask(watcher, "/livegen/subscribe", want="/livegen/subscribed") is not None
        client.send_message("/livegen/param/drift", 0.4)
        assert get_when(client, "drift", 0.4) == pytest.approx(0.4)
        error = ask(client, "/livegen/model", [str(tmp_path / "nowhere")], want="/livegen/error", timeout=10)
        assert error and "nowhere" in error[0] and "config.json" in error[0]
        assert ask(client, "/livegen/model", ["random"], want="/livegen/model", timeout=60) == ("random",)
        heard = _listen(watcher, lambda address, args: address == "/livegen/model")
        assert ("/livegen/model", ("random",)) in heard, heard[-5:]
        status = ask(client, "/livegen/status", want="/livegen/status")
        pairs = dict(zip(status[::2], status[1::2]))
        assert pairs["model"] == "random", pairs
        assert get_when(client, "drift", 0.4) == pytest.approx(0.4)  # carried over to the new engine
        heard = _listen(watcher, lambda address, args: address == "/livegen/spectrum")
        assert any(address == "/livegen/spectrum" for address, _ in heard)  # the meters moved over too
        for address, args in [("/livegen/note", [60, 100]), ("/livegen/record", 1), ("/livegen/xy", [0.7, 0.3]),
                              ("/livegen/note", [60, 0]), ("/livegen/record", 0)]:
            time.sleep(0.3)
            client.send_message(address, args)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not list(takes.glob("*.jsonl")):
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        _stop(play)
    assert play.returncode == 0, log_path.read_text()
    (wav,) = takes.glob("*.wav")
    header, _ = read_events(wav.with_suffix(".jsonl"))
    assert header["model"] == "random" and header["start_sample"] > 0
    again = tmp_path / "again.wav"
    done = subprocess.run([sys.executable, "-m", "livegen", "render", str(wav.with_suffix(".jsonl")), "-o", str(again)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    recorded, _ = soundfile.read(wav, dtype="float32")
    rendered, _ = soundfile.read(again, dtype="float32")
    assert len(rendered) == len(recorded)
    diff = np.abs(rendered - recorded).max()
    print(f"after the model switch: recorded {len(recorded)} samples; render max abs diff {diff}")
    assert diff <= 1e-6, diff
