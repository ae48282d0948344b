"""`livegen bench NAME [ARGS...]`: run one benchmark module from `livegen.bench`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def _available() -> list[str]:
    import livegen.bench

    return sorted(m.name for m in pkgutil.iter_modules(livegen.bench.__path__) if not m.name.startswith("_"))


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark (phase, engine, model, ...) and print figures against a same-run baseline",
        description="Benchmarks print ratios against a baseline measured in the same run.",
    )
    parser.add_argument("name", help=f"benchmark to run: {', '.join(_available()) or '(none yet)'}")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for that benchmark (see `livegen bench NAME --help`)")
    return parser


def run(args) -> int:
    from livegen.errors import ParameterError

    names = _available()
    if args.name not in names:
        raise ParameterError(f"no benchmark named {args.name!r}; choose one of: {', '.join(names)}")
    module = importlib.import_module(f"livegen.bench.{args.name}")
    return int(module.main(args.args) or 0)
