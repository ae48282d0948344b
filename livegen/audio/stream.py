"""The sounddevice output stream: the callback only copies from the ring and counts xruns."""

from __future__ import annotations

import time

from livegen.audio.devices import HINT, find_output_device, sounddevice
from livegen.audio.ring import RingBuffer
from livegen.errors import DeviceError


class AudioOutput:
    """A PortAudio output stream fed from a `RingBuffer` (mono, copied to every channel).

    Counts PortAudio's underflow flags (`underflows`) and callbacks that found the ring short
    (`ring_underruns`) separately; `callbacks` and `last_callback` let a watchdog see a stream
    whose device has vanished.
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
        if status and status.output_underflow:
            self.underflows += 1
        n = self.ring.read_into(outdata)
        if n < frames and self.primed:
            self.ring_underruns += 1
        elif n == frames and self._may_prime:
            self.primed = True
        self.callbacks += 1
        self.last_callback = time.monotonic()

    def _finished(self):
        self.finished = True
