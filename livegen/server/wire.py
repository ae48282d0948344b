"""Event records on the shared rings: the frequent kinds packed flat, the rest pickled.

Client -> server: the client numbers each event it posts and keeps the `Event` itself; the
record carries only what the engine needs to apply it (a parameter travels as its index in
the server's table). Server -> client: an applied event comes back as that number with the
output sample at which it took effect and the value applied (clamped), so the client rebuilds
the stamped event without the server pickling anything on the audio path. Events the server
makes itself come back flat too when they are a plain note, voice control or parameter change
(a MIDI keyboard's, thousands a second from an MPE one), or a sound-off; others (an event file's preset moves)
come back whole.

A payload prepared off the audio path (a seed file's analysed frames, megabytes) does not go
through the ring: pickle's out-of-band buffers put its arrays into a shared-memory blob of their
own, which the server maps without copying (`Blob`).
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import struct
from multiprocessing import shared_memory

from livegen.engine.events import VOICE_CONTROLS, Event

ID_KEY = "_wire_id"
"""Where a posted event's number rides through the engine (`Event.extra`), removed on the way back."""

_PARAM = struct.Struct("<BqHd")
_NOTE_ON = struct.Struct("<Bqddh")
_NOTE_OFF = struct.Struct("<Bqdh")
_VOICE = struct.Struct("<BqhBd")
_NO_VOICE = -1
_VOICE_NAMES = tuple(VOICE_CONTROLS)
_ACK = struct.Struct("<Bqqd?d")
ARRIVAL = struct.Struct("<q")
"""Every inbox record starts with its arrival time (CLOCK_MONOTONIC ns, stamped as it is queued)."""
_MADE = struct.Struct("<BBqddddhH")
"""An applied event the server made: kind, type, sample, t, value, pitch, velocity (NaN: none),
voice (-1: none), the name's length; then the name and the source, UTF-8."""
_MADE_TYPES = ("param", "note_on", "note_off", "voice", "sound_off")
_OTHER, _P, _ON, _OFF, _APPLIED, _V, _M = 0, 1, 2, 3, 4, 5, 6


class Blob:
    """A payload's large buffers in a shared-memory segment: made by the client (which unlinks
    it once the event is applied or refused), mapped by the server (kept while the payload lives)."""

    def __init__(self, buffers: list):
        sizes = [len(buffer.raw()) for buffer in buffers]
        self.shm = shared_memory.SharedMemory(create=True, size=max(sum(sizes), 1))
        self.spans = []
        offset = 0
        for buffer, size in zip(buffers, sizes):
            self.shm.buf[offset:offset + size] = buffer.raw()
            self.spans.append((offset, size))
            offset += size

    def release(self) -> None:
        self.shm.close()
        try:
            self.shm.unlink()
        except FileNotFoundError:
            pass


def _map_blob(name: str, spans: list) -> list:
    """The server's side: memoryviews of the blob's buffers (the mapping lives as long as they do)."""
    shm = shared_memory.SharedMemory(name=name)  # the client owns it (and unlinks it)
    _MAPPED.append(shm)
    return [shm.buf[offset:offset + size] for offset, size in spans]


_MAPPED: list = []
"""Blobs this process mapped: kept, since payload arrays are views of them (seeds are few)."""


def encode_posted(number: int, event: Event, index: dict[str, int]) -> tuple[bytes, Blob | None]:
    """One inbox record for `event` and the blob of its payload (None when it has none);
    `index` maps parameter names to the server's slots."""
    kind = event.type
    voice = _voice_id(event)
    if kind == "param" and event.name in index:
        try:
            return _PARAM.pack(_P, number, index[event.name], float(event.value)), None
        except (TypeError, ValueError):
            pass  # a malformed value: the engine rejects it from the pickled record
    elif kind == "note_on" and _plain(event.pitch) and isinstance(event.velocity, int) and voice:
        return _NOTE_ON.pack(_ON, number, float(event.pitch), float(event.velocity), voice[0]), None
    elif kind == "note_off" and _plain(event.pitch) and voice:
        return _NOTE_OFF.pack(_OFF, number, float(event.pitch), voice[0]), None
    elif kind == "voice" and event.name in _VOICE_NAMES and _plain(event.value) and voice:
        return _VOICE.pack(_V, number, voice[0], _VOICE_NAMES.index(event.name), float(event.value)), None
    bare = Event(event.type, t=event.t, name=event.name, value=event.value, pitch=event.pitch,
                 velocity=event.velocity, voice=event.voice, action=event.action, slot=event.slot, seconds=event.seconds,
                 slots=event.slots, values=event.values, extra=dict(event.extra), payload=event.payload)
    buffers: list = []
    data = pickle.dumps((number, bare), protocol=5, buffer_callback=buffers.append)
    blob = Blob(buffers) if buffers else None
    where = (blob.shm.name, blob.spans) if blob is not None else None
    return bytes([_OTHER]) + pickle.dumps((where, data), protocol=pickle.HIGHEST_PROTOCOL), blob


