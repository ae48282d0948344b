"""Parameter registry and event files."""

import dataclasses
import json
import math

import pytest

from livegen.engine import events
from livegen.engine.params import ParamStore
from livegen.errors import ParameterError


def test_store_has_engine_and_latent_parameters_with_units():
    store = ParamStore.for_model(8)
    assert {"x", "y", "gain", "glide", "drift", "voices", "quality", "ceiling"} <= set(store.names)
    assert [n for n in store.names if n.startswith("z")] == [f"z{i}" for i in range(8)]
    assert store.spec("gain").unit == "dB"
    assert store.get("ceiling") == pytest.approx(-0.3)


def test_out_of_range_values_are_clamped_and_reported():
    store = ParamStore.for_model(2)
    assert store.set("x", 1.7) == (1.0, True)
    assert store.set("x", 0.25) == (0.25, False)
    assert store.set("voices", 3.4) == (3.0, True)
    assert store.get("x") == 0.25


@pytest.mark.parametrize("bad", [math.nan, math.inf, "loud", None])
def test_non_numbers_are_refused_with_the_name(bad):
    store = ParamStore.for_model(2)
    with pytest.raises(ParameterError, match="gain"):
        store.set("gain", bad)
    assert store.get("gain") == -6.0


def test_a_stamped_event_is_a_copy_with_its_own_extra():
    """What the engine hands its listeners: the event's fields with the sample it took effect at;
    stamping the copy (a clamp, a morph's path) leaves the event as it was."""
    event = events.Event("param", t=0.5, name="x", value=1.7, source="osc", extra={"id": 7}, payload=object())
    applied = event.stamped(24064, 24064 / 48000)
    assert applied == dataclasses.replace(event, sample=24064, t=24064 / 48000, extra={"id": 7})
    assert applied.payload is event.payload and applied.source == "osc"
    applied.value = 1.0
    applied.extra["clamped_from"] = 1.7
    assert event.value == 1.7 and event.extra == {"id": 7} and event.sample is None
    assert json.loads(applied.to_json()) == {"t": 24064 / 48000, "type": "param", "name": "x", "value": 1.0,
                                             "sample": 24064, "id": 7, "clamped_from": 1.7}


def test_unknown_parameter_lists_known_ones():
    with pytest.raises(ParameterError, match="unknown parameter 'volume'.*gain"):
        ParamStore.for_model(2).set("volume", 1)


def test_smoothing_approaches_target_without_overshoot():
    store = ParamStore.for_model(2)
    store.set("gain", 0.0)
    seen = []
    for _ in range(200):
        store.advance(0.001)
        seen.append(store.value("gain"))
    assert all(a <= b for a, b in zip(seen, seen[1:]))
    assert -6.0 < seen[0] < seen[-1] <= 0.0
    assert seen[-1] == pytest.approx(0.0, abs=1e-3)


def test_event_file_round_trip(tmp_path):
    path = tmp_path / "events.jsonl"
    written = [events.param("z0", -1.2, t=0.5), events.note_on(60, 100, t=1.0), events.note_off(60, t=2.0)]
    events.write_events(path, written, header={"seed": 3})
    header, read = events.read_events(path)
    assert header == {"type": "header", "seed": 3}
    assert [(e.type, e.t) for e in read] == [("param", 0.5), ("note_on", 1.0), ("note_off", 2.0)]
    assert read[0].name == "z0" and read[0].value == -1.2
    assert read[1].pitch == 60 and read[1].velocity == 100


def test_voice_events_round_trip_with_their_voice_ids(tmp_path):
    path = tmp_path / "events.jsonl"
    written = [events.voice_control(2, "bend", -0.5, t=0.9), events.note_on(64, 90, t=1.0, voice=2),
               events.voice_control(2, "pressure", 0.75, t=1.5), events.note_off(64, t=2.0, voice=2)]
    events.write_events(path, written)
    _, read = events.read_events(path)
    assert [(e.type, e.voice, e.name, e.value) for e in read] == [
        ("voice", 2, "bend", -0.5), ("note_on", 2, None, None), ("voice", 2, "pressure", 0.75), ("note_off", 2, None, None)]
    assert read[1].pitch == 64 and read[1].extra == {}
    plain = events.event_from_record(json.loads(events.note_on(60, 100).to_json()))
    assert plain.voice is None and "voice" not in events.note_on(60, 100).to_json()


@pytest.mark.parametrize("line, message", [
    ('{"t": 1, "type": "nope"}', "field 'type'"),
    ('{"t": -1, "type": "note_off", "pitch": 60}', "field 't'"),
    ('{"t": 1, "type": "note_on", "pitch": 60}', "field 'velocity'"),
    ('{"t": 1, "type": "note_on", "pitch": 200, "velocity": 3}', "field 'pitch'"),
    ('{"t": 1, "type": "param", "name": "x", "value": "high"}', "field 'value'"),
    ('{"t": 1, "type": "preset", "action": "delete", "slot": 1}', "field 'action'"),
    ('{"t": 1, "type": "param", "name": "x", "value": 1', "not valid JSON"),
    ('{"t": 1, "type": "preset", "action": "store", "slot": 1, "values": {"x": "high"}}', "field 'values.x'"),
    ('{"t": 1, "type": "preset", "action": "store", "slot": 1, "values": [0.5]}', "field 'values'"),
    ('{"t": 1, "type": "preset", "action": "recall", "slot": 1, "values": {"x": 0.5}}', "belongs to a preset store"),
    ('{"t": 1, "type": "voice", "voice": 2, "name": "bend"}', "field 'value'"),
    ('{"t": 1, "type": "voice", "voice": 128, "name": "bend", "value": 1}', "ids are whole numbers 0..127"),
    ('{"t": 1, "type": "voice", "voice": 2, "name": "z0", "value": 1}', "moves one of bend, x, y, pressure"),
    ('{"t": 1, "type": "voice", "voice": 2, "name": "x", "value": 1.5}', "voice x 1.5 is out of range; give -1..1"),
    ('{"t": 1, "type": "param", "name": "x", "value": 1, "voice": 3}', "belongs to a note, voice or sound_off event"),
])
def test_bad_line_names_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"t": 0, "type": "param", "name": "x", "value": 0.1}) + "\n" + line + "\n")
    with pytest.raises(ParameterError) as info:
        events.read_events(path)
    assert f"{path}:2" in str(info.value)
    assert message in str(info.value)


def test_truncated_last_line_is_dropped_with_a_warning_when_tolerated(tmp_path):
    path = tmp_path / "session.jsonl"
    path.write_text('{"t": 0.1, "type": "note_on", "pitch": 60, "velocity": 90}\n{"t": 0.2, "type": "no')
    with pytest.warns(UserWarning, match="incomplete"):
        _, read = events.read_events(path, tolerate_truncation=True)
    assert len(read) == 1
    with pytest.raises(ParameterError):
        events.read_events(path)


def test_whole_bad_last_line_is_refused_even_when_truncation_is_tolerated(tmp_path):
    """A crash cuts a line before its newline; a bad line that ends with one was written so."""
    path = tmp_path / "typo.jsonl"
    path.write_text('{"t": 0.1, "type": "note_on", "pitch": 60, "velocity": 90}\nhello world\n')
    with pytest.raises(ParameterError, match=f"{path}:2: not valid JSON"):
        events.read_events(path, tolerate_truncation=True)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ParameterError, match="cannot read event file"):
        events.read_events(tmp_path / "missing.jsonl")
