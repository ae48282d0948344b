"""`livegen render ... --model models/continuation [--seed-audio FILE]`: offline continuation.

`maybe_run_render(args)` is what `livegen render` calls first: None when the model is not a
continuation model (the ordinary render runs), else the exit code. Also runnable alone:
``python -m livegen.continuation.render EVENTS.jsonl --model models/continuation --seed-audio
FILE --seconds S -o OUT.wav`` (the same arguments as `livegen render`, plus --seed-audio and
--temperature).
"""

from __future__ import annotations

import sys

import soundfile as sf
import torch

from livegen.continuation import run_as_module
from livegen.continuation.engine_hook import load_for_engine, render_continuation, seed_audio_from_header
from livegen.continuation.io import is_continuation_model
from livegen.continuation.notes import load_voice_model, voice_model_from_header
from livegen.engine.events import read_events
from livegen.errors import ParameterError
from livegen.session.render import check_weights, render_plan
from livegen.session.replay import trim_to_recording


def maybe_run_render(args) -> int | None:
    """Render with a continuation model (None when `args.model` / the log's model is not one).

    Length, rate, seed and the session-log replay plan (`start_sample`, the WAV's length) are
    decided as `livegen render` decides them (`render_plan`). Notes play with the voice model the
    log names (`voice_model_from_header`).
    """
    seed_audio = getattr(args, "seed_audio", None)
    header, events = read_events(args.events, tolerate_truncation=True)
    header = header or {}
    model_dir = args.model or header.get("model_dir")
    if not is_continuation_model(model_dir):
        if seed_audio:
            raise ParameterError(f"--seed-audio needs a continuation model (--model models/continuation); "
                                 f"{model_dir or 'the default model'} is not one")
        warn_seed_events(events, model_dir)
        return None

    def warn(text: str) -> None:
        print(f"livegen render: warning: {text}", file=sys.stderr)

    if not seed_audio:  # a session log names the seed audio it was played with
        seed_audio = seed_audio_from_header(header, log_path=args.events, warn=warn)
    temperature = getattr(args, "temperature", None)
    if temperature is None:
        temperature = header.get("temperature")

    events, (samplerate, seed, lookahead, seconds), skip = render_plan(args, header, events)
    torch.set_num_threads(1)
    model = load_for_engine(model_dir)
    print(f"model: {model_dir} (continuation)", file=sys.stderr)
    check_weights(header, model_dir)
    voice_dir = voice_model_from_header(header, model_dir, warn=warn)
    voices = load_voice_model(voice_dir, config=model.config) if voice_dir else None
    print(f"notes: voice model {voice_dir}" if voices is not None else "notes: no voice model; notes are ignored",
          file=sys.stderr)
    y, engine = render_continuation(events, model=model, samplerate=samplerate, seconds=seconds + skip / samplerate,
                                    seed=seed, lookahead=lookahead, seed_audio=seed_audio,
                                    temperature=temperature, log_path=args.events, warn=warn, voice_model=voices)
    y = trim_to_recording(y, skip)
    sf.write(args.output, y, samplerate, subtype=args.subtype)
    status = engine.status()
    print(f"rendered {seconds:.3f} s at {samplerate} Hz to {args.output}: peak {status['peak']:.3f}, "
          f"NaN {status['nan']}, seed hops {engine.stream.seeded_hops}, model steps {engine.stream.steps}, "
          f"voices stolen {engine.voices.steals}", file=sys.stderr)
    return 0


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


def main(argv=None) -> int:
    # A command-line entry point: it reuses `livegen render`'s parser (see pyproject's layer contract).
    from livegen.cli.render import add_parser

    return run_as_module(argv, prog="python -m livegen.continuation.render", command="render",
                         add_parser=add_parser, maybe_run=maybe_run_render,
                         not_ours=lambda args: f"{args.model} is not a continuation model; use `livegen render`")


if __name__ == "__main__":
    raise SystemExit(main())
