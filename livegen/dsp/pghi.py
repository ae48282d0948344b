"""Real-time phase-gradient heap integration (RTPGHI, Průša & Holighaus 2017) for one frame.

The phase of a new frame is integrated from the phase gradients that the log-magnitude implies
for a Gaussian-like window: along time from the previous frame's phase (tonal parts), along
frequency from the strongest bins outwards (transients). The heap visits the largest
coefficients first, so each bin takes its phase from its most reliable neighbour; within one
new frame that order reduces to a widest-path problem on a chain, which two linear sweeps solve
without a heap (a binary heap cost ~100 µs per frame here, the sweeps a few µs).

Conventions (derived for ``exp(-pi t^2 / lam)``, lam = 0.25645 * n_fft^2 for Hann): with the
phase referenced to the window centre (librosa's frame-start phase plus pi * bin),

* time step per hop:   ``2 pi hop b / n_fft + (hop n_fft / lam) * ds/db``
* frequency step/bin:  ``-(lam / (hop n_fft)) * ds/dm``

where s is the log-magnitude clamped at ``log(tol * max)`` and m counts frames.
"""

from __future__ import annotations

import math

import numba
import numpy as np

HANN_GAMMA = 0.25645  # lam = HANN_GAMMA * n_fft**2 for the Hann window (ltfat's value)


@numba.njit(cache=True, nogil=True)
def _log_and_tgrad(mag, floor, s, tg, tstep_lin, tstep_grad):
    n = mag.shape[0]
    for b in range(n):
        s[b] = math.log(max(mag[b], floor))
    for b in range(n):
        if b == 0:
            d = s[1] - s[0]
        elif b == n - 1:
            d = s[n - 1] - s[n - 2]
        else:
            d = 0.5 * (s[b + 1] - s[b - 1])
        tg[b] = tstep_lin * b + tstep_grad * d


@numba.njit(cache=True, nogil=True)
def rtpghi_frames(mag_prev, y_prev, mag_cur, mag_next, centred, has_prev, y_out,
                  hop, n_fft, lam, tol, work, src):
    """Write ``mag_cur * exp(1j * phase)`` into ``y_out`` ([voices, bins] complex64).

    mag_prev/y_prev: the previous frame's magnitudes and (final or iterated) spectrum;
    mag_next: the following frame's magnitudes, used for a centred time derivative when
    ``centred`` (look-ahead 1), else ignored (causal backward difference). ``has_prev[v]`` is
    False for a voice's first frame (no time integration). ``work`` is a [11, bins] float64
    scratch array, ``src`` [bins] int8.
    """
    n_voices, n = mag_cur.shape
    tstep_lin = 2.0 * math.pi * hop / n_fft
    tstep_grad = hop * n_fft / lam
    fstep = -lam / (hop * n_fft)
    s_p = work[0]
    s_c = work[1]
    s_n = work[2]
    tg_p = work[3]
    tg_c = work[4]
    fg = work[5]
    phase = work[6]
    pv = work[7]
    ct = work[8]
    left = work[9]
    right = work[10]
    for v in range(n_voices):
        mx = 0.0
        for b in range(n):
            mx = max(mx, mag_cur[v, b])
        if mx <= 0.0:
            for b in range(n):
                y_out[v, b] = 0.0
            continue
        prev = has_prev[v]
        if prev:
            for b in range(n):
                mx = max(mx, mag_prev[v, b])
        if centred:
            for b in range(n):
                mx = max(mx, mag_next[v, b])
        floor = max(tol * mx, 1e-30)
        _log_and_tgrad(mag_cur[v], floor, s_c, tg_c, tstep_lin, tstep_grad)
        if prev:
            _log_and_tgrad(mag_prev[v], floor, s_p, tg_p, tstep_lin, tstep_grad)
        if centred:
            for b in range(n):
                s_n[b] = math.log(max(mag_next[v, b], floor))
            if prev:
                for b in range(n):
                    fg[b] = fstep * 0.5 * (s_n[b] - s_p[b])
            else:
                for b in range(n):
                    fg[b] = fstep * (s_n[b] - s_c[b])
        elif prev:
            for b in range(n):
                fg[b] = fstep * (s_c[b] - s_p[b])
        else:
            for b in range(n):
                fg[b] = 0.0

        # Heap integration visits coefficients by decreasing log-magnitude; a bin takes its phase
        # from the first visited neighbour (same bin of the previous frame, or the adjacent bin of
        # this frame). In one frame that is a widest-path problem on a chain, solved exactly by one
        # sweep from each side: best[b] = the largest key at which b can be reached.
        # Keys of previous-frame bins; insignificant ones may still anchor an isolated region, but
        # only after every real path (the heap's restart from the largest unvisited bin).
        for b in range(n):
            sig = mag_cur[v, b] > floor
            pv[b] = s_c[b] if sig else -np.inf  # key at which this bin passes its phase on
            if prev and mag_prev[v, b] > floor:
                ct[b] = s_p[b]
            else:
                ct[b] = s_c[b] - 1e6 if sig else -np.inf
        left[0] = ct[0]
        for b in range(1, n):
            left[b] = max(ct[b], min(left[b - 1], pv[b - 1]))
        right[n - 1] = ct[n - 1]
        for b in range(n - 2, -1, -1):
            right[b] = max(ct[b], min(right[b + 1], pv[b + 1]))
        for b in range(n):
            phase[b] = 0.0
            if pv[b] == -np.inf:
                src[b] = 0  # insignificant: phase 0
            elif ct[b] >= left[b] and ct[b] >= right[b]:
                src[b] = 1  # from the previous frame
                if prev:
                    pp = math.atan2(y_prev[v, b].imag, y_prev[v, b].real) + math.pi * b
                    phase[b] = pp + 0.5 * (tg_p[b] + tg_c[b])
            elif left[b] >= right[b]:
                src[b] = 2  # from the lower neighbour
            else:
                src[b] = 3  # from the upper neighbour
        for b in range(1, n):
            if src[b] == 2:
                phase[b] = phase[b - 1] + 0.5 * (fg[b - 1] + fg[b])
        for b in range(n - 2, -1, -1):
            if src[b] == 3:
                phase[b] = phase[b + 1] - 0.5 * (fg[b + 1] + fg[b])
        for b in range(n):
            p = phase[b] - math.pi * b
            y_out[v, b] = mag_cur[v, b] * complex(math.cos(p), math.sin(p))


class PghiWorkspace:
    """Scratch arrays for `rtpghi_frames`, allocated once per inverter."""

    def __init__(self, n_bins: int):
        self.work = np.zeros((11, n_bins), np.float64)
        self.src = np.zeros(n_bins, np.int8)
