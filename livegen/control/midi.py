"""MIDI input (python-rtmidi): a virtual `livegen` port, named connections, reconnect by polling.

No rtmidi callback: on JACK, rtmidi runs a Python callback inside JACK's real-time cycle, where
waiting for the GIL made the server's whole cycle late (the control flood's xruns named this
client). rtmidi queues input itself; a worker thread drains every open port about once a
millisecond, feeds the pure `MidiMapper` and posts its events to the engine; a poll thread looks at
the port list about once a second and (re)connects every `--midi-in NAME` whose port shows up,
so a controller unplugged and plugged back in comes back on its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from livegen.control.mapping import MidiMapper, check_mpe_channel, default_map_path, load_map, parse_mpe, save_map
from livegen.errors import DeviceError, ParameterError, ranged

VIRTUAL_PORT = "livegen"
DRAIN_SECONDS = 0.001
"""How long the worker sleeps when no port had input: adds at most 1 ms to MIDI latency."""
QUEUE_SIZE = 16384
"""Messages rtmidi keeps per port until drained: 3 s of a 5,000-per-second flood."""


def choose_api():
    """rtmidi API: $LIVEGEN_MIDI_API (alsa, jack, coremidi), else ALSA where its sequencer
    exists, JACK on other Linux machines, the platform default elsewhere."""
    import rtmidi

    names = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK,
             "coremidi": rtmidi.API_MACOSX_CORE, "default": rtmidi.API_UNSPECIFIED}
    wanted = os.environ.get("LIVEGEN_MIDI_API", "").lower()
    if wanted:
        if wanted not in names:
            raise ParameterError(f"LIVEGEN_MIDI_API={wanted!r}; use one of {', '.join(names)}")
        return names[wanted]
    compiled = rtmidi.get_compiled_api()
    if sys.platform.startswith("linux"):
        if os.path.exists("/dev/snd/seq") and rtmidi.API_LINUX_ALSA in compiled:
            return rtmidi.API_LINUX_ALSA
        if rtmidi.API_UNIX_JACK in compiled:
            return rtmidi.API_UNIX_JACK
    return rtmidi.API_UNSPECIFIED


def _match(spec: str, ports: list[str]) -> int | None:
    """Index of the port named `spec`, else the first whose name contains it (case-insensitive)."""
    for i, name in enumerate(ports):
        if name == spec:
            return i
    lowered = spec.lower()
    for i, name in enumerate(ports):
        if lowered in name.lower():
            return i
    return None


class MidiInput:
    """MIDI control for `target`: virtual port plus connections to ports matching `connect`.

    Parameters
    ----------
    target : ControlTarget
    mapper : MidiMapper, or None to build one from `map_path` (or the user's map, or the default).
    connect : port names or substrings to connect to (and reconnect when they come back).
    virtual : open the virtual input port named `port_name` for other programs to connect to.
    map_path : where learned mappings are saved; None = the user's config file.
    mpe : an MPE zone ('lower', 'upper:7', 'off'; `parse_mpe`); None: the map file's `mpe`, else none.
    log : told (from the poll thread) when a `connect` port goes away or is connected again.
    """

    def __init__(self, target, *, mapper: MidiMapper | None = None, connect=(), virtual: bool = True,
                 port_name: str = VIRTUAL_PORT, api=None, poll_interval: float = 1.0,
                 map_path: str | Path | None = None, channel: int | None = None, save_learned: bool = True,
                 mpe: str | None = None, log: Callable[[str], None] | None = None):
        self.target = target
        self.log = log
        self._told = False
        """Whether connections are news (not the first look at start-up, which play's summary line says)."""
        self.map_path = Path(map_path) if map_path is not None else default_map_path()
        self._options: dict = {}
        if mapper is None:
            mappings = None
            if self.map_path.exists():
                mappings, self._options = load_map(self.map_path)
            mapper = MidiMapper(target.params, mappings, channel=channel or self._options.get("channel"),
                                mpe=mpe if mpe is not None else self._options.get("mpe"))
        if mapper.is_recording is None:
            mapper.is_recording = self._recording
        self.mapper = mapper
        if save_learned:
            mapper.on_change = self.save
        self.connect = list(connect)
        self.virtual = virtual
        self.port_name = port_name
        self.api = api
        self.poll_interval = poll_interval
        self.connections: dict[str, str | None] = {spec: None for spec in self.connect}
        self.messages = 0
        self.last = ""
        """The last message received, as short text (status `midi_last`)."""
        self.errors: list[str] = []
        self._inputs: dict[str, object] = {}
        self._sources: list[tuple[object, str]] = []
        """(open rtmidi input, source name) pairs the worker drains; changed under `_lock`."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._virtual_in = None
        self._scanner = None
        self._lock = threading.Lock()
        self._gone: list[str] = []
        """Sources of ports that went away, for the worker to release what they held."""

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> "MidiInput":
        if self.api is None:
            self.api = choose_api()
        self._open()
        self._stop.clear()
        self._poll_once()
        self._told = self.log is not None
        for name, loop in (("midi-worker", self._worker_loop), ("midi-poll", self._poll_loop)):
            thread = threading.Thread(target=loop, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def on_jack(self) -> bool:
        """Whether the ports are JACK MIDI ports (they die with the JACK server)."""
        import rtmidi

        return self.api == rtmidi.API_UNIX_JACK

    def reopen(self) -> None:
        """Open the ports again on a JACK server that was restarted: every rtmidi client of the old
        one is dead, the virtual port gone and the port list empty for good. What the old ports
        held is let go (their note-offs cannot come); the poll connects `connect` ports anew."""
        held = [port for port in self.connections.values() if port]
        if self._virtual_in is not None:
            held.append(self.port_name)
        self._close_all()
        self._gone.extend(f"midi:{port}" for port in held)
        self._open()

    def _open(self) -> None:
        import rtmidi

        try:
            with self._lock:
                self._scanner = rtmidi.MidiIn(self.api, name=f"{self.port_name}-scan")
                if self.virtual:
                    midi_in = rtmidi.MidiIn(self.api, name=self.port_name, queue_size_limit=QUEUE_SIZE)
                    self._prepare(midi_in, f"midi:{self.port_name}")
                    midi_in.open_virtual_port(self.port_name)
                    self._virtual_in = midi_in
        except (rtmidi.SystemError, rtmidi.InvalidUseError, rtmidi.NoDevicesError, RuntimeError) as exc:
            self._close_all()
            api_name = rtmidi.get_api_name(self.api)
            raise DeviceError(
                f"cannot open MIDI input ({api_name}): {exc}; start the MIDI system "
                "(e.g. a JACK server) or run with --no-midi") from None

    @property
    def alive(self) -> bool:
        """Whether its worker and port-poll threads are all still running."""
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(3)
        self._threads.clear()
        self._close_all()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _close_all(self) -> None:
        with self._lock:
            for midi_in in list(self._inputs.values()) + [self._virtual_in, self._scanner]:
                if midi_in is not None:
                    _close_port(midi_in)
            self._inputs.clear()
            self._sources.clear()
            self._virtual_in = self._scanner = None
            for spec in self.connections:
                self.connections[spec] = None

    def _prepare(self, midi_in, source: str) -> None:
        """Filter what a port delivers and hand it to the worker (caller holds `_lock`, or the
        threads have not started)."""
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        self._sources.append((midi_in, source))

    def _forget(self, midi_in) -> None:
        self._sources[:] = [pair for pair in self._sources if pair[0] is not midi_in]

    # -- learn (used by OSC /livegen/learn and by the UI) ----------------------------------------
    def arm(self, param: str, on_learned=None) -> None:
        """Bind the next moved control to `param`; `on_learned(param, control)` is called after."""
        self.mapper.arm(param, on_learned)

    def disarm(self) -> None:
        self.mapper.disarm()

    def bindings(self) -> list[tuple[str, str]]:
        return self.mapper.bindings()

    def unlearn(self, param: str) -> int:
        """Remove `param`'s bindings and save the map; returns how many were removed."""
        return self.mapper.unlearn(param)

    def _recording(self) -> bool:
        return bool(self.target.status().get("recording", 0))

    @property
    def armed(self) -> str | None:
        return self.mapper.armed

    def save(self) -> None:
        """Write the current mappings to the map file (after learn)."""
        try:
            save_map(self.map_path, self.mapper.mappings, self._options)
        except OSError as exc:
            self.errors.append(f"cannot save MIDI map {self.map_path}: {exc}")

    def status(self) -> dict:
        connected = [f"{spec}={port}" for spec, port in self.connections.items() if port]
        missing = [spec for spec, port in self.connections.items() if not port]
        return {
            "virtual": f"{self.port_name}" if self._virtual_in is not None else "",
            "connected": ", ".join(connected),
            "missing": ", ".join(missing),
            "messages": self.messages,
            "learn": self.mapper.armed or "",
            "last": self.last,
            "mpe": self.mapper.mpe,
        }

    # -- threads -------------------------------------------------------------------------------
    def _drain(self) -> list:
        batch = []
        with self._lock:
            for midi_in, source in self._sources:
                while (item := midi_in.get_message()) is not None:
                    batch.append((item[0], source))
        return batch

    def _worker_loop(self) -> None:
        post = self.target.post
        while not self._stop.is_set():
            while self._gone:  # on this thread: the mapper is fed here alone
                for event in self.mapper.release(self._gone.pop(0)):
                    post(event)
            batch = self._drain()
            if not batch:
                time.sleep(DRAIN_SECONDS)
                continue
            for message, source in batch:
                self.messages += 1
                self.last = describe_message(message)
                try:
                    events = self.mapper.feed(message, source=source)
                except Exception as exc:  # the pure layer is fuzzed; this is a last guard
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    del self.errors[:-20]
                    continue
                for event in events:
                    post(event)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self._poll_once()
            except Exception as exc:
                self.errors.append(f"MIDI port poll: {type(exc).__name__}: {exc}")
                del self.errors[:-20]

    def _poll_once(self) -> None:
        import rtmidi

        if not self.connect:
            return
        with self._lock:
            if self._scanner is None:
                return
            ports = [p for p in self._scanner.get_ports() if not p.startswith(f"{self.port_name}:")]
            for spec in self.connect:
                port = self.connections.get(spec)
                if port is not None and port not in ports:
                    midi_in = self._inputs.pop(spec, None)  # unplugged: close, look again next time
                    if midi_in is not None:
                        self._forget(midi_in)
                        _close_port(midi_in)
                    self._gone.append(f"midi:{port}")  # its held notes would sound on for good
                    self.connections[spec] = None
                    if self._told:
                        self.log(f"MIDI {port} (--midi-in {spec}) went away: its notes and pedal are let go; "
                                 "it is connected again when it comes back")
                if self.connections[spec] is None:
                    index = _match(spec, ports)
                    if index is None:
                        continue
                    midi_in = rtmidi.MidiIn(self.api, name=f"{self.port_name}-in", queue_size_limit=QUEUE_SIZE)
                    try:
                        midi_in.open_port(self._scanner.get_ports().index(ports[index]), name=self.port_name)
                    except (ValueError, rtmidi.RtMidiError):
                        midi_in.delete()
                        continue
                    self._prepare(midi_in, f"midi:{ports[index]}")
                    self._inputs[spec] = midi_in
                    self.connections[spec] = ports[index]
                    if self._told:
                        self.log(f"MIDI {ports[index]} (--midi-in {spec}) connected")


_KINDS = {0x80: "off", 0x90: "note", 0xA0: "aftertouch", 0xB0: "CC", 0xC0: "program", 0xD0: "pressure",
          0xE0: "bend"}


def describe_message(message) -> str:
    """One raw MIDI message as short text for a status line: 'ch1 CC 70 64', 'ch10 note 36 100'."""
    if not message or not 0x80 <= message[0] < 0xF0:
        return "system" if message else ""
    kind = _KINDS[message[0] & 0xF0]
    data = list(message[1:3])
    if kind == "bend" and len(data) == 2:
        data = [(data[0] | (data[1] << 7)) - 8192]
    if kind == "note" and len(data) == 2 and data[1] == 0:
        kind, data = "off", data[:1]
    return " ".join([f"ch{(message[0] & 0x0F) + 1}", kind, *map(str, data)])


def add_midi_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --midi-in, --midi-map, --midi-channel, --mpe, --no-midi (shared by `play` and `play --headless`)."""
    group = parser.add_argument_group("MIDI control")
    group.add_argument("--midi-in", action="append", default=[], metavar="NAME",
                       help="connect to the MIDI port with this name, or whose name contains it; "
                            "reconnected when it comes back (repeatable). A virtual input port "
                            f"'{VIRTUAL_PORT}' is always offered too")
    group.add_argument("--midi-map", metavar="FILE", default=None,
                       help="TOML CC/NRPN map (default: the user's midi-map.toml, created by MIDI learn, "
                            "else the built-in map)")
    group.add_argument("--midi-channel", type=ranged(int, 1, 16), default=None, metavar="N",
                       help="listen to MIDI channel N (1-16) only (default: all)")
    group.add_argument("--mpe", nargs="?", const="lower", default=None, metavar="ZONE", type=_mpe_zone,
                       help="an MPE keyboard: each note on its own member channel bends, slides (CC 74) "
                            "and presses alone. ZONE: lower (manager channel 1, members 2-16; the "
                            "default), upper (manager 16, members 15-1), lower:N or upper:N for N "
                            "members, off. An MPE keyboard's configuration message sets zones too")
    group.add_argument("--no-midi", action="store_true", help="no MIDI input")


def _mpe_zone(text: str) -> str:
    """`--mpe`'s value, checked when the command line is read (before a sound server starts)."""
    try:
        parse_mpe(text, where="zone")
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def check_midi_options(args) -> None:
    """The MIDI options' errors (ParameterError), found before anything starts."""
    if getattr(args, "no_midi", False):
        return
    if args.midi_channel is not None and not 1 <= args.midi_channel <= 16:
        raise ParameterError(f"--midi-channel {args.midi_channel}: give 1..16")
    check_mpe_channel(getattr(args, "mpe", None), args.midi_channel)
    if args.midi_map is not None and not Path(args.midi_map).is_file():
        what = "a folder" if Path(args.midi_map).is_dir() else "no such file"
        raise ParameterError(f"--midi-map {args.midi_map}: {what}; give an existing TOML map "
                             "(MIDI learn writes one you can copy)")


def midi_input_from_args(target, args, *, log=None) -> MidiInput | None:
    """Build (not start) the MIDI input the CLI options ask for; None with --no-midi."""
    if getattr(args, "no_midi", False):
        return None
    check_midi_options(args)
    return MidiInput(target, connect=args.midi_in, map_path=args.midi_map, channel=args.midi_channel,
                     mpe=getattr(args, "mpe", None), log=log)


def wait_for_port(midi_in: MidiInput, spec: str, timeout: float = 5.0) -> bool:
    """Block until `spec` is connected (tests, scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if midi_in.connections.get(spec):
            return True
        time.sleep(0.05)
    return False


def _close_port(midi_in) -> None:
    """Close an rtmidi input whatever state it is in (a vanished device may refuse each step)."""
    try:
        midi_in.cancel_callback()
        midi_in.close_port()
        midi_in.delete()
    except Exception:
        pass
