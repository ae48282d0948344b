"""The performance UI: one more OSC controller of the engine server, drawn with Textual.

Data flow: the OSC receive thread folds engine feedback into a delta and wakes the app with
one small message; the app takes the delta at most ~30 times a second and moves widgets.
Outgoing values are coalesced per address and flushed at most ~60 times a second, so a fast
mouse drag or a morph never floods the engine.
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

from livegen.engine.params import ParamSpec, ParamStore
from livegen.tui.child import EngineProcess
from livegen.tui.model_info import RANDOM_MODEL, ModelInfo, read_model_info
from livegen.tui.notes import OCTAVE_KEYS, VELOCITY_KEYS, NoteKeys, key_semitone
from livegen.tui.osc import PREFIX, EngineDelta, OscLink, param_address
from livegen.tui import screens
from livegen.tui.widgets import OutputMeter, ParamSlider, PresetBar, StatusLine, Waterfall, XYPad

FRAME_SECONDS = 1 / 30
SEND_SECONDS = 1 / 60
STATUS_SECONDS = 0.5
NO_REPLY_SECONDS = 3.0
RESUBSCRIBE_SECONDS = 5.0
MORPH_TICK = 1 / 30

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


def model_specs(latent_dim: int, *, continuation: bool = False) -> list[ParamSpec]:
    """The engine's parameters for a model, in the engine's order (a continuation model's own
    before the latent offsets, as its engine registers them)."""
    specs = list(ParamStore.for_model(latent_dim).specs.values())
    if continuation:
        from livegen.continuation.params import continuation_param_specs

        specs[len(specs) - latent_dim:len(specs) - latent_dim] = continuation_param_specs()
    return specs


def slider_specs(latent_dim: int, *, continuation: bool = False) -> list[ParamSpec]:
    """Every parameter but the pad's own x and y (the pad shows those)."""
    return [s for s in model_specs(latent_dim, continuation=continuation) if s.name not in ("x", "y")]


