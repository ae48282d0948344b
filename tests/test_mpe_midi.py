"""MPE zones in the pure MIDI layer: member channels' notes, bend, slide and pressure become
voices with ids; the manager channel and a setup without zones mean what they meant before."""

from __future__ import annotations

import pytest

from livegen.control.mapping import MidiMapper, Mapping, load_map, mpe_members, parse_mpe, save_map
from livegen.engine.params import ParamStore
from livegen.errors import ParameterError

MCM = (0xB0, 101, 0), (0xB0, 100, 6)
"""The MPE Configuration Message's RPN select (status byte's channel added per use); CC 6 N follows."""


@pytest.fixture
def params():
    return ParamStore.for_model(8)


def mcm(mapper, channel, members):
    events = []
    for status, number, value in (*MCM, (0xB0, 6, members)):
        events += mapper.feed([status | (channel - 1), number, value])
    return events


def voice_events(events):
    return [(e.voice, e.name, round(e.value, 4)) for e in events if e.type == "voice"]


def test_zones_from_the_flag(params):
    assert parse_mpe("lower") == {"lower": 15} and parse_mpe("upper") == {"upper": 15}
    assert parse_mpe("lower:7") == {"lower": 7} and parse_mpe("upper:1") == {"upper": 1}
    assert parse_mpe("off") == {} and parse_mpe(None) == {}
    assert sorted(mpe_members({"lower": 15})) == list(range(2, 17))
    assert sorted(mpe_members({"upper": 15})) == list(range(1, 16))
    assert sorted(mpe_members({"lower": 7})) == list(range(2, 9))
    assert sorted(mpe_members({"upper": 3})) == [13, 14, 15]
    for bad in ("middle", "lower:0", "lower:16", "upper:x", "lower:", "LOWER", "7"):
        with pytest.raises(ParameterError, match=rf"--mpe '{bad}'.*lower:N"):
            parse_mpe(bad)
    assert MidiMapper(params, mpe="lower").mpe == "lower 15"
    assert MidiMapper(params, mpe="upper:7").mpe == "upper 7"
    assert MidiMapper(params).mpe == ""
    with pytest.raises(ParameterError, match="--midi-channel 2"):
        MidiMapper(params, mpe="lower", channel=2)


def test_member_channel_messages_are_voice_events(params):
    m = MidiMapper(params, mpe="lower:7")
    on, = m.feed([0x92, 60, 100], source="midi:k")  # channel 3
    assert (on.type, on.pitch, on.velocity, on.voice, on.source) == ("note_on", 60.0, 100, 3, "midi:k")
    assert voice_events(m.feed([0xE2, 0, 0])) == [(3, "bend", -48.0)]
    assert voice_events(m.feed([0xE2, 0, 64])) == [(3, "bend", 0.0)]
    assert voice_events(m.feed([0xE2, 0, 96])) == [(3, "bend", 24.0)]
    assert voice_events(m.feed([0xE2, 127, 127])) == [(3, "bend", round(8191 / 8192 * 48, 4))]
    assert voice_events(m.feed([0xB2, 74, 0])) == [(3, "y", -0.5)]
    assert voice_events(m.feed([0xB2, 74, 64])) == [(3, "y", 0.0)]
    assert voice_events(m.feed([0xB2, 74, 127])) == [(3, "y", round(63 / 128, 4))]
    assert voice_events(m.feed([0xD2, 127])) == [(3, "pressure", 1.0)]
    assert voice_events(m.feed([0xA2, 60, 0])) == [(3, "pressure", 0.0)]  # polyphonic aftertouch
    off, = m.feed([0x92, 60, 0])  # note-on velocity 0
    assert (off.type, off.pitch, off.voice) == ("note_off", 60.0, 3)
    off, = m.feed([0x88, 61, 30])  # channel 9 is not a member of lower:7: a plain note
    assert (off.type, off.voice) == ("note_off", None)
    assert m.feed([0x81, 62, 1])[0].voice == 2
    m.feed([0x8F, 1, 1])
    m.feed([0x93, 64, 90]), m.feed([0x93, 67, 90])
    offs = m.feed([0xB3, 123, 0])  # all notes off on a member: its voice's notes
    assert [(e.type, e.pitch, e.voice) for e in offs] == [("note_off", 64.0, 4), ("note_off", 67.0, 4)]
    assert params.get("bend") == 0.0 and all(e.type != "param" for e in m.feed([0xE2, 0, 96]))


