"""`livegen render EVENTS.jsonl -o OUT.wav`: the live engine on a virtual clock."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "render", help="render an event file or session log to WAV, offline and deterministic",
        description="Run the engine on a virtual clock: the same events, model and seed give the same samples. "
                    "Events carrying `sample` (a session log) apply at exactly that sample; others at "
                    "t * samplerate rounded up to the next hop boundary.")
    parser.add_argument("events", help="event file (JSON lines)")
    parser.add_argument("-o", "--output", required=True, help="output WAV file")
    parser.add_argument("--model", help="model directory, or 'random' (default: the log header's, else models/default)")
    parser.add_argument("--samplerate", type=int, help="output sample rate (default: the log header's, else 48000)")
    parser.add_argument("--seconds", type=float, help="length (default: last event + 2 s)")
    parser.add_argument("--seed", type=int, help="noise and drift seed (default: the log header's, else 0)")
    parser.add_argument("--lookahead", type=int, help="inverter look-ahead frames (default: the inverter's)")
    parser.add_argument("--device", default="cpu", help="torch device: auto, cpu, cuda or mps (default cpu)")
    parser.add_argument("--subtype", default="FLOAT", help="WAV sample format (FLOAT, PCM_24, PCM_16)")
    try:
        from livegen.continuation.render import add_arguments
    except ImportError:
        pass
    else:
        add_arguments(parser)  # --seed-audio, --temperature for continuation models
    return parser


def render_settings(args, header: dict, events) -> tuple[int, int, int | None, float]:
    """(samplerate, seed, lookahead, seconds) from the options, else the log header, else defaults."""
    from livegen.errors import ParameterError

    samplerate = args.samplerate or int(header.get("samplerate", 48000))
    seed = args.seed if args.seed is not None else int(header.get("seed", 0))
    lookahead = args.lookahead if args.lookahead is not None else header.get("lookahead")
    if samplerate < 8000:
        raise ParameterError(f"--samplerate {samplerate}: give an output rate of at least 8000 Hz")
    last = max((e.sample / samplerate if e.sample is not None else e.t for e in events), default=0.0)
    seconds = args.seconds if args.seconds is not None else last + 2.0
    if seconds <= 0:
        raise ParameterError(f"--seconds {seconds}: give a positive length")
    return samplerate, seed, lookahead, seconds


def render_plan(args, header: dict, events):
    """(events, (samplerate, seed, lookahead, seconds), skip): `render_settings`, and for a session
    log (`start_sample` in its header) the replay from sample 0 whose first `skip` samples are
    dropped (negative: silence put in front, `trim_to_recording`), `seconds` then being the WAV's
    length unless --seconds says otherwise."""
    samplerate, seed, lookahead, seconds = render_settings(args, header, events)
    skip = 0
    if "start_sample" in header:  # a session log: render what the WAV beside it holds
        from livegen.session.replay import plan_replay

        events, skip, frames = plan_replay(header, events, samplerate=samplerate, log_path=args.events,
                                           allow_negative=True)
        if args.seconds is None and frames:
            seconds = frames / samplerate
    return events, (samplerate, seed, lookahead, seconds), skip


def render_events(events, *, model, samplerate: int, seconds: float, seed: int = 0,
                  lookahead: int | None = None, device: str = "cpu", **engine_kwargs):
    """Render `events` with spectral `model` for `seconds` at `samplerate`; returns (samples, engine)."""
    from livegen.engine.factory import spectral_engine

    engine = spectral_engine(model, samplerate=samplerate, seed=seed, lookahead=lookahead, device=device,
                             **engine_kwargs)
    return engine.render_events(events, seconds=seconds), engine


def _check_weights(header: dict, model_path) -> None:
    """Warn when the model's weights are not the ones the session log was played with."""
    import sys

    expected = header.get("weights_sha256")
    if not expected or not model_path or model_path == "random":
        return
    from livegen.session.wiring import weights_sha256

    actual = weights_sha256(model_path)
    if actual is not None and actual != expected:
        print(f"livegen render: warning: {model_path}/weights.safetensors (sha256 {actual[:12]}) is not the model "
              f"this log was played with (sha256 {expected[:12]}); the render will differ from the recording "
              "(give that model with --model)", file=sys.stderr)


def run(args) -> int:
    import sys

    import soundfile as sf
    import torch

    from livegen.engine import factory
    from livegen.engine.events import read_events
    from livegen.engine.setup import pick_device
    from livegen.session.replay import trim_to_recording
    try:
        from livegen.continuation.render import maybe_run_render
    except ImportError:
        pass
    else:
        code = maybe_run_render(args)  # a continuation model renders through its own engine
        if code is not None:
            return code
    header, events = read_events(args.events, tolerate_truncation=True)
    header = header or {}
    events, (samplerate, seed, lookahead, seconds), skip = render_plan(args, header, events)
    torch.set_num_threads(1)
    device = pick_device(args.device)
    model_path = args.model or header.get("model_dir") or ("random" if header.get("model") == "random" else None)
    loaded = factory.load(model_path, device=device)
    _check_weights(header, loaded.name)
    if header.get("mix") == "voices":
        print("livegen render: warning: this log was played with each voice inverted separately (mix 'voices'), "
              "which is gone; its voices render as one summed stream, so the render will differ", file=sys.stderr)
    engine = loaded.engine(samplerate=samplerate, seed=seed, lookahead=lookahead)
    y = engine.render_events(events, seconds=seconds + skip / samplerate)
    y = trim_to_recording(y, skip)
    sf.write(args.output, y, samplerate, subtype=args.subtype)
    status = engine.status()
    print(f"rendered {seconds:.3f} s at {samplerate} Hz to {args.output}: peak {engine.chain.peak:.3f}, "
          f"NaN {status['nan']}, clamped {status['clamped']}, voices stolen {status.get('steals', 0)}",
          file=sys.stderr)
    return 0
