"""The preset bar's loop (issue 8's preset-to-preset trajectories, played from the UI): `L`
asks the engine to glide through the stored presets in slot order, round and round, until `L`
again or a recall. Driven by Pilot against the stand-in engine on real UDP: what goes on the
wire, and the widgets following the engine's glide."""

from __future__ import annotations

import pytest

from livegen.tui.widgets import ParamSlider, PresetBar, XYPad
from helpers import last_args, make_app, run, settle, shown_values, until

pytestmark = pytest.mark.slow  # a Pilot scenario of seconds


def test_loop_morphs_through_stored_presets_round_and_round_until_stopped(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        gain = app.query_one("#slider-gain", ParamSlider)
        pad = app.query_one(XYPad)
        bar = app.query_one(PresetBar)
        bar.focus()
        await pilot.press("L")
        await pilot.pause()
        assert not bar.looping, "nothing to loop through yet"
        for slot, key, value, x in ((2, "at", -20.0, 0.1), (5, "percent_sign", 0.0, 0.9), (7, "ampersand", 6.0, 0.5)):
            gain.set_value(value)
            pad.set_point(x, 0.5)
            await pilot.press(key)  # shift+digit stores the slot
        for _ in range(4):
            await pilot.press("less_than_sign")
        assert bar.morph_time == 0.5
        await pilot.press("2")  # recall slot 2: the loop starts from there
        assert await until(pilot, lambda: last_args(fake, "/livegen/preset/recall") == (2,) and gain.value == -20.0)
        count = len(fake.messages("/livegen/param/gain"))
        seen = shown_values(app, "gain")
        await pilot.press("L")
        assert bar.looping and "loop" in bar.render().plain
        assert await until(pilot, lambda: last_args(fake, "/livegen/preset/loop") == (0.5, 5, 7, 2))
        # 2 -> 5 -> 7 -> back to 2 -> 5: the slots in order, then round again
        for slot in (7, 2, 5):
            assert await until(pilot, lambda: bar.current == slot, timeout=10)
        await pilot.press("L")  # stops the loop
        assert not bar.looping and not app.morph.running
        assert await until(pilot, lambda: last_args(fake, "/livegen/preset/loop") == (0.0,))
        assert any(-20.0 < v < 0.0 for v in seen) and any(0.0 < v < 6.0 for v in seen), seen
        assert len(fake.messages("/livegen/param/gain")) == count, "the engine loops: the UI sends no values"
        await settle(pilot, lambda: len(seen))  # what the engine sent before it stopped arrived
        held = gain.value
        await pilot.pause(0.5)  # longer than a glide tick: a running loop would have moved it
        assert gain.value == held, "a stopped loop moves nothing more"
        # a recall stops a running loop too
        await pilot.press("L")
        assert bar.looping
        await pilot.press("7")
        assert not bar.looping and bar.current == 7
        assert await until(pilot, lambda: gain.value == pytest.approx(6.0))  # read back once the engine recalled

    run(app, scenario)
