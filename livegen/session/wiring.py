"""Attach session recording to an engine: `record` events start and stop it, exactly on a block.

The engine applies a `record` event at a block boundary and calls its listeners on the engine
thread; `SessionControl`'s listener hands the block stream to a recorder armed in advance (its
ring already allocated), so the first recorded sample is the one at which the event took effect,
and a control thread opens the files meanwhile (the ring holds 10 s). Every applied event since
the engine started is kept, so a recording started mid-performance logs what came before it
too: its header's `start_sample` says where the WAV begins, and rendering the log from sample 0
and dropping `start_sample` samples reproduces the file.

Toggling fast (OSC `/livegen/record 1`, `0`, `1` back to back, the UI's `r` twice) is safe.
The control thread keeps `SPARES` recorders armed; each `record` event wakes it (one byte on a
socket pair, no lock on the engine thread) to arm the next at once, and it leaves closing a
stopped take's files to that take's disk thread instead of waiting for them. More starts than
spares before it runs are refused with `/livegen/error`, never half-started. Only the engine
thread changes which recorder is active, and after every `record` event it sets the engine's
`recording` flag to the truth. (Before: one recorder armed per 0.1 s poll, re-armed only after
the previous take's files were synced; a refused start was undone by a `record 0` the control
thread posted later, which could stop a take begun in between; and a failed take was cleared
from the control thread while the engine thread might be starting the next, leaving that one
running with no stop.) A start and a stop in the same block record nothing: no file is made,
the sender is told, and the recorder is armed again.

The recording options of `livegen play` are in `livegen.session.options`, which the CLI imports
without loading numpy.
"""

from __future__ import annotations

import select
import socket
import threading
import time
import zlib
from collections import deque
from pathlib import Path
from typing import Callable

from livegen.engine.events import Event
from livegen.filehash import file_sha256
from livegen.session.recorder import SessionRecorder, event_line
from livegen.session.replay import output_latency
from livegen.session.takeinput import InputTakes

JOURNAL_CHUNK = 4096
"""Journal lines compressed together (zlib level 1)."""
SPARES = 4
"""Recorders kept armed for starts that come before the control thread has re-armed (each
ring's pages are only touched when written)."""


def weights_sha256(model_dir) -> str | None:
    """sha256 of a model directory's `weights.safetensors` (None without one), to tie a log to its model."""
    if not model_dir:
        return None
    path = Path(model_dir) / "weights.safetensors"
    if not path.is_file():
        return None
    return file_sha256(path)


def engine_header(engine, *, model_dir=None, model_name=None, blocksize=None) -> dict:
    """Log-header fields that a render needs to rebuild this engine (and a human to know what it was)."""
    config = engine.config
    hop_out = int(round(engine.hop * engine.samplerate / config.sample_rate))
    header = {
        "model": model_name or (str(model_dir) if model_dir else None),
        "model_dir": str(model_dir) if model_dir else None,
        "weights_sha256": weights_sha256(model_dir),
        "seed": engine.seed,
        "blocksize": blocksize or hop_out,
        "hop": engine.hop,
        "model_samplerate": config.sample_rate,
        "n_fft": getattr(config, "n_fft", None),
        "latent_dim": getattr(config, "latent_dim", None),
        "lookahead": engine.lookahead,
        "method": getattr(engine.inverter, "method", None),
        "read": getattr(engine.inverter, "read", "window"),
        "device": engine.device,
    }
    if getattr(engine, "chain", None) is not None:
        # What a re-render at another rate lines up with (see livegen.session.replay).
        header["output_latency"] = output_latency(config.sample_rate, engine.samplerate)
    header.update(engine.log_header)  # the sources' own (a continuation model's seed audio, temperature, ...)
    return header


