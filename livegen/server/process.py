"""The sound server process: the engine renders beside the audio callback, as scsynth does.

Nothing else in this process can hold its interpreter lock for long: it loads the model before
the stream opens, then runs only the callback and a housekeeping thread at the callback's
priority that answers status requests and watches for the stop flag. OSC and MIDI parsing,
disk writes, model loading for a switch and the terminal UI all live in the client process,
which talks to this one through `livegen.server.shm.SharedBlock`.

With no lead, each callback drains the inbox into the engine, renders hops until it holds the
samples the device asks for, writes every rendered sample and every applied event back for the
client, and copies its samples out. With a lead (`livegen play --ahead-periods`, `--ahead-ms`)
a render thread does the same one lead ahead, woken by each callback, and the callback only
copies out: a render that comes late by less than the lead costs no dropout. An event that
arrives between hops takes effect at the next hop rendered.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import signal
import sys
import threading
import time

import numpy as np
import torch

from livegen.audio.devices import INPUT_HINT, find_output_device, quiet_stderr, sounddevice
from livegen.audio.input import JACK_CLIENT, LiveInput, end_portaudio, jack_ports, set_jack_client_name
from livegen.audio.jackstream import JackStream
from livegen.audio.realtime import POLICIES, set_realtime, thread_policy
from livegen.console import say
from livegen.engine.catalogue import EVENT_KINDS, setup_events
from livegen.engine.events import Event, check_events, read_events
from livegen.engine.input import FileFeed, InputSource, with_input_defaults
from livegen.engine.setup import pick_device
from livegen.errors import DeviceError, LivegenError, ParameterError
from livegen.server import factory
from livegen.server.shm import Counter, SharedBlock
from livegen.server.wire import ARRIVAL, decode_posted, encode_applied

HOUSEKEEPING_SECONDS = 0.005
STATUS_EVERY_SECONDS = 0.25
FIFO_SAMPLES = 1 << 18
"""Rendered samples kept ahead of the device: the largest lead the options allow (1000 ms at 192 kHz,
16 periods of 8192) and a block on top."""


class Renderer:
    """The audio callback: events in, hops rendered, samples out and back.

    Lead 0: the hop is rendered in the callback that plays it. A lead > 0 (samples; < 0: that
    many device periods) moves the rendering to a thread of its own one real-time priority under
    the callback's, which keeps the buffer `lead` samples past the callback's need: the callback only copies, and
    a render that comes late by up to the lead costs no dropout (the cost: the lead's latency).
    """

    def __init__(self, engine, shared: SharedBlock, *, lead: int):
        self.engine = engine
        self.shared = shared
        self.counters = shared.counters
        self.names = engine.params.names
        self.lead = int(lead)
        self.ahead = self.lead != 0
        self.fifo = np.zeros(FIFO_SAMPLES, dtype=np.float32)
        self.fifo_written = 0
        self.fifo_read = 0
        self.stopping = False
        self.tid = 0
        self.error: BaseException | None = None
        self.live_input = None
        """A `LiveInput` carried by this stream (duplex): `duplex_callback` hands it each block."""
        self.samplerate = int(engine.samplerate)
        self.frames = 0
        """The device's last block: what the render thread keeps ready past the lead."""
        self.primed = False
        self.render_tid = 0
        self._wake = os.eventfd(0) if self.ahead else -1
        """Written by the callback (never blocks: the count only adds), read by the render thread."""
        self._quit = False
        self._thread: threading.Thread | None = None
        engine.add_listener(self._applied)

    def start_ahead(self) -> None:
        """The render thread (a lead > 0 only); it waits for the callback to wake it."""
        if self.ahead and self._thread is None:
            self._thread = threading.Thread(target=self._run_ahead, name="livegen-render", daemon=True)
            self._thread.start()
            self.render_tid = self._thread.native_id  # known before the callback raises its priority

    def stop_ahead(self) -> None:
        if self._thread is not None:
            self._quit = True
            os.eventfd_write(self._wake, 1)
            self._thread.join(2.0)
            self._thread = None
        if self._wake >= 0:
            os.close(self._wake)
            self._wake = -1

    def _run_ahead(self) -> None:
        self.engine.bind_thread()
        while not self._quit:
            os.eventfd_read(self._wake)  # sleeps outside the interpreter lock until the callback writes
            if self._quit or not self.counters[Counter.GO] or self.error is not None or not self.frames:
                continue
            try:
                self._render(self.frames)
            except BaseException as exc:  # the callback plays silence; the housekeeping thread reports it
                self.error = exc

    def lead_samples(self, frames: int | None = None) -> int:
        """The lead in samples for blocks of `frames` (default: the device's last; a lead in
        periods is 0 until the device has said its block)."""
        return self.lead if self.lead >= 0 else -self.lead * (self.frames if frames is None else frames)

    def need(self, frames: int) -> int:
        """Samples to hold before copying `frames` out: the block plus the lead."""
        return frames + self.lead_samples(frames)

    def _applied(self, event) -> None:
        self.shared.outbox.put(encode_applied(event))

    def consumed(self, samples) -> None:
        """The live input the engine consumed this hop, back to the client (a take records it)."""
        self.shared.input.write(samples)

    def duplex_callback(self, indata, outdata, frames, time_info, status) -> None:
        """One stream for input and output: this cycle's input is there for the hop rendered now."""
        if self.counters[Counter.GO]:  # before, nobody reads it: it would only be late input
            self.live_input.write(indata[:, 0])
        self.callback(outdata, frames, time_info, status)

    def callback(self, outdata, frames, time_info, status) -> None:
        started = time.monotonic_ns()
        counters = self.counters
        if status and status.output_underflow:
            counters[Counter.UNDERFLOWS] += 1
        last = counters[Counter.LAST_CALLBACK_NS]
        if last and counters[Counter.CALLBACKS]:
            gap = started - last
            if gap > counters[Counter.MAX_GAP_NS]:
                counters[Counter.MAX_GAP_NS] = gap
        elif not self.tid:
            self.tid = threading.get_native_id()
        if not counters[Counter.GO] or self.error is not None:
            outdata.fill(0.0)
        elif self.ahead:
            self.frames = frames
            if self.primed or self.fifo_written - self.fifo_read >= self.need(frames):
                self.primed = True
                self._copy_out(outdata, frames)
            else:  # the first blocks, before the render thread has filled the lead: not late
                outdata.fill(0.0)
            os.eventfd_write(self._wake, 1)
        else:
            try:
                self._render(frames)
            except BaseException as exc:  # keep the stream alive; the housekeeping thread reports it
                self.error = exc
                outdata.fill(0.0)
            else:
                self._copy_out(outdata, frames)
        counters[Counter.CALLBACKS] += 1
        counters[Counter.LAST_CALLBACK_NS] = started
        spent = time.monotonic_ns() - started
        if spent > counters[Counter.MAX_RENDER_NS]:
            counters[Counter.MAX_RENDER_NS] = spent
        if spent * self.samplerate > frames * 500_000_000:  # over half the period
            counters[Counter.SLOW_CALLBACKS] += 1

    def _render(self, frames: int) -> None:
        engine = self.engine
        inbox = self.shared.inbox
        counters = self.counters
        while True:
            record = inbox.get()
            if record is None:
                break
            (arrived,) = ARRIVAL.unpack_from(record)
            waited = time.monotonic_ns() - arrived
            counters[Counter.EVENT_WAIT_NS] = waited
            if waited > counters[Counter.EVENT_WAIT_MAX_NS]:
                counters[Counter.EVENT_WAIT_MAX_NS] = waited
            engine.post(decode_posted(record[ARRIVAL.size:], self.names))
        if not self.stopping and self.counters[Counter.STOP]:
            self.stopping = True
            engine.fade_out()
        need = self.need(frames)
        fifo = self.fifo
        size = len(fifo)
        while self.fifo_written - self.fifo_read < need:
            block = engine.step()
            n = len(block)
            start = self.fifo_written % size
            first = min(n, size - start)
            fifo[start:start + first] = block[:first]
            if first < n:
                fifo[:n - first] = block[first:]
            self.fifo_written += n
            self.shared.audio.write(block)
        self.counters[Counter.MORPHING] = engine.morphing
        if self.stopping and engine.faded_out:
            self.counters[Counter.STOPPED] = 1

    def _copy_out(self, outdata, frames: int) -> None:
        fifo = self.fifo
        size = len(fifo)
        n = min(frames, self.fifo_written - self.fifo_read)
        if n < frames:
            self.counters[Counter.LATE] += 1
            outdata[n:] = 0.0
        start = self.fifo_read % size
        first = min(n, size - start)
        outdata[:first, :] = fifo[start:start + first, None]
        if first < n:
            outdata[first:n, :] = fifo[:n - first, None]
        self.fifo_read += n


def audio_lead(lead: int, calls_torch: bool) -> int:
    """The lead the server renders with: as asked, except that an engine whose hop runs a torch
    network (a GPU decoder, a continuation model) gets at least one period, so torch runs on the
    render thread, never in the audio callback."""
    return -1 if lead == 0 and calls_torch else lead


def _engine_status(engine, renderer: Renderer, stream, info: dict, options: dict) -> dict:
    counters = renderer.counters
    status = engine.status()
    policy, priority = thread_policy(renderer.tid) if renderer.tid else ("?", 0)
    status.update({
        "underflows": int(counters[Counter.UNDERFLOWS]),
        "late": int(counters[Counter.LATE]),
        "blocksize": int(options.get("blocksize") or 0),
        "lead": renderer.lead_samples(),
        "audio_device": info["name"],
        "audio_gap_ms": round(counters[Counter.MAX_GAP_NS] / 1e6, 2),
        "render_max_ms": round(counters[Counter.MAX_RENDER_NS] / 1e6, 2),
        "slow_callbacks": int(counters[Counter.SLOW_CALLBACKS]),
        **{f"gc_runs_{i}": generation["collections"] for i, generation in enumerate(gc.get_stats())},
        "event_wait_ms": round(counters[Counter.EVENT_WAIT_NS] / 1e6, 2),
        "event_wait_max_ms": round(counters[Counter.EVENT_WAIT_MAX_NS] / 1e6, 2),
        "audio_policy": f"{policy} {priority}",
        "output_latency_ms": round(1000 * _output_latency(stream), 2),
        "server_pid": os.getpid(),
        "morph_names": engine.morph_names(),
    })
    live = renderer.live_input
    if live is not None:
        status.update(live.status())
        if isinstance(stream, JackStream) and live.duplex:
            status["input_sources"] = stream.input_sources()
        feed = live.engine_feed
        if feed is not None:
            status["input_skipped"] = feed.skipped
    if renderer.error is not None:
        status["engine_error"] = f"{type(renderer.error).__name__}: {renderer.error}"
    return status


def build_engine(spec: dict, samplerate: int, *, hostapi: str | None = None):
    """(engine, live input) as `spec` describes (model, seed, look-ahead, device, input
    device...), built in this process before the stream opens, so the model loads while nothing
    plays. The live input (None without --input-device, or for a model switched to that follows
    none) is not started; on the output's host API `hostapi` the output stream will carry it
    (`duplex`: its input arrives in the callback that renders), else it opens its own."""
    threads = max(1, int(spec.get("threads") or 1))
    torch.set_num_threads(threads)
    # queried once, before the model loads: a missing device is said at once
    found = LiveInput(device=spec["input_device"]) if spec.get("input_device") is not None else None
    loaded = factory.load(spec.get("model"), device=pick_device(spec.get("device") or "auto"),
                          seed_audio=spec.get("seed_audio"), temperature=spec.get("temperature"), log=_log)
    live_input = _open_input(loaded, spec, found, samplerate=samplerate, hostapi=hostapi)

    def build(live_input=None, input_feed=None):
        kwargs = {}
        if live_input is not None and loaded.continuation:
            kwargs["live_input"] = live_input
        elif live_input is not None:
            live_input.engine_feed = input_feed = live_input.feed(loaded.config.sample_rate)
        if input_feed is not None:
            kwargs["input_feed"] = input_feed
        return loaded.engine(samplerate=samplerate, seed=spec.get("seed", 0), lookahead=spec.get("lookahead"),
                             threads=threads, read=spec.get("read", "window"), **kwargs)

    engine = build(live_input)
    warm_feed = None  # never the live input (the spare must not drain it): a tone loads the input's path
    if live_input is not None and not loaded.continuation:
        rate = loaded.config.sample_rate
        tone = (0.3 * np.sin(2 * np.pi * 220.0 * np.arange(rate // 2) / rate)).astype(np.float32)
        warm_feed = FileFeed(tone, samplerate=rate, model_rate=rate)
    _warm_up(build(input_feed=warm_feed))
    scheduled = read_events(spec["events"])[1] if spec.get("events") else []
    if not spec.get("params"):  # a first start: an unknown name is refused as `livegen render` refuses it
        check_events(scheduled, engine.params, origin=spec.get("events"))
    if warm_feed is not None and not spec.get("params"):  # a first start (a switch carries the performer's)
        scheduled = with_input_defaults(scheduled)  # as `livegen render --input` does
    if scheduled:
        engine.schedule(scheduled)
    for name, value in (spec.get("params") or {}).items():  # what the performer had set (a model switch)
        if name in engine.params.specs:
            engine.post(Event("param", name=name, value=value, source="model"))
    engine.bind_thread()
    return engine, live_input


def _open_input(loaded, spec: dict, live, *, samplerate: int, hostapi: str | None):
    """`--input-device`: the `LiveInput` `live` found (its callback only copies into a ring) for
    the engine to follow, not started yet. A model that follows no input refuses it at start;
    after a model switch it just goes without (None)."""
    name = spec.get("input_device")
    if live is None:
        return None
    if not (loaded.follows_input or loaded.plays_input):
        if spec.get("input_required"):
            raise ParameterError(f"--input-device {name}: model {spec.get('model')} does not follow live input; "
                                 "give a spectral model (the default) or a continuation model")
        return None
    if hostapi is not None and live.hostapi == hostapi:
        live.carry(samplerate)
    return live


def _start_input(live_input, stream, connect=()) -> None:
    """Start the live input's own stream (unless the output's carries it) and, on JACK, name
    its port `input` and connect `connect` to it (what played into the server before this one)."""
    if not live_input.duplex:
        try:
            live_input.start()
        except Exception as exc:
            live_input.close()
            raise DeviceError(f"--input-device {live_input.device}: cannot start {live_input.info['name']!r} "
                              f"({exc}); {INPUT_HINT}") from None
    ports = []
    if isinstance(stream, JackStream) and live_input.duplex:
        ports = live_input.ports = stream.connect_input(connect)
    elif live_input.on_jack:
        try:
            ports = jack_ports(live_input, connect=connect)
        except Exception as exc:  # the input plays; only its port keeps PortAudio's name and connection
            _log(f"live input: could not name or disconnect its JACK port ({type(exc).__name__}: {exc})")
    where = (f"JACK port {', '.join(ports)}: connect what you play to it (jack_connect, qjackctl, Carla)"
             if ports else "")
    _log(f"live input: {live_input.info['name']!r} at {live_input.samplerate} Hz, {_input_path(live_input, stream)}"
         f"{'; ' + where if where else ''}")


def _input_path(live_input, stream) -> str:
    """How the live input's samples arrive, for the log: each case says what is true of it."""
    if isinstance(stream, JackStream) and live_input.duplex:
        return f"an input port of the sound server's own JACK client {stream.name!r}"
    if live_input.duplex:
        return "in the output stream (one duplex PortAudio stream)"
    return "in its own PortAudio input stream"


def _warm_up(spare) -> None:
    """Run a throwaway engine of the same model through every kind of event it applies
    (`livegen.engine.catalogue`), so that the first callbacks, and the first pedal lift or morph
    of the show, find the compiled kernels loaded and the buffers made (not the engine that
    plays: its samples must be the ones a render of the session log gives)."""
    for event in setup_events():
        spare.post(event)
    spare.step()
    for _, make in EVENT_KINDS:
        for i in range(2):
            first, event = make(i)
            for each in (*first, event):
                spare.post(each)
            spare.step()
    for pitch in (48, 60, 64, 67, 72, 76, 79, 84):
        spare.post(Event("note_on", pitch=pitch, velocity=100))
    for velocity in (100, 0, 100):  # a voice id's note, released, and its id's next one (which detaches it)
        spare.post(Event("note_on", pitch=55, velocity=velocity, voice=1))
    spare.post(Event("param", name="x", value=0.3))
    for _ in range(24):
        spare.step()


def describe(engine) -> dict:
    """What the client needs of the engine: its parameter table and the session header's fields."""
    config = engine.config
    fields = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(vars(config))
    return {
        "params": list(engine.params.specs.values()), "seed": engine.seed, "hop": engine.hop,
        "hop_seconds": engine.hop_seconds, "lookahead": engine.lookahead,
        "device": str(engine.device), "method": engine.inverter.method, "read": engine.inverter.read,
        "config": {key: value for key, value in fields.items() if isinstance(value, (int, float, str, bool, type(None)))},
        "log_header": engine.log_header,
        "seeds": engine.handles("seed"),
        "takes_input": engine.find(InputSource) is not None,
    }


def _log(text: str) -> None:
    say(f"livegen sound server: {text}")


def serve(block_name: str, n_params_max: int, ring_rate: int, options: dict, spec: dict, conn) -> None:
    """The process's main (spawned by `livegen.server.client.SoundServer`): `options` carries
    the device settings, `spec` the engine's (see `build_engine`)."""
    # No PR_SET_PDEATHSIG: it fires when the *thread* that started this process ends (a model
    # switch starts it from a worker thread); the housekeeping loop watches the parent instead.
    for signum in (signal.SIGINT, signal.SIGHUP):  # the client decides when to stop: a Ctrl-C or a
        signal.signal(signum, signal.SIG_IGN)       # closed terminal reaches the whole process group
    shared = SharedBlock(n_params=n_params_max, samplerate=ring_rate, name=block_name)
    try:
        set_jack_client_name()  # before any stream: its ports are named after it
        with quiet_stderr():
            info = find_output_device(options.get("device"))
        samplerate = int(options.get("samplerate") or info["samplerate"])
        engine, live_input = build_engine(spec, samplerate, hostapi=info["hostapi"])
        n = len(engine.params.names)
        if n > n_params_max:
            raise LivegenError(f"the model has {n} parameters; the sound server holds at most {n_params_max}")
        # The store's arrays live in shared memory: the client reads the values the engine uses.
        shared.targets[:n] = engine.params.targets
        shared.values[:n] = engine.params.values
        engine.params.targets = shared.targets[:n]
        engine.params.values = shared.values[:n]
        start = int(shared[Counter.START_SAMPLE])
        engine.samples_out = start
        shared[Counter.AUDIO_WRITTEN] = start
        shared[Counter.AUDIO_READ] = start
        channels = int(options.get("channels") or min(2, info["channels"]))
        lead = audio_lead(int(shared[Counter.LEAD]), engine.calls_torch)
        if lead != int(shared[Counter.LEAD]):
            _log(f"the model runs torch every hop (on {engine.device}): rendering one period ahead, on a thread "
                 "beside the audio callback, which never calls torch")
        renderer = Renderer(engine, shared, lead=lead)
        source = engine.find(InputSource)
        if source is not None:
            source.add_consumer(renderer.consumed)
        renderer.live_input = live_input
        stream = _open_stream(renderer, info, options, samplerate, channels)
        renderer.start_ahead()
        stream.start()
        if live_input is not None:
            _start_input(live_input, stream, connect=spec.get("input_connect") or ())
    except LivegenError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
        conn.close()
        os._exit(2)
    except BaseException as exc:
        conn.send(("error", "LivegenError", f"the sound server could not start: {type(exc).__name__}: {exc}"))
        conn.close()
        os._exit(2)
    # Start-up objects (torch, the model: hundreds of thousands) stay out of every collection:
    # a full one would hold the interpreter lock in the callback for a long time.
    gc.freeze()
    sys.setswitchinterval(0.0005)  # a waiting callback gets the lock within half a millisecond
    conn.send(("ready", {
        "samplerate": samplerate, "blocksize": int(options.get("blocksize") or 0),
        "latency": _output_latency(stream), "channels": channels, "info": info, "pid": os.getpid(),
        "describe": describe(engine),
    }))
    _housekeeping(engine, renderer, stream, shared, info, options)
    stream.stop()
    stream.close()
    renderer.stop_ahead()
    if live_input is not None:
        live_input.close()
        heard = live_input.engine_feed.frames if live_input.engine_feed is not None else live_input.frames
        _log(f"live input: {heard} frames heard in {live_input.callbacks} callbacks, "
             f"{live_input.overflows} overflows")
    conn.close()
    os._exit(0)


def _output_latency(stream) -> float:
    latency = stream.latency  # (input, output) for a duplex stream
    return float(latency[1] if isinstance(latency, (tuple, list)) else latency)


def _open_stream(renderer: Renderer, info: dict, options: dict, samplerate: int, channels: int):
    """The output stream; with a live input on the same host API, one duplex stream carries both.
    On JACK the server's own client (`JackStream`): PortAudio's JACK duplex stream plays its
    output a period late."""
    live = renderer.live_input
    if _on_jack(info):
        return _open_jack(renderer, info, options, samplerate, channels)
    sd = sounddevice()
    common = {"samplerate": samplerate, "blocksize": int(options.get("blocksize") or 0),
              "latency": options.get("latency", "low"), "dtype": "float32"}
    refused = None
    with quiet_stderr():
        if live is not None and live.duplex:
            try:
                return sd.Stream(device=(live.index, info["index"]), channels=(1, channels),
                                 callback=renderer.duplex_callback, **common)
            except Exception as exc:
                refused = exc
                live.duplex = False
    if refused is not None:
        _log(f"input and output in one stream refused ({refused}); the input gets a stream of its own")
    with quiet_stderr():
        try:
            return sd.OutputStream(device=info["index"], channels=channels, callback=renderer.callback, **common)
        except Exception as exc:
            raise DeviceError(f"cannot open audio device {info['name']!r} at {samplerate} Hz: {exc}") from None


def _on_jack(info: dict) -> bool:
    """The output device is JACK's (JACK runs its callback on its own real-time thread)."""
    return "jack" in str(info.get("hostapi", "")).lower()


def _open_jack(renderer: Renderer, info: dict, options: dict, samplerate: int, channels: int) -> JackStream:
    """One JACK client for the outputs and the live input on JACK. PortAudio's own JACK client
    (open since it initialised, under the name the ports must have) ends first; an input on
    another host API keeps PortAudio, whose client is then renamed."""
    live = renderer.live_input
    if live is not None and not live.duplex:
        set_jack_client_name(f"{JACK_CLIENT}-portaudio")
    else:
        end_portaudio()
    stream = JackStream(name=JACK_CLIENT, device=info["name"], samplerate=samplerate, channels=channels,
                        callback=renderer.callback,
                        duplex_callback=renderer.duplex_callback if live is not None and live.duplex else None)
    asked = int(options.get("blocksize") or 0)
    if asked and asked != stream.client.blocksize:
        _log(f"--blocksize {asked}: JACK's period ({stream.client.blocksize}) sets the block; restart jackd with "
             f"-p {asked} for that block")
    return stream


def _housekeeping(engine, renderer: Renderer, stream, shared: SharedBlock, info: dict, options: dict) -> None:
    """Until told to stop: answer status requests, keep this thread at the callback's priority,
    report errors. Runs every few milliseconds for microseconds."""
    codes = {name: code for code, name in POLICIES.items()}
    asked_seen = -1
    last_status = 0.0
    raised = False
    parent = os.getppid()
    while True:
        now = time.monotonic()
        if shared[Counter.STOPPED] and shared[Counter.STOP]:
            break
        if os.getppid() != parent:  # the client is gone: nobody will ask us to stop
            break
        if isinstance(stream, JackStream) and stream.shut_down is not None:  # the client sees this process
            _log(f"the JACK server ended its client ({stream.shut_down})")  # end, as when PortAudio aborted
            break
        if renderer.tid and not raised:
            policy, priority = thread_policy(renderer.tid)
            if policy not in ("fifo", "rr") and int(options.get("realtime_priority") or 0) > 0 and not _on_jack(info):
                set_realtime(int(options["realtime_priority"]), tid=renderer.tid)
                policy, priority = thread_policy(renderer.tid)
            if policy in ("fifo", "rr"):
                # Preempted while it holds the interpreter lock, this thread would make the callback
                # late; at the callback's own priority nothing that would not delay it preempts it.
                set_realtime(priority)
                if renderer.render_tid:
                    # The render thread (a lead) one under it: on a CPU both want, the callback
                    # preempts it (at the same priority it would wait for a whole hop's render);
                    # the render thread still preempts everything that is not real-time.
                    set_realtime(max(1, priority - 1), tid=renderer.render_tid)
            shared[Counter.CB_TID] = renderer.tid
            shared[Counter.CB_POLICY] = codes.get(policy, -1)
            shared[Counter.CB_PRIORITY] = priority
            raised = True
        asked = shared[Counter.STATUS_ASK]
        if asked != asked_seen or now - last_status > STATUS_EVERY_SECONDS:
            asked_seen = asked
            last_status = now
            status = _engine_status(engine, renderer, stream, info, options)
            status["status_ask"] = asked
            shared.write_status(json.dumps(status, default=str).encode())
        time.sleep(HOUSEKEEPING_SECONDS)
