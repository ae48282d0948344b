"""`livegen bench latency`: control-to-sound latency end to end, as the performer hears it.

`livegen play --headless` runs as a black box (its normal CLI) on a private
`jackd -R -d dummy -r 48000 -p PERIOD` (without -R, with a warning, where the system refuses).
Two JACK clients of a probe process (alone in their interpreter, so their process callbacks
never wait for the bench's Python) sit around it: a MIDI sender whose output port feeds play's
MIDI input, and a capture client whose input ports take play's audio outputs (two clients, so
the graph has no loop and both run in the same cycle as play: sender, play, capture).

Each event is stamped with the JACK frame time at which it was sent: `client.frame_time` just
before the UDP packet leaves for OSC, `last_frame_time` + the event's offset in the buffer for
MIDI (written from the sender's process callback at a random offset in the period; play's MIDI
input reads the whole period's events when the cycle starts, so a message counts from a frame
up to one period after play could first see it, and a hardware MIDI port, which delivers the
previous period's events, would add one period to the MIDI figures). Captured
audio is indexed by the frame time of its cycle (`last_frame_time` + position). The latency is
the captured frame the detector finds minus the send frame:

- note-on (OSC `/livegen/note i i`, JACK MIDI 0x90): the first captured frame 30 dB above the
  RMS of the 50 ms before the send (that level floored at -100 dBFS), every output channel;
- live input (`--input`: play runs with `--input-device system`): a third client of the probe
  plays 220 Hz sine bursts into play's input port, each from a random offset in a period; the
  send frame is the burst's first sample, the onset found as for a note;
- timbre (`/livegen/xy f f` jump from (0.1, 0.1) to (0.9, 0.9) while one note holds, glide 0):
  16 log-spaced band levels (100 Hz-16 kHz) of 256-sample Hann frames every 16 samples; each
  frame's distance is the RMS dB difference from the mean bands of the 150 ms before the send.
  The change is the first frame, of three in a row, above the noise plus a quarter of the
  settled change (median distance 150-300 ms after); the noise is the largest distance that
  three frames in a row reached before the send (the same rule, so one odd frame before the
  send does not hide the change); the onset is that frame's last sample (a listener has heard
  it by then; at most one frame late).
- one MPE voice's pitch bend (`--kinds ...,mpe`: play runs with `--mpe`, a lower zone): a note
  held on member channel 2 bends +12 semitones at once (JACK MIDI 0xE1); found by the timbre
  jump's detector, from the same held note and the same 150 ms before.

Every event starts from silence (note-off, then the capture stays under -80 dBFS for 100 ms).
The figures per (control, period, look-ahead): median, p95, max, jitter (p95 - p5), beside the
algorithmic floor measured from play's status in the same run (the longest wait for the next hop:
a note's onset and a timbre jump sound in that hop, past the inverter's look-ahead)
and each figure's ratio to it. The capture frame is the cycle that computed the sound; the
device's own output latency (one period on the dummy driver) is not added.

`--soak-seconds N`: 8 voices, OSC xy every 10 ms, recording on, optionally the Textual UI
attached (`--ui`), on real-time JACK: play's xrun counters (`/livegen/status` xruns,
underflows) beside JACK's (a passive client's xrun callback), and each of play's processes'
share of one core over the soak (/proc/PID/stat utime + stime).

`livegen bench latency ... --markdown docs/benchmarks/NAME.md` keeps the printed figures as a
page stamped with commit, machine, load and date (`livegen.bench._report`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from livegen.audio.devices import quiet_stderr
from livegen.audio.jackstream import ProcessCallback
from livegen.audio.realtime import describe_process
from livegen.bench._report import REPO, commit, load, machine
from livegen.bench.ui import PtyProcess, _status
from livegen.errors import LOOKAHEAD_MAX, comma_list, one_of, ranged
from livegen.paths import bundled_model_dir
from livegen.tui.child import free_udp_port

SR = 48000
THRESHOLD_DB = 30.0
"""A note's onset: this far above the silence before it."""
SILENCE_FLOOR = 1e-5
"""-100 dBFS: the silence level assumed when the capture was quieter (digital zero)."""
SILENT_PEAK = 1e-4
"""-80 dBFS: the capture counts as silent between events when its peak stays under this."""
PRE_SECONDS = 0.05
SERVER_SLOT_WAIT = 120.0
"""How long to wait for a free slot in libjack's table of servers (shared by every test and bench)."""
RING_FRAMES = 1 << 22
"""Capture ring per channel (87 s at 48 kHz); a power of two so JACK's 32-bit frame clock maps onto it."""
XY_FROM = (0.1, 0.1)
XY_TO = (0.9, 0.9)
KINDS = ("osc", "midi", "xy")
OPTIONAL_KINDS = ("mpe", "input")
"""Measured when `--kinds` names them: `mpe` (play with `--mpe`), `input` (see `INPUT_KINDS`)."""
MPE_CHANNEL = 1
"""Member channel 2 (0-based 1) of a lower zone: the bent voice."""
MPE_BEND = bytes([0xE0 | MPE_CHANNEL, 0, 80])
"""+12 semitones of the zone's default 48: 8192 + 8192 / 4 = 10240 = 80 << 7."""
MPE_CENTRE = bytes([0xE0 | MPE_CHANNEL, 0, 64])
INPUT_KINDS = ("osc", "input")
"""`--input`: tone bursts into play's input port, beside the OSC note as the same run's baseline."""
NOTE = 60


# ------------------------------------------------------------------------- detectors
def detect_onset(signal_, start: int, *, sr: int = SR, threshold_db: float = THRESHOLD_DB,
                 pre_seconds: float = PRE_SECONDS, floor: float = SILENCE_FLOOR) -> int | None:
    """Samples from `start` to the first frame `threshold_db` above the RMS of the `pre_seconds`
    before it (channels x samples or mono; any channel counts); None if none is."""
    x = np.atleast_2d(np.asarray(signal_, dtype=np.float64))
    pre = x[:, max(0, start - int(pre_seconds * sr)):start]
    level = max(float(np.sqrt(np.mean(pre ** 2))) if pre.size else 0.0, floor)
    loud = np.flatnonzero(np.abs(x[:, start:]).max(axis=0) > level * 10 ** (threshold_db / 20))
    return int(loud[0]) if len(loud) else None


