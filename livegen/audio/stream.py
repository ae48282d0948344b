"""The sounddevice output stream: the callback only copies from the ring and counts xruns."""

from __future__ import annotations

import threading
import time

from livegen.audio.devices import HINT, find_output_device, sounddevice
from livegen.audio.ring import RingBuffer
from livegen.errors import DeviceError


class AudioOutput:
    """A PortAudio output stream fed from a `RingBuffer` (mono, copied to every channel).

    Counts PortAudio's underflow flags (`underflows`) and callbacks that found the ring short
    (`ring_underruns`) separately; `callbacks` and `last_callback` let a watchdog see a stream
    whose device has vanished. Once primed it also keeps the longest interval between two
    callbacks (`max_gap`, seconds) and the lowest ring fill a callback found (`min_fill`,
    samples), which say after an xrun whether the audio thread or the decoder was late, and the
    callback thread's native id (`tid`) so its scheduling can be read or raised from outside.
    """

    def __init__(self, ring: RingBuffer, *, device=None, samplerate: int | None = None,
                 blocksize: int = 0, latency="low", channels: int | None = None):
        self.ring = ring
        self.info = find_output_device(device)
        self.samplerate = int(samplerate or self.info["samplerate"])
        self.blocksize = int(blocksize or 0)
        self.latency = latency
        self.channels = int(channels or min(2, self.info["channels"]))
        self.underflows = 0
        self.ring_underruns = 0
        self.callbacks = 0
        self.last_callback = 0.0
        self.max_gap = 0.0
        self.min_fill = -1
        self.tid = 0
        self.primed = False
        self.finished = False
        self._may_prime = True
        self.stream = None

    def open(self) -> None:
        sd = sounddevice()
        try:
            sd.check_output_settings(device=self.info["index"], samplerate=self.samplerate,
                                     channels=self.channels, dtype="float32")
        except Exception as exc:
            raise DeviceError(f"audio device {self.info['index']}: {self.info['name']!r} refuses "
                              f"{self.samplerate} Hz / {self.channels} ch ({exc}); {HINT}") from None
        try:
            self.stream = sd.OutputStream(
                device=self.info["index"], samplerate=self.samplerate, blocksize=self.blocksize,
                latency=self.latency, channels=self.channels, dtype="float32",
                callback=self._callback, finished_callback=self._finished)
        except Exception as exc:
            raise DeviceError(f"cannot open audio device {self.info['name']!r}: {exc}; {HINT}") from None

    def start(self) -> None:
        if self.stream is None:
            self.open()
        self.last_callback = time.monotonic()
        self.stream.start()

    def close(self) -> None:
        if self.stream is not None:
            try:
                self.stream.stop()
                self.stream.close()
            except Exception:
                pass
            self.stream = None

    @property
    def output_latency(self) -> float:
        return float(self.stream.latency) if self.stream is not None else 0.0

    @property
    def active(self) -> bool:
        return self.stream is not None and bool(self.stream.active) and not self.finished

    def _callback(self, outdata, frames, time_info, status):
        # No allocation, no lock, no logging: copy and count.
        now = time.monotonic()
        if status and status.output_underflow:
            self.underflows += 1
        if self.primed:
            if now - self.last_callback > self.max_gap:
                self.max_gap = now - self.last_callback
            fill = self.ring.fill
            if fill < self.min_fill or self.min_fill < 0:
                self.min_fill = fill
        elif not self.tid:
            self.tid = threading.get_native_id()
        n = self.ring.read_into(outdata)
        if n < frames and self.primed:
            self.ring_underruns += 1
        elif n == frames and self._may_prime:
            self.primed = True
        self.callbacks += 1
        self.last_callback = now

    def _finished(self):
        self.finished = True
