"""MPE zones in the pure MIDI layer: member channels' notes, bend, slide and pressure become
voices with ids; the manager channel and a setup without zones mean what they meant before."""

from __future__ import annotations

import pytest

from livegen.control.mapping import (MPE_VOICE_RESET, MidiMapper, Mapping, load_map, mpe_members, parse_mpe,
                                     save_map)
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


def rpn0(mapper, channel, semitones):
    events = []
    for number, value in ((101, 0), (100, 0), (6, semitones)):
        events += mapper.feed([0xB0 | (channel - 1), number, value])
    return events


def voice_events(events):
    return [(e.voice, e.name, round(e.value, 4)) for e in events if e.type == "voice"]


def released(events):
    return [(e.pitch, e.voice) for e in events if e.type == "note_off"]


def param_events(events):
    return [(e.name, e.value) for e in events if e.type == "param"]


def reset(events):
    """The voices `events` put at rest, each with all of its controls (and nothing else)."""
    voices: dict[int, list] = {}
    for e in events:
        if e.type == "voice":
            voices.setdefault(e.voice, []).append((e.name, e.value))
    assert all(controls == list(MPE_VOICE_RESET) for controls in voices.values()), voices
    return sorted(voices)


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
    on, = m.feed([0x92, 60, 100], source="midi")  # channel 3
    assert (on.type, on.pitch, on.velocity, on.voice, on.source) == ("note_on", 60.0, 100, 3, "midi")
    assert voice_events(m.feed([0xE2, 0, 0])) == [(3, "bend", -48.0)]
    assert voice_events(m.feed([0xE2, 0, 64])) == [(3, "bend", 0.0)]
    assert voice_events(m.feed([0xE2, 0, 96])) == [(3, "bend", 24.0)]
    assert voice_events(m.feed([0xE2, 127, 127])) == [(3, "bend", round(8191 / 8192 * 48, 4))]
    assert voice_events(m.feed([0xB2, 74, 0])) == [(3, "y", -0.5)]
    assert voice_events(m.feed([0xB2, 74, 64])) == [(3, "y", 0.0)]
    assert voice_events(m.feed([0xB2, 74, 127])) == [(3, "y", round(63 / 128, 4))]
    assert voice_events(m.feed([0xD2, 127])) == [(3, "pressure", 1.0)]
    assert m.feed([0xA2, 60, 0]) == []  # polyphonic key pressure: not on a member (see the test below)
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
    assert param_events(rpn0(m, 1, 12)) == [("bend_range", 12.0)]  # no zone yet: channel 1's range
    events = mcm(m, 1, 15)  # the zone's ranges go to the MPE defaults; its new members' voices at rest
    assert param_events(events) == [("bend_range", 2.0)] and released(events) == []
    assert reset(events) == list(range(2, 17)) and m.mpe == "lower 15"
    assert m.feed([0x9F, 60, 100])[0].voice == 16  # channel 16 is lower's 15th member
    events = mcm(m, 16, 7)  # 16 is the upper manager now; 9-15 stay members (of the upper zone)
    assert released(events) == [(60.0, 16)] and reset(events) == [16] and m.mpe == "lower 7, upper 7"
    assert m.feed([0x98, 62, 100])[0].voice == 9 and m.feed([0x9E, 63, 100])[0].voice == 15
    assert m.feed([0x8F, 62, 0])[0].voice is None  # the upper manager: a plain note
    m.feed([0x91, 64, 100])
    for cc in ([0xB1, 101, 0], [0xB1, 100, 0], [0xB1, 6, 2]):
        m.feed(cc)
    assert voice_events(m.feed([0xE1, 0, 0])) == [(2, "bend", -2.0)]
    events = mcm(m, 1, 0)  # the lower zone ends: its held notes are let go by their voices
    assert released(events) == [(64.0, 2)] and reset(events) == list(range(2, 9))
    assert m.mpe == "upper 7" and m.feed([0x81, 64, 0])[0].voice is None
    mcm(m, 1, 3)
    assert voice_events(m.feed([0xE1, 0, 0])) == [(2, "bend", -48.0)]  # a new zone: bend range 48 again
    events = mcm(m, 1, 99)  # the held notes on 9 and 15 stay members' (of lower now): same voices
    assert released(events) == [] and reset(events) == [5, 6, 7, 8, 16]
    assert m.mpe == "lower 15"  # more than 15 members is 15, and the upper zone has no room left
    assert param_events(mcm(m, 16, 0)) == [("bend_range", 2.0)] and m.mpe == "lower 15"
    assert param_events(mcm(m, 5, 3)) == [] and m.mpe == "lower 15"  # RPN 6 off a manager channel: nothing