def band_levels(x, *, sr: int = SR, frame: int = 256, step: int = 16, bands: int = 16):
    """dB levels of `bands` log-spaced bands (100 Hz-16 kHz) of Hann frames every `step` samples;
    row i covers samples [i * step, i * step + frame)."""
    x = np.asarray(x, dtype=np.float64)
    n = 1 + (len(x) - frame) // step
    if n < 1:
        return np.zeros((0, bands))
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::step][:n] * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1 / sr)
    edges = np.geomspace(100.0, min(16000.0, sr / 2), bands + 1)
    which = np.digitize(freqs, edges) - 1
    energy = np.stack([power[:, which == b].sum(axis=1) for b in range(bands)], axis=1)
    floor = max(float(energy.max()), 1e-30) * 1e-8  # -80 dB under the loudest band
    return 10 * np.log10(energy + floor)


def detect_change(signal_, start: int, *, sr: int = SR, frame: int = 256, step: int = 16,
                  pre_seconds: float = 0.15, settled=(0.15, 0.3), run: int = 3) -> int | None:
    """Samples from `start` to the last sample of the first frame whose spectrum clearly differs
    from the one before `start` (see the module docstring); None when it never clearly changes."""
    x = np.asarray(signal_, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    first = max(0, start - int(pre_seconds * sr))
    levels = band_levels(x[first:start + int(settled[1] * sr) + frame], sr=sr, frame=frame, step=step)
    ends = first + np.arange(len(levels)) * step + frame  # one past each frame's last sample
    before = ends <= start
    if before.sum() < run + 1:
        return None
    distance = np.sqrt(np.mean((levels - levels[before].mean(axis=0)) ** 2, axis=1))
    # held[i]: the distance frames i .. i + run - 1 all reach. The noise is measured by the rule
    # the change must pass, so a lone frame before the send (a band that holds one FFT bin, where
    # the leakage of neighbouring partials cancels for a frame) cannot raise the bar above a
    # change that holds.
    held = np.lib.stride_tricks.sliding_window_view(distance, run).min(axis=1)
    noise = float(held[:int(before.sum()) - run + 1].max())
    late = (ends - start >= settled[0] * sr) & (ends - start <= settled[1] * sr)
    if not late.any():
        return None
    full = float(np.median(distance[late]))
    if full < 2 * noise:
        return None
    for i in np.flatnonzero(held > noise + 0.25 * (full - noise)):
        if not before[i]:
            return int(ends[i] - 1 - start)
    return None


# ------------------------------------------------------------------------- JACK
class JackServer:
    """A private `jackd -d dummy` under a unique name; real-time (`-R`) unless refused."""

    def __init__(self, period: int, *, realtime: bool = True, rate: int = SR):
        self.name = f"livegen-latency-{uuid.uuid4().hex[:8]}"
        self.period = period
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_AUDIO_RESERVATION="1",
                        JACK_NO_START_SERVER="1")
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"{self.name}-", suffix=".log")
        self.warning = ""
        jackd = shutil.which("jackd")
        if jackd is None:
            raise RuntimeError("jackd not found: install Debian's jackd2")
        modes = [["-R"], ["--no-realtime"]] if realtime else [["--no-realtime"]]
        deadline = time.monotonic() + SERVER_SLOT_WAIT
        while True:
            self.log.seek(0)
            self.log.truncate()
            self.proc = subprocess.Popen([jackd, *modes[0], "-n", self.name, "-d", "dummy", "-r", str(rate),
                                          "-p", str(period)], stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
            self.realtime = modes[0] == ["-R"]
            if self._wait_up():
                break
            text = self.log_text()
            if "Too many servers" in text:  # libjack's table of servers is full: other tests' or benches'
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jackd: too many JACK servers running for {SERVER_SLOT_WAIT:.0f} s "
                                       "(other tests or benches); run again when fewer are")
                time.sleep(2.0)
                continue
            if len(modes) == 1:
                raise RuntimeError(f"jackd did not start: {text}")
            modes.pop(0)
            self.warning = "WARNING: jackd -R was refused here; running --no-realtime"
            print(self.warning, file=sys.stderr)
        if self.realtime:
            if "fifo" not in describe_process(self.proc.pid):
                self.warning = "WARNING: jackd -R got no real-time thread here (no privilege); it runs at normal policy"
                print(self.warning, file=sys.stderr)

    def _wait_up(self, timeout: float = 10.0) -> bool:
        import jack

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with quiet_stderr():  # libjack prints every failed attempt while jackd starts
                    jack.Client("livegen-latency-probe", servername=self.name, no_start_server=True).close()
                return True
            except jack.JackError:
                time.sleep(0.1)
        self.stop()
        return False

    def client(self, name: str):
        import jack

        return jack.Client(name, servername=self.name, no_start_server=True)

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


(_END, _GAPS, _READY, _STOP, _MIDI_REQ, _MIDI_DONE, _MIDI_MSG, _MIDI_OFFSET, _MIDI_STAMP, _LONGEST_NS,
 _TONE_WANT, _TONE_OFFSET, _TONE_SEQ, _TONE_STAMP) = range(14)
_HEAD = 16
CAPTURE_CLIENT = "livegen-latency-capture"
MIDI_CLIENT = "livegen-latency-midi"
VOICE_CLIENT = "livegen-latency-voice"
TONE_HZ = 220.0
TONE_LEVEL = 0.3
"""The bursts `--input` plays into play's input port: a 220 Hz sine at -10.5 dBFS peak."""


