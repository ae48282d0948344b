"""The shared memory between the sound server and its clients: lock-free single-writer rings.

One `SharedBlock` holds everything the two processes exchange while playing:

- `inbox`: event records, client -> server (the server reads them at the next hop);
- `outbox`: applied-event records, server -> client (stamped with the output sample);
- `audio`: every output sample the server rendered, server -> client (recorder, meters);
- `input`: every live-input sample the engine consumed (model rate), server -> client (a take's
  input file);
- `targets` / `values`: the parameter store's arrays, written by the server each hop;
- `counters`: int64 slots each written by one side only (see `Counter`).

Every ring has exactly one writer and one reader, each owning one monotonically increasing
index, so neither side locks and the reader of a full ring never blocks the writer: a record
that does not fit is dropped and counted. x86-64 and ARMv8 keep a process's stores in order
for another process that reads the index first and the data after, as the readers here do.
"""

from __future__ import annotations

import enum
import struct
from multiprocessing import shared_memory

import numpy as np


class Counter(enum.IntEnum):
    """Slots of `SharedBlock.counters`; the comment says which side writes each."""

    INBOX_WRITTEN = 0  # client
    INBOX_READ = 1  # server
    OUTBOX_WRITTEN = 2  # server
    OUTBOX_READ = 3  # client
    AUDIO_WRITTEN = 4  # server: samples rendered since the server started (its samples_out)
    AUDIO_READ = 5  # client
    INBOX_DROPPED = 6  # client
    OUTBOX_DROPPED = 7  # server
    AUDIO_DROPPED = 8  # server: samples the client had not read when the ring came round
    CALLBACKS = 9  # server
    LAST_CALLBACK_NS = 10  # server (CLOCK_MONOTONIC)
    UNDERFLOWS = 11  # server: callbacks after a JACK xrun (PortAudio's output-underflow flags elsewhere)
    LATE = 12  # server: callbacks that found less rendered than asked (0 with lead 0 by construction)
    STOP = 13  # client: 1 = fade out and stop
    STOPPED = 14  # server: the fade is done (the stream keeps playing silence until closed)
    STATUS_ASK = 15  # client: bumped to ask for a fresh status record
    STATUS_SEQ = 16  # server: even when the status bytes are whole, odd while they are written
    STATUS_LEN = 17  # server
    MAX_GAP_NS = 18  # server: longest interval between two callbacks since the first
    MAX_RENDER_NS = 19  # server: longest time a callback spent rendering
    CB_TID = 20  # server: the callback thread's native id
    CB_POLICY = 21  # server
    CB_PRIORITY = 22  # server
    START_SAMPLE = 23  # client: the server's first output sample index (set before it starts)
    GO = 24  # client: 0 = play silence and leave the engine and its inbox alone; 1 = play
    LEAD = 25  # client: samples rendered ahead of the callback's need (0: render on demand)
    MORPHING = 26  # server: 1 while a preset morph or loop moves parameters (without events)
    EVENT_WAIT_NS = 27  # server: the last event's time from its arrival in the inbox to the callback taking it
    EVENT_WAIT_MAX_NS = 28  # server: the longest such time
    INPUT_WRITTEN = 29  # server: live-input samples the engine consumed (model rate)
    INPUT_READ = 30  # client
    INPUT_DROPPED = 31  # server: input samples the client had not read when the ring came round
    SLOW_CALLBACKS = 32  # server: callbacks that worked longer than half their period


_COUNTERS = 40
INBOX_BYTES = 1 << 18
OUTBOX_BYTES = 1 << 20
AUDIO_SECONDS = 10.0
STATUS_BYTES = 1 << 14
INPUT_SAMPLES = 1 << 19
"""The input ring: 10.9 s at a 48 kHz model rate."""
_LENGTH = struct.Struct("<I")


class ByteRing:
    """Variable-length records (a 4-byte length, then the bytes) in a ring of `capacity` bytes."""

    def __init__(self, buffer: np.ndarray, counters: np.ndarray, written: int, read: int, dropped: int):
        self.buffer = buffer
        self.capacity = len(buffer)
        self._counters = counters
        self._written = written
        self._read = read
        self._dropped = dropped
        self._head = bytearray(_LENGTH.size)

    @property
    def pending(self) -> int:
        return int(self._counters[self._written] - self._counters[self._read])

    def put(self, record: bytes) -> bool:
        """Writer: append one record; False (and counted) when it does not fit."""
        counters = self._counters
        need = _LENGTH.size + len(record)
        written = int(counters[self._written])
        if need > self.capacity - (written - int(counters[self._read])):
            counters[self._dropped] += 1
            return False
        self._copy_in(written, _LENGTH.pack(len(record)))
        self._copy_in(written + _LENGTH.size, record)
        counters[self._written] = written + need
        return True

    def get(self) -> bytes | None:
        """Reader: the next record, or None when there is none."""
        counters = self._counters
        read = int(counters[self._read])
        if read == int(counters[self._written]):
            return None
        (length,) = _LENGTH.unpack(self._copy_out(read, _LENGTH.size))
        record = self._copy_out(read + _LENGTH.size, length)
        counters[self._read] = read + _LENGTH.size + length
        return record

    def _copy_in(self, index: int, data: bytes) -> None:
        start = index % self.capacity
        first = min(len(data), self.capacity - start)
        view = np.frombuffer(data, dtype=np.uint8)
        self.buffer[start:start + first] = view[:first]
        if first < len(data):
            self.buffer[:len(data) - first] = view[first:]

    def _copy_out(self, index: int, length: int) -> bytes:
        start = index % self.capacity
        first = min(length, self.capacity - start)
        if first == length:
            return self.buffer[start:start + length].tobytes()
        return self.buffer[start:].tobytes() + self.buffer[:length - first].tobytes()


