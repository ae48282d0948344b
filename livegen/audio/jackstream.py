"""The sound server's own JACK client: its output ports and the live input's port in one client.

PortAudio's JACK host API declares its host buffer size unknown, and PortAudio's buffer
processor then pre-fills a full-duplex stream's output with one buffer: with a live input
every note sounded one period late. Two PortAudio streams are two JACK clients, run in either
order in a cycle. One client with one process callback hands the renderer this cycle's input
and takes this cycle's output; `JackStream` has the surface of the sounddevice stream the
sound server used (start/stop/close, `latency`, `active`, the same callback signatures).
"""

from __future__ import annotations

import ctypes
import functools
import re
import threading
import time

import numpy as np

from livegen.errors import DeviceError

OUTPUT_PORT = "out_{}"
"""PortAudio's names for the outputs (out_0, out_1): tests, docs and patchbays know them."""
INPUT_PORT = "input"
MAX_FRAMES = 8192
"""The longest JACK period the preallocated blocks hold (JACK 2's largest buffer size)."""
CAPTURE_LATENCY, PLAYBACK_LATENCY = 0, 1
"""jack_latency_callback_mode_t."""


class _LatencyRange(ctypes.Structure):
    _fields_ = [("min", ctypes.c_uint32), ("max", ctypes.c_uint32)]


@functools.cache
def _latency_range(libname: str):
    function = ctypes.CDLL(libname).jack_port_get_latency_range
    function.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_LatencyRange))
    function.restype = None
    return function


def port_latency(jack, port, mode: int) -> int:
    """The most frames of `port`'s capture or playback latency range: JACK-Client has no call
    for `jack_port_get_latency_range`, so libjack (the library it loaded) is asked directly."""
    function = _latency_range(jack._libname)
    found = _LatencyRange()
    function(int(jack._ffi.cast("uintptr_t", port._ptr)), mode, ctypes.byref(found))
    return int(found.max)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


@functools.cache
def _thread_calls(libname: str):
    """libjack's `jack_client_thread_id` (JACK-Client has no call for it) and glibc's
    `pthread_timedjoin_np`; ctypes releases the interpreter lock around both."""
    thread_id = ctypes.CDLL(libname).jack_client_thread_id
    thread_id.argtypes = (ctypes.c_void_p,)
    thread_id.restype = ctypes.c_ulong
    join = ctypes.CDLL(None).pthread_timedjoin_np
    join.argtypes = (ctypes.c_ulong, ctypes.c_void_p, ctypes.POINTER(_Timespec))
    join.restype = ctypes.c_int
    return thread_id, join


