"""The client's view of the sound server: the control target the app's OSC, MIDI and recorder use.

`SoundServer` looks to them like the engine did (`params`, `post`, `status`, `add_listener`,
`add_tap`, `samples_out`, ...) while the engine runs in another process. A mirror thread here
reads back what the server applied and rendered and hands it on in the engine's order: every
applied event at its output sample, then the samples after it; the session recorder and the
meters therefore see exactly the stream the engine produced.

One server process plays at a time (`RemoteEngine`); `SoundServer.swap` puts another in its
place (another model, or the same one after the audio device or the JACK server came back) and
moves the listeners over, so the controls keep one target for the whole performance.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import multiprocessing
import threading
import time
import types
from pathlib import Path

import numpy as np

from livegen.engine.carry import CARRY_SOURCE, CarryOver
from livegen.engine.events import Event
from livegen.engine.input import SOUND_CHECK_SOURCE, sound_check
from livegen.engine.meters import OutputMeters
from livegen.engine.params import ParamStore
from livegen.errors import NO_INPUT, NOT_CONTINUATION, DeviceError, LivegenError
from livegen.server import spawn
from livegen.server.shm import Counter, SharedBlock
from livegen.server.wire import ARRIVAL, ID_KEY, decode_applied, encode_posted

MAX_PARAMS = 256
RING_RATE = 192000
"""The audio ring is sized for this rate (about 11 s of it; longer at lower rates)."""
MIRROR_SECONDS = 0.002
STATUS_TIMEOUT = 0.5
SOUND_CHECK_SPARE_SECONDS = 5.0
"""How long past its length a sound check waits for the input before it gives up."""


class ParamMirror(ParamStore):
    """The server's parameter store as the client sees it: its arrays are the server's, in
    shared memory; changing a value is done by posting an event, never here."""

    def __init__(self, specs, targets, values):
        super().__init__(specs)
        self.targets = targets
        self.values = values

    def set(self, name, value):
        raise LivegenError("the sound server's parameters change by events: post a `param` event")

    def advance(self, seconds):
        raise LivegenError("the sound server advances its own parameters")


class RemoteEngine:
    """One sound server process seen as an engine: what a session recorder and the controls
    need of one (`post`, `params`, `add_listener`, `add_tap`, `samples_out`, `status`, the
    header fields), while the engine itself runs in the server process.

    It starts the process at once; `wait_ready` waits for it to play, `start` starts handing
    applied events and rendered audio on (attach listeners and taps before, as with an engine).
    """

    def __init__(self, options: dict, spec: dict, *, start_sample: int = 0, lead: int = 0):
        self.options = dict(options)
        self.spec = dict(spec)
        self.lead = int(lead)
        self.shared = SharedBlock(n_params=MAX_PARAMS, samplerate=RING_RATE)
        self.shared[Counter.START_SAMPLE] = int(start_sample)
        self.shared[Counter.AUDIO_WRITTEN] = int(start_sample)
        self.shared[Counter.AUDIO_READ] = int(start_sample)
        self.shared[Counter.LEAD] = self.lead
        self._delivered = int(start_sample)
        self.extra_status: dict = {}
        self.recording = False
        self._listeners: list = []
        self._taps: list = []
        self._input_taps: list = []
        self._pending: collections.deque = collections.deque()
        self._unapplied: list = []
        self._posted = 0
        self._lock = threading.Lock()  # posts come from OSC, MIDI and UI threads: one writer at a time
        self._mirror: threading.Thread | None = None
        self._mirror_stop = threading.Event()
        self.error: BaseException | None = None
        self.ready: dict | None = None
        self._status_lock = threading.Lock()
        self._final_status: dict | None = None
        self.seed_loader = None
        """Set by the app: prepares a seed file off the audio path (see `load_seed`)."""
        self._launch()

    def _launch(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe(duplex=False)
        self.process = context.Process(
            target=spawn.main, name="livegen-sound-server", daemon=True,
            args=(self.shared.name, MAX_PARAMS, RING_RATE, self.options, self.spec, child))
        self.process.start()
        child.close()

    def relaunch(self, spec: dict, timeout: float = 60.0, *, first=None) -> None:
        """Start a new server process for `spec` in place of this one's (gone with its device),
        continuing the sample clock: listeners, taps and a recording under way carry on.

        Once every event the old one applied has been handed on and the new one is ready, the
        listeners hear an `engine` `restart` event at the sample where the new engine's first
        sample lands (a session log needs it to render a fresh engine from there), then `first()`
        runs: it posts what the new one applies before anything posted after (what the old one
        held, and `take_unapplied`: what was posted to the old one and never applied)."""
        self._mirror_stop.set()
        if self._mirror is not None:
            self._mirror.join(5)
        self._mirror_once()
        self.kill()
        with self._lock, self._status_lock:
            old = self.shared
            start = self._delivered
            self.shared = SharedBlock(n_params=MAX_PARAMS, samplerate=RING_RATE)
            for slot in (Counter.START_SAMPLE, Counter.AUDIO_WRITTEN, Counter.AUDIO_READ):
                self.shared[slot] = start
            for slot in (Counter.INPUT_WRITTEN, Counter.INPUT_READ):  # the input taps' count goes on too
                self.shared[slot] = old[Counter.INPUT_READ]
            self.shared[Counter.LEAD] = self.lead
            while self._pending:  # never applied: the old server is gone (kept across failed starts)
                item = self._pending.popleft()
                self._release(item)
                self._unapplied.append(item[1])
            self.spec = dict(spec)
            self._launch()
            old.close(unlink=True)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        self.announce(self.restart_event(start, reason="device"))
        if first is not None:
            first()
        self._mirror_stop.clear()
        self.start()

    def restart_event(self, sample: int, *, reason: str) -> Event:
        """The session log's marker of a fresh engine taking over at output `sample`, with what
        `livegen render` needs to build the same (`livegen.session.render.render_log`)."""
        model = self.spec.get("model")
        return Event("engine", action="restart", sample=int(sample), t=sample / self.samplerate, source="server",
                     extra={"reason": reason, "model_dir": None if model in (None, "random") else str(Path(model).resolve()),
                            "model": str(model) if model is not None else None, "seed": self.seed,
                            "lookahead": self.lookahead, "read": self.inverter.read})

    def announce(self, event: Event) -> None:
        """Hand `event` (one the client makes, such as a restart marker) to the listeners, as if
        applied; only while the mirror is not running (before `start`)."""
        for callback in list(self._listeners):
            callback(event)

    def take_unapplied(self) -> list:
        """The events posted to servers that went away before applying them, in order (once)."""
        with self._lock:
            events, self._unapplied = self._unapplied, []
        return events

    def pending(self) -> list:
        """The events posted and not yet applied (or refused) as far as the mirror has heard."""
        with self._lock:
            return [item[1] for item in self._pending]

    def settle(self, timeout: float = 0.5) -> None:
        """Wait until the server has applied (or refused) what was posted to it and the mirror has
        handed that on; no longer than `timeout` (a refused event stays pending until a later
        one is applied), and not at all for a server that has stopped playing."""
        deadline = time.monotonic() + timeout
        while self._pending and self.alive and not self.faded_out and time.monotonic() < deadline:
            time.sleep(0.001)

    # ---------------------------------------------------------------- start-up
    def wait_ready(self, timeout: float = 60.0) -> "RemoteEngine":
        """Wait until the server plays; its errors (no device, a bad model) are raised here."""
        if not self._pipe.poll(timeout):
            self.kill()
            raise DeviceError(f"the sound server did not start in {timeout:.0f} s")
        try:
            message = self._pipe.recv()
        except EOFError:
            self.process.join(1)
            raise DeviceError(f"the sound server died while starting (exit {self.process.exitcode})") from None
        if message[0] == "error":
            self.process.join(5)
            kind = DeviceError if message[1] == "DeviceError" else LivegenError
            raise kind(message[2])
        ready = self.ready = message[1]
        describe = ready["describe"]
        shared = self.shared
        n = len(describe["params"])
        self.params = ParamMirror(describe["params"], shared.targets[:n], shared.values[:n])
        self._index = dict(self.params.index)
        self.samplerate = int(ready["samplerate"])
        self.blocksize = int(ready["blocksize"])
        self.output_latency = float(ready["latency"])
        self.info = ready["info"]
        self.pid = int(ready["pid"])
        self.seed = describe["seed"]
        self.hop = describe["hop"]
        self.lookahead = describe["lookahead"]
        self.device = describe["device"]
        self.hop_seconds = describe["hop_seconds"]
        self.config = types.SimpleNamespace(**describe["config"])
        self.inverter = types.SimpleNamespace(method=describe["method"], read=describe.get("read", "window"))
        self.chain = True  # an output chain is there (the session header asks)
        self.log_header = describe.get("log_header") or {}
        self.seeds = bool(describe.get("seeds"))
        """Whether the model takes seed audio (a continuation model)."""
        self.takes_input = bool(describe.get("takes_input"))
        """Whether a live input plays a voice (`add_input_tap` hands on what it consumed)."""
        return self

    def start(self) -> None:
        """Start rendering (the server plays silence until now, so that what the client set up
        meanwhile — a session recorder, its first `record` event — starts at the first sample)
        and start handing applied events and rendered audio to listeners and taps."""
        self.shared[Counter.GO] = 1
        self._mirror = threading.Thread(target=self._run_mirror, name="livegen-mirror", daemon=True)
        self._mirror.start()

    # ---------------------------------------------------------------- as an engine
    def post(self, event) -> None:
        """Thread-safe, never waits for the server: applied at its next hop."""
        with self._lock:
            self._post(event)

    def _post(self, event) -> None:
        self._posted += 1
        number = self._posted
        record, blob = encode_posted(number, event, self._index)
        if self.shared.inbox.put(ARRIVAL.pack(time.monotonic_ns()) + record):
            self._pending.append((number, event, blob))
        elif blob is not None:
            blob.release()

    def add_listener(self, callback) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def add_tap(self, callback) -> None:
        self._taps.append(callback)

    def remove_tap(self, callback) -> None:
        if callback in self._taps:
            self._taps.remove(callback)

    def add_input_tap(self, callback) -> None:
        """`callback(first, samples)`: the live-input samples the engine consumed (model rate;
        `first` counts from its first hop), handed on before the output they shaped."""
        self._input_taps.append(callback)

    def remove_input_tap(self, callback) -> None:
        if callback in self._input_taps:
            self._input_taps.remove(callback)

    @property
    def samples_out(self) -> int:
        """Output samples handed to the taps so far."""
        return self._delivered

    def morph_names(self) -> list[str]:
        """The parameters a preset morph or loop in the engine is moving now (asked only while one runs)."""
        if self._final_status is not None or not self.shared[Counter.MORPHING]:
            return []
        return self._server_status().get("morph_names", [])

    def status(self) -> dict:
        """The server's figures, asked for fresh, with the client's own (after `close`, the last
        ones: a thread that asks late, a recorder's disk thread say, gets an answer)."""
        with self._status_lock:
            if self._final_status is not None:
                return dict(self._final_status)
            return self._status()

    def _status(self) -> dict:
        status = self._server_status()
        status.pop("morph_names", None)
        shared = self.shared
        underflows = int(shared[Counter.UNDERFLOWS])
        status.update({
            "xruns": underflows + int(shared[Counter.LATE]),
            "underflows": underflows,
            "callbacks": int(shared[Counter.CALLBACKS]),
            "samplerate": self.samplerate,
            "recording": int(self.recording),
            "latency_ms": round(1000 * ((status.get("lead") or 0) / self.samplerate + self.output_latency), 2),
            "audio_dropped": int(shared[Counter.AUDIO_DROPPED]),
            "events_dropped": int(shared[Counter.INBOX_DROPPED]) + int(shared[Counter.OUTBOX_DROPPED]),
            "input_dropped": int(shared[Counter.INPUT_DROPPED]),
        })
        status.update(self.extra_status)
        return status

    def _server_status(self) -> dict:
        shared = self.shared
        asked = shared[Counter.STATUS_ASK] + 1
        shared[Counter.STATUS_ASK] = asked
        deadline = time.monotonic() + STATUS_TIMEOUT
        status = None
        while True:
            _, data = shared.read_status()
            if data is not None:
                status = json.loads(data)
                if status.get("status_ask", 0) >= asked or not self.alive:
                    break
            if time.monotonic() > deadline:
                break
            time.sleep(0.001)
        status = status or {}
        status.pop("status_ask", None)
        return status

    def load_seed(self, path, done, *, source: str = "") -> None:
        """`/livegen/seed s`: the app's `seed_loader(engine, path, done, source)` reads and analyses
        the file in this process and posts the `seed` event (a continuation model's only)."""
        if not self.seeds or self.seed_loader is None:
            done(False, NOT_CONTINUATION)
            return
        self.seed_loader(self, path, done, source)

    @property
    def last_callback(self) -> float:
        """CLOCK_MONOTONIC seconds of the server's last callback (0 before the first)."""
        return self.shared[Counter.LAST_CALLBACK_NS] / 1e9

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    @property
    def faded_out(self) -> bool:
        return bool(self.shared[Counter.STOPPED])

    @property
    def fading_out(self) -> bool:
        """Told to stop: blocks from now on may carry the de-click fade, which no event makes, so
        a take under way ends here (`livegen.session.wiring.SessionControl`) and renders exactly."""
        return bool(self.shared[Counter.STOP])

    def fade_out(self) -> None:
        self.shared[Counter.STOP] = 1

    # ---------------------------------------------------------------- the mirror
    def _run_mirror(self) -> None:
        try:
            while not self._mirror_stop.is_set():
                self._mirror_once()
                time.sleep(MIRROR_SECONDS)
            self._mirror_once()
        except BaseException as exc:  # surfaced by the app's watchdog
            self.error = exc

    def _mirror_once(self) -> None:
        shared = self.shared
        outbox = shared.outbox
        while True:
            written = shared[Counter.AUDIO_WRITTEN]  # before the events: none applied later slips in
            record = outbox.get()
            if record is None:
                self._deliver_audio(written)
                return
            event = self._applied(record)
            if event is None:
                continue
            self._deliver_audio(event.sample)
            for callback in list(self._listeners):
                callback(event)

    def _deliver_audio(self, upto: int) -> None:
        shared = self.shared
        if shared[Counter.INPUT_WRITTEN] != shared[Counter.INPUT_READ]:
            first, block = shared.input.read(shared[Counter.INPUT_WRITTEN])
            for tap in list(self._input_taps):
                tap(first, block)
        first, block = shared.audio.read(upto)
        if not len(block):
            return
        self._delivered = first + len(block)
        for tap in list(self._taps):
            tap(block)

    def _applied(self, record: bytes):
        decoded = decode_applied(record)
        if decoded[0] == "event":
            event = decoded[1]
            number = event.extra.pop(ID_KEY, None)
            if number is not None:
                original = self._take_pending(number)
                if original is not None:
                    event.source = original.source
                    event.payload = original.payload
            return event
        _, number, sample, value, clamped, asked = decoded
        original = self._take_pending(number)
        if original is None:
            return None
        extra = dict(original.extra)
        if clamped:
            extra["clamped_from"] = asked
        return dataclasses.replace(original, sample=sample, t=sample / self.samplerate, extra=extra,
                                   value=value if not math.isnan(value) else original.value)

    def _take_pending(self, number: int):
        pending = self._pending
        while pending and pending[0][0] < number:  # older ones were refused by the engine
            self._release(pending.popleft())
        if pending and pending[0][0] == number:
            item = pending.popleft()
            self._release(item)
            return item[1]
        return None

    @staticmethod
    def _release(item) -> None:
        if item[2] is not None:  # the server has mapped its payload (or refused the event)
            item[2].release()

    # ---------------------------------------------------------------- the end
    def stop(self, *, fade: bool = True, timeout: float = 2.0) -> None:
        """Fade out (the fade reaches the device), end the process, hand on the last samples."""
        shared = self.shared
        shared[Counter.STOP] = 1
        deadline = time.monotonic() + timeout
        if fade:
            while self.alive and not shared[Counter.STOPPED] and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(min(0.05, self.output_latency + 0.01) if self.ready else 0.0)
        shared[Counter.STOPPED] = 1
        self.process.join(max(deadline - time.monotonic(), 0.5))
        self.kill()
        self._mirror_stop.set()
        if self._mirror is not None and self._mirror.is_alive():
            self._mirror.join(5)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(2)

    def close(self) -> None:
        """Free the shared memory (after `stop`); `status` answers with the last figures from then on."""
        with self._status_lock:
            if self._final_status is None:
                self._final_status = self._status() if self.ready is not None else {}
                self.shared.close(unlink=True)


class SoundServer:
    """The control target for a whole performance: the remote engine playing now, and the next
    one taking over (another model, or the same one after the device came back).

    Listeners added here move to each new engine; events posted from the moment `swap` is
    called go to the new one. Each new engine starts with the presets, sounding notes and pedal
    of the one before (`carry`). While no server plays (`hold`: the device went away), what is
    posted is kept here and the next one applies it at its first hop: parameter changes and
    presets in order, key releases and pedal moves in the notes and pedal carried; a key pressed
    meanwhile is dropped (`notes_dropped`), not started late. `model_loader(path, done)` is set
    by the app (see `load_model`).
    """

    def __init__(self, engine: RemoteEngine):
        self.engine = engine
        self._listeners: list = []
        self._post_lock = threading.Lock()
        self.carry = CarryOver()
        self.add_listener(self.carry.applied)
        self._held: list | None = None
        """Events posted while no server plays, as `_late` passes them on (None while one plays)."""
        self._held_params: dict[str, int] = {}
        self._swapping: list | None = None
        """Events posted while `swap` waits for the old engine, in order, for the new one (None
        outside a swap)."""
        self.notes_dropped = 0
        self.meters = OutputMeters(engine.samplerate)
        """Peak/RMS and spectrum of the output; the OSC server sends them to subscribers."""
        engine.add_tap(self.meters.feed)
        self.model_loader = None
        self.restarts = 0
        self.started_at = time.monotonic()

    @property
    def params(self) -> ParamStore:
        return self.engine.params

    @property
    def samplerate(self) -> int:
        return self.engine.samplerate

    def post(self, event) -> None:
        """Thread-safe and never waits for a swap: posted meanwhile, it goes to the new engine."""
        with self._post_lock:  # in the order the engines get them (see `swap`)
            if self._swapping is not None:
                self._swapping.append(event)
            else:
                self._deliver(event)

    def _deliver(self, event) -> None:
        """Under the post lock: `event` to the engine playing (or held while none plays)."""
        self.carry.posted(event)
        if self._held is not None:
            self._hold(event)
        else:
            self.engine.post(event)

    def hold(self) -> None:
        """No server plays (its device went away): keep what is posted for the next one."""
        with self._post_lock:
            if self._held is None:
                self._held = []
                self._held_params = {}

    def _hold(self, event) -> None:
        """Keep `event` for the next server (under the post lock), as `_late` would pass it on; a
        parameter moved again replaces its value since the last preset event (a knob turned for
        an hour while the device is gone is one event)."""
        for late in self._late([event]):
            if late.type == "param" and late.name in self._held_params:
                self._held[self._held_params[late.name]] = late
                continue
            if late.type == "param":
                self._held_params[late.name] = len(self._held)
            else:  # a preset stored or recalled sees the values before it
                self._held_params = {}
            self._held.append(late)

    def _late(self, events) -> list:
        """Of `events`, posted while no server played, what the next one applies after the carried
        presets: a note-on is dropped (and its note not carried), key releases, sound-offs, pedal
        moves and voice controls are in the carried notes, pedal and controls."""
        late = []
        for event in events:
            kind = event.type
            if kind == "note_on" and event.velocity:
                self.carry.withdraw(event)
                self.notes_dropped += 1
            elif (kind not in ("note_on", "note_off", "voice", "sound_off")
                  and not (kind == "param" and event.name == "sustain")):
                late.append(event)
        return late

    def _take_over(self, engine: RemoteEngine, late: list, *, at: int, settled=()) -> None:
        """Under the post lock: `engine` gets what the performance holds (a running morph where it
        was at the old engine's output sample `at`), then what was held here."""
        held, self._held = self._held or [], None
        voices = engine.params.spec("voices").default if "voices" in engine.params.specs else None
        for event in self.carry.handover([*late, *held], voices=voices, at=at, settled=settled):
            engine.post(event)

    def relaunch(self, spec: dict) -> None:
        """The engine again, in a new server process (see `RemoteEngine.relaunch`), with what it
        held and what was posted while none played."""
        self.hold()
        engine = self.engine

        def first():
            with self._post_lock:
                # the new engine's clock goes on from the old one's: its first sample is `at`
                self._take_over(engine, self._late(engine.take_unapplied()), at=engine.samples_out)

        engine.relaunch(spec, first=first)

    def add_listener(self, callback) -> None:
        self._listeners.append(callback)
        self.engine.add_listener(callback)

    def remove_listener(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)
        self.engine.remove_listener(callback)

    def status(self) -> dict:
        status = self.engine.status()
        status["restarts"] = self.restarts
        status["notes_dropped"] = self.notes_dropped
        status["uptime"] = round(time.monotonic() - self.started_at, 3)
        return status

    def morph_names(self) -> list[str]:
        return self.engine.morph_names()

    def load_seed(self, path: str, done, *, source: str = "") -> None:
        self.engine.load_seed(path, done, source=source)

    def load_model(self, path: str, done) -> None:
        """`/livegen/model s`: load another model while playing (see `model_loader`)."""
        if self.model_loader is None:
            done(False, "this engine cannot load another model while playing")
            return
        self.model_loader(path, done)

    def sound_check(self, seconds: float, done) -> None:
        """`/livegen/input/soundcheck`: listen to the live input for `seconds` (the performer plays
        as loud as they will on stage), then set `input_gain` so that playing sits at the level a
        velocity-100 note plays at (`livegen.engine.input.sound_check`, as `livegen render
        --soundcheck` does offline); `done` with what was set, or what was wrong."""
        engine = self.engine
        if not engine.takes_input:
            done(False, NO_INPUT)
            return
        take = _InputTake(int(round(seconds * engine.config.sample_rate)))
        engine.add_input_tap(take.feed)

        def listen() -> None:
            try:
                if not take.full.wait(seconds + SOUND_CHECK_SPARE_SECONDS):
                    done(False, f"the input gave {take.filled / engine.config.sample_rate:.1f} s of "
                                f"{seconds:g} s (did the sound server stop?); try again")
                    return
                result = sound_check(take.samples, samplerate=engine.config.sample_rate, hop=engine.config.hop,
                                     window=engine.config.n_fft)
            except LivegenError as exc:
                done(False, str(exc))
                return
            finally:
                engine.remove_input_tap(take.feed)
            self.post(Event("param", name="input_gain", value=result.gain_db, source=SOUND_CHECK_SOURCE))
            done(True, result.describe())

        threading.Thread(target=listen, name="livegen-soundcheck", daemon=True).start()

    def swap(self, engine: RemoteEngine, *, fade: bool = True, since: dict | None = None) -> RemoteEngine:
        """Play `engine` (ready, its own listeners and taps attached) instead; the old one fades
        out and stops. `since`: the old one's parameters when `engine`'s spec was taken (those
        turned since go over too). Returns the old one, stopped and closed."""
        old = self.engine
        with self._post_lock:  # from here what is posted waits for the new engine, in order
            self._swapping = []
        try:
            if old.alive and not old.faded_out:
                old.settle()  # a preset stored in its last milliseconds reaches the carry (no lock held)
            with self._post_lock:  # no event falls between what is carried over and what follows
                if old.alive and not old.faded_out:
                    late = [event for event in old.pending()
                            if event.type == "preset" or (event.type == "param" and event.name != "sustain")]
                else:
                    late = self._late(old.pending())
                settled = [] if since is None else [
                    Event("param", name=name, value=value, source=CARRY_SOURCE)
                    for name, value in old.params.snapshot().items()
                    if name != "sustain" and name in engine.params.specs and value != since.get(name)]
                for callback in self._listeners:
                    old.remove_listener(callback)
                    engine.add_listener(callback)
                old.remove_tap(self.meters.feed)
                engine.add_tap(self.meters.feed)
                engine.announce(engine.restart_event(0, reason="model"))
                self._take_over(engine, late, at=old.samples_out, settled=settled)
                self.engine = engine
        finally:
            self._end_swap()  # to the new engine (the old one if the swap failed): nothing is lost
        if old.alive:
            old.stop(fade=fade)
        else:
            old.stop(fade=False)
        engine.start()
        old.close()
        return old

    def _end_swap(self) -> None:
        """Hand what was posted during the swap to the engine that plays now, in order."""
        with self._post_lock:
            waiting, self._swapping = self._swapping or [], None
            for event in waiting:
                self._deliver(event)

    def stop(self, *, fade: bool = True) -> None:
        self.engine.stop(fade=fade)
        self.engine.close()


class _InputTake:
    """The first `frames` live-input samples an input tap hands on (on the mirror thread)."""

    def __init__(self, frames: int):
        self.samples = np.zeros(max(frames, 1), np.float32)
        self.filled = 0
        self.full = threading.Event()

    def feed(self, first: int, block) -> None:
        n = min(len(block), len(self.samples) - self.filled)
        if n > 0:
            self.samples[self.filled:self.filled + n] = block[:n]
            self.filled += n
        if self.filled >= len(self.samples):
            self.full.set()