def test_manager_channel_keeps_its_meaning_and_rpn0_per_channel_role(params):
    m = MidiMapper(params, [Mapping("z0", cc=70, takeover=False), Mapping("z4", cc=74, takeover=False)], mpe="lower")
    on, = m.feed([0x90, 60, 100])
    assert on.voice is None
    assert [(e.name, round(e.value, 4)) for e in m.feed([0xE0, 0, 96])] == [("bend", 0.5001)]
    assert [(e.name, e.value) for e in m.feed([0xB0, 64, 127])] == [("sustain", 1.0)]
    assert [(e.name, e.value) for e in m.feed([0xB0, 74, 127])] == [("z4", 4.0)]  # CC 74 on the manager: mapped
    assert voice_events(m.feed([0xB1, 74, 127])) == [(2, "y", round(63 / 128, 4))]  # ... on a member: slide only
    assert [(e.name, e.value) for e in m.feed([0xB1, 70, 0])] == [("z0", -4.0)]  # other CCs: mapped as ever
    assert m.feed([0xC1, 5])[0].type == "preset"
    for cc in ([0xB0, 101, 0], [0xB0, 100, 0]):  # RPN 0 on the manager: the global bend_range
        m.feed(cc)
    assert [(e.name, e.value) for e in m.feed([0xB0, 6, 12])] == [("bend_range", 12.0)]
    for cc in ([0xB4, 101, 0], [0xB4, 100, 0], [0xB4, 6, 24], [0xB4, 38, 50]):  # on a member: the members'
        assert m.feed(cc) == []
    assert voice_events(m.feed([0xE6, 127, 127])) == [(7, "bend", round(8191 / 8192 * 24.5, 4))]
    m.feed([0xB4, 6, 127])
    assert voice_events(m.feed([0xE6, 0, 0])) == [(7, "bend", -96.0)]  # the voice range's end


def test_no_zone_changes_nothing(params):
    messages = [[0x91, 60, 100], [0xE1, 0, 96], [0xB1, 74, 127], [0xD1, 90], [0xA1, 60, 10], [0x81, 60, 0]]
    plain = MidiMapper(params, [Mapping("z4", cc=74, takeover=False)])
    events = [e for msg in messages for e in plain.feed(msg)]
    assert [e.type for e in events] == ["note_on", "param", "param", "note_off"]
    assert all(e.voice is None for e in events)
    lower7 = MidiMapper(params, [Mapping("z4", cc=74, takeover=False)], mpe="upper:7")  # channel 2 is no member
    assert [e.to_json() for msg in messages for e in lower7.feed(msg)] == [e.to_json() for e in events]


def test_configuration_message_sets_shrinks_and_ends_zones(params):
    m = MidiMapper(params)
    assert mcm(m, 1, 15) == [] and m.mpe == "lower 15"
    assert m.feed([0x9F, 60, 100])[0].voice == 16  # channel 16 is lower's 15th member
    assert [(e.type, e.voice) for e in mcm(m, 16, 7)] == [("note_off", 16)]  # 16 is the upper manager now
    assert m.mpe == "lower 7, upper 7"
    assert m.feed([0x98, 62, 100])[0].voice == 9 and m.feed([0x9E, 63, 100])[0].voice == 15
    assert m.feed([0x8F, 62, 0])[0].voice is None  # the upper manager: a plain note
    m.feed([0x91, 64, 100])
    for cc in ([0xB1, 101, 0], [0xB1, 100, 0], [0xB1, 6, 2]):
        m.feed(cc)
    assert voice_events(m.feed([0xE1, 0, 0])) == [(2, "bend", -2.0)]
    released = mcm(m, 1, 0)  # the lower zone ends: its held notes are let go by their voices
    assert [(e.type, e.pitch, e.voice) for e in released] == [("note_off", 64.0, 2)]
    assert m.mpe == "upper 7" and m.feed([0x81, 64, 0])[0].voice is None
    mcm(m, 1, 3)
    assert voice_events(m.feed([0xE1, 0, 0])) == [(2, "bend", -48.0)]  # a new zone: bend range 48 again
    assert mcm(m, 1, 99) == []  # the held notes on 9 and 15 stay members' (of lower now): same voices
    assert m.mpe == "lower 15"  # more than 15 members is 15, and the upper zone has no room left
    assert mcm(m, 16, 0) == [] and m.mpe == "lower 15"


def test_learn_leaves_member_slide_alone(params):
    learned = []
    m = MidiMapper(params, [], mpe="lower")
    m.arm("drift", lambda p, c: learned.append((p, c)))
    assert voice_events(m.feed([0xB2, 74, 80])) == [(3, "y", 0.125)]
    m.feed([0xE2, 0, 80]), m.feed([0xD2, 80])
    assert learned == [] and m.armed == "drift"
    m.feed([0xB0, 74, 10])  # the manager's CC 74 is a control like any other
    assert learned == [("drift", "CC 74 ch 1")]


def test_map_file_keeps_the_zone(tmp_path, params):
    path = tmp_path / "map.toml"
    save_map(path, [Mapping("z0", cc=21)], {"mpe": "upper:5"})
    loaded, options = load_map(path)
    assert options == {"mpe": "upper:5"}
    assert MidiMapper(params, loaded, mpe=options["mpe"]).mpe == "upper 5"
    for text, error in (('mpe = "sideways"\n', r"map.toml: mpe 'sideways'"), ("mpe = 7\n", "must be a string")):
        path.write_text(text)
        with pytest.raises(ParameterError, match=error):
            load_map(path)
