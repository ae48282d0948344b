"""The performance UI: one more OSC controller of the engine server, drawn with Textual.

Data flow: the OSC receive thread folds engine feedback into a delta and wakes the app with
one small message; the app takes the delta at most ~30 times a second and moves widgets.
Outgoing values are coalesced per address and flushed at most ~60 times a second, so a fast
mouse drag never floods the engine.

A pure OSC client: the parameters (and so the sliders) come from the engine's `/livegen/params`
(`params`), preset morphs and loops are the engine's (`morph`), presets and MIDI learn have
their own modules (`presets`, `learn`).
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Key
from textual.message import Message
from textual.theme import Theme
from textual.widgets import Footer

from livegen.control.oscaddress import PREFIX, SOUND_CHECK_SECONDS
from livegen.tui import screens
from livegen.tui.child import EngineProcess
from livegen.tui.learn import Learn
from livegen.tui.model_info import RANDOM_MODEL, ModelInfo, read_model_info
from livegen.tui.morph import Morph
from livegen.tui.notes import OCTAVE_KEYS, VELOCITY_KEYS, NoteKeys, key_semitone
from livegen.tui.osc import EngineDelta, OscLink, param_address
from livegen.tui.params import ParamInfo, ParamTable
from livegen.tui.presets import Presets
from livegen.tui.widgets import InputMeter, OutputMeter, ParamSlider, PresetBar, StatusLine, Waterfall, XYPad
from livegen.tui.widgets.input_meter import input_point

FRAME_SECONDS = 1 / 30
SEND_SECONDS = 1 / 60
STATUS_SECONDS = 0.5
NO_REPLY_SECONDS = 3.0
RESUBSCRIBE_SECONDS = 5.0
PAD = ("x", "y")
"""Parameters the pad shows (every other one gets a slider)."""

STAGE_THEME = Theme(
    name="livegen-stage",
    primary="#d9480f",
    secondary="#8a5a2b",
    accent="#ffb000",
    warning="#e0a000",
    error="#ff3030",
    success="#4caf50",
    foreground="#c8bfae",
    background="#050505",
    surface="#0b0b0b",
    panel="#161310",
    dark=True,
)


class Throttle:
    """Run `action` now, or once a little later, so that it runs at most once per `period`."""

    def __init__(self, app: App, period: float, action):
        self.app = app
        self.period = period
        self.action = action
        self.last = 0.0
        self.pending = False

    def poke(self) -> None:
        if self.pending:
            return
        wait = self.period - (time.monotonic() - self.last)
        if wait <= 0:
            self.run()
        else:
            self.pending = True
            self.app.set_timer(wait, self.run)

    def run(self) -> None:
        self.pending = False
        self.last = time.monotonic()
        self.action()


class EngineUpdate(Message):
    """Something arrived from the engine; the app takes it from the link when it is ready."""

    no_dispatch = False

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineUpdate)


class LivegenApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "livegen"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("f1", "help", "help"),
        Binding("question_mark", "help", "help", show=False),
        Binding("f2,ctrl+l", "learn", "learn"),
        Binding("f3,ctrl+o", "pick_model", "model"),
        Binding("f4,ctrl+e", "seed", "seed"),
        Binding("r,ctrl+r", "record", "rec"),
        # Not Escape (it closes every overlay: one press too many would silence a show), not `!`
        # (Shift+1 stores preset 1 while the presets have the focus); a priority, so that it
        # silences with any overlay open too.
        Binding("f5", "panic", "panic", priority=True),
        Binding("f6", "sound_check", "soundcheck"),
        Binding("ctrl+q", "quit", "quit", priority=True),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(self, link: OscLink, *, engine: EngineProcess | None = None, info: ModelInfo | None = None,
                 model_roots: list[Path] | None = None):
        super().__init__()
        self.link = link
        self.engine = engine
        self.info = info or ModelInfo()
        self.model_roots = model_roots or []
        self.specs: dict[str, ParamInfo] = {}
        """The engine's parameters, from `/livegen/params` (empty until it answers)."""
        self.table = ParamTable()
        self.values: dict[str, float] = {name: 0.5 for name in PAD}
        """The latest value of every parameter, the engine's or ours (kept before its slider exists)."""
        self.presets = Presets(self)
        self.morph = Morph(self)
        self.learn = Learn(self)
        self.notes = NoteKeys()
        self.status: dict[str, object] = {}
        self._outbox: dict[str, tuple] = {}
        self._send_throttle = Throttle(self, SEND_SECONDS, self._flush)
        self._drain_throttle = Throttle(self, FRAME_SECONDS, self._drain)
        self._got_reply = False
        self._last_subscribe = 0.0
        self._note_timer = None
        self._died_shown = False
        self._stopping = False
        self.drawn_at: float | None = None
        self._cpu_last: tuple[float, float] | None = None
        self._recent_messages: dict[str, float] = {}
        self._cpu_is_ours = False
        self._last_seed = ""

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="left"):
                pad = XYPad(self.info.centroids, id="pad")
                pad.border_title = f"latent plane · {self.info.name}"
                yield pad
                yield OutputMeter(id="meter")
                yield InputMeter(id="input-meter")
                yield Waterfall(id="waterfall")
            with VerticalScroll(id="sliders", can_focus=False) as sliders:
                sliders.border_title = "parameters"  # filled once the engine sends its table
        yield PresetBar(id="presets")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.register_theme(STAGE_THEME)
        self.theme = "livegen-stage"
        # Overlays become `self.screen`; keep the main screen's widgets at hand.
        self.pad = self.query_one(XYPad)
        self.meter = self.query_one(OutputMeter)
        self.input_meter = self.query_one(InputMeter)
        self.waterfall = self.query_one(Waterfall)
        self.preset_bar = self.query_one(PresetBar)
        self.status_line = self.query_one(StatusLine)
        self.sliders: dict[str, ParamSlider] = {}
        self.pad.focus()
        status = self.status_line
        status.osc_port = self.link.port
        status.keyboard = self.notes.describe()
        if self.info.problem:
            self.show_message(self.info.problem)
        self.link.wake = lambda: self.post_message(EngineUpdate())
        self.link.start()
        self.link.subscribe()
        self.link.ask_params()
        self.link.send(PREFIX + "status")
        self._last_subscribe = time.monotonic()
        self.set_interval(STATUS_SECONDS, self._poll)
        self.call_after_refresh(self._mark_drawn)

    def _mark_drawn(self) -> None:
        self.drawn_at = time.monotonic()

    # -- outgoing, coalesced ---------------------------------------------------------------
    def send(self, address: str, *args) -> None:
        """Queue a value for the engine; per address only the newest is sent, at most 60 Hz."""
        self._outbox[address] = args
        self._send_throttle.poke()

    def send_param(self, name: str, value: float) -> None:
        self.send(param_address(name), float(value))

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, {}
        for address, args in outbox.items():
            self.link.send(address, *args)
        if outbox:
            self.status_line.osc_last = address

    # -- incoming, coalesced ---------------------------------------------------------------
    def on_engine_update(self, _: EngineUpdate) -> None:
        self._drain_throttle.poke()

    def _drain(self) -> None:
        if not self.is_running:
            return
        delta = self.link.take()
        if not delta.empty():
            self.apply(delta)

    def apply(self, delta: EngineDelta) -> None:
        self._got_reply = True
        for index, count, info in delta.param_rows:
            self.table.add(index, count, info)
        if delta.param_rows and self.table.complete and self.table.specs() != self.specs:
            self.call_later(self._build_sliders, self.table.specs())
        for name, value in delta.params.items():
            self.show_value(name, value)
        if delta.meter is not None:
            self.meter.update_levels(*delta.meter)
        if delta.spectra:
            self.waterfall.add_rows(delta.spectra)
        status = self.status_line
        if delta.status is not None:
            if "cpu" in delta.status:
                self._cpu_is_ours = False
            self.status.update(delta.status)
            status.status = self.status
            self._show_input(self.status)
        if delta.voices_xy is not None:
            self.pad.set_voice_points(delta.voices_xy)
        for error in delta.errors:
            self.show_message(f"engine: {error}", severity="warning")
        self.learn.apply(delta)
        if delta.model:
            self._model_loaded(delta.model)
        if delta.seeded:
            self.show_message(f"seed {Path(delta.seeded).name} plays; the model takes over where it ends")
        if delta.sound_checked:
            self.show_message(f"sound check: {delta.sound_checked}", 10)
        if delta.status is not None or status.engine_state != "running":
            status.engine_state = "running"
            status.refresh()

    def _show_input(self, fields: dict) -> None:
        """The input meter, and the input's point on the pad while the timbre follows it."""
        if not self.input_meter.update_status(fields):
            return
        follows = self.values.get("input_timbre", 0.0) > 0.0
        self.pad.set_input_point(input_point(fields) if follows else None)

    def show_value(self, name: str, value: float) -> None:
        """Move a widget to a value someone else set (no echo back to the engine)."""
        self.values[name] = value
        if name in PAD:
            self.pad.set_point(self.values["x"], self.values["y"], remote=True)
            return
        slider = self.sliders.get(name)
        if slider is not None:
            slider.set_value(value, remote=True)

    def show_message(self, text: str, seconds: float = 5.0, *, severity: str = "information") -> None:
        """A short toast; the same text again within a few seconds is not repeated."""
        now = time.monotonic()
        if now - self._recent_messages.get(text, -1e9) < seconds:
            return
        self._recent_messages = {t: at for t, at in self._recent_messages.items() if now - at < 30}
        self._recent_messages[text] = now
        self.notify(text, timeout=seconds, severity=severity)

    # -- periodic: status poll, engine watch -----------------------------------------------
    def _poll(self) -> None:
        now = time.monotonic()
        self.link.send(PREFIX + "status")
        if not self.table.complete:
            self.link.ask_params()  # the engine may still be starting, or a reply got lost
        if not self._got_reply or now - self._last_subscribe > RESUBSCRIBE_SECONDS:
            if not self._got_reply:
                self.link.subscribe()
            elif now - self._last_subscribe > RESUBSCRIBE_SECONDS:
                self.link.subscribe()
            self._last_subscribe = now
        status = self.status_line
        self._measure_engine_cpu(now)
        if self.engine is not None and not self._stopping and self.engine.poll() is not None:
            status.engine_state = f"engine stopped ({self.engine.poll()})"
            if not self._died_shown:
                self._died_shown = True
                self.push_screen(screens.EngineDiedScreen(self.engine.poll(), self.engine.log_tail()), self._after_died)
        elif self._got_reply and now - self.link.last_reply_time > NO_REPLY_SECONDS:
            status.engine_state = "no reply"
        elif not self._got_reply:
            status.engine_state = "starting"
        status.refresh()
        self.meter.tick()

    def _measure_engine_cpu(self, now: float) -> None:
        """The engine child's CPU share, unless the engine reports its own `cpu`."""
        if self.engine is None or "cpu" in self.status and not self._cpu_is_ours:
            return
        used = self.engine.cpu_seconds()
        if used is not None and self._cpu_last is not None and now > self._cpu_last[0]:
            share = 100.0 * (used - self._cpu_last[1]) / (now - self._cpu_last[0])
            self.status["cpu"] = round(max(share, 0.0), 1)
            self._cpu_is_ours = True
            self.status_line.status = self.status
        self._cpu_last = (now, used) if used is not None else None

    def _after_died(self, restart: bool | None) -> None:
        if not restart:
            self.action_quit()
            return
        self._died_shown = False
        self._got_reply = False
        self.engine.restart()
        self.status_line.engine_state = "starting"
        self.link.subscribe()

    # -- widgets' requests -----------------------------------------------------------------
    def on_xypad_moved(self, event: XYPad.Moved) -> None:
        self.values["x"], self.values["y"] = event.x, event.y
        self.send(PREFIX + "xy", float(event.x), float(event.y))

    def on_param_slider_changed(self, event: ParamSlider.Changed) -> None:
        self.values[event.name] = event.value
        self.send_param(event.name, event.value)

    # -- presets, morph and loop (see `presets`, `morph`) ----------------------------------
    def on_preset_bar_store(self, event: PresetBar.Store) -> None:
        self.presets.store(event.slot)

    def on_preset_bar_recall(self, event: PresetBar.Recall) -> None:
        self.presets.recall(event.slot)

    def on_preset_bar_morph(self, event: PresetBar.Morph) -> None:
        self.morph.to(event.target, event.seconds)

    def on_preset_bar_loop(self, event: PresetBar.Loop) -> None:
        self.morph.toggle_loop(event.seconds)

    def read_back(self) -> None:
        """Ask the engine for every parameter's value (it answers `/livegen/param/<name> f`)."""
        for name in self.specs:
            self.link.send(f"{PREFIX}get/{name}")

    # -- sliders, from the engine's table ----------------------------------------------------
    async def _build_sliders(self, specs: dict[str, ParamInfo]) -> None:
        """A slider per parameter but the pad's, in the engine's order (the table of the model
        now playing: its latent offsets, and a continuation model's own)."""
        if specs == self.specs:
            return
        replaced, self.specs = self.specs, specs
        box = self.screen_stack[0].query_one("#sliders")
        await box.remove_children()
        self.sliders = {name: ParamSlider(spec, self.values.get(name, spec.default))
                        for name, spec in specs.items() if name not in PAD}
        await box.mount_all(list(self.sliders.values()))
        if replaced:
            self.values = {name: value for name, value in self.values.items() if name in specs or name in PAD}
            self.read_back()  # another model: its engine's values (the subscription gave the first)

    # -- keyboard notes --------------------------------------------------------------------
    def on_key(self, event: Key) -> None:
        if self.screen is not self.screen_stack[0] or self._stopping:
            return
        char = event.character or ""
        now = time.monotonic()
        semitone = key_semitone(char)
        if semitone is not None:
            messages = self.notes.press(semitone, now)
        elif char in OCTAVE_KEYS:
            messages = self.notes.all_off() if not self.notes.latch else []
            self.notes.shift_octave(OCTAVE_KEYS[char])
        elif char in VELOCITY_KEYS:
            messages = []
            self.notes.shift_velocity(VELOCITY_KEYS[char])
        elif char == "\\":
            messages = self.notes.all_off()
            self.notes.latch = not self.notes.latch
        elif event.key == "space":
            messages = self.notes.all_off()
        else:
            return
        event.stop()
        for pitch, velocity in messages:
            self.link.note(pitch, velocity)  # notes are never coalesced: each one matters
        if self.notes.held and self._note_timer is None and not self.notes.latch:
            self._note_timer = self.set_interval(0.05, self._expire_notes)
        status = self.status_line
        status.keyboard = self.notes.describe()
        if messages:
            status.osc_last = PREFIX + "note"
        status.refresh()

    def _expire_notes(self) -> None:
        for pitch, velocity in self.notes.expire(time.monotonic()):
            self.link.note(pitch, velocity)
        if not self.notes.held and self._note_timer is not None:
            self._note_timer.stop()
            self._note_timer = None

    # -- actions ---------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, screens.HelpScreen):
            self.push_screen(screens.HelpScreen())

    def action_learn(self) -> None:
        self.learn.open()

    def request_bindings(self) -> None:
        self.learn.request_bindings()


    def action_pick_model(self) -> None:
        if isinstance(self.screen, screens.ModelPickerScreen):
            return
        self.push_screen(screens.ModelPickerScreen(self.model_roots, self.info.path), self._load_model)

    def _load_model(self, path: str | None) -> None:
        """Ask the engine to load a model; the pad and sliders follow once it says it has."""
        if not path:
            return
        info = read_model_info(path)
        if info.problem:
            self.show_message(info.problem)
            return
        # The engine may run in another directory (attach mode): send an absolute path. It
        # answers /livegen/model with that same string once the new model plays.
        self.link.send(PREFIX + "model", info.path if info.path == RANDOM_MODEL else str(Path(info.path).resolve()))
        self.show_message(f"asked the engine to load {info.name}…", 10)

    def _model_loaded(self, path: str) -> None:
        info = read_model_info(path)
        if info.problem:
            self.show_message(info.problem)
            return
        self.info = info
        pad = self.pad
        pad.set_centroids(info.centroids)
        pad.border_title = f"latent plane · {info.name}"
        # Another model has other parameters (latent offsets, a continuation model's own).
        self.table = ParamTable()
        self.link.ask_params()
        self.show_message(f"model {info.name}")

    def action_seed(self) -> None:
        if isinstance(self.screen, screens.SeedScreen):
            return
        if not self.info.continuation:
            self.show_message(f"{self.info.name} is not a continuation model: seeding needs one "
                              "(F3: load models/continuation)", severity="warning")
            return
        self.push_screen(screens.SeedScreen(self._last_seed), self._send_seed)

    def _send_seed(self, path: str | None) -> None:
        """Ask the engine to play a seed file; it answers /livegen/seed, or /livegen/error saying why not."""
        if not path:
            return
        self._last_seed = path
        # The engine may run in another directory (attach mode): send an absolute path.
        self.link.send(PREFIX + "seed", str(Path(path).expanduser().resolve()))
        self.show_message(f"asked the engine to play {Path(path).name} as the seed…", 10)

    def action_record(self) -> None:
        try:
            recording = bool(int(float(self.status.get("recording", 0))))
        except (TypeError, ValueError):
            recording = False
        self.link.send(PREFIX + "record", 0 if recording else 1)
        self.status["recording"] = 0 if recording else 1
        status = self.status_line
        status.status = self.status
        status.refresh()

    def action_panic(self) -> None:
        """Silence now (`/livegen/panic`): the engine cuts every note, lets the pedal up, stops a
        morph and turns the drone off; the keyboard's own notes (latched ones too) are let go."""
        self.link.send(PREFIX + "panic")
        self.notes.held.clear()
        status = self.status_line
        status.keyboard = self.notes.describe()
        status.osc_last = PREFIX + "panic"
        status.refresh()
        self.show_message("panic: every note cut, pedal up, morph stopped, drone off", 3)

    def action_sound_check(self) -> None:
        """A sound check (`/livegen/input/soundcheck`): the engine listens to the audio input and
        sets `input_gain` for it; it answers with the gain, or `/livegen/error` saying why not."""
        self.link.send(PREFIX + "input/soundcheck", SOUND_CHECK_SECONDS)
        self.status_line.osc_last = PREFIX + "input/soundcheck"
        if "input_level_db" not in self.status:  # no audio input: the engine's answer says so
            return
        self.show_message(f"sound check: play as loud as you will on stage for {SOUND_CHECK_SECONDS:g} s…",
                          SOUND_CHECK_SECONDS)

    def action_quit(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        for pitch, velocity in self.notes.all_off():
            self.link.note(pitch, velocity)
        self._flush()
        if self.engine is None or not self.engine.running():
            self.exit(0)
            return
        self.status_line.engine_state = "stopping engine…"
        self.status_line.refresh()
        self._stop_engine()

    @work(thread=True, exclusive=True)
    def _stop_engine(self) -> None:
        self.engine.stop()
        self.call_from_thread(self.exit, 0)
