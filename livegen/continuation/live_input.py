"""Continuation from live input: an input stream is analysed as it plays and the model follows it.

`InputFollower` takes blocks of input samples at the device rate (`livegen.audio.input.LiveInput`,
whose stream callback only copies into a preallocated ring), resamples them
to the model rate (soxr), cuts STFT frames with the model's settings (``center=False``, frame m
covering samples [m*hop, m*hop+n_fft)), and hands each frame to `ContinuationStream.listen`:
the GRU is driven by what it hears instead of its own output, so it answers the input in the
style of its training music (our latent-space timbre transfer). `style_z()` encodes the last
seconds heard, so the style can follow the input too.
"""

from __future__ import annotations

import numpy as np

from livegen.dsp.stft import stft_magnitude


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
