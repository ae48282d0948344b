"""The XY pad draws what issue 6 asks of it: the cursor, a short trail that fades, and the
model's family centroids as labelled dots (the snapshots clear the trail, so it is checked here)."""

from __future__ import annotations

import time

import pytest

from livegen.tui.widgets import XYPad
from livegen.tui.widgets.xy_pad import TRAIL_SECONDS
from helpers import make_app, run, until

pytestmark = pytest.mark.slow  # a Pilot scenario of seconds


def _screen(pad: XYPad) -> str:
    width, height = pad.content_size
    return "\n".join(pad.render_line(row).text for row in range(height))


def test_pad_draws_cursor_trail_that_fades_and_labelled_centroids(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        pad = app.query_one(XYPad)
        pad.set_centroids({"strings": (0.2, 0.8), "organ": (0.7, 0.2)})
        await pilot.pause()
        text = _screen(pad)
        assert text.count("◆") == 1 and "•" not in text, "a cursor and, before any move, no trail"
        assert text.count("●") == 2 and "strings" in text and "organ" in text
        left, pressed = [], []  # the points the cursor left, in order, and when each key went
        for _ in range(5):
            left.append((pad.x, pad.y))
            pressed.append(time.monotonic())
            await pilot.press("right")
            assert (pad.x, pad.y) != left[-1], "the key moves the cursor"
            # each move leaves the point it left, and the trail is the path's newest points in
            # order: every point left less than TRAIL_SECONDS ago is still there (older ones may
            # have faded: five presses can take longer than that on a loaded machine)
            young = sum(1 for t in pressed if t > time.monotonic() - TRAIL_SECONDS)
            trail = [(x, y) for x, y, _ in pad.trail]
            assert len(trail) >= young and trail == left[-len(trail):], \
                f"the trail follows the cursor: {trail} of {left}, {young} left less than {TRAIL_SECONDS} s ago"
            assert _screen(pad).count("•") >= 1, "the trail is drawn"
        assert await until(pilot, lambda: not pad.trail, timeout=TRAIL_SECONDS + 2.0)
        assert await until(pilot, lambda: "•" not in _screen(pad)), "the trail fades away"
        assert _screen(pad).count("◆") == 1

    run(app, scenario)
