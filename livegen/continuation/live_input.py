"""Continuation from live input: an input stream is analysed as it plays and the model follows it.

`InputFollower` takes blocks of input samples at the device rate (from a sounddevice
`InputStream` callback, which only copies into a preallocated `RingBuffer`), resamples them
to the model rate (soxr), cuts STFT frames with the model's settings (``center=False``, frame m
covering samples [m*hop, m*hop+n_fft)), and hands each frame to `ContinuationStream.listen`:
the GRU is driven by what it hears instead of its own output, so it answers the input in the
style of its training music (our latent-space timbre transfer). `style_z()` encodes the last
seconds heard, so the style can follow the input too.
"""

from __future__ import annotations

import numpy as np

from livegen.audio.devices import HINT, sounddevice
from livegen.audio.ring import RingBuffer
from livegen.dsp.stft import stft_magnitude
from livegen.errors import DeviceError


class InputFollower:
    """Streaming analysis of live input into a `ContinuationStream` (decoder thread side)."""

    def __init__(self, stream, *, device_rate: int, history_seconds: float = 4.0):
        import soxr

        cfg = stream.config
        self.stream = stream
        self.n_fft, self.hop = cfg.n_fft, cfg.hop
        self._resampler = None if device_rate == cfg.sample_rate else soxr.ResampleStream(
            device_rate, cfg.sample_rate, 1, dtype="float32")
        self._buf = np.zeros(0, np.float32)
        n_hist = max(1, int(history_seconds * cfg.sample_rate / cfg.hop))
        self._history = np.zeros((n_hist, stream.k), np.float32)
        self._count = 0
        self.frames = 0

    def push(self, samples: np.ndarray) -> int:
        """Analyse a block of mono input samples; returns the number of frames heard."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        self._buf = np.concatenate([self._buf, x])
        if self._buf.size < self.n_fft:
            return 0
        n = 1 + (self._buf.size - self.n_fft) // self.hop
        mags = stft_magnitude(self._buf[: self.n_fft + (n - 1) * self.hop], n_fft=self.n_fft, hop=self.hop)
        self._buf = self._buf[n * self.hop:]
        logmag = np.log(mags + 1e-5).astype(np.float32)
        for row in logmag:
            self.stream.listen(row)
            self._history[self._count % len(self._history)] = self.stream.analyse(row)
            self._count += 1
        self.frames += n
        return n

    def style_z(self) -> np.ndarray | None:
        """The style encoding of the input heard lately (None before a block was heard)."""
        import torch

        if self._count < self.stream.block:
            return None
        hist = self._history[: min(self._count, len(self._history))]
        with torch.inference_mode():
            mu, _ = self.stream.model.encode(torch.from_numpy(hist)[None])
        return mu[0].numpy()


class LiveInput:
    """A sounddevice input stream whose callback only copies into a preallocated ring; the
    engine thread drains it into an `InputFollower` with `poll(follower)` once per hop (after a
    model switch, the new engine's follower drains it)."""

    def __init__(self, *, device=None, samplerate: int | None = None, blocksize: int = 0,
                 buffer_seconds: float = 2.0):
        sd = sounddevice()
        spec = None if device in (None, "", "default") else (int(device) if str(device).isdigit() else device)
        try:
            info = sd.query_devices(spec, "input")
        except (ValueError, sd.PortAudioError) as exc:
            raise DeviceError(f"no audio input device {device!r} ({exc}); {HINT}") from None
        self.info = info
        self.samplerate = int(samplerate or info["default_samplerate"])
        self.ring = RingBuffer(int(buffer_seconds * self.samplerate))
        self._scratch = np.zeros(self.ring.capacity, np.float32)
        self.frames = 0
        """Frames heard (by every follower that polled it)."""
        self.overflows = 0
        self.callbacks = 0
        try:
            self.stream = sd.InputStream(device=spec, samplerate=self.samplerate, blocksize=blocksize, channels=1,
                                         dtype="float32", callback=self._callback)
        except Exception as exc:
            raise DeviceError(f"cannot open audio input {info['name']!r}: {exc}; {HINT}") from None

    def _callback(self, indata, frames, time_info, status) -> None:
        self.callbacks += 1
        if self.ring.write(indata[:, 0]) < frames:
            self.overflows += 1

    def start(self) -> "LiveInput":
        self.stream.start()
        return self

    def close(self) -> None:
        try:
            self.stream.stop()
            self.stream.close()
        except Exception:
            pass

    def poll(self, follower: InputFollower) -> int:
        """Engine thread: hand everything captured so far to `follower`; frames heard."""
        n = self.ring.fill
        if n <= 0:
            return 0
        got = self.ring.read_into(self._scratch[:n])
        heard = follower.push(self._scratch[:got])
        self.frames += heard
        return heard
