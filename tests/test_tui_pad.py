"""The XY pad draws what issue 6 asks of it: the cursor, a short trail that fades, and the
model's family centroids as labelled dots (the snapshots clear the trail, so it is checked here);
and the points of the voices that sound with an id (MPE, per-touch OSC), from the engine's status."""

from __future__ import annotations

import time

import pytest

from livegen.control.oscaddress import PREFIX
from livegen.tui.osc import voice_points
from livegen.tui.widgets import XYPad
from livegen.tui.model_info import read_model_info
from livegen.tui.widgets.xy_pad import LABEL_MIN, TRAIL_SECONDS, _label_places
from helpers import make_app, run, until

pytestmark = pytest.mark.slow  # a Pilot scenario of seconds


def _screen(pad: XYPad) -> str:
    width, height = pad.content_size
    return "\n".join(pad.render_line(row).text for row in range(height))


def test_pad_draws_cursor_trail_that_fades_and_labelled_centroids(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        pad = app.query_one(XYPad)
        pad.set_centroids({"strings": (0.2, 0.8), "organ": (0.7, 0.2), "reed": (0.2, 0.3), "brass": (0.23, 0.3)})
        await pilot.pause()
        text = _screen(pad)
        assert text.count("◆") == 1 and "•" not in text, "a cursor and, before any move, no trail"
        assert text.count("●") == 4 and "strings" in text and "organ" in text
        assert "reed" in text and "brass" in text, f"two families side by side each keep a label:\n{text}"
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


def _marks(pad: XYPad, mark: str) -> list[tuple[int, int]]:
    """(column, row) of each `mark` drawn on the pad."""
    height = pad.content_size.height
    return [(col, row) for row in range(height) for col, ch in enumerate(pad.render_line(row).text) if ch == mark]


def test_pad_draws_each_sounding_voice_from_the_status(fake):
    """Status `voices_xy` (polled) and `/livegen/voices_xy` (pushed to subscribers) put a ◇ at each
    voice's point; once no voice sounds (the key absent, or the push empty) the marks go."""
    app = make_app(fake.port)

    async def scenario(pilot):
        pad = app.query_one(XYPad)
        width, height = pad.content_size
        assert not _marks(pad, "◇")
        fake.status["voices_xy"] = [0.0, 1.0, 1.0, 0.0, 0.5, 0.25]  # three voices, one at each corner and one inside
        assert await until(pilot, lambda: len(_marks(pad, "◇")) == 3), "the status poll draws them"
        assert sorted(_marks(pad, "◇")) == sorted([(0, 0), (width - 1, height - 1),
                                                   (round(0.5 * (width - 1)), round(0.75 * (height - 1)))])
        assert len(_marks(pad, "◆")) == 1, "the performer's point is drawn too"
        del fake.status["voices_xy"]
        assert await until(pilot, lambda: not _marks(pad, "◇")), "no voice sounds: no marks"
        assert await until(pilot, lambda: bool(fake.subscribers))
        fake.push(PREFIX + "voices_xy", 0.25, 0.5)
        assert await until(pilot, lambda: _marks(pad, "◇") == [(round(0.25 * (width - 1)), round(0.5 * (height - 1)))]), \
            "feedback moves them between polls"
        fake.push(PREFIX + "voices_xy")
        assert await until(pilot, lambda: not _marks(pad, "◇"))

    run(app, scenario)


def test_voice_points_read_the_status_list_and_its_text():
    assert voice_points([0.1, 0.2, 0.3, 0.4]) == [(0.1, 0.2), (0.3, 0.4)]
    assert voice_points("[0.1, 0.2, 0.3, 0.4]") == [(0.1, 0.2), (0.3, 0.4)]  # the status as OSC text
    assert voice_points("[0.1 0.2]") == [(0.1, 0.2)]  # numpy's text
    assert voice_points([1.5, -0.5, float("nan"), 0.5]) == [(1.0, 0.0)]  # clipped to the pad; NaN dropped
    assert voice_points(None) == voice_points("") == voice_points("[]") == voice_points("none") == []


def test_pad_draws_the_voices_a_real_engine_plays(live_play):
    """Attached to `livegen play` on JACK dummy: a touch client's two voices, one moved off the
    performer's point by `/livegen/voice/2/xy`, are drawn where the engine's status puts them."""
    play = live_play("--no-midi")
    app = make_app(play.port)

    async def scenario(pilot):
        pad = app.pad
        touch = play.new_client()
        touch.send_message("/livegen/voice/2/xy", [0.25, -0.25])  # before its note, as a keyboard sends it
        touch.send_message("/livegen/voice/1/note", [60, 90])
        touch.send_message("/livegen/voice/2/note", [67, 90])
        flat = lambda: sorted(v for point in pad.voice_points for v in point)
        assert await until(pilot, lambda: flat() == pytest.approx([0.25, 0.5, 0.5, 0.75], abs=1e-3), 30), \
            f"voices_xy {app.status.get('voices_xy')!r}; play's log:\n{play.log}"
        width, height = pad.content_size
        # voice 1 has no offset: it lies under the performer's ◆; voice 2 sits at (0.75, 0.25)
        assert _marks(pad, "◇") == [(round(0.75 * (width - 1)), round(0.75 * (height - 1)))]
        touch.send_message("/livegen/voice/1/note", [60, 0])
        touch.send_message("/livegen/voice/2/note", [67, 0])
        assert await until(pilot, lambda: not pad.voice_points, 30), app.status.get("voices_xy")
        assert not _marks(pad, "◇")

    run(app, scenario, size=(100, 30))


def test_family_labels_overwrite_no_dot_and_no_other_label():
    """The bundled model's 16 families on pads of several sizes: every dot stays a dot, labels
    keep a blank cell from dots and from each other, and a label is its family's name or a cut of
    it no shorter than LABEL_MIN."""
    centroids = read_model_info(None).centroids
    assert len(centroids) >= 10
    for width, height in ((95, 28), (60, 18), (40, 12), (150, 40)):
        dots = {}
        for name, (fx, fy) in sorted(centroids.items()):
            dots[(round(fx * (width - 1)), round((1.0 - fy) * (height - 1)))] = name
        placed = _label_places(dots, width)
        cells = {}
        for (col, row), text, start in placed:
            assert dots[(col, row)].replace("_", " ").startswith(text) and len(text) >= LABEL_MIN
            assert start + len(text) <= width and start >= 0
            for c in range(start, start + len(text)):
                assert (c, row) not in dots, (text, c, row)
                assert all((n, row) not in cells for n in (c - 1, c, c + 1)), (text, cells.get((c, row)))
            for c in range(start, start + len(text)):
                cells[(c, row)] = text
        assert len(placed) >= 0.75 * len(dots), (width, height, [d for d in dots.values()])
