"""The live audio input: a device's samples in a preallocated ring, handed out a hop at a time.

`LiveInput.write` (the input stream's callback, or the sound server's own callback when one
duplex stream carries input and output) only copies into a `RingBuffer` and keeps the peak and
a clip count. `LiveFeed.read_hop` (the engine's hop, in the sound server's audio callback)
drains the ring, resamples to the model rate with a soxr `ResampleStream` and fills the hop:
the contract of `livegen.engine.input.InputFeed`. The continuation model polls the ring at the
device rate instead (`LiveInput.poll`).

On JACK the input port belongs to the sound server's own client (`JACK_CLIENT`,
`livegen.audio.jackstream`), unconnected, so the performer connects what they play
(jack_connect, qjackctl, Carla: docs/live-input.md). Through PortAudio (an input opened as its
own stream on JACK) `jack_ports` renames the port to `input` and undoes PortAudio's automatic
connection to the first capture port.
"""

from __future__ import annotations

import ctypes
import re

import numpy as np
import soxr

from livegen.audio.devices import INPUT_HINT, sounddevice
from livegen.audio.ring import RingBuffer
from livegen.errors import DeviceError

JACK_CLIENT = "livegen-audio"
"""The sound server's JACK client name (PortAudio's own is "PortAudio"; the MIDI input is
"livegen"); JACK appends -01... to a second one, e.g. a model switch's new server beside the old."""
JACK_INPUT_PORT = "input"
CLIP_LEVEL = 0.999
"""A block whose peak reaches this (about -0.01 dBFS) counts as clipping."""
BACKLOG_SECONDS = 0.02
"""Input older than this (or than two of the device's blocks, if longer) when a hop is read is
dropped (counted): a stalled or not yet started engine must not leave the voice following late
for good."""
RESAMPLE_QUALITY = "HQ"


