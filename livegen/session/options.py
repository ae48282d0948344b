"""`livegen play`'s recording options, light enough for the CLI's parser (no numpy)."""

from __future__ import annotations

import argparse

from livegen.data.files import check_output_folder

FORMATS = ("FLOAT", "PCM_24")


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    """`--record DIR`, `--record-dir DIR`, `--record-format` for `livegen play`."""
    group = parser.add_argument_group("recording")
    group.add_argument("--record", metavar="DIR",
                       help="record from the first sample into DIR (WAV + session log named by date and time)")
    group.add_argument("--record-dir", metavar="DIR",
                       help="where recordings started later (UI 'r', OSC /livegen/record 1, MIDI) go "
                            "(default: the current directory)")
    group.add_argument("--record-format", choices=FORMATS, default="FLOAT", type=str.upper,
                       help="WAV sample format: FLOAT (32-bit float, exactly what is heard; default) or PCM_24")


def session_argv(args) -> list[str]:
    """The recording options as command-line words (for a supervisor re-running `play`)."""
    out = []
    if getattr(args, "record", None):
        out += ["--record", str(args.record)]
    if getattr(args, "record_dir", None):
        out += ["--record-dir", str(args.record_dir)]
    if getattr(args, "record_format", "FLOAT") != "FLOAT":
        out += ["--record-format", args.record_format]
    return out


def check_session_options(args) -> None:
    """Refuse a recording folder that is a file or cannot be written, before anything plays: a
    take found missing after the show is lost."""
    for option in ("record", "record_dir"):
        if getattr(args, option, None):
            check_output_folder(getattr(args, option), "--" + option.replace("_", "-"))
