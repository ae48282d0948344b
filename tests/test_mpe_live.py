"""An MPE keyboard into `livegen play --headless --mpe` on jackd dummy: two notes on two member
channels, bent apart, sound at their two bent pitches in the recording; the session log holds
the voice events that bent them and renders offline to the same samples."""

from __future__ import annotations


import numpy as np
import soundfile

from conftest import require
from helpers import jack_midi_out, take_rendered_again, wait_jack_connected
from livegen.engine.events import read_events

SR = 48000


def _hz(pitch: float) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def _peak(freqs, db, hz, cents):
    """(frequency, dB) of the strongest bin within `cents` of `hz`."""
    near = (freqs > hz * 2 ** (-cents / 1200)) & (freqs < hz * 2 ** (cents / 1200))
    i = np.argmax(db[near])
    return freqs[near][i], db[near][i]


def _bend(channel: int, semitones: float, bend_range: float = 48.0) -> list[int]:
    raw = round(8192 + semitones / bend_range * 8192)
    return [0xE0 | (channel - 1), raw & 0x7F, raw >> 7]


def test_two_mpe_notes_bent_apart_sound_at_their_bent_pitches(live_play, tmp_path):
    import rtmidi

    require(rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api(), "python-rtmidi built with JACK support")
    takes = tmp_path / "takes"
    play = live_play("--mpe", "--record-dir", str(takes), "--samplerate", str(SR))
    out = jack_midi_out("seaboard")
    try:
        # As an MPE keyboard plays: each channel's bend just before its note. 60 up 2 -> 62;
        # 69 down 3 -> 66. The unbent pitches must not sound.
        status = _record_two_notes(
            play, lambda: [out.send_message(message) for message in (
                _bend(2, 2.0), [0xB1, 74, 64], [0xD1, 60], [0x91, 60, 110],
                _bend(3, -3.0), [0xB2, 74, 64], [0xD2, 60], [0x92, 69, 110])],
            lambda: [out.send_message(message) for message in ([0x81, 60, 0], [0x82, 69, 0])])
        assert status["midi_mpe"] == "lower 15", status
    finally:
        out.delete()
    wav, header, events, voiced = _take(play, takes)
    assert voiced[:8] == [("voice", 2, "bend", 2.0), ("voice", 2, "y", 0.0), ("voice", 2, "pressure", 0.47),
                          ("note_on", 2, None, 60.0), ("voice", 3, "bend", -3.0), ("voice", 3, "y", 0.0),
                          ("voice", 3, "pressure", 0.47), ("note_on", 3, None, 69.0)], voiced
    both = next(e.sample for e in events if e.type == "note_on" and e.voice == 3)  # the last second with both
    _assert_sounding(wav, header, both, ((60, 62), (69, 66)))


def _record_two_notes(play, start, end) -> dict:
    """Drone off, recording on, `start()` (two notes), 1.5 s of them, `end()`, recording off:
    the status once the recording was under way."""
    play.send("/livegen/param/drone", 0)
    assert play.get_when("drone", 0.0) == 0.0
    play.send("/livegen/record", 1)
    status = play.wait_status(lambda s: s.get("record_seconds", 0) > 0, 30, "the recording under way")
    start()
    play.wait_status(lambda s: s.get("voices") == 2, 30, "the two notes sounding")
    since = play.status()["record_seconds"]
    play.wait_status(lambda s: s.get("record_seconds", 0) > since + 1.5, 60, "1.5 s of the two notes recorded")
    end()
    play.send("/livegen/record", 0)
    play.wait_status(lambda s: not s.get("recording"), 30, "the recording stopped")
    return status


def _take(play, takes):
    """Stop `play`; its one take: (wav, header, events, the voiced events as tuples)."""
    assert play.stop() == 0, play.log
    (wav,) = takes.glob("*.wav")
    header, events = read_events(wav.with_suffix(".jsonl"))
    voiced = [(e.type, e.voice, e.name, round(e.value, 2) if e.type == "voice" else e.pitch)
              for e in events if e.voice is not None]
    return wav, header, events, voiced


