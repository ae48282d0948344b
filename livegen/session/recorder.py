"""Crash-safe session recording: what is heard goes to a WAV file, every applied event to a log.

The engine thread only copies each output block into a preallocated ring and appends applied
events to a deque (`write_audio`, `log_event`: no locks, no allocation beyond a few small views,
no disk). A disk thread drains both, brings the WAV header up to date at least twice a second
(libsndfile's `SFC_UPDATE_HEADER_NOW`) and flushes whole log lines, so after `kill -9` the WAV
opens in soundfile and sox without repair and the log loses at most its last line. Files are
RF64 with libsndfile's auto-downgrade: a plain WAV under 4 GB, RF64 past it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

import livegen
from livegen.errors import ParameterError

SFC_UPDATE_HEADER_NOW = 0x1060
SFC_RF64_AUTO_DOWNGRADE = 0x1210
SUBTYPES = {"FLOAT": 4, "PCM_24": 3}
"""WAV sample formats a session can be recorded in, with their bytes per sample."""

_GAP_SLOTS = 65536


def ignore_file_size_signal() -> None:
    """Make a file-size limit (`ulimit -f`) a write error instead of a process-killing SIGXFSZ.

    The disposition is process-wide; Python only lets the main thread change it, so other
    threads go through libc directly.
    """
    if not hasattr(signal, "SIGXFSZ"):
        return
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    except ValueError:  # not the main thread
        import ctypes

        libc = ctypes.CDLL(None)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
        libc.signal(int(signal.SIGXFSZ), 1)  # SIG_IGN


def event_line(event, *, samplerate: int) -> str:
    """One line of a session log: the event with `t` recomputed from its sample stamp."""
    if event.sample is not None:
        event = dataclasses.replace(event, t=event.sample / samplerate)
    return event.to_json() + "\n"


def _exclusive_pair(directory: Path, stem: str) -> tuple[int, Path, Path]:
    """Create `<stem>[.N].wav` and its `.jsonl` with O_EXCL: a recording never replaces a file."""
    for n in range(10000):
        base = stem if n == 0 else f"{stem}.{n}"
        wav, log = directory / f"{base}.wav", directory / f"{base}.jsonl"
        if log.exists():
            continue
        try:
            fd = os.open(wav, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        except FileExistsError:
            continue
        try:
            os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            os.close(fd)
            os.unlink(wav)
            continue
        except OSError:
            os.close(fd)
            os.unlink(wav)
            raise
        return fd, wav, log
    raise ParameterError(f"10000 recordings named {stem}* already exist in {directory}; choose another directory")


class SessionRecorder:
    """Record output blocks to a WAV file and applied events to a JSON-lines log beside it.

    Parameters
    ----------
    directory : where `livegen-YYYYmmdd-HHMMSS[.N].wav` and `.jsonl` are created.
    samplerate, channels : of the blocks given to `write_audio` (the output device's).
    header : extra fields for the log's header line (model, weights hash, block size, seed, ...).
    subtype : "FLOAT" (default, exactly what was heard) or "PCM_24".
    name : file stem instead of the date and time.
    ring_seconds : audio the ring holds while the disk is slow; a longer stall drops samples
        (counted in `dropped` and written as silence, so the file keeps its timing).
    on_error : called with a message, from the disk thread, when recording stops on an error.
    """

    def __init__(self, directory, *, samplerate: int, channels: int, header: dict | None = None,
                 subtype: str = "FLOAT", name: str | None = None, ring_seconds: float = 10.0,
                 on_error: Callable[[str], None] | None = None, header_interval: float = 0.5,
                 poll_interval: float = 0.1):
        if subtype not in SUBTYPES:
            raise ParameterError(f"recording format {subtype!r} is not supported; use one of {', '.join(SUBTYPES)}")
        if int(samplerate) <= 0 or int(channels) <= 0:
            raise ParameterError(f"recording needs a positive sample rate and channel count, got {samplerate}, {channels}")
        if not 0 < header_interval <= 1.0:
            raise ParameterError(f"header_interval is {header_interval}; it must be in (0, 1] s for crash safety")
        self.directory = Path(directory)
        self.samplerate = int(samplerate)
        self.channels = int(channels)
        self.header = dict(header or {})
        self.subtype = subtype
        self.name = name
        self.on_error = on_error
        self.header_interval = float(header_interval)
        self.poll_interval = float(poll_interval)
        self.path: Path | None = None
        self.log_path: Path | None = None
        self.error: str | None = None
        self.cancelled = False
        """Stopped in the block it started (set by the engine thread): no files need making."""

        self._capacity = max(int(ring_seconds * self.samplerate), 1)
        self._ring = np.zeros((self._capacity, self.channels), dtype=np.float32)
        self._ring_mono = self._ring[:, 0]
        self._zeros = np.zeros((min(self._capacity, self.samplerate), self.channels), dtype=np.float32)
        # Single producer (engine thread) / single consumer (disk thread): each counter has one writer.
        self._w = 0  # frames captured into the ring (producer)
        self._r = 0  # frames taken out of the ring (consumer)
        self._gaps = np.zeros((_GAP_SLOTS, 2), dtype=np.int64)  # (ring position, frames lost there)
        self._gw = 0
        self._gr = 0
        self._dropped = 0
        self._events: deque = deque()
        self._prefix: tuple = ((), 0)
        self._accepting = True
        self._stop_requested = False
        self._frames_on_disk = 0
        self._data_offset = 0
        self._started = False
        self._stopped = False
        self._sf: soundfile.SoundFile | None = None
        self._fd: int | None = None
        self._log = None
        self._thread: threading.Thread | None = None
        self._stop_lock = threading.Lock()
        self._wake = threading.Event()  # set by `stop` (never by the engine thread: it takes a lock)

    # ---- control (any thread but the engine's) -------------------------------------------
    def start(self) -> "SessionRecorder":
        """Create the WAV and log (never overwriting), write the log header, start the disk thread.

        Audio given to `write_audio` before `start` waits in the ring, so a recording armed on
        the engine thread loses nothing while the files are being opened.
        """
        if self._started:
            raise ParameterError(f"this recorder already started ({self.path}); make a new one for a new file")
        ignore_file_size_signal()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            stem = self.name or "livegen-" + time.strftime("%Y%m%d-%H%M%S")
            fd, self.path, self.log_path = _exclusive_pair(self.directory, stem)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if self.directory.exists() and not self.directory.is_dir():  # mkdir said "File exists"
                reason = "that is a file, not a folder"
            raise ParameterError(
                f"cannot create a recording in {self.directory}: {reason}; make it a folder you can write to "
                "(the next recording goes there) or choose another with --record-dir"
            ) from None
        try:
            self._sf = soundfile.SoundFile(fd, "w", samplerate=self.samplerate, channels=self.channels,
                                           format="RF64", subtype=self.subtype, closefd=True)
            self._fd = fd
            soundfile._snd.sf_command(self._sf._file, SFC_RF64_AUTO_DOWNGRADE, soundfile._ffi.NULL, 1)
            self._update_header()  # the file is a plain WAV from its first byte on
            self._data_offset = os.fstat(fd).st_size
            self._log = open(self.log_path, "w", encoding="utf-8")
            record = {
                "type": "header",
                "livegen": livegen.__version__,
                "samplerate": self.samplerate,
                "channels": self.channels,
                "subtype": self.subtype,
                "wav": self.path.name,
                "start_time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                **self.header,
            }
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()
        except Exception as exc:
            if self._sf is None:
                os.close(fd)
            self._close_files()
            raise ParameterError(f"cannot start recording {self.path}: {exc}") from None
        self._started = True
        self._thread = threading.Thread(target=self._run, name="livegen-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the recording: drain what was captured, finalise WAV and log. Safe to call twice."""
        with self._stop_lock:
            self._accepting = False
            self._stop_requested = True
            self._wake.set()
            if self._thread is not None:
                self._thread.join(timeout)
            elif not self._stopped:
                self._stopped = True

    # ---- engine thread: never blocks, never touches the disk ------------------------------
    def write_audio(self, block) -> None:
        """Copy one output block (frames x channels, or frames for mono) into the ring."""
        if not self._accepting:
            return
        n = len(block)
        w = self._w
        if self._capacity - (w - self._r) < n:
            g = self._gw
            if g - self._gr < _GAP_SLOTS:
                self._gaps[g % _GAP_SLOTS, 0] = w
                self._gaps[g % _GAP_SLOTS, 1] = n
                self._gw = g + 1
            self._dropped += n
            return
        ring = self._ring_mono if block.ndim == 1 else self._ring
        i = w % self._capacity
        k = min(n, self._capacity - i)
        ring[i:i + k] = block[:k]
        if k < n:
            ring[:n - k] = block[k:]
        self._w = w + n

    def log_event(self, event) -> None:
        """Queue an applied, sample-stamped event for the log."""
        if self._accepting:
            self._events.append(event)

    def log_prefix(self, events, count: int) -> None:
        """Log `events[:count]` before any queued event (what happened before a mid-session start).

        Items are events or already-written log text (whole lines). `events` may be a list another
        thread keeps appending to: only the first `count` are read, later, by the disk thread.
        """
        self._prefix = (events, int(count))

    def request_stop(self) -> None:
        """Stop capturing after the last block given; the disk thread finishes the files on its own."""
        self._accepting = False
        self._stop_requested = True

    def finish_soon(self) -> None:
        """`request_stop`, and wake the disk thread to finish the files now (not from the engine
        thread: waking takes a lock); `finished` tells when it is done."""
        self.request_stop()
        self._wake.set()

    @property
    def finished(self) -> bool:
        """The files are closed (or were never opened): `stop` would return at once."""
        thread = self._thread
        return thread is None or not thread.is_alive()

    def rearm(self) -> bool:
        """Make a recorder that was stopped before `start` and captured nothing ready again (a
        start and a stop in the same block); False when it started or holds audio. Call only
        while no thread gives it blocks or events."""
        if self._started or self._w or self._dropped:
            return False
        self._events.clear()
        self._prefix = ((), 0)
        self._gw = self._gr = 0
        self._stop_requested = False
        self.cancelled = False
        self._accepting = True
        return True

    # ---- state for the UI ----------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self._started and not self._stopped

    @property
    def dropped(self) -> int:
        """Frames lost because the disk fell behind by more than the ring (written as silence)."""
        return self._dropped

    @property
    def frames(self) -> int:
        """Frames recorded so far (captured, including dropped ones)."""
        return self._w + self._dropped

    @property
    def elapsed(self) -> float:
        return self.frames / self.samplerate

    @property
    def bytes_written(self) -> int:
        return self._data_offset + self._frames_on_disk * self.channels * SUBTYPES[self.subtype]

    @property
    def frames_on_disk(self) -> int:
        return self._frames_on_disk

    # ---- disk thread ---------------------------------------------------------------------
    def _write_frames(self, frames: np.ndarray) -> None:
        """Write frames to the WAV (tests override this to simulate a stalling disk)."""
        self._sf.write(frames)

    def _run(self) -> None:
        last_header = time.monotonic()
        try:
            self._write_prefix()
            while True:
                stopping = self._stop_requested
                wrote = self._drain_audio()
                self._drain_events()
                now = time.monotonic()
                if stopping and not wrote:
                    break
                if now - last_header >= self.header_interval:
                    self._update_header()
                    last_header = now
                if stopping:
                    continue
                if not wrote or self._w - self._r < self.samplerate // 2:
                    # Few wake-ups: each one hands the GIL over, which slows a torch-bound engine thread.
                    self._wake.wait(self.poll_interval)
            self._finish()
        except Exception as exc:  # disk full, file size limit, permissions, I/O error
            self._fail(exc)
        finally:
            self._stopped = True

    def _drain_audio(self) -> bool:
        """Write what the ring holds (at most ~1 s per call, so headers stay current)."""
        w = self._w
        r = self._r
        budget = self.samplerate
        wrote = False
        while r < w and budget > 0:
            while self._gr < self._gw and self._gaps[self._gr % _GAP_SLOTS, 0] <= r:
                self._write_silence(int(self._gaps[self._gr % _GAP_SLOTS, 1]))
                self._gr += 1
            end = w
            if self._gr < self._gw:
                end = min(end, int(self._gaps[self._gr % _GAP_SLOTS, 0]))
            i = r % self._capacity
            k = min(end - r, self._capacity - i, budget)
            self._write_frames(self._ring[i:i + k])
            self._frames_on_disk += k
            r += k
            budget -= k
            self._r = r
            wrote = True
        if r == w:
            while self._gr < self._gw and self._gaps[self._gr % _GAP_SLOTS, 0] <= r:
                self._write_silence(int(self._gaps[self._gr % _GAP_SLOTS, 1]))
                self._gr += 1
                wrote = True
        return wrote

    def _write_silence(self, frames: int) -> None:
        while frames > 0:
            k = min(frames, len(self._zeros))
            self._write_frames(self._zeros[:k])
            self._frames_on_disk += k
            frames -= k

    def _event_line(self, event) -> str:
        return event if isinstance(event, str) else event_line(event, samplerate=self.samplerate)

    def _write_prefix(self) -> None:
        events, count = self._prefix
        if count:
            self._log.write("".join(self._event_line(events[i]) for i in range(count)))
            self._log.flush()

    def _drain_events(self) -> None:
        if not self._events:
            return
        lines = []
        while self._events:
            lines.append(self._event_line(self._events.popleft()))
        self._log.write("".join(lines))
        self._log.flush()

    def _update_header(self) -> None:
        err = soundfile._snd.sf_command(self._sf._file, SFC_UPDATE_HEADER_NOW, soundfile._ffi.NULL, 0)
        if err:
            raise OSError(f"header update failed ({self._sf_error()})")

    def _sf_error(self) -> str:
        if self._sf is None or self._sf.closed:
            return "unknown error"
        return soundfile._ffi.string(soundfile._snd.sf_strerror(self._sf._file)).decode("utf-8", "replace")

    def _finish(self) -> None:
        self._update_header()
        os.fsync(self._fd)
        self._sf.close()
        self._log.flush()
        os.fsync(self._log.fileno())
        self._log.close()

    def _fail(self, exc: Exception) -> None:
        self._accepting = False
        reason = self._describe(exc)
        self._salvage()
        self.error = (f"recording stopped: {reason} while writing {self.path} after "
                      f"{self._frames_on_disk / self.samplerate:.1f} s; the file so far is kept and playable")
        if self.on_error is not None:
            try:
                self.on_error(self.error)
            except Exception:
                pass

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror.lower()
        text = self._sf_error() if isinstance(exc, (soundfile.LibsndfileError, AssertionError)) else str(exc)
        text = text.replace("System error :", "").strip().rstrip(".")
        return text.lower() or type(exc).__name__

    def _salvage(self) -> None:
        """Leave a valid WAV after a failed write: cut a partial frame, rewrite the header, close."""
        try:
            if self._fd is not None and self._sf is not None and not self._sf.closed:
                frame_bytes = self.channels * SUBTYPES[self.subtype]
                size = os.fstat(self._fd).st_size
                whole = max(size - self._data_offset, 0) // frame_bytes
                os.ftruncate(self._fd, self._data_offset + whole * frame_bytes)
                self._frames_on_disk = whole
                try:
                    self._update_header()
                except Exception:
                    pass
        except OSError:
            pass
        self._close_files()

    def _close_files(self) -> None:
        if self._sf is not None and not self._sf.closed:
            try:
                self._sf.close()
            except Exception:
                pass
        if self._log is not None and not self._log.closed:
            try:
                self._log.flush()
            except OSError:
                pass
            try:
                self._log.close()
            except OSError:
                pass
