"""The `livegen` command line: one module per sub-command, each with `add_parser` and `run`.

Command modules keep their top-level imports light (no torch, no librosa) so that
`livegen --help` and argument errors answer at once; heavy imports live inside `run`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from livegen import __version__
from livegen.errors import LivegenError

COMMANDS = ("play", "render", "resynth", "devices", "dataset", "train", "eval", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livegen",
        description="A live neural instrument: play the latent space of a spectrogram VAE.",
    )
    parser.add_argument("--version", action="version", version=f"livegen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"livegen.cli.{name}")
        command = module.add_parser(sub)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except LivegenError as exc:
        print(f"livegen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
