"""The UI's sound check key (F6), driven by Pilot against the stand-in engine on real UDP."""

from __future__ import annotations

import pytest

from helpers import make_app, run, shown_keys, until
from livegen.tui.screens.help import help_markdown
from livegen.tui.widgets import StatusLine


@pytest.mark.slow
def test_f6_asks_for_a_sound_check_and_shows_the_answer(fake):
    app = make_app(fake.port)

    def said(text: str) -> bool:
        return any(text in n.message for n in app._notifications)

    async def scenario(pilot):
        assert shown_keys(app).get("f6") == "soundcheck", shown_keys(app)
        assert "| `F6` | sound check" in help_markdown()
        assert fake.wait_subscribed()
        await pilot.press("f6")  # no audio input in the status: the engine's answer will say so, not "play"
        assert fake.wait_for("/livegen/input/soundcheck", 1)[0][1] == (4.0,)
        assert app.query_one(StatusLine).osc_last == "/livegen/input/soundcheck" and not said("play as loud")
        app.status["input_level_db"] = -40.0  # the engine has an audio input (its status says so)
        await pilot.press("f6")
        assert len(fake.wait_for("/livegen/input/soundcheck", 2)) == 2
        assert await until(pilot, lambda: said("play as loud as you will"))
        fake.push("/livegen/input/soundcheck", "input_gain +3.0 dB: the loud playing ...")
        assert await until(pilot, lambda: said("sound check: input_gain +3.0 dB")), \
            [n.message for n in app._notifications]

    run(app, scenario)
