"""Rendering an event file or session log offline: settings, the replay plan, and the render.

`livegen render` and the continuation render share these; the engine is the live one on a
virtual clock (`livegen.engine.core.Engine.render_events`).
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from livegen.engine.events import Event
from livegen.engine.input import FileFeed, feed_from_header
from livegen.engine.notes import spectral_engine
from livegen.errors import SECONDS_MIN, ParameterError
from livegen.session.replay import plan_replay
from livegen.session.wiring import engine_header, weights_sha256

INPUT_TAIL_SECONDS = 0.5
"""A render with an input lasts that long past the input's end (unless --seconds says)."""


def render_settings(args, header: dict, events) -> tuple[int, int, int | None, float]:
    """(samplerate, seed, lookahead, seconds) from the options, else the log header, else defaults."""
    samplerate = args.samplerate or int(header.get("samplerate", 48000))
    seed = args.seed if args.seed is not None else int(header.get("seed", 0))
    lookahead = args.lookahead if args.lookahead is not None else header.get("lookahead")
    if not 8000 <= samplerate <= 768000:  # a take's device may run above --samplerate's 192000
        where = "--samplerate" if args.samplerate else "the log header's samplerate"
        raise ParameterError(f"{where} {samplerate}: give an output rate of 8000..192000 Hz with --samplerate")
    last = max((e.sample / samplerate if e.sample is not None else e.t for e in events), default=0.0)
    seconds = args.seconds if args.seconds is not None else float(header.get("seconds") or last + 2.0)
    where = ("--seconds" if args.seconds is not None else "the log header's seconds" if header.get("seconds")
             else f"the last event (t={last:g} s) + 2 s")
    if not seconds >= SECONDS_MIN or not math.isfinite(seconds):
        raise ParameterError(f"{where}: length {seconds:g} s; give a finite length of at least {SECONDS_MIN:g} s "
                             "with --seconds")
    check_render_memory(seconds, samplerate, where)
    return samplerate, seed, lookahead, seconds


def check_render_memory(seconds: float, samplerate: int, where: str = "--seconds", *,
                        advice: str = "render a shorter piece with --seconds") -> None:
    """Refuse a render whose output alone would need more than half of this machine's memory."""
    need = seconds * samplerate * np.dtype(np.float32).itemsize
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > have / 2:
        raise ParameterError(f"{where}: {seconds:g} s at {samplerate} Hz needs {need / 2**30:.3g} GiB for the output, "
                             f"more than half of this machine's {have / 2**30:.3g} GiB; {advice}")


def render_plan(args, header: dict, events, note=None):
    """(events, (samplerate, seed, lookahead, seconds), skip): `render_settings`, and for a session
    log (`start_sample` in its header) the replay from sample 0 whose first `skip` samples are
    dropped (negative: silence put in front, `trim_to_recording`), `seconds` then being the WAV's
    length unless --seconds says otherwise. `note(text)` hears of a log that goes on past its WAV."""
    samplerate, seed, lookahead, seconds = render_settings(args, header, events)
    skip = 0
    if "start_sample" in header:  # a session log: render what the WAV beside it holds
        events, skip, frames = plan_replay(header, events, samplerate=samplerate, log_path=args.events,
                                           allow_negative=True)
        if args.seconds is None and frames:
            seconds = frames / samplerate
            _note_log_past_wav(header, events, seconds, samplerate, args.events, note)
        if skip > 0:  # the replay before the take is rendered too, into the same output
            check_render_memory(seconds + skip / samplerate, samplerate,
                                f"{args.events}: the replay from the session's start (the take starts "
                                f"{skip / samplerate:g} s into it) and the take",
                                advice="render it on a machine with more memory")
    return events, (samplerate, seed, lookahead, seconds), skip


def _note_log_past_wav(header: dict, events, seconds: float, samplerate: int, log_path, note) -> None:
    """A take whose player was killed (or lost power) has a WAV header up to half a second behind
    the log, which is flushed line by line: the render stops where the WAV does (the take to
    compare with), and the performer is told how to render what the log holds past it."""
    stamped = [e.sample for e in events if e.sample is not None]
    if note is None or not stamped:
        return
    start = int(header.get("start_sample") or 0) * samplerate / int(header.get("samplerate") or samplerate)
    last = (max(stamped) - start) / samplerate
    if last > seconds:
        whole = math.ceil((last + 0.5) * 10) / 10
        note(f"{log_path}: the log goes on {last - seconds:.2f} s past the end of {header.get('wav')} (the take was "
             f"not closed: play was killed or lost power); this render stops where the WAV does; give --seconds "
             f"{whole:g} to render all the log holds (its last event and half a second more)")


