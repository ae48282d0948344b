"""`livegen play --headless`: the client side of the instrument, composing sound server, controls and session.

The engine renders in the sound server process (`livegen.server`), inside the audio callback.
This process runs everything that may hold an interpreter lock for long: OSC and MIDI, the
session recorder's disk writes, model loading for a switch. When the audio device or the JACK
server goes away (the server process then ends), this process keeps the parameters
and the recording, says what happened, and starts a new server when the device is back.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import sys
import threading
import time

from livegen.app.options import engine_spec
from livegen.app.seeds import SeedLoader
from livegen.audio.input import jack_sources
from livegen.audio.realtime import set_realtime
from livegen.console import say
from livegen.control.osc import listening_line
from livegen.control.setup import start_controls
from livegen.errors import DeviceError, LivegenError
from livegen.paths import bundled_model_dir
from livegen.server.client import RemoteEngine, SoundServer
from livegen.session.wiring import attach_session

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that end a performance as the end of `--duration` does, the take closed: SIGHUP too,
which a closed terminal or a dropped ssh connection sends (by default it kills at once)."""
WATCHDOG_SECONDS = 2.0
"""A server whose callback has not run for this long has lost its device (or JACK server)."""
RETRY_SECONDS = 1.0


def log(text: str) -> None:
    say(f"livegen play: {text}")


def _raise_priority(nice: int) -> None:
    """Ask for a better CPU share (the server process started later inherits it), as audio
    programs do; a negative nice value needs privileges, without them this says so and goes on."""
    if not nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, int(nice))
    except (OSError, AttributeError) as exc:
        log(f"could not set nice {nice} ({exc}); playing at normal priority")


def serve(args, engine: RemoteEngine) -> int:
    """Play until stopped; `engine` is the sound server the CLI started (it loads meanwhile)."""
    started = time.monotonic()
    stop = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: stop.set())
    _raise_priority(args.nice)
    code = 1
    try:
        try:
            engine.wait_ready()
        except BaseException:
            engine.close()
            raise
        code = _play(args, engine, started, stop)
    except LivegenError as exc:  # said here: the exit below skips the CLI's handler
        log(f"error: {exc}")
        code = 2
    # Everything is stopped, closed and flushed: leave without interpreter teardown, where a C++
    # thread pool can abort the process (seen here: "terminate called without an active exception").
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the terminal is gone: nobody reads it
            pass
    os._exit(code)


def _play(args, engine: RemoteEngine, started, stop) -> int:
    model_name = str(args.model) if args.model else "models/default"
    engine.extra_status["model"] = engine.log_header.get("model_name", model_name)
    engine.extra_status["audio"] = "ok"
    seeds = SeedLoader()
    engine.seed_loader = seeds
    server = SoundServer(engine)
    session = _attach_session(engine, args, model_name=model_name, model_dir=_model_dir(args.model),
                              blocksize=engine.blocksize or None)
    engine.start()
    try:
        controls = start_controls(server, args, log=log)
    except BaseException:
        server.stop()
        raise
    if controls.osc is not None:
        log(listening_line(controls.osc.host, controls.osc.port))
    _raise_control_threads(int(getattr(args, "realtime_priority", 0) or 0))
    told = []
    if controls.osc is not None:
        osc = controls.osc
        told.append(lambda message: osc.broadcast("/livegen/error", (message[:480],)))
        if session is not None:
            session.error_callbacks += told
    switcher = ModelSwitcher(server, args, session=session, controls=controls, error_callbacks=told, seeds=seeds)
    server.model_loader = switcher.load
    status = engine.status()
    log(f"playing on {engine.info['name']!r} at {engine.samplerate} Hz, block {engine.blocksize or 'host'}, "
        f"lead {1000 * (status.get('lead') or 0) / engine.samplerate:.1f} ms"
        f"{f' ({-engine.lead} period ahead)' if engine.lead < 0 else ''}, audio thread {status.get('audio_policy', '?')}, "
        f"OSC {controls.osc.port if controls.osc is not None else 'off'} ({controls.describe()}), "
        f"start-up {time.monotonic() - started:.2f} s")
    code = 0
    lost = False
    try:
        while not stop.wait(0.1):
            if args.duration is not None and time.monotonic() - server.started_at >= args.duration:
                break
            with switcher.guard:  # not while another engine takes over
                engine = server.engine
                gone = not engine.alive or time.monotonic() - engine.last_callback > WATCHDOG_SECONDS
            if engine.error is not None:
                log(f"the recorder feed stopped: {type(engine.error).__name__}: {engine.error}")
                code = 1
                break
            if not lost and gone:
                lost = True
                server.hold()  # what is posted now goes to the next server
                engine.extra_status["audio"] = "lost"
                log("the audio device went away; run `livegen devices` to see what is there "
                    "(--audio-device NAME|INDEX chooses another); waiting for it to return")
            if lost and not stop.wait(RETRY_SECONDS):
                lost = not switcher.restart()
                if not lost:
                    _reopen_midi(controls)
    finally:
        controls.stop()
        switcher.wait()
        status = server.status()
        if switcher.session is not None:  # before the fade: a recording ends as its log renders
            switcher.session.close()
        server.stop(fade=not lost)
    _summary(status, time.monotonic() - server.started_at)
    return code


