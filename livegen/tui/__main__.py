"""`python -m livegen.tui --connect PORT`: attach a UI to an engine that is already running.

Useful for a second screen (or a second performer) on a `livegen play --headless` engine, and
for measuring the UI alone (`livegen bench ui`). Quitting this UI leaves the engine running.
"""

from __future__ import annotations

import argparse
import socket
import sys

from livegen.errors import LivegenError, ranged
from livegen.tui.app import LivegenApp
from livegen.tui.model_info import read_model_info
from livegen.tui.osc import OscLink
from livegen.tui.run import model_roots, need_terminal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livegen.tui", description=__doc__.splitlines()[0])
    parser.add_argument("--connect", type=ranged(int, 1, 65535), default=9000, metavar="PORT", help="the engine's OSC port")
    parser.add_argument("--host", default="127.0.0.1", help="the engine's host")
    parser.add_argument("--model", help="model directory, for the pad's family centroids")
    args = parser.parse_args(argv)
    try:
        need_terminal("give it one (or use `livegen play --headless` and OSC alone)")
        socket.getaddrinfo(args.host, args.connect, type=socket.SOCK_DGRAM)  # a name that does not resolve
    except socket.gaierror as exc:
        print(f"{parser.prog}: error: --host {args.host!r}: {exc.strerror}; give the engine machine's address",
              file=sys.stderr)
        return 2
    except LivegenError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    info = read_model_info(args.model)
    link = OscLink(args.host, args.connect)
    try:
        LivegenApp(link, info=info, model_roots=model_roots(info.path)).run()
    finally:
        link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
