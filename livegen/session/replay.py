"""Re-rendering a session log: which events, from which sample, for how long, at which rate.

A log's events are stamped with the engine's output sample since the engine started, and its
header's `start_sample` says where the WAV began (a recording started mid-performance logs what
came before it too). Rendering from sample 0 and dropping `start_sample` samples reproduces the
file; at another output rate the stamps are moved to the same hop boundaries at that rate.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path


def plan_replay(header: dict, events: list, *, samplerate: int, log_path=None):
    """Events for a render at `samplerate`, the samples to skip, and the recording's length.

    Returns (events, skip, frames): `skip` output samples to drop from the start of the render,
    `frames` the recorded length at `samplerate` (from the WAV beside the log; None when it is
    missing or unreadable, e.g. after a crash left no header update yet).
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
    frames = None
    wav = header.get("wav")
    if wav and log_path is not None:
        path = Path(log_path).with_name(wav)
        try:
            import soundfile

            frames = moved(start + soundfile.info(str(path)).frames) - skip
        except Exception:
            frames = None
    return events, skip, frames
