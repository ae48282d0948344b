"""The audio stream in its own process, fed through a ring buffer in shared memory.

Why a process: the callback is Python and needs the GIL. In the engine process every torch op
releases the GIL, so a callback thread waiting for it forces a hand-over on each one; on a busy
machine each hand-over waits for the scheduler. Measured here (2 shared cores, load ~10): one
thread waking every 5 ms beside the decoder raised its median step from 1.9 ms to 4.3 ms. In
its own process the callback shares no GIL with the decoder. It also means that when PortAudio aborts its
process because the JACK server died (see DESIGN.md, "Seen here"), only this small process
dies: the engine keeps its state and starts a new one when the server is back.

Layout of the shared block: 16 int64 counters (written, read, underflows, ring underruns,
callbacks, last callback time in ns, primed flag, stop flag, longest callback interval in ns,
lowest ring fill a callback found, the callback thread's native id, its policy and real-time
priority, then 3 spare) and the float32 ring.

Scheduling: PortAudio's JACK host API runs the callback on a thread libjack creates, which takes
JACK's real-time priority when the server runs real-time; other host APIs start a normal
thread, so with `realtime_priority` the audio process asks SCHED_FIFO for that thread itself
(`livegen.audio.realtime`). Either way the policy obtained is read back and published.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing import shared_memory

import numpy as np

from livegen.audio.ring import RingBuffer
from livegen.errors import DeviceError

(_WRITTEN, _READ, _UNDERFLOWS, _RING_UNDERRUNS, _CALLBACKS, _LAST_NS, _PRIMED, _STOP,
 _MAX_GAP_NS, _MIN_FILL, _CB_TID, _CB_POLICY, _CB_PRIORITY) = range(13)
_COUNTERS = 16
_HEADER = 8 * _COUNTERS


class SharedRing(RingBuffer):
    """A `RingBuffer` whose samples and indices live in shared memory (one writer per index)."""

    def __init__(self, capacity: int, *, name: str | None = None):
        self.capacity = int(capacity)
        create = name is None
        self.shm = shared_memory.SharedMemory(name=name, create=create, size=_HEADER + 4 * self.capacity)
        self.counters = np.ndarray(_COUNTERS, dtype=np.int64, buffer=self.shm.buf, offset=0)
        self.buffer = np.ndarray(self.capacity, dtype=np.float32, buffer=self.shm.buf, offset=_HEADER)
        if create:
            self.counters[:] = 0
            self.buffer[:] = 0

    @property
    def name(self) -> str:
        return self.shm.name

    @property
    def written(self) -> int:
        return int(self.counters[_WRITTEN])

    @written.setter
    def written(self, value: int) -> None:
        self.counters[_WRITTEN] = value

    @property
    def read(self) -> int:
        return int(self.counters[_READ])

    @read.setter
    def read(self, value: int) -> None:
        self.counters[_READ] = value

    def close(self, *, unlink: bool = False) -> None:
        del self.counters, self.buffer
        self.shm.close()
        if unlink:
            self.shm.unlink()


def _audio_main(ring_name, capacity, device, samplerate, blocksize, latency, nice, conn, realtime_priority=0):
    """The audio process: open the stream, report, play until told to stop (or the parent dies)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine process decides when to stop
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, int(nice))
        except OSError:
            pass
    from livegen.audio.devices import quiet_stderr
    from livegen.audio.realtime import POLICIES, set_realtime, thread_policy
    from livegen.audio.stream import AudioOutput

    ring = SharedRing(capacity, name=ring_name)
    try:
        with quiet_stderr():
            output = AudioOutput(ring, device=device, samplerate=samplerate, blocksize=blocksize, latency=latency)
            output.open()
    except DeviceError as exc:
        conn.send(("error", str(exc)))
        os._exit(2)
    output.primed = False
    import gc

    gc.freeze()  # keep PortAudio's and numpy's start-up objects out of collections in the callback
    output.start()
    conn.send(("ok", {"info": output.info, "samplerate": output.samplerate, "blocksize": output.blocksize,
                      "latency": output.output_latency, "channels": output.channels}))
    counters = ring.counters
    counters[_MIN_FILL] = -1
    codes = {name: code for code, name in POLICIES.items()}
    jack = "jack" in str(output.info.get("hostapi", "")).lower()
    asked = False
    looks = 0
    while not counters[_STOP]:
        counters[_UNDERFLOWS] = output.underflows
        counters[_RING_UNDERRUNS] = output.ring_underruns
        counters[_CALLBACKS] = output.callbacks
        counters[_LAST_NS] = int(output.last_callback * 1e9)
        counters[_MAX_GAP_NS] = int(output.max_gap * 1e9)
        counters[_MIN_FILL] = output.min_fill
        if output.tid and looks % 100 == 0:  # once a second: JACK may change it
            if not asked and not jack and realtime_priority > 0:
                set_realtime(realtime_priority, tid=output.tid)
            asked = True
            policy, priority = thread_policy(output.tid)
            if policy in ("fifo", "rr") and thread_policy() != ("fifo", priority):
                # This loop shares the process's GIL with the callback: preempted while it holds
                # it (by any real-time thread above its priority, other programs' included), it
                # makes the callback late. At the callback's own priority nothing that would not
                # also delay the callback can preempt it; it wakes every 10 ms for microseconds.
                set_realtime(priority)
            counters[_CB_TID] = output.tid
            counters[_CB_POLICY] = codes.get(policy, -1)
            counters[_CB_PRIORITY] = priority
        looks += 1
        if counters[_PRIMED] == 0:
            output.primed = False
            output._may_prime = False
        else:
            output._may_prime = True
        if output.finished:
            os._exit(3)
        time.sleep(0.01)
    output.close()
    counters[_UNDERFLOWS] = output.underflows
    counters[_RING_UNDERRUNS] = output.ring_underruns
    os._exit(0)


