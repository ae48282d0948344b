"""Real-time phase-gradient heap integration (RTPGHI, Průša & Holighaus 2017) for one frame.

The phase of a new frame is integrated from the phase gradients that the log-magnitude implies
for a Gaussian-like window: along time from the previous frame's phase (tonal parts), along
frequency from the strongest bins outwards (transients). The heap visits the largest
coefficients first, so each bin takes its phase from its most reliable neighbour; within one
new frame that order reduces to a widest-path problem on a chain, which two linear sweeps solve
without a heap, far cheaper per frame than a binary heap (`livegen bench phase` times it).

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
def frame_features(mag, tol, hop, n_fft, lam, s, tg, mx):
    """Per voice: frame maximum ``mx``, log-magnitude ``s`` clamped at ``log(tol * mx)`` and the
    centre-referenced phase advance per hop ``tg`` it implies. Computed once per frame."""
    n_voices, n = mag.shape
    tstep_lin = np.float32(2.0 * math.pi * hop / n_fft)
    tstep_grad = np.float32(hop * n_fft / lam)
    for v in range(n_voices):
        m = np.float32(0.0)
        for b in range(n):
            m = max(m, mag[v, b])
        mx[v] = m
        floor = max(np.float32(tol) * m, np.float32(1e-30))
        for b in range(n):
            s[v, b] = math.log(max(mag[v, b], floor))
        for b in range(n):
            if b == 0:
                d = s[v, 1] - s[v, 0]
            elif b == n - 1:
                d = s[v, n - 1] - s[v, n - 2]
            else:
                d = np.float32(0.5) * (s[v, b + 1] - s[v, b - 1])
            tg[v, b] = tstep_lin * b + tstep_grad * d


@numba.njit(cache=True, nogil=True)
def rtpghi_frames(mag_prev, s_prev, tg_prev, mx_prev, y_prev, mag_cur, s_cur, tg_cur, mx_cur,
                  s_next, mx_next, s_prev2, mx_prev2, has_prev2, centred, has_prev, y_out,
                  hop, n_fft, lam, tol, work, src):
    """Write ``mag_cur * exp(1j * phase)`` into ``y_out`` ([voices, bins] complex64).

    ``s_*``, ``tg_*``, ``mx_*`` come from `frame_features`. y_prev is the previous frame's
    (final or iterated) spectrum; ``s_next`` is used for a centred time derivative when
    ``centred`` (look-ahead 1), else ignored: the causal derivative is then extrapolated from
    the two previous frames (``s_prev2``, when ``has_prev2``), second-order like the centred
    one: a plain backward difference is the slope half a hop back, which misplaces every
    transient by hop/2 (rms phase error ~1.8 rad on a click). ``has_prev[v]`` is
    False for a voice's first frame (no time integration). ``work`` is a [4, bins] float32
    scratch array, ``src`` [bins] int8.
    """
    n_voices, n = mag_cur.shape
    fstep = np.float32(-lam / (hop * n_fft))
    fg = work[0]
    pv = work[1]
    ct = work[2]
    left = work[3]
    right = work[4]
    ninf = np.float32(-np.inf)
    pi32 = np.float32(math.pi)
    for v in range(n_voices):
        mc = mx_cur[v]
        if mc <= 0.0:
            for b in range(n):
                y_out[v, b] = 0.0
            continue
        prev = has_prev[v]
        mall = mc
        if prev:
            mall = max(mall, mx_prev[v])
        if centred:
            mall = max(mall, mx_next[v])
        two = prev and has_prev2[v] and not centred
        if two:
            mall = max(mall, mx_prev2[v])
        floor = max(np.float32(tol) * mall, np.float32(1e-30))
        lf = np.float32(math.log(floor))
        # Time derivative of the log-magnitude (clamped to one common floor so that a quiet
        # neighbour does not fake a steep slope) gives the phase step along frequency.
        if centred and prev:
            for b in range(n):
                fg[b] = fstep * np.float32(0.5) * (max(s_next[v, b], lf) - max(s_prev[v, b], lf))
        elif centred:
            for b in range(n):
                fg[b] = fstep * (max(s_next[v, b], lf) - max(s_cur[v, b], lf))
        elif two:
            for b in range(n):
                c = max(s_cur[v, b], lf)
                p = max(s_prev[v, b], lf)
                fg[b] = fstep * (np.float32(1.5) * c - np.float32(2.0) * p + np.float32(0.5) * max(s_prev2[v, b], lf))
        elif prev:
            for b in range(n):
                fg[b] = fstep * (max(s_cur[v, b], lf) - max(s_prev[v, b], lf))
        else:
            for b in range(n):
                fg[b] = 0.0
        # A window centre is at most n_fft/2 from any event, so the step is at most pi per bin.
        # The clamp matters at onsets: the jump from a quiet frame overstates the slope, and the
        # onset frame's phase is carried on by time integration (exact for an impulse).
        for b in range(n):
            fg[b] = min(max(fg[b], -pi32), pi32)
        # Heap integration visits coefficients by decreasing log-magnitude; a bin takes its phase
        # from the first visited neighbour (same bin of the previous frame, or the adjacent bin of
        # this frame). In one frame that is a widest-path problem on a chain, solved exactly by one
        # sweep from each side: left/right[b] = the largest key at which b can be reached.
        # Insignificant previous-frame bins may still anchor an isolated region, but only after
        # every real path (the heap's restart from the largest unvisited bin).
        for b in range(n):
            sig = mag_cur[v, b] > floor
            pv[b] = s_cur[v, b] if sig else ninf  # key at which this bin passes its phase on
            if prev and mag_prev[v, b] > floor:
                ct[b] = s_prev[v, b]
            elif sig:
                ct[b] = s_cur[v, b] - np.float32(1e6)
            else:
                ct[b] = ninf
        left[0] = ct[0]
        for b in range(1, n):
            left[b] = max(ct[b], min(left[b - 1], pv[b - 1]))
        right[n - 1] = ct[n - 1]
        for b in range(n - 2, -1, -1):
            right[b] = max(ct[b], min(right[b + 1], pv[b + 1]))
        # Phases as unit phasors in librosa's frame-start convention: the centre reference adds
        # pi*b, so a step of d along frequency becomes d - pi (a sign flip) and time steps keep it.
        for b in range(n):
            m = mag_cur[v, b]
            if pv[b] == ninf:
                src[b] = 0
                y_out[v, b] = m
            elif ct[b] >= left[b] and ct[b] >= right[b]:
                src[b] = 1
                if prev:
                    yp = y_prev[v, b]
                    a = math.sqrt(yp.real * yp.real + yp.imag * yp.imag)
                    d = np.float32(0.5) * (tg_prev[v, b] + tg_cur[v, b])
                    r = complex(math.cos(d), math.sin(d))
                    if a > 1e-30:
                        y_out[v, b] = (yp * (m / a)) * r
                    else:
                        y_out[v, b] = m * r
                else:
                    y_out[v, b] = m
            elif left[b] >= right[b]:
                src[b] = 2
            else:
                src[b] = 3
        for b in range(1, n):
            if src[b] == 2:
                d = np.float32(0.5) * (fg[b - 1] + fg[b])
                yl = y_out[v, b - 1]
                a = math.sqrt(yl.real * yl.real + yl.imag * yl.imag)
                y_out[v, b] = -(yl * (mag_cur[v, b] / a)) * complex(math.cos(d), math.sin(d))
        for b in range(n - 2, -1, -1):
            if src[b] == 3:
                d = np.float32(0.5) * (fg[b + 1] + fg[b])
                yr = y_out[v, b + 1]
                a = math.sqrt(yr.real * yr.real + yr.imag * yr.imag)
                y_out[v, b] = -(yr * (mag_cur[v, b] / a)) * complex(math.cos(d), -math.sin(d))


class PghiWorkspace:
    """Scratch arrays for `rtpghi_frames`, allocated once per inverter."""

    def __init__(self, n_bins: int):
        self.work = np.zeros((5, n_bins), np.float32)
        self.src = np.zeros(n_bins, np.int8)
