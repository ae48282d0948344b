"""`livegen play` with the UI: start the engine server as a child, run the UI as its OSC client.

The UI never keeps audio alive: a stalled redraw cannot cause a dropout, and quitting stops the
engine, which finalises any recording.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

from livegen.data.files import check_output_file
from livegen.errors import ParameterError
from livegen.tui.app import LivegenApp
from livegen.tui.child import EngineProcess, engine_argv, free_udp_port, play_argv_from_sys
from livegen.tui.model_info import read_model_info
from livegen.tui.osc import OscLink


def model_roots(model_path: str) -> list:
    """Folders the model picker offers: beside the model, ./models, ., the user's models."""
    roots = [Path(model_path).parent, Path.cwd() / "models", Path.cwd(),
             platformdirs.user_data_path("livegen") / "models"]
    unique = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def need_terminal(instead: str) -> None:
    """Refuse to draw the UI without a terminal on stdin and stderr (Textual would fail inside)."""
    if not (sys.stdin.isatty() and sys.__stderr__.isatty()):
        raise ParameterError(f"this draws a terminal UI and needs a terminal on stdin and stderr; {instead}")


def run_ui(args, argv: list[str] | None = None) -> int:
    """Start the engine child with the same `play` options, run the UI, stop the child on quit.

    `argv` is what followed `play` on the command line (default: taken from `sys.argv`).
    Returns 0 on a normal quit.
    """
    if getattr(args, "ui_log", None):
        check_output_file(args.ui_log, "--ui-log", example="engine.log")
    need_terminal("run `livegen play --headless` for the engine alone")
    port = getattr(args, "osc_port", None) or free_udp_port()
    host = getattr(args, "osc_host", None) or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    play_argv = argv if argv is not None else play_argv_from_sys()
    command = [sys.executable, "-m", "livegen", "play", *engine_argv(play_argv, port)]
    log_path = Path(getattr(args, "ui_log", None) or platformdirs.user_log_path("livegen") / "engine.log")
    engine = EngineProcess(command, log_path=log_path, env=dict(os.environ))
    info = read_model_info(getattr(args, "model", None))
    link = OscLink(host, port)
    engine.start()
    try:
        app = LivegenApp(link, engine=engine, info=info, model_roots=model_roots(info.path))
        app.run()
    finally:
        code = engine.stop()
        link.close()
    if code not in (0, None, -15):
        said = [line for line in engine.log_tail().splitlines() if line.startswith("livegen play: error:")]
        if said:  # what the engine refused (a model, an event file...), said again once the screen is gone
            print(said[-1], file=sys.stderr)
        print(f"livegen play: the engine exited with code {code}; its log: {log_path}", file=sys.stderr)
    return 2 if code == 2 else 0  # 2: the engine refused what it was given