def render_events(events, *, model, samplerate: int, seconds: float, seed: int = 0,
                  lookahead: int | None = None, device: str = "cpu", **engine_kwargs):
    """Render `events` with spectral `model` for `seconds` at `samplerate`; returns (samples, engine)."""
    engine = spectral_engine(model, samplerate=samplerate, seed=seed, lookahead=lookahead, device=device,
                             **engine_kwargs)
    return engine.render_events(events, seconds=seconds), engine


def split_restarts(events) -> list[tuple[Event | None, list]]:
    """A log's events by the engine that applied them: (the `engine` `restart` marker it started
    at, None for the first; its events), in order."""
    parts: list[tuple[Event | None, list]] = [(None, [])]
    for event in events:
        if event.type == "engine" and event.action == "restart":
            parts.append((event, []))
        else:
            parts[-1][1].append(event)
    return parts


def render_log(engine, events, *, seconds: float, rebuild, log_path=None, warn=None, listener=None):
    """Render `events` as they were played: `engine` from sample 0 and, at each `engine` `restart`
    marker (a new sound server after a lost device), a fresh engine `rebuild(marker)` from the
    marker's sample on, as live (fresh inverter, drift walk, output chain and fade-in). `seconds`
    of output in all; `listener` hears every applied event and the markers. Returns (samples,
    the last engine)."""
    rate = engine.samplerate
    total = int(round(seconds * rate))
    out = np.zeros(total, dtype=np.float32)
    parts = split_restarts(events)
    starts = [0] + [marker.due(rate) for marker, _ in parts[1:]]
    for i, (marker, part) in enumerate(parts):
        start, end = starts[i], min(starts[i + 1] if i + 1 < len(parts) else total, total)
        if marker is not None:
            engine = rebuild(marker)
            engine.samples_out = start  # the live server's clock goes on (`livegen.server.process.serve`)
            if listener is not None:
                listener(marker)
        if listener is not None:
            engine.add_listener(listener)
        block = engine.render_events(part, frames=max(end - start, 0), log_path=log_path, warn=warn)
        out[start:start + len(block)] = block
    return out, engine


def ends_with_fade(header: dict, events) -> bool:
    """Whether a render ends with the live stop fade (`fade_end`): an event file (no event stamped
    with its `sample`) does, as does the log of such a render (`fade_end` in its header); a take's
    log or an engine's log is rendered as it was played, since it must match what was recorded,
    which ends on the last block heard before the stop (`SessionControl._on_block`)."""
    if "start_sample" in header:
        return False
    return bool(header.get("fade_end", all(event.sample is None for event in events)))


def fade_end(y: np.ndarray, samples: int) -> np.ndarray:
    """Fade the last `samples` of a render to silence in place, with the ramp the live stop fade
    (`OutputChain.fade_out`) plays: a file that stopped on a sounding drone or chord would click."""
    n = min(int(samples), len(y))
    if n > 0:
        y[len(y) - n:] *= np.clip(1.0 - np.arange(1, n + 1) / samples, 0.0, 1.0).astype(y.dtype)
    return y


def check_weights(header: dict, model_path) -> None:
    """Warn when the model's weights are not the ones the session log was played with."""
    expected = header.get("weights_sha256")
    if not expected or not model_path or model_path == "random":
        return
    actual = weights_sha256(model_path)
    if actual is not None and actual != expected:
        print(f"livegen render: warning: {model_path}/weights.safetensors (sha256 {actual[:12]}) is not the model "
              f"this log was played with (sha256 {expected[:12]}); the render will differ from the recording "
              "(give that model with --model)", file=sys.stderr)


def input_feed(path, header: dict, *, model_rate: int, hop: int, log_path=None):
    """The input a render plays: the file given (`--input`), else the one the log's header names
    (its sha256 checked), else None. One shorter than a hop is refused: the voice it plays would
    never sound, and the render would say nothing of it."""
    fields = header.get("input")
    if path:
        feed = FileFeed(path, model_rate=model_rate)
    elif fields:
        feed = feed_from_header(fields, model_rate=model_rate, log_path=log_path)
    else:
        return None
    if len(feed.samples) < hop:
        seconds = len(feed.samples) / model_rate
        raise ParameterError(f"input file {feed.path} is {1000 * seconds:.2f} ms long ({round(seconds * feed.source_samplerate)} "
                             f"samples at {feed.source_samplerate} Hz), shorter than one hop of the model ({hop} "
                             f"samples at {model_rate} Hz, {1000 * hop / model_rate:.2f} ms): give an input at least "
                             "that long")
    return feed


def render_header(engine, loaded, *, samplerate: int, seconds: float, faded: bool = False) -> dict:
    """The header of a render's log (`--log`): what `livegen render LOG` needs to render it again
    (`faded`: the render ended with the stop fade, see `ends_with_fade`)."""
    model_dir = None if loaded.name == "random" else loaded.name
    return {"samplerate": samplerate, "seconds": seconds, **({"fade_end": True} if faded else {}),
            **engine_header(engine, model_dir=model_dir, model_name=loaded.name)}