class SessionControl:
    """Recording for one engine: listener + output tap + a control thread that owns the files.

    Parameters
    ----------
    engine : a `livegen.engine.core.Engine` (or anything with `add_listener`, `post`, `step`,
        `samplerate`, `samples_out`, `extra_status`).
    directory : where recordings go.
    header : fields for each log's header (see `engine_header`).
    on_error, on_start, on_stop : called from the control thread with a message / the recorder.
    channels : of the engine's output blocks (1: the engine writes mono).
    spares : recorders kept armed for starts that come faster than the control thread re-arms.
    """

    def __init__(self, engine, *, directory=".", subtype: str = "FLOAT", header: dict | None = None,
                 on_error: Callable[[str], None] | None = None, on_start=None, on_stop=None,
                 channels: int = 1, ring_seconds: float = 10.0, poll_interval: float = 0.1,
                 spares: int = SPARES):
        self.engine = engine
        self.directory = Path(directory)
        self.subtype = subtype
        self.header = dict(header or {})
        self.error_callbacks: list[Callable[[str], None]] = [on_error] if on_error is not None else []
        """Each is called with the message when a recording fails (add an OSC broadcast, a UI toast...)."""
        self.on_start = on_start
        self.on_stop = on_stop
        self.channels = int(channels)
        self.ring_seconds = float(ring_seconds)
        self.poll_interval = float(poll_interval)
        # Every applied event but `record`s since the engine started, as log lines, compressed in
        # chunks: a recording started mid-performance logs them first (hours of knob moves stay small).
        self._journal_chunks: list[bytes] = []
        self._journal_tail: list[str] = []
        self.recordings: list = []
        self.last_error: str | None = None
        self.spares = max(1, int(spares))
        self._spares: deque = deque()  # armed recorders: the control thread appends, the engine thread pops
        self._active = None  # written by the engine thread only (and by `close` once it has stopped)
        self._requests: deque = deque()
        self._finishing: list = []  # stopped recorders whose disk threads are closing the files
        self._errors_seen: set = set()
        self._stop = threading.Event()
        self._closing = False
        # The engine thread wakes the control thread on a `record` event with one byte on a socket
        # pair: a plain non-blocking send, no lock taken (a threading.Event's set takes one).
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self._thread: threading.Thread | None = None
        self._restore_step = None
        self._attached = False
        self.inputs: InputTakes | None = None
        """The live input each take consumed (engines that take live input: `add_input_tap`)."""

    # ---- set-up (main thread) ----------------------------------------------------------
    def attach(self) -> "SessionControl":
        """Listen to the engine and tap its output; start the control thread (arms a recorder)."""
        if self._attached:
            return self
        if self.engine.samples_out:
            # Events applied before we listened are unknown: a log could not re-render them.
            raise RuntimeError("attach the session recorder before the engine produces its first block")
        self._arm()  # one now, so `--record` starts at sample 0; the control thread arms the rest
        self.engine.add_listener(self._on_applied)
        if getattr(self.engine, "takes_input", False):
            self.inputs = InputTakes(self.engine.config.sample_rate)
            self.engine.add_input_tap(self.inputs.feed)
        add_tap = getattr(self.engine, "add_tap", None)
        if add_tap is not None:
            add_tap(self._on_block)
        else:
            # No tap hook on this engine: wrap its `step` (the one place output blocks come from).
            step = self.engine.step
            on_block = self._on_block

            def tapped_step():
                out = step()
                on_block(out)
                return out

            self.engine.step = tapped_step
            self._restore_step = step
        self._attached = True
        self._thread = threading.Thread(target=self._run, name="livegen-session", daemon=True)
        self._thread.start()
        return self

    def record(self, on: bool = True, *, source: str = "session") -> None:
        """Ask the engine to start or stop recording at its next block (any thread)."""
        self.engine.post(Event("record", value=1.0 if on else 0.0, source=source))

    def close(self, timeout: float = 30.0) -> None:
        """Finish any recording (what the engine produced so far is kept) and stop the control thread."""
        self._closing = True  # first: from here on the engine thread starts no recording
        active = self._active
        self._active = None
        if active is not None:
            active.request_stop()
            self._requests.append(("stop", active))
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
        self._wake_in.close()
        self._wake_out.close()
        remove = getattr(self.engine, "remove_listener", None)
        if remove is not None:
            remove(self._on_applied)
        remove_tap = getattr(self.engine, "remove_tap", None)
        if remove_tap is not None and self._restore_step is None:
            remove_tap(self._on_block)
        if self.inputs is not None:
            self.engine.remove_input_tap(self.inputs.feed)
            self.inputs.close()
        if self._restore_step is not None:
            self.engine.step = self._restore_step
            self._restore_step = None
        self._spares.clear()

    @property
    def recorder(self):
        """The recorder now recording, or None."""
        return self._active

    @property
    def _armed(self):
        """The recorder the next start takes (None while none is armed)."""
        try:
            return self._spares[0]
        except IndexError:
            return None

    # ---- engine thread ---------------------------------------------------------------------
    def _on_applied(self, event) -> None:
        if event.type != "record":
            self._requests.append(event)  # for the journal, in order with starts and stops
            active = self._active
            if active is not None:
                active.log_event(event)
            return
        only = event.extra.get("recorder")  # the control thread ending one failed recording
        if event.value and self._active is None and only is None and not self._closing:
            try:
                rec = self._spares.popleft()
            except IndexError:
                self._requests.append(("unarmed", event.sample))
            else:
                rec.header["start_sample"] = int(event.sample or 0)
                self._active = rec
                self._requests.append(("start", rec))
        elif not event.value and self._active is not None and only in (None, id(self._active)):
            rec = self._active
            self._active = None
            rec.request_stop()
            if rec.frames == 0:  # started in this very block: the control thread makes no files
                rec.cancelled = True
            self._requests.append(("stop", rec))
        if hasattr(self.engine, "recording"):
            # The engine set its flag from the event; what it means is what happened here.
            self.engine.recording = self._active is not None
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_in.send(b"\0")
        except OSError:  # full (the control thread is behind anyway) or closed
            pass

    def _on_block(self, block) -> None:
        active = self._active
        if active is None:
            return
        if self._fading_out():
            # The engine is shutting down: its de-click fade is not an event, so a render of the
            # log could not reproduce it. The recording ends on the last unfaded block.
            self._active = None
            active.request_stop()
            self._requests.append(("stop", active))
            return
        active.write_audio(block)

    def _fading_out(self) -> bool:
        fading = getattr(self.engine, "fading_out", None)
        if fading is not None:
            return bool(fading)
        return getattr(getattr(self.engine, "chain", None), "_fade_target", 1.0) == 0.0

    # ---- control thread ----------------------------------------------------------------------
    def _arm(self) -> None:
        self._spares.append(SessionRecorder(self.directory, samplerate=self.engine.samplerate, channels=self.channels,
                                            header=dict(self.header), subtype=self.subtype,
                                            ring_seconds=self.ring_seconds))

    def _rearm(self) -> None:
        while len(self._spares) < self.spares and not self._stop.is_set():
            try:
                self._arm()
            except Exception as exc:
                self._error(f"cannot prepare the recorder: {exc}")
                return

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            while self._requests:
                request = self._requests.popleft()
                if not isinstance(request, tuple):
                    self._journal(request)
                    continue
                kind, item = request
                if kind == "start":
                    if item.cancelled:  # stopped in the block it started: see "stop"
                        continue
                    self._rearm()  # before opening files: the next toggle may come any moment
                    # The session header as it is now (a server may have added to it since arming).
                    item.header = {**item.header, **self.header, "start_sample": item.header["start_sample"]}
                    item.log_prefix(self._journal_text(), len(self._journal_chunks) + 1)
                    self._start(item)
                    if self.inputs is not None and item.path is not None and item.error is None:
                        self.inputs.start(item)
                elif kind == "stop":
                    # A recorder that failed to start (it took no audio either) is dropped, not
                    # armed again as one stopped in its first block, which would hide the reason.
                    if item.cancelled and item.error is None and item.rearm():
                        self._spares.appendleft(item)
                        self._error(f"record at sample {item.header.get('start_sample')}: stopped in the block it "
                                    "started; nothing recorded")
                        continue
                    if self.inputs is not None:
                        self.inputs.stop(item)
                    # The disk thread syncs and closes the files on its own; waiting for it here
                    # would leave the next toggles without armed recorders.
                    item.finish_soon()
                    self._finishing.append(item)
                elif kind == "unarmed":
                    self._error(f"record at sample {item}: no recorder is armed yet (starts moments ago took all "
                                f"{self.spares}); refused, try again")
            for item in [item for item in self._finishing if item.finished or stopping]:
                self._finishing.remove(item)
                item.stop()  # at once, or (closing) until the files are done
                self._report_error(item)
                if self.inputs is not None and item.error is None:
                    try:
                        self.inputs.finish(item)
                    except OSError as exc:
                        self._error(f"cannot name the take's input in {item.log_path}: {exc}")
                if self.on_stop is not None and item.error is None and item.path is not None:
                    self.on_stop(item)
            active = self._active
            if active is not None and active.error is not None:
                self._report_error(active)
            if self.inputs is not None:
                self.inputs.drain()
                if self.inputs.error:
                    self._error(self.inputs.error)
                    self.inputs.error = None
            self._publish()
            if stopping and not self._requests and not self._finishing:
                break
            self._rearm()
            # Back soon after a start: the requests it brings (and a burst of toggles) come together.
            busy = len(self._spares) < self.spares or self._requests or self._finishing
            self._sleep(0.005 if busy else self.poll_interval)

    def _sleep(self, seconds: float) -> None:
        """Wait up to `seconds`, or until the engine thread applies a `record` event."""
        try:
            ready, _, _ = select.select([self._wake_out], [], [], seconds)
            if ready:
                self._wake_out.recv(4096)
        except (OSError, ValueError):
            self._stop.wait(seconds)

    def _journal(self, event) -> None:
        self._journal_tail.append(event_line(event, samplerate=self.engine.samplerate))
        if len(self._journal_tail) >= JOURNAL_CHUNK:
            self._journal_chunks.append(zlib.compress("".join(self._journal_tail).encode("utf-8"), 1))
            self._journal_tail = []

    def _journal_text(self) -> list[str]:
        """The journal so far as log text, one string per chunk."""
        return [zlib.decompress(chunk).decode("utf-8") for chunk in self._journal_chunks] + ["".join(self._journal_tail)]

    def _start(self, rec) -> None:
        try:
            rec.start()
        except Exception as exc:  # unwritable directory and the like: say so, keep playing
            rec.request_stop()
            self._errors_seen.add(id(rec))
            rec.error = str(exc)
            self._error(str(exc))
            self._end(rec)
            return
        self.recordings.append(rec)
        self.last_error = None
        if self.on_start is not None:
            self.on_start(rec)

    def _report_error(self, rec) -> None:
        if rec.error is None or id(rec) in self._errors_seen:
            return
        self._errors_seen.add(id(rec))
        self._error(rec.error)
        self._end(rec)

    def _end(self, rec) -> None:
        """Stop `rec` through the engine (it alone changes the active recorder; its flag, the UI
        and OSC subscribers hear it), and only `rec`: a newer recording is left alone."""
        if not self._stop.is_set():
            self.engine.post(Event("record", value=0.0, source="session", extra={"recorder": id(rec)}))

    def _error(self, message: str) -> None:
        self.last_error = message
        for callback in list(self.error_callbacks):
            try:
                callback(message)
            except Exception:
                pass

    def _publish(self) -> None:
        status = getattr(self.engine, "extra_status", None)
        if status is None:
            return
        active = self._active
        status["record_seconds"] = round(active.elapsed, 3) if active is not None else 0.0
        status["record_dropped"] = active.dropped if active is not None else 0
        status["record_file"] = str(active.path) if active is not None and active.path else ""
        status["record_bytes"] = active.bytes_written if active is not None else 0
        status["record_error"] = self.last_error or ""


