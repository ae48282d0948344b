"""Fuzzing the pure control layers: OSC datagrams and MIDI messages in, only valid events out."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livegen.control.mapping import Mapping, MidiMapper
from livegen.control.osc import OscServer
from livegen.control.oscwire import OscParseError, encode_bundle, encode_message, parse_packet
from livegen.engine.events import EVENT_TYPES, VOICE_CONTROLS, VOICE_IDS
from livegen.engine.params import ParamStore

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class CapturingTarget:
    def __init__(self):
        self.params = ParamStore.for_model(8)
        self.posted = []

    def post(self, event):
        self.posted.append(event)
        if event.type == "param":
            self.params.set(event.name, event.value)  # as the engine would, so takeover sees it

    def status(self):
        return {"xruns": 0, "samplerate": 48000, "blocksize": 256, "voices": 0, "recording": 0, "load": 0.0}

    def add_listener(self, callback):
        pass


def assert_valid(target):
    for event in target.posted:
        assert event.type in EVENT_TYPES
        assert event.source
        if event.type == "param":
            spec = target.params.spec(event.name)
            assert math.isfinite(event.value) and spec.minimum <= event.value <= spec.maximum, event
        elif event.type in ("note_on", "note_off"):
            assert 0 <= event.pitch <= 127
            if event.type == "note_on":
                assert 1 <= event.velocity <= 127
        elif event.type == "preset":
            assert event.action in ("store", "recall") and 0 <= event.slot <= 127
        if event.type in ("note_on", "note_off", "voice", "sound_off") and event.voice is not None:
            assert 0 <= event.voice < VOICE_IDS, event
        if event.type == "voice":
            low, high = VOICE_CONTROLS[event.name]
            assert math.isfinite(event.value) and low <= event.value <= high, event
    for name, spec in target.params.specs.items():
        assert spec.minimum <= target.params.get(name) <= spec.maximum


ADDRESSES = ["/livegen/xy", "/livegen/z/0", "/livegen/z/7", "/livegen/z/-1", "/livegen/param/gain",
             "/livegen/param/voices", "/livegen/note", "/livegen/record", "/livegen/preset/store",
             "/livegen/preset/recall", "/livegen/learn", "/livegen/get/gain", "/livegen/status",
             "/livegen/subscribe", "/livegen/unsubscribe", "/livegen/params", "/livegen/", "/x",
             "/livegen/voice/0/note", "/livegen/voice/3/bend", "/livegen/voice/127/xy", "/livegen/voice/9/pressure",
             "/livegen/voice/128/x", "/livegen/voice/3/slide"]
ARGS = st.one_of(
    st.integers(-2**31, 2**31 - 1), st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(allow_nan=True, allow_infinity=True), st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8), st.booleans(),
    st.binary(min_size=1, max_size=8), st.integers(2**31, 2**62),
)


@pytest.mark.slow
@SETTINGS
@given(st.binary(max_size=300))
def test_osc_random_bytes(data):
    target = CapturingTarget()
    server = OscServer(target)
    try:
        parse_packet(data)
    except OscParseError:
        pass
    server.handle_datagram(data, ("127.0.0.1", 5555))
    server.handle_datagram(b"/livegen" + data[: len(data) // 4 * 4], ("127.0.0.1", 5555))
    assert_valid(target)


@pytest.mark.slow
@SETTINGS
@given(st.sampled_from(ADDRESSES), st.lists(ARGS, max_size=4), st.integers(0, 400), st.integers(0, 255))
def test_osc_structured_and_mutated_messages(address, args, flip_at, flip_to):
    target = CapturingTarget()
    server = OscServer(target)
    data = encode_message(address, args)
    server.handle_datagram(data, ("127.0.0.1", 5555))
    mutated = bytearray(data)
    mutated[flip_at % len(mutated)] = flip_to
    server.handle_datagram(bytes(mutated), ("127.0.0.1", 5555))
    server.handle_datagram(bytes(mutated[: flip_at % len(mutated)]), ("127.0.0.1", 5555))
    bundle = encode_bundle([data, bytes(mutated)])
    server.handle_datagram(bundle, ("127.0.0.1", 5555))
    assert_valid(target)
    assert server.stats["internal_errors"] == 0


@pytest.mark.slow
@SETTINGS
@given(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6), st.integers(0, 3))
def test_osc_hostile_bundles(sizes, depth):
    inner = encode_message("/livegen/param/gain", (1.0,))
    for _ in range(depth):
        inner = encode_bundle([inner])
    data = b"#bundle\x00" + struct.pack(">Q", 1) + b"".join(struct.pack(">i", s) + inner for s in sizes)
    target = CapturingTarget()
    OscServer(target).handle_datagram(data, ("127.0.0.1", 1))
    assert_valid(target)


def test_deep_bundle_nesting_is_refused():
    inner = encode_message("/livegen/param/gain", (1.0,))
    for _ in range(50):
        inner = encode_bundle([inner])
    try:
        parse_packet(inner, max_size=1 << 20)
    except OscParseError as exc:
        assert "nested" in str(exc)
    else:
        raise AssertionError("deep nesting accepted")


MIDI_MESSAGE = st.one_of(
    st.lists(st.integers(0, 255), max_size=6),
    st.tuples(st.sampled_from([0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0]), st.integers(0, 15),
              st.integers(0, 127), st.integers(0, 127)).map(lambda t: [t[0] | t[1], t[2], t[3]]),
    st.tuples(st.integers(0, 15),
              st.sampled_from([0, 6, 16, 32, 38, 48, 64, 70, 96, 97, 98, 99, 100, 101, 120, 121, 123]),
              st.integers(0, 127)).map(lambda t: [0xB0 | t[0], t[1], t[2]]),
)


@pytest.mark.slow
@SETTINGS
@given(st.lists(MIDI_MESSAGE, max_size=40), st.booleans())
def test_midi_mapper_fuzz(messages, learn):
    target = CapturingTarget()
    maps = [Mapping("z0", cc=70), Mapping("x", cc=16, curve="exp"), Mapping("drift", nrpn=130, takeover=False),
            Mapping("gain", cc=21, mode="relative-twos"), Mapping("glide", cc=22, mode="relative-offset", min=5.0, max=0.0),
            Mapping("voices", cc=23), Mapping("z1", cc=24, curve=3.0, min=-10.0, max=10.0)]
    mapper = MidiMapper(target.params, maps)
    if learn:
        mapper.arm("z5")
    for message in messages:
        for event in mapper.feed(message, source="midi:fuzz"):
            target.post(event)
    assert_valid(target)


MPE_MESSAGE = st.one_of(
    MIDI_MESSAGE,
    st.tuples(st.sampled_from([0, 15]), st.integers(0, 127)).map(  # MPE Configuration Messages
        lambda t: [[0xB0 | t[0], 101, 0], [0xB0 | t[0], 100, 6], [0xB0 | t[0], 6, t[1]]]),
    st.tuples(st.integers(0, 15), st.integers(0, 127), st.integers(0, 127)).map(  # member bend range
        lambda t: [[0xB0 | t[0], 101, 0], [0xB0 | t[0], 100, 0], [0xB0 | t[0], 6, t[1]], [0xB0 | t[0], 38, t[2]]]),
    st.tuples(st.sampled_from([0xA0, 0xB0, 0xD0, 0xE0]), st.integers(0, 15), st.integers(0, 127)).map(
        lambda t: [t[0] | t[1], 74 if t[0] == 0xB0 else t[2], t[2]][: 2 if t[0] == 0xD0 else 3]),
)


@pytest.mark.slow
@SETTINGS
@given(st.lists(MPE_MESSAGE, max_size=40), st.sampled_from([None, "lower", "upper", "lower:3", "upper:14"]),
       st.booleans())
def test_midi_mapper_mpe_fuzz(messages, zone, learn):
    target = CapturingTarget()
    mapper = MidiMapper(target.params, [Mapping("z4", cc=74), Mapping("x", cc=16)], mpe=zone)
    if learn:
        mapper.arm("z5")
    held: set[tuple[int, float]] = set()

    def post(events):
        for event in events:
            target.post(event)
            if event.voice is not None and event.type == "note_on":
                held.add((event.voice, event.pitch))
            elif event.voice is not None and event.type == "note_off":
                held.discard((event.voice, event.pitch))
            elif event.type == "sound_off":  # All Sound Off cuts the voice's notes
                held.difference_update({key for key in held if key[0] == event.voice})

    for message in messages:
        for one in (message if message and isinstance(message[0], list) else [message]):
            post(mapper.feed(one, source="midi:fuzz"))
    assert_valid(target)
    assert set(mapper.zones) <= {"lower", "upper"} and sum(mapper.zones.values()) <= 15
    post(mapper.set_zone("lower", 0) + mapper.set_zone("upper", 0))
    assert not held, held  # ending the zones let every voice's note go: none is left sounding
