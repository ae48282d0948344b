"""Continuation and autonomous generation: a block GRU over spectral frames, steered by a style latent."""

from livegen.continuation.io import (
    default_continuation_path,
    is_continuation_model,
    load_continuation,
    save_continuation,
)
from livegen.errors import LivegenError

__all__ = ["default_continuation_path", "is_continuation_model", "load_continuation", "save_continuation"]


def run_as_module(argv, *, prog: str, command: str, add_parser, maybe_run, not_ours: str) -> int:
    """`python -m livegen.continuation.<x>`: parse `argv` as `livegen <command>` does and run
    `maybe_run(args)`; errors print without a traceback and give 2, as in the CLI, and so does
    `maybe_run` answering None (``not_ours(args)`` says why)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog=prog)
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args([command, *(sys.argv[1:] if argv is None else argv)])
    try:
        code = maybe_run(args)
    except LivegenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if code is None:
        print(f"error: {not_ours(args)}", file=sys.stderr)
        return 2
    return code
