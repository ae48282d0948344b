"""The engine on its virtual clock: determinism, stamped events, voices, safety chain."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from livegen.bench.latency import detect_change
from livegen.engine import events as ev
from livegen.engine.notes import spectral_engine
from livegen.engine.notes import NotesSource
from livegen.model import ModelConfig, random_model
from livegen.server import factory

torch.set_num_threads(1)
SR = 48000


@pytest.fixture(scope="module")
def model():
    return random_model(ModelConfig(), seed=0)


def band_levels(y, *, sr=SR, n=4096):
    """Mean power in 24 log-spaced bands (60 Hz..12 kHz), dB: a spectrum robust to noise detail."""
    frames = np.lib.stride_tricks.sliding_window_view(y, n)[::n // 2]
    power = np.mean(np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    edges = np.geomspace(60, 12000, 25)
    return 10 * np.log10(np.array([power[(freqs >= a) & (freqs < b)].sum() for a, b in zip(edges[:-1], edges[1:])]) + 1e-12)


def test_render_is_deterministic_and_seeded(model):
    script = [ev.param("drift", 1.0), ev.param("drift_speed", 4.0), ev.note_on(60, 100, t=0.05),
              ev.param("x", 0.9, t=0.2), ev.note_off(60, t=0.3)]
    outs = []
    for seed in (3, 3, 4):
        engine = spectral_engine(model, samplerate=SR, seed=seed)
        engine.schedule([ev.Event(**{**e.__dict__}) for e in script])
        outs.append(engine.render(0.5))
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])
    assert np.abs(outs[0]).max() > 1e-3


@pytest.mark.slow
def test_applied_event_log_renders_back_bit_exactly(model, tmp_path):
    """Events posted live between hops, stamped by the engine, re-render to the same samples."""
    engine = spectral_engine(model, samplerate=SR, seed=7)
    applied = []
    engine.add_listener(applied.append)
    rng = np.random.default_rng(1)
    live = [ev.note_on(57, 90), ev.param("x", 0.2), ev.note_on(64, 60), ev.param("glide", 0.0),
            ev.param("y", 0.8), ev.note_off(57), ev.param("bend", 0.5), ev.note_off(64), ev.param("gain", -12)]
    blocks = []
    for i in range(300):
        if live and rng.random() < 0.05:
            engine.post(live.pop(0))
        blocks.append(engine.step().copy())
    recorded = np.concatenate(blocks)
    assert not live and len(applied) == 9
    assert all(e.sample is not None and e.sample % 256 == 0 for e in applied)  # hop boundaries at 48 kHz
    path = tmp_path / "session.jsonl"
    ev.write_events(path, applied, header={"seed": 7, "samplerate": SR})
    _, logged = ev.read_events(path)
    again = spectral_engine(model, samplerate=SR, seed=7)
    again.schedule(logged)
    rendered = again.render(len(recorded) / SR)
    assert np.array_equal(rendered, recorded)


def test_events_without_sample_apply_at_next_hop_boundary(model):
    engine = spectral_engine(model, samplerate=SR, seed=0)
    applied = []
    engine.add_listener(applied.append)
    engine.schedule([ev.param("x", 0.1, t=0.0101)])  # 484.8 samples -> boundary 512
    engine.render(0.05)
    assert applied[0].sample == 512


def test_out_of_range_values_are_clamped_and_reported(model):
    engine = spectral_engine(model, samplerate=SR)
    applied = []
    engine.add_listener(applied.append)
    engine.post(ev.param("x", 1.7))
    engine.post(ev.param("voices", 40))
    engine.post(ev.param("nosuch", 1.0))
    engine.step()
    assert [(e.name, e.value) for e in applied] == [("x", 1.0), ("voices", 16.0)]
    assert applied[0].extra["clamped_from"] == 1.7
    assert engine.params.get("x") == 1.0
    status = engine.status()
    assert status["clamped"] == 2 and engine.rejected == 1


@pytest.mark.slow
def test_polyphony_steals_the_oldest_and_sustain_holds(model):
    engine = spectral_engine(model, samplerate=SR)
    notes = engine.find(NotesSource)
    engine.post(ev.param("voices", 8))
    for i in range(10):
        engine.post(ev.note_on(48 + i, 100))
        engine.step()
    status = engine.status()
    assert status["voices"] == 8 and notes.voices.steals == 2
    sounding = sorted(notes.voices.pitch[notes.voices.sounding_notes()])
    assert sounding == list(range(50, 58))  # 48 and 49, the oldest, were stolen
    engine.render(0.05)  # the stolen voices fade out and free their slots
    assert notes.voices.active.sum() == 1 + 8
    engine.post(ev.param("sustain", 1))
    for i in range(2, 10):
        engine.post(ev.note_off(48 + i))
    engine.render(0.3)
    assert engine.status()["voices"] == 8  # held by the pedal
    engine.post(ev.param("sustain", 0))
    engine.render(4.5)  # released through the model's release, then freed
    assert engine.status()["voices"] == 0


def test_peak_stays_under_the_ceiling_when_driven_hard(model):
    engine = spectral_engine(model, samplerate=SR)
    engine.schedule([ev.param("gain", 12.0), ev.param("ceiling", -3.0)]
                    + [ev.note_on(40 + 5 * i, 127, t=0.01 * i) for i in range(8)])
    y = engine.render(0.6)
    ceiling = 10 ** (-3.0 / 20)
    assert np.abs(y).max() <= ceiling
    assert np.abs(y).max() > 0.8 * ceiling  # it was driven into the limiter


def test_start_fades_in_and_stop_fades_out(model):
    engine = spectral_engine(model, samplerate=SR)
    engine.schedule([ev.param("gain", 0.0)])
    y = engine.render(0.3)
    assert np.abs(y[:48]).max() < 0.05 * np.abs(y).max()  # no click at the start
    engine.fade_out()
    tail = np.concatenate([engine.step().copy() for _ in range(6)])
    assert engine.faded_out
    assert np.all(tail[-256:] == 0)
    steps = np.abs(np.diff(tail[:480]))
    assert steps.max() < 0.1


class NanModel(torch.nn.Module):
    """A model that has gone bad: every frame is NaN."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def xy_plane(self):
        return self.inner.xy_plane()

    def advance_noise(self, prev, fresh):
        return self.inner.advance_noise(prev, fresh)

    def decode(self, z, pitch, velocity, t_on, t_off, noise=None):
        return torch.full((z.shape[0], self.config.n_bins), float("nan"))


