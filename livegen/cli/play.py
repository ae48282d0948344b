"""`livegen play`: the instrument. `--headless` runs the engine server alone.

The engine server (`livegen.app.play`) runs OSC, MIDI and the recorder, and the sound server
process (`livegen.server`) renders inside the audio callback; without `--headless` the Textual
UI starts the engine server as its own child and talks to it over OSC.
"""

from __future__ import annotations

import argparse

from livegen.app.options import AHEAD_PERIODS, latency_option
from livegen.audio.realtime import REALTIME_PRIORITY
from livegen.cli.render import LENGTHS, LOOKAHEADS, SAMPLERATES, SEEDS, add_continuation_arguments, check_read
from livegen.control.midi import check_midi_options
from livegen.control.setup import add_control_arguments
from livegen.errors import ParameterError, ranged
from livegen.session.options import (
    add_session_arguments,
    check_session_options,
    session_argv,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "play", help="play the instrument (--headless: the engine server alone, controlled over OSC)",
        description="Play the instrument. --headless runs the engine server without the terminal UI: "
                    "audio out, decoder, OSC control. SIGINT, SIGTERM and SIGHUP (a closed terminal) stop it cleanly.")
    parser.add_argument("--headless", action="store_true", help="engine server only (no terminal UI)")
    parser.add_argument("--model", help="model directory (default: models/default)")
    parser.add_argument("--audio-device", help="output device index or part of its name (see `livegen devices`)")
    parser.add_argument("--input-device",
                        help="audio input that plays a voice of the model (its pitch, loudness and timbre; a "
                             "continuation model follows it): index or part of its name (see `livegen devices`); "
                             "on JACK give `system` and connect what you play to livegen-audio:input")
    parser.add_argument("--samplerate", type=SAMPLERATES, help="output sample rate (default: the device's)")
    parser.add_argument("--blocksize", type=ranged(int, 0, 8192), default=0, help="audio block size in frames (default: the host's; on JACK its period sets it)")
    parser.add_argument("--latency", type=latency_option, default="low", help="PortAudio output latency: low, high or seconds (not on JACK: its periods set it)")
    parser.add_argument("--ahead-periods", type=ranged(int, 0, 16), default=AHEAD_PERIODS,
                        help="device periods the sound server renders ahead, on a thread beside the audio "
                             "callback: a render late by up to that much is no dropout; the latency grows by the lead "
                             f"plus one period (default {AHEAD_PERIODS}: each hop is rendered in "
                             "the callback that plays it, the lowest latency)")
    parser.add_argument("--ahead-ms", type=ranged(float, 0, 1000), default=None,
                        help="the same lead in milliseconds (instead of --ahead-periods)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda or mps")
    parser.add_argument("--seed", type=SEEDS, default=0, help="noise and drift seed")
    parser.add_argument("--lookahead", type=LOOKAHEADS,
                        help="inverter look-ahead frames (0: a parameter sweep is heard one hop sooner; "
                             "notes sound at once at any look-ahead)")
    parser.add_argument("--read", default="window", choices=("window", "centre", "committed"),
                        help="how the inverter reads its frames: centre makes a bend, slide or glide heard half a "
                             "synthesis window (~21 ms) sooner, at some cost on sharp transients; committed ~16 ms "
                             "sooner, transients as with window (docs/glide.md); default window")
    parser.add_argument("--events", help="also play this event file on the live clock (t in seconds from start)")
    parser.add_argument("--duration", type=LENGTHS, help="stop after this many seconds")
    parser.add_argument("--threads", type=ranged(int, 1, 256), default=1, help="torch CPU threads for the decoder")
    parser.add_argument("--no-supervisor", action="store_true",
                        help="accepted for compatibility: the engine always runs in a sound server process "
                             "that play restarts itself")
    parser.add_argument("--nice", type=ranged(int, -20, 19), default=-10,
                        help="CPU priority of the engine server (negative = more; needs privileges; 0 = leave)")
    parser.add_argument("--realtime-priority", type=ranged(int, 0, 94), default=REALTIME_PRIORITY, metavar="N",
                        help="where the host API is not JACK (JACK gives its own), the audio thread that renders "
                             "asks for SCHED_FIFO priority N+5; needs privileges, falls back to normal "
                             f"scheduling when refused; 0 = off (default {REALTIME_PRIORITY})")
    add_control_arguments(parser)  # --osc-*, --midi-*
    add_session_arguments(parser)  # --record*
    add_continuation_arguments(parser)  # --seed-audio, --temperature for continuation models
    ui = parser.add_argument_group("terminal UI (without --headless)")  # options only the UI reads
    ui.add_argument("--ui-log", metavar="FILE", default=None,
                    help="where the engine's output goes while the UI owns the terminal "
                         "(default: engine.log in the user log directory)")
    return parser


def _rebuild_argv(args) -> list[str]:
    """The parsed `play` options as command-line words, for the engine child the UI starts
    when it was called without a `play` command line (e.g. `main([...])` from Python)."""
    out: list[str] = []
    for name in ("model", "audio_device", "input_device", "samplerate", "blocksize", "latency", "ahead_periods", "ahead_ms", "device", "seed",
                 "lookahead", "read", "events", "duration", "threads", "nice", "realtime_priority", "osc_port", "osc_host", "midi_map",
                 "midi_channel", "mpe", "seed_audio", "temperature"):
        value = getattr(args, name, None)
        if value is not None:
            out += [f"--{name.replace('_', '-')}", str(value)]
    allow = getattr(args, "osc_allow", None)
    if allow:
        out += ["--osc-allow", *map(str, allow)]
    for spec in getattr(args, "midi_in", None) or []:
        out += ["--midi-in", str(spec)]
    for flag in ("no_osc", "no_discovery", "no_midi"):
        if getattr(args, flag, False):
            out.append(f"--{flag.replace('_', '-')}")
    return out + session_argv(args)


def run(args) -> int:
    check_midi_options(args)  # a wrong MIDI option is said before a sound server starts
    check_read(args.read, args.lookahead)
    check_session_options(args)
    if args.temperature is not None:  # a spectral model has no temperature: say so instead of ignoring it
        from livegen.tui.model_info import read_model_info

        if not read_model_info(args.model).continuation:
            raise ParameterError(f"--temperature needs a continuation model (--model models/continuation); "
                                 f"{args.model or 'the default model'} is not one")
    if not args.headless:
        from livegen.tui.child import play_argv_from_sys
        from livegen.tui.run import run_ui

        # The options after `play` on this command line, else (called from Python) the parsed ones.
        return run_ui(args, play_argv_from_sys() or _rebuild_argv(args))
    from livegen.app.options import device_options, engine_spec, lead_samples
    from livegen.server.client import RemoteEngine

    # The sound server starts first: it imports torch and loads the model while this process
    # imports the controls and the recorder.
    engine = RemoteEngine(device_options(args), engine_spec(args), lead=lead_samples(args, args.samplerate or 48000))
    from livegen.app.play import serve

    return serve(args, engine)
