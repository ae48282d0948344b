"""The sound server's own JACK client (`livegen.audio.jackstream.JackStream`) on a real `jackd -d dummy`.

The input a cycle brings is in that cycle's output (PortAudio's duplex JACK stream put it one
period later); the ports keep the names and connections the PortAudio stream had; an xrun
reaches the renderer as an output underflow; a JACK server that goes away ends the callbacks
and is said.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import REPO, wait_for
from livegen.audio.jackstream import JackStream, ProcessCallback
from livegen.errors import DeviceError

pytestmark = pytest.mark.slow

MARKS = 4096
"""Each cycle's mark: its JACK frame time modulo this, over this (exact in float32)."""

STRESS = REPO / "scripts" / "jack_stop_stress.py"
"""Its child loop: a JackStream and a plain client with busy Python process callbacks, started and
stopped in turn (the loop the figures in docs/sound-server.md come from)."""


class Marker:
    """Two JACK clients: one plays each cycle's mark, the other captures what reaches it with the
    mark of the cycle it arrived in."""

    def __init__(self, server):
        import jack

        self.source = jack.Client("livegen-test-source", servername=server.name, no_start_server=True)
        self.voice = self.source.outports.register("voice")
        self.play = ProcessCallback(self.source, self._play)
        self.capture = jack.Client("livegen-test-capture", servername=server.name, no_start_server=True)
        self.ear = self.capture.inports.register("in")
        self.hear = ProcessCallback(self.capture, self._hear)
        self.heard: list[tuple[float, float]] = []
        self.play.activate()
        self.hear.activate()

    def _play(self, frames):
        self.voice.get_array()[:] = (self.source.last_frame_time % MARKS) / MARKS

    def _hear(self, frames):
        got = float(self.ear.get_array()[0])
        if got and len(self.heard) < 1000:
            self.heard.append((got, (self.capture.last_frame_time % MARKS) / MARKS))

    def close(self):
        for process in (self.play, self.hear):
            process.deactivate()
            process.client.close()


def test_the_input_of_a_cycle_is_in_that_cycles_output_on_ports_named_as_before(jack_server_sync):
    """On a server in synchronous mode: an asynchronous one, loaded, goes on without a late
    client, whose callback then runs in the next cycle and reads that cycle's frame time."""
    jack_server = jack_server_sync

    def passthrough(indata, outdata, frames, time_info, status):
        outdata[:] = indata

    stream = JackStream(name="livegen-audio", device="system", samplerate=jack_server.rate, channels=2,
                        duplex_callback=passthrough)
    marker = Marker(jack_server)
    try:
        stream.start()
        client = marker.capture
        assert [p.name for p in client.get_all_connections("livegen-audio:out_0")] == ["system:playback_1"]
        assert [p.name for p in client.get_all_connections("livegen-audio:out_1")] == ["system:playback_2"]
        assert client.get_all_connections("livegen-audio:input") == [], "the input waits for the performer"
        assert stream.connect_input(["livegen-test-source:voice", "nosuch:port"]) == ["livegen-audio:input"]
        client.connect("livegen-audio:out_1", "livegen-test-capture:in")
        wait_for(lambda: len(marker.heard) >= 50, 20, "50 cycles through livegen-audio")
        assert all(got == now for got, now in marker.heard[10:50]), marker.heard[10:50]
        assert stream.input_sources() == ["livegen-test-source:voice"]
        input_latency, output_latency = stream.latency
        assert input_latency >= 0 and output_latency > 0 and stream.active
    finally:
        marker.close()
        stream.stop()
        stream.close()


def test_an_xrun_reaches_the_renderer_as_an_output_underflow(jack_server):
    flags = []
    late = []

    def callback(outdata, frames, time_info, status):
        outdata.fill(0.0)
        flags.append(status.output_underflow)
        if late:  # late once: this cycle runs past two periods
            late.clear()
            deadline = time.monotonic() + 3 * frames / jack_server.rate
            while time.monotonic() < deadline:
                pass

    stream = JackStream(name="livegen-audio", device="system", samplerate=jack_server.rate, channels=2,
                        callback=callback)
    try:
        stream.start()
        wait_for(lambda: len(flags) > 10, 20, "the callback running")
        late.append(True)
        wait_for(lambda: stream.xruns > 0, 20, "JACK to report the late cycle as an xrun")
        wait_for(lambda: any(flags), 20, "a callback told of the xrun")
        assert stream.latency > 0
    finally:
        stream.stop()
        stream.close()


def test_a_jack_server_going_away_ends_the_callbacks_and_is_said(jack_server):
    calls = []
    stream = JackStream(name="livegen-audio", device="system", samplerate=jack_server.rate, channels=2,
                        callback=lambda outdata, frames, time_info, status: calls.append(frames))
    stream.start()
    wait_for(lambda: len(calls) > 10, 20, "the callback running")
    latency = stream.latency
    jack_server.stop()
    wait_for(lambda: stream.shut_down is not None, 20, "the shutdown callback")
    assert not stream.active and stream.latency == latency
    stream.stop()
    stream.close()  # a shut-down client is closed too (JACK leaves that to its owner)


def test_another_sample_rate_than_the_jack_servers_is_a_clear_error(jack_server):
    with pytest.raises(DeviceError) as caught:
        JackStream(name="livegen-audio", device="system", samplerate=44100, channels=2, callback=None)
    text = str(caught.value)
    assert f"runs at {jack_server.rate} Hz" in text and f"--samplerate {jack_server.rate}" in text



def start_stop_loop(server, cycles: int = 20) -> None:
    """The stress loop in a child: a hang fails the test at a generous deadline instead of hanging the run."""
    spec = importlib.util.spec_from_file_location("jack_stop_stress", STRESS)
    stress = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stress)
    busy_ms = 600 * server.period / server.rate  # most of each period in Python: where a cancel would land
    child = subprocess.Popen([sys.executable, "-c", stress.CHILD, "both", str(cycles), str(busy_ms), str(server.rate)],
                             cwd=REPO, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        done = max((int(word) for word in out.split() if word.isdigit()), default=0)
        pytest.fail(f"start/stop hung after {done} of {cycles} cycles")
    assert child.returncode == 0 and out.split()[-1:] == [str(cycles)], err[-2000:]


def test_stopping_never_hangs_in_libjack_while_the_process_callback_runs_python(jack_server):
    """jack_deactivate cancels the process thread; on an asynchronous server, which does not wait
    for a late callback, that landed in Python: the thread died holding the interpreter lock and
    stop() waited for it for ever."""
    start_stop_loop(jack_server)


def test_stopping_on_a_synchronous_server_does_not_stall_it(jack_server_sync):
    """A process thread that ended itself at stop left a synchronous server waiting for the client
    in its next cycle (up to ten client time-outs: 100 s here)."""
    start_stop_loop(jack_server_sync)