class LiveInput:
    """An audio input device (mono: its first channel) whose samples wait in a ring for the engine.

    `stream` is an own sounddevice `InputStream` (`start()` opens it) unless the sound server
    carries the input in its duplex stream (`carry`: it then calls `write` with each block).
    """

    def __init__(self, *, device=None, samplerate: int | None = None, blocksize: int = 0,
                 buffer_seconds: float = 2.0):
        sd = sounddevice()
        spec = None if device in (None, "", "default") else (int(device) if str(device).isdigit() else device)
        try:
            info = sd.query_devices(spec, "input")
        except (ValueError, sd.PortAudioError) as exc:
            raise DeviceError(f"--input-device {device}: no such audio input ({exc}); {INPUT_HINT}") from None
        self.device = device
        self.info = info
        self.index = int(info["index"])
        self.hostapi = sd.query_hostapis(info["hostapi"])["name"]
        self.blocksize = int(blocksize)
        self._buffer_seconds = float(buffer_seconds)
        self._size(int(samplerate or info["default_samplerate"]))
        self.frames = 0
        """Frames heard (by every follower that polled it)."""
        self.overflows = 0
        self.callbacks = 0
        self.largest_block = 0
        self.clips = 0
        """Blocks whose peak reached `CLIP_LEVEL`."""
        self.peak = 0.0
        """Largest |sample| since the status last took it (`take_peak`)."""
        self.ports: list[str] = []
        """Its JACK port names (set by `jack_ports`)."""
        self.duplex = False
        """Carried by the output stream (`carry`) instead of a stream of its own."""
        self.stream = None
        self.engine_feed: LiveFeed | None = None
        """The feed a spectral engine reads (set by whoever builds it)."""

    def _size(self, samplerate: int) -> None:
        self.samplerate = int(samplerate)
        self.ring = RingBuffer(int(self._buffer_seconds * self.samplerate))
        self._scratch = np.zeros(self.ring.capacity, np.float32)

    def carry(self, samplerate: int) -> "LiveInput":
        """Let the output stream carry this input (`duplex`) at its `samplerate`: the device
        found once serves, no second query (before `start`; its ring is sized anew)."""
        if self.stream is not None:
            raise RuntimeError("LiveInput.carry after its own stream was opened")
        self.duplex = True
        self._size(samplerate)
        return self

    @property
    def on_jack(self) -> bool:
        return "jack" in self.hostapi.lower()

    def open(self) -> "LiveInput":
        """Open an own input stream (not with `duplex`)."""
        sd = sounddevice()
        try:
            self.stream = sd.InputStream(device=self.index, samplerate=self.samplerate, blocksize=self.blocksize,
                                         channels=1, dtype="float32", callback=self._callback)
        except Exception as exc:
            raise DeviceError(f"--input-device {self.device}: cannot open {self.info['name']!r} at "
                              f"{self.samplerate} Hz ({exc}); {INPUT_HINT}") from None
        return self

    def _callback(self, indata, frames, time_info, status) -> None:
        self.write(indata[:, 0])

    def write(self, block: np.ndarray) -> None:
        """Audio thread: copy one block of input samples into the ring (no allocation, no lock)."""
        self.callbacks += 1
        if len(block) > self.largest_block:
            self.largest_block = len(block)
        if len(block):
            peak = max(float(block.max()), -float(block.min()))
            if peak > self.peak:
                self.peak = peak
            if peak >= CLIP_LEVEL:
                self.clips += 1
        if self.ring.write(block) < len(block):
            self.overflows += 1

    def take_peak(self) -> float:
        """The peak since the last call (a meter's reading), and start a new one."""
        peak, self.peak = self.peak, 0.0
        return peak

    def start(self) -> "LiveInput":
        if self.stream is None and not self.duplex:
            self.open()
        if self.stream is not None:
            self.stream.start()
        return self

    def close(self) -> None:
        if self.stream is None:
            return
        try:
            self.stream.stop()
            self.stream.close()
        except Exception:
            pass

    def feed(self, model_rate: int) -> "LiveFeed":
        """A model-rate `InputFeed` reading this input (one per engine: it owns a resampler)."""
        return LiveFeed(self, model_rate=model_rate)

    def poll(self, follower) -> int:
        """Engine thread: hand everything captured so far to `follower` (a continuation's
        `InputFollower`, which resamples itself); frames heard."""
        n = self.ring.fill
        if n <= 0:
            return 0
        got = self.ring.read_into(self._scratch[:n])
        heard = follower.push(self._scratch[:got])
        self.frames += heard
        return heard

    def status(self) -> dict:
        return {"input_device": self.info["name"], "input_ports": " ".join(self.ports),
                "input_device_peak": round(self.take_peak(), 4), "input_device_clips": self.clips,
                "input_overflows": self.overflows}


class LiveFeed:
    """`InputFeed` over a `LiveInput`: `read_hop` fills a model-rate hop from the ring.

    Called where the hop is rendered (the sound server's audio callback). It keeps at most
    `BACKLOG_SECONDS` of input waiting (older samples are skipped and counted in `skipped`);
    `underruns` counts hops that found fewer samples than asked (zeros in their place).
    """

    def __init__(self, live: LiveInput, *, model_rate: int):
        self.live = live
        self.samplerate = int(model_rate)
        self.device_rate = live.samplerate
        self._resampler = None if self.device_rate == self.samplerate else soxr.ResampleStream(
            self.device_rate, self.samplerate, 1, dtype="float32", quality=RESAMPLE_QUALITY, vr=True)
        self.backlog = max(int(BACKLOG_SECONDS * self.device_rate), 1)
        self._chunk = np.zeros(self.backlog, np.float32)
        size = 1 << int(np.ceil(np.log2(4 * self.backlog * self.samplerate / self.device_rate + 16384)))
        self._fifo = RingBuffer(size)
        self.frames = 0
        """Model-rate samples handed out that were real input."""
        self.skipped = 0
        self.underruns = 0

    def header(self) -> dict:
        """A take's log header `input` fields (the recorder adds its input file and sha256)."""
        return {"device": self.live.info["name"], "device_samplerate": self.device_rate,
                "model_samplerate": self.samplerate}

    def read_hop(self, out: np.ndarray) -> int:
        """Fill `out` (float32, model rate) with the next input samples; the count that were real."""
        ring = self.live.ring
        excess = ring.fill - max(self.backlog, 2 * self.live.largest_block)
        if excess > 0:
            ring.skip(excess)
            self.skipped += excess
        n = len(out)
        fifo = self._fifo
        while fifo.fill < n and ring.fill > 0:
            got = ring.read_into(self._chunk[:min(ring.fill, len(self._chunk))])
            x = self._chunk[:got]
            if self._resampler is not None:
                x = self._resampler.resample_chunk(x)
            self.skipped += len(x) - fifo.write(x)  # none with the backlog bound
        take = fifo.read_into(out)
        if take < n:
            self.underruns += 1
        self.frames += take
        return take