def _probe_run(server: str, shm_name: str, channels: int, midi: bool, parent: int, voice: bool = False) -> None:
    """The probe process: the capture client, the MIDI sender and the voice (tone bursts), alone in
    their interpreter, so their process callbacks never wait for a lock the bench's own Python
    work holds."""
    import jack

    shm = shared_memory.SharedMemory(name=shm_name)
    head = np.ndarray(_HEAD, dtype=np.int64, buffer=shm.buf)
    ring = np.ndarray((channels, RING_FRAMES), dtype=np.float32, buffer=shm.buf, offset=8 * _HEAD)
    ring[:] = 0  # every page touched now, not by the first write of a real-time callback
    capture = jack.Client(CAPTURE_CLIENT, servername=server, no_start_server=True)
    ports = [capture.inports.register(f"in_{i + 1}") for i in range(channels)]

    def record(frames: int) -> None:
        began = time.perf_counter_ns()
        t = capture.last_frame_time
        if head[_END] >= 0 and t != head[_END]:
            head[_GAPS] += 1
        i = t % RING_FRAMES
        n = min(frames, RING_FRAMES - i)
        for row, port in zip(ring, ports):
            data = port.get_array()
            row[i:i + n] = data[:n]
            row[:frames - n] = data[n:]
        head[_END] = (t + frames) & 0xFFFFFFFF
        head[_LONGEST_NS] = max(head[_LONGEST_NS], time.perf_counter_ns() - began)

    processes = [ProcessCallback(capture, record)]
    if midi:
        sender = jack.Client(MIDI_CLIENT, servername=server, no_start_server=True)
        out = sender.midi_outports.register("out")

        def send(frames: int) -> None:
            out.clear_buffer()
            if head[_MIDI_REQ] != head[_MIDI_DONE]:
                offset = min(int(head[_MIDI_OFFSET]), frames - 1)
                message = int(head[_MIDI_MSG])
                out.write_midi_event(offset, bytes([message & 0xFF, (message >> 8) & 0xFF, (message >> 16) & 0xFF]))
                head[_MIDI_STAMP] = sender.last_frame_time + offset
                head[_MIDI_DONE] = head[_MIDI_REQ]

        processes.append(ProcessCallback(sender, send))
    if voice:
        singer = jack.Client(VOICE_CLIENT, servername=server, no_start_server=True)
        sings = singer.outports.register("out")
        tone = (TONE_LEVEL * np.sin(2 * np.pi * TONE_HZ * np.arange(SR) / SR)).astype(np.float32)  # loops seamlessly
        state = {"on": False, "at": 0}

        def sing(frames: int) -> None:
            out = sings.get_array()
            out.fill(0.0)
            start = 0
            if head[_TONE_WANT] and not state["on"]:  # a burst starts at a random offset in this period
                start = min(int(head[_TONE_OFFSET]), frames - 1)
                state["on"], state["at"] = True, 0
                head[_TONE_STAMP] = singer.last_frame_time + start
                head[_TONE_SEQ] += 1
            elif not head[_TONE_WANT]:
                state["on"] = False
            if state["on"]:
                index = (state["at"] + np.arange(frames - start)) % len(tone)
                out[start:] = tone[index]
                state["at"] += frames - start

        processes.append(ProcessCallback(singer, sing))
    for process in processes:
        process.activate()
    head[_READY] = 1
    try:
        while not head[_STOP] and os.getppid() == parent:
            time.sleep(0.05)
    finally:
        for process in processes:
            process.deactivate()
            process.client.close()
        del head, ring
        shm.close()


class Probe:
    """The bench's ears and MIDI hand on `server`: a child process records the capture client's
    input ports into a shared ring indexed by JACK frame time and writes requested MIDI messages
    from its sender's process callback; a callback-free control client here reads the frame
    clock, counts the server's xruns and makes the connections."""

    def __init__(self, server: JackServer, *, channels: int = 2, midi: bool = True, voice: bool = False,
                 timeout: float = 30.0):
        self.channels = channels
        self.shm = shared_memory.SharedMemory(create=True, size=8 * _HEAD + 4 * channels * RING_FRAMES)
        self.head = np.ndarray(_HEAD, dtype=np.int64, buffer=self.shm.buf)
        self.head[:] = 0
        self.head[_END] = -1
        self.ring = np.ndarray((channels, RING_FRAMES), dtype=np.float32, buffer=self.shm.buf, offset=8 * _HEAD)
        self.xruns = 0
        self.control = server.client("livegen-latency-control")
        self.control.set_xrun_callback(self._xrun)
        self.control.activate()
        self.process = multiprocessing.get_context("spawn").Process(
            target=_probe_run, args=(server.name, self.shm.name, channels, midi, os.getpid(), voice), daemon=True)
        self.process.start()
        deadline = time.monotonic() + timeout
        while not self.head[_READY]:
            if not self.process.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the capture client did not start (see the messages above)")
            time.sleep(0.02)
        self.inputs = [f"{CAPTURE_CLIENT}:in_{i + 1}" for i in range(channels)]
        self.midi_out = f"{MIDI_CLIENT}:out" if midi else None
        self.voice_out = f"{VOICE_CLIENT}:out" if voice else None

    def _xrun(self, delay: float) -> None:
        self.xruns += 1

    @property
    def frame_time(self) -> int:
        return self.control.frame_time

    @property
    def longest_ms(self) -> float:
        """The capture callback's longest run so far."""
        return self.head[_LONGEST_NS] / 1e6

    @property
    def gaps(self) -> int:
        return int(self.head[_GAPS])

    @property
    def end(self) -> int | None:
        """Frame time one past the last captured frame."""
        end = int(self.head[_END])
        return None if end < 0 else end

    def captured_since(self, frame: int) -> int:
        """Frames captured from `frame` on (negative while it lies ahead)."""
        if self.end is None:
            return -1
        ahead = (self.end - frame) & 0xFFFFFFFF
        return ahead if ahead < 1 << 31 else ahead - (1 << 32)

    def segment(self, first: int, count: int) -> np.ndarray:
        index = (np.arange(count) + first) % RING_FRAMES
        return self.ring[:, index].copy()

    def wait_for(self, frame: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.captured_since(frame) < 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def wait_silence(self, *, hold: float = 0.1, timeout: float = 5.0) -> bool:
        """Until the last `hold` seconds, all captured after this call, stayed under -80 dBFS."""
        need = int(hold * SR)
        since = self.frame_time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.captured_since(since) >= need:
                tail = self.segment((self.end - need) & 0xFFFFFFFF, need)
                if float(np.abs(tail).max()) < SILENT_PEAK:
                    return True
            time.sleep(0.02)
        return False

    def start_tone(self, timeout: float = 2.0) -> int | None:
        """Start a burst at a random offset of the next period; the frame time of its first sample."""
        head = self.head
        seq = int(head[_TONE_SEQ])
        head[_TONE_OFFSET] = random.randrange(self.control.blocksize)
        head[_TONE_WANT] = 1
        deadline = time.monotonic() + timeout
        while head[_TONE_SEQ] == seq:
            if time.monotonic() > deadline:
                head[_TONE_WANT] = 0
                return None
            time.sleep(0.001)
        return int(head[_TONE_STAMP]) & 0xFFFFFFFF

    def stop_tone(self) -> None:
        self.head[_TONE_WANT] = 0

    def send_midi(self, message: bytes, timeout: float = 2.0) -> int | None:
        """Write a 3-byte MIDI message at a random offset of the next period; its frame time."""
        head = self.head
        head[_MIDI_MSG] = message[0] | message[1] << 8 | message[2] << 16
        head[_MIDI_OFFSET] = random.randrange(self.control.blocksize)
        request = head[_MIDI_REQ] + 1
        head[_MIDI_REQ] = request
        deadline = time.monotonic() + timeout
        while head[_MIDI_DONE] != request:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.001)
        return int(head[_MIDI_STAMP]) & 0xFFFFFFFF

    def close(self) -> None:
        self.head[_STOP] = 1
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.control.deactivate()
        self.control.close()
        del self.head, self.ring
        self.shm.close()
        self.shm.unlink()


