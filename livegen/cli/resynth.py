"""`livegen resynth INPUT -o OUTPUT`: magnitude STFT -> streaming phase reconstruction -> WAV.

Hears what the live inverter does to a known sound: the input's phase is thrown away, the
magnitudes are pushed frame by frame through the same `StreamingInverter` the engine uses, and
the result is written time-aligned with the input (look-ahead delay removed), same length,
same sample rate, one inverter voice per channel.
"""

from __future__ import annotations

import argparse
import os

from livegen.cli.render import LOOKAHEADS
from livegen.data.files import check_audio_output, check_input_file, check_not_an_input
from livegen.errors import ParameterError


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "resynth",
        help="rebuild an audio file from its STFT magnitude with the streaming phase reconstructor",
        description="Takes the input's magnitude STFT (periodic Hann, center=False, n_fft - hop zeros "
                    "padded at each end), streams it through "
                    "the inverter, writes a float WAV aligned with the input and prints the spectral "
                    "convergence reached (dB, lower is better). Defaults depend on the overlap and were "
                    "chosen with `livegen bench phase`.",
    )
    parser.add_argument("input", help="audio file (anything soundfile or librosa reads)")
    parser.add_argument("-o", "--output", required=True, help="WAV file to write")
    parser.add_argument("--method", default=None, help="hybrid (default), rtisi-la or rtpghi")
    parser.add_argument("--lookahead", type=LOOKAHEADS, default=None, metavar="K",
                        help="frames of look-ahead (latency K*hop; default by overlap, 2)")
    parser.add_argument("--iters", type=int, default=None, metavar="I", help="iterations per hop (default by overlap)")
    parser.add_argument("--momentum", type=float, default=None, help="fast Griffin-Lim momentum (default 0.7)")
    parser.add_argument("--n-fft", type=int, default=1024, metavar="N", help="FFT size (default 1024)")
    parser.add_argument("--hop", type=int, default=None, metavar="H", help="hop in samples (default n_fft/4)")
    return parser


def read_audio(path: str):
    """(samples [frames, channels] float32, sample rate); ParameterError if nothing can read it."""
    import numpy as np
    import soundfile as sf

    check_input_file(path, "input")
    try:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as sf_exc:  # noqa: BLE001 - any reader failure becomes one clear message
        ext = os.path.splitext(path)[1].lstrip(".").upper()
        try:
            if ext in sf.available_formats():
                raise  # libsndfile's own format: librosa (audioread) would only say the same, slowly
            import warnings

            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, sr = librosa.load(path, sr=None, mono=False)
            y = np.atleast_2d(y).T.astype(np.float32)
        except Exception:  # noqa: BLE001
            raise ParameterError(
                f"cannot read audio from {path!r} ({sf_exc}): give a WAV, FLAC, OGG or MP3 file"
            ) from None
    if y.shape[0] == 0:
        raise ParameterError(f"{path!r} holds no samples: give a file with audio in it")
    return y, int(sr)


def run(args) -> int:
    import numpy as np
    import soundfile as sf

    from livegen.dsp import StreamingInverter, check_stft, frames_for, invert, spectral_convergence, stft_magnitude

    hop = args.hop if args.hop is not None else (args.n_fft // 4 if isinstance(args.n_fft, int) else None)
    n_fft, hop = check_stft(args.n_fft, hop)
    kwargs = {k: v for k, v in (("method", args.method), ("lookahead", args.lookahead),
                                ("iters", args.iters), ("momentum", args.momentum)) if v is not None}
    probe = StreamingInverter(n_fft=n_fft, hop=hop, **kwargs)  # validates before any reading

    check_audio_output(args.output, "-o", subtype_option=None)
    check_not_an_input(args.output, "-o", {"the input": args.input})
    y, sr = read_audio(args.input)
    length, channels = y.shape
    # n_fft - hop zeros on each side: every input sample lies under n_fft / hop frames, as in a
    # stream's middle. Without them a file shorter than the window is one frame (whose phases
    # no magnitude can tell) and a file's first and last window are weighed by few frames.
    edge = n_fft - hop
    frames = frames_for(length + 2 * edge, n_fft=n_fft, hop=hop)
    padded = np.zeros(((frames - 1) * hop + n_fft, channels), np.float32)
    padded[edge:edge + length] = y
    S = np.stack([stft_magnitude(padded[:, c], n_fft=n_fft, hop=hop) for c in range(channels)])
    out = invert(S, n_fft=n_fft, hop=hop, **kwargs)  # [channels, padded length]
    scs = [spectral_convergence(out[c], S[c], n_fft=n_fft, hop=hop)
           for c in range(channels) if np.any(S[c])]
    try:
        sf.write(args.output, out[:, edge:edge + length].T, sr, subtype="FLOAT")
    except Exception as exc:  # noqa: BLE001
        raise ParameterError(f"cannot write {args.output!r} ({exc}): check the folder exists and is writable") from None
    sc = f"{np.mean(scs):.2f} dB" if scs else "n/a (silent input)"
    print(f"spectral convergence: {sc}  ({probe.method}, look-ahead {probe.lookahead} = "
          f"{probe.latency} samples / {1000 * probe.latency / sr:.1f} ms, {probe.iters} iterations, "
          f"n_fft {n_fft}, hop {hop}, {sr} Hz, {channels} channel{'s' * (channels > 1)}, {length} samples)")
    print(f"wrote {args.output}")
    return 0
