"""`livegen render ... --model models/continuation [--seed-audio FILE]`: offline continuation.

`livegen render` renders every model through the one factory; `continuation_options` is what a
continuation model adds (its seed audio, temperature and voice model, from the options or the
session log's header).
"""

from __future__ import annotations

import sys

from livegen.continuation.io import is_continuation_model
from livegen.continuation.notes import voice_model_from_header
from livegen.continuation.seeds import seed_audio_from_header
from livegen.errors import ParameterError


def continuation_options(args, header: dict, events, model_dir, *, warn) -> dict:
    """`livegen.server.factory.load`'s options for rendering with `model_dir`: for a continuation
    model, its seed audio (--seed-audio, else the file the log names), temperature and voice
    model (the log's); {} for another model, whose skipped `seed` events are warned about.
    `warn(text)` hears of files that are missing or changed."""
    seed_audio = getattr(args, "seed_audio", None)
    if not is_continuation_model(model_dir):
        for option in ("seed_audio", "temperature"):
            if getattr(args, option, None) is not None:
                raise ParameterError(f"--{option.replace('_', '-')} needs a continuation model (--model "
                                     f"models/continuation); {model_dir or 'the default model'} is not one")
        warn_seed_events(events, model_dir)
        return {}
    if not seed_audio:  # a session log names the seed audio it was played with
        seed_audio = seed_audio_from_header(header, log_path=args.events, warn=warn)
    temperature = getattr(args, "temperature", None)
    if temperature is None:
        temperature = header.get("temperature")
    return {"seed_audio": seed_audio, "temperature": temperature,
            "voice_model": voice_model_from_header(header, model_dir, warn=warn)}


def warn_seed_events(events, model_dir, *, out=None) -> int:
    """Say once that a VAE model skips `seed` events (the engine counts them as rejected).

    Names the first such event and what to do; returns how many there are.
    """
    seeds = [e for e in events if e.type == "seed"]
    if seeds:
        first = seeds[0]
        more = f" and {len(seeds) - 1} more" if len(seeds) > 1 else ""
        print(f"livegen render: warning: the seed event at t={first.t:g} s ({first.extra.get('path')}){more} will not play: "
              f"{model_dir or 'the default model'} is not a continuation model, so its engine skips seed "
              "events (counted as rejected); render with --model models/continuation (or the continuation "
              "model the session played) to play them", file=out or sys.stderr)
    return len(seeds)
