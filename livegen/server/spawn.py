"""The sound server process's entry point, named rather than imported.

The client starts the server before it imports anything heavy itself (torch, numba, the model
code load in the server while the client sets up OSC, MIDI and the recorder), so the process
target lives here and loads `livegen.server.process` by name in the new process only.
"""

from __future__ import annotations

import importlib

SERVER_MODULE = "livegen.server.process"


def main(*args) -> None:
    importlib.import_module(SERVER_MODULE).serve(*args)