class ProcessOutput:
    """Drop-in for `AudioOutput` on the engine side: the stream runs in a child process."""

    def __init__(self, ring: SharedRing, *, device=None, samplerate=None, blocksize=0, latency="low",
                 nice: int = 0, timeout: float = 30.0, realtime_priority: int = 0):
        self.ring = ring
        self.device = device
        self.requested_samplerate = samplerate
        self.blocksize = int(blocksize or 0)
        self.latency = latency
        self.nice = nice
        self.timeout = timeout
        self.realtime_priority = int(realtime_priority)
        """SCHED_FIFO priority the audio process asks for its callback thread on host APIs other
        than JACK (0: none); see the module docstring."""
        self.process = None
        self.info = {"name": "?", "index": None}
        self.samplerate = int(samplerate or 0)
        self.output_latency = 0.0
        self.restarts = 0
        self._base_underflows = 0
        self._base_ring_underruns = 0

    def open(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the audio process; `wait_ready` collects its answer (do other work between)."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        self.ring.counters[_STOP] = 0
        self.ring.counters[_LAST_NS] = time.monotonic_ns()
        self.ring.counters[_MAX_GAP_NS] = 0
        self.ring.counters[_MIN_FILL] = -1
        self.ring.counters[_CB_TID] = 0
        self.process = context.Process(
            target=_audio_main, name="livegen-audio", daemon=True,
            args=(self.ring.name, self.ring.capacity, self.device, self.requested_samplerate or self.samplerate or None,
                  self.blocksize, self.latency, self.nice, child, self.realtime_priority))
        self.process.start()
        child.close()
        self._pipe = parent

    def wait_ready(self) -> None:
        parent = self._pipe
        if not parent.poll(self.timeout):
            self.process.kill()
            raise DeviceError(f"the audio process did not open the device in {self.timeout:.0f} s")
        try:
            kind, payload = parent.recv()
        except EOFError:
            self.process.join(1)
            raise DeviceError(f"the audio process died while opening the device (exit {self.process.exitcode})") from None
        if kind == "error":
            self.process.join(5)
            raise DeviceError(payload)
        parent.close()
        self.info = payload["info"]
        self.samplerate = payload["samplerate"]
        self.blocksize = payload["blocksize"]
        self.output_latency = payload["latency"]

    def start(self) -> None:
        if self.process is None:
            self.open()
        self.ring.counters[_PRIMED] = 1

    def reopen(self) -> None:
        """Start a fresh audio process (after the device or JACK server came back)."""
        self._base_underflows = self.underflows
        self._base_ring_underruns = self.ring_underruns
        self.ring.counters[_UNDERFLOWS] = 0
        self.ring.counters[_RING_UNDERRUNS] = 0
        self.ring.read = self.ring.written  # whatever was queued for the old stream is stale
        self.process = None
        self.restarts += 1
        self.open()
        self.start()

    @property
    def primed(self) -> bool:
        return bool(self.ring.counters[_PRIMED])

    @primed.setter
    def primed(self, value: bool) -> None:
        self.ring.counters[_PRIMED] = int(bool(value))

    @property
    def underflows(self) -> int:
        return self._base_underflows + int(self.ring.counters[_UNDERFLOWS])

    @property
    def ring_underruns(self) -> int:
        return self._base_ring_underruns + int(self.ring.counters[_RING_UNDERRUNS])

    @property
    def last_callback(self) -> float:
        return self.ring.counters[_LAST_NS] / 1e9

    @property
    def max_gap(self) -> float:
        """Longest interval between two callbacks since priming (seconds)."""
        return self.ring.counters[_MAX_GAP_NS] / 1e9

    @property
    def min_fill(self) -> int:
        """Lowest ring fill a callback found since priming (samples; -1 before any)."""
        return int(self.ring.counters[_MIN_FILL])

    @property
    def callback_policy(self) -> tuple[str, int]:
        """(policy, priority) of the callback thread, as the audio process last read it."""
        from livegen.audio.realtime import POLICIES

        if not self.ring.counters[_CB_TID]:
            return "?", 0
        return POLICIES.get(int(self.ring.counters[_CB_POLICY]), "?"), int(self.ring.counters[_CB_PRIORITY])

    @property
    def active(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def close(self, timeout: float = 2.0) -> None:
        if self.process is None:
            return
        self.ring.counters[_STOP] = 1
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1)
        self.process = None
