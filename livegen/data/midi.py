"""Read the notes of a Standard MIDI File (MAESTRO's ``.midi`` beside each WAV), no dependency.

Enough of the format for note timing: formats 0 and 1, tempo changes (any track), running
status, note-on with velocity 0 as note-off, meta and SysEx events skipped. Sustain pedal is
reported separately (``pedal=True`` extends notes to the pedal release, as MAESTRO's own
transcription metrics do).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from livegen.errors import ParameterError


@dataclass(frozen=True)
class MidiNote:
    pitch: int
    velocity: int
    onset_s: float
    offset_s: float
    channel: int = 0


def _vlq(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos
    raise ValueError("variable-length quantity longer than 4 bytes")


def _events(track: bytes):
    """Yield (tick, status, data bytes) for channel events and ('tempo', us) meta as status 0x51."""
    pos, tick, running = 0, 0, None
    while pos < len(track):
        delta, pos = _vlq(track, pos)
        tick += delta
        status = track[pos]
        if status == 0xFF:
            kind, length_pos = track[pos + 1], pos + 2
            length, pos = _vlq(track, length_pos)
            payload = track[pos:pos + length]
            pos += length
            if kind == 0x51 and length == 3:
                yield tick, 0x51, payload
            elif kind == 0x2F:
                return
            continue
        if status in (0xF0, 0xF7):
            length, pos = _vlq(track, pos + 1)
            pos += length
            continue
        if status & 0x80:
            running = status
            pos += 1
        elif running is None:
            raise ValueError(f"data byte {status:#x} without a running status")
        size = 1 if (running & 0xF0) in (0xC0, 0xD0) else 2
        yield tick, running, track[pos:pos + size]
        pos += size


def read_midi_notes(path: str | os.PathLike, *, pedal: bool = False) -> list[MidiNote]:
    """Notes of a MIDI file, sorted by onset, times in seconds."""
    try:
        data = open(path, "rb").read()
    except OSError as exc:
        raise ParameterError(f"cannot read MIDI file {str(path)!r}: {exc}") from None
    try:
        if data[:4] != b"MThd":
            raise ValueError("no MThd header")
        header_len = int.from_bytes(data[4:8], "big")
        fmt, ntracks, division = (int.from_bytes(data[8 + 2 * i:10 + 2 * i], "big") for i in range(3))
        if division & 0x8000:
            raise ValueError("SMPTE time division is not supported")
        pos = 8 + header_len
        tracks = []
        while pos + 8 <= len(data) and len(tracks) < ntracks:
            length = int.from_bytes(data[pos + 4:pos + 8], "big")
            if data[pos:pos + 4] == b"MTrk":
                tracks.append(data[pos + 8:pos + 8 + length])
            pos += 8 + length
        # Merge the tracks by tick; ties keep track order, then file order.
        events = sorted((tick, n, seq, status, payload) for n, track in enumerate(tracks)
                        for seq, (tick, status, payload) in enumerate(_events(track)))
    except (ValueError, IndexError) as exc:
        raise ParameterError(f"{str(path)!r} is not a readable Standard MIDI File ({exc})") from None
    del fmt  # format 0 and 1 read the same way once tracks are merged

    tempo, last_tick, seconds = 500000, 0, 0.0
    open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    sustained: dict[int, bool] = {}
    held_by_pedal: dict[int, list[tuple[int, float, int]]] = {}
    notes: list[MidiNote] = []

    def close(channel, pitch, onset, velocity, t):
        notes.append(MidiNote(pitch, velocity, onset, max(t, onset), channel))

    for tick, _, _, status, payload in events:
        seconds += (tick - last_tick) * tempo / 1e6 / division
        last_tick = tick
        if status == 0x51:
            tempo = int.from_bytes(payload, "big")
            continue
        kind, channel = status & 0xF0, status & 0x0F
        if kind == 0x90 and payload[1] > 0:
            open_notes.setdefault((channel, payload[0]), []).append((seconds, payload[1]))
        elif kind in (0x80, 0x90):
            stack = open_notes.get((channel, payload[0]))
            if stack:
                onset, velocity = stack.pop(0)
                if pedal and sustained.get(channel):
                    held_by_pedal.setdefault(channel, []).append((payload[0], onset, velocity))
                else:
                    close(channel, payload[0], onset, velocity, seconds)
        elif kind == 0xB0 and payload[0] == 64:
            down = payload[1] >= 64
            if sustained.get(channel) and not down:
                for pitch, onset, velocity in held_by_pedal.pop(channel, []):
                    close(channel, pitch, onset, velocity, seconds)
            sustained[channel] = down
    for channel, held in held_by_pedal.items():
        for pitch, onset, velocity in held:
            close(channel, pitch, onset, velocity, seconds)
    for (channel, pitch), stack in open_notes.items():
        for onset, velocity in stack:
            close(channel, pitch, onset, velocity, seconds)
    notes.sort(key=lambda n: (n.onset_s, n.pitch))
    return notes
