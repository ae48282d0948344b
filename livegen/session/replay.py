"""Re-rendering a session log: which events, from which sample, for how long, at which rate.

A log's events are stamped with the engine's output sample since the engine started, and its
header's `start_sample` says where the WAV began (a recording started mid-performance logs what
came before it too). Rendering from sample 0 and dropping `start_sample` samples reproduces the
file; at another output rate the stamps are moved to the same hop boundaries at that rate.

At another rate the output chain's latency differs too: the 2x/4x FIR upsampler delays the
model's signal by its group delay, no resampler by nothing, and soxr's stream (44.1 kHz and
other non-integer ratios) by the zeros its FIFO is primed with to hand out whole hops. The plan
drops (or, when the render would start before sample 0, cannot add) the difference, so a
re-render lines up with the recording to within a sample at the new rate (figures before and
after: docs/benchmarks/history.md, "Session replay at another rate").
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

from livegen.audio.chain import IntegerUpsampler, OutputChain


@functools.lru_cache(maxsize=32)
def output_latency(model_rate: int, samplerate: int) -> float:
    """Output samples by which the engine's output chain delays the model's signal, from
    `model_rate` to `samplerate` (fractional; the same for every engine with these rates)."""
    chain = OutputChain(in_rate=int(model_rate), out_rate=int(samplerate))
    resampler = chain.resampler
    if resampler is None:
        return 0.0
    if isinstance(resampler, IntegerUpsampler):  # the integer-ratio FIR: its group delay
        return float(resampler.delay)
    # soxr's stream: the zeros its FIFO is primed with, plus what its variable-rate mode leaves of
    # its filter delay (-0.5..+2 samples), measured on a fresh stream.
    return float(getattr(chain, "_margin", 0)) + _stream_delay(resampler, int(model_rate), int(samplerate))


def _stream_delay(stream, in_rate: int, out_rate: int) -> float:
    """Delay of a streaming resampler against soxr's one-shot (delay-free) resampling, by
    cross-correlating band-limited noise (seeded: the same answer every time)."""
    import numpy as np
    import soxr

    n = in_rate // 2
    noise = np.random.default_rng(0).standard_normal(n)
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / in_rate)
    spectrum[(freqs < 200) | (freqs > 0.4 * min(in_rate, out_rate))] = 0
    probe = (np.fft.irfft(spectrum, n) * 0.1).astype(np.float32)
    hop = 128
    out = np.concatenate([stream.resample_chunk(probe[i:i + hop]) for i in range(0, n, hop)]
                         + [stream.resample_chunk(np.zeros(0, np.float32), last=True)])
    ideal = soxr.resample(probe, in_rate, out_rate, quality="VHQ")
    m = min(len(out), len(ideal))
    corr = np.fft.irfft(np.fft.rfft(out[:m], 2 * m) * np.conj(np.fft.rfft(ideal[:m], 2 * m)))
    width = 64  # the stream is delay-compensated: its residual is a few samples at most
    corr = np.concatenate([corr[-width:], corr[:width + 1]])
    k = int(np.argmax(corr))
    if not 0 < k < len(corr) - 1:
        return 0.0
    a, b, c = corr[k - 1], corr[k], corr[k + 1]
    return float(k - width + 0.5 * (a - c) / (a - 2 * b + c))


def plan_replay(header: dict, events: list, *, samplerate: int, log_path=None, model_rate: int | None = None,
                allow_negative: bool = False):
    """Events for a render at `samplerate`, the samples to skip, and the recording's length.

    Returns (events, skip, frames): `skip` output samples to drop from the start of the render,
    `frames` the recorded length at `samplerate` (from the WAV beside the log; None when it is
    missing or unreadable, e.g. after a crash left no header update yet). At another rate `skip`
    also takes out the difference in output-chain latency (see the module's note). A recording
    that began at sample 0 re-rendered onto a chain with less latency (44.1 -> 48 kHz, 48 -> 24 kHz)
    would need a negative skip: silence to put in front. With `allow_negative` it is returned so
    (the caller pads); without, it is 0 and that render starts up to the difference early.
    """
    recorded_rate = int(header.get("samplerate") or samplerate)
    scale = samplerate / recorded_rate

    def moved(sample: int) -> int:
        # Hop boundaries sit at ceil(k * hop * out / in) at every rate, so a stamp on a boundary at
        # the recorded rate lands on the same boundary at the new one.
        return sample if scale == 1 else int(math.ceil(sample * scale - 1e-9))

    if scale != 1:
        events = [dataclasses.replace(e, sample=moved(e.sample)) if e.sample is not None else e for e in events]
    start = int(header.get("start_sample") or 0)
    skip = moved(start)
    align = 0
    model_rate = model_rate or header.get("model_samplerate")
    if scale != 1 and model_rate:
        recorded = header.get("output_latency")
        if recorded is None:  # logs from before the header said it: the chain of that time
            recorded = output_latency(model_rate, recorded_rate)
        align = int(round(output_latency(model_rate, samplerate) - float(recorded) * scale))
    frames = None
    wav = header.get("wav")
    if wav and log_path is not None:
        path = Path(log_path).with_name(wav)
        try:
            import soundfile

            frames = moved(start + soundfile.info(str(path)).frames) - skip
        except Exception:
            frames = None
    skip += align
    return events, skip if allow_negative else max(skip, 0), frames


def trim_to_recording(y, skip: int):
    """A replay rendered from sample 0, cut to the recording: drop `skip` samples from the start,
    or put `-skip` samples of silence in front when the new chain has less latency (see
    `plan_replay(..., allow_negative=True)`)."""
    import numpy as np

    if skip >= 0:
        return y[skip:]
    return np.concatenate([np.zeros((-skip,) + y.shape[1:], dtype=y.dtype), y])
