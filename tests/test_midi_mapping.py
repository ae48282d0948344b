"""The pure MIDI layer: raw messages in, events out (no ports)."""

from __future__ import annotations

import pytest

from livegen.control.mapping import DEFAULT_MAP, Mapping, MidiMapper, load_map, save_map
from livegen.engine.params import ParamStore
from livegen.errors import ParameterError


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def params():
    return ParamStore.for_model(8)


def apply(params, events):
    """What the engine does with param events (enough for soft takeover to see them)."""
    for e in events:
        if e.type == "param":
            params.set(e.name, e.value)
    return events


def values(events):
    return [(e.name, round(e.value, 4)) for e in events if e.type == "param"]


def test_notes_velocity_and_note_off_forms(params):
    m = MidiMapper(params)
    on, = m.feed([0x90, 60, 100], source="midi:k")
    assert (on.type, on.pitch, on.velocity, on.source) == ("note_on", 60.0, 100, "midi:k")
    assert m.feed([0x90, 60, 0])[0].type == "note_off"
    assert m.feed([0x80, 61, 64])[0].type == "note_off"
    m.feed([0x91, 62, 10], source="s")
    m.feed([0x91, 63, 10], source="s")
    offs = m.feed([0xB1, 123, 0], source="s")
    assert sorted(e.pitch for e in offs) == [62.0, 63.0] and all(e.type == "note_off" for e in offs)


def test_sustain_bend_program_and_rpn_bend_range(params):
    m = MidiMapper(params)
    assert values(m.feed([0xB0, 64, 127])) == [("sustain", 1.0)]
    assert values(m.feed([0xB0, 64, 0])) == [("sustain", 0.0)]
    assert values(m.feed([0xE0, 0, 64])) == [("bend", 0.0)]
    assert values(m.feed([0xE0, 127, 127])) == [("bend", 1.0)]
    assert values(m.feed([0xE0, 0, 0])) == [("bend", -1.0)]
    preset, = m.feed([0xC0, 7])
    assert (preset.type, preset.action, preset.slot) == ("preset", "recall", 7)
    m.feed([0xB0, 101, 0]), m.feed([0xB0, 100, 0])
    assert values(m.feed([0xB0, 6, 12])) == [("bend_range", 12.0)]
    assert values(m.feed([0xB0, 38, 50])) == [("bend_range", 12.5)]


def test_reset_all_controllers_leaves_a_mapped_cc64_alone(params):
    m = MidiMapper(params, [Mapping("drift", cc=64, takeover=False)])
    assert values(m.feed([0xB0, 64, 127])) == [("drift", 1.0)]
    assert values(m.feed([0xB0, 121, 0])) == [("bend", 0.0)]  # sustain is not the pedal's here
    only_ch2 = MidiMapper(params, [Mapping("drift", cc=64, channel=2, takeover=False)])
    assert values(only_ch2.feed([0xB0, 121, 0])) == [("bend", 0.0), ("sustain", 0.0)]


def test_default_map_latent_knobs_with_soft_takeover(params):
    clock = Clock()
    m = MidiMapper(params, clock=clock)
    # z0 sits at 0 (= knob 63.5): a knob at 120 does not jump it...
    assert m.feed([0xB0, 70, 120]) == []
    # ...until the knob reaches or crosses the current value
    assert apply(params, m.feed([0xB0, 70, 60]))
    assert values(apply(params, m.feed([0xB0, 70, 127]))) == [("z0", 4.0)]
    # another source moves z0: the knob lets go until it gets there again
    clock.t += 1
    params.set("z0", -3.0)
    assert m.feed([0xB0, 70, 126]) == []
    assert apply(params, m.feed([0xB0, 70, 5]))  # crossed -3 (knob ~ 7.9)
    assert params.get("z0") == pytest.approx(-4 + 8 * 5 / 127)


def test_fourteen_bit_cc_and_msb_alone(params):
    m = MidiMapper(params, [Mapping("x", cc=16, takeover=False)])
    assert values(m.feed([0xB0, 16, 127])) == [("x", 1.0)]  # 7-bit controller: full range
    assert values(m.feed([0xB0, 16, 64])) == [("x", round(64 / 127, 4))]
    got = values(m.feed([0xB0, 48, 1]))  # LSB: now a 14-bit controller
    assert got == [("x", round(((64 << 7) | 1) / 16383, 4))]
    assert values(m.feed([0xB0, 16, 127])) == [("x", round((127 << 7) / 16383, 4))]
    assert values(m.feed([0xB0, 48, 127])) == [("x", 1.0)]
    e = m.feed([0xB0, 16, 32])[0].value
    f = m.feed([0xB0, 48, 5])[0].value
    assert f == pytest.approx(((32 << 7) | 5) / 16383)
    assert abs(f - e) < 1 / 128