# ------------------------------------------------------------------------- play, the black box
class Play:
    """`python -m livegen play --headless` on `server`, with its output in a log file."""

    def __init__(self, server: JackServer, *, lookahead: int | None, extra=(), record_dir: str | None = None):
        self.port = free_udp_port()
        self.record_dir = record_dir or tempfile.mkdtemp(prefix="livegen-latency-rec-")
        self._own_record_dir = record_dir is None
        argv = [sys.executable, "-m", "livegen", "play", "--headless", "--osc-port", str(self.port),
                "--blocksize", str(server.period), "--record-dir", self.record_dir]
        if lookahead is not None:
            argv += ["--lookahead", str(lookahead)]
        argv += list(extra)
        self.argv = argv
        self.log = tempfile.NamedTemporaryFile("w+", prefix="livegen-latency-play-", suffix=".log")
        env = dict(server.env, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        from pythonosc.udp_client import SimpleUDPClient

        self.osc = SimpleUDPClient("127.0.0.1", self.port)

    def status(self, timeout: float = 2.0) -> dict | None:
        return _status(self.port, timeout=timeout)

    def wait_ready(self, timeout: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout
        while (status := self.status(timeout=0.5)) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"play did not answer /livegen/status:\n{self.log_text()[-3000:]}")
        return status

    def send(self, address: str, *values) -> None:
        self.osc.send_message(address, list(values))

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._own_record_dir:
            shutil.rmtree(self.record_dir, ignore_errors=True)
        return self.log_text()


def _ports(client, *, midi: bool, exclude: tuple[str, ...]) -> list:
    ports = client.get_ports(is_midi=midi, is_audio=not midi, is_output=not midi, is_input=midi)
    return [p for p in ports if not p.name.startswith(("system:", *exclude))]


def connect_input(probe: Probe, *, timeout: float = 30.0) -> str:
    """Connect the voice to play's audio input port (`livegen-audio:input`, `--input-device`)."""
    client = probe.control
    deadline = time.monotonic() + timeout
    while not (ports := [p for p in client.get_ports(r":input$", is_audio=True, is_input=True)
                         if not p.name.startswith(("system:", "livegen-latency-"))]):
        if time.monotonic() > deadline:
            raise RuntimeError("play registered no JACK audio input port (livegen-audio:input)")
        time.sleep(0.05)
    client.connect(probe.voice_out, ports[0])
    return ports[0].name


def connect_play(probe: Probe, *, midi_port: str = "livegen", timeout: float = 30.0) -> tuple[list[str], str | None]:
    """Connect play's audio outputs to the capture and the sender to play's MIDI input (its
    rtmidi virtual port: the MIDI input port whose name contains `midi_port`)."""
    client = probe.control
    mine = ("livegen-latency-",)
    deadline = time.monotonic() + timeout
    while not (outputs := _ports(client, midi=False, exclude=mine)):
        if time.monotonic() > deadline:
            raise RuntimeError("play registered no JACK audio output port")
        time.sleep(0.05)
    for i, port in enumerate(outputs):
        client.connect(port, probe.inputs[min(i, len(probe.inputs) - 1)])
    target = None
    if probe.midi_out is not None:
        while True:
            inputs = [p for p in _ports(client, midi=True, exclude=mine) if midi_port in p.name]
            if inputs or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if inputs:
            target = inputs[0].name
            client.connect(probe.midi_out, target)
    return [p.name for p in outputs], target


# ------------------------------------------------------------------------- one setting
@dataclasses.dataclass
class Setting:
    kind: str
    period: int
    lookahead: int
    default: bool
    hop_ms: float
    latencies_ms: list
    sent: int
    lead_ms: float = 0.0

    @property
    def floor_ms(self) -> float:
        """The longest wait for the hop that applies the event (a hop, or a period if longer),
        plus the sound server's lead: a note's onset and a timbre jump without glide sound in
        that hop, whatever the look-ahead (docs/sound-server.md)."""
        return max(self.hop_ms, 1000 * self.period / SR) + self.lead_ms

    def stats(self) -> dict | None:
        if not self.latencies_ms:
            return None
        x = np.asarray(self.latencies_ms)
        p5, p50, p95 = np.percentile(x, [5, 50, 95])
        return {"median": p50, "p95": p95, "max": float(x.max()), "jitter": p95 - p5}


def _hop_ms(status: dict) -> float:
    """The engine hop from play's status, else from the default model's config."""
    if "hop" in status and "model_samplerate" in status:
        return 1000 * status["hop"] / status["model_samplerate"]
    config = json.loads((bundled_model_dir("default") / "config.json").read_text())["config"]
    return 1000 * config["hop"] / config["sample_rate"]


def measure(period: int, lookahead: int | None, *, kinds=KINDS, events: int = 24, realtime: bool = True,
            extra=(), log=print) -> tuple[list[Setting], dict]:
    """Latency events of every kind at one (period, look-ahead) on a fresh jackd and play."""
    server = JackServer(period, realtime=realtime)
    probe = play = None
    info = {"jack_warning": server.warning}
    try:
        voice = "input" in kinds
        midi = "midi" in kinds or "mpe" in kinds
        probe = Probe(server, midi=midi, voice=voice)
        extra = (*extra, "--input-device", "system") if voice else tuple(extra)
        play = Play(server, lookahead=lookahead, extra=(*extra, "--mpe") if "mpe" in kinds else extra)
        status = play.wait_ready()
        outputs, midi_target = connect_play(probe)
        info.update(outputs=outputs, midi_port=midi_target, load=os.getloadavg(),
                    input_port=connect_input(probe) if voice else None)
        play.send("/livegen/param/drone", 0)
        play.send("/livegen/param/glide", 0.0)
        la = int(status.get("lookahead", lookahead if lookahead is not None else -1))
        hop_ms = _hop_ms(status)
        log(f"  period {period}, look-ahead {la}{' (default)' if lookahead is None else ''}: play answering, "
            f"outputs {', '.join(outputs)}"
            + (f"; MIDI into {midi_target or 'nothing (no MIDI input port found)'}" if midi else "")
            + (f"; tone bursts into {info['input_port']}" if voice else ""))
        probe.wait_silence(timeout=10)
        first = play.status() or {}
        lead_ms = 1000 * float(first.get("lead") or 0) / SR
        info["lead_ms"] = lead_ms
        jack_first, gaps_first = probe.xruns, probe.gaps
        settings = []
        for kind in kinds:
            if kind in ("midi", "mpe") and midi_target is None:
                settings.append(Setting(kind, period, la, lookahead is None, hop_ms, [], 0, lead_ms))
                continue
            stamps = []
            for _ in range(events):
                stamps.append(_event(kind, play, probe))
            lat = []
            measured = [s for s in stamps if s is not None]
            for stamp, segment, start in measured:
                found = (detect_change if kind in ("xy", "mpe") else detect_onset)(segment, start)
                if found is not None:
                    lat.append(1000 * found / SR)
            settings.append(Setting(kind, period, la, lookahead is None, hop_ms, lat, events, lead_ms))
            log(f"    {kind}: {len(lat)} of {events} onsets found"
                + (f" ({events - len(measured)} not sent: no silence before, or no capture after)"
                   if len(measured) < events else ""))
        final = play.status() or {}
        info.update({key: (final.get(key) or 0) - (first.get(key) or 0) for key in ("xruns", "underflows")},
                    jack_xruns=probe.xruns - jack_first, capture_gaps=probe.gaps - gaps_first,
                    capture_longest_ms=probe.longest_ms,
                    load_end=os.getloadavg())
        return settings, info
    finally:
        if probe is not None:
            probe.close()
        if play is not None:
            play.stop()
        server.stop()


def _event(kind: str, play: Play, probe: Probe):
    """Send one event from silence; (stamp, probed segment, index of the stamp in it) or None."""
    if play.proc.poll() is not None:
        raise RuntimeError(f"play exited (code {play.proc.returncode}):\n{play.log_text()[-3000:]}")
    if not probe.wait_silence():
        return None
    time.sleep(random.uniform(0.0, 0.02))  # a random phase against JACK's cycle
    if kind == "input":
        stamp = probe.start_tone()
        if stamp is None:
            return None
        pre, post = 0.25, 0.3
    elif kind == "xy":
        play.send("/livegen/xy", *XY_FROM)
        play.send("/livegen/note", NOTE, 100)
        time.sleep(0.5)
        stamp = probe.frame_time
        play.send("/livegen/xy", *XY_TO)
        pre, post = 0.3, 0.4
    elif kind == "mpe":
        if probe.send_midi(MPE_CENTRE) is None or probe.send_midi(bytes([0x90 | MPE_CHANNEL, NOTE, 100])) is None:
            return None
        time.sleep(0.5)
        stamp = probe.send_midi(MPE_BEND)
        if stamp is None:
            return None
        pre, post = 0.3, 0.4
    else:
        if kind == "osc":
            stamp = probe.frame_time
            play.send("/livegen/note", NOTE, 100)
        else:
            stamp = probe.send_midi(bytes([0x90, NOTE, 100]))
            if stamp is None:
                return None
        pre, post = 0.25, 0.3
    ok = probe.wait_for((stamp + int(post * SR)) & 0xFFFFFFFF, timeout=5.0)
    if kind == "midi":
        probe.send_midi(bytes([0x80, NOTE, 0]))
    elif kind == "mpe":
        probe.send_midi(bytes([0x80 | MPE_CHANNEL, NOTE, 0]))
        probe.send_midi(MPE_CENTRE)
    elif kind == "input":
        probe.stop_tone()
    else:
        play.send("/livegen/note", NOTE, 0)
    if not ok:
        return None
    start = int(pre * SR)
    return stamp, probe.segment((stamp - start) & 0xFFFFFFFF, start + int(post * SR)), start


# ------------------------------------------------------------------------- soak
def _proc_stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, name, CPU seconds) of a process from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    name = text[text.index("(") + 1:text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> dict[int, tuple[str, float]]:
    """{pid: (name, CPU seconds)} of `pid` and all its descendants."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    tree, frontier = {}, [pid]
    while frontier:
        p = frontier.pop()
        if p in stats:
            tree[p] = stats[p][1:]
            frontier += [c for c, s in stats.items() if s[0] == p]
    return tree


def steal_seconds() -> float:
    """CPU time the hypervisor gave other guests while this machine's CPUs wanted it (/proc/stat)."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "?"


def xy_walk(send, seconds: float, *, every: float = 0.010, seed: int = 0) -> tuple[int, list[float]]:
    """`send(x, y)` along a random walk every `every` seconds for `seconds`, as a performer's
    hand on the pad would; returns the messages sent and the load average every 10 s."""
    rng = np.random.default_rng(seed)
    xy = np.array([0.5, 0.5])
    loads, sent = [], 0
    start = next_at = next_load = time.monotonic()
    while (now := time.monotonic()) < start + seconds:
        xy = np.clip(xy + rng.normal(0, 0.02, 2), 0, 1)
        send(float(xy[0]), float(xy[1]))
        sent += 1
        if now >= next_load:
            loads.append(os.getloadavg()[0])
            next_load += 10
        next_at += every
        time.sleep(max(0.0, next_at - time.monotonic()))
    return sent, loads


def soak(seconds: float, *, period: int = 256, ui: bool = False, realtime: bool = True, extra=(),
         log=print) -> dict:
    """8 voices, xy every 10 ms, recording on (and the UI attached): xruns and CPU per process."""
    server = JackServer(period, realtime=realtime)
    passive = play = viewer = None
    record_dir = tempfile.mkdtemp(prefix="livegen-latency-soak-")
    try:
        passive = server.client("livegen-latency-xruns")
        counts = {"xruns": 0}
        passive.set_xrun_callback(lambda delay: counts.__setitem__("xruns", counts["xruns"] + 1))
        passive.activate()
        play = Play(server, lookahead=None, extra=extra, record_dir=record_dir)
        play.wait_ready()
        play.send("/livegen/param/drone", 0)
        for i in range(8):
            play.send("/livegen/note", 48 + 3 * i, 100)
        play.send("/livegen/record", 1)
        if ui:
            viewer = PtyProcess([sys.executable, "-m", "livegen.tui", "--connect", str(play.port)],
                                marker=b"latent plane", cols=100, rows=30)
            viewer.wait_drawn()
        time.sleep(1.0)  # let the start-up settle
        before, jack_before = play.status() or {}, counts["xruns"]
        cpu_before = process_tree(play.proc.pid)
        jackd_before = _proc_stat(server.proc.pid)
        viewer_before = viewer.cpu_seconds() if viewer is not None else 0.0
        steal_before = steal_seconds()
        start = time.monotonic()
        sent, loads = xy_walk(lambda x, y: play.send("/livegen/xy", x, y), seconds)
        wall = time.monotonic() - start
        steal = steal_seconds() - steal_before
        cpu_after = process_tree(play.proc.pid)
        jackd_after = _proc_stat(server.proc.pid)
        after = play.status() or {}
        scheduling = describe_process(play.proc.pid)
        play.send("/livegen/record", 0)
        processes = []
        for pid, (name, cpu) in sorted(cpu_after.items()):
            used = cpu - cpu_before.get(pid, (name, 0.0))[1]
            role = "play (main)" if pid == play.proc.pid else "child"
            processes.append((pid, role, name, _cmdline(pid), used / wall))
        if jackd_before and jackd_after:
            processes.append((server.proc.pid, "jackd", "jackd", "", (jackd_after[2] - jackd_before[2]) / wall))
        if viewer is not None:
            processes.append((viewer.process.pid, "UI", "livegen.tui", "", (viewer.cpu_seconds() - viewer_before) / wall))
        recorded = sum(f.stat().st_size for f in Path(record_dir).rglob("*.wav"))
        return {"seconds": wall, "period": period, "sent": sent, "ui": ui, "jack_realtime": server.realtime,
                "jack_warning": server.warning, "jack_xruns": counts["xruns"] - jack_before,
                "jackd_log_xruns": server.log_text().count("XRun"),
                "jackd_log_lines": _xrun_lines(server.log_text()),
                **{key: (after.get(key, 0) or 0) - (before.get(key, 0) or 0) for key in
                   ("xruns", "underflows", "late")},
                "processes": processes, "scheduling": scheduling, "recorded_bytes": recorded,
                "recording": after.get("recording"), "voices": after.get("voices"), "steal_s": steal,
                "lead": after.get("lead"),
                "render_max_ms": after.get("render_max_ms"), "audio_gap_ms": after.get("audio_gap_ms"),
                "slow_callbacks": (after.get("slow_callbacks") or 0) - (before.get("slow_callbacks") or 0),
                "gc": [int(after.get(f"gc_runs_{i}") or 0) - int(before.get(f"gc_runs_{i}") or 0) for i in range(3)],
                "load": (min(loads), max(loads), sum(loads) / len(loads)) if loads else (os.getloadavg()[0],) * 3}
    finally:
        if viewer is not None:
            viewer.close()
        if play is not None:
            play.stop()
        if passive is not None:
            passive.deactivate()
            passive.close()
        server.stop()
        shutil.rmtree(record_dir, ignore_errors=True)


def baseline_soak(seconds: float, *, period: int = 256, realtime: bool = True, cpu_percent: int = 0) -> dict:
    """The same jackd and passive xrun counter with no livegen at all: a C client alone,
    `jack_simple_client` (a sine) or, with `cpu_percent`, `jack_cpu` (busy that share of every
    period, as long as livegen's callback works). The xruns this machine gives such a client:
    the floor the soak's own figure stands on."""
    server = JackServer(period, realtime=realtime)
    passive = simple = None
    try:
        passive = server.client("livegen-latency-xruns")
        counts = {"xruns": 0}
        passive.set_xrun_callback(lambda delay: counts.__setitem__("xruns", counts["xruns"] + 1))
        passive.activate()
        name, args = ("jack-cpu", ["-c", str(cpu_percent)]) if cpu_percent else ("jack_simple_client", [])
        tool = shutil.which("jack_cpu" if cpu_percent else "jack_simple_client")
        if tool is None:
            raise RuntimeError("jack_simple_client / jack_cpu not found: install Debian's jackd2 (example clients)")
        simple = subprocess.Popen([tool, *args], env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10.0
        while not any(p.name.startswith(f"{name}:") for p in passive.get_ports()):
            if simple.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not join the server")
            time.sleep(0.05)
        loads, start, steal_before = [], time.monotonic(), steal_seconds()
        while (now := time.monotonic()) < start + seconds:
            loads.append(os.getloadavg()[0])
            time.sleep(min(10.0, start + seconds - now))
        return {"seconds": time.monotonic() - start, "period": period, "jack_realtime": server.realtime,
                "cpu_percent": cpu_percent,
                "steal_s": steal_seconds() - steal_before,
                "jack_warning": server.warning, "jack_xruns": counts["xruns"],
                "jackd_log_xruns": server.log_text().count("XRun"),
                "jackd_log_lines": _xrun_lines(server.log_text()),
                "load": (min(loads), max(loads), sum(loads) / len(loads))}
    finally:
        if simple is not None:
            simple.terminate()
            simple.wait(5)
        if passive is not None:
            passive.deactivate()
            passive.close()
        server.stop()


def _machine_lines(r: dict) -> list[str]:
    """What the machine did over a soak: stolen CPU time, jackd's XRun lines, its warning."""
    lines = [f"CPU time stolen by the hypervisor (/proc/stat): {r['steal_s']:.2f} s"]
    lines += [f"  jackd: {line}" + (f" (x{count})" if count > 1 else "") for line, count in r.get("jackd_log_lines", ())]
    return lines + ([r["jack_warning"]] if r["jack_warning"] else [])


def baseline_lines(r: dict) -> list[str]:
    low, high, mean = r["load"]
    lines = [f"baseline {r['seconds']:.0f} s on jackd {'-R' if r['jack_realtime'] else '--no-realtime'} -d dummy "
             f"-r 48000 -p {r['period']}, no livegen: "
             + (f"jack_cpu -c {r['cpu_percent']} (busy {r['cpu_percent']} % of every period)" if r["cpu_percent"]
                else "jack_simple_client") + f" alone; load average {mean:.1f} "
             f"(from {low:.1f} to {high:.1f})",
             f"xruns: JACK (passive client's xrun callback) {r['jack_xruns']}; jackd's log {r['jackd_log_xruns']}",
             *_machine_lines(r)]
    return lines


# ------------------------------------------------------------------------- report
TABLE_HEAD = ("control", "period", "look-ahead", "found", "median ms", "p95 ms", "max ms", "jitter ms",
              "floor ms", "median/floor", "p95/floor")


def table_rows(settings: list[Setting]) -> list[tuple[str, ...]]:
    rows = []
    for s in settings:
        la = f"{s.lookahead}{' (default)' if s.default else ''}"
        st = s.stats()
        floor = s.floor_ms
        if st is None:
            figures = ("-",) * 4 + (f"{floor:.2f}", "-", "-")
        else:
            figures = tuple(f"{st[k]:.2f}" for k in ("median", "p95", "max", "jitter")) + (
                f"{floor:.2f}", f"{st['median'] / floor:.2f}", f"{st['p95'] / floor:.2f}")
        rows.append((s.kind, str(s.period), la, f"{len(s.latencies_ms)}/{s.sent}", *figures))
    return rows


def text_table(rows) -> str:
    widths = [max(len(str(r[i])) for r in [TABLE_HEAD, *rows]) for i in range(len(TABLE_HEAD))]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in [TABLE_HEAD, *rows])


def _xrun_lines(log: str, *, most: int = 6) -> list[tuple[str, int]]:
    """jackd's distinct XRun lines with their counts: whether a client (which) was not finished
    in its cycle, or the cycle itself came late."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        if "XRun" in line or "not finished" in line:
            counts[line.strip()] = counts.get(line.strip(), 0) + 1
    return list(counts.items())[:most]


def soak_lines(r: dict) -> list[str]:
    low, high, mean = r["load"]
    lines = [f"soak {r['seconds']:.0f} s on jackd {'-R' if r['jack_realtime'] else '--no-realtime'} -d dummy "
             f"-r 48000 -p {r['period']}: 8 voices, {r['sent']} OSC xy (every 10 ms), recording on "
             f"({r['recorded_bytes'] / 1e6:.1f} MB written), UI {'attached' if r['ui'] else 'not attached'}, "
             f"play's lead {r.get('lead') or 0} samples; "
             f"load average {mean:.1f} (from {low:.1f} to {high:.1f})",
             f"xruns: play {r['xruns']} (underflows {r['underflows']}, late renders {r['late']}); "
             f"JACK (passive client's xrun callback) {r['jack_xruns']}; jackd's log (whole run) {r['jackd_log_xruns']}",
             f"play's threads: {r['scheduling']}",
             f"sound server's callback (whole run): longest {r.get('render_max_ms')} ms of work, longest gap "
             f"between two callbacks {r.get('audio_gap_ms')} ms (one period is {1000 * r['period'] / SR:.2f} ms); "
             f"over the soak {r.get('slow_callbacks')} callbacks worked longer than half a period, and the sound "
             f"server's garbage collector ran {'/'.join(map(str, r.get('gc') or [])) or '?'} times (generations 0/1/2)",
             *_machine_lines(r)]
    lines.append("share of one core over the soak:")
    for pid, role, name, cmd, share in r["processes"]:
        lines.append(f"  {role:12s} pid {pid:<7d} {name:16s} {100 * share:6.1f} %  {cmd}")
    return lines


def _lookahead(text: str) -> int | None:
    """One `--lookaheads` item: 'default' (None: play's own) or a look-ahead in frames."""
    return None if text == "default" else ranged(int, 0, LOOKAHEAD_MAX, hint="or 'default'")(text)


_lookahead.__name__ = "look-ahead"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="livegen bench latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=ranged(int, 1), default=24, help="events per control kind and setting (default 24)")
    parser.add_argument("--periods", type=comma_list(ranged(int, 16, 8192)), default=None,
                        help="JACK periods, comma-separated (default 256,128)")
    parser.add_argument("--lookaheads", type=comma_list(_lookahead), default=None,
                        help="play look-aheads: 'default' (play's own) and/or numbers (default: default,0)")
    parser.add_argument("--kinds", type=comma_list(one_of(*KINDS, *OPTIONAL_KINDS)), default=None,
                        help=f"controls to measure (default {','.join(KINDS)}; also {', '.join(OPTIONAL_KINDS)})")
    parser.add_argument("--soak-seconds", type=ranged(float, 0), default=0.0,
                        help="also soak this long: 8 voices, xy every 10 ms, recording on (0 skips)")
    parser.add_argument("--soak-period", type=ranged(int, 16, 8192), default=256, help="JACK period of the soak")
    parser.add_argument("--ui", action="store_true", help="attach the Textual UI during the soak")
    parser.add_argument("--no-latency", action="store_true", help="only the soak")
    parser.add_argument("--baseline", action="store_true",
                        help="before the soak, soak as long with no livegen (jack_simple_client alone on the same "
                             "jackd): the xruns the machine itself gives")
    parser.add_argument("--baseline-cpu", type=ranged(int, 0, 100), default=0, metavar="PERCENT",
                        help="the baseline's client is jack_cpu, busy PERCENT of every period (livegen's callback "
                             "works about 15-25 %%) instead of the idle jack_simple_client")
    parser.add_argument("--no-realtime", action="store_true", help="jackd --no-realtime (default: -R)")
    parser.add_argument("--play-args", default="", help="extra `play --headless` options")
    parser.add_argument("--input", action="store_true",
                        help="live input (play --input-device system): tone bursts into play's input port, input "
                             f"onset to output onset, beside the OSC note (--kinds {','.join(INPUT_KINDS)}; "
                             "default --periods 256 --lookaheads default)")
    args = parser.parse_args(argv)
    for name, usual, with_input in (("kinds", list(KINDS), list(INPUT_KINDS)), ("periods", [256, 128], [256]),
                                    ("lookaheads", [None, 0], [None])):
        if getattr(args, name) == []:
            parser.error(f"argument --{name}: give at least one value, e.g. --{name} {usual[0] or 'default'}")
        if getattr(args, name) is None:
            setattr(args, name, with_input if args.input else usual)
    kinds, periods, lookaheads = args.kinds, args.periods, args.lookaheads
    extra = args.play_args.split()
    realtime = not args.no_realtime
    print(f"livegen bench latency: {machine()}; load average {load()}; commit {commit()}")
    settings, infos = [], []
    if not args.no_latency:
        for period in periods:
            for lookahead in lookaheads:
                try:
                    found, info = measure(period, lookahead, kinds=kinds, events=args.events, realtime=realtime,
                                          extra=extra)
                except Exception as exc:  # jackd, play or JACK refusing: the other settings still stand
                    print(f"  period {period}, look-ahead {lookahead if lookahead is not None else 'default'}: "
                          f"not measured: {type(exc).__name__}: {exc}")
                    continue
                info.update(period=period, lookahead=found[0].lookahead if found else lookahead)
                settings += found
                infos.append(info)
        print("\ncontrol-to-sound latency, end to end (send frame -> first captured frame)")
        print(text_table(table_rows(settings)))
        print("floor: the longest wait for the next hop (one hop, or one period if longer; the hop from play's "
              "status) plus play's lead (its status; `--play-args '--ahead-periods 0'` for none)")
        if "input" in kinds:
            print(f"input: a {TONE_HZ:.0f} Hz burst ({20 * np.log10(TONE_LEVEL):.1f} dBFS peak) from silence into play's "
                  "input port; its first sample's frame -> the first captured output frame 30 dB over the silence")
        for info in infos:
            print(f"period {info['period']}, look-ahead {info['lookahead']}, lead {info['lead_ms']:.2f} ms, while the events ran: play xruns "
                  f"{info['xruns']} (underflows {info['underflows']}); JACK xruns {info['jack_xruns']} (the capture "
                  f"client's xrun callback), capture gaps {info['capture_gaps']} (its callback's longest run "
                  f"{info['capture_longest_ms']:.2f} ms); load average "
                  f"{info['load'][0]:.1f} to {info['load_end'][0]:.1f}")
        for warning in sorted({info["jack_warning"] for info in infos if info["jack_warning"]}):
            print(warning)
        print(f"load average (1 / 5 / 15 min) at the end: {load()}")
        if not settings:
            return 1
    result = None
    if args.soak_seconds > 0 and args.baseline:
        print()
        print("\n".join(baseline_lines(baseline_soak(args.soak_seconds, period=args.soak_period,
                                                     realtime=realtime, cpu_percent=args.baseline_cpu))))
    if args.soak_seconds > 0:
        result = soak(args.soak_seconds, period=args.soak_period, ui=args.ui, realtime=realtime, extra=extra)
        print()
        print("\n".join(soak_lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
