"""The live input a take consumed, written beside its log so that `livegen render LOG` re-renders it.

A session log re-renders from the engine's first hop, so a take's input file holds every input
sample the engine consumed from its first hop up to the take's end (model rate, float32 WAV,
`<take>.input.wav`), and the log's header names it with its sha256 (`INPUT_FILE_KEY`,
`INPUT_SHA_KEY` in the header's `input` fields). `InputTakes` keeps what came before a take in
a spool file (a take started mid-performance copies it first) and runs on the session's
control thread: the client's mirror thread only appends blocks to a deque (`feed`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import deque
from pathlib import Path

import numpy as np
import soundfile

from livegen.filehash import file_sha256

INPUT_SUFFIX = ".input.wav"
INPUT_KEY = "input"
INPUT_FILE_KEY = "file"
INPUT_SHA_KEY = "sha256"
_COPY = 1 << 16


def input_path(wav: Path) -> Path:
    """`<take>.input.wav` beside the take's `<take>.wav`."""
    wav = Path(wav)
    return wav.with_name(wav.stem + INPUT_SUFFIX)


def rewrite_header(log_path, fields: dict) -> None:
    """Merge `fields` into the `input` fields of a finished log's header line (atomically)."""
    log_path = Path(log_path)
    with open(log_path, encoding="utf-8") as stream:
        header = json.loads(stream.readline())
        rest = stream.read()
    header[INPUT_KEY] = {**(header.get(INPUT_KEY) or {}), **fields}
    tmp = log_path.with_name(log_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(header) + "\n" + rest)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, log_path)


class InputTakes:
    """Spool and per-take input files (control thread), fed blocks by the mirror thread."""

    def __init__(self, samplerate: int):
        self.samplerate = int(samplerate)
        self._queue: deque = deque()
        self._spool = tempfile.TemporaryFile(prefix="livegen-input-")
        self.spooled = 0
        """Samples in the spool: every input sample since the engine's first hop."""
        self._open: dict = {}  # id(recorder) -> (recorder, SoundFile)
        self.error: str | None = None

    def feed(self, first: int, block: np.ndarray) -> None:
        """Mirror thread: one block of consumed input (`first`: its index from the first hop)."""
        self._queue.append((first, block))

    def drain(self) -> None:
        """Control thread: spool what arrived and append it to every open take's file."""
        while self._queue:
            first, block = self._queue.popleft()
            if first > self.spooled:  # the ring came round before we read it: keep the timing
                self._append(np.zeros(first - self.spooled, np.float32))
            elif first < self.spooled:
                block = block[self.spooled - first:]
            self._append(np.ascontiguousarray(block, dtype=np.float32))

    def _append(self, block: np.ndarray) -> None:
        if not len(block):
            return
        self._spool.seek(0, os.SEEK_END)
        self._spool.write(block.tobytes())
        self.spooled += len(block)
        for rec, sf in list(self._open.values()):
            try:
                sf.write(block)
            except Exception as exc:
                self._fail(rec, exc)

    def start(self, rec) -> None:
        """A take started: its input file gets everything spooled so far, then what comes."""
        self.drain()
        path = input_path(rec.path)
        try:
            sf = soundfile.SoundFile(path, "w", samplerate=self.samplerate, channels=1, format="WAV",
                                     subtype="FLOAT")
            self._spool.seek(0)
            while chunk := self._spool.read(4 * _COPY):
                sf.write(np.frombuffer(chunk, dtype=np.float32))
        except Exception as exc:
            self.error = f"cannot write the take's input to {path}: {exc}"
            return
        rec.input_path = path
        self._open[id(rec)] = (rec, sf)

    def stop(self, rec) -> None:
        """A take stopped (its stop event was applied): write what came before it, close the file."""
        self.drain()
        item = self._open.pop(id(rec), None)
        if item is not None:
            item[1].close()

    def finish(self, rec) -> None:
        """The take's log is closed: its header gets the input file's name and sha256."""
        path = getattr(rec, "input_path", None)
        if path is None or rec.log_path is None or not Path(path).is_file():
            return
        rewrite_header(rec.log_path, {INPUT_FILE_KEY: Path(path).name, INPUT_SHA_KEY: file_sha256(path),
                                      "samplerate": self.samplerate})

    def _fail(self, rec, exc) -> None:
        self.error = f"recording the take's input stopped: {exc}"
        rec.input_path = None  # no header entry: a render would not be the take
        item = self._open.pop(id(rec), None)
        if item is not None:
            try:
                item[1].close()
            except Exception:
                pass

    def close(self) -> None:
        for rec, sf in list(self._open.values()):
            try:
                sf.close()
            except Exception:
                pass
        self._open.clear()
        self._spool.close()
