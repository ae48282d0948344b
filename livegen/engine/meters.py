"""Output meters for the UI: peak and RMS in dBFS and a 64-band spectrum, about 30 times a second.

`OutputMeters.feed` is an engine output tap: it runs on the decoder thread for every block, so
it only copies the block into a preallocated ring and updates two running scalars. Once a
window (~33 ms of output) has passed it finishes that window's levels and runs one windowed
rfft of the last 1024 output samples, binned into log-spaced bands by a precomputed matrix; all
its buffers but the rfft's own output are allocated here, once. Readers on other threads (the
OSC feedback thread) see finished windows only: `sequence` counts them, and the spectrum is
written into the buffer that readers are not told about until it is complete.
"""

from __future__ import annotations

import math

import numpy as np

FLOOR_DB = -120.0


def band_matrix(*, n_fft: int, samplerate: int, bands: int = 64, fmin: float = 30.0,
                fmax: float | None = None) -> np.ndarray:
    """[bands, n_fft//2+1] weights that average power bins into log-spaced bands (mean power per
    bin, so broadband noise reads level across bands rather than rising with band width).

    A band narrower than one bin (the lowest ones) takes the bin its centre falls in, so no
    band is empty whatever the resolution.
    """
    fmax = min(fmax or samplerate / 2, samplerate / 2)
    edges = np.geomspace(fmin, fmax, bands + 1)
    freqs = np.arange(n_fft // 2 + 1) * samplerate / n_fft
    matrix = np.zeros((bands, len(freqs)), dtype=np.float64)
    for b in range(bands):
        inside = (freqs >= edges[b]) & (freqs < edges[b + 1])
        if not inside.any():
            inside[int(round(math.sqrt(edges[b] * edges[b + 1]) * n_fft / samplerate))] = True
        matrix[b, inside] = 1.0 / inside.sum()
    return matrix


class OutputMeters:
    """Levels of the engine's output, window by window (see the module docstring).

    Parameters
    ----------
    samplerate : of the output blocks.
    rate : windows a second (30: one report per UI frame at most).
    n_fft : samples in each spectrum (the last `n_fft` output samples).
    bands : spectrum bands, log-spaced from 30 Hz to Nyquist.
    """

    def __init__(self, samplerate: int, *, rate: float = 30.0, n_fft: int = 1024, bands: int = 64,
                 max_block: int = 8192):
        self.samplerate = int(samplerate)
        self.window_samples = max(1, int(round(self.samplerate / rate)))
        self.n_fft = int(n_fft)
        self._ring = np.zeros(self.n_fft, dtype=np.float64)
        self._pos = 0
        self._ordered = np.zeros(self.n_fft, dtype=np.float64)
        self._hann = np.hanning(self.n_fft + 1)[:-1]
        # |rfft|^2 of a full-scale sine through this window peaks at (sum(w)/2)^2: 0 dB there.
        self._norm = 1.0 / (self._hann.sum() / 2) ** 2
        self._matrix = band_matrix(n_fft=self.n_fft, samplerate=self.samplerate, bands=bands)
        self._power = np.zeros(self.n_fft // 2 + 1, dtype=np.float64)
        self._abs = np.zeros(max_block, dtype=np.float32)
        self._spectra = np.full((2, bands), FLOOR_DB, dtype=np.float64)
        self._front = 0
        self._count = 0
        self._peak = 0.0
        self._sumsq = 0.0
        self._levels = (FLOOR_DB, FLOOR_DB)
        self.sequence = 0
        """Finished windows so far; a reader sends when this moved since it last looked."""

    def feed(self, block: np.ndarray) -> None:
        """Engine output tap (decoder thread): copy, accumulate, finish a window when one is full."""
        n = len(block)
        if n == 0:
            return
        if n > len(self._abs):
            self._abs = np.zeros(n, dtype=np.float32)  # once, for a larger block than expected
        scratch = self._abs[:n]
        np.abs(block, out=scratch)
        self._peak = max(self._peak, float(scratch[scratch.argmax()]))  # .max() allocates a reduce buffer
        self._sumsq += float(np.dot(block, block))
        self._count += n
        self._write(block)
        if self._count >= self.window_samples:
            self._finish()

    def _write(self, block: np.ndarray) -> None:
        ring, size = self._ring, self.n_fft
        if len(block) >= size:
            ring[:] = block[-size:]
            self._pos = 0
            return
        first = min(len(block), size - self._pos)
        ring[self._pos:self._pos + first] = block[:first]
        rest = len(block) - first
        if rest:
            ring[:rest] = block[first:]
        self._pos = (self._pos + len(block)) % size

    def _finish(self) -> None:
        mean = self._sumsq / self._count
        self._levels = (20 * math.log10(self._peak) if self._peak > 1e-6 else FLOOR_DB,
                        10 * math.log10(mean) if mean > 1e-12 else FLOOR_DB)
        self._peak = self._sumsq = 0.0
        self._count = 0
        ordered, pos = self._ordered, self._pos
        ordered[:self.n_fft - pos] = self._ring[pos:]
        ordered[self.n_fft - pos:] = self._ring[:pos]
        ordered *= self._hann
        spectrum = np.fft.rfft(ordered)  # the one allocation a window (8 KB)
        np.abs(spectrum, out=self._power)
        np.square(self._power, out=self._power)
        back = self._spectra[1 - self._front]
        np.dot(self._matrix, self._power, out=back)
        back *= self._norm
        np.maximum(back, 10 ** (FLOOR_DB / 10), out=back)
        np.log10(back, out=back)
        back *= 10.0
        self._front = 1 - self._front
        self.sequence += 1

    def levels(self) -> tuple[float, float]:
        """(peak dBFS, RMS dBFS) of the last finished window."""
        return self._levels

    def spectrum(self) -> list[float]:
        """The last finished window's band levels in dB (low to high), as a new list."""
        return self._spectra[self._front].tolist()