def test_all_notes_off_on_a_manager_releases_its_zone(params):
    m = MidiMapper(params, mpe="lower:7")
    for message in ([0x90, 48, 100], [0x91, 60, 100], [0x92, 64, 100], [0x92, 67, 100], [0x99, 70, 100]):
        m.feed(message, source="midi:k")  # the manager's own note, members 2 and 3, channel 10 outside
    m.feed([0x93, 72, 100], source="midi:other")  # another port's note: not this stream's to end
    offs = m.feed([0xB0, 123, 0], source="midi:k")
    assert [(e.type, e.pitch, e.voice, e.source) for e in offs] == [
        ("note_off", 48.0, None, "midi:k"), ("note_off", 60.0, 2, "midi:k"),
        ("note_off", 64.0, 3, "midi:k"), ("note_off", 67.0, 3, "midi:k")]
    assert m.feed([0xB0, 123, 0], source="midi:k") == []  # nothing of the zone's left held
    assert released(m.feed([0xB0, 123, 0], source="midi:other")) == [(72.0, 20)]  # the second port: ids 16 + channel
    m.feed([0x94, 50, 100]), m.feed([0x95, 52, 100])
    assert released(m.feed([0xB4, 123, 0])) == [(50.0, 37)]  # on a member: that member's notes (a third port)
    assert released(m.feed([0xB9, 123, 0], source="midi:k")) == [(70.0, None)]  # outside the zone: its own


def cut(events):
    """The voices `events` cut (All Sound Off's `sound_off`s, after the note-offs of the held
    notes; None: the notes without an id)."""
    offs = [e for e in events if e.type == "note_off"]
    assert events[len(offs):] and all(e.type == "sound_off" for e in events[len(offs):]), events
    return [e.voice for e in events[len(offs):]]


def test_all_sound_off_cuts_instead_of_releasing(params):
    """All Sound Off (CC 120) lets the held notes go (their note-offs, for OSC subscribers and the
    carry) and posts `sound_off`s, which cut at once (release tails too) where All Notes Off
    releases: on a member its voice, on a manager the manager's notes (the notes without an id)
    and every member's voice, on a plain channel the notes without an id."""
    m = MidiMapper(params, mpe="lower:3")
    for message in ([0x90, 48, 100], [0x91, 60, 100], [0x92, 64, 100], [0x99, 70, 100]):
        m.feed(message, source="midi:k")
    events = m.feed([0xB2, 120, 0], source="midi:k")
    assert released(events) == [(64.0, 3)] and cut(events) == [3] and events[1].source == "midi:k"
    assert released(m.feed([0xB2, 123, 0], source="midi:k")) == []  # its held note is gone
    events = m.feed([0xB0, 120, 0], source="midi:k")
    assert released(events) == [(48.0, None), (60.0, 2)] and cut(events) == [None, 2, 3, 4]  # the manager: the zone
    assert released(m.feed([0xB0, 123, 0], source="midi:k")) == []
    assert cut(m.feed([0xB0, 120, 0], source="midi:other")) == [None, 18, 19, 20]  # a second port's ids
    events = m.feed([0xB9, 120, 0], source="midi:k")
    assert released(events) == [(70.0, None)] and cut(events) == [None]  # outside the zone: the plain notes
    assert released(mcm(m, 1, 0)) == []  # nothing left held to let go when the zone ends
    assert cut(MidiMapper(params).feed([0xB4, 120, 0])) == [None]  # no zone
    assert m.feed([0xB4, 120, 0], source="midi:k")[0].to_json() == '{"t": 0.0, "type": "sound_off"}'
    assert m.feed([0xB1, 120, 0], source="midi:k")[0].to_json() == '{"t": 0.0, "type": "sound_off"}'
    mcm(m, 1, 3)
    assert m.feed([0xB1, 120, 0], source="midi:k")[0].to_json() == '{"t": 0.0, "type": "sound_off", "voice": 2}'