def attach_session(engine, args, *, model_dir=None, model_name=None, blocksize=None,
                   on_error=None, on_start=None, on_stop=None, log=None) -> SessionControl:
    """What `play` calls after building its engine and before the first block: wire recording up.

    `args` carries `--record`, `--record-dir`, `--record-format` (see `add_session_arguments`).
    With `--record DIR`, recording starts at sample 0.
    """
    log = log or (lambda text: None)
    directory = getattr(args, "record_dir", None) or "."
    if model_name == "random":
        model_dir = None
    header = engine_header(engine, model_dir=model_dir, model_name=model_name, blocksize=blocksize)

    def started(rec):
        log(f"recording to {rec.path}")
        if on_start is not None:
            on_start(rec)

    def stopped(rec):
        log(f"recorded {rec.elapsed:.1f} s to {rec.path} (log {rec.log_path.name}"
            f"{f', {rec.dropped} samples dropped' if rec.dropped else ''})")
        if on_stop is not None:
            on_stop(rec)

    def failed(message):
        log(message)
        if on_error is not None:
            on_error(message)

    session = SessionControl(engine, directory=directory, subtype=getattr(args, "record_format", "FLOAT"),
                             header=header, on_error=failed, on_start=started, on_stop=stopped).attach()
    if getattr(args, "record", None):
        # The record event goes to the recorder armed for --record's own directory.
        session._armed.directory = Path(args.record)
        session.record(True, source="cli")
    return session