# ----------------------------------------------------------------------------- JACK
def set_jack_client_name(name: str = JACK_CLIENT) -> None:
    """Name the JACK client PortAudio opens in this process (call before opening any stream):
    PortAudio reads the name when it initialises, so it is re-initialised here."""
    sd = sounddevice()
    try:
        lib = ctypes.CDLL(sd._libname)
        setter = lib.PaJack_SetClientName
    except (OSError, AttributeError):  # a PortAudio without its JACK host API
        return
    global _CLIENT_NAME
    _CLIENT_NAME = ctypes.create_string_buffer(name.encode())  # PortAudio keeps the pointer
    sd._terminate()
    setter(_CLIENT_NAME)
    sd._initialize()


_CLIENT_NAME = None


def end_portaudio() -> None:
    """End PortAudio in this process: its JACK host API holds a client under the name
    `set_jack_client_name` gave from initialisation on, which the sound server's own JACK
    client (`livegen.audio.jackstream`) takes instead. Devices are looked up before."""
    sd = sounddevice()
    if sd._initialized:
        sd._terminate()


def jack_client_name() -> str | None:
    """The JACK client name PortAudio got in this process (JACK may have added a suffix)."""
    sd = sounddevice()
    try:
        getter = ctypes.CDLL(sd._libname).PaJack_GetClientName
    except (OSError, AttributeError):
        return None
    name = ctypes.c_char_p()
    getter.argtypes = (ctypes.POINTER(ctypes.c_char_p),)
    if getter(ctypes.byref(name)) != 0 or not name.value:
        return None
    return name.value.decode()


def jack_ports(live: LiveInput, *, connect=()) -> list[str]:
    """After the stream started: rename this process's JACK input port(s) to `input` (`input_2`...),
    disconnect what PortAudio connected them to, connect the output ports named in `connect`
    (e.g. the sources of the previous server's input, after a model switch); returns the names."""
    import jack  # JACK-Client: only where the host API is JACK

    client_name = jack_client_name()
    if client_name is None:
        return []
    control = jack.Client(f"{client_name}-ports", no_start_server=True)
    try:
        ports = control.get_ports(f"^{re.escape(client_name)}:(in_[0-9]+|{JACK_INPUT_PORT}(_[0-9]+)?)$",
                                  is_audio=True, is_input=True)
        names = []
        for i, port in enumerate(ports):
            for source in control.get_all_connections(port):
                control.disconnect(source, port)
            short = JACK_INPUT_PORT if i == 0 else f"{JACK_INPUT_PORT}_{i + 1}"
            if port.shortname != short:
                port.shortname = short
            names.append(f"{client_name}:{short}")
        for source in connect:
            if names:
                try:
                    control.connect(source, names[0])
                except jack.JackError:
                    pass  # gone meanwhile
        live.ports = names
        return names
    finally:
        control.close()


def jack_sources(ports) -> list[str]:
    """The output ports connected to JACK input ports `ports` (what a new server should take over)."""
    import jack

    if not ports:
        return []
    control = jack.Client("livegen-ports", no_start_server=True)
    try:
        found = []
        for name in ports:
            try:
                found += [p.name for p in control.get_all_connections(name) if p.name not in found]
            except jack.JackError:
                pass
        return found
    finally:
        control.close()
