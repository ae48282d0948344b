"""A live audio input plays the instrument: a real JACK client sings into livegen's input port.

`livegen play --input-device system` on a dummy JACK server: the port appears unconnected, a
sine played into it moves the output's pitch (220 Hz, then 330 Hz), `/livegen/input/<setting>`
reaches the input's parameters, a sound check sets `input_gain` for the sine's level, and the take re-renders from its log bit for bit (its input
file beside it). A missing input device is a message and exit code 2.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from helpers import REPO, jack_midi_out, wait_for
from livegen.audio.jackstream import ProcessCallback

SR = 48000


class SineClient:
    """A JACK client that plays a sine (`freq`, changeable) into livegen and captures its output."""

    def __init__(self, server, seconds: float = 90.0):
        import jack

        self.client = jack.Client("livegen-test-voice", servername=server.name, no_start_server=True)
        self.out = self.client.outports.register("voice")
        self.inp = self.client.inports.register("capture")
        self.freq = 220.0
        self.phase = 0.0
        self.buffer = np.zeros(int(seconds * SR), np.float32)
        self.pos = 0
        self.process = ProcessCallback(self.client, self._process)
        self.process.activate()

    def _process(self, frames):
        step = 2 * math.pi * self.freq / SR
        self.out.get_array()[:] = 0.3 * np.sin(self.phase + step * np.arange(frames))
        self.phase = (self.phase + step * frames) % (2 * math.pi)
        n = min(frames, len(self.buffer) - self.pos)
        if n > 0:
            self.buffer[self.pos:self.pos + n] = self.inp.get_array()[:n]
            self.pos += n

    def ports(self, pattern: str, **kind) -> list:
        return self.client.get_ports(pattern, is_audio=True, **kind)

    def captured_after(self, start: int, seconds: float) -> np.ndarray:
        wait_for(lambda: self.pos >= start + int(seconds * SR), 60, f"{seconds} s of output captured")
        return self.buffer[start:start + int(seconds * SR)].copy()

    def close(self):
        self.process.deactivate()
        self.client.close()


def median_f0(x: np.ndarray) -> float:
    import librosa

    f0 = librosa.yin(x.astype(np.float32), fmin=100, fmax=800, sr=SR, frame_length=2048)
    return float(np.median(f0))


def cents(a: float, b: float) -> float:
    return abs(1200 * math.log2(a / b))


def test_a_sine_into_the_input_port_moves_the_pitch_and_the_takes_re_render(live_play_sync, jack_server_sync,
                                                                          tmp_path):
    """Synchronous JACK: the sine's player and the output's capture are this test's own client
    (Python, in a loaded process). Asynchronous JACK goes on without a late client, so play read
    the sine's blocks repeated or missed (another pitch), and the capture read play's last block
    again (a 256-frame block repeated reads as 48000 / 256 = 187.5 Hz)."""
    live_play, jack_server = live_play_sync, jack_server_sync
    takes = tmp_path / "takes"
    play = live_play("--input-device", "system", "--record", str(takes), "--record-dir", str(takes))
    midi = jack_midi_out("inputctl")  # before the voice's client: its callback would wait for rtmidi's start
    voice = SineClient(jack_server)
    try:
        port = wait_for(lambda: voice.ports("^livegen-audio:input$", is_input=True), 30,
                        "livegen's JACK input port livegen-audio:input")[0]
        assert voice.client.get_all_connections(port) == [], "PortAudio's connection to a capture port is undone"
        voice.client.connect(voice.out, port)
        for out in voice.ports("^livegen-audio:out_", is_output=True)[:1]:
            voice.client.connect(out, voice.inp)
        assert play.get_when("drone", 0, 20) == 0, "the input is the voice: the drone starts off, as in a render"
        play.send("/livegen/input/gain", 3.0)
        assert play.get_when("input_gain", 3.0, 20) == pytest.approx(3.0)
        error = play.ask("/livegen/input/nosuch", 1.0, want="/livegen/error")
        assert error is not None and "no input setting 'nosuch'" in error[0] and "gain" in error[0], error
        # A sound check: the 0.3 sine (-13.5 dBFS RMS) is brought to the -20 dBFS reference.
        checked = play.ask("/livegen/input/soundcheck", 1.0, timeout=30)
        assert checked is not None and checked[0].startswith("input_gain -6.5 dB"), (checked, play.log)
        assert play.get_when("input_gain", -6.5, 20) == pytest.approx(-6.5)

        for freq in (220.0, 330.0):
            voice.freq = freq
            play.wait_status(lambda s: s.get("input_voiced") and abs(cents(float(s["input_f0"]), freq)) < 50,
                             60, f"the input heard at {freq} Hz")
            heard = median_f0(voice.captured_after(voice.pos, 1.0))
            assert cents(heard, freq) < 50, f"output at {heard:.1f} Hz while the input sang {freq} Hz"

        status = play.status()
        assert status["input_ports"] == "livegen-audio:input" and "input_device_clips" in status
        play.send("/livegen/record", 0)
        wait_for(lambda: len(_takes(takes)) == 1, 60, "the first take's log naming its input file")
        play.send("/livegen/record", 1)  # mid-performance: its input file holds the input from the first hop on
        play.wait_status(lambda s: s.get("recording"), 20, "the second take recording")
        play.send("/livegen/learn", "input_gain")  # MIDI learn reaches the input's settings as parameters
        play.wait_status(lambda s: s.get("midi_learn") == "input_gain", 20, "MIDI learn armed for input_gain")
        midi.send_message([0xB0, 21, 64])
        play.wait_status(lambda s: not s.get("midi_learn"), 20, "input_gain bound to CC 21")
        for value in range(0, 128, 8):  # a sweep: soft takeover picks the knob up where it crosses the value
            midi.send_message([0xB0, 21, value])
        midi.send_message([0xB0, 21, 127])
        assert play.get_when("input_gain", 36.0, 20) == pytest.approx(36.0)
        play.send("/livegen/record", 0)
        logs = wait_for(lambda: len(_takes(takes)) == 2 and _takes(takes), 60, "the second take's log")
    finally:
        voice.close()
        midi.delete()
    assert play.stop(30) == 0, play.log
    starts = []
    for log in logs:
        header = _header(log)
        starts.append(header["start_sample"])
        input_wav = log.with_name(header["input"]["file"])
        assert input_wav.name == log.stem + ".input.wav"
        take, _ = soundfile.read(log.with_name(header["wav"]), dtype="float32")
        fed, rate = soundfile.read(input_wav, dtype="float32")
        assert rate == header["model_samplerate"] and np.abs(fed).max() > 0.2  # the sine, at the model rate
        assert len(fed) >= (header["start_sample"] + len(take)) * rate // SR - header["hop"]
        out = tmp_path / f"{log.stem}.render.wav"
        done = subprocess.run([sys.executable, "-m", "livegen", "render", str(log), "-o", str(out)], cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        rendered, _ = soundfile.read(out, dtype="float32")
        assert len(rendered) == len(take)
        assert np.array_equal(rendered, take), f"{log.name} differs at {np.flatnonzero(rendered != take)[:5]}"
    assert sorted(starts)[0] == 0 and sorted(starts)[1] > 0


def _header(log) -> dict:
    with open(log) as stream:
        return json.loads(stream.readline())


def _takes(directory) -> list:
    """The takes' logs whose header names their input file (written once the take's files closed)."""
    return sorted(p for p in directory.glob("*.jsonl") if _header(p).get("input", {}).get("sha256"))


def test_a_missing_input_device_is_a_message_and_exit_code_2(jack_server, tmp_path):
    done = subprocess.run([sys.executable, "-m", "livegen", "play", "--headless", "--no-midi", "--osc-port", "0",
                           "--nice", "0", "--input-device", "no-such-microphone", "--duration", "5"],
                          cwd=tmp_path, env=dict(jack_server.env, PYTHONPATH=str(REPO)), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "--input-device no-such-microphone" in done.stderr and "livegen devices" in done.stderr
    assert "Traceback" not in done.stderr


COUNT_INPUTS = """
import sounddevice as sd
from livegen.audio import input as audio_input
from livegen.server import process
made = []
class Counted(audio_input.LiveInput):
    def __init__(self, **kwargs):
        made.append(kwargs)
        super().__init__(**kwargs)
