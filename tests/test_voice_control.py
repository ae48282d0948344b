"""Per-voice control (MPE keyboards, per-touch OSC) in the engine's real renders: each note with a
voice id plays its id's bend and its own latent point, is released by its id, leaves its id when
the id starts another note while it rings, renders the same twice, is carried to a new engine, and
a take on the sound server re-renders exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import take_rendered_again, wait_for
from livegen.bench.latency import detect_change
from livegen.data.pitch import TRACK_HOP, TRACK_RATE, track_f0
from livegen.engine import events as ev
from livegen.engine.carry import CarryOver
from livegen.engine.core import Engine
from livegen.engine.notes import NotesSource, spectral_engine
from livegen.engine.voices import DETACHED, DRONE
from livegen.errors import ParameterError
from livegen.model import default_model_path, load_model
from livegen.server.client import RemoteEngine
from livegen.session.wiring import SessionControl, engine_header

torch.set_num_threads(1)
SR = 48000
SETTLE = 0.3
"""Seconds of each render left out of the spectra (the notes' attacks)."""


@pytest.fixture(scope="module")
def model():
    """The bundled model: its pad moves the timbre as a performer hears it."""
    return load_model(default_model_path())


def _render(model, script, seconds=1.2, seed=1):
    engine = spectral_engine(model, samplerate=SR, seed=seed)
    engine.schedule([ev.param("drone", 0), *script])
    return engine.render(seconds), engine


def _spectrum(y, settle=SETTLE):
    """dB magnitude spectrum of `y` after `settle` seconds (the attacks), zero-padded for fine
    frequency steps."""
    y = y[int(settle * SR):]
    n = 8 * len(y)
    return np.fft.rfftfreq(n, 1 / SR), 20 * np.log10(np.abs(np.fft.rfft(y * np.hanning(len(y)), n)) + 1e-9)


def _peak(spectrum, hz, cents):
    """(frequency, dB) of the strongest bin within `cents` of `hz`."""
    freqs, db = spectrum
    near = (freqs > hz * 2 ** (-cents / 1200)) & (freqs < hz * 2 ** (cents / 1200))
    i = np.argmax(db[near])
    return freqs[near][i], db[near][i]


def _hz(pitch):
    return 440.0 * 2 ** ((pitch - 69) / 12)


def _harmonics(spectrum, pitch, count=8):
    """dB of the first `count` partials of a note of `pitch`."""
    return np.array([_peak(spectrum, _hz(pitch) * k, 30)[1] for k in range(1, count + 1)])


def test_a_voice_bend_moves_its_note_alone(model):
    """Two notes, one voice bent +2 semitones before its note (as an MPE keyboard sends it): the
    render holds both pitches, the bent one and the other as played, and not the bent one's own."""
    y, engine = _render(model, [ev.voice_control(2, "bend", 2.0), ev.note_on(60, 100, voice=2),
                                ev.note_on(69, 100, voice=3)])
    spectrum = _spectrum(y)
    for pitch in (62, 69):
        found, level = _peak(spectrum, _hz(pitch), 100)
        assert abs(1200 * np.log2(found / _hz(pitch))) < 20, (pitch, found)
        assert level > _peak(spectrum, _hz(60), 30)[1] + 30  # pitch 60 itself does not sound
    assert engine.rejected == 0 and engine.status()["voices"] == 2


def test_a_voice_offset_changes_its_own_spectrum_not_the_others(model):
    """A pad offset on one voice moves that voice's latent point: its partials change by many dB,
    the other voice's (a pitch whose partials do not meet the first's) hardly."""
    notes = [ev.note_on(48, 100, voice=2), ev.note_on(55.5, 100, voice=3)]
    plain, _ = _render(model, notes)
    moved, engine = _render(model, [ev.voice_control(3, "x", 0.5), ev.voice_control(3, "y", -0.4), *notes])
    before, after = _spectrum(plain), _spectrum(moved)
    still = np.abs(_harmonics(after, 48) - _harmonics(before, 48)).mean()
    changed = np.abs(_harmonics(after, 55.5) - _harmonics(before, 55.5)).mean()
    assert changed > 6 and changed > 3 * still, (changed, still)
    # The pad shows the moved voice beside the performer's point (0.5, 0.5), clipped to the pad.
    assert engine.status()["voices_xy"] == [0.5, 0.5, 1.0, 0.1]


def test_offsets_and_pressure_glide_and_bend_jumps(model):
    """A voice's x, y and pressure glide to a new value over about 15 ms (an MPE stream's steps do
    not zipper); its bend is there at the next hop."""
    engine = spectral_engine(model, samplerate=SR, seed=1)
    bank = engine.find(NotesSource).voices
    engine.post(ev.note_on(60, 100, voice=7))
    engine.step()
    for name, value in (("x", 0.5), ("pressure", 1.0), ("bend", 3.0)):
        engine.post(ev.voice_control(7, name, value))
    engine.step()
    (slot,) = np.flatnonzero(bank.vid == 7)
    bend, x, y, pressure = bank.smoothed[slot]
    assert bend == 3.0 and 0.1 < x / 0.5 < 0.5 and 0.1 < pressure < 0.5 and y == 0.0
    engine.render(0.1)
    assert bank.smoothed[slot] == pytest.approx([3.0, 0.5, 0.0, 1.0], abs=0.01)
    engine.render(0.2)
    assert list(bank.smoothed[slot]) == [3.0, 0.5, 0.0, 1.0]  # there exactly: no endless tail


def test_pressure_swells_its_note(model):
    """Pressure moves a soft note's velocity towards full: the model plays it louder."""
    def level(pressure):
        y, _ = _render(model, [ev.voice_control(1, "pressure", pressure), ev.note_on(60, 40, voice=1)], seconds=1.0)
        return 10 * np.log10(np.mean(y[int(SETTLE * SR):] ** 2))

    soft, half, full = level(0.0), level(0.5), level(1.0)
    assert soft + 6 < half < full, (soft, half, full)


def test_a_note_off_by_voice_id_releases_the_bent_note_and_no_other(model):
    """A note-off names its voice: it releases that voice's note (at the pitch it was pressed,
    whatever its bend), not a plain note of the same pitch nor another voice's."""
    engine = spectral_engine(model, samplerate=SR, seed=1)
    bank = engine.find(NotesSource).voices
    for event in (ev.voice_control(4, "bend", 2.0), ev.note_on(60, 100, voice=4), ev.note_on(60, 90),
                  ev.note_on(60, 80, voice=5)):
        engine.post(event)
    engine.step()

    def held():
        return sorted((int(bank.vid[s]), bool(bank.key_down[s])) for s in bank.sounding_notes())

    assert held() == [(-1, True), (4, True), (5, True)]
    engine.post(ev.note_off(62, voice=4))  # the bent pitch is not the note's
    engine.post(ev.note_off(60, voice=4))
    engine.step()
    assert held() == [(-1, True), (4, False), (5, True)]
    assert engine.status()["voices_xy"] == [0.5, 0.5, 0.5, 0.5]  # the released voice still sounds
    engine.post(ev.note_off(60))
    engine.post(ev.note_off(60, voice=5))
    engine.render(4.5)  # past the longest release
    assert held() == [] and engine.status()["voices_xy"] == []


HOP_SECONDS = 256 / SR
"""The engine's hop at `SR`: events at multiples of it land on hop boundaries."""


def _tail_script(setup_hops_early):
    """Voice 2's note 48 released at 0.5 s and bent +2 while it rings; at hop 132 (0.704 s) voice 2
    starts note 86, its channel's bend set to +7 `setup_hops_early` hops before."""
    start = 132 * HOP_SECONDS
    return [ev.note_on(48, 110, voice=2), ev.note_off(48, voice=2, t=0.5), ev.voice_control(2, "bend", 2.0, t=0.55),
            ev.voice_control(2, "bend", 7.0, t=start - setup_hops_early * HOP_SECONDS),
            ev.note_on(86, 60, voice=2, t=start)]


def _low_pitch(y, start, end):
    """Median MIDI pitch of `y` between `start` and `end` seconds, tracked by the project's tracker
    (`livegen.data.pitch`) under 900 Hz: the tail (partials of pitch 48-55) without note 86 (1175 Hz
    and up)."""
    spectrum = np.fft.rfft(y)
    spectrum[np.fft.rfftfreq(len(y), 1 / SR) > 900] = 0
    low = np.fft.irfft(spectrum, len(y))[::SR // TRACK_RATE]  # nothing above 900 Hz to alias
    f0, voiced, _ = track_f0(low, sr=TRACK_RATE, hop=TRACK_HOP)
    frames = np.arange(len(f0)) * TRACK_HOP / TRACK_RATE
    chosen = f0[(frames >= start) & (frames <= end) & voiced]
    assert len(chosen) >= 3, (start, end, f0)
    return float(np.median(69 + 12 * np.log2(chosen / 440.0)))


@pytest.mark.parametrize("setup_hops_early", [0, 1])
def test_a_release_tail_leaves_its_id_when_the_id_starts_a_new_note(model, setup_hops_early):
    """An MPE keyboard reuses a member channel while its last note still rings: the tail follows
    the channel's bend while it rings alone (48 bent +2: 50), and keeps that pitch once the new
    note starts, not the new note's bend (+7: 55), also when the new note's controls come a hop
    before it. Fails without the detaching: the tail sounds at 55."""
    y, engine = _render(model, _tail_script(setup_hops_early), seconds=0.9)
    assert abs(_low_pitch(y, 0.64, 0.69) - 50) < 0.3
    assert abs(_low_pitch(y, 0.76, 0.84) - 50) < 0.3
    bank = engine.find(NotesSource).voices
    assert engine.rejected == 0 and sorted(int(bank.vid[s]) for s in bank.sounding_notes()) == [DETACHED, 2]
    (tail,) = np.flatnonzero(bank.active & (bank.vid == DETACHED))
    assert list(bank.smoothed[tail]) == [2.0, 0.0, 0.0, 0.0]  # frozen as it played before the new note
    assert engine.status()["voices_xy"] == [0.5, 0.5, 0.5, 0.5]  # the tail still shows while it rings


def test_a_tail_follows_its_id_until_a_new_note_of_that_id(model):
    """Only a note-on of the same id detaches a released note: another id's note leaves it on its
    channel, a key still down stays on it too, and a plain note (no id) detaches nothing."""
    engine = spectral_engine(model, samplerate=SR, seed=1)
    bank = engine.find(NotesSource).voices
    for event in (ev.note_on(48, 100, voice=2), ev.note_on(55, 100, voice=2), ev.note_off(48, voice=2),
                  ev.note_on(60, 100, voice=3), ev.note_on(62, 100)):
        engine.post(event)
    engine.step()

    def ids():
        return sorted((float(bank.pitch[s]), int(bank.vid[s])) for s in bank.sounding_notes())

    assert ids() == [(48.0, 2), (55.0, 2), (60.0, 3), (62.0, -1)]
    engine.post(ev.voice_control(2, "bend", 1.0))
    engine.post(ev.note_on(67, 100, voice=2))
    engine.step()
    assert ids() == [(48.0, DETACHED), (55.0, 2), (60.0, 3), (62.0, -1), (67.0, 2)]
    for name, value in (("bend", -3.0), ("x", 0.2), ("y", 0.3), ("pressure", 0.5)):
        engine.post(ev.voice_control(2, name, value))
    engine.render(0.1)  # the tail still rings
    assert bank.smoothed[bank.vid == DETACHED].tolist() == [[0.0, 0.0, 0.0, 0.0]]
    assert bank.smoothed[bank.vid == 2] == pytest.approx(np.array([[-3.0, 0.2, 0.3, 0.5]] * 2), abs=0.01)


CUT_AT = 150 * HOP_SECONDS
"""0.8 s, a hop boundary: where the sound-off tests cut."""


def _cut_script(end):
    """Voice 2 holds 48 and 55; 55 is let go at 0.6 s and 62 starts at 0.75 s on the same id
    (55's tail leaves the id), 48 is let go at 0.7 s (a tail on the id); then `end` at `CUT_AT`."""
    return [ev.note_on(48, 100, voice=2), ev.note_on(55, 100, voice=2, t=0.2), ev.note_off(55, voice=2, t=0.6),
            ev.note_off(48, voice=2, t=0.7), ev.note_on(62, 100, voice=2, t=0.75), *end]


def _db(y, start, end):
    return 10 * np.log10(np.mean(y[int(start * SR):int(end * SR)] ** 2) + 1e-20)


def _high(y):
    """`y` above 8 kHz (where a click's energy would show: the notes have little there)."""
    spectrum = np.fft.rfft(y)
    spectrum[np.fft.rfftfreq(len(y), 1 / SR) < 8000] = 0
    return np.fft.irfft(spectrum, len(y))


def test_sound_off_cuts_every_note_of_its_voice_without_a_click(model):
    """A `sound_off` of voice 2 (All Sound Off on its member channel) cuts its held note, the tail
    that follows it and the tail that left it for that note: 60 dB down 60 ms after the cut (the
    synthesis window's overlap is the fade), where the same notes let go ring within 20 dB; no
    click (nothing above 8 kHz louder than while they played); its slots are free at once."""
    cut, engine = _render(model, _cut_script([ev.sound_off(voice=2, t=CUT_AT)]), seconds=1.0)
    released, _ = _render(model, _cut_script([ev.note_off(62, voice=2, t=CUT_AT)]), seconds=1.0)
    before = _db(cut, CUT_AT - 0.05, CUT_AT)
    assert _db(released, CUT_AT - 0.05, CUT_AT) == before  # the same until the cut
    assert _db(cut, CUT_AT + 0.06, CUT_AT + 0.1) < before - 60
    assert _db(released, CUT_AT + 0.06, CUT_AT + 0.1) > before - 20
    high = _high(cut)
    assert _db(high, CUT_AT, CUT_AT + 0.1) < max(_db(high, t, t + 0.01) for t in np.arange(0.3, CUT_AT, 0.01))
    bank = engine.find(NotesSource).voices
    assert engine.rejected == 0 and not bank.active[1:].any() and engine.status()["voices"] == 0


def test_sound_off_cuts_its_own_notes_alone(model):
    """A voice's `sound_off` leaves other ids' notes and plain notes; one without a voice (All
    Sound Off on a plain or manager channel) cuts the plain notes, held or pedal-held, and no
    voice's, nor the drone; a key let go after its note was cut changes nothing."""
    engine = spectral_engine(model, samplerate=SR, seed=1)
    bank = engine.find(NotesSource).voices
    for event in (ev.param("drone", 1), ev.note_on(60, 100, voice=2), ev.note_on(64, 100, voice=3),
                  ev.note_on(67, 100), ev.param("sustain", 1), ev.note_on(69, 100), ev.note_off(69)):
        engine.post(event)
    engine.step()

    def sounding():
        return sorted((int(bank.owner[s]), float(bank.pitch[s])) for s in bank.sounding_notes())

    assert sounding() == [(-1, 67.0), (-1, 69.0), (2, 60.0), (3, 64.0)]
    engine.post(ev.sound_off(voice=2))
    engine.step()
    assert sounding() == [(-1, 67.0), (-1, 69.0), (3, 64.0)]
    engine.post(ev.sound_off())
    engine.post(ev.param("sustain", 0))
    engine.post(ev.note_off(67))
    engine.step()
    assert sounding() == [(3, 64.0)] and bank.active[DRONE] and not bank.active[bank.owner == -1][1:].any()
    assert engine.rejected == 0


def test_sound_off_renders_again_from_its_session_log(model, tmp_path):
    """The applied events, stamped, written as a session log and rendered by a fresh engine, give
    the same samples: a cut re-renders exactly."""
    engine = spectral_engine(model, samplerate=SR, seed=1)
    applied = []
    engine.add_listener(applied.append)
    engine.schedule([ev.param("drone", 0), *_cut_script([ev.sound_off(voice=2, t=CUT_AT), ev.note_on(60, 90, t=0.85),
                                                         ev.sound_off(t=0.95)])])
    first = engine.render(1.1)
    log = tmp_path / "take.jsonl"
    ev.write_events(log, applied)
    _, logged = ev.read_events(log)
    assert [(e.type, e.voice) for e in logged if e.type == "sound_off"] == [("sound_off", 2), ("sound_off", None)]
    again = spectral_engine(model, samplerate=SR, seed=1)
    again.schedule(logged)
    assert np.array_equal(again.render(1.1), first) and np.abs(first).max() > 1e-3


def test_voice_events_render_the_same_twice(model):
    """The same events with voice controls moving mid-note (bend, glided x, y, pressure) give the
    same samples twice; the voices leave the shared point and come back to it."""
    script = [ev.voice_control(1, "pressure", 0.5), ev.note_on(57, 70, voice=1), ev.note_on(64, 90, voice=2),
              ev.voice_control(1, "bend", -1.5, t=0.1), ev.voice_control(2, "x", 0.3, t=0.15),
              ev.voice_control(2, "y", 0.6, t=0.2), ev.voice_control(1, "pressure", 1.0, t=0.25),
              ev.voice_control(2, "x", 0.0, t=0.3), ev.voice_control(2, "y", 0.0, t=0.3),
              ev.note_off(57, voice=1, t=0.4)]
    first, engine = _render(model, script, seconds=0.6)
    again, _ = _render(model, script, seconds=0.6)
    assert np.array_equal(first, again) and np.abs(first).max() > 1e-3
    assert engine.rejected == 0
    bank = engine.find(NotesSource).voices
    assert not bank.id_offsets().any()  # back on the shared point


def test_the_torch_decoder_path_matches_numpy_with_voices_at_their_own_points(model):
    """The path a GPU takes (the model's traced torch decoder, one latent point per voice once one
    has an offset), run on the CPU: the mixed magnitudes of every hop match the numpy decoder's,
    with the voices sharing the performer's point, at points of their own, and back."""
    script = [ev.note_on(48, 100, voice=1), ev.note_on(55, 90, voice=2), ev.note_on(64, 70), ev.param("x", 0.3),
              ev.voice_control(1, "x", 0.4, t=0.1), ev.voice_control(2, "y", -0.5, t=0.1),
              ev.voice_control(1, "pressure", 0.6, t=0.15), ev.voice_control(2, "bend", 1.5, t=0.15),
              ev.note_off(48, voice=1, t=0.2), ev.voice_control(2, "y", 0.0, t=0.25),
              ev.voice_control(1, "x", 0.0, t=0.25)]
    frames, onsets = {}, {}
    for decoder in ("auto", "torch"):
        source = NotesSource(model, seed=1, decoder=decoder)
        assert source.calls_torch == (decoder == "torch")
        engine = Engine([source], config=model.config, samplerate=SR, seed=1)
        engine.schedule([ev.param("drone", 0), *script])
        seen, push = [], engine.inverter.push
        engine.inverter.push = lambda frame, onset=None, cut=False, seen=seen, push=push: (
            seen.append((frame[0].copy(), None if onset is None else onset[0].copy())), push(frame, onset, cut))[1]
        engine.render(0.4)
        frames[decoder] = np.array([frame for frame, _ in seen])
        onsets[decoder] = [onset is not None for _, onset in seen]
        assert engine.rejected == 0 and engine.status()["nan"] == 0
    numpy_frames, torch_frames = frames["auto"], frames["torch"]
    assert onsets["auto"] == onsets["torch"] and numpy_frames.shape == torch_frames.shape
    scale = np.abs(numpy_frames).max(axis=1, keepdims=True) + 1e-9
    assert float((np.abs(torch_frames - numpy_frames) / scale).max()) < 1e-4
    assert float(numpy_frames.max()) > 1.0  # the notes sound
    with pytest.raises(ParameterError, match="decoder 'gpu': use one of auto, torch"):
        NotesSource(model, decoder="gpu")


def test_a_voice_event_the_engine_cannot_play_is_rejected(model):
    """A live client's malformed voice event (no id, an id out of range, an unknown name, a
    non-finite value, a number no float holds) is rejected and counted, as is a parameter given
    such a number; a value out of range is held at the range's end."""
    engine = spectral_engine(model, samplerate=SR, seed=1)
    for event in (ev.Event("voice", name="bend", value=1.0), ev.Event("voice", voice=128, name="x", value=0.1),
                  ev.Event("voice", voice=1, name="vibrato", value=0.1), ev.voice_control(1, "x", float("nan")),
                  ev.note_on(60, 100, voice=200), ev.Event("voice", voice=1, name="bend", value=10**400),
                  ev.Event("param", name="x", value=10**400)):
        engine.post(event)
    engine.post(ev.voice_control(1, "x", 7.0))
    engine.step()
    assert engine.rejected == 7
    assert engine.find(NotesSource).voices.controls[1, list(ev.VOICE_CONTROLS).index("x")] == 1.0


def test_a_fresh_engine_given_the_carry_over_keeps_the_voices_and_their_bends(model):
    """A lost device in the middle of a bent MPE note: the new engine gets each id's controls
    before the carried notes, which keep their ids, so the note sounds bent as before and its
    note-off by id still releases it."""
    old = spectral_engine(model, samplerate=SR, seed=1)
    carry = CarryOver()
    old.add_listener(carry.applied)
    script = [ev.param("drone", 0), ev.voice_control(2, "bend", 2.0), ev.note_on(60, 100, voice=2),
              ev.note_on(69, 100), ev.voice_control(3, "x", 0.25), ev.note_on(64, 100, voice=3),
              ev.note_off(64, voice=3), ev.voice_control(2, "pressure", 0.4)]
    for event in script:
        carry.posted(event)
        old.post(event)
        old.step()
    handover = carry.handover(voices=16)
    assert [(e.type, e.voice, e.name) for e in handover if e.type == "voice"] == [
        ("voice", 2, "bend"), ("voice", 3, "x"), ("voice", 2, "pressure")]
    assert [(e.pitch, e.voice) for e in handover if e.type == "note_on"] == [(60.0, 2), (69.0, None)]
    assert max(i for i, e in enumerate(handover) if e.type == "voice") < min(
        i for i, e in enumerate(handover) if e.type == "note_on")
    new = spectral_engine(model, samplerate=SR, seed=1)
    new.post(ev.param("drone", 0))
    for event in handover:
        new.post(event)
    y = new.render(1.2)
    bank = new.find(NotesSource).voices
    assert np.array_equal(bank.controls, old.find(NotesSource).voices.controls)
    spectrum = _spectrum(y)
    found, _ = _peak(spectrum, _hz(62), 100)
    assert abs(1200 * np.log2(found / _hz(62))) < 20, found
    new.post(ev.note_off(60, voice=2))
    new.step()
    assert sorted(int(bank.vid[s]) for s in bank.sounding_notes() if bank.key_down[s]) == [-1]


def test_the_carry_over_keeps_a_pedal_held_tail_off_its_reused_id(model):
    """A note the pedal holds whose channel then started another note has left its id; a new
    engine gets it with the bend it kept (+2: 50), then the id's new bend for the newer note
    (+7: 60 sounds at 67), and the held tail's pitch does not move to the new bend (55)."""
    old = spectral_engine(model, samplerate=SR, seed=1)
    carry = CarryOver()
    old.add_listener(carry.applied)
    script = [ev.param("drone", 0), ev.param("sustain", 1), ev.voice_control(2, "bend", 2.0),
              ev.note_on(48, 110, voice=2), ev.note_off(48, voice=2), ev.voice_control(2, "bend", 7.0),
              ev.note_on(60, 100, voice=2)]
    for event in script:
        carry.posted(event)
        old.post(event)
        old.step()
    handover = carry.handover(voices=16)
    assert [(e.type, e.value if e.type == "voice" else e.pitch) for e in handover if e.voice == 2] == [
        ("voice", 7.0), ("voice", 2.0), ("note_on", 48.0), ("note_off", 48.0), ("voice", 7.0), ("note_on", 60.0)]
    new = spectral_engine(model, samplerate=SR, seed=1)
    new.post(ev.param("drone", 0))
    for event in handover:
        new.post(event)
    y = new.render(1.2)

    def voices(engine):
        bank = engine.find(NotesSource).voices
        return sorted((float(bank.pitch[s]), int(bank.vid[s]), float(bank.smoothed[s, 0])) for s in bank.sounding_notes())

    assert voices(new) == voices(old) == [(48.0, DETACHED, 2.0), (60.0, 2, 7.0)]
    spectrum = _spectrum(y)
    found, level = _peak(spectrum, _hz(50), 100)
    assert abs(1200 * np.log2(found / _hz(50))) < 20 and level > _peak(spectrum, _hz(55), 30)[1] + 20, found


def test_the_carry_over_drops_the_notes_a_sound_off_cut():
    """Notes cut by a `sound_off` (held or pedal-held) are not started again in a new engine; the
    notes it did not name are."""
    carry = CarryOver()
    for event in (ev.param("sustain", 1), ev.note_on(48, 100, voice=2), ev.note_off(48, voice=2),
                  ev.note_on(55, 100, voice=2), ev.note_on(60, 100, voice=3), ev.note_on(64, 100), ev.note_on(67, 100),
                  ev.note_off(67), ev.sound_off(voice=2), ev.note_on(72, 100, voice=2)):
        carry.posted(event)
    assert [(e.pitch, e.voice) for e in carry.handover(voices=16) if e.type == "note_on"] == [
        (60.0, 3), (64.0, None), (67.0, None), (72.0, 2)]
    carry.posted(ev.sound_off())
    assert [(e.pitch, e.voice) for e in carry.handover(voices=16) if e.type == "note_on"] == [(60.0, 3), (72.0, 2)]


def test_a_take_with_voice_events_on_the_sound_server_re_renders_exactly(jack_server, tmp_path):
    """Voice events and sound-offs posted to a real sound server on jackd are applied, logged in a
    take and come back stamped; `livegen render` of the take's log gives its recording sample for
    sample; the status has the sounding voices' pad points, and none once they are cut."""
    engine = RemoteEngine({"samplerate": 48000, "blocksize": 256}, {"model": "random", "seed": 3, "device": "cpu"},
                          lead=0).wait_ready()
    session = SessionControl(engine, directory=tmp_path, header=engine_header(engine, model_name="random")).attach()
    applied = []
    engine.add_listener(applied.append)
    try:
        engine.start()
        session.record(True)
        script = [ev.voice_control(2, "bend", 2.0), ev.note_on(60, 100, voice=2), ev.note_on(67, 80, voice=3),
                  ev.voice_control(3, "x", -0.3), ev.voice_control(2, "pressure", 0.7), ev.voice_control(2, "bend", -1.0),
                  ev.note_off(60, voice=2)]
        for event in script:
            engine.post(event)
            wait_for(lambda target=engine.samples_out + 4096: engine.samples_out >= target, 10,
                     "4096 samples played after a post")
        status = engine.status()
        engine.post(ev.note_on(64, 90))
        for event in (ev.sound_off(voice=3), ev.sound_off(voice=2), ev.sound_off()):  # held 3, 2's tail, the plain
            engine.post(event)
            wait_for(lambda target=engine.samples_out + 4096: engine.samples_out >= target, 10,
                     "4096 samples played after a sound-off")
        cut_status = engine.status()
    finally:
        session.close()  # the take ends here: what the engine played so far is kept
        engine.stop(fade=False)
        engine.kill()
        engine.close()
    assert [(e.type, e.voice) for e in applied if e.type != "record"] == [(e.type, e.voice) for e in script] + [
        ("note_on", None), ("sound_off", 3), ("sound_off", 2), ("sound_off", None)]
    assert cut_status["voices_xy"] == [] and cut_status["voices"] == 0
    points = status["voices_xy"]  # voice 3 moved; voice 2, released, may still ring at the performer's point
    assert [0.2, 0.5] in [points[i:i + 2] for i in range(0, len(points), 2)], points
    (wav,) = tmp_path.glob("*.wav")
    logged = [json.loads(line) for line in wav.with_suffix(".jsonl").read_text().splitlines()]
    assert [record["voice"] for record in logged if record.get("type") == "voice"] == [2, 3, 2, 2]
    assert [record.get("voice") for record in logged if record.get("type") == "sound_off"] == [3, 2, None]
    recorded, rendered = take_rendered_again(wav)
    assert len(recorded) > 4 * 4096 and np.array_equal(rendered, recorded)


def test_a_take_with_a_reused_voice_id_re_renders_exactly(jack_server, tmp_path):
    """On a real sound server (the bundled model): a released note's tail bent while it rings,
    then its id starts another note with another bend; the tail keeps its pitch in the recording
    (48 bent +2: 50, not the new note's +7: 55) and `livegen render` of the take's log gives the
    recording sample for sample."""
    engine = RemoteEngine({"samplerate": 48000, "blocksize": 256}, {"model": None, "seed": 3, "device": "cpu"},
                          lead=0).wait_ready()
    session = SessionControl(engine, directory=tmp_path, header=engine_header(engine, model_name="models/default")).attach()
    applied = []
    engine.add_listener(applied.append)

    def post_then_play(events, samples):
        for event in events:
            engine.post(event)
        wait_for(lambda target=engine.samples_out + samples: engine.samples_out >= target, 10,
                 f"{samples} samples played after {events}")

    try:
        engine.start()
        session.record(True)
        post_then_play([ev.param("drone", 0), ev.note_on(48, 110, voice=2)], 12000)
        post_then_play([ev.note_off(48, voice=2)], 1024)
        post_then_play([ev.voice_control(2, "bend", 2.0)], 4096)
        post_then_play([ev.voice_control(2, "bend", 7.0), ev.note_on(86, 60, voice=2)], 12000)
        post_then_play([ev.note_off(86, voice=2)], 4096)
    finally:
        session.close()
        engine.stop(fade=False)
        engine.kill()
        engine.close()
    (wav,) = tmp_path.glob("*.wav")
    header, events = ev.read_events(wav.with_suffix(".jsonl"))
    (second,) = [e for e in events if e.type == "note_on" and e.pitch == 86]
    (bent,) = [e for e in events if e.type == "voice" and e.value == 2.0]
    recorded, rendered = take_rendered_again(wav)
    assert len(recorded) > 24000 and np.array_equal(rendered, recorded)
    at = (second.sample - header["start_sample"]) / SR
    following = (bent.sample - header["start_sample"]) / SR
    assert abs(_low_pitch(recorded, following + 0.04, at) - 50) < 0.3  # the tail follows its bend alone
    assert abs(_low_pitch(recorded, at + 0.06, at + 0.12) - 50) < 0.3  # and keeps it after the new note


def test_a_bent_voice_keeps_its_bend_when_the_jack_server_dies_and_comes_back(jack_server, live_play, tmp_path):
    """`livegen play` over OSC: a voice bent +2 holds its note when the JACK server dies; bent to +3
    while no server plays; when it comes back the new engine gets the voice's controls before its
    note, which keeps its id, the note sounds at the new bend, and the take re-renders sample for
    sample over its whole length."""
    takes = tmp_path / "takes"
    play = live_play("--no-midi", "--model", "random", "--seed", "2", "--samplerate", "48000", "--record", str(takes))
    play.send("/livegen/voice/2/bend", 2.0)
    play.send("/livegen/voice/2/note", 60, 100)
    play.send("/livegen/note", 69, 100)
    play.wait_status(lambda pairs: pairs.get("voices") == 2, 20, "both notes sounding")
    play.played(0.3)
    jack_server.stop()
    play.wait_status(lambda pairs: pairs.get("audio") == "lost", 30, "the engine to notice the server going away")
    play.send("/livegen/voice/2/bend", 0.5)
    play.send("/livegen/voice/2/bend", 3.0)  # only the last value is carried
    assert play.status()["audio"] == "lost"  # answered after the messages before it were taken
    jack_server.start(tmp_path)
    play.wait_status(lambda pairs: pairs.get("audio") == "ok", 30, "the engine to reconnect when the server came back")
    play.wait_status(lambda pairs: pairs.get("voices") == 2, 20, "both notes sounding again")
    play.played(0.6)
    play.send("/livegen/voice/2/note", 60, 0)
    play.played(0.2)
    assert play.status()["rejected"] == 0
    assert play.stop(30) == 0, play.log

    (wav,) = takes.glob("*.wav")
    header, events = ev.read_events(wav.with_suffix(".jsonl"))
    (marker,) = [e for e in events if e.type == "engine"]
    restart = marker.sample
    assert [(e.type, e.voice, e.value if e.type == "voice" else e.pitch) for e in events if e.sample == restart
            and e.type in ("voice", "note_on")] == [("voice", 2, 3.0), ("note_on", 2, 60.0), ("note_on", None, 69.0)]
    (released,) = [e for e in events if e.type in ("note_on", "note_off") and e.voice == 2 and not e.velocity]
    recorded, rendered = take_rendered_again(wav)
    assert len(rendered) == len(recorded) and np.array_equal(rendered, recorded)
    cut = restart - header["start_sample"]
    after = recorded[cut + int(0.1 * SR):released.sample - header["start_sample"]]
    spectrum = _spectrum(after, settle=0)
    found, level = _peak(spectrum, _hz(63), 100)
    assert abs(1200 * np.log2(found / _hz(63))) < 20 and level > _peak(spectrum, _hz(62), 30)[1] + 20, found


@pytest.mark.parametrize("jump", ["voice", "global"])
def test_a_bend_that_jumps_sounds_at_once(model, jump):
    """A held note bent +12 semitones in one event: its new pitch is pre-rolled as an onset, so
    the render's spectrum changes within a hop or two of the event's sample (the timbre jump's
    detector of `livegen bench latency`), not after half a synthesis window."""
    script = ([ev.note_on(60, 100, voice=2), ev.voice_control(2, "bend", 12.0, t=1.0)] if jump == "voice" else
              [ev.param("bend_range", 12), ev.note_on(60, 100), ev.param("bend", 1.0, t=1.0)])
    y, engine = _render(model, script, seconds=1.6)
    found = detect_change(y[int(0.7 * SR):], int(0.3 * SR))
    assert found is not None and 1000 * found / SR < 12.0, found  # 29-33 ms without the pre-roll
    assert engine.rejected == 0
