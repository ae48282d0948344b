"""The UI's sound check key (F6), driven by Pilot against the stand-in engine on real UDP."""

from __future__ import annotations

import pytest

from helpers import make_app, run, until
from livegen.tui.screens.help import help_markdown
from livegen.tui.widgets import StatusLine


@pytest.mark.slow
def test_f6_asks_for_a_sound_check_and_shows_the_answer(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        shown = {key: binding.description for key, (_, binding, _, _) in app.screen.active_bindings.items()
                 if binding.show}
        assert shown.get("f6") == "soundcheck", shown
        assert "| `F6` | sound check" in help_markdown()
        assert fake.wait_subscribed()
        app.status["input_level_db"] = -40.0  # the engine has an audio input (its status says so)
        await pilot.press("f6")
        assert fake.wait_for("/livegen/input/soundcheck", 1)[0][1] == (4.0,)
        assert app.query_one(StatusLine).osc_last == "/livegen/input/soundcheck"
        assert await until(pilot, lambda: any("play as loud as you will" in n.message for n in app._notifications))
        fake.push("/livegen/input/soundcheck", "input_gain +3.0 dB: the loud playing ...")
        assert await until(pilot, lambda: any(n.message.startswith("sound check: input_gain +3.0 dB")
                                              for n in app._notifications)), [n.message for n in app._notifications]

    run(app, scenario)


@pytest.mark.slow
def test_f6_without_an_audio_input_asks_the_engine_and_does_not_say_play(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        await pilot.press("f6")
        assert fake.wait_for("/livegen/input/soundcheck", 1)[0][1] == (4.0,)
        assert not any("play as loud" in n.message for n in app._notifications)

    run(app, scenario)
