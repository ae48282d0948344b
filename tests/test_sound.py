"""The final-audio measurements of `livegen eval` (livegen.bench.sound) on real renders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livegen.bench import sound
from livegen.model import ModelConfig, random_model

torch.set_num_threads(1)
SR = 48000


@pytest.fixture(scope="module")
def model():
    return random_model(ModelConfig(level_dbfs=-20.0), seed=0)


@pytest.mark.slow
def test_levels_are_measured_per_pad_point_after_the_note_onset(model):
    levels = sound.note_levels(model, grid=2)
    assert levels.shape == (2, 2) and np.isfinite(levels).all()
    assert np.all((levels > -60.0) & (levels < -6.0)), levels  # -20 dBFS references, -6 dB default gain
    audio, onsets, reduction = sound.render_notes(model, [sound.Note(0.5, 0.5, 60.0)])
    assert sound.rms_dbfs(audio[onsets[0] - SR // 10:onsets[0] - SR // 50]) < -60  # silence before the note
    assert reduction.shape[1] == 2 and reduction.max() == 0.0  # one note: leveller and limiter idle


def test_life_is_zero_for_a_steady_tone_and_large_for_noise():
    t = np.arange(SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    hiss = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    assert sound.life_of(tone, SR)[0] < 0.01
    life, strong = sound.life_of(hiss, SR)
    assert life > 3.0 and strong > 3.0


@pytest.mark.slow
def test_real_notes_come_from_fluidr3_and_move():
    notes = sound.real_notes([60], programs={"violin": 40})
    assert len(notes["violin"]) == 1 and np.abs(notes["violin"][0]).max() > 1e-3
    assert sound.life_of(notes["violin"][0], SR)[1] > 0.5  # a violin's vibrato moves its partials
