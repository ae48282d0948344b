"""End to end against the real engine: `livegen play --headless` on jackd dummy, driven over OSC;
and MIDI through JACK into the real Engine (parameters and voices)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import require
from helpers import REPO, ask, get_when, jack_midi_out, listen, status_of, stepped, wait_for
from livegen.control.oscwire import parse_packet


def _require_jack_midi():
    import rtmidi

    require(rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api(), "python-rtmidi built with JACK support")


def test_play_headless_over_osc(live_play):
    play = live_play("--no-supervisor")
    client = play.client
    pairs = play.status()
    for key in ("xruns", "samplerate", "blocksize", "voices", "recording", "load"):
        assert key in pairs, pairs
    # started with --osc-port 0: the port play bound, read back from its log, is the one it answers on
    assert play.args[play.args.index("--osc-port") + 1] == "0"
    assert play.port > 0 and pairs["osc_port"] == play.port

    client.send_message("/livegen/param/gain", -3)
    client.send_message("/livegen/xy", [0.1, 0.9])
    assert get_when(client, "gain", -3.0) == -3.0, play.log
    assert get_when(client, "y", 0.9) == pytest.approx(0.9)
    error = ask(client, "/livegen/z/0", [99.0], want="/livegen/error")
    assert error and "clamped to 4" in error[0]
    assert get_when(client, "z0", 4.0) == 4.0

    client.send_message("/livegen/note", [60, 100])
    play.wait_for(lambda: play.status().get("voices") == 1, 30, "one voice after /livegen/note 60 100")

    # feedback: a subscriber hears another client's change, not its own
    watcher = play.subscriber()
    client.send_message("/livegen/param/drift", 0.5)
    heard = listen(watcher, lambda address, args: address == "/livegen/param/drift" and args[0] == pytest.approx(0.5))
    assert heard and heard[-1][0] == "/livegen/param/drift", heard

    client._sock.sendto(b"\xff" * 64, ("127.0.0.1", play.port))
    got = client.receive(10.0)
    assert parse_packet(got)[0].address == "/livegen/error"
    assert ask(client, "/livegen/status", want="/livegen/status") is not None
    assert play.process.poll() is None


def test_midi_into_the_real_engine(jack_server, tmp_path):
    import rtmidi

    _require_jack_midi()
    from livegen.control.mapping import Mapping, MidiMapper
    from livegen.control.midi import MidiInput
    from livegen.engine.notes import spectral_engine
    from livegen.model import ModelConfig, random_model

    engine = spectral_engine(random_model(ModelConfig(), seed=0), samplerate=48000)
    applied = []
    engine.add_listener(applied.append)
    mapper = MidiMapper(engine.params, [Mapping("z0", cc=70, takeover=False), Mapping("x", cc=16, takeover=False)])
    midi = MidiInput(engine, mapper=mapper, api=rtmidi.API_UNIX_JACK, map_path=tmp_path / "m.toml").start()
    out = None
    with stepped(engine, 0.0005):
        try:
            out = jack_midi_out()
            for message in ([0xB0, 70, 0], [0xB0, 16, 127], [0xB0, 48, 127], [0x90, 60, 100], [0x90, 67, 80],
                            [0xE0, 0, 0], [0xB0, 64, 127], [0xF8], [0xB0, 7], [0xF0, 1, 0xF7]):
                out.send_message(message)
            wait_for(lambda: any(e.name == "sustain" for e in list(applied)), 30, "the sustain pedal applied")
            assert engine.params.get("z0") == -4.0
            assert engine.params.get("x") == 1.0
            assert engine.params.get("bend") == -1.0
            assert engine.params.get("sustain") == 1.0
            assert engine.status()["voices"] == 2
            out.send_message([0x80, 60, 0])  # held by the sustain pedal
            out.send_message([0xB0, 64, 0])  # pedal up: 60 releases
            out.send_message([0x90, 67, 0])
            # the release tails play out on the engine's clock
            wait_for(lambda: engine.status()["voices"] == 0, 60,
                     lambda: f"no voices left ({engine.status()['voices']})")
            assert all(e.source == "midi:livegen" for e in applied)
        finally:
            if out is not None:
                out.delete()
            midi.stop()


def test_failed_recording_is_told_to_subscribers(live_play, tmp_path):
    """A record folder refused at start is said before anything plays (tests/test_play_args.py);
    one that goes bad during the show is told when a recording starts."""
    blocked = tmp_path / "not-a-directory"
    play = live_play("--no-midi", "--record-dir", str(blocked / "takes"))
    blocked.write_text("a file where the recordings should go")
    watcher = play.subscriber()
    play.new_client().send_message("/livegen/record", 1)
    heard = listen(watcher, lambda address, args: address == "/livegen/error")
    errors = [args[0] for address, args in heard if address == "/livegen/error"]
    assert errors and "not-a-directory" in errors[0], (heard[-5:], play.log)


def test_subscribers_get_meters_spectrum_and_last_controls(live_play, tmp_path):
    _require_jack_midi()
    play = live_play("--record-dir", str(tmp_path / "takes"))
    midi = None
    try:
        watcher = play.subscriber()
        heard = listen(watcher, lambda address, args: address == "/livegen/spectrum")
        spectra = [args for address, args in heard if address == "/livegen/spectrum"]
        assert spectra and len(spectra[0]) == 64 and all(-120.0 <= v <= 10.0 for v in spectra[0]), heard[-3:]
        client = play.new_client()
        client.send_message("/livegen/param/gain", 0.0)
        client.send_message("/livegen/note", [57, 120])
        heard = listen(watcher, lambda address, args: address == "/livegen/meter" and args[0] > -40.0)
        meters = [args for address, args in heard if address == "/livegen/meter"]
        assert meters and meters[-1][0] > -40.0 and meters[-1][1] <= meters[-1][0], meters[-5:]
        midi = jack_midi_out()
        midi.send_message([0xB0, 71, 99])
        client.send_message("/livegen/record", 1)
        pairs = play.wait_status(lambda pairs: pairs.get("midi_last") and pairs.get("record_bytes"), 20,
                                 "the MIDI CC and the recording in the status")
        assert pairs.get("midi_last") == "ch1 CC 71 99", pairs
        assert pairs.get("osc_last") == "/livegen/record" and pairs.get("record_bytes", 0) > 0, pairs
        # the whole status in one reply (more than the 64 values replies were once cut to)
        assert len(pairs) > 32 and {"steals", "underflows", "rejected", "midi_virtual"} <= set(pairs), pairs
    finally:
        if midi is not None:
            midi.delete()


def test_load_another_model_while_playing_then_record_and_render_it(live_play, tmp_path):
    import numpy as np
    import soundfile

    from livegen.engine.events import read_events

    takes = tmp_path / "takes"
    play = live_play("--no-midi", "--record-dir", str(takes), "--samplerate", "48000")
    client = play.client
    watcher = play.subscriber()
    client.send_message("/livegen/param/drift", 0.4)
    client.send_message("/livegen/param/y", 0.9)
    client.send_message("/livegen/preset/store", 7)
    client.send_message("/livegen/param/y", 0.1)
    assert get_when(client, "drift", 0.4) == pytest.approx(0.4) and get_when(client, "y", 0.1) == pytest.approx(0.1)
    error = ask(client, "/livegen/model", [str(tmp_path / "nowhere")], want="/livegen/error", timeout=10)
    assert error and "nowhere" in error[0] and "config.json" in error[0]
    # The subscriber reads while the model loads: its socket must not fill with meters meanwhile.
    client.send_message("/livegen/model", ["random"])
    heard = listen(watcher, lambda address, args: address == "/livegen/model", timeout=60)
    assert ("/livegen/model", ("random",)) in heard, heard[-5:]
    assert ("/livegen/model", ("random",)) in listen(client, lambda address, args: address == "/livegen/model")
    pairs = status_of(client)
    assert pairs["model"] == "random", pairs
    assert get_when(client, "drift", 0.4) == pytest.approx(0.4)  # carried over to the new engine
    heard = listen(watcher, lambda address, args: address == "/livegen/spectrum")
    assert any(address == "/livegen/spectrum" for address, _ in heard)  # the meters moved over too
    # each event once the one before took effect, the recording some blocks long
    client.send_message("/livegen/note", [60, 100])
    play.wait_status(lambda pairs: pairs["voices"] == 1, 20, "the note sounding")
    client.send_message("/livegen/record", 1)
    play.wait_status(lambda pairs: pairs.get("record_seconds", 0) > 0.2, 20, "0.2 s recorded")
    client.send_message("/livegen/preset/recall", 7)  # stored in the engine before the switch
    assert get_when(client, "y", 0.9) == pytest.approx(0.9)
    client.send_message("/livegen/xy", [0.7, 0.3])
    assert get_when(client, "x", 0.7) == pytest.approx(0.7)
    client.send_message("/livegen/note", [60, 0])
    play.wait_status(lambda pairs: pairs.get("record_seconds", 0) > 0.5, 20, "0.5 s recorded")
    client.send_message("/livegen/record", 0)
    play.wait_status(lambda pairs: not pairs["recording"], 20, "the recording stopped")
    assert play.stop() == 0, play.log
    (wav,) = takes.glob("*.wav")
    header, events = read_events(wav.with_suffix(".jsonl"))
    assert header["model"] == "random" and header["start_sample"] > 0
    stored = [e for e in events if e.type == "preset" and e.action == "store"]
    assert [e.slot for e in stored] == [7] and stored[0].values["y"] == pytest.approx(0.9)  # in the new log
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