def _assert_sounding(wav, header, sample, pitches):
    """From the stamped `sample` on, past the attack, each (played, sounding) pair of `pitches`
    sounds at its bent pitch within 20 cents, 20 dB over its unbent one; the take re-renders
    sample for sample."""
    y, rate = soundfile.read(wav, dtype="float32", always_2d=True)
    assert rate == SR
    start = sample - header["start_sample"]
    part = y[start + SR // 4: start + SR // 4 + SR, 0].astype(np.float64)
    assert len(part) == SR and np.abs(part).max() > 1e-3, (len(part), np.abs(y).max())
    n = 8 * len(part)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    db = 20 * np.log10(np.abs(np.fft.rfft(part * np.hanning(len(part)), n)) + 1e-9)
    for played, sounding in pitches:
        found, level = _peak(freqs, db, _hz(sounding), 100)
        cents = 1200 * np.log2(found / _hz(sounding))
        assert abs(cents) < 20, (sounding, found, cents)
        unbent = _peak(freqs, db, _hz(played), 30)[1]
        print(f"pitch {played} bent to {sounding}: {found:.1f} Hz ({cents:+.1f} cents), "
              f"{level - unbent:.1f} dB over {played}'s own")
        assert level > unbent + 20, (played, level, unbent)
    recorded, rendered = take_rendered_again(wav)
    assert np.array_equal(rendered, recorded), np.flatnonzero(rendered != recorded)[:5]


def test_two_mpe_keyboards_on_one_channel_are_two_voices(live_play, tmp_path):
    """Two MPE keyboards (two JACK MIDI ports, `--midi-in` each) both play member channel 2: the
    second's notes are voices 16 + channel, so each note keeps its own bend (one voice id, as
    before, bent both notes by the last bend)."""
    import rtmidi

    require(rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api(), "python-rtmidi built with JACK support")
    keyboards = {name: rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name) for name in ("kbd-a", "kbd-b")}
    for name, out in keyboards.items():
        out.open_virtual_port(name)
    takes = tmp_path / "takes"
    try:
        play = live_play("--mpe", "--midi-in", "kbd-a", "--midi-in", "kbd-b", "--record-dir", str(takes),
                         "--samplerate", str(SR))
        play.wait_status(lambda s: s.get("midi_missing") == "" and "kbd-b" in s.get("midi_connected", ""), 30,
                         "both keyboards connected")
        for name in keyboards:
            wait_jack_connected(f"{name}:{name}")
        a, b = keyboards["kbd-a"], keyboards["kbd-b"]
        # 60 up 2 -> 62 on one keyboard; 69 down 3 -> 66 on the other; then the first keyboard's
        # manager pressure: its zone's voices alone
        _record_two_notes(play, lambda: [out.send_message(message) for out, message in (
            (a, _bend(2, 2.0)), (a, [0x91, 60, 110]), (b, _bend(2, -3.0)), (b, [0x91, 69, 110]), (a, [0xD0, 32]))],
            lambda: (a.send_message([0x81, 60, 0]), b.send_message([0x81, 69, 0])))
    finally:
        for out in keyboards.values():
            out.delete()
    wav, header, events, voiced = _take(play, takes)
    # the port whose message arrives first keeps ids = channels; the two ports race, so either may
    ids = {pitch: next(v[1] for v in voiced if v[0] == "note_on" and v[3] == pitch) for pitch in (60.0, 69.0)}
    assert sorted(ids.values()) == [2, 18], voiced
    for bend, pitch in ((2.0, 60.0), (-3.0, 69.0)):
        voice = ids[pitch]
        played = [("voice", voice, "bend", bend), ("note_on", voice, None, pitch)]
        assert [v for v in voiced if v[1] == voice and v[2] != "pressure"][:2] == played, voiced
    zone_wide = [e.voice for e in events if e.type == "voice" and e.name == "pressure"]
    assert zone_wide == list(range(ids[60.0], ids[60.0] + 15)), zone_wide  # kbd-a's zone alone
    both = max(e.sample for e in events if e.type == "note_on" and e.voice in ids.values())
    _assert_sounding(wav, header, both, ((60, 62), (69, 66)))
