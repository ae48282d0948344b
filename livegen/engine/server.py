"""The engine server behind `livegen play --headless`: decoder, OSC, recorder; audio in a child.

The audio stream runs in a small child process (`livegen.audio.process`) that shares only a
ring buffer with this one, so the callback never waits for this process's GIL, and a PortAudio
abort (the JACK server dying under the stream) kills only the child: this process keeps its
parameters, voices and recording, says what happened, and starts a new child when the device
or server is back.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from livegen.errors import DeviceError, LivegenError

WATCHDOG_SECONDS = 2.0
"""A stream whose callback has not run for this long has lost its device (or JACK server)."""
RETRY_SECONDS = 1.0


def log(text: str) -> None:
    print(f"livegen play: {text}", file=sys.stderr, flush=True)


def _latency(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _raise_priority(nice: int) -> None:
    """Ask for a better CPU share (threads and children started later inherit it), as audio
    programs do; a negative nice value needs privileges, without them this says so and goes on."""
    if not nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, int(nice))
    except (OSError, AttributeError) as exc:
        log(f"could not set nice {nice} ({exc}); playing at normal priority")


def _audio_priority(args) -> int:
    """The audio thread's SCHED_FIFO priority where the host API is not JACK: above the decoder's."""
    priority = int(getattr(args, "realtime_priority", 0) or 0)
    return min(priority + 5, 99) if priority > 0 else 0


def serve(args) -> int:
    started = time.monotonic()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _raise_priority(args.nice)

    from livegen.audio.process import ProcessOutput, SharedRing

    ring = SharedRing(1 << 16)
    try:
        output = ProcessOutput(ring, device=args.audio_device, samplerate=args.samplerate,
                               blocksize=args.blocksize, latency=_latency(args.latency),
                               realtime_priority=_audio_priority(args))
        output.launch()  # the audio process starts while this one imports torch and loads the model
    except BaseException:
        ring.close(unlink=True)
        raise
    code = 1
    try:
        code = _serve(args, output, started, stop)
    except LivegenError as exc:  # said here: the exit below skips the CLI's handler
        print(f"livegen play: error: {exc}", file=sys.stderr)
        code = 2
    finally:
        output.close()
        ring.close(unlink=True)
    # Everything is stopped, closed and flushed: leave without interpreter teardown, where a C++
    # thread pool can abort the process (seen here: "terminate called without an active exception").
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _serve(args, output, started, stop) -> int:
    import torch

    from livegen.app import factory
    from livegen.engine.setup import pick_device

    torch.set_num_threads(max(1, args.threads))
    device = pick_device(args.device)
    loaded = factory.load(args.model, device=device, seed_audio=getattr(args, "seed_audio", None),
                          temperature=getattr(args, "temperature", None), log=log)
    model_name = loaded.name
    output.wait_ready()  # DeviceError (no device, or the one asked for is missing) leaves from here
    live_input = _open_input(args, loaded)
    try:
        engine = loaded.engine(samplerate=output.samplerate, seed=args.seed, lookahead=args.lookahead,
                               threads=max(1, args.threads), live_input=live_input)
        return _play(args, output, started, stop, engine, model_name, device, live_input)
    finally:
        if live_input is not None:
            live_input.close()
            log(f"live input: {live_input.frames} frames heard in {live_input.callbacks} callbacks, "
                f"{live_input.overflows} overflows")


def _open_input(args, loaded):
    """`--input-device`: a started `LiveInput` for the engine to follow (None without the option)."""
    name = getattr(args, "input_device", None)
    if name is None:
        return None
    if not loaded.follows_input:
        from livegen.errors import ParameterError

        raise ParameterError(f"--input-device {name}: model {loaded.name} does not follow live input; "
                             "give a continuation model (--model models/continuation)")
    from livegen.continuation.live_input import LiveInput

    live_input = LiveInput(device=name)
    try:
        live_input.start()
    except Exception as exc:
        live_input.close()
        raise DeviceError(f"--input-device {name}: cannot start {live_input.info['name']!r} ({exc}); "
                          "run `livegen devices` to see the inputs there") from None
    log(f"live input: {live_input.info['name']!r} at {live_input.samplerate} Hz")
    return live_input


def _play(args, output, started, stop, engine, model_name, device, live_input=None) -> int:
    from livegen.engine.live import LiveEngine

    block = output.blocksize or 256
    ahead_ms = args.ahead_ms
    ahead = int(round(ahead_ms * output.samplerate / 1000)) if ahead_ms is not None else max(2 * block, 768)
    live = LiveEngine(engine, output, ahead=ahead, realtime_priority=getattr(args, "realtime_priority", 0), log=log)
    engine.extra_status["model"] = model_name
    engine.extra_status["audio"] = "ok"
    if args.events:
        from livegen.engine.events import read_events

        _, scheduled = read_events(args.events)
        engine.schedule(scheduled)
    session = _attach_session(engine, args, model_name=model_name, blocksize=output.blocksize)
    live.start()
    from livegen.control.setup import start_controls

    # after the first blocks: an answer to /livegen/status means "playing"
    try:
        with live.lead():
            controls = start_controls(live, args, log=log)
    except BaseException:
        live.stop()
        raise
    told = []
    if controls.osc is not None:
        osc = controls.osc
        told.append(lambda message: osc.broadcast("/livegen/error", (message[:480],)))
        if session is not None:
            session.error_callbacks += told
    switcher = ModelSwitcher(live, args, device=device, session=session, controls=controls, error_callbacks=told,
                             live_input=live_input)
    live.model_loader = switcher.load
    log(f"playing on {output.info['name']!r} at {output.samplerate} Hz, block {output.blocksize or 'host'}, "
        f"ahead {1000 * ahead / output.samplerate:.1f} ms, "
        f"decoder {live.realtime_note if live.realtime_priority > 0 else 'normal scheduling (--realtime-priority 0)'}, "
        f"OSC {controls.osc.port if controls.osc is not None else 'off'} ({controls.describe()}), "
        f"start-up {time.monotonic() - started:.2f} s")
    code = 0
    lost = False
    try:
        while not stop.wait(0.1):
            if args.duration is not None and time.monotonic() - live.started_at >= args.duration:
                break
            if live.error is not None:
                log(f"decoder stopped: {type(live.error).__name__}: {live.error}")
                code = 1
                break
            if not lost and (not output.active or time.monotonic() - output.last_callback > WATCHDOG_SECONDS):
                lost = True
                live.engine.extra_status["audio"] = "lost"
                output.close(timeout=0.5)
                log("the audio device went away; run `livegen devices` to see what is there "
                    "(--audio-device NAME|INDEX chooses another); waiting for it to return")
            if lost and not stop.wait(RETRY_SECONDS):
                try:
                    output.reopen()
                except DeviceError:
                    continue
                lost = False
                live.engine.extra_status["audio"] = "ok"
                live.engine.extra_status["audio_restarts"] = output.restarts
                log(f"audio device is back: playing on {output.info['name']!r}")
    finally:
        with live.lead():
            controls.stop()
        switcher.wait()
        live.stop(fade=not lost)
        if switcher.session is not None:
            switcher.session.close()
    _summary(live.status(), output, time.monotonic() - live.started_at)
    return code


class ModelSwitcher:
    """`/livegen/model s`: load another model directory while playing.

    A worker thread loads the model and builds its engine, attaches a fresh session recorder to
    it (its logs then name the new model and start at its first sample) and hands it to the live
    engine, which fades the old one out and the new one in. The parameters' current values go
    to the new engine as its first events, so they carry over and its session logs re-render.
    A recording under way is not split across models: loading is refused until it stops.
    """

    def __init__(self, live, args, *, device, session=None, controls=None, error_callbacks=(), live_input=None):
        self.live = live
        self.error_callbacks = list(error_callbacks)
        """Added to each new session's (e.g. the OSC broadcast of /livegen/error)."""
        self.args = args
        self.device = device
        self.session = session
        self.controls = controls
        self.live_input = live_input
        """`--input-device`: handed on to each engine loaded whose model follows live input."""
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy = False

    def load(self, path: str, done) -> None:
        with self._lock:
            if self._busy:
                done(False, "another model is still loading; try again when it plays")
                return
            if self.live.engine.recording:
                done(False, "a recording is under way; stop it (/livegen/record 0) before loading another model")
                return
            self._busy = True
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
                self._busy = False
        done(ok, message)

    def wait(self, timeout: float = 30.0) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _load(self, path: str) -> tuple[bool, str]:
        import argparse
        import pathlib

        from livegen.app import factory
        from livegen.engine.events import Event

        old = self.live.engine
        try:
            if path != "random" and not (pathlib.Path(path) / "config.json").is_file():
                raise LivegenError(f"{path!r} is not a model directory (no config.json there)")
            # A continuation model starts without a seed: /livegen/seed gives it one.
            loaded = factory.load(path, device=self.device, temperature=getattr(self.args, "temperature", None),
                                  log=log)
            name = loaded.name
            engine = loaded.engine(samplerate=old.samplerate, seed=old.seed, lookahead=self.args.lookahead,
                                   threads=max(1, self.args.threads),
                                   live_input=self.live_input if loaded.follows_input else None)
        except Exception as exc:  # a bad directory must not end the performance
            return False, f"cannot load model {path!r}: {exc}"
        # What the server tracks carries over; what the old model reported of itself does not.
        engine.extra_status.update({key: value for key, value in old.extra_status.items() if key in SERVER_STATUS})
        engine.extra_status["model"] = name
        for key, value in self.live.params.snapshot().items():
            if key in engine.params.specs and value != engine.params.spec(key).default:
                engine.post(Event("param", name=key, value=value, source="model"))
        session = None
        if self.session is not None:
            quiet = argparse.Namespace(**{**vars(self.args), "record": None})  # --record was for the first model
            session = _attach_session(engine, quiet, model_name=name, blocksize=self.live.output.blocksize)
            if session is not None:
                session.error_callbacks += self.error_callbacks
        swapped = threading.Event()

        def on_swapped(_old) -> None:  # on the decoder thread, before the new engine's first hop
            swapped.set()

        self.live.swap_engine(engine, on_swapped=on_swapped)
        if not swapped.wait(10.0):
            return False, f"model {name!r} loaded but the decoder did not take it over"
        midi = getattr(self.controls, "midi", None)
        if midi is not None:
            midi.mapper.params = engine.params
        if self.session is not None:
            self.session.close()
        self.session = session
        log(f"model {name} plays now")
        return True, name


SERVER_STATUS = ("audio", "audio_restarts")
"""`extra_status` keys the server sets (they stay when another model's engine takes over)."""


def _summary(status: dict, output, seconds: float) -> None:
    print(f"livegen play: stopped after {seconds:.1f} s, xruns {status['xruns']} "
          f"(underflows {output.underflows}, ring underruns {output.ring_underruns}), "
          f"NaN {status['nan']}, clamped {status['clamped']}, decoder load {status['load']:.2f}; "
          f"decoder {status['decoder_policy']} {status['realtime_priority']} "
          f"(longest loop {status['decoder_gap_ms']} ms, ring low {status['ring_min']}), "
          f"audio thread {status['audio_policy']} (longest callback interval {status['audio_gap_ms']} ms, "
          f"ring low {status['audio_min_fill']})", flush=True)


def _attach_session(engine, args, *, model_name, blocksize):
    try:
        from livegen.session.wiring import attach_session
    except ImportError:
        return None
    model_dir = None if model_name == "random" else model_name
    return attach_session(engine, args, model_dir=model_dir, model_name=model_name,
                          blocksize=blocksize or None, log=log)
