"""`play`'s options as the sound server's settings (light: the CLI starts the server with them
before it imports the rest of the app)."""

from __future__ import annotations

import argparse

from livegen.errors import ParameterError

AHEAD_PERIODS = 0
"""The sound server's default lead, in device periods (docs/sound-server.md: the soak that chose it)."""


def _latency(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def latency_option(text: str):
    """`--latency`'s argparse type: low, high or seconds (PortAudio's suggested latency)."""
    value = _latency(text.strip().lower())
    if value in ("low", "high") or (isinstance(value, float) and 0 < value <= 2):
        return value
    raise argparse.ArgumentTypeError(f"{text!r} is not a latency; give low, high or seconds (0 < s <= 2, e.g. 0.01)")


def device_options(args) -> dict:
    """The sound server's device settings."""
    priority = int(getattr(args, "realtime_priority", 0) or 0)
    return {"device": args.audio_device, "samplerate": args.samplerate, "blocksize": args.blocksize,
            "latency": _latency(args.latency), "realtime_priority": min(priority + 5, 99) if priority > 0 else 0}


def engine_spec(args, *, model=None, params=None) -> dict:
    """The sound server's engine settings."""
    return {"model": model if model is not None else args.model, "seed": args.seed, "lookahead": args.lookahead,
            "read": getattr(args, "read", "window"),
            "device": args.device, "threads": max(1, args.threads), "events": getattr(args, "events", None),
            "seed_audio": getattr(args, "seed_audio", None), "temperature": getattr(args, "temperature", None),
            "input_device": getattr(args, "input_device", None), "input_required": model is None,
            "params": dict(params or {})}


def lead_samples(args, samplerate: int) -> int:
    """The sound server's lead: `--ahead-ms` in samples, else minus `--ahead-periods` (the
    server counts those in device periods; 0: each hop is rendered in the callback that plays it)."""
    ahead_ms = getattr(args, "ahead_ms", None)
    if ahead_ms is not None:
        if not 0 <= ahead_ms <= 1000:
            raise ParameterError(f"--ahead-ms {ahead_ms:g}: give 0 to 1000 ms (0: render in the callback)")
        return int(round(ahead_ms * samplerate / 1000))
    periods = getattr(args, "ahead_periods", None)
    periods = AHEAD_PERIODS if periods is None else int(periods)
    if not 0 <= periods <= 16:
        raise ParameterError(f"--ahead-periods {periods}: give 0 to 16 (default {AHEAD_PERIODS}; 0: render in the "
                             "callback)")
    return -periods
