"""OSC 1.0 packets: a strict, bounded parser (bytes in, messages out) and reply encoding.

The parser is ours rather than python-osc's because the instrument must survive anything a
network sends: python-osc's bundle parser loops forever on an element size <= 0 and logs a
warning per unknown type tag, so one hostile datagram could stall the control thread. This
parser checks every length against the datagram, bounds nesting and argument counts, and
raises `OscParseError` with a message fit for the sender's `/livegen/error s`. Replies are
built with python-osc's builder, which is fine for data we make ourselves.
"""

from __future__ import annotations

import math
import struct
from typing import NamedTuple

MAX_PACKET = 8192
"""Largest datagram accepted (bytes); control messages are tens of bytes."""
MAX_DEPTH = 4
MAX_ARGS = 1024
"""Arguments in one message: room for the longest replies (`/livegen/status`, `/livegen/params`
with a large latent, `/livegen/spectrum`); the packet limit bounds the work whatever this is."""
MAX_MESSAGES = 256
NTP_DELTA = 2208988800
"""Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch)."""


class OscParseError(ValueError):
    """A datagram is not a well-formed OSC packet; the message says what is wrong."""


class OscMessage(NamedTuple):
    address: str
    args: tuple
    time: float | None
    """Unix time at which a bundle asks for the message to act; None means now."""


_NUMBERS = {
    "i": (struct.Struct(">i"), "an int32 argument"),
    "f": (struct.Struct(">f"), "a float32 argument"),
    "h": (struct.Struct(">q"), "an int64 argument"),
    "d": (struct.Struct(">d"), "a float64 argument"),
}
"""The numeric type tags: their big-endian layout and what a packet that ends inside one lacks."""


def _string(data: bytes, index: int, what: str) -> tuple[str, int]:
    end = data.find(b"\x00", index)
    if end < 0:
        raise OscParseError(f"{what} is not NUL-terminated")
    raw = data[index:end]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise OscParseError(f"{what} is not valid UTF-8") from None
    padded = (end + 4) & ~3
    if padded > len(data):
        raise OscParseError(f"{what} padding runs past the end of the packet")
    return text, padded


def _need(data: bytes, index: int, size: int, what: str) -> None:
    if index + size > len(data):
        raise OscParseError(f"packet ends inside {what} (needs {size} bytes at offset {index})")


def parse_message(data: bytes, time: float | None = None) -> OscMessage:
    """Parse one OSC message (not a bundle)."""
    if not data.startswith(b"/"):
        raise OscParseError("an OSC message must start with '/'")
    address, index = _string(data, 0, "address")
    if not address.isprintable() or " " in address or len(address) > 256:
        raise OscParseError("address has spaces, control characters or is over 256 characters")
    if index == len(data):
        return OscMessage(address, (), time)  # OSC 1.0 allows a message without a type tag string
    tags, index = _string(data, index, "type tag string")
    if not tags.startswith(","):
        raise OscParseError(f"type tag string must start with ',' (got {tags[:16]!r})")
    tags = tags[1:]
    if len(tags) > MAX_ARGS:
        raise OscParseError(f"{len(tags)} arguments; at most {MAX_ARGS}")
    args = []
    for tag in tags:
        number = _NUMBERS.get(tag)
        if number is not None:
            layout, what = number
            _need(data, index, layout.size, what)
            args.append(layout.unpack_from(data, index)[0])
            index += layout.size
        elif tag in "sS":
            text, index = _string(data, index, "a string argument")
            args.append(text)
        elif tag == "b":
            _need(data, index, 4, "a blob size")
            size = struct.unpack_from(">i", data, index)[0]
            index += 4
            if size < 0:
                raise OscParseError(f"negative blob size {size}")
            _need(data, index, size, "a blob")
            args.append(bytes(data[index:index + size]))
            index = (index + size + 3) & ~3
        elif tag == "T":
            args.append(True)
        elif tag == "F":
            args.append(False)
        elif tag in "NI":
            args.append(None)
        elif tag in "cmrt":
            _need(data, index, 8 if tag == "t" else 4, f"a '{tag}' argument")
            args.append(bytes(data[index:index + (8 if tag == "t" else 4)]))
            index += 8 if tag == "t" else 4
        else:
            raise OscParseError(f"unsupported type tag {tag!r}")
    if index > len(data):
        raise OscParseError("arguments run past the end of the packet")
    return OscMessage(address, tuple(args), time)