def _model_dependent(name: str) -> bool:
    """Sliders that come and go with the model: latent offsets and a continuation model's own."""
    from livegen.continuation.params import continuation_param_specs

    return (name.startswith("z") and name[1:].isdigit()) or name in {s.name for s in continuation_param_specs()}


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
        self.specs = {s.name: s for s in model_specs(self.info.latent_dim, continuation=self.info.continuation)}
        self.values: dict[str, float] = {name: spec.default for name, spec in self.specs.items()}
        self.presets: dict[int, dict[str, float]] = {}
        self.bindings_map: dict[str, str] = {}
        self.notes = NoteKeys()
        self.status: dict[str, object] = {}
        self._outbox: dict[str, tuple] = {}
        self._send_throttle = Throttle(self, SEND_SECONDS, self._flush)
        self._drain_throttle = Throttle(self, FRAME_SECONDS, self._drain)
        self._got_reply = False
        self._last_subscribe = 0.0
        self._note_timer = None
        self._morph = None
        self._loop_seconds: float | None = None
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
                yield Waterfall(id="waterfall")
            with VerticalScroll(id="sliders", can_focus=False) as sliders:
                sliders.border_title = "parameters"
                for spec in slider_specs(self.info.latent_dim, continuation=self.info.continuation):
                    yield ParamSlider(spec, self.values[spec.name])
        yield PresetBar(id="presets")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.register_theme(STAGE_THEME)
        self.theme = "livegen-stage"
        # Overlays become `self.screen`; keep the main screen's widgets at hand.
        self.pad = self.query_one(XYPad)
        self.meter = self.query_one(OutputMeter)
        self.waterfall = self.query_one(Waterfall)
        self.preset_bar = self.query_one(PresetBar)
        self.status_line = self.query_one(StatusLine)
        self.sliders = {s.param: s for s in self.query(ParamSlider)}
        self.pad.focus()
        status = self.status_line
        status.osc_port = self.link.port
        status.keyboard = self.notes.describe()
        if self.info.problem:
            self.show_message(self.info.problem)
        self.link.wake = lambda: self.post_message(EngineUpdate())
        self.link.start()
        self.link.subscribe()
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
        for error in delta.errors:
            self.show_message(f"engine: {error}", severity="warning")
        screen = self.screen if type(self.screen).__name__ == "LearnScreen" else None
        if delta.bindings is not None:
            self.bindings_map = dict(delta.bindings)
            if screen:
                screen.set_bindings(self.bindings_map)
        for param, control in delta.learned:
            self.bindings_map[param] = control
            self.show_message(f"learned {param} ← {control}")
            if screen:
                screen.learned(param, control)
        if delta.model:
            self._model_loaded(delta.model)
        if delta.seeded:
            self.show_message(f"seed {Path(delta.seeded).name} plays; the model takes over where it ends")
        if delta.status is not None or status.engine_state != "running":
            status.engine_state = "running"
            status.refresh()

    def show_value(self, name: str, value: float) -> None:
        """Move a widget to a value someone else set (no echo back to the engine)."""
        if name not in self.specs:
            return
        self.values[name] = value
        if name in ("x", "y"):
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

    # -- presets and morph -----------------------------------------------------------------
    def on_preset_bar_store(self, event: PresetBar.Store) -> None:
        self.store_preset(event.slot)

    def on_preset_bar_recall(self, event: PresetBar.Recall) -> None:
        self.recall_preset(event.slot)

    def on_preset_bar_morph(self, event: PresetBar.Morph) -> None:
        self.morph_to(event.target, event.seconds)

    def on_preset_bar_loop(self, event: PresetBar.Loop) -> None:
        self.loop_presets(event.seconds)

    def store_preset(self, slot: int) -> None:
        self.presets[slot] = dict(self.values)
        self.send(f"{PREFIX}preset/store", slot)
        self.preset_bar.show(stored=self.presets.keys(), current=slot)
        self.show_message(f"stored preset {slot}", 2)

    def recall_preset(self, slot: int) -> None:
        self._stop_morph()
        self.send(f"{PREFIX}preset/recall", slot)
        for name, value in self.presets.get(slot, {}).items():
            self.show_value(name, value)
        # The engine does not echo a recall to the client that asked for it, and the slot may
        # hold what someone else stored: read the values back once the engine has applied it.
        self.set_timer(0.2, self._read_back)
        self.preset_bar.show(current=slot)

    def _read_back(self) -> None:
        for name in self.specs:
            self.link.send(f"{PREFIX}get/{name}")

    def loop_presets(self, seconds: float) -> None:
        """Morph through the stored presets in slot order, round and round, `seconds` a leg, until
        `L` again, a recall or another morph: a preset-to-preset trajectory that loops. It is
        ordinary parameter changes, so the session log holds it and a render plays it again."""
        if self._loop_seconds is not None:
            self._stop_morph()
            return
        if len(self.presets) < 2:
            self.show_message("store at least 2 presets to loop through them (shift+1-8)")
            return
        self._loop_seconds = seconds
        self.preset_bar.looping = True
        self._loop_next()

    def _loop_next(self) -> None:
        slots = sorted(self.presets)
        current = self.preset_bar.current
        later = [slot for slot in slots if current is None or slot > current]
        self.morph_to((later or slots)[0], self._loop_seconds, looping=True)

    def morph_to(self, target: int, seconds: float, *, looping: bool = False) -> None:
        """Glide every parameter from the current preset (or the current values) to `target`."""
        if target not in self.presets:
            self.show_message(f"preset {target} is empty: store it first (shift+{target})")
            return
        self._stop_morph(keep_loop=looping)
        bar = self.preset_bar
        start = dict(self.presets.get(bar.current, self.values)) if bar.current else dict(self.values)
        self._morph = (start, dict(self.presets[target]), target, time.monotonic(), max(seconds, 0.01),
                       self.set_interval(MORPH_TICK, self._morph_step))
        self._morph_step()

    def _morph_step(self) -> None:
        if self._morph is None:
            return
        start, end, target, began, seconds, _ = self._morph
        t = min((time.monotonic() - began) / seconds, 1.0)
        for name, b in end.items():
            spec = self.specs.get(name)
            if spec is None:
                continue
            a = start.get(name, b)
            value = (a if t < 0.5 else b) if spec.integer else a + (b - a) * t
            if value != self.values.get(name):
                self.values[name] = value
                if name not in ("x", "y"):
                    self.send_param(name, value)
                self.show_value(name, value)
        self.send(PREFIX + "xy", float(self.values["x"]), float(self.values["y"]))
        bar = self.preset_bar
        if t >= 1.0:
            self._stop_morph(keep_loop=True)
            bar.show(current=target)
            if self._loop_seconds is not None:
                self._flush()  # the preset's own values go out before the next leg coalesces them away
                self._loop_next()
        else:
            bar.show(progress=t, target=target)

    def _stop_morph(self, *, keep_loop: bool = False) -> None:
        if not keep_loop and self._loop_seconds is not None:
            self._loop_seconds = None
            self.preset_bar.looping = False
            self.preset_bar.refresh()
        if self._morph is not None:
            self._morph[-1].stop()
            self._morph = None
            self.preset_bar.show()

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
        if not isinstance(self.screen, screens.LearnScreen):
            self.push_screen(screens.LearnScreen([*self.specs, "record"], self.bindings_map))  # record: a button that toggles recording

    def request_bindings(self) -> None:
        self.link.send(PREFIX + "bindings")

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
        old, self.info = self.info, info
        pad = self.pad
        pad.set_centroids(info.centroids)
        pad.border_title = f"latent plane · {info.name}"
        if (info.latent_dim, info.continuation) != (old.latent_dim, old.continuation):
            self.call_later(self._rebuild_model_sliders, info)
        self.show_message(f"model {info.name}")

    async def _rebuild_model_sliders(self, info: ModelInfo) -> None:
        """Sliders for the model now playing: its latent offsets, and a continuation model's own."""
        sliders = self.screen_stack[0].query_one("#sliders")
        for name, slider in list(self.sliders.items()):
            if _model_dependent(name):
                del self.sliders[name]
                await slider.remove()
        self.specs = {s.name: s for s in model_specs(info.latent_dim, continuation=info.continuation)}
        for name in [n for n in self.values if n not in self.specs]:
            del self.values[name]
        new = []
        for spec in slider_specs(info.latent_dim, continuation=info.continuation):
            if _model_dependent(spec.name):
                self.values.setdefault(spec.name, spec.default)
                new.append(ParamSlider(spec, self.values[spec.name]))
        await sliders.mount_all(new)
        self.sliders.update({slider.param: slider for slider in new})
        self._read_back()  # the new engine's values (its defaults may differ from the registry's)

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