def test_reset_all_controllers(params):
    m = MidiMapper(params, mpe="lower:3")
    events = m.feed([0xB2, 121, 0])  # on a member: its voice at rest (bend 0, CC 74 centre, pressure 0)
    assert voice_events(events) == [(3, "bend", 0.0), (3, "y", 0.0), (3, "pressure", 0.0)]
    assert param_events(events) == []
    events = m.feed([0xB0, 121, 0])  # on the manager: its own controllers and every member's voice
    assert param_events(events) == [("bend", 0.0), ("sustain", 0.0)] and reset(events) == [2, 3, 4]
    for cc in ([0xB0, 101, 0], [0xB0, 100, 0], [0xB0, 121, 0]):
        m.feed(cc)
    assert m.feed([0xB0, 6, 12]) == []  # the reset deselected the RPN: its data entry sets nothing
    plain = MidiMapper(params)
    assert [(e.type, e.name, e.value) for e in plain.feed([0xB4, 121, 0])] == [
        ("param", "bend", 0.0), ("param", "sustain", 0.0)]


def test_rpn0_on_any_member_sets_its_zone_members(params):
    m = MidiMapper(params, mpe="lower:7")
    mcm(m, 16, 7)  # both zones: lower 2-8, upper 15 down to 9
    assert rpn0(m, 5, 12) == []  # on a lower member: every lower member's range
    assert voice_events(m.feed([0xE1, 0, 0]) + m.feed([0xE7, 0, 0])) == [(2, "bend", -12.0), (8, "bend", -12.0)]
    assert voice_events(m.feed([0xE8, 0, 0])) == [(9, "bend", -48.0)]  # the upper zone keeps its own
    assert rpn0(m, 14, 24) == []
    assert voice_events(m.feed([0xE8, 0, 0]) + m.feed([0xE1, 0, 0])) == [(9, "bend", -24.0), (2, "bend", -12.0)]
    assert param_events(rpn0(m, 16, 7)) == [("bend_range", 7.0)]  # on a manager: the manager's range
    assert voice_events(m.feed([0xE8, 0, 0])) == [(9, "bend", -24.0)]


def test_two_zones_route_and_end_their_own_notes(params):
    m = MidiMapper(params, mpe="lower:7")
    mcm(m, 16, 7)
    voices = {ch: m.feed([0x90 | (ch - 1), 40 + ch, 100])[0].voice for ch in range(1, 17)}
    assert voices == {ch: None if ch in (1, 16) else ch for ch in range(1, 17)}
    assert mpe_members(m.zones) == {**{ch: "lower" for ch in range(2, 9)}, **{ch: "upper" for ch in range(9, 16)}}
    assert released(m.feed([0xBF, 123, 0])) == [(56.0, None)] + [(40.0 + ch, ch) for ch in range(9, 16)]
    assert reset(m.feed([0xBF, 121, 0])) == list(range(9, 16))  # upper's reset: upper's voices only
    assert released(m.feed([0xB0, 123, 0])) == [(41.0, None)] + [(40.0 + ch, ch) for ch in range(2, 9)]
    assert released(m.feed([0xB0, 123, 0]) + m.feed([0xBF, 123, 0])) == []
    mcm(m, 1, 15)  # one zone, lower 15: channel 16 is a member and its all notes off is its own
    m.feed([0x9F, 60, 100]), m.feed([0x91, 61, 100])
    assert released(m.feed([0xBF, 123, 0])) == [(60.0, 16)]
    assert reset(m.feed([0xBF, 121, 0])) == [16]


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


