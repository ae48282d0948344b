"""STFT framing shared by the model, the inverter and the benchmarks.

One convention everywhere: periodic Hann window (librosa's ``get_window('hann', n_fft)``),
``center=False`` framing (frame m covers samples ``[m*hop, m*hop + n_fft)``) and librosa's
scale (``abs(rfft(window * frame))``), so magnitudes computed here, by the model and by
``librosa.stft(..., center=False)`` agree.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from livegen.errors import ParameterError

MAX_N_FFT = 65536
MAX_OVERLAP_SAMPLES = 64 * MAX_N_FFT
"""Bound of `check_stft` on ``(n_fft // hop) * n_fft``: the inverter keeps an onset pre-roll of
``n_fft // hop - 1`` frames per voice (each frame's samples and bins), so the memory grows with
overlap times frame size, not with either alone; this bound keeps a fine hop at a small n_fft
(4096/32, 1024/8) while refusing one at a large n_fft that would fill the memory."""


def check_stft(n_fft, hop) -> tuple[int, int]:
    """Validate an STFT geometry the streaming inverter can run, return it as ints.

    The inverter slides by whole hops over a window of ``n_fft // hop`` overlapping frames, so
    the hop must divide ``n_fft`` and leave at least 50 % overlap.
    """
    if (isinstance(n_fft, bool) or not isinstance(n_fft, (int, np.integer)) or n_fft < 16 or n_fft % 2
            or n_fft > MAX_N_FFT):
        raise ParameterError(f"n_fft={n_fft!r} is not usable: give an even integer in 16..{MAX_N_FFT} (e.g. 1024)")
    if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)) or hop < 1:
        raise ParameterError(f"hop={hop!r} is not usable: give a positive integer (e.g. n_fft // 4)")
    if n_fft % hop or n_fft // hop < 2:
        raise ParameterError(
            f"hop={hop} does not suit n_fft={n_fft}: the hop must divide n_fft with at least 50 % "
            f"overlap; use n_fft // 4 = {n_fft // 4} (75 %) or n_fft // 8 = {n_fft // 8} (87.5 %)"
        )
    if (n_fft // hop) * n_fft > MAX_OVERLAP_SAMPLES:
        finest = next(h for h in range(-(-n_fft * n_fft // MAX_OVERLAP_SAMPLES), n_fft) if n_fft % h == 0)
        raise ParameterError(
            f"hop={hop} does not suit n_fft={n_fft}: {n_fft // hop} overlapping frames of {n_fft} samples would "
            f"fill the memory (overlap times n_fft at most {MAX_OVERLAP_SAMPLES}); use a hop of {finest} or more"
        )
    return int(n_fft), int(hop)


@functools.lru_cache(maxsize=16)
def hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window, float32, read-only (identical to ``scipy.signal.get_window('hann', n)``)."""
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    w.flags.writeable = False
    return w


HANN_MEAN_SQUARE = 0.375
"""The periodic Hann window's mean square (3/8)."""


@numba.njit(cache=True, nogil=True)
def add_bin_energy(energy, e, i, n):
    """`energy` plus `e`, the power of bin `i` of an `n`-bin rfft frame, counted for the whole
    spectrum (Parseval): the DC and Nyquist bins once, every other bin twice."""
    return energy + e if i == 0 or i == n - 1 else energy + 2.0 * e


@numba.njit(cache=True, nogil=True)
def frame_mean_square(energy, n_fft):
    """Mean square of the signal whose periodic-Hann frame has whole-spectrum `energy`
    (`add_bin_energy`): Parseval's 1 / n_fft^2, divided by the window's mean square."""
    return energy / (n_fft * n_fft * HANN_MEAN_SQUARE)


def frames_for(n_samples: int, *, n_fft: int, hop: int) -> int:
    """Number of ``center=False`` frames that cover ``n_samples`` (the last one zero-padded)."""
    if n_samples <= n_fft:
        return 1
    return -(-(n_samples - n_fft) // hop) + 1


def stft_magnitude(y, *, n_fft: int, hop: int) -> np.ndarray:
    """Magnitude STFT ``[frames, n_fft//2+1]`` float32 of a 1-D signal, ``center=False``.

    Frames that do not fit are dropped (as librosa does): a signal of length L gives
    ``1 + (L - n_fft) // hop`` frames. Pad beforehand (see `frames_for`) to cover every sample.
    """
    n_fft, hop = check_stft(n_fft, hop)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ParameterError(f"stft_magnitude wants a 1-D signal, got shape {y.shape}: pass one channel")
    if y.shape[0] < n_fft:
        raise ParameterError(
            f"signal of {y.shape[0]} samples is shorter than n_fft={n_fft}: pad it or use a smaller n_fft"
        )
    import scipy.fft

    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float32, copy=False), n_fft)[::hop]
    return np.abs(scipy.fft.rfft(frames * hann(n_fft), axis=-1)).astype(np.float32, copy=False)


def spectral_convergence(y, magnitudes, *, n_fft: int, hop: int) -> float:
    """Spectral convergence in dB, ``20*log10(||abs(STFT(y)) - S||_F / ||S||_F)``; lower is better.

    ``y`` may be longer than the frames of ``magnitudes`` cover (e.g. a resynthesis padded to
    the input length): only the first ``len(magnitudes)`` frames are compared.
    """
    S = np.asarray(magnitudes, dtype=np.float64)
    if S.ndim != 2 or S.shape[1] != n_fft // 2 + 1:
        raise ParameterError(
            f"magnitudes of shape {S.shape} do not match n_fft={n_fft}: want [frames, {n_fft // 2 + 1}]"
        )
    A = stft_magnitude(y, n_fft=n_fft, hop=hop).astype(np.float64)
    if A.shape[0] < S.shape[0]:
        raise ParameterError(
            f"signal gives {A.shape[0]} frames but the spectrogram has {S.shape[0]}: the signal is too short"
        )
    A = A[: S.shape[0]]
    ref = np.linalg.norm(S)
    if ref == 0.0:
        raise ParameterError("the reference spectrogram is all zero: spectral convergence is undefined")
    return float(20.0 * np.log10(max(np.linalg.norm(A - S), 1e-300) / ref))
