"""The UI's seed action and the model picker with continuation models, driven by Pilot.

Against the stand-in engine on real UDP (what goes on the wire, which keys do what), and
against the real `livegen play --headless` on jackd dummy (the picker switches to the bundled
continuation model and back, the seed action makes the engine play a file).
"""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from conftest import REPO
from livegen.continuation.params import continuation_param_specs
from livegen.control.oscfake import model_specs
from livegen.tui.app import LivegenApp
from livegen.tui.model_info import ModelInfo, read_model_info
from livegen.tui.osc import OscLink
from livegen.tui.screens import HelpScreen, SeedScreen
from livegen.tui.widgets import ParamSlider
from helpers import MUSIC_SR, last_args, music, run, until

BUNDLED = REPO / "models" / "continuation"
DEFAULT = REPO / "models" / "default"


def _engine_specs(path):
    """What the engine registers for a model directory: a continuation model's own parameters
    go before the latent offsets."""
    specs = model_specs(path)
    if read_model_info(path).continuation:
        first_z = next(i for i, spec in enumerate(specs) if spec.name == "z0")
        specs[first_z:first_z] = continuation_param_specs()
    return specs


def _app(port: int, *, continuation: bool, model_roots=None) -> LivegenApp:
    info = ModelInfo(path="/models/test", latent_dim=8, continuation=continuation)
    return LivegenApp(OscLink("127.0.0.1", port), info=info, model_roots=model_roots)


@pytest.mark.slow
def test_seed_key_sends_the_file_and_clashes_with_no_key(fake, tmp_path, monkeypatch):
    """F4 (or Ctrl+E) opens the seed input; typing a path there plays no note and records
    nothing; Enter sends /livegen/seed with the absolute path; Esc and F4 close it."""
    monkeypatch.chdir(tmp_path)
    app = _app(fake.port, continuation=True)

    async def scenario(pilot):
        await pilot.press("f4")
        assert isinstance(app.screen, SeedScreen)
        await pilot.press(*"drums r.wav", "enter")
        assert await until(pilot, lambda: last_args(fake, "/livegen/seed") == (str(tmp_path / "drums r.wav"),))
        assert not isinstance(app.screen, SeedScreen)
        assert fake.messages("/livegen/note") == [] and fake.messages("/livegen/record") == []
        await pilot.press("ctrl+e")
        assert isinstance(app.screen, SeedScreen)
        assert app.screen.query_one("#seed-path").value == "drums r.wav", "the last path is offered again"
        await pilot.press("escape")
        assert not isinstance(app.screen, SeedScreen)
        await pilot.press("f4", "f4")
        assert not isinstance(app.screen, SeedScreen)
        assert len(fake.messages("/livegen/seed")) == 1
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query_one("Markdown").source
        assert "F4 or Ctrl+E" in text and "/livegen/seed s" in text
        await pilot.press("escape", "a")  # a is still a note on the main screen
        assert await until(pilot, lambda: fake.messages("/livegen/note") != [])

    run(app, scenario)


@pytest.mark.slow
def test_seed_key_with_a_vae_model_says_what_to_load(fake):
    app = _app(fake.port, continuation=False)

    async def scenario(pilot):
        await pilot.press("f4")
        assert await until(pilot, lambda: any("not a continuation model" in n.message and "models/continuation" in n.message
                                              for n in app._notifications)), [n.message for n in app._notifications]
        assert not isinstance(app.screen, SeedScreen)
        assert fake.messages("/livegen/seed") == []

    run(app, scenario)


@pytest.mark.slow
def test_picker_to_a_continuation_model_adds_its_sliders_and_back(fake, tmp_path):
    roots = tmp_path / "models"
    cont, vae = roots / "cont", roots / "vae"
    for path, fmt in ((cont, "livegen-continuation"), (vae, "livegen-spectral-vae")):
        path.mkdir(parents=True)
        (path / "config.json").write_text(json.dumps({"format": fmt, "config": {"latent_dim": 8}}))
    assert read_model_info(cont).continuation and not read_model_info(vae).continuation
    app = _app(fake.port, continuation=False, model_roots=[roots])
    fake.specs_for = _engine_specs

    async def scenario(pilot):
        names = lambda: [s.param for s in app.query(ParamSlider)]  # noqa: E731
        assert "temperature" not in names()
        await pilot.press("f3", "tab", *str(cont), "enter")
        assert await until(pilot, lambda: "temperature" in names())
        assert last_args(fake, "/livegen/model") == (str(cont.resolve()),)
        order = names()
        assert order.index("return") < order.index("z0") and {"follow", "return"} <= set(order)
        assert [n for n in order if n.startswith("z")] == [f"z{i}" for i in range(8)]
        await pilot.press("f4")
        assert isinstance(app.screen, SeedScreen)  # a continuation model plays now: seeding is offered
        await pilot.press("escape", "f3", "tab", *str(vae), "enter")
        assert await until(pilot, lambda: "temperature" not in names())
        assert "follow" not in app.specs and "z7" in app.sliders

    run(app, scenario)


def test_ui_switches_the_real_engine_to_continuation_seeds_it_and_back(live_play, tmp_path):
    """Pilot in attach mode against `play --headless` on jackd dummy: the picker loads the bundled
    continuation model while playing, the seed action makes it play a file (the engine's status
    names it), and the picker goes back to models/default."""
    seed_wav = tmp_path / "loop.wav"
    sf.write(seed_wav, music(0.8, 9), MUSIC_SR, subtype="FLOAT")
    play = live_play("--no-midi")
    app = LivegenApp(OscLink("127.0.0.1", play.port), info=read_model_info(None))

    async def scenario(pilot):
        assert await until(pilot, lambda: app.status.get("model"), 30), app.status
        await pilot.press("f4")
        await pilot.pause()
        assert not isinstance(app.screen, SeedScreen), "models/default takes no seed"
        await pilot.press("f3", "tab", *str(BUNDLED), "enter")
        assert await until(pilot, lambda: app.info.continuation, 90), f"{app.status}\n{play.log}"
        assert await until(pilot, lambda: app.status.get("model") == str(BUNDLED), 10), app.status
        assert await until(pilot, lambda: "temperature" in app.sliders, 10)
        await pilot.press("f4")
        assert isinstance(app.screen, SeedScreen)
        await pilot.press(*str(seed_wav), "enter")
        assert await until(pilot, lambda: app.status.get("seed") == "loop.wav", 30), f"{app.status}\n{play.log}"
        assert await until(pilot, lambda: any("loop.wav plays" in n.message for n in app._notifications), 10)
        assert await until(pilot, lambda: (app.meter.peak_db or -200) > -60, 10), "the seed is heard"
        await pilot.press("f3", "tab", *str(DEFAULT), "enter")
        assert await until(pilot, lambda: not app.info.continuation and app.status.get("model") == str(DEFAULT), 90), \
            app.status
        assert await until(pilot, lambda: "temperature" not in app.sliders, 10)

    run(app, scenario, size=(100, 30))
    assert play.stop() == 0, play.log
    assert "Traceback" not in play.log