def _reopen_midi(controls) -> None:
    """The audio is back after a loss. When that was a JACK server restart, JACK MIDI ports died
    with the old server (the virtual port gone, no controller ever found again): open them anew."""
    midi = controls.midi
    if midi is None or not midi.on_jack:
        return
    try:
        midi.reopen()
    except DeviceError as exc:
        log(f"MIDI is off: {exc}")
        return
    waiting = f"; --midi-in {', '.join(midi.connect)} connected when seen" if midi.connect else ""
    log(f"MIDI ports open again on the new JACK server (virtual port '{midi.port_name}'{waiting})")


CONTROL_THREADS = ("osc-receive", "osc-schedule", "midi-worker")
"""The threads that take a performer's control in (they block or sleep between messages)."""


def _raise_control_threads(priority: int) -> None:
    """SCHED_FIFO `priority` (below JACK's clients) for the control threads: on a busy machine a
    normal-policy thread waits behind other programs for milliseconds before it can queue an
    event. Refused (no privilege), they stay at normal policy, as the status says."""
    if priority <= 0:
        return
    for thread in threading.enumerate():
        if thread.name in CONTROL_THREADS and thread.native_id:
            set_realtime(priority, tid=thread.native_id)


class ModelSwitcher:
    """`/livegen/model s` (another model) and the return of a lost device (the same model again).

    A worker thread starts a sound server for the model; once it plays, a fresh session recorder
    is attached to it (its logs then name the new model and start at its first sample) and it
    takes over: the old one fades out. The parameters' current values (those turned while it
    loaded too), the stored presets (one stored a moment before the swap too), the sounding notes
    and the pedal go to the new engine as its first events (`SoundServer.carry`), so they carry
    over and its session logs re-render. A recording under way is not split across models:
    loading is refused until it stops. After a lost device the new server's events follow an
    `engine` `restart` marker in the log under way, where a render starts a fresh engine too.
    """

    def __init__(self, server: SoundServer, args, *, session=None, controls=None, error_callbacks=(), seeds=None):
        self.server = server
        self.seeds = seeds
        self.error_callbacks = list(error_callbacks)
        """Added to each new session's (e.g. the OSC broadcast of /livegen/error)."""
        self.args = args
        self.session = session
        self.controls = controls
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.guard = threading.Lock()
        """Held while another engine takes over (the watchdog does not judge the one going)."""
        self.busy = False

    def load(self, path: str, done) -> None:
        with self._lock:
            if self.busy:
                done(False, "another model is still loading; try again when it plays")
                return
            if self.server.engine.recording:
                done(False, "a recording is under way; stop it (/livegen/record 0) before loading another model")
                return
            self.busy = True
            self._thread = threading.Thread(target=self._load_then_reply, args=(path, done), name="livegen-model",
                                            daemon=True)
            self._thread.start()

    def _load_then_reply(self, path: str, done) -> None:
        # Free for the next request before replying: a sender that asks again as soon as it
        # hears the answer must not be told a load is still under way.
        try:
            ok, message = self._load(path)
        finally:
            with self._lock:
                self.busy = False
        done(ok, message)

    def wait(self, timeout: float = 30.0) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _load(self, path: str) -> tuple[bool, str]:
        old = self.server.engine
        if path != "random" and not (pathlib.Path(path) / "config.json").is_file():
            return False, f"cannot load model {path!r}: {path!r} is not a model directory (no config.json there)"
        since = self.server.params.snapshot()
        params = {key: value for key, value in since.items() if value != self.server.params.spec(key).default}
        spec = engine_spec(self.args, model=path, params=params)
        spec["events"] = spec["seed_audio"] = None  # they were for the first model
        if spec.get("input_device") is not None:  # what plays into the input plays into the new one's
            spec["input_connect"] = jack_sources(old.status().get("input_ports", "").split())
        try:
            engine = self._start(spec)
        except LivegenError as exc:  # a bad directory must not end the performance
            return False, f"cannot load model {path!r}: {exc}"
        engine.extra_status.update({key: value for key, value in old.extra_status.items() if key in SERVER_STATUS})
        engine.extra_status["model"] = str(path)
        self._take_over(engine, since)
        log(f"model {path} plays now")
        return True, str(path)

    def restart(self) -> bool:
        """The device is back (or not yet: False): the same model plays again from where it was,
        with the parameters, presets, sounding notes and pedal it had; the recording under way
        goes on."""
        engine = self.server.engine
        spec = dict(engine.spec)
        spec["events"] = None
        spec["params"] = engine.params.snapshot()
        if spec.get("input_device") is not None:  # what played into the input before the loss (the
            # lost server's last look; a failed try's server has none, the spec kept it)
            spec["input_connect"] = engine.status().get("input_sources", spec.get("input_connect") or [])
        try:
            with self.guard:
                self.server.relaunch(spec)
        except DeviceError:
            return False
        self.server.restarts += 1
        engine.extra_status["audio"] = "ok"
        engine.extra_status["audio_restarts"] = self.server.restarts
        log(f"audio device is back: playing on {engine.info['name']!r}")
        return True

    def _start(self, spec: dict) -> RemoteEngine:
        """A sound server for `spec`, playing (silent until it takes over). It opens its stream
        while the old one still plays (JACK mixes both, so the switch is a crossfade); a device
        that takes one stream at a time refuses, and then the old one fades out first."""
        old = self.server.engine
        try:
            return self._ready(spec)
        except DeviceError:
            if not old.alive:
                raise
        self.server.hold()  # until the new one plays, what is posted waits for it
        old.stop(fade=True)
        return self._ready(spec)

    def _ready(self, spec: dict) -> RemoteEngine:
        old = self.server.engine
        engine = RemoteEngine(old.options, spec, lead=old.lead)
        engine.seed_loader = self.seeds
        try:
            return engine.wait_ready()
        except BaseException:
            engine.close()
            raise

    def _take_over(self, engine: RemoteEngine, since: dict) -> None:
        session = None
        if self.session is not None:
            args = argparse.Namespace(**{**vars(self.args), "record": None})  # --record was for the first model
            model = engine.spec.get("model")
            session = _attach_session(engine, args, model_name=str(model or "models/default"),
                                      model_dir=_model_dir(model), blocksize=engine.blocksize or None)
            if session is not None:
                session.error_callbacks += self.error_callbacks
        old_session = self.session
        with self.guard:
            self.server.swap(engine, since=since)
        midi = getattr(self.controls, "midi", None)
        if midi is not None:
            midi.mapper.params = engine.params
        if old_session is not None:
            old_session.close()
        self.session = session