class AudioRing:
    """float32 samples, written by the server; a reader that falls a whole ring behind loses the oldest."""

    def __init__(self, buffer: np.ndarray, counters: np.ndarray, written: int = Counter.AUDIO_WRITTEN,
                 read: int = Counter.AUDIO_READ, dropped: int = Counter.AUDIO_DROPPED):
        self.buffer = buffer
        self.capacity = len(buffer)
        self._counters = counters
        self._written = written
        self._read = read
        self._dropped = dropped

    def write(self, block: np.ndarray) -> None:
        """Writer (no allocation): append `block`, overwriting what the reader has not taken."""
        counters = self._counters
        written = int(counters[self._written])
        n = len(block)
        start = written % self.capacity
        first = min(n, self.capacity - start)
        self.buffer[start:start + first] = block[:first]
        if first < n:
            self.buffer[:n - first] = block[first:]
        behind = written + n - int(counters[self._read]) - self.capacity
        if behind > 0:
            counters[self._dropped] += behind
        counters[self._written] = written + n

    def read(self, upto: int) -> tuple[int, np.ndarray]:
        """Reader: (first sample index, samples) from where it last read up to index `upto`."""
        counters = self._counters
        read = int(counters[self._read])
        written = int(counters[self._written])
        upto = min(int(upto), written)
        if written - read > self.capacity:  # lapped: skip what is gone
            read = written - self.capacity
        n = max(upto - read, 0)
        start = read % self.capacity
        first = min(n, self.capacity - start)
        out = np.empty(n, dtype=np.float32)
        out[:first] = self.buffer[start:start + first]
        if first < n:
            out[first:] = self.buffer[:n - first]
        counters[self._read] = read + n
        return read, out


class SharedBlock:
    """The one shared-memory segment of a sound server (made by the client, opened by the server)."""

    def __init__(self, *, n_params: int, samplerate: int, name: str | None = None):
        self.n_params = int(n_params)
        self.samplerate = int(samplerate)
        audio = 1 << int(np.ceil(np.log2(AUDIO_SECONDS * max(self.samplerate, 8000))))
        sizes = [("counters", 8 * _COUNTERS), ("inbox", INBOX_BYTES), ("outbox", OUTBOX_BYTES),
                 ("status", STATUS_BYTES), ("targets", 8 * self.n_params), ("values", 8 * self.n_params),
                 ("audio", 4 * audio), ("input", 4 * INPUT_SAMPLES)]
        total = sum(size for _, size in sizes)
        create = name is None
        self.shm = shared_memory.SharedMemory(name=name, create=create, size=total)
        offset = 0
        views = {}
        for key, size in sizes:
            dtype = {"counters": np.int64, "targets": np.float64, "values": np.float64, "audio": np.float32,
                     "input": np.float32}.get(key, np.uint8)
            views[key] = np.ndarray(size // np.dtype(dtype).itemsize, dtype=dtype, buffer=self.shm.buf, offset=offset)
            offset += size
        self.counters = views["counters"]
        self.targets = views["targets"]
        self.values = views["values"]
        self._status = views["status"]
        if create:
            self.counters[:] = 0
        self.inbox = ByteRing(views["inbox"], self.counters, Counter.INBOX_WRITTEN, Counter.INBOX_READ,
                              Counter.INBOX_DROPPED)
        self.outbox = ByteRing(views["outbox"], self.counters, Counter.OUTBOX_WRITTEN, Counter.OUTBOX_READ,
                               Counter.OUTBOX_DROPPED)
        self.audio = AudioRing(views["audio"], self.counters)
        self.input = AudioRing(views["input"], self.counters, Counter.INPUT_WRITTEN, Counter.INPUT_READ,
                               Counter.INPUT_DROPPED)

    @property
    def name(self) -> str:
        return self.shm.name

    def __getitem__(self, slot: Counter) -> int:
        return int(self.counters[slot])

    def __setitem__(self, slot: Counter, value: int) -> None:
        self.counters[slot] = value

    # the status record: a seqlock (the server writes, any number of client threads read)
    def write_status(self, data: bytes) -> None:
        data = data[:STATUS_BYTES]
        counters = self.counters
        counters[Counter.STATUS_SEQ] += 1
        self._status[:len(data)] = np.frombuffer(data, dtype=np.uint8)
        counters[Counter.STATUS_LEN] = len(data)
        counters[Counter.STATUS_SEQ] += 1

    def read_status(self) -> tuple[int, bytes | None]:
        """(sequence number, bytes); bytes None while the server is writing (ask again)."""
        counters = self.counters
        seq = int(counters[Counter.STATUS_SEQ])
        if seq % 2 or seq == 0:
            return seq, None
        data = self._status[:int(counters[Counter.STATUS_LEN])].tobytes()
        if int(counters[Counter.STATUS_SEQ]) != seq:
            return seq, None
        return seq, data

    def close(self, *, unlink: bool = False) -> None:
        for attr in ("counters", "targets", "values", "_status"):
            if hasattr(self, attr):
                delattr(self, attr)
        for ring in ("inbox", "outbox", "audio", "input"):
            if hasattr(self, ring):
                delattr(self, ring)
        try:
            self.shm.close()
        except BufferError:  # a view someone still holds: the mapping goes with the process
            pass
        if unlink:
            try:
                self.shm.unlink()
            except FileNotFoundError:
                pass