def test_nrpn_seven_and_fourteen_bit_and_increment(params):
    m = MidiMapper(params, [Mapping("drift", nrpn=(3 << 7) | 10, takeover=False, step=0.1)])
    m.feed([0xB0, 99, 3])
    m.feed([0xB0, 98, 10])
    assert values(m.feed([0xB0, 6, 127])) == [("drift", 1.0)]
    assert values(m.feed([0xB0, 6, 64])) == [("drift", round(64 / 127, 4))]
    assert values(m.feed([0xB0, 38, 0])) == [("drift", round((64 << 7) / 16383, 4))]
    params.set("drift", 0.5)
    m.clock = lambda: 100.0  # our posted value is stale: the engine's is current
    assert values(m.feed([0xB0, 96, 0])) == [("drift", 0.6)]
    # NRPN data entry does not leak into a CC 6 mapping, and the null RPN deselects
    m.feed([0xB0, 101, 127]), m.feed([0xB0, 100, 127])
    assert m.feed([0xB0, 6, 1]) == []


@pytest.mark.parametrize("mode, up, down", [
    ("relative-twos", 1, 127), ("relative-offset", 65, 63), ("relative-sign", 1, 65)])
def test_relative_encoders(params, mode, up, down):
    clock = Clock()
    m = MidiMapper(params, [Mapping("z1", cc=20, mode=mode, step=1 / 8)], clock=clock)
    assert values(m.feed([0xB0, 20, up])) == [("z1", 1.0)]
    assert values(m.feed([0xB0, 20, up])) == [("z1", 2.0)]  # builds on its own pending value
    assert values(m.feed([0xB0, 20, down])) == [("z1", 1.0)]
    for _ in range(40):
        last = m.feed([0xB0, 20, up])
    assert values(last) == [("z1", 4.0)]


def test_range_and_curve(params):
    m = MidiMapper(params, [Mapping("gain", cc=7, min=-30.0, max=0.0, curve="exp", takeover=False),
                            Mapping("drift", cc=8, min=1.0, max=0.0, takeover=False)])
    assert values(m.feed([0xB0, 7, 0])) == [("gain", -30.0)]
    assert values(m.feed([0xB0, 7, 127])) == [("gain", 0.0)]
    mid = m.feed([0xB0, 7, 64])[0].value
    assert mid == pytest.approx(-30 + 30 * (64 / 127) ** 2)
    assert values(m.feed([0xB0, 8, 127])) == [("drift", 0.0)]  # inverted


def test_channel_filter_and_mapping_channel(params):
    m = MidiMapper(params, [Mapping("z0", cc=70, channel=2, takeover=False)], channel=2)
    assert m.feed([0x90, 60, 100]) == []  # channel 1 filtered
    assert m.feed([0x91, 60, 100])[0].type == "note_on"
    assert values(m.feed([0xB1, 70, 127])) == [("z0", 4.0)]


def test_learn_binds_next_cc_and_nrpn(params):
    learned = []
    m = MidiMapper(params, [])
    m.arm("drift", lambda p, c: learned.append((p, c)))
    assert m.feed([0xB3, 33, 10]) == []
    assert learned == [("drift", "CC 33 ch 4")] and m.armed is None
    m.mappings[-1].takeover = False
    assert values(m.feed([0xB3, 33, 127])) == [("drift", 1.0)]
    assert m.feed([0xB0, 33, 127]) == []  # other channel
    m.arm("z2")
    m.feed([0xB0, 99, 1]), m.feed([0xB0, 98, 2])
    m.feed([0xB0, 6, 64])
    assert m.mappings[-1].nrpn == 130 and m.mappings[-1].param == "z2"
    with pytest.raises(ParameterError):
        m.arm("nope")


@pytest.mark.parametrize("junk", [
    [], [0xF0, 1, 2, 3, 0xF7], [0xF8], [0xFE], [0xFF], [0xB0, 1], [0x90, 60], [0xB0, 1, 2, 3],
    [60, 100], [0xB0, 200, 1], [0xC0], [0xE0, 0, 128], [0xF2, 1, 2], b"\x90\x80\x80", [0x90, 60, 100, 1],
])
def test_ignored_without_harm(params, junk):
    m = MidiMapper(params)
    before = params.snapshot()
    assert m.feed(junk) == []
    assert params.snapshot() == before


def test_map_file_round_trip_and_errors(tmp_path, params):
    path = tmp_path / "map.toml"
    maps = [Mapping("z0", cc=21, channel=1, min=-2.0, max=2.0, curve=1.5),
            Mapping("z1", nrpn=300, mode="relative-twos", step=0.05, takeover=False)]
    save_map(path, maps, {"channel": 3})
    loaded, options = load_map(path)
    assert loaded == maps and options == {"channel": 3}
    assert "# livegen MIDI map" in path.read_text()
    path.write_text('[[map]]\nparam = "z0"\ncc = 200\n')
    with pytest.raises(ParameterError, match=r"#1.*cc 200"):
        load_map(path)
    path.write_text("[[map]\n")
    with pytest.raises(ParameterError, match="not valid TOML"):
        load_map(path)
    with pytest.raises(ParameterError, match="--midi-map"):
        load_map(tmp_path / "missing.toml")
    path.write_bytes(b"RIFF\x80\xff not text")  # a WAV given by mistake
    with pytest.raises(ParameterError, match="not a UTF-8 text file"):
        load_map(path)
    assert len(DEFAULT_MAP) >= 8