def _voice_id(event: Event) -> tuple[int] | None:
    """(the event's voice id, or `_NO_VOICE`) when it fits a flat record; None when it does not."""
    voice = event.voice
    if voice is None:
        return (_NO_VOICE,)
    return (voice,) if isinstance(voice, int) and 0 <= voice < 32768 else None


def _plain(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def decode_posted(record: bytes, names: list[str]) -> Event:
    """The server's side of `encode_posted`: an Event carrying its number in `extra`."""
    kind = record[0]
    if kind == _P:
        _, number, slot, value = _PARAM.unpack(record)
        return Event("param", name=names[slot], value=value, extra={ID_KEY: number})
    if kind == _ON:
        _, number, pitch, velocity, voice = _NOTE_ON.unpack(record)
        return Event("note_on", pitch=pitch, velocity=int(velocity), voice=None if voice == _NO_VOICE else voice,
                     extra={ID_KEY: number})
    if kind == _OFF:
        _, number, pitch, voice = _NOTE_OFF.unpack(record)
        return Event("note_off", pitch=pitch, voice=None if voice == _NO_VOICE else voice, extra={ID_KEY: number})
    if kind == _V:
        _, number, voice, name, value = _VOICE.unpack(record)
        return Event("voice", voice=voice, name=_VOICE_NAMES[name], value=value, extra={ID_KEY: number})
    where, data = pickle.loads(record[1:])
    number, event = pickle.loads(data, buffers=_map_blob(*where) if where is not None else None)
    event.extra[ID_KEY] = number
    return event


def encode_applied(event: Event) -> bytes:
    """The outbox record of an applied event (on the audio path: flat for posted events)."""
    number = event.extra.pop(ID_KEY, None)
    if number is not None and not event.extra and event.values is None:  # a stored preset's values go back whole
        value = event.value if isinstance(event.value, float) else math.nan
        return _ACK.pack(_APPLIED, number, event.sample, value, False, 0.0)
    if number is not None and set(event.extra) == {"clamped_from"}:
        try:
            asked = float(event.extra["clamped_from"])
        except (TypeError, ValueError):
            asked = math.nan
        return _ACK.pack(_APPLIED, number, event.sample, float(event.value), True, asked)
    if number is not None:
        event.extra[ID_KEY] = number
    elif _flat_made(event):
        name = (event.name or "").encode()
        return _MADE.pack(_M, _MADE_TYPES.index(event.type), event.sample, event.t,
                          math.nan if event.value is None else event.value,
                          math.nan if event.pitch is None else event.pitch,
                          math.nan if event.velocity is None else event.velocity,
                          _NO_VOICE if event.voice is None else event.voice, len(name)) + name + event.source.encode()
    event = dataclasses.replace(event, payload=None)  # the client has it (posted) or never needs it
    return bytes([_OTHER]) + pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)


def _flat_made(event: Event) -> bool:
    """Whether an applied event the server made goes back flat, unchanged by the trip: a note,
    voice control or parameter with float values, an int velocity and no other fields."""
    return (event.type in _MADE_TYPES and not event.extra and event.payload is None and event.values is None
            and event.action is None and event.slot is None and event.seconds is None and event.slots is None
            and isinstance(event.sample, int) and type(event.t) is float
            and (event.value is None or type(event.value) is float and math.isfinite(event.value))
            and (event.pitch is None or type(event.pitch) is float and math.isfinite(event.pitch))
            and (event.velocity is None or type(event.velocity) is int and 0 <= event.velocity < 2 ** 53)
            and (event.voice is None or type(event.voice) is int and 0 <= event.voice < 32768)
            and (event.name is None or 0 < len(event.name) < 16384))  # its UTF-8 under 65536 bytes


def decode_applied(record: bytes):
    """('ack', number, sample, value, clamped, asked) or ('event', Event)."""
    if record[0] == _APPLIED:
        _, number, sample, value, clamped, asked = _ACK.unpack(record)
        return "ack", number, sample, value, clamped, asked
    if record[0] == _M:
        _, kind, sample, t, value, pitch, velocity, voice, size = _MADE.unpack_from(record)
        head = _MADE.size
        name = record[head:head + size].decode() if size else None
        return "event", Event(_MADE_TYPES[kind], t=t, name=name, value=None if math.isnan(value) else value,
                              pitch=None if math.isnan(pitch) else pitch,
                              velocity=None if math.isnan(velocity) else int(velocity),
                              voice=None if voice == _NO_VOICE else voice, source=record[head + size:].decode(),
                              sample=sample)
    return "event", pickle.loads(record[1:])