class ProcessCallback:
    """`callback(frames)` as `client`'s process callback, and a `deactivate` that never has libjack
    cancel the process thread while it runs Python.

    JACK 2's `jack_deactivate` ends the process thread with an asynchronous `pthread_cancel` once
    the server has taken the client out of its graph; an asynchronous server (jackd's default) does
    not wait for a late callback, so the cancel can land inside Python: the thread dies holding
    the interpreter lock and the deactivating thread waits for the lock for ever (a hang at stop).
    `deactivate` first parks the next callback (waiting, the lock free) and watches the server:
    - its cycles go on (asynchronous): the callback raises `CallbackExit`; libjack deactivates the
      client from the process thread and ends that thread with `pthread_exit`, in C; it is joined;
    - they stop (`jackd --sync` waits for every client): the callback is let go and returns, and
      `jack_deactivate` cancels the thread only after the server's last cycle with it, which
      waited for the callback. Ending the thread itself there would stall that server: its next
      cycle, begun before the deactivation, waits for the client up to ten client time-outs.
    """

    JOIN_TIMEOUT = 10.0
    """Seconds `deactivate` waits for a callback to park and for the thread to end; with no
    callback (no cycles: a stalled or gone server) it falls back to `jack_deactivate`."""
    SYNC_WAIT = 0.25
    """Seconds (plus four periods) a parked callback waits for the server's next cycle before the
    server counts as synchronous: the cost of a stop on `jackd --sync`."""

    def __init__(self, client, callback, silence=None):
        """`silence()` (optional) quiets the client's outputs before the callback parks: the server
        goes on reading what the last cycle left in them meanwhile."""
        import jack  # JACK-Client: only where a JACK client runs

        self.client = client
        self._exit = jack.CallbackExit
        self._ffi = jack._ffi
        self._libname = jack._libname
        self._callback = callback
        self._silence = silence
        self._stopping = False
        self._end_thread = False
        self._parked = threading.Event()
        self._release = threading.Event()
        self._active = False
        client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        if self._stopping:
            self._park()
        else:
            self._callback(frames)

    def _park(self) -> None:
        if not self._release.is_set():
            if self._silence is not None:
                self._silence()
            self._parked.set()
            self._release.wait(self.JOIN_TIMEOUT)  # the interpreter lock free: a cancel lands in C
        if self._end_thread:
            raise self._exit  # libjack ends this thread itself, outside Python

    def activate(self) -> None:
        self._stopping = self._end_thread = False
        self._parked.clear()
        self._release.clear()
        self.client.activate()
        self._active = True

    def _server_waits(self) -> bool:
        """True when the server's cycles stand still while the callback is parked."""
        client = self.client
        start = client.last_frame_time
        period = client.blocksize / client.samplerate
        deadline = time.monotonic() + self.SYNC_WAIT + 4 * period
        while time.monotonic() < deadline:
            if client.last_frame_time != start:
                return False
            time.sleep(period / 4)
        return True

    def deactivate(self, timeout: float | None = None) -> bool:
        """Deactivate the client; True when its process thread ended itself (joined here)."""
        if not self._active:
            return False
        self._active = False
        wait = self.JOIN_TIMEOUT if timeout is None else timeout
        thread_id, join = _thread_calls(self._libname)
        thread = thread_id(int(self._ffi.cast("uintptr_t", self.client._ptr)))
        self._stopping = True
        if thread and self._parked.wait(wait) and not self._server_waits():
            self._end_thread = True
            self._release.set()
            at = time.clock_gettime(time.CLOCK_REALTIME) + wait
            return join(thread, None, ctypes.byref(_Timespec(int(at), int(at % 1 * 1e9)))) == 0
        self._release.set()
        self.client.deactivate()  # the callback returned, or none came: the thread waits in libjack
        return False


class CallbackStatus:
    """What sounddevice's `CallbackFlags` told the renderer: JACK reported an xrun since the last cycle."""

    __slots__ = ("output_underflow",)

    def __init__(self):
        self.output_underflow = False


