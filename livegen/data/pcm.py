"""Writing a float signal to an audio file, with TPDF dither where the format has 16 bits or fewer.

Rounding a quiet float signal to 16 bits leaves an error that follows the signal: harmonics
(distortion) on a soft tone, and a fade or reverb tail that ends in steps, then silence. Adding
triangular noise of +-1 LSB before rounding makes the error a steady hiss independent of the
signal, and sound below one LSB stays audible in it, as every DAW's 16-bit export does. 24-bit
and float files are written as they are: their rounding error lies below a converter's own noise.

The noise comes from a seeded generator, so the same signal and seed give the same file (a
render stays bit-exact for the same events, model and seed).
"""

from __future__ import annotations

import hashlib
import os

DITHERED_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16}
"""The integer sample formats written with dither, and their bits."""

DITHER_STREAM = 0x44495448
"""Mixed into every dither seed, so that the noise is not the stream another user of the same
seed (a render's drift walk) draws."""

CHUNK = 1 << 16
"""Frames quantised at a time: a long render is written without float64 copies of all of it."""


def dither_bits(subtype: str) -> int | None:
    """The bits of an integer format written with dither, else None."""
    return DITHERED_BITS.get(str(subtype).upper())


def tpdf_quantise(y, *, bits: int, rng):
    """`y` (floats, full scale +-1) rounded to `bits` bits after adding triangular noise of +-1
    LSB drawn from `rng` (a numpy Generator); clipped to the format's range (no wrap-around).
    Returns int32 samples with the value in the top `bits` bits, which libsndfile writes to a
    `bits`-bit file unchanged."""
    import numpy as np

    scale = float(2 ** (bits - 1))
    x = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0) * scale
    x += rng.random(x.shape)
    x -= rng.random(x.shape)  # the difference of two uniforms: triangular on (-1, 1) LSB
    q = np.floor(x + 0.5, out=x)
    np.clip(q, -scale, scale - 1.0, out=q)
    q *= float(2 ** (32 - bits))
    return q.astype(np.int32)


def dither_rng(seed):
    """The dither noise generator for `seed`: a non-negative int, a string (a file's name in a
    dataset), or a tuple of them."""
    import numpy as np

    def key(part) -> int:
        if isinstance(part, str):
            return int.from_bytes(hashlib.blake2b(part.encode(), digest_size=8).digest(), "little")
        return int(part)

    return np.random.default_rng([DITHER_STREAM, *map(key, seed if isinstance(seed, (tuple, list)) else (seed,))])


def write_audio(path, y, samplerate: int, *, subtype: str | None = None, seed=0) -> None:
    """Write `y` (frames, or frames x channels; floats) to `path` in `subtype` (default: the
    format's, as `soundfile.write` picks it from the name's extension), with TPDF dither seeded by
    `seed` (`dither_rng`) for 8- and 16-bit integer formats (`DITHERED_BITS`)."""
    import numpy as np
    import soundfile as sf

    if subtype is None:
        subtype = sf.default_subtype(os.path.splitext(os.fspath(path))[1][1:].upper())
    bits = dither_bits(subtype)
    if bits is None:
        sf.write(os.fspath(path), y, samplerate, subtype=subtype)
        return
    y = np.asarray(y)
    rng = dither_rng(seed)
    with sf.SoundFile(os.fspath(path), "w", samplerate=samplerate, channels=1 if y.ndim == 1 else y.shape[1],
                      subtype=subtype) as f:
        for start in range(0, len(y), CHUNK):
            f.write(tpdf_quantise(y[start:start + CHUNK], bits=bits, rng=rng))
