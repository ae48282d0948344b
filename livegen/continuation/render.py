"""`livegen render ... --model models/continuation [--seed-audio FILE]`: offline continuation.

`maybe_run_render(args)` is what `livegen render` calls first: None when the model is not a
continuation model (the ordinary render runs), else the exit code. Also runnable alone:
``python -m livegen.continuation.render EVENTS.jsonl --model models/continuation --seed-audio
FILE --seconds S -o OUT.wav`` (the same arguments as `livegen render`, plus --seed-audio and
--temperature).
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    """The options a continuation model adds to `livegen render` and `livegen play` (idempotent)."""
    have = {opt for action in parser._actions for opt in action.option_strings}
    if "--seed-audio" not in have:
        parser.add_argument("--seed-audio", help="audio file whose frames start a continuation model; "
                                                 "the model takes over where it ends")
    if "--temperature" not in have:
        parser.add_argument("--temperature", type=float, default=None,
                            help="sampling temperature of a continuation model (default: the model's)")


def maybe_run_render(args) -> int | None:
    """Render with a continuation model (None when `args.model` / the log's model is not one).

    Length, rate, seed and the session-log replay plan (`start_sample`, the WAV's length) are
    decided as `livegen render` decides them (`render_plan`). Notes play with the voice model the
    log names (`voice_model_from_header`).
    """
    import sys

    from livegen.cli.render import _check_weights, render_plan
    from livegen.session.replay import trim_to_recording
    from livegen.continuation.io import is_continuation_model
    from livegen.engine.events import read_events
    from livegen.errors import ParameterError

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
    import soundfile as sf
    import torch

    from livegen.continuation.notes import voice_model_from_header
    from livegen.continuation.seeds import seed_audio_from_header
    from livegen.continuation.source import ContinuationSource
    from livegen.engine import factory

    def warn(text: str) -> None:
        print(f"livegen render: warning: {text}", file=sys.stderr)

    if not seed_audio:  # a session log names the seed audio it was played with
        seed_audio = seed_audio_from_header(header, log_path=args.events, warn=warn)
    temperature = getattr(args, "temperature", None)
    if temperature is None:
        temperature = header.get("temperature")

    events, (samplerate, seed, lookahead, seconds), skip = render_plan(args, header, events)
    torch.set_num_threads(1)
    _check_weights(header, model_dir)
    loaded = factory.load(model_dir, seed_audio=seed_audio, temperature=temperature,
                          voice_model=voice_model_from_header(header, model_dir, warn=warn),
                          log=lambda text: print(text, file=sys.stderr))
    engine = loaded.engine(samplerate=samplerate, seed=seed, lookahead=lookahead)
    y = engine.render_events(events, seconds=seconds + skip / samplerate, log_path=args.events, warn=warn)
    y = trim_to_recording(y, skip)
    sf.write(args.output, y, samplerate, subtype=args.subtype)
    status = engine.status()
    stream = engine.find(ContinuationSource).stream
    print(f"rendered {seconds:.3f} s at {samplerate} Hz to {args.output}: peak {status['peak']:.3f}, "
          f"NaN {status['nan']}, seed hops {stream.seeded_hops}, model steps {stream.steps}, "
          f"voices stolen {status.get('steals', 0)}", file=sys.stderr)
    return 0


def warn_seed_events(events, model_dir, *, out=None) -> int:
    """Say once that a VAE model skips `seed` events (the engine counts them as rejected).

    Names the first such event and what to do; returns how many there are.
    """
    import sys

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
    from livegen.cli.render import add_parser
    from livegen.continuation import run_as_module

    return run_as_module(argv, prog="python -m livegen.continuation.render", command="render",
                         add_parser=lambda sub: add_arguments(add_parser(sub)), maybe_run=maybe_run_render,
                         not_ours=lambda args: f"{args.model} is not a continuation model; use `livegen render`")


if __name__ == "__main__":
    raise SystemExit(main())