class JackStream:
    """A JACK client with `channels` outputs and, with `duplex_callback`, one input port.

    `callback(outdata, frames, time_info, status)` or `duplex_callback(indata, outdata, frames,
    time_info, status)` fills a preallocated interleaved block (`time_info` is None); the
    process callback copies its columns to the ports. The outputs connect to `device`'s playback
    ports at `start`, as PortAudio connected them; the input stays unconnected until
    `connect_input`. When the JACK server goes away the callbacks stop and `active` turns False
    (`shut_down` says why); from then on only `close` touches the client (it frees it).
    """

    def __init__(self, *, name: str, device: str, samplerate: int, channels: int, callback=None,
                 duplex_callback=None):
        import jack  # JACK-Client: only where the output's host API is JACK

        self._jack = jack
        try:
            client = jack.Client(name, no_start_server=True)
        except jack.JackError as exc:
            raise DeviceError(f"cannot open a JACK client for {device!r} ({exc}); is the JACK server running? "
                              "(`jack_lsp` lists its ports)") from None
        if client.samplerate != samplerate:
            rate = client.samplerate
            client.close()
            raise DeviceError(f"cannot open audio device {device!r} at {samplerate} Hz: the JACK server runs at "
                              f"{rate} Hz; give --samplerate {rate} (or restart jackd with -r {samplerate})")
        self.client = client
        self.name = client.name
        self.device = device
        self.samplerate = samplerate
        self.channels = int(channels)
        self._callback = callback
        self._duplex = duplex_callback
        try:
            self._outports = [client.outports.register(OUTPUT_PORT.format(i)) for i in range(self.channels)]
            self._inport = client.inports.register(INPUT_PORT) if duplex_callback is not None else None
        except jack.JackError as exc:
            client.close()
            raise DeviceError(f"cannot register the JACK ports of {self.name!r} ({exc})") from None
        self.input_ports = [self._inport.name] if self._inport is not None else []
        self._out = np.zeros((MAX_FRAMES, self.channels), np.float32)
        self._in = np.zeros((MAX_FRAMES, 1), np.float32)
        self._views = self._prepare(client.blocksize)
        self._status = CallbackStatus()
        self.xruns = 0
        self._xruns_seen = 0
        self.shut_down: str | None = None
        """Why the JACK server ended this client (None while it runs)."""
        self._started = False
        self._sources: list[str] = []
        self._latency = 0.0 if duplex_callback is None else (0.0, 0.0)
        self._process_callback = ProcessCallback(client, self._process, self._quiet)
        client.set_xrun_callback(self._xrun)
        client.set_shutdown_callback(self._shutdown)
        client.set_blocksize_callback(self._blocksize)

    # ---------------------------------------------------------------- the audio thread
    def _prepare(self, frames: int) -> tuple:
        """The views one period uses, made outside the process callback (JACK calls the blocksize
        callback before a period of another length)."""
        if frames > MAX_FRAMES:
            raise DeviceError(f"JACK period {frames}: the sound server takes at most {MAX_FRAMES} frames")
        out = self._out[:frames]
        return frames, out, [out[:, i] for i in range(self.channels)], self._in[:frames], self._in[:frames, 0]

    def _process(self, frames: int) -> None:
        views = self._views
        if views[0] != frames:  # the blocksize callback did not come first: views made here, once
            views = self._views = self._prepare(frames)
        _, out, columns, block, column = views
        status = self._status
        xruns = self.xruns
        status.output_underflow = xruns != self._xruns_seen
        self._xruns_seen = xruns
        if self._inport is not None:
            np.copyto(column, self._inport.get_array())
            self._duplex(block, out, frames, None, status)
        else:
            self._callback(out, frames, None, status)
        for port, samples in zip(self._outports, columns):
            np.copyto(port.get_array(), samples)

    def _quiet(self) -> None:
        for port in self._outports:
            port.get_array().fill(0.0)

    def _xrun(self, delayed_usecs: float) -> None:
        self.xruns += 1  # the next process callback tells the renderer (it counts underflows)

    def _blocksize(self, frames: int) -> None:
        self._views = self._prepare(frames)

    def _shutdown(self, status, reason: str) -> None:
        self.shut_down = reason or "the JACK server went away"

    # ---------------------------------------------------------------- the stream's surface
    @property
    def active(self) -> bool:
        return self._started and self.shut_down is None

    @property
    def latency(self):
        """Seconds from this cycle's output to the sound at the playback ports (JACK's playback
        latency range of the outputs, as PortAudio gave it), and with an input (input, output),
        as sounddevice's duplex stream: the input's from the capture ports' sound."""
        if self.shut_down is not None:
            return self._latency
        jack = self._jack
        output = max((port_latency(jack, port, PLAYBACK_LATENCY) for port in self._outports), default=0)
        latency = output / self.samplerate
        if self._inport is not None:
            latency = (port_latency(jack, self._inport, CAPTURE_LATENCY) / self.samplerate, latency)
        self._latency = latency
        return latency

    def start(self) -> None:
        """Activate the client and connect the outputs to the device's playback ports."""
        client = self.client
        self._process_callback.activate()
        self._started = True
        playback = client.get_ports(f"^{re.escape(self.device)}:", is_audio=True, is_input=True)
        if not playback:
            playback = client.get_ports(is_audio=True, is_input=True, is_physical=True)
        for port, target in zip(self._outports, playback):
            try:
                client.connect(port, target)
            except self._jack.JackError:
                pass  # connected meanwhile by a session manager, or gone

    def connect_input(self, sources=()) -> list[str]:
        """Connect the output ports `sources` (those that exist) to the input port; its names."""
        for source in sources:
            try:
                self.client.connect(source, self._inport)
            except self._jack.JackError:
                pass  # not there (yet): the performer connects it
        return list(self.input_ports)

    def input_sources(self) -> list[str]:
        """The ports connected to the input now (while the JACK server runs), else the last seen:
        what a new server after a lost JACK server connects again."""
        if self._inport is not None and self.active:
            self._sources = [port.name for port in self._inport.connections]
        return list(self._sources)

    def stop(self) -> None:
        if self.active:
            self._process_callback.deactivate()
        self._started = False

    def close(self) -> None:
        """Stop first (`jack_client_close` deactivates an active client by cancelling its thread),
        then free the client; a shut-down one too: JACK leaves its resources to the owner."""
        self.stop()
        self.client.close()