process.LiveInput = Counted
info = sd.query_devices(kind="input")
hostapi = sd.query_hostapis(info["hostapi"])["name"]
engine, live = process.build_engine({"model": "random", "input_device": "system", "input_required": True},
                                    48000, hostapi=hostapi)
print("made", len(made), "duplex", live.duplex, "rate", live.samplerate, "jack", live.on_jack)
"""


def test_the_input_device_is_found_once_at_start(jack_server, tmp_path):
    """The sound server queries the input device once and the output stream carries that one."""
    proc = subprocess.run([sys.executable, "-c", COUNT_INPUTS], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(jack_server.env, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"), timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-8:] == ["made", "1", "duplex", "True", "rate", "48000", "jack", "True"], \
        proc.stdout + proc.stderr[-2000:]


def test_a_model_switch_keeps_what_plays_into_the_input(live_play, jack_server):
    play = live_play("--input-device", "system", "--no-midi")
    voice = SineClient(jack_server)
    try:
        port = wait_for(lambda: voice.ports("^livegen-audio:input$", is_input=True), 30, "livegen-audio:input")[0]
        voice.client.connect(voice.out, port)
        play.wait_status(lambda s: s.get("input_voiced"), 60, "the input heard")
        assert play.ask("/livegen/model", "random", timeout=120) == ("random",), play.log
        status = play.wait_status(lambda s: s.get("model") == "random" and s.get("input_ports"), 30,
                                  "the new model's input port")
        new_port = status["input_ports"]
        assert [p.name for p in voice.client.get_all_connections(voice.out)] == [new_port]
        play.wait_status(lambda s: s.get("input_voiced") and cents(float(s["input_f0"]), 220.0) < 50, 60,
                         "the new model hearing the input")
    finally:
        voice.close()


def test_what_played_into_the_input_is_connected_again_when_the_jack_server_comes_back(live_play, jack_server,
                                                                                       tmp_path):
    """The input port is the sound server's own JACK client's; when jackd dies and comes back, the
    new server connects again what played into the input before (here the dummy driver's capture
    port, there again after the restart, as a sound card's would be)."""
    import jack

    play = live_play("--input-device", "system", "--no-midi")
    patch = jack.Client("livegen-test-patch", servername=jack_server.name, no_start_server=True)
    try:
        port = wait_for(lambda: patch.get_ports("^livegen-audio:input$", is_audio=True, is_input=True), 30,
                        "livegen-audio:input")[0]
        assert patch.get_all_connections(port) == []
        patch.connect("system:capture_1", port)
    finally:
        patch.close()
    play.wait_status(lambda s: "system:capture_1" in str(s.get("input_sources")), 20,
                     "the server seeing what plays into its input")
    jack_server.stop()
    play.wait_status(lambda s: s.get("audio") == "lost", 30, "the engine to notice the server going away")
    jack_server.start(tmp_path)
    play.wait_status(lambda s: s.get("audio") == "ok", 60, "the engine back on the new server")
    status = play.wait_status(lambda s: "system:capture_1" in str(s.get("input_sources")), 20,
                              "the input connected again")
    assert status["input_ports"] == "livegen-audio:input"
    patch = jack.Client("livegen-test-patch", servername=jack_server.name, no_start_server=True)
    try:
        assert [p.name for p in patch.get_all_connections("livegen-audio:input")] == ["system:capture_1"]
    finally:
        patch.close()
    assert play.stop(30) == 0, play.log
    assert "is back" in play.log and "Traceback" not in play.log


def test_the_input_unplugged_and_plugged_again_mid_take_leaves_the_take_whole(live_play, jack_server, tmp_path):
    """What plays into the input is disconnected mid-take, its JACK client goes away and another
    connects: the input falls silent and is heard again, play and the take go on, and the take
    re-renders from its log and input file bit for bit."""
    takes = tmp_path / "takes"
    play = live_play("--input-device", "system", "--no-midi", "--record", str(takes))
    voice = SineClient(jack_server)
    try:
        port = wait_for(lambda: voice.ports("^livegen-audio:input$", is_input=True), 30, "livegen-audio:input")[0]
        voice.client.connect(voice.out, port)
        play.wait_status(lambda s: s.get("input_voiced"), 60, "the input heard")
        voice.client.disconnect(voice.out, port)  # the cable pulled
        play.wait_status(lambda s: not s.get("input_voiced"), 60, "the input silent")
    finally:
        voice.close()  # the source's client gone too
    voice = SineClient(jack_server)
    try:
        voice.client.connect(voice.out, port)  # plugged again
        play.wait_status(lambda s: s.get("input_voiced") and s.get("recording"), 60, "the input heard again")
    finally:
        voice.close()
    assert play.stop(30) == 0, play.log
    (log,) = _takes(takes)
    take, _ = soundfile.read(log.with_suffix(".wav"), dtype="float32")
    out = tmp_path / "again.wav"
    done = subprocess.run([sys.executable, "-m", "livegen", "render", str(log), "-o", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rendered, _ = soundfile.read(out, dtype="float32")
    assert np.array_equal(rendered, take)
