"""A streaming f0 / voicing / level tracker that runs once per hop inside the audio callback.

YIN (de Cheveigné & Kawahara 2002) over a sliding window of the latest input: the difference
function over the latest `window - max_lag` samples against each lag, its cumulative-mean
normalisation, the first trough under `threshold` (else the global minimum), parabolic
refinement. The cross term comes from two real FFTs and one inverse into preallocated buffers
(`livegen.dsp.kernels`' pocketfft calls), the rest is numba: a hop allocates nothing and takes no lock.
The integration runs over the newest samples, so a note is heard as soon as about one period
plus the lag has arrived, not when it reaches the middle of the window.

Deterministic: the same samples pushed in the same hops give the same figures.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.fft

from livegen.dsp.kernels import irfft_into, rfft_into
from livegen.errors import ParameterError

FMIN = 50.0
FMAX = 1600.0
THRESHOLD = 0.15
"""YIN's absolute threshold on the normalised difference: the first trough under it is the period."""
MULTIPLE_RATIO = 0.6
"""A dip at a multiple of the chosen lag replaces it when this much deeper."""
HINT_SPAN = 0.2
HINT_MARGIN = 0.2
CONFIDENT = 0.85
HINT_ANALYSES = 10
"""Continuity: a dip within `HINT_SPAN` of the last period read with periodicity >= `CONFIDENT`
(in the last `HINT_ANALYSES` analyses) wins over a deeper one elsewhere unless that one is
`HINT_MARGIN` deeper (a vowel's changing formants dip at a fraction of the period)."""
SPAN_SECONDS = 0.012
"""The difference function sums over the newest this long (at least half the longest period):
shorter follows a moving pitch sooner, longer is steadier."""
SHORT_SECONDS = 0.008
"""The short level window (onsets open the gate within it)."""
FLOOR_DB = -120.0
F0, PERIODICITY, LEVEL_DB, SHORT_DB, HOP_DB, PEAK = range(6)
"""Indices of `PitchTracker.state`."""


def _window_for(samplerate: int, fmin: float) -> int:
    """A power of two holding twice the longest period (44 ms at 24 kHz for 50 Hz)."""
    return 1 << int(math.ceil(math.log2(2.0 * samplerate / fmin)))