def test_manager_pressure_and_slide_act_on_every_voice_of_the_zone(params):
    m = MidiMapper(params, [], mpe="lower:3")  # a map without CC 74: the manager's CC 74 is the zone's slide
    assert voice_events(m.feed([0xD1, 64])) == [(2, "pressure", 0.5039)]  # member 2's own pressure
    assert voice_events(m.feed([0xD0, 32])) == [  # the manager's: added to each member's
        (2, "pressure", 0.7559), (3, "pressure", 0.252), (4, "pressure", 0.252)]
    assert voice_events(m.feed([0xD0, 32])) == []  # no change, no events
    assert voice_events(m.feed([0xD0, 127])) == [(ch, "pressure", 1.0) for ch in (2, 3, 4)]  # clipped to 1
    assert voice_events(m.feed([0xD0, 120])) == [(3, "pressure", 0.9449), (4, "pressure", 0.9449)]  # 2 stays 1
    m.feed([0xD0, 0])
    assert voice_events(m.feed([0xB0, 74, 96])) == [(2, "y", 0.25), (3, "y", 0.25), (4, "y", 0.25)]
    assert voice_events(m.feed([0xB2, 74, 96])) == [(3, "y", 0.5)]  # the member's slide on top of the zone's
    assert voice_events(m.feed([0xB0, 74, 64])) == [(2, "y", 0.0), (3, "y", 0.25), (4, "y", 0.0)]  # 3: its own
    assert voice_events(m.feed([0xB0, 74, 96])) == [(2, "y", 0.25), (3, "y", 0.5), (4, "y", 0.25)]
    events = m.feed([0xB2, 121, 0])  # a member's reset keeps the zone's part
    assert voice_events(events) == [(3, "bend", 0.0), (3, "y", 0.25), (3, "pressure", 0.0)]
    events = m.feed([0xB0, 121, 0])  # the manager's reset: the zone's too
    assert param_events(events) == [("bend", 0.0), ("sustain", 0.0)] and reset(events) == [2, 3, 4]
    assert {value for _, _, value in voice_events(events)} == {0.0}
    assert param_events(m.feed([0xE0, 0, 96])) == [("bend", 32 * 128 / 8191)]  # the manager's bend: global, as ever
    assert voice_events(m.feed([0xD9, 64])) == []  # outside the zone: nothing
    bound = MidiMapper(params, mpe="lower:3")  # the default map binds CC 74 (z4): that wins
    assert param_events(bound.feed([0xB0, 74, 127])) + voice_events(bound.feed([0xB0, 74, 127])) == []  # takeover
    assert voice_events(bound.feed([0xB0, 74, 64])) == [] and param_events(bound.feed([0xB0, 74, 65]))[0][0] == "z4"


def test_two_keyboards_get_their_own_voice_ids(params):
    m = MidiMapper(params, [], mpe="lower")
    a = m.feed([0x91, 60, 100], source="midi:a") + m.feed([0xE1, 0, 80], source="midi:a")
    b = m.feed([0x91, 64, 100], source="midi:b") + m.feed([0xE1, 0, 48], source="midi:b")
    assert [(e.type, e.voice) for e in a] == [("note_on", 2), ("voice", 2)]  # the first keeps the channel
    assert [(e.type, e.voice) for e in b] == [("note_on", 18), ("voice", 18)]  # the second: 16 + channel
    assert voice_events(m.feed([0xD0, 127], source="midi:b")) == [(16 + ch, "pressure", 1.0) for ch in range(2, 17)]
    assert released(m.feed([0x81, 64, 0], source="midi:b")) == [(64.0, 18)]
    assert released(m.feed([0xB0, 123, 0], source="midi:a")) == [(60.0, 2)]
    for port in range(2, 7):
        assert m.feed([0x9F, 60, 100], source=f"midi:{port}")[0].voice == 16 * port + 16  # up to 112
    assert m.feed([0x9F, 60, 100], source="midi:eighth")[0].voice == 16  # past 7 ports: the first's ids
    events = mcm(m, 1, 14)  # channel 16 leaves the zone: its notes end and every port's voice rests
    assert released(events) == [(60.0, 16 * p + 16) for p in range(2, 7)] + [(60.0, 16)]
    assert reset([e for e in events if e.voice is None or e.voice % 16 == 0]) == [16 * p + 16 for p in range(7)]
    assert [e for e in voice_events(events) if e[0] % 16] == [(16 + ch, "pressure", 0.0) for ch in range(2, 16)]  # b's


