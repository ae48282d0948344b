"""`livegen render EVENTS.jsonl -o OUT.wav`: the live engine on a virtual clock."""

from __future__ import annotations

import argparse

from livegen.engine.events import check_events, read_events
from livegen.errors import LOOKAHEAD_MAX, SECONDS_MIN, ParameterError, ranged, seed_type

SAMPLERATES = ranged(int, 8000, 192000, hint="Hz")
"""What `--samplerate` takes (`render` and `play`)."""
SEEDS = seed_type("the noise and drift seed")
LOOKAHEADS = ranged(int, 0, LOOKAHEAD_MAX, hint="inverter look-ahead frames")
"""What `--lookahead` takes (`render`, `play`, `resynth`): what the streaming inverter keeps."""
LENGTHS = ranged(float, SECONDS_MIN, hint="seconds")
"""What `render --seconds` and `play --duration` take."""


def check_read(read, lookahead, *, read_from: str = "--read", lookahead_from: str = "--lookahead") -> None:
    """A centre read with no look-ahead frame, refused with the options' names before a model
    loads (`render`, `play`): the inverter would refuse it only once the engine is built."""
    if read == "centre" and lookahead == 0:
        raise ParameterError(f"{read_from} centre with {lookahead_from} 0: a centre read reads the look-ahead frame, "
                             "and there is none; give --lookahead 1 or more, or --read committed (no look-ahead "
                             "needed)")


def add_continuation_arguments(parser) -> None:
    """The options a continuation model adds to `livegen render` and `livegen play` (idempotent)."""
    have = {opt for action in parser._actions for opt in action.option_strings}
    if "--seed-audio" not in have:
        parser.add_argument("--seed-audio", help="audio file whose frames start a continuation model; "
                                                 "the model takes over where it ends")
    if "--temperature" not in have:
        parser.add_argument("--temperature", type=ranged(float, 0.0, 1.5), default=None,
                            help="sampling temperature of a continuation model (default: the model's)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "render", help="render an event file or session log to WAV, offline and deterministic",
        description="Run the engine on a virtual clock: the same events, model and seed give the same samples. "
                    "Events carrying `sample` (a session log) apply at exactly that sample; others at "
                    "t * samplerate rounded up to the next hop boundary.")
    parser.add_argument("events", nargs="?", help="event file (JSON lines) or session log (optional with --input)")
    parser.add_argument("-o", "--output", required=True, help="output WAV file")
    parser.add_argument("--model", help="model directory, or 'random' (default: the log header's, else models/default)")
    parser.add_argument("--samplerate", type=SAMPLERATES, help="output sample rate (default: the log header's, else 48000)")
    parser.add_argument("--seconds", type=LENGTHS, help=f"length, at least {SECONDS_MIN:g} s (default: last event + 2 s)")
    parser.add_argument("--seed", type=SEEDS, help="noise and drift seed (default: the log header's, else 0)")
    parser.add_argument("--lookahead", type=LOOKAHEADS, help="inverter look-ahead frames (default: the inverter's)")
    parser.add_argument("--read", default=None, choices=("window", "centre", "committed"),
                        help="how the inverter reads its frames (default: the log header's, else window); centre: "
                             "a bend, slide or glide is heard half a synthesis window (~21 ms) sooner, at some "
                             "cost on sharp transients; committed: ~16 ms sooner (docs/glide.md)")
    parser.add_argument("--device", default="cpu", help="torch device: auto, cpu, cuda or mps (default cpu)")
    parser.add_argument("--subtype", default="FLOAT",
                        help="WAV sample format (FLOAT, PCM_24, PCM_16; PCM_16 is written with TPDF dither, seeded by --seed)")
    parser.add_argument("--input", metavar="FILE",
                        help="audio file that plays a voice of the model (its pitch, loudness and timbre; the "
                             "input_* parameters set how); the drone is off unless the events turn it on")
    parser.add_argument("--soundcheck", action="store_true",
                        help="with --input: set input_gain as a live sound check would over the file (its loud playing "
                             "at the level a velocity-100 note plays at) before the first hop; logged with --log")
    parser.add_argument("--log", metavar="LOG",
                        help="also write the applied events and a header naming the model and the input (file and "
                             "sha256), so that `livegen render LOG` renders the same samples")
    add_continuation_arguments(parser)  # --seed-audio, --temperature for continuation models
    return parser