class PitchTracker:
    """Per-hop f0, periodicity and level of a mono signal (float samples at `samplerate`).

    After each `push`: `f0` (Hz of the best period, also when aperiodic), `periodicity`
    (1 - the normalised difference at that period: near 1 for a clean tone, under ~0.6 for
    breath and noise), `level_db` (RMS dBFS of the window), `short_db` (of the last
    `SHORT_SECONDS`), `hop_db` and `peak` (RMS dBFS and largest |sample| of the hop pushed).
    They live in `state` (indices `F0` ... `PEAK`), which a per-hop kernel reads without a
    Python call; `push_levels` is `push` without the pitch for such a kernel (on `buffer`).
    `window`: keep at least this many samples (a caller's STFT frame, read with `recent`).
    """

    def __init__(self, *, samplerate: int, fmin: float = FMIN, fmax: float = FMAX, threshold: float = THRESHOLD,
                 window: int = 0):
        if not 0 < fmin < fmax < samplerate / 2:
            raise ParameterError(f"pitch range {fmin}-{fmax} Hz: give 0 < fmin < fmax < {samplerate / 2:g} Hz")
        self.samplerate = int(samplerate)
        self.window = max(_window_for(self.samplerate, fmin), int(window))
        self.max_lag = min(int(math.ceil(self.samplerate / fmin)), self.window // 2)
        self.min_lag = max(2, int(math.floor(self.samplerate / fmax)))
        self.span = min(self.window - self.max_lag, max(int(SPAN_SECONDS * self.samplerate), self.max_lag // 2))
        self.threshold = float(threshold)
        self.short = max(1, int(round(SHORT_SECONDS * self.samplerate)))
        self.buffer = np.zeros(self.window)
        """The window's samples, oldest first."""
        # The analysis needs the newest span + max_lag samples; circular correlation over that
        # many (rounded to a fast FFT size) does not wrap.
        n = min(int(scipy.fft.next_fast_len(self.span + self.max_lag, real=True)), self.window)
        self.analysed = n
        self._tail = self.buffer[self.window - n:]
        # [the analysed samples, their newest `span` after zeros]: one FFT call transforms both
        # (pocketfft runs the two rows side by side, the same arithmetic as one at a time)
        self._rows = np.zeros((2, n))
        self._spec = np.zeros((2, n // 2 + 1), np.complex128)
        self._spec_x, self._spec_a = self._spec
        self._cross = np.zeros(n)
        self._cum = np.zeros(n + 1)
        self._d = np.zeros(self.max_lag + 2)
        self._out = np.zeros(2)
        self._hint = 0.0
        self._since_confident = HINT_ANALYSES
        self.state = np.array([0.0, 0.0, FLOOR_DB, FLOOR_DB, FLOOR_DB, 0.0])

    f0 = property(lambda self: float(self.state[F0]))
    periodicity = property(lambda self: float(self.state[PERIODICITY]))
    level_db = property(lambda self: float(self.state[LEVEL_DB]))
    short_db = property(lambda self: float(self.state[SHORT_DB]))
    hop_db = property(lambda self: float(self.state[HOP_DB]))
    peak = property(lambda self: float(self.state[PEAK]))

    def recent(self, n: int) -> np.ndarray:
        """A view of the newest `n` samples pushed (at most `window`; overwritten by the next push)."""
        return self.buffer[self.window - n:]

    def push(self, samples: np.ndarray, *, pitch: bool = True) -> None:
        """Take the next samples (at most `window`) and update the levels, and with `pitch` the
        pitch (`analyse`; without, `f0` and `periodicity` stay as they were)."""
        push_levels(self.buffer, samples, self.short, self.state)
        if pitch:
            self.analyse()

    def analyse(self) -> None:
        """Update `f0` and `periodicity` from the window as it is (the costly part of a hop)."""
        x = self._rows[0]
        _stage(self._tail, self.span, self._rows)
        rfft_into(self._rows, self._spec)
        _times_conjugate(self._spec_a, self._spec_x)
        irfft_into(self._spec_a, self._cross)  # cross[tau] = sum_k a_k x_{k - tau}
        out = self._out
        hint = self._hint if self._since_confident < HINT_ANALYSES else 0.0
        _yin(x, self._cross, self._cum, self._d, self.min_lag, self.max_lag, self.span, self.threshold, hint, out)
        period, periodicity = out[0], out[1]
        self.state[F0] = self.samplerate / period if period > 0 else 0.0
        self.state[PERIODICITY] = periodicity
        self._since_confident += 1
        if periodicity >= CONFIDENT:
            self._hint = period
            self._since_confident = 0


@numba.njit(cache=True, nogil=True)
def _stage(tail, span, rows):
    """rows[0] = tail, rows[1] = its newest `span` samples (the rest of the row stays 0)."""
    n = tail.shape[0]
    for i in range(n):
        rows[0, i] = tail[i]
    for i in range(n - span, n):
        rows[1, i] = tail[i]


@numba.njit(cache=True, nogil=True)
def _times_conjugate(a, b):
    for i in range(len(a)):
        a[i] = a[i] * b[i].conjugate()


@numba.njit(cache=True, nogil=True)
def _yin(x, cross, cum, d, min_lag, max_lag, span, threshold, hint, out):
    """YIN on window `x` with `cross[tau]` = sum over the newest `span` samples of x_k x_{k-tau}:
    out[0] = period in samples (fractional; 0: none), out[1] = periodicity. `hint` (> 0): the
    last confident period, whose neighbourhood wins unless clearly worse."""
    n = x.shape[0]
    cum[0] = 0.0
    for i in range(n):
        cum[i + 1] = cum[i] + x[i] * x[i]
    e_new = cum[n] - cum[n - span]
    d[0] = 1.0
    running = 0.0
    best = -1
    best_val = 1e30
    chosen = -1
    for tau in range(1, max_lag + 1):
        e_old = cum[n - tau] - cum[n - span - tau]
        diff = max(e_new + e_old - 2.0 * cross[tau], 0.0)
        running += diff
        val = diff * tau / running if running > 1e-20 else 1.0
        d[tau] = val
        prev = d[tau - 1]
        if tau - 1 >= min_lag:
            if chosen < 0 and prev < threshold and prev <= val and prev <= d[tau - 2]:
                chosen = tau - 1
            if prev < best_val:
                best_val = prev
                best = tau - 1
    if chosen < 0:
        chosen = best
    # A dip at a multiple of the chosen lag that is clearly deeper is the true period (a strong
    # formant can dip under the threshold at a fraction of it: speech read 2-3 octaves up).
    if chosen > 0 and d[chosen] > 0.02:
        k = 2
        while k * chosen + 2 <= max_lag:
            m = k * chosen
            for j in range(m - 2, m + 3):
                if d[j] < d[m]:
                    m = j
            if d[m] < MULTIPLE_RATIO * d[chosen] and d[m] <= d[m - 1] and d[m] <= d[m + 1]:
                chosen = m
                break
            k += 1
    if chosen > 0 and hint > 0 and abs(chosen - hint) > HINT_SPAN * hint:
        lo = max(int(hint / (1.0 + HINT_SPAN)), min_lag)
        hi = min(int(hint * (1.0 + HINT_SPAN)) + 1, max_lag - 1)
        near = -1
        for j in range(lo, hi + 1):
            if d[j] <= d[j - 1] and d[j] <= d[j + 1] and (near < 0 or d[j] < d[near]):
                near = j
        # A multiple of a clean period is as deep a dip: only the multiple rule's test (above) makes
        # it the period, else a glitch that once read a subharmonic would hold it for good.
        ratio = near / chosen if near > 0 else 0.0
        multiple = ratio > 1.5 and abs(ratio - round(ratio)) < 0.1
        if near > 0 and (d[near] < MULTIPLE_RATIO * d[chosen] and d[chosen] > 0.02 if multiple
                         else d[near] < d[chosen] + HINT_MARGIN):
            chosen = near
    period = 0.0
    periodicity = 0.0
    if chosen > 0 and e_new > 1e-12:
        t = chosen
        shift = 0.0
        if 1 <= t < max_lag:
            a = d[t - 1]
            b = d[t]
            c = d[t + 1]
            den = a - 2.0 * b + c
            if den > 1e-12:
                shift = min(max(0.5 * (a - c) / den, -0.5), 0.5)
        period = t + shift
        periodicity = 1.0 - min(max(d[t], 0.0), 1.0)
    out[0] = period
    out[1] = periodicity


@numba.njit(cache=True, nogil=True)
def push_levels(x, samples, short, state):
    """Shift `samples` into the end of window `x` and write its levels into `state`
    (`PitchTracker.state`: `LEVEL_DB`, `SHORT_DB`, `HOP_DB`, `PEAK`)."""
    n = x.shape[0]
    h = samples.shape[0]
    for i in range(n - h):
        x[i] = x[i + h]
    for i in range(h):
        x[n - h + i] = samples[i]
    total = 0.0
    recent = 0.0
    newest = 0.0
    peak = 0.0
    for i in range(n):
        e = x[i] * x[i]
        total += e
        if i >= n - short:
            recent += e
        if i >= n - h:
            newest += e
            peak = max(peak, abs(x[i]))
    state[LEVEL_DB] = _db(total / n)
    state[SHORT_DB] = _db(recent / short)
    state[HOP_DB] = _db(newest / h)
    state[PEAK] = peak


@numba.njit(cache=True, nogil=True)
def _db(ms):
    return 10.0 * math.log10(ms) if ms > 1e-12 else FLOOR_DB