def test_configuration_message_resets_its_zone_pressure_and_slide(params):
    m = MidiMapper(params, [], mpe="lower:3")
    mcm(m, 16, 3)  # upper: 15, 14, 13
    m.feed([0xD2, 64], source="midi:a")  # member 3's own pressure
    m.feed([0xD0, 32], source="midi:a"), m.feed([0xB0, 74, 96], source="midi:a")  # lower's pressure and slide
    m.feed([0xD0, 127], source="midi:b")  # a second port's lower pressure (its voices 18-20)
    m.feed([0xDF, 64], source="midi:a")  # upper's pressure
    events = mcm(m, 1, 3)  # the same layout again: nothing moves, lower's pressure and slide go to 0
    assert released(events) == [] and param_events(events) == [("bend_range", 2.0)]
    assert voice_events(events) == [
        (2, "y", 0.0), (2, "pressure", 0.0), (3, "y", 0.0), (3, "pressure", 0.5039), (4, "y", 0.0),
        (4, "pressure", 0.0), (18, "pressure", 0.0), (19, "pressure", 0.0), (20, "pressure", 0.0)]
    assert voice_events(m.feed([0xD3, 0], source="midi:a")) == [(4, "pressure", 0.0)]  # the zone's part is gone
    assert voice_events(m.feed([0xD0, 0], source="midi:a")) == []
    assert voice_events(m.feed([0xDD, 0], source="midi:a")) == [(14, "pressure", 0.5039)]  # upper kept its own
    m.feed([0xD0, 64], source="midi:a")
    events = mcm(m, 1, 13)  # lower grows over upper: 5-12 join it, 13 and 14 move from upper to lower
    voices = [e for e in events if e.type == "voice"]
    assert reset(voices[:-5]) == [*range(5, 13), *range(21, 29)]
    assert voice_events(voices[-5:]) == [  # lower's pressure (and upper's on 13, 14) gone from its members
        (2, "pressure", 0.0), (3, "pressure", 0.5039), (4, "pressure", 0.0), (13, "pressure", 0.0),
        (14, "pressure", 0.0)]
    assert voice_events(m.feed([0xD0, 0], source="midi:a")) == []
    assert voice_events(m.feed([0xDF, 0], source="midi:a")) == [(15, "pressure", 0.0)]  # upper's: not this zone's


def test_polyphonic_key_pressure_changes_nothing(params):
    """MPE keeps polyphonic key pressure off member channels (a receiver drops it there); on the
    manager and plain channels it would need a control per key, and a voice id is a channel's."""
    m = MidiMapper(params, [], mpe="lower:3")
    m.feed([0x91, 60, 100]), m.feed([0x90, 48, 100]), m.feed([0x98, 50, 100])  # a member, the manager, channel 9
    assert voice_events(m.feed([0xD1, 64])) == [(2, "pressure", 0.5039)]
    for status in (0xA1, 0xA0, 0xA8):  # on the member, the manager, a channel outside the zone
        assert m.feed([status, 60, 127]) == [] and m.feed([status, 48, 0]) == [] and m.feed([status, 50, 9]) == []
    assert voice_events(m.feed([0xD0, 32])) == [  # the member's own pressure is still the channel's
        (2, "pressure", 0.7559), (3, "pressure", 0.252), (4, "pressure", 0.252)]
    assert m.ignored == 0  # well-formed: not counted as junk


def test_merged_keyboards_share_ids_unless_their_zones_differ(params):
    """Two keyboards merged into one port are one stream: on one zone their channel 2 is one
    voice; set to the two zones, their channels (and managers) differ and so do their voices."""
    m = MidiMapper(params, [], mpe="lower")
    a = m.feed([0x91, 60, 100], source="midi:merge") + m.feed([0xE1, 0, 80], source="midi:merge")
    b = m.feed([0x91, 64, 100], source="midi:merge") + m.feed([0xE1, 0, 48], source="midi:merge")
    assert {e.voice for e in a + b} == {2}  # one voice: b's bend moves a's note
    assert released(m.feed([0xB0, 123, 0], source="midi:merge")) == [(60.0, 2), (64.0, 2)]  # either ends both
    mcm(m, 1, 7), mcm(m, 16, 7)  # keyboard a on the lower zone (2-8), b on the upper (15-9)
    a = m.feed([0x91, 60, 100], source="midi:merge")[0]
    b = m.feed([0x9E, 64, 100], source="midi:merge")[0]
    assert (a.voice, b.voice) == (2, 15)
    assert voice_events(m.feed([0xDF, 127], source="midi:merge")) == [(ch, "pressure", 1.0) for ch in range(9, 16)]
    assert released(m.feed([0xB0, 123, 0], source="midi:merge")) == [(60.0, 2)]  # a's All Notes Off: a's notes
