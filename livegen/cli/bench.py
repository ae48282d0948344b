"""`livegen bench NAME [ARGS...] [--markdown FILE]`: run one benchmark module from `livegen.bench`.

`--markdown FILE` (before or after NAME) also writes the printed figures to FILE, stamped with
commit, machine and load (`livegen.bench._report`); `docs/benchmarks/` holds such pages.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from pathlib import Path

import livegen.bench
from livegen.bench._report import run_with_markdown, split_markdown_option
from livegen.errors import ParameterError


def _available() -> list[str]:
    """The modules of `livegen.bench` that run as a benchmark (a `main`); read, not imported, so
    that `--help` stays quick. Others, such as `sound`, hold definitions `livegen eval` uses."""
    return sorted(m.name for m in pkgutil.iter_modules(livegen.bench.__path__) if not m.name.startswith("_")
                  and re.search(r"^def main\(", (Path(m.module_finder.path) / f"{m.name}.py").read_text(), re.M))


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark (phase, engine, model, ...) and print figures against a same-run baseline",
        description="Benchmarks print ratios against a baseline measured in the same run.",
    )
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write the figures to FILE as Markdown, stamped with commit, machine and load "
                             "(may also follow NAME)")
    parser.add_argument("name", help=f"benchmark to run: {', '.join(_available()) or '(none yet)'}")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for that benchmark (see `livegen bench NAME --help`)")
    return parser


def run(args) -> int:
    names = _available()
    if args.name not in names:
        raise ParameterError(f"no benchmark named {args.name!r}; choose one of: {', '.join(names)}")

    try:
        argv, markdown = split_markdown_option(list(args.args))
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    markdown = markdown or args.markdown
    module = importlib.import_module(f"livegen.bench.{args.name}")
    if markdown is None:
        return int(module.main(argv) or 0)
    try:
        return run_with_markdown(args.name, argv, lambda: module.main(argv), markdown)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