def ntp_to_unix(timetag: int) -> float | None:
    """Bundle time tag -> Unix seconds; the special value 1 means 'immediately' (None)."""
    if timetag == 1:
        return None
    return (timetag >> 32) - NTP_DELTA + (timetag & 0xFFFFFFFF) / 2.0**32


def unix_to_ntp(seconds: float | None) -> int:
    if seconds is None:
        return 1
    whole = int(seconds // 1)
    return ((whole + NTP_DELTA) << 32) | int((seconds - whole) * 2.0**32)


def parse_packet(data: bytes, *, max_size: int = MAX_PACKET) -> list[OscMessage]:
    """Parse a datagram into messages (bundles flattened, each message with its bundle's time).

    Raises `OscParseError` for anything malformed; then nothing in the packet is applied,
    so a bundle acts wholly or not at all.
    """
    if len(data) > max_size:
        raise OscParseError(f"packet of {len(data)} bytes exceeds the {max_size}-byte limit")
    if not data:
        raise OscParseError("empty packet")
    if len(data) % 4:
        raise OscParseError(f"packet size {len(data)} is not a multiple of 4")
    out: list[OscMessage] = []
    _parse_element(bytes(data), None, 0, out)
    return out


def _parse_element(data: bytes, time: float | None, depth: int, out: list[OscMessage]) -> None:
    if data.startswith(b"#bundle\x00"):
        if depth >= MAX_DEPTH:
            raise OscParseError(f"bundles nested deeper than {MAX_DEPTH}")
        _need(data, 8, 8, "the bundle time tag")
        inner_time = ntp_to_unix(struct.unpack_from(">Q", data, 8)[0])
        if inner_time is None:
            inner_time = time
        index = 16
        while index < len(data):
            _need(data, index, 4, "a bundle element size")
            size = struct.unpack_from(">i", data, index)[0]
            index += 4
            if size <= 0 or size % 4:
                raise OscParseError(f"bundle element size {size} must be a positive multiple of 4")
            _need(data, index, size, "a bundle element")
            _parse_element(data[index:index + size], inner_time, depth + 1, out)
            index += size
        return
    if len(out) >= MAX_MESSAGES:
        raise OscParseError(f"more than {MAX_MESSAGES} messages in one packet")
    if data.startswith(b"/"):
        out.append(parse_message(data, time))
        return
    raise OscParseError("packet is neither an OSC message ('/...') nor a bundle ('#bundle')")


def encode_message(address: str, args=()) -> bytes:
    """Build one OSC message; ints -> i, floats -> f, str -> s, bytes -> b, bools -> T/F."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder(address=address)
    for arg in args:
        if isinstance(arg, bool):
            builder.add_arg(arg)
        elif isinstance(arg, int):
            builder.add_arg(arg, "i" if -2**31 <= arg < 2**31 else "h")
        elif isinstance(arg, float):
            builder.add_arg(arg, "d" if math.isfinite(arg) and abs(arg) > 3.4e38 else "f")
        elif isinstance(arg, (bytes, bytearray)):
            builder.add_arg(bytes(arg), "b")
        else:
            builder.add_arg(str(arg), "s")
    return builder.build().dgram


def encode_bundle(messages: list[bytes], *, time: float | None = None) -> bytes:
    """A bundle of already-encoded messages, to act at Unix `time` (None = immediately)."""
    parts = [b"#bundle\x00", struct.pack(">Q", unix_to_ntp(time))]
    for message in messages:
        parts.append(struct.pack(">i", len(message)))
        parts.append(message)
    return b"".join(parts)


def pack_bundles(messages: list[bytes], *, max_size: int = MAX_PACKET) -> list[bytes]:
    """Encoded messages packed, in order, into as few bundles (acting immediately) as fit `max_size`
    each; a message too large for any bundle travels alone, unbundled."""
    out, bundle, size = [], [], 16  # a bundle's header; each element adds its 4-byte size
    for message in messages:
        if bundle and size + 4 + len(message) > max_size:
            out.append(encode_bundle(bundle))
            bundle, size = [], 16
        if 20 + len(message) > max_size:
            out.append(message)
            continue
        bundle.append(message)
        size += 4 + len(message)
    if bundle:
        out.append(encode_bundle(bundle))
    return out
