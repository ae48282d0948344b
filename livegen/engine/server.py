"""The engine server behind `livegen play --headless`: audio out, decoder thread, OSC."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from livegen.errors import DeviceError

WATCHDOG_SECONDS = 2.0
"""A stream whose callback has not run for this long has lost its device (or JACK server)."""


def log(text: str) -> None:
    print(f"livegen play: {text}", file=sys.stderr, flush=True)


def open_output(args, ring, *, wait: bool, stop: threading.Event):
    """Open the output stream; with `wait`, retry until the device (or JACK server) returns."""
    from livegen.audio import devices
    from livegen.audio.stream import AudioOutput

    told = False
    while True:
        try:
            with devices.quiet_stderr():
                output = AudioOutput(ring, device=args.audio_device, samplerate=args.samplerate,
                                     blocksize=args.blocksize, latency=_latency(args.latency))
                output.open()
            return output
        except DeviceError as exc:
            if not wait:
                raise
            if not told:
                log(f"waiting for the audio device: {exc}")
                told = True
            if stop.wait(1.0):
                return None
            sd = devices.sounddevice()
            sd._terminate()  # rescan: PortAudio lists devices (and JACK servers) only at initialisation
            sd._initialize()


def _latency(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def serve(args) -> int:
    started = time.monotonic()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    from livegen.audio.ring import RingBuffer

    wait = os.environ.get("LIVEGEN_WAIT_DEVICE") == "1"
    ring = RingBuffer(1 << 16)
    output = open_output(args, ring, wait=wait, stop=stop)  # first, so a missing device is told at once
    if output is None:
        return 0

    import torch

    from livegen.engine.core import Engine
    from livegen.engine.live import LiveEngine
    from livegen.engine.setup import load_engine_model, pick_device

    torch.set_num_threads(max(1, args.threads))
    device = pick_device(args.device)
    model, model_name = load_engine_model(args.model, device=device, log=log)
    engine = Engine(model, samplerate=output.samplerate, seed=args.seed, lookahead=args.lookahead, device=device)
    block = output.blocksize or 256
    ahead_ms = args.ahead_ms
    ahead = int(round(ahead_ms * output.samplerate / 1000)) if ahead_ms is not None else max(2 * block, 768)
    live = LiveEngine(engine, output, ahead=ahead)
    engine.extra_status["model"] = model_name
    if args.events:
        from livegen.engine.events import read_events

        _, scheduled = read_events(args.events)
        engine.schedule(scheduled)
    session = _attach_session(engine, args, model_name=model_name, blocksize=output.blocksize)
    osc = _start_osc(live, args)
    live.start()
    log(f"playing on {output.info['name']!r} at {output.samplerate} Hz, block {output.blocksize or 'host'}, "
        f"ahead {1000 * ahead / output.samplerate:.1f} ms, OSC {osc.port if osc else 'off'}, "
        f"start-up {time.monotonic() - started:.2f} s")
    code = 0
    try:
        while not stop.wait(0.1):
            if args.duration is not None and time.monotonic() - live.started_at >= args.duration:
                break
            if live.error is not None:
                log(f"decoder stopped: {type(live.error).__name__}: {live.error}")
                code = 1
                break
            if not output.active or time.monotonic() - output.last_callback > WATCHDOG_SECONDS:
                log("the audio device went away; run `livegen devices` to see what is there "
                    "(--audio-device NAME|INDEX chooses another); waiting for it to return")
                code = 75
                break
    finally:
        if osc is not None:
            osc.stop()
        status = live.status()
        if code == 75:
            # Closing a stream whose JACK server is gone can abort inside PortAudio: leave at once.
            _summary(status, time.monotonic() - live.started_at)
            os._exit(code)
        live.stop()
        if session is not None:
            session.close()
    _summary(live.status(), time.monotonic() - live.started_at)
    return code


def _summary(status: dict, seconds: float) -> None:
    print(f"livegen play: stopped after {seconds:.1f} s, xruns {status['xruns']} "
          f"(underflows {status['underflows']}, ring underruns {status['ring_underruns']}), "
          f"NaN {status['nan']}, clamped {status['clamped']}", flush=True)


def _attach_session(engine, args, *, model_name, blocksize):
    try:
        from livegen.session.wiring import attach_session
    except ImportError:
        return None
    model_dir = None if model_name == "random" else model_name
    return attach_session(engine, args, model_dir=model_dir, model_name=model_name,
                          blocksize=blocksize or None, log=log)


def _start_osc(live, args):
    try:
        from livegen.control.osc import OscServer
    except ImportError:
        log("OSC: livegen.control.osc is not available in this build; control over OSC is off")
        return None
    server = OscServer(live, host=args.osc_host, port=args.osc_port)
    server.start()
    return server
