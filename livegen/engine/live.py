"""The live engine: a decoder thread keeps the ring buffer a few blocks ahead of the callback.

`LiveEngine` is the `ControlTarget` the OSC server (and later MIDI and the recorder) talk to:
`params`, `post`, `status`, `add_listener`. The decoder thread is the only one that touches
the `Engine`; other threads only post events and read parameters.

With `realtime_priority` the decoder thread asks for SCHED_FIFO for itself (Linux schedules
threads: the engine's other threads stay at normal policy). Keep it below the audio thread's
priority (JACK's clients run at the server's priority minus 5; jackd's default is 10). Refused
(no privilege), it says so once and plays on at normal policy; `status()` reports `realtime`
1 or 0 either way, with the two figures that say who was late after an xrun: `decoder_gap_ms`
(longest sleep-to-sleep interval of the decoder loop) and `ring_min` (lowest fill it found).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time

from livegen.audio.realtime import set_realtime, thread_policy
from livegen.audio.ring import RingBuffer
from livegen.engine.core import Engine
from livegen.engine.meters import OutputMeters


class LiveEngine:
    def __init__(self, engine: Engine, output, *, ahead: int, realtime_priority: int = 0, log=None):
        self.engine = engine
        self.output = output
        self.ring: RingBuffer = output.ring
        self.ahead = int(ahead)
        self.realtime_priority = int(realtime_priority)
        self.realtime = False
        """Whether the decoder thread obtained SCHED_FIFO (set once it runs)."""
        self.realtime_note = "not started"
        self.decoder_policy = ("?", 0)
        self.decoder_tid = 0
        """The decoder thread's native id (0 until it runs)."""
        self._log = log
        self._scheduled = threading.Event()
        self._gap_max = 0.0
        self._ring_min = -1
        self.params = engine.params
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.started_at = None
        self.first_sound_at = None
        self.error: BaseException | None = None
        self.meters = OutputMeters(engine.samplerate)
        """Peak/RMS and spectrum of the output; the OSC server sends them to subscribers."""
        engine.add_tap(self.meters.feed)
        self._listeners: list = []
        self._next: tuple | None = None
        """(engine, on_swapped) waiting for the old engine's fade-out (see `swap_engine`)."""
        self.model_loader = None
        """`loader(path, done)` that builds an engine for another model and swaps it in (the
        engine server sets it); `done(ok, text)` follows with the model's name or what failed."""

    # ControlTarget
    def post(self, event) -> None:
        following = self._next
        (following[0] if following is not None else self.engine).post(event)

    def add_listener(self, callback) -> None:
        self._listeners.append(callback)
        self.engine.add_listener(callback)

    def remove_listener(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)
        self.engine.remove_listener(callback)

    def load_model(self, path: str, done) -> None:
        """`/livegen/model s`: load another model while playing (see `model_loader`)."""
        if self.model_loader is None:
            done(False, "this engine cannot load another model while playing")
            return
        self.model_loader(path, done)

    def swap_engine(self, engine: Engine, on_swapped=None) -> None:
        """Play `engine` instead (another model): the current one fades out on the decoder thread,
        the new one fades in from silence, and the ring never runs dry meanwhile. Listeners added
        here and the meters move over; events posted from now on go to the new engine.
        `on_swapped(old_engine)` is called on the decoder thread once the new one plays."""
        if engine.samplerate != self.engine.samplerate:
            raise ValueError(f"new engine runs at {engine.samplerate} Hz, the output at {self.engine.samplerate} Hz")
        self._next = (engine, on_swapped)
        if self._thread is None or not self._thread.is_alive():
            self._swap()

    def status(self) -> dict:
        status = self.engine.status()
        out = self.output
        status.update({
            "xruns": out.underflows + out.ring_underruns,
            "underflows": out.underflows,
            "ring_underruns": out.ring_underruns,
            "ahead": self.ahead,
            "samplerate": out.samplerate,
            "blocksize": out.blocksize,
            "latency_ms": round(1000 * (self.ahead / out.samplerate + out.output_latency), 2),
            "audio_device": out.info["name"],
            "realtime": int(self.realtime),
            "realtime_priority": self.decoder_policy[1],
            "decoder_policy": self.decoder_policy[0],
            "decoder_gap_ms": round(1000 * self._gap_max, 2),
            "ring_min": self._ring_min,
            "audio_gap_ms": round(1000 * getattr(out, "max_gap", 0.0), 2),
            "audio_min_fill": getattr(out, "min_fill", -1),
            "audio_policy": "{} {}".format(*getattr(out, "callback_policy", ("?", 0))),
            "uptime": round(time.monotonic() - self.started_at, 3) if self.started_at else 0.0,
        })
        return status

    def start(self) -> None:
        """Prime the ring, open the stream, then keep the ring `ahead` samples full."""
        self.started_at = time.monotonic()
        # Torch and the model leave ~250,000 objects behind; a full collection scans them all
        # (150 ms measured here), holding the GIL in whichever thread it lands. Frozen, they are
        # left out of every collection (still freed by reference counting).
        gc.freeze()
        self._fill()
        self.output.start()
        self._thread = threading.Thread(target=self._run, name="livegen-decoder", daemon=True)
        self._thread.start()
        self._scheduled.wait(1.0)  # so `realtime` is known when start() returns

    @contextlib.contextmanager
    def lead(self, seconds: float = 0.5, *, timeout: float = 1.0):
        """Keep `seconds` of audio in the ring while the block runs, then go back to `ahead`.

        For GIL-heavy work on another thread of this process while audio plays: starting or
        stopping the controls (imports; python-rtmidi opens and closes its JACK clients without
        releasing the GIL: measured here 115 ms for an open, 51 ms for a close, two of each)
        held the decoder off far longer than the 16 ms lead, at every start and stop. Control
        latency grows by the difference meanwhile, at moments (start, stop) when nobody plays."""
        normal = self.ahead
        self.ahead = max(normal, int(seconds * self.output.samplerate))
        deadline = time.monotonic() + timeout
        while (self.ring.fill < self.ahead and time.monotonic() < deadline and self._thread is not None
               and self._thread.is_alive()):
            time.sleep(0.002)
        try:
            yield
        finally:
            self.ahead = normal

    def _swap(self) -> None:
        engine, on_swapped = self._next
        old = self.engine
        for callback in self._listeners:
            old.remove_listener(callback)
            engine.add_listener(callback)
        old.remove_tap(self.meters.feed)
        engine.add_tap(self.meters.feed)
        engine.bind_thread()
        gc.freeze()  # the new model's objects too (see `start`)
        self.engine = engine
        self.params = engine.params
        self._next = None
        if on_swapped is not None:
            on_swapped(old)

    def _fill(self) -> None:
        ring = self.ring
        engine = self.engine
        if self._next is not None:
            if not self.output.active:  # nothing is heard: no fade to wait for
                self._swap()
                engine = self.engine
            elif engine.faded_out:
                self._swap()
                engine = self.engine
            else:
                engine.fade_out()
        fill = ring.fill
        if self.output.primed and (fill < self._ring_min or self._ring_min < 0):
            self._ring_min = fill
        while ring.fill < self.ahead:
            block = engine.step()
            if self.first_sound_at is None and len(block) and float(abs(block).max()) > 1e-4:
                self.first_sound_at = time.monotonic()
            ring.write(block)

    def _run(self) -> None:
        sleep = max(0.0005, 0.25 * self.engine.hop_seconds)
        self.decoder_tid = threading.get_native_id()
        self.realtime, self.realtime_note = set_realtime(self.realtime_priority)
        self.decoder_policy = thread_policy()
        self._scheduled.set()
        if self.realtime_priority > 0 and not self.realtime and self._log is not None:
            self._log(f"decoder thread: {self.realtime_note}; playing at normal priority")
        try:
            self.engine.bind_thread()
            last = time.monotonic()
            while not self._stop.is_set():
                self._fill()
                time.sleep(sleep)
                now = time.monotonic()
                if now - last > self._gap_max and self.output.primed:
                    self._gap_max = now - last
                last = now
        except BaseException as exc:  # surfaced by the main thread's watchdog
            self.error = exc

    def stop(self, *, fade: bool = True, timeout: float = 1.0) -> None:
        """Fade out, let the ring drain into the device, then close the stream."""
        if fade and self._thread is not None and self._thread.is_alive() and self.output.active:
            self.engine.fade_out()
            deadline = time.monotonic() + timeout
            while not self.engine.faded_out and time.monotonic() < deadline:
                time.sleep(0.005)
            # the fade must reach the device before it closes
            mark = self.ring.written
            while self.ring.read < mark and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(min(0.05, self.output.output_latency + 0.01))
        self.output.primed = False  # the ring drains from here on: not an underrun
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.output.close()
