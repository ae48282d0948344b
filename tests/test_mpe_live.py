"""An MPE keyboard into `livegen play --headless --mpe` on jackd dummy: two notes on two member
channels, bent apart, sound at their two bent pitches in the recording; the session log holds
the voice events that bent them and renders offline to the same samples."""

from __future__ import annotations


import numpy as np
import soundfile

from conftest import require
from helpers import jack_midi_out, take_rendered_again
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
    play.send("/livegen/param/drone", 0)
    assert play.get_when("drone", 0.0) == 0.0
    play.send("/livegen/record", 1)
    status = play.wait_status(lambda s: s.get("record_seconds", 0) > 0, 30, "the recording under way")
    assert status["midi_mpe"] == "lower 15", status
    out = jack_midi_out("seaboard")
    try:
        # As an MPE keyboard plays: each channel's bend just before its note. 60 up 2 -> 62;
        # 69 down 3 -> 66. The unbent pitches must not sound.
        for message in (_bend(2, 2.0), [0xB1, 74, 64], [0xD1, 60], [0x91, 60, 110],
                        _bend(3, -3.0), [0xB2, 74, 64], [0xD2, 60], [0x92, 69, 110]):
            out.send_message(message)
        play.wait_status(lambda s: s.get("voices") == 2, 30, "the two MPE notes sounding")
        start = play.status()["record_seconds"]
        play.wait_status(lambda s: s.get("record_seconds", 0) > start + 1.5, 60, "1.5 s of the two notes recorded")
        out.send_message([0x81, 60, 0])
        out.send_message([0x82, 69, 0])
        play.send("/livegen/record", 0)
        play.wait_status(lambda s: not s.get("recording"), 30, "the recording stopped")
    finally:
        out.close_port()
    assert play.stop() == 0, play.log
    (wav,) = takes.glob("*.wav")
    header, events = read_events(wav.with_suffix(".jsonl"))
    voiced = [(e.type, e.voice, e.name, round(e.value, 2) if e.type == "voice" else e.pitch)
              for e in events if e.voice is not None]
    assert voiced[:8] == [("voice", 2, "bend", 2.0), ("voice", 2, "y", 0.0), ("voice", 2, "pressure", 0.47),
                          ("note_on", 2, None, 60.0), ("voice", 3, "bend", -3.0), ("voice", 3, "y", 0.0),
                          ("voice", 3, "pressure", 0.47), ("note_on", 3, None, 69.0)], voiced
    y, rate = soundfile.read(wav, dtype="float32", always_2d=True)
    assert rate == SR
    # The last second with both notes held: from the second note's stamped sample on, past its attack.
    both = next(e.sample for e in events if e.type == "note_on" and e.voice == 3) - header["start_sample"]
    part = y[both + SR // 4: both + SR // 4 + SR, 0].astype(np.float64)
    assert len(part) == SR and np.abs(part).max() > 1e-3, (len(part), np.abs(y).max())
    n = 8 * len(part)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    db = 20 * np.log10(np.abs(np.fft.rfft(part * np.hanning(len(part)), n)) + 1e-9)
    for played, sounding in ((60, 62), (69, 66)):
        found, level = _peak(freqs, db, _hz(sounding), 100)
        cents = 1200 * np.log2(found / _hz(sounding))
        assert abs(cents) < 20, (sounding, found, cents)
        unbent = _peak(freqs, db, _hz(played), 30)[1]
        print(f"pitch {played} bent to {sounding}: {found:.1f} Hz ({cents:+.1f} cents), "
              f"{level - unbent:.1f} dB over {played}'s own")
        assert level > unbent + 20, (played, level, unbent)
    recorded, rendered = take_rendered_again(wav)
    assert np.array_equal(rendered, recorded), np.flatnonzero(rendered != recorded)[:5]
