"""Compiled inner loops and allocation-free FFTs for the streaming inverter.

A hop's work is a handful of tiny array operations per iteration; as separate numpy calls
their call overhead costs more than the arithmetic, so each group of them is
one numba kernel. FFTs go to pocketfft with preallocated outputs (scipy's private binding when
present, which accepts ``out=``; numpy's ``out=`` otherwise).
"""

from __future__ import annotations

import math

import numba
import numpy as np

try:  # scipy's pocketfft binding: batched, float32-native, writes into `out`, ~10 µs less per call
    from scipy.fft._pocketfft import pypocketfft as _pf

    _pf.r2c(np.zeros((1, 16), np.float32), (1,), True, 0, np.zeros((1, 9), np.complex64), 1)
except Exception:  # pragma: no cover - depends on the scipy build
    _pf = None


def rfft_into(x: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = rfft(x, axis=-1)`` without allocating (x float32 contiguous)."""
    if _pf is not None:
        _pf.r2c(x, (x.ndim - 1,), True, 0, out, 1)
    else:
        np.fft.rfft(x, axis=-1, out=out)


def irfft_into(X: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = irfft(X, n=out.shape[-1], axis=-1)`` without allocating."""
    n = out.shape[-1]
    if _pf is not None:
        _pf.c2r(X, (X.ndim - 1,), n, False, 2, out, 1)
    else:
        np.fft.irfft(X, n=n, axis=-1, out=out)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _project_rows(x, t, mags, y, beta):
    # x, t, y: [rows, 2*bins] float32 (interleaved re/im); mags [rows, bins]
    R, B = mags.shape
    for r in range(R):
        for b in range(B):
            xr = x[r, 2 * b]
            xi = x[r, 2 * b + 1]
            ar = xr - beta * t[r, 2 * b]
            ai = xi - beta * t[r, 2 * b + 1]
            t[r, 2 * b] = xr
            t[r, 2 * b + 1] = xi
            n2 = ar * ar + ai * ai
            if n2 > 1e-38:
                g = mags[r, b] / math.sqrt(n2)
                y[r, 2 * b] = ar * g
                y[r, 2 * b + 1] = ai * g
            else:
                y[r, 2 * b] = mags[r, b]
                y[r, 2 * b + 1] = 0.0


def interleaved(a: np.ndarray) -> np.ndarray:
    """[..., bins] complex64 (contiguous) as a [rows, 2*bins] float32 view for `project_rows`."""
    return a.view(np.float32).reshape(-1, 2 * a.shape[-1])


project_rows = _project_rows


def project(X, tprev, mags, Y, beta):
    """Keep the magnitudes, take the phase of ``X - beta * tprev`` (fast GL); tprev <- X.

    All arrays [..., bins] and contiguous. A zero estimate gives phase 0 rather than a zero
    frame, so silence cannot lock a frame. (Hot loops call `project_rows` on views made once.)
    """
    B = mags.shape[-1]
    _project_rows(interleaved(X), interleaved(tprev), mags.reshape(-1, B), interleaved(Y), np.float32(beta))


@numba.njit(cache=True, nogil=True, fastmath=True)
def window_into(yraw, w, ysyn):
    """``ysyn = yraw * w`` over [voices, frames, n_fft]."""
    V, K, N = yraw.shape
    for v in range(V):
        for k in range(K):
            for n in range(N):
                ysyn[v, k, n] = yraw[v, k, n] * w[n]


@numba.njit(cache=True, nogil=True, fastmath=True)
def analysis_frames(ysyn, upto, acc_c, hop, winv, acc_t, frames):
    """Overlap-add the first ``upto`` synthesis frames onto the committed part, then cut the
    analysis frames, each multiplied by window / window-square-sum (``winv``)."""
    V, K, N = ysyn.shape
    L = acc_c.shape[1]
    for v in range(V):
        for i in range(L):
            acc_t[v, i] = acc_c[v, i]
        for k in range(upto):
            o = k * hop
            for n in range(N):
                acc_t[v, o + n] += ysyn[v, k, n]
        for k in range(K):
            o = k * hop
            for n in range(N):
                frames[v, k, n] = acc_t[v, o + n] * winv[v, k, n]


@numba.njit(cache=True, nogil=True)
def advance(mags, Y, ysyn, tprev, logs, tg, mx, prev_mag, prev_Y, prev_logs, prev_tg, prev_mx,
            prev2_logs, prev2_mx, acc_c, wss, hop):
    """Slide every voice's window by one hop; slot 0 becomes the previous (committed) frame."""
    V, K, B = mags.shape
    N = ysyn.shape[2]
    L = acc_c.shape[1]
    for v in range(V):
        prev2_mx[v] = prev_mx[v]
        prev_mx[v] = mx[v, 0]
        for b in range(B):
            prev2_logs[v, b] = prev_logs[v, b]
            prev_mag[v, b] = mags[v, 0, b]
            prev_Y[v, b] = Y[v, 0, b]
            prev_logs[v, b] = logs[v, 0, b]
            prev_tg[v, b] = tg[v, 0, b]
        for k in range(K - 1):
            mx[v, k] = mx[v, k + 1]
            for b in range(B):
                mags[v, k, b] = mags[v, k + 1, b]
                Y[v, k, b] = Y[v, k + 1, b]
                tprev[v, k, b] = tprev[v, k + 1, b]
                logs[v, k, b] = logs[v, k + 1, b]
                tg[v, k, b] = tg[v, k + 1, b]
            for n in range(N):
                ysyn[v, k, n] = ysyn[v, k + 1, n]
        mx[v, K - 1] = 0.0
        for b in range(B):
            mags[v, K - 1, b] = 0.0
            Y[v, K - 1, b] = 0.0
            tprev[v, K - 1, b] = 0.0
        for n in range(N):
            ysyn[v, K - 1, n] = 0.0
        for i in range(L - hop):
            acc_c[v, i] = acc_c[v, i + hop]
            wss[v, i] = wss[v, i + hop]
        for i in range(L - hop, L):
            acc_c[v, i] = 0.0
            wss[v, i] = 0.0


@numba.njit(cache=True, nogil=True)
def accept(slot, w2, wss, floor, w, winv, hop, steady, winv_steady):
    """Add a new frame's window square to the sums and refresh ``winv = w / max(wss, floor)``
    (a copy of the precomputed full-overlap ``winv_steady`` for voices flagged ``steady``).

    Returns the number of NaN/Inf/negative magnitudes in ``slot`` (replaced by 0) and clamps
    absurdly large ones so no sum can overflow.
    """
    V, B = slot.shape
    K, N = winv.shape[1], winv.shape[2]
    L = wss.shape[1]
    bad = 0
    for v in range(V):
        for b in range(B):
            s = slot[v, b]
            if not (s >= 0.0 and s <= 1e15):
                if s > 1e15 and s < np.inf:
                    slot[v, b] = 1e15
                else:
                    slot[v, b] = 0.0
                    bad += 1
        if w2.shape[0]:
            for n in range(N):
                wss[v, L - N + n] += w2[n]
        if steady[v]:
            for k in range(K):
                for n in range(N):
                    winv[v, k, n] = winv_steady[k, n]
        else:
            for k in range(K):
                o = k * hop
                for n in range(N):
                    winv[v, k, n] = w[n] / max(wss[v, o + n], floor)
    return bad


@numba.njit(cache=True, nogil=True)
def commit(acc_c, ysyn0, wss, floor, out, tail):
    """Add the oldest frame to the committed sum and write its first hop (or, with ``tail``, the
    whole ``out.shape[1]`` samples from the start) divided by the floored window-square sum."""
    V, N = ysyn0.shape
    H = out.shape[1]
    for v in range(V):
        if not tail:
            for n in range(N):
                acc_c[v, n] += ysyn0[v, n]
        for i in range(H):
            out[v, i] = acc_c[v, i] / max(wss[v, i], floor)


@numba.njit(cache=True, nogil=True)
def clean_onset(onset, steady):
    """Zero the onset of voices not yet steady and any non-finite or negative bin; True if any
    voice keeps a non-zero onset."""
    V, B = onset.shape
    any_left = False
    for v in range(V):
        for b in range(B):
            m = onset[v, b]
            if not steady[v] or not (m > 0.0 and m <= 1e15):
                onset[v, b] = 0.0
            else:
                any_left = True
    return any_left


@numba.njit(cache=True, nogil=True)
def add_onset(mags, onset, replace, first):
    """Add the onset to (or with `replace`, write it over) every look-ahead slot from `first` on
    older than the newest (which already holds it)."""
    V, K, B = mags.shape
    for v in range(V):
        for k in range(first, K - 1):
            for b in range(B):
                if replace:
                    mags[v, k, b] = onset[v, b]
                else:
                    mags[v, k, b] += onset[v, b]


@numba.njit(cache=True, nogil=True)
def fade_committed(acc_c, fade, mx):
    """Fade out what the committed frames still owe (voices with an onset, ``mx > 0``): the
    complement of `fade` over its length, nothing after."""
    V, L = acc_c.shape
    F = fade.shape[0]
    for v in range(V):
        if mx[v] <= 0.0:
            continue
        for i in range(L):
            acc_c[v, i] = acc_c[v, i] * (1.0 - fade[i]) if i < F else 0.0


@numba.njit(cache=True, nogil=True, fastmath=True)
def preroll_spectra(Y0, onset, tg, out):
    """out[v, j-1] = onset * exp(i (angle(Y0) - j tg)) for j = 1..J: the onset's frames j hops
    before slot 0, its phase turned back by its phase advance per hop."""
    V, J, B = out.shape
    for v in range(V):
        for b in range(B):
            m = onset[v, b]
            if m <= 0.0:
                for j in range(J):
                    out[v, j, b] = 0.0
                continue
            y = Y0[v, b]
            phase = math.atan2(y.imag, y.real)
            for j in range(J):
                p = phase - (j + 1) * tg[v, b]
                out[v, j, b] = complex(m * math.cos(p), m * math.sin(p))


@numba.njit(cache=True, nogil=True, fastmath=True)
def preroll_add(frames, w, fade, hop, acc_c):
    """Window the pre-rolled frames and add what is left of them (from slot 0's start on) to the
    committed sum, the first ``len(fade)`` samples faded in."""
    V, J, N = frames.shape
    F = fade.shape[0]
    for v in range(V):
        for j in range(J):
            start = (j + 1) * hop  # frame j + 1 hops before slot 0: its samples from here on are still owed
            for n in range(start, N):
                i = n - start
                x = frames[v, j, n] * w[n]
                if i < F:
                    x *= fade[i]
                acc_c[v, i] += x


@numba.njit(cache=True, nogil=True)
def centre_tap(ysyn, newest, hist, w2, rise, quick, fast, since, out):
    """``out``: one hop read half a window into the frame before look-ahead slot `newest` (1: the
    uncommitted frame after the one committed now; 0: the one committed now): slot `newest`
    fading in over the hop (`rise`) a hop before its centre, then at full weight the ``since[v]``
    frames before it that may be read (slot 0 when `newest` is 1, then `hist`, newest first),
    divided by the window squares they carry. Voices flagged `fast` (an onset or a cut) crossfade
    over `quick` from that to slot `newest` alone and start counting `since` again; then slot 0
    is pushed into `hist`."""
    V, K, N = ysyn.shape
    J = hist.shape[1]
    H = out.shape[1]
    c = N // 2
    for v in range(V):
        s = since[v]
        for i in range(H):
            num = rise[i] * ysyn[v, newest, c - H + i]
            den = rise[i] * w2[c - H + i]
            for j in range(min(s, J + newest)):
                n = c + j * H + i
                if newest == 1 and j == 0:
                    num += ysyn[v, 0, n]
                else:
                    num += hist[v, j - newest, n]
                den += w2[n]
            y = num / den if den > 0.0 else 0.0
            if fast[v]:
                q = quick[i]
                y = (1.0 - q) * y + q * ysyn[v, newest, c - H + i] / w2[c - H + i]
            out[v, i] = y
        since[v] = 1 if fast[v] else min(s + 1, J + newest)
        for j in range(J - 1, 0, -1):
            for n in range(N):
                hist[v, j, n] = hist[v, j - 1, n]
        if J > 0:
            for n in range(N):
                hist[v, 0, n] = ysyn[v, 0, n]