def test_a_model_that_emits_nan_gives_silence_and_counts_it(model):
    engine = spectral_engine(NanModel(model), samplerate=SR)
    engine.schedule([ev.note_on(60, 100)])
    y = engine.render(0.2)
    assert np.all(np.isfinite(y))
    assert np.all(y == 0.0)
    assert engine.status()["nan"] > 0


@pytest.mark.slow
def test_a_parameter_change_changes_the_spectrum_more_than_the_seed_does(model):
    def render(script, seed=0):
        engine = spectral_engine(model, samplerate=SR, seed=seed)
        engine.schedule(script)
        return band_levels(engine.render(1.0)[SR // 2:])

    base = render([ev.param("drone_pitch", 45)])
    assert np.array_equal(base, render([ev.param("drone_pitch", 45)]))
    noise = np.abs(base - render([ev.param("drone_pitch", 45)], seed=1)).mean()
    moved = np.abs(base - render([ev.param("drone_pitch", 64)])).mean()
    assert moved > 3 * noise + 1.0, (moved, noise)


@pytest.mark.slow
def test_the_drone_gives_way_to_notes_and_returns_after_them(model):
    """The drone (MIDI 48, 130.8 Hz) sounds at once, fades while a note (MIDI 72) is held and comes
    back after its note-off."""
    engine = spectral_engine(model, samplerate=SR, seed=0)
    engine.schedule([ev.note_on(72, 100, t=1.0), ev.note_off(72, t=2.0)])
    y = engine.render(6.0)
    alone = spectral_engine(model, samplerate=SR, seed=0).render(6.0)  # the drone without the note

    def drone_db(t0, t1, y=y):
        seg = y[int(t0 * SR):int(t1 * SR)]
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
        freqs = np.fft.rfftfreq(len(seg), 1 / SR)
        return 10 * np.log10(spec[(freqs > 120) & (freqs < 142)].sum() + 1e-20)

    before, under, after = drone_db(0.5, 1.0), drone_db(1.4, 1.9), drone_db(4.5, 5.5)
    assert before == drone_db(0.5, 1.0, alone)
    assert under < drone_db(1.4, 1.9, alone) - 30.0, (before, under)
    assert abs(after - drone_db(4.5, 5.5, alone)) < 1.0, (after, drone_db(4.5, 5.5, alone))
    assert engine.status()["drone"] == 1  # the parameter is untouched: only the sound gives way


@pytest.mark.slow
def test_a_drone_switched_off_under_notes_does_not_come_back_after_them(model):
    """The drone, ducked under a held note, is switched off; once the note ends, its release must
    not return with the drone's gain (the test model's release rings on, so it would be heard)."""
    engine = spectral_engine(model, samplerate=SR, seed=0)
    engine.schedule([ev.note_on(72, 100, t=1.0), ev.param("drone", 0, t=2.0), ev.note_off(72, t=3.0)])
    y = engine.render(6.0)

    def drone_db(t0, t1):
        seg = y[int(t0 * SR):int(t1 * SR)]
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
        freqs = np.fft.rfftfreq(len(seg), 1 / SR)
        return 10 * np.log10(spec[(freqs > 120) & (freqs < 142)].sum() + 1e-20)

    assert drone_db(4.5, 5.5) < drone_db(0.5, 1.0) - 40.0, (drone_db(0.5, 1.0), drone_db(4.5, 5.5))
    again = spectral_engine(model, samplerate=SR, seed=0)  # on again just after the note: heard at once
    again.schedule([ev.note_on(72, 100, t=1.0), ev.param("drone", 0, t=2.0), ev.note_off(72, t=3.0),
                    ev.param("drone", 1, t=3.05)])
    z = again.render(3.2)
    assert np.sqrt(np.mean(z[int(3.08 * SR):int(3.15 * SR)] ** 2)) > 0.5 * np.sqrt(np.mean(y[int(0.5 * SR):SR] ** 2))


@pytest.mark.slow
def test_a_48_khz_model_plays_full_band_without_a_resampler():
    """A model at the output rate (n_fft 2048, hop 256: the same 5.33 ms hop) is played as it is,
    with energy above 12 kHz, where a 24 kHz model has none."""
    def air(cfg):
        engine = spectral_engine(random_model(cfg, seed=0), samplerate=SR, seed=0)
        engine.schedule([ev.param("drone", 0), ev.note_on(84, 110)])
        y = engine.render(0.6)[SR // 5:].astype(np.float64)
        power = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
        freqs = np.fft.rfftfreq(len(y), 1 / SR)
        return engine, power[freqs > 13000].sum() / power.sum()

    full, full_air = air(ModelConfig(sample_rate=48000, n_fft=2048, hop=256))
    half, half_air = air(ModelConfig())
    assert full.chain.resampler is None and half.chain.resampler is not None
    assert full.hop_seconds == half.hop_seconds
    assert full_air > 1e-5 and half_air < 1e-8, (full_air, half_air)


def test_a_note_sounds_in_its_first_hop(model):
    """The note's first frame sounds at once (pre-rolled), not through the synthesis window's
    rising edge, so look-ahead does not delay it either."""
    for lookahead in (0, 1):
        engine = spectral_engine(model, samplerate=SR, seed=0, lookahead=lookahead)
        hop_out = engine.hop * SR // engine.config.sample_rate
        at = 40 * hop_out
        engine.schedule([ev.param("drone", 0), ev.Event("note_on", pitch=60, velocity=100, sample=at, t=at / SR)])
        y = engine.render(at / SR + 0.1).astype(np.float64)
        first = np.sqrt(np.mean(y[at + hop_out // 4:at + hop_out] ** 2))
        later = np.sqrt(np.mean(y[at + 10 * hop_out:at + 14 * hop_out] ** 2))
        assert first > 0.2 * later > 0, (lookahead, first, later)


def test_a_latent_jump_without_glide_cuts_to_the_new_sound():
    """A jump of the pad with glide 0 changes the sound within the hop that applies it; with a
    glide the point moves smoothly and nothing is cut (the bundled model: its pad's corners
    differ clearly)."""
    loaded = factory.load(None, log=lambda text: None)
    found = {}
    for glide in (0.0, 0.05):
        engine = loaded.engine(samplerate=SR, seed=0, lookahead=1)
        hop_out = engine.hop * SR // engine.config.sample_rate
        at = 100 * hop_out
        engine.schedule([ev.param("drone", 0), ev.param("glide", glide), ev.param("x", 0.1), ev.param("y", 0.1),
                         ev.note_on(60, 100)]
                        + [ev.Event("param", name=n, value=0.9, sample=at, t=at / SR) for n in ("x", "y")])
        y = engine.render(at / SR + 0.4)
        found[glide] = (detect_change(y, at), engine.inverter.onsets)
    (cut_at, cuts), (glided_at, glided_cuts) = found[0.0], found[0.05]
    assert cuts == 1 and glided_cuts == 0, found
    assert cut_at is not None and glided_at is not None and cut_at < glided_at, found
    assert cut_at < 2 * hop_out, f"the change took {cut_at} samples"


def _sounding(engine):
    """(pitch, key down, held by the pedal) of every note voice sounding and not released."""
    bank = engine.find(NotesSource).voices
    return sorted((float(bank.pitch[s]), bool(bank.key_down[s]), bool(bank.sustained[s]))
                  for s in bank.sounding_notes() if bank.t_off[s] < 0)


def test_a_fresh_engine_given_the_carry_over_holds_the_presets_notes_and_pedal_of_the_one_before(model):
    """What a new sound server starts with after a lost device or a model switch: the presets the
    old engine stored (its own values, stamped on the applied `store` events), the keys still
    held, the notes the pedal holds and the pedal, as the performer left them (a key let go while
    no engine heard it too), and what was posted meanwhile after the presets; a key pressed
    meanwhile is dropped."""
    from livegen.engine.carry import CarryOver

    old = spectral_engine(model, samplerate=SR, seed=1)
    carry = CarryOver()
    old.add_listener(carry.applied)
    script = [ev.param("x", 0.8), ev.Event("preset", action="store", slot=3), ev.param("x", 0.2),
              ev.param("voices", 4), ev.note_on(50, 90), ev.note_on(60, 100), ev.param("sustain", 1),
              ev.note_on(62, 80), ev.note_off(62), ev.note_on(64, 70), ev.note_on(64, 110), ev.note_on(65, 60),
              ev.note_on(67, 60)]
    for event in script:
        carry.posted(event)
        old.post(event)
        old.step()
    assert _sounding(old) == [(62.0, False, True), (64.0, True, False), (65.0, True, False), (67.0, True, False)]
    # While the device is gone (no engine applies them): a key let go (the pedal holds it), a key
    # pressed (dropped), a knob turned and a preset stored.
    late_note = ev.note_on(70, 90)
    late = [ev.param("x", 0.5, source="osc"), ev.Event("preset", action="store", slot=4, source="osc")]
    for event in (ev.note_off(67), late_note, *late):
        carry.posted(event)
    carry.withdraw(late_note)
    handover = carry.handover(late, voices=16)  # the posted voice count wins
    assert [event.source for event in handover].count("osc") == 2 and handover[1:3] == late
    new = spectral_engine(model, samplerate=SR, seed=1)
    applied = []
    new.add_listener(applied.append)
    new.post(ev.param("voices", 4))  # the parameters go as the spec's (`build_engine`)
    new.post(ev.param("sustain", 1))
    for event in handover:
        new.post(event)
    new.step()
    assert new.presets[3] == old.presets[3] and new.presets[3]["x"] == 0.8
    assert new.params.get("x") == 0.5 and new.presets[4]["x"] == 0.5  # posted meanwhile: in order
    (stored, _) = [e for e in applied if e.type == "preset"]
    assert stored.values == old.presets[3]
    assert _sounding(new) == [(62.0, False, True), (64.0, True, False), (65.0, True, False), (67.0, False, True)]
    assert new.params.get("sustain") == 1.0
    # The pedal let go lets go of the notes it held.
    new.post(ev.param("sustain", 0))
    new.step()
    assert _sounding(new) == [(64.0, True, False), (65.0, True, False)]
    # The values a store carries travel in the session log.
    again = ev.event_from_record(json.loads(stored.to_json()))
    assert again.action == "store" and again.values == old.presets[3]
