"""The performance UI against a stand-in engine on real UDP (python-osc), driven by Pilot.

Every interaction is checked on the wire: what the fake engine received, and how the widgets
move when it pushes feedback. Quit and crash handling run a real child process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from zeroconf import IPVersion, Zeroconf

from conftest import REPO, require
from helpers import last_args, make_app, network_address, run, shown_values, until
from livegen.control.mdns import OSC_TYPE, OSCJSON_TYPE
from livegen.tui.child import EngineProcess, engine_argv
from livegen.tui.model_info import read_model_info
from livegen.tui.notes import GATE_SECONDS
from livegen.tui.screens import EngineDiedScreen, HelpScreen, LearnScreen, ModelPickerScreen
from livegen.tui.widgets import InputMeter, OutputMeter, ParamSlider, PresetBar, StatusLine, Waterfall, XYPad


@pytest.mark.slow
def test_pad_is_focused_and_drag_sends_xy(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        assert isinstance(app.focused, XYPad)
        assert await until(pilot, lambda: fake.subscribers), "the UI subscribes to feedback"
        pad = app.query_one(XYPad)
        width, height = pad.content_size
        await pilot.mouse_down("#pad", offset=(1, 1))  # border is 1 cell: content (0, 0)
        await pilot.hover("#pad", offset=(1 + width // 2, 1 + height - 1))
        await pilot.hover("#pad", offset=(width, 1 + height - 1))
        await pilot.mouse_up("#pad", offset=(width, 1 + height - 1))
        assert await until(pilot, lambda: last_args(fake, "/livegen/xy") == pytest.approx((1.0, 0.0), abs=0.01)), \
            f"dragging sends /livegen/xy: {fake.messages('/livegen/xy')}"
        x, y = fake.messages("/livegen/xy")[-1][1]
        assert x == pytest.approx(1.0, abs=0.01) and y == pytest.approx(0.0, abs=0.01)
        assert (pad.x, pad.y) == pytest.approx((x, y))
        # the press at the top-left corner went out too (first message of the drag)
        first = fake.messages("/livegen/xy")[0][1]
        assert first == pytest.approx((0.0, 1.0), abs=0.01)

    run(app, scenario)


@pytest.mark.slow
def test_pad_arrow_keys_coarse_and_fine(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        await pilot.press("right", "right", "up")
        await pilot.press("shift+down")
        assert await until(pilot, lambda: len(fake.messages("/livegen/xy")) >= 4), fake.messages("/livegen/xy")
        x, y = fake.messages("/livegen/xy")[-1][1]
        assert x == pytest.approx(0.55, abs=1e-6)
        assert y == pytest.approx(0.52, abs=1e-6)

    run(app, scenario)


@pytest.mark.slow
def test_slider_keys_send_parameters(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        gain = app.query_one("#slider-gain", ParamSlider)
        gain.focus()
        await pilot.press("right")
        assert await until(pilot, lambda: last_args(fake, "/livegen/param/gain") == pytest.approx((-6.0 + 0.72,), abs=1e-4))
        await pilot.press("end")
        assert await until(pilot, lambda: last_args(fake, "/livegen/param/gain") == (12.0,))
        await pilot.press("delete")
        assert await until(pilot, lambda: last_args(fake, "/livegen/param/gain") == (-6.0,))
        z0 = app.query_one("#slider-z0", ParamSlider)
        z0.focus()
        await pilot.press("shift+left", "pageup")
        assert await until(pilot, lambda: last_args(fake, "/livegen/z/0") == pytest.approx((-0.016 + 0.8,), abs=1e-4))
        voices = app.query_one("#slider-voices", ParamSlider)
        voices.focus()
        await pilot.press("left")
        assert await until(pilot, lambda: last_args(fake, "/livegen/param/voices") == (7.0,))
        # down moves to the next slider
        await pilot.press("down")
        assert app.focused.id == "slider-quality"
        # the mouse drags a slider: to the bar's right end is the maximum
        drift = app.query_one("#slider-drift", ParamSlider)
        start, bar = drift._bar_geometry()
        await pilot.mouse_down("#slider-drift", offset=(start + 1, 0))
        await pilot.hover("#slider-drift", offset=(start + bar + 3, 0))
        await pilot.mouse_up("#slider-drift", offset=(start + bar + 3, 0))
        assert await until(pilot, lambda: last_args(fake, "/livegen/param/drift") == (1.0,))
        assert app.focused is drift and drift.value == 1.0

    run(app, scenario)


@pytest.mark.slow
def test_remote_changes_move_widgets_without_echo(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        assert await until(pilot, lambda: fake.subscribers)
        sent_before = len(fake.received)
        fake.push("/livegen/param/gain", 3.0)
        fake.push("/livegen/z/3", -2.0)
        fake.push("/livegen/xy", 0.1, 0.9)
        gain = app.query_one("#slider-gain", ParamSlider)
        z3 = app.query_one("#slider-z3", ParamSlider)
        pad = app.query_one(XYPad)
        assert await until(pilot, lambda: gain.value == 3.0 and z3.value == -2.0 and pad.x == pytest.approx(0.1))
        assert pad.y == pytest.approx(0.9)
        # the UI's next status poll goes out after anything the feedback could have made it send
        polls = len(fake.messages("/livegen/status"))
        assert await until(pilot, lambda: len(fake.messages("/livegen/status")) > polls)
        echoed = [a for a, _ in fake.received[sent_before:] if a.startswith(("/livegen/param", "/livegen/z", "/livegen/xy"))]
        assert echoed == [], "feedback must not be sent back to the engine"

    run(app, scenario)


@pytest.mark.slow
def test_meter_spectrum_and_status_line(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        assert await until(pilot, lambda: fake.subscribers)
        fake.push("/livegen/meter", -0.05, -9.0)
        fake.push("/livegen/spectrum", *[float(-100 + i) for i in range(64)])
        fake.status["xruns"] = 3
        fake.status["midi_mpe"] = "lower 15"
        meter = app.query_one(OutputMeter)
        waterfall = app.query_one(Waterfall)
        assert await until(pilot, lambda: meter.peak_db is not None and waterfall.rows)
        assert meter.peak_db == pytest.approx(-0.05) and meter.rms_db == pytest.approx(-9.0)
        assert meter.clipping()
        status = app.query_one(StatusLine)
        assert await until(pilot, lambda: "xruns 3" in status.render().plain)
        text = status.render().plain
        assert "48000Hz" in text and "blk 256" in text and "10.7ms" in text and "load 12%" in text
        assert "xruns 3" in text
        assert "MIDI livegen MPE lower 15" in text and "OSC :" in text
        fake.status["record_error"] = "disk full: recording stopped"
        assert await until(pilot, lambda: "rec ✕ disk full" in status.render().plain)

    run(app, scenario)


@pytest.mark.slow
def test_status_line_counts_unknown_osc_addresses_once_there_are_some(fake):
    """`osc_unknown` (messages to addresses livegen lacks) is shown beside the OSC port when not 0:
    a controller whose patch sends to a wrong address is seen at once."""
    app = make_app(fake.port)

    async def scenario(pilot):
        status = app.query_one(StatusLine)
        fake.status["osc_unknown"] = 0
        assert await until(pilot, lambda: "xruns" in status.render().plain)  # the fake's status has come
        assert "unknown" not in status.render().plain
        fake.status["osc_unknown"] = 7
        assert await until(pilot, lambda: "7 unknown" in status.render().plain), status.render().plain

    run(app, scenario)


@pytest.mark.slow
def test_midi_learn_binds_lists_and_deletes(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        assert await until(pilot, lambda: fake.subscribers)
        await pilot.press("f2")
        assert isinstance(app.screen, LearnScreen)
        assert fake.wait_for("/livegen/bindings", 1)
        params = app.screen.query_one("#learn-params")
        params.highlighted = app.screen.params.index("drift")
        await pilot.press("enter")
        assert await until(pilot, lambda: last_args(fake, "/livegen/learn") == ("drift",))
        fake.push("/livegen/learned", "drift", "CC 74 ch 1")
        assert await until(pilot, lambda: app.screen.bindings.get("drift") == "CC 74 ch 1")
        assert "record" in app.screen.params, "the record button is learnable like a parameter"
        assert app.learn.bindings["drift"] == "CC 74 ch 1"
        await pilot.press("tab")
        bindings = app.screen.query_one("#learn-bindings")
        assert bindings.has_focus
        bindings.highlighted = 0
        await pilot.press("delete")
        assert await until(pilot, lambda: last_args(fake, "/livegen/unlearn") == ("drift",))
        assert "drift" not in app.screen.bindings
        await pilot.press("escape")
        assert not isinstance(app.screen, LearnScreen)

    run(app, scenario)


@pytest.mark.slow
def test_presets_store_recall_and_morph(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        gain = app.query_one("#slider-gain", ParamSlider)
        bar = app.query_one(PresetBar)
        gain.set_value(-20.0)
        bar.focus()
        await pilot.press("exclamation_mark")  # shift+1: store slot 1
        gain.set_value(6.0)
        app.query_one(XYPad).set_point(0.9, 0.1)
        await pilot.press("at")  # shift+2: store slot 2
        assert await until(pilot, lambda: len(fake.messages("/livegen/preset/store")) >= 2)
        assert [args for _, args in fake.messages("/livegen/preset/store")] == [(1,), (2,)]
        await pilot.press("1")
        assert await until(pilot, lambda: last_args(fake, "/livegen/preset/recall") == (1,))
        # the widgets follow the engine's feedback, which comes after the engine has the message
        assert await until(pilot, lambda: gain.value == -20.0), gain.value
        assert await until(pilot, lambda: app.query_one(XYPad).x == pytest.approx(0.5)), app.query_one(XYPad).x
        # morph 1 -> 2 over the shortest time: the engine glides, the widgets follow its feedback
        for _ in range(4):
            await pilot.press("less_than_sign")
        assert bar.morph_time == 0.5
        count = len(fake.messages("/livegen/param/gain"))
        seen = shown_values(app, "gain")
        await pilot.press("m", "2")
        assert await until(pilot, lambda: bar.current == 2 and bar.morph_progress is None)
        assert await until(pilot, lambda: last_args(fake, "/livegen/preset/morph") == (2, 0.5))
        assert await until(pilot, lambda: gain.value == pytest.approx(6.0))
        assert [v for v in seen if -20.0 < v < 6.0], f"the slider follows the glide: {seen}"
        assert await until(pilot, lambda: (app.pad.x, app.pad.y) == pytest.approx((0.9, 0.1)))
        assert len(fake.messages("/livegen/param/gain")) == count, "the engine morphs: the UI sends no values"
        # a slot stored elsewhere (MIDI, another client): the UI reads the values back
        fake.presets[5] = dict(fake.params.snapshot(), gain=-33.0, drift=0.5)
        await pilot.press("5")
        drift = app.query_one("#slider-drift", ParamSlider)
        assert await until(pilot, lambda: gain.value == pytest.approx(-33.0) and drift.value == pytest.approx(0.5))

    run(app, scenario)


@pytest.mark.slow
def test_keyboard_notes_gate_octave_and_latch(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        await pilot.press("a")  # home row: a = C
        assert fake.wait_for("/livegen/note", 1)[0][1] == (60, 100)
        assert await until(pilot, lambda: len(fake.messages("/livegen/note")) >= 2, GATE_SECONDS + 5)
        assert fake.messages("/livegen/note")[1][1] == (60, 0), "the gate closes the note"
        await pilot.press("x", "k")  # octave up, then k = the next C
        assert fake.wait_for("/livegen/note", 3)[2][1] == (84, 100)
        await pilot.press("space")
        assert fake.wait_for("/livegen/note", 4)[3][1] == (84, 0)
        await pilot.press("z", "c", "c", "w")  # octave back down, velocity down twice, w = C#
        assert fake.wait_for("/livegen/note", 5)[4][1] == (61, 84)
        await pilot.press("v", "space")
        await pilot.press("backslash", "d")  # latch, d = E
        await pilot.pause(GATE_SECONDS + 0.2)  # past the gate: a latched note is not closed
        notes = fake.messages("/livegen/note")
        assert notes[-1][1] == (64, 92), "latched notes stay on"
        await pilot.press("d")
        assert fake.wait_for("/livegen/note", len(notes) + 1)[-1][1] == (64, 0)
        assert "oct 4 v92 latch" in app.query_one(StatusLine).keyboard
        assert fake.messages("/livegen/record") == [], "no note key records"

    run(app, scenario)


@pytest.mark.slow
def test_r_toggles_recording_and_collides_with_nothing(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        await pilot.press("r")
        assert await until(pilot, lambda: last_args(fake, "/livegen/record") == (1,))
        # the status line shows REC once the engine's next status reply says it records
        assert await until(pilot, lambda: "REC" in str(app.query_one(StatusLine).render())), \
            str(app.query_one(StatusLine).render())
        await pilot.press("r")
        assert await until(pilot, lambda: last_args(fake, "/livegen/record") == (0,))
        await pilot.press("ctrl+r")
        assert await until(pilot, lambda: last_args(fake, "/livegen/record") == (1,))
        assert len(fake.messages("/livegen/record")) == 3
        assert fake.messages("/livegen/note") == [], "r plays no note"
        # Typing a path in the model picker types the letter; it neither records nor closes.
        await pilot.press("f3", "tab")
        assert isinstance(app.screen, ModelPickerScreen)
        await pilot.press("r", "q")
        assert await until(pilot, lambda: app.screen.query_one("#model-path").value == "rq")
        assert len(fake.messages("/livegen/record")) == 3
        await pilot.press("escape", "f1", "q")  # q closes help, it does not quit
        assert not isinstance(app.screen, HelpScreen) and app.is_running
        app.query_one(PresetBar).focus()
        await pilot.press("m", "1")  # m still arms a morph on the preset bar (slot 1 is empty)
        assert fake.messages("/livegen/note") == []

    run(app, scenario)


@pytest.mark.slow
def test_record_help_and_model_picker(fake, tmp_path):
    model = tmp_path / "models" / "small"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(
        {"format": "livegen-spectral-vae", "config": {"latent_dim": 4}, "family_centroids": {"bass": [0.3, 0.2]}}))
    app = make_app(fake.port, model_roots=[tmp_path / "models"])

    async def scenario(pilot):
        await pilot.press("r")
        assert await until(pilot, lambda: last_args(fake, "/livegen/record") == (1,))
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f3")
        assert isinstance(app.screen, ModelPickerScreen)
        await pilot.press("enter")  # the listed model
        assert await until(pilot, lambda: "z3" in app.sliders and "z4" not in app.sliders)
        assert await until(pilot, lambda: last_args(fake, "/livegen/model") == (str(model.resolve()),))
        names = [s.param for s in app.query(ParamSlider)]
        assert [n for n in names if n.startswith("z")] == ["z0", "z1", "z2", "z3"]
        assert app.query_one(XYPad).centroids == {"bass": (0.3, 0.2)}

    run(app, scenario)


def test_read_model_info_never_raises(tmp_path):
    info = read_model_info(tmp_path / "missing")
    assert info.latent_dim == 8 and info.problem
    (tmp_path / "config.json").write_text(json.dumps({"config": {"latent_dim": 3}, "family_centroids": {"a": [2, -1]}}))
    info = read_model_info(tmp_path)
    assert info.latent_dim == 3 and info.centroids == {"a": (1.0, 0.0)} and not info.problem
    info = read_model_info("random")  # what --model and /livegen/model take for the seed-0 random model
    assert info.name == "random" and info.latent_dim == 8 and not info.problem and not info.centroids


@pytest.mark.live
def test_play_without_a_terminal_says_so(tmp_path):
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "livegen", "play", "--osc-port", "0"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "needs a terminal" in proc.stderr and "--headless" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_engine_argv_passes_play_options_through():
    argv = ["--model", "m", "--osc-port", "9000", "--ui-log", "x.log", "--seed=3", "--headless"]
    assert engine_argv(argv, 5555) == ["--model", "m", "--seed=3", "--headless", "--osc-port", "5555"]


def fake_child(tmp_path, port):
    stamp = tmp_path / "stamp"
    command = [sys.executable, "-m", "livegen.control.oscfake", "--osc-port", str(port), "--stamp", str(stamp)]
    return EngineProcess(command, log_path=tmp_path / "engine.log").start(), stamp


@pytest.mark.live
def test_quit_stops_the_engine_child(tmp_path):
    from livegen.tui.child import free_udp_port

    port = free_udp_port()
    engine, stamp = fake_child(tmp_path, port)
    app = make_app(port, engine=engine)

    async def scenario(pilot):
        status = app.query_one(StatusLine)
        assert await until(pilot, lambda: status.engine_state == "running", timeout=20)
        assert await until(pilot, lambda: "cpu" in app.status, timeout=5), "the UI measures its engine child's CPU"
        assert "cpu " in status.render().plain
        await pilot.press("ctrl+q")
        await until(pilot, lambda: app.return_code is not None, timeout=20)

    try:
        run(app, scenario)
        assert app.return_code == 0
        assert engine.poll() is not None, "quit leaves no engine running"
        assert stamp.read_text().split() == ["started", "stopped"], "the engine got SIGTERM and shut down cleanly"
    finally:
        engine.stop(timeout=2)


@pytest.mark.live
def test_engine_death_is_shown_and_restart_works(tmp_path):
    from livegen.tui.child import free_udp_port

    port = free_udp_port()
    engine, stamp = fake_child(tmp_path, port)
    app = make_app(port, engine=engine)

    async def scenario(pilot):
        assert await until(pilot, lambda: app.query_one(StatusLine).engine_state == "running", timeout=20)
        engine.process.kill()
        assert await until(pilot, lambda: isinstance(app.screen, EngineDiedScreen), timeout=5)
        await pilot.press("r")
        assert await until(pilot, lambda: engine.starts == 2 and engine.running(), timeout=5)
        assert not isinstance(app.screen, EngineDiedScreen)
        status = app.query_one(StatusLine)
        assert await until(pilot, lambda: status.engine_state == "running", timeout=20)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not engine.running(), timeout=20)

    try:
        run(app, scenario)
        assert engine.poll() is not None
    finally:
        engine.stop(timeout=2)


@pytest.mark.slow
def test_input_meter_shows_level_pitch_clip_and_the_pad_the_inputs_point(fake):
    app = make_app(fake.port)

    async def scenario(pilot):
        meter = app.query_one(InputMeter)
        pad = app.query_one(XYPad)
        assert not meter.display, "no input: no input meter"
        fake.status.update(input_level_db=-18.5, input_peak=0.5, input_f0=220.0, input_voiced=1, input_gate=1,
                           input_clipped=0, input_device_clips=0, input_xy="[0.25, 0.75]")
        assert await until(pilot, lambda: meter.display and "220.0 Hz" in meter.render().plain)
        assert "-18.5 dBFS" in meter.render().plain and "CLIP" not in meter.render().plain
        assert pad.input_point is None, "the pad's own point is the timbre while input_timbre is 0"
        fake.status["input_device_clips"] = 2
        assert await until(pilot, lambda: "CLIP" in meter.render().plain)
        fake.push("/livegen/param/input_timbre", 1.0)
        assert await until(pilot, lambda: pad.input_point == (0.25, 0.75))

    run(app, scenario)


def test_status_line_says_where_controllers_reach_a_real_engine(live_play):
    """`livegen play --headless --osc-host 0.0.0.0`: the UI, only an OSC client of it, shows the
    OSC port, the OSCQuery URL at this machine's address and the instance name the server was
    advertised under over mDNS, the one a browse finds at that port."""
    address = network_address()
    require(address is not None, "a non-loopback IPv4 address on this machine")
    play = live_play("--no-midi", "--osc-host", "0.0.0.0")
    app = make_app(play.port)
    url = f"http://{address}:{play.port}/"

    async def scenario(pilot):
        status = app.query_one(StatusLine)
        assert await until(pilot, lambda: "mDNS livegen" in status.render().plain, 60), \
            f"status line {status.render().plain!r}; status {app.status}; play's log:\n{play.log}"
        text = status.render().plain
        name = str(app.status["osc_name"])
        assert f"OSC :{play.port}" in text and f"OSCQuery {url} mDNS {name}" in text, text
        assert f"advertised as {name!r}" in play.log
        shown.append(name)

    shown: list[str] = []
    run(app, scenario, size=(140, 32))
    zeroconf = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    try:
        for kind in (OSCJSON_TYPE, OSC_TYPE):
            info = zeroconf.get_service_info(kind, f"{shown[0]}.{kind}", timeout=5000)
            assert info is not None and info.port == play.port, (kind, shown, info)
    finally:
        zeroconf.close()


@pytest.mark.parametrize("argv, named", [
    (["--connect", "70000"], ["--connect", "70000", "1..65535"]),
    (["--connect", "9000"], ["needs a terminal"]),  # stdin is not one here: refused, not a Textual crash
])
def test_attached_ui_refuses_bad_input_with_exit_2(argv, named):
    result = subprocess.run([sys.executable, "-m", "livegen.tui", *argv], cwd=REPO, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert all(text in result.stderr for text in named), result.stderr
