"""`livegen play --headless` for real: into a dummy JACK server, captured by another JACK client."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from pythonosc.udp_client import SimpleUDPClient

from conftest import REPO
from helpers import (
    assert_refused,
    free_udp_port,
    livegen,
    status_of,
    stop_process,
    take_rendered_again,
    wait_for,
    wait_played,
)

from livegen.audio.jackstream import ProcessCallback
from livegen.paths import bundled_model_dir

CEILING = 10 ** (-0.3 / 20)


N = 2048


def clean_frames(y, *, n=N, run=8):
    """Frames of `y` without a dropout: an xrun on this shared machine leaves a run of exact zeros."""
    frames = np.lib.stride_tricks.sliding_window_view(y, n)[::n // 4]
    keep = []
    for frame in frames:
        zero = np.concatenate([[0], (frame == 0).astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(zero))
        keep.append(not (len(edges) and (edges[1::2] - edges[::2]).max() >= run))
    clean = frames[np.array(keep, dtype=bool)]
    assert len(clean) >= 4, f"only {len(clean)} of {len(frames)} frames came through without a dropout"
    return clean


def power_spectrum(y):
    frames = clean_frames(y)
    return np.mean(np.abs(np.fft.rfft(frames * np.hanning(N), axis=1)) ** 2, axis=0), np.fft.rfftfreq(N, 1 / 48000)


def band_levels(y):
    """Band powers (dB) in 16 log-spaced bands, 100 Hz..12 kHz."""
    power, freqs = power_spectrum(y)
    edges = np.geomspace(100, 12000, 17)
    return 10 * np.log10(np.array([power[(freqs >= a) & (freqs < b)].sum() for a, b in zip(edges[:-1], edges[1:])]) + 1e-12)


def strongest_partial(y):
    """Frequency of the loudest partial between 60 Hz and 2 kHz (the drone's fundamental here)."""
    power, freqs = power_spectrum(y)
    band = (freqs > 60) & (freqs < 2000)
    return freqs[band][np.argmax(power[band])]


def db_rms(y):
    frames = clean_frames(y)
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2) + 1e-20)


