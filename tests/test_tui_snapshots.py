"""Whole-screen snapshots of the performance UI (pytest-textual-snapshot), small and large.

Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the report before committing.
"""

from __future__ import annotations

import socket
import time

import pytest

from conftest import IN_CI  # noqa: E402

try:
    import pytest_textual_snapshot  # noqa: F401
except ImportError:
    if IN_CI:
        raise  # CI=true: a missing component fails
    pytest.skip("missing component: pytest-textual-snapshot (pip install pytest-textual-snapshot)",
                allow_module_level=True)

from livegen.control.oscaddress import param_rows  # noqa: E402
from livegen.engine.params import ParamStore  # noqa: E402
from livegen.tui.app import LivegenApp  # noqa: E402
from livegen.tui.model_info import ModelInfo  # noqa: E402
from livegen.tui.osc import EngineDelta, OscLink  # noqa: E402
from livegen.tui.params import info_from_args  # noqa: E402

CENTROIDS = {"piano": (0.15, 0.75), "organ": (0.55, 0.25), "strings": (0.8, 0.85), "brass": (0.4, 0.6),
             "bass": (0.2, 0.15)}
STATUS = {"samplerate": 48000, "blocksize": 256, "latency_ms": 10.7, "xruns": 0, "load": 0.23, "voices": 2,
          "recording": 1, "record_file": "/takes/take-001.wav", "record_seconds": 75, "record_bytes": 14_400_000,
          "device": "cpu", "audio_device": "dummy (JACK)", "midi_connected": "nanoKONTROL2",
          "midi_last": "CC 14 = 93", "osc_last": "/livegen/xy"}


@pytest.fixture
def sink():
    """A UDP port that swallows what the UI sends, so nothing answers during a snapshot."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def make_app(port: int) -> LivegenApp:
    info = ModelInfo(path="/models/default", latent_dim=8, centroids=dict(CENTROIDS))
    return LivegenApp(OscLink("127.0.0.1", port), info=info)


async def populate(pilot) -> None:
    """Feed fixed engine feedback so every widget shows something, independent of timing."""
    app = pilot.app
    app.link.last_reply_time = time.monotonic() + 1e6  # never "no reply" during the snapshot
    app.status_line.osc_port = 9000
    # the engine's parameter table, as /livegen/params gives it (nothing answers here)
    rows = [info_from_args(args) for args in param_rows(ParamStore.for_model(8).specs)]
    app.apply(EngineDelta(param_rows=rows, received=1))
    while not app.sliders:
        await pilot.pause(0.02)
    spectra = [[-95.0 + 80.0 * max(0.0, 1.0 - abs(b - 10 - (r % 7)) / 12.0) - 0.3 * b for b in range(64)]
               for r in range(12)]
    app.apply(EngineDelta(params={"x": 0.3, "y": 0.65, "gain": -3.0, "z2": 1.5, "drift": 0.25},
                          meter=(-4.5, -14.0), spectra=spectra, status=dict(STATUS), received=1,
                          voices_xy=[(0.22, 0.8), (0.45, 0.5)]))  # two voices an MPE keyboard slid apart
    app.pad.trail.clear()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_main_screen(snap_compare, sink, size):
    assert snap_compare(make_app(sink), terminal_size=size, run_before=populate)


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_help_screen(snap_compare, sink, size):
    async def open_help(pilot):
        await populate(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(make_app(sink), terminal_size=size, run_before=open_help)