SERVER_STATUS = ("audio", "audio_restarts")
"""`extra_status` keys the app sets (they stay when another model's engine takes over)."""


def _summary(status: dict, seconds: float) -> None:
    say(f"livegen play: stopped after {seconds:.1f} s, xruns {status.get('xruns', '?')} "
          f"(underflows {status.get('underflows', '?')}, late {status.get('late', '?')}), "
          f"NaN {status.get('nan', '?')}, clamped {status.get('clamped', '?')}, render load {status.get('load', 0):.2f}; "
          f"audio thread {status.get('audio_policy', '?')} (longest callback interval {status.get('audio_gap_ms', '?')} ms, "
          f"longest render {status.get('render_max_ms', '?')} ms)", sys.stdout)


def _model_dir(model) -> str | None:
    """The model folder a take's log names, absolute so that `livegen render LOG` finds it from
    any folder (the bundled default without `--model`); None for a random model."""
    if model == "random":
        return None
    return str(pathlib.Path(model).resolve() if model else bundled_model_dir("default"))


def _attach_session(engine, args, *, model_name, model_dir=None, blocksize=None):
    """A session recorder on `engine` (a `RemoteEngine`, or an in-process engine in tests)."""
    model_dir = None if model_name == "random" else (model_dir or model_name)
    return attach_session(engine, args, model_dir=model_dir, model_name=model_name,  # its header has the
                          blocksize=blocksize, log=log)                             # engine's log_header