def run(args) -> int:
    """Render with the engine `livegen.server.factory` builds for the model (the log header's, else
    --model's); a continuation model takes its seed audio, temperature and voice model from the
    options, else the header."""
    import os
    import sys
    import warnings

    import torch

    from livegen.server import factory
    from livegen.continuation.render import continuation_options
    from livegen.data.files import check_audio_output, check_not_an_input, check_output_file
    from livegen.data.pcm import write_audio
    from livegen.engine.setup import pick_device
    from livegen.engine.events import write_events
    from livegen.engine.events import Event
    from livegen.engine.input import SOUND_CHECK_SOURCE, sound_check, with_input_defaults
    from livegen.session.render import (INPUT_TAIL_SECONDS, check_weights, ends_with_fade, fade_end,
                                        input_feed, render_header, render_log, render_plan)
    from livegen.session.replay import trim_to_recording

    def warn(text: str) -> None:
        print(f"livegen render: warning: {text}", file=sys.stderr)

    if args.events is None and not args.input:
        raise ParameterError("give an event file or session log, or an input file (--input FILE)")
    if args.soundcheck and not args.input:
        raise ParameterError("--soundcheck listens to the --input file: give --input FILE with it")
    check_read(args.read, args.lookahead)
    check_audio_output(args.output, "-o", subtype=args.subtype)  # before the render, not after it
    if args.log:
        check_output_file(args.log, "--log", example="out.jsonl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header, events = read_events(args.events, tolerate_truncation=True) if args.events else (None, [])
    for warning in caught:
        warn(str(warning.message))
    recorded = (header or {}).get("wav")
    inputs = {"the event file": args.events, "the --input file": args.input, "the --seed-audio file": args.seed_audio,
              "the take this log records": (os.path.join(os.path.dirname(args.events), recorded)
                                            if isinstance(recorded, str) and recorded else None)}
    for option, target in (("-o", args.output), ("--log", args.log)):
        if target:
            check_not_an_input(target, option, inputs)
    if args.log:  # the log would be written over the render
        check_not_an_input(args.log, "--log", {"the -o file": args.output})
    header = header or {}
    logged_model = header.get("model_dir") or ("random" if header.get("model") == "random" else None)
    model_path = args.model or logged_model
    if not args.model and logged_model not in (None, "random") and not os.path.isdir(logged_model):
        raise ParameterError(f"{args.events}: the model it was played with, {logged_model}, is not there; give the "
                             "model folder with --model")
    options = continuation_options(args, header, events, model_path, warn=warn)
    events = with_input_defaults(events) if args.input else events
    events, (samplerate, seed, lookahead, seconds), skip = render_plan(
        args, header, events, note=lambda text: print(f"livegen render: {text}", file=sys.stderr))
    read = args.read or header.get("read", "window")
    check_read(read, lookahead, read_from="--read" if args.read else "the log header's read",
               lookahead_from="--lookahead" if args.lookahead is not None else "the log header's lookahead")
    torch.set_num_threads(1)
    loaded = factory.load(model_path, device=pick_device(args.device), **options)
    check_weights(header, loaded.name)
    if header.get("mix") == "voices":
        warn("this log was played with each voice inverted separately (mix 'voices'), which is gone; its voices "
             "render as one summed stream, so the render will differ from the recording")
    feed = input_feed(args.input, header, model_rate=loaded.config.sample_rate, hop=loaded.config.hop,
                      log_path=args.events)
    if feed is not None and args.seconds is None and not {"start_sample", "seconds"} & set(header):
        seconds = max(seconds, feed.seconds + INPUT_TAIL_SECONDS)
    if args.soundcheck:
        if "start_sample" in header:
            raise ParameterError(f"{args.events}: a session log plays the input_gain it was played with; --soundcheck "
                                 "is for a render from an input file and an event file (or none)")
        try:
            checked = sound_check(feed.samples, samplerate=feed.samplerate, hop=loaded.config.hop,
                                  window=loaded.config.n_fft)
        except ParameterError as exc:
            raise ParameterError(f"--soundcheck: {args.input}: {exc}") from None
        events = [Event("param", t=0.0, name="input_gain", value=checked.gain_db, source=SOUND_CHECK_SOURCE), *events]
        print(f"livegen render: sound check: {checked.describe()}", file=sys.stderr)
    engine = loaded.engine(samplerate=samplerate, seed=seed, lookahead=lookahead, input_feed=feed, read=read)
    check_events(events, engine.params, origin=args.events)
    models = {logged_model: loaded}

    def rebuild(marker):
        """The fresh engine a sound server started with at an `engine` `restart` marker."""
        fields = marker.extra
        path = fields.get("model_dir") or ("random" if fields.get("model") == "random" else logged_model)
        if path not in models:
            models[path] = factory.load(path, device=pick_device(args.device), **options)
        return models[path].engine(samplerate=samplerate, seed=args.seed if args.seed is not None else
                                   int(fields.get("seed", seed)), lookahead=args.lookahead if args.lookahead is not None
                                   else fields.get("lookahead", lookahead), input_feed=feed,
                                   read=args.read or fields.get("read", read))

    applied = []
    y, engine = render_log(engine, events, seconds=seconds + skip / samplerate, rebuild=rebuild, log_path=args.events,
                           warn=warn, listener=applied.append if args.log else None)
    y = trim_to_recording(y, skip)
    faded = ends_with_fade(header, events)
    if faded:  # end as a stopped performance does, not on a click
        fade_end(y, engine.chain.fade_samples)
    write_audio(args.output, y, samplerate, subtype=args.subtype, seed=seed)  # 16-bit: dithered, the same each time
    if args.log:
        write_events(args.log, applied, header=render_header(engine, loaded, samplerate=samplerate, seconds=seconds,
                                                                  faded=faded))
    status = engine.status()
    stream = f", seed hops {status['seed_hops']}, model steps {status['model_steps']}" if "model_steps" in status else ""
    heard = (f", input {feed.seconds:.3f} s (clipped samples {status['input_clipped']})" if feed is not None else "")
    print(f"rendered {seconds:.3f} s at {samplerate} Hz to {args.output}: peak {engine.chain.peak:.3f}, "
          f"NaN {status['nan']}, clamped {status['clamped']}{stream}, voices stolen {status.get('steals', 0)}{heard}",
          file=sys.stderr)
    return 0
