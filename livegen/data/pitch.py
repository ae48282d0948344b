"""Per-frame f0, voicing and loudness of recordings, for training on any folder of audio.

The tracker is librosa's pYIN (probabilistic YIN with HMM voicing) for voicing and the pitch
path, refined by YIN: nothing is downloaded at run time. It was chosen by measurement against YIN and CREPE-tiny on this project's own renders
(`scripts/measure_trackers.py`; figures in docs/own-sound.md). Tracking runs at 16 kHz with a
10 ms hop and is read at each model frame's centre.
"""

from __future__ import annotations

TRACK_RATE = 16000
TRACK_HOP = 160
FMIN = 40.0
FMAX = 1600.0
TRACKERS = ("pyin", "yin", "crepe")
TRACKER_VERSION = 2  # 2: pYIN on a quarter-semitone grid, refined by YIN


def track_f0(y: np.ndarray, *, sr: int, hop: int, method: str = "pyin"):
    """(f0 Hz [frames] with 0 where unvoiced, voiced bool [frames], voiced probability [frames]).

    Frame m is centred on sample m*hop (librosa's `center=True` convention).
    """
    import numpy as np

    import librosa

    y = np.ascontiguousarray(y, dtype=np.float32)
    if method == "pyin":
        # pYIN on a quarter-semitone grid (5x faster than its default tenth: its HMM grows with the
        # grid) gives voicing and an octave-safe path; YIN's continuous estimate refines the pitch
        # wherever it agrees with that path within 50 cents.
        f0, voiced, prob = librosa.pyin(y, fmin=FMIN, fmax=FMAX, sr=sr, frame_length=1024, hop_length=hop,
                                        center=True, resolution=0.25)
        fine = librosa.yin(y, fmin=FMIN, fmax=FMAX, sr=sr, frame_length=1024, hop_length=hop, center=True)[:f0.size]
        coarse = np.nan_to_num(f0)
        with np.errstate(divide="ignore", invalid="ignore"):
            agree = np.abs(1200 * np.log2(np.maximum(fine, 1e-6) / np.maximum(coarse, 1e-6))) < 50
        f0 = np.where(voiced, np.where(agree, fine, coarse), 0.0)
        return f0, voiced.astype(bool), np.nan_to_num(prob)
    if method == "yin":
        f0 = librosa.yin(y, fmin=FMIN, fmax=FMAX, sr=sr, frame_length=1024, hop_length=hop, center=True)
        rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=hop, center=True)[0][:f0.size]
        voiced = rms > max(float(rms.max()), 1e-9) * 10 ** (-30 / 20)
        return np.where(voiced, f0, 0.0), voiced, voiced.astype(np.float32)
    if method == "crepe":
        import torch

        torchcrepe = import_torchcrepe()
        f0, per = torchcrepe.predict(torch.from_numpy(y)[None], sr, hop_length=hop, fmin=FMIN, fmax=FMAX,
                                     model="tiny", return_periodicity=True, batch_size=512, device="cpu",
                                     decoder=torchcrepe.decode.weighted_argmax)
        f0, per = f0[0].numpy(), per[0].numpy()
        voiced = per > 0.5
        return np.where(voiced, f0, 0.0), voiced, per
    raise ValueError(f"tracker {method!r}: use one of {', '.join(TRACKERS)}")


def frame_pitch(y: np.ndarray, *, sample_rate: int, n_fft: int, hop: int, n_frames: int, method: str = "pyin"):
    """float32 ``[n_frames, 3]``: f0 in Hz (0 unvoiced), voiced probability, loudness in dBFS, for
    the model's frames (frame m covers samples ``[m*hop, m*hop + n_fft)``)."""
    import numpy as np

    import soxr

    low = soxr.resample(y, sample_rate, TRACK_RATE) if sample_rate != TRACK_RATE else y
    f0, voiced, prob = track_f0(low, sr=TRACK_RATE, hop=TRACK_HOP, method=method)
    centres = (np.arange(n_frames) * hop + n_fft / 2) / sample_rate
    k = np.clip(np.round(centres * TRACK_RATE / TRACK_HOP).astype(np.int64), 0, max(f0.size - 1, 0))
    out = np.zeros((n_frames, 3), np.float32)
    if f0.size:
        out[:, 0] = np.where(voiced[k], f0[k], 0.0)
        out[:, 1] = prob[k]
    out[:, 2] = frame_loudness(y, n_fft=n_fft, hop=hop, n_frames=n_frames)
    return out


def frame_loudness(y: np.ndarray, *, n_fft: int, hop: int, n_frames: int) -> np.ndarray:
    """RMS level in dBFS of each frame ``[m*hop, m*hop + n_fft)`` (floored at -120 dB)."""
    import numpy as np

    pad = max(0, (n_frames - 1) * hop + n_fft - y.size)
    x = np.pad(y, (0, pad)) if pad else y
    sq = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    starts = np.arange(n_frames) * hop
    ms = (sq[starts + n_fft] - sq[starts]) / n_fft
    return (10 * np.log10(np.maximum(ms, 1e-12))).astype(np.float32)


def hz_to_midi(f0: np.ndarray) -> np.ndarray:
    """Continuous MIDI pitch of `f0` in Hz (nan where f0 <= 0)."""
    import numpy as np

    f0 = np.asarray(f0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f0 > 0, 69.0 + 12.0 * np.log2(f0 / 440.0), np.nan)


def import_torchcrepe():
    """torchcrepe, with a stand-in for torchaudio when that does not import, and without dither.

    torchcrepe imports torchaudio at module level but uses it only to read audio files, which we
    never ask of it; the torchaudio wheel does not load beside the CPU torch wheel, so a stub
    module keeps torchaudio out of the path (calling into it raises).

    torchcrepe adds unseeded triangular noise (+-1 bin, 20 cents) to its bins' centres
    (`convert.dither`); `weighted_argmax` draws it once per process. Every pitch read in a
    process then sits off by the same random few cents, and a figure such as "within 50 cents"
    moved from run to run of the same files. The weighted decoder interpolates between bins
    already, so the dither is taken out: the same audio reads the same pitch in every process.
    """
    import sys
    import types

    try:
        import torchaudio  # noqa: F401
    except Exception:
        stub = types.ModuleType("torchaudio")

        def _unavailable(*_a, **_k):
            raise RuntimeError("torchaudio is not available; livegen passes audio to torchcrepe as arrays")

        stub.load = _unavailable
        sys.modules["torchaudio"] = stub
    import torchcrepe

    if torchcrepe.convert.dither is not _no_dither:
        torchcrepe.convert.dither = _no_dither
        if hasattr(torchcrepe.decode.weighted_argmax, "weights"):  # bin centres drawn with the dither
            del torchcrepe.decode.weighted_argmax.weights
    return torchcrepe


def _no_dither(cents):
    return cents