def start_play(server, *args):
    return subprocess.Popen([sys.executable, "-m", "livegen", "play", "--headless", *args], cwd=REPO,
                            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Capture:
    """A JACK client whose input records whatever is connected to it."""

    def __init__(self, server, seconds: float = 60):
        import jack

        self.client = jack.Client("livegen-capture", servername=server.name, no_start_server=True)
        self.port = self.client.inports.register("in")
        self.buffer = np.zeros(int(seconds * self.client.samplerate), dtype=np.float32)
        self.pos = 0
        self.xruns = 0
        self.process = ProcessCallback(self.client, self._process)
        self.client.set_xrun_callback(self._xrun)
        self.process.activate()

    def _process(self, frames):
        n = min(frames, len(self.buffer) - self.pos)
        if n > 0:
            self.buffer[self.pos:self.pos + n] = self.port.get_array()[:n]
            self.pos += n

    def _xrun(self, delay):
        self.xruns += 1

    def connect_engine(self) -> bool:
        for port in self.client.get_ports(is_audio=True, is_output=True):
            if not port.name.startswith(("system:", "livegen-capture:")):
                if not self.client.get_all_connections(port) or self.port not in self.client.get_all_connections(port):
                    self.client.connect(port, self.port)
                return True
        return False

    def close(self):
        self.process.deactivate()
        self.client.close()


def test_play_headless_into_jack_matches_offline_render(jack_server, live_play):
    capture = Capture(jack_server)
    try:
        # A deep ring buffer: the test machine is shared, and this test is about sound, not xruns
        # (`livegen bench engine --soak-seconds` measures those).
        # The seed-0 random model: a plain harmonic drone whose fundamental is its loudest partial,
        # independent of how the trained default model evolves.
        play = live_play("--seed", "0", "--ahead-ms", "300", "--model", "random")
        assert play.status()["samplerate"] == 48000
        play.send("/livegen/param/quality", 0)  # the cheapest phase setting: this machine is shared
        wait_for(capture.connect_engine, 10, "the engine's JACK output port")
        wait_for(lambda: np.abs(capture.buffer[max(0, capture.pos - 4800):capture.pos]).max(initial=0) > 1e-3, 20,
                 "sound at the capture client")
        start = capture.pos
        wait_for(lambda: capture.pos >= start + 2 * 48000, 30, "2 s captured")
        change_at = capture.pos
        play.send("/livegen/param/drone_pitch", 64.0)
        assert play.get_when("drone_pitch", 64.0, 10) == pytest.approx(64.0)  # applied at the engine's next block
        wait_for(lambda: capture.pos >= change_at + 2 * 48000, 30, "2 s captured after the change")
        end = capture.pos
        assert play.stop(30) == 0, play.log
    finally:
        capture.close()
    log = play.log
    assert "stopped after" in log and "xruns" in log and "NaN 0" in log, log
    assert "Traceback" not in log

    y = capture.buffer[start:end]
    assert np.all(np.isfinite(y))
    assert np.abs(y).max() <= CEILING
    before = y[change_at - start - 48000:change_at - start - 4800]
    after = y[-48000:]
    assert db_rms(before) > -50 and db_rms(after) > -50, "silent"
    # The parameter change is heard: the drone moves from MIDI 48 (130.8 Hz) to 64 (329.6 Hz).
    assert strongest_partial(before) == pytest.approx(130.8, abs=24)
    assert strongest_partial(after) == pytest.approx(329.6, abs=24)

    # The same events offline (the drone at its default, then drone_pitch 64), compared in
    # steady state: level within 2 dB and band spectrum within 2.5 dB on average.
    from livegen.session.render import render_events
    from livegen.engine import events as ev
    from livegen.engine.setup import load_engine_model

    model, _ = load_engine_model("random", log=lambda text: None)
    offline, _ = render_events([ev.param("quality", 0), ev.param("drone_pitch", 64.0, t=2.0)], model=model, samplerate=48000,
                               seconds=4.0, seed=0)
    off_before, off_after = offline[48000:96000 - 4800], offline[-48000:]
    for live, off in ((before, off_before), (after, off_after)):
        assert strongest_partial(live) == pytest.approx(strongest_partial(off), abs=24)
        assert abs(db_rms(live) - db_rms(off)) < 2.0
        live_bands, off_bands = band_levels(live), band_levels(off)
        loud = off_bands > off_bands.max() - 25  # the bands that carry the sound (empty ones show clicks)
        assert loud.sum() >= 4
        assert np.abs(live_bands - off_bands)[loud].mean() < 3.0


def test_missing_audio_device_is_told_without_traceback(jack_server):
    proc = start_play(jack_server, "--audio-device", "nosuch", "--osc-port", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "nosuch" in err and "livegen devices" in err and "--audio-device" in err
    assert "Traceback" not in err


def test_event_file_naming_an_unknown_parameter_is_refused_before_it_plays(jack_server, tmp_path):
    """As `livegen render` refuses it: the file is not played with its event silently dropped."""
    events = tmp_path / "show.jsonl"
    events.write_text('{"t": 0.5, "type": "param", "name": "loudness", "value": 3}\n')
    result = livegen("play", "--headless", "--no-midi", "--model", "random", "--osc-port", "0", "--events", events,
                     "--duration", "30", env=jack_server.env, timeout=60)
    assert_refused(result, str(events), "'loudness'", "known parameters")


def test_a_take_recorded_in_any_folder_renders_again_from_any_other(jack_server, tmp_path):
    """The README's `livegen render TAKE.jsonl -o again.wav`: the log names its model's folder
    absolutely (the bundled default here), so the render finds it wherever either command ran."""
    gig, later = tmp_path / "gig", tmp_path / "later"
    gig.mkdir()
    later.mkdir()
    (gig / "show.jsonl").write_text('{"t": 0.2, "type": "note_on", "pitch": 60, "velocity": 100}\n')
    env = dict(jack_server.env, PYTHONPATH=str(REPO))  # this checkout's livegen from any folder
    played = livegen("play", "--headless", "--no-midi", "--osc-port", "0", "--events", "show.jsonl", "--duration", "1",
                     "--record", ".", env=env, cwd=gig)
    assert played.returncode == 0, played.stderr
    (log,) = gig.glob("livegen-*.jsonl")
    header = json.loads(log.read_text().splitlines()[0])
    assert header["model_dir"] == str(bundled_model_dir("default")) and header["weights_sha256"], header
    again = livegen("render", log, "-o", "again.wav", env=env, cwd=later)
    assert again.returncode == 0 and "warning" not in again.stderr, again.stderr
    recorded, _ = soundfile.read(log.with_suffix(".wav"), dtype="float32")
    rendered, _ = soundfile.read(later / "again.wav", dtype="float32")
    assert np.array_equal(recorded, rendered)


@pytest.mark.live
def test_no_audio_server_at_all_is_told_without_traceback(tmp_path):
    env = dict(os.environ, JACK_DEFAULT_SERVER="livegen-none-here", JACK_NO_START_SERVER="1")
    proc = subprocess.run([sys.executable, "-m", "livegen", "play", "--headless", "--osc-port", "0"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "livegen devices" in proc.stderr and "Traceback" not in proc.stderr


def test_engine_survives_the_jack_server_dying_with_its_presets_notes_and_pedal(jack_server, live_play, tmp_path):
    """The JACK server dies mid-take and comes back: the engine plays on with the preset stored
    before, the note still held and the one the pedal holds; a knob turned and a preset stored
    while no server played are in effect after the return, a key pressed meanwhile is dropped;
    and the take re-renders sample for sample over its whole length."""
    import soundfile

    from livegen.engine.events import read_events

    takes = tmp_path / "takes"
    play = live_play("--no-midi", "--model", "random", "--seed", "2", "--samplerate", "48000", "--record", str(takes))
    for address, args in [("/livegen/param/x", 0.8), ("/livegen/preset/store", 3), ("/livegen/param/x", 0.2),
                          ("/livegen/note", [60, 100]), ("/livegen/param/sustain", 1), ("/livegen/note", [64, 90]),
                          ("/livegen/note", [64, 0])]:
        play.client.send_message(address, args)
    play.wait_status(lambda pairs: pairs.get("voices") == 2, 20, "the held note and the pedalled one sounding")
    assert play.get_when("x", 0.2) == pytest.approx(0.2)
    play.played(0.3)
    jack_server.stop()  # PortAudio's JACK client dies with it: only the audio child may go
    play.wait_status(lambda pairs: pairs.get("audio") == "lost", 30, "the engine to notice the server going away")
    assert play.process.poll() is None, "the engine server died with its JACK server"
    for address, args in [("/livegen/param/y", 0.3), ("/livegen/param/y", 0.7), ("/livegen/preset/store", 4),
                          ("/livegen/note", [72, 100])]:
        play.client.send_message(address, args)
    assert play.status()["audio"] == "lost"  # answered after the messages before it were taken
    jack_server.start(tmp_path)
    play.wait_status(lambda pairs: pairs.get("audio") == "ok", 30, "the engine to reconnect when the server came back")
    play.wait_status(lambda pairs: pairs.get("voices") == 2, 20, "both notes sounding again")
    assert play.get_when("sustain", 1.0) == 1.0 and play.get_when("x", 0.2) == pytest.approx(0.2)
    assert play.get_when("y", 0.7) == pytest.approx(0.7)  # turned while the server was gone
    status = play.status()
    assert status["notes_dropped"] == 1 and status["voices"] == 2  # the key pressed meanwhile did not start late
    play.played(0.3)
    play.send("/livegen/preset/recall", 3)
    assert play.get_when("x", 0.8) == pytest.approx(0.8)  # the preset stored before the loss
    assert play.get_when("y", 0.5) == pytest.approx(0.5)  # preset 3 has y at its default
    play.send("/livegen/preset/recall", 4)
    assert play.get_when("y", 0.7) == pytest.approx(0.7)  # the one stored while it was gone
    assert play.get_when("x", 0.2) == pytest.approx(0.2)
    assert play.status()["rejected"] == 0
    play.played(0.2)
    assert play.stop(30) == 0, play.log
    log = play.log
    assert "went away" in log and "livegen devices" in log and "is back" in log, log
    assert "stopped after" in log
    assert "Traceback" not in log

    (wav,) = takes.glob("*.wav")
    recorded, rate = soundfile.read(wav, dtype="float32")
    header, events = read_events(wav.with_suffix(".jsonl"))
    (marker,) = [e for e in events if e.type == "engine"]
    assert marker.action == "restart" and marker.extra["reason"] == "device" and marker.extra["seed"] == 2
    restart = marker.sample
    stored, carried, late = [e for e in events if e.type == "preset" and e.action == "store"]
    assert stored.values["x"] == pytest.approx(0.8) and carried.values == stored.values  # both the server's own
    assert carried.sample == late.sample == restart and late.slot == 4 and late.values["y"] == pytest.approx(0.7)
    turned = [e.value for e in events if e.name == "y" and e.sample == restart]
    assert turned[-1] == pytest.approx(0.7) and not any(abs(v - 0.3) < 1e-3 for v in turned)  # its last value, once
    assert [(e.type, e.pitch) for e in events if e.sample == restart and e.pitch is not None] == [
        ("note_on", 60.0), ("note_on", 64.0), ("note_off", 64.0)]
    again_path = tmp_path / "again.wav"
    done = subprocess.run([sys.executable, "-m", "livegen", "render", str(wav.with_suffix(".jsonl")),
                           "-o", str(again_path)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    again, _ = soundfile.read(again_path, dtype="float32")
    # The recorder writes the blocks the engines rendered, one after the other: the time no server
    # played leaves no gap in the file (it is in no sample count), so the whole take compares, the
    # old engine's last block before the restart sample and the fresh engine's first after it too.
    assert len(again) == len(recorded)
    cut = restart - header["start_sample"]
    assert 0 < cut < len(recorded) - rate // 4 and np.abs(recorded[cut:cut + rate // 4]).max() > 1e-3
    assert np.array_equal(again, recorded), np.flatnonzero(again != recorded)[:5]


def test_a_running_loop_goes_on_from_where_it_was_when_the_jack_server_comes_back(jack_server, live_play, tmp_path):
    """A preset loop running when the JACK server dies resumes at the same point of its path on the
    engine that takes over (the carry's `resume` event, logged), and the take re-renders sample
    for sample over its whole length."""
    import soundfile

    from livegen.engine.events import read_events

    takes = tmp_path / "takes"
    play = live_play("--no-midi", "--model", "random", "--seed", "2", "--samplerate", "48000", "--record", str(takes))
    for address, args in [("/livegen/xy", [0.1, 0.5]), ("/livegen/preset/store", 2), ("/livegen/xy", [0.9, 0.5]),
                          ("/livegen/preset/store", 5), ("/livegen/note", [60, 100]),
                          ("/livegen/preset/loop", [0.5, 2, 5])]:
        play.client.send_message(address, args)

    def x_now():
        got = play.ask("/livegen/get/x", want="/livegen/param/x")
        return got[0] if got else None

    play.wait_for(lambda: 0.1 < (x_now() or 0) < 0.9, 30, "the loop moving x")
    play.played(0.3)
    jack_server.stop()
    play.wait_status(lambda pairs: pairs.get("audio") == "lost", 30, "the engine to notice the server going away")
    jack_server.start(tmp_path)
    play.wait_status(lambda pairs: pairs.get("audio") == "ok", 30, "the engine to reconnect when the server came back")
    values = set()
    play.wait_for(lambda: values.add(round(x_now() or 0, 3)) or len(values) > 5, 30, "the loop moving x again")
    play.played(0.3)
    assert play.status()["rejected"] == 0
    assert play.stop(30) == 0, play.log

    (wav,) = takes.glob("*.wav")
    recorded, rate = soundfile.read(wav, dtype="float32")
    header, events = read_events(wav.with_suffix(".jsonl"))
    (marker,) = [e for e in events if e.type == "engine"]
    restart = marker.sample
    loops = [e for e in events if e.type == "preset" and e.action == "loop"]
    assert ["resume" in e.extra for e in loops] == [False, True]  # the performer's, then the carry's
    started, resumed = loops
    assert resumed.sample == restart and resumed.extra["resume"]["elapsed"] == restart - started.sample
    assert resumed.extra["resume"]["rows"]["x"] == started.extra["moves"]["rows"]["x"]
    assert resumed.extra["moves"]["start"] == started.sample  # the same path, on the same clock
    _, again = take_rendered_again(wav)
    cut = restart - header["start_sample"]
    assert len(again) == len(recorded) and 0 < cut < len(recorded) - rate // 4
    assert np.array_equal(again, recorded), np.flatnonzero(again != recorded)[:5]


def test_devices_lists_the_jack_output_and_midi_apis(jack_server):
    result = subprocess.run([sys.executable, "-m", "livegen", "devices"], cwd=REPO, env=jack_server.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "JACK Audio Connection Kit" in result.stdout and "system" in result.stdout
    assert "MIDI ports" in result.stdout and "Jack:" in result.stdout


def test_a_closed_terminal_ends_the_take_whole_as_sigterm_does(jack_server, tmp_path):
    """The terminal play runs in is closed (a laptop lid, a dropped ssh connection): the kernel
    sends SIGHUP to play and its sound server. Play closes the take (everything played up to the
    hang-up, header right, log complete) and exits 0, as on SIGTERM; SIGHUP's default killed it at
    once with up to half a second of the take not in the WAV's header."""
    port = free_udp_port()
    master, slave = pty.openpty()

    # A session of its own whose controlling terminal is the pty, as a shell in a terminal gives.
    own_terminal = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                    "os.execv(sys.executable, [sys.executable, '-m', 'livegen', *sys.argv[1:]])")
    try:
        process = subprocess.Popen([sys.executable, "-c", own_terminal, "play", "--headless", "--nice", "0", "--no-midi",
                                    "--model", "random", "--osc-port", str(port), "--record", str(tmp_path)],
                                   cwd=REPO, env=jack_server.env, stdin=slave, stdout=slave, stderr=slave,
                                   start_new_session=True)
    finally:
        os.close(slave)
    said = bytearray()

    def read_terminal():
        while select.select([master], [], [], 0)[0]:
            try:
                said.extend(os.read(master, 4096))
            except OSError:
                break
        return bytes(said)

    client = SimpleUDPClient("127.0.0.1", port)
    try:
        wait_for(lambda: read_terminal() and status_of(client, timeout=0.5).get("recording"), 90,
                 lambda: f"play recording: {bytes(said).decode(errors='replace')}")
        client.send_message("/livegen/note", [60, 100])
        wait_played(client, 1.0)
        played = status_of(client)["seconds"]
        read_terminal()
    finally:
        os.close(master)  # the hang-up
    try:
        code = process.wait(30)
    finally:
        stop_process(process)
    assert code == 0, bytes(said).decode(errors="replace")
    (log,) = tmp_path.glob("livegen-*.jsonl")
    lines = log.read_text().splitlines()
    assert any(json.loads(line).get("type") == "note_on" for line in lines[1:]), lines
    recorded, again = take_rendered_again(log.with_suffix(".wav"))
    assert len(recorded) >= played * 48000, "the take ends before the hang-up"
    assert np.array_equal(recorded, again)
