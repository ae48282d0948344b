"""The numpy/numba frame decoder against `SpectralModel.decode`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livegen.model import ModelConfig, default_model_path, load_model, random_model
from livegen.model.fast import NumpyFrameDecoder


def _models():
    models = [("random", random_model(ModelConfig(), seed=3))]
    path = default_model_path()
    if path is not None:
        models.append(("default", load_model(path)))
    return models


MODELS = _models()


def _reference(model, z, pitch, velocity, t_on, t_off, noise):
    args = [torch.from_numpy(np.array(a, dtype=np.float32)) for a in (z, pitch, velocity, t_on, t_off)]
    with torch.inference_mode():
        return model.decode(*args, None if noise is None else torch.from_numpy(noise)).numpy()


def _assert_close(got, ref):
    assert got.shape == ref.shape and got.dtype == np.float32
    scale = np.abs(ref).max(axis=1, keepdims=True)
    err = np.abs(got - ref) / scale
    assert float(err.max()) < 1e-4, float(err.max())


@pytest.mark.slow
@pytest.mark.parametrize("name,model", MODELS, ids=[name for name, _ in MODELS])
@pytest.mark.parametrize("voices", [1, 3, 17])
@pytest.mark.parametrize("with_noise", [False, True])
def test_matches_decode(name, model, voices, with_noise):
    cfg = model.config
    fast = NumpyFrameDecoder(model)
    rng = np.random.default_rng(voices)
    z = rng.standard_normal((voices, cfg.latent_dim)).astype(np.float32)
    pitch = rng.uniform(20.0, 110.0, voices) + rng.uniform(-2.0, 2.0, voices)  # bends, fractional pitches
    pitch[0] = 60.25
    velocity = rng.uniform(0.05, 1.0, voices)
    t_on = rng.uniform(0.0, 3.0, voices)
    t_off = np.where(np.arange(voices) % 2 == 1, rng.uniform(0.0, 2.0, voices), -1.0)  # odd voices released
    noise = rng.standard_normal((voices, cfg.noise_dim)).astype(np.float32) if with_noise else None
    ref = _reference(model, z, pitch, velocity, t_on, t_off, noise)
    _assert_close(fast(z, pitch, velocity, t_on, t_off, noise), ref)
    # One latent shared by all voices (the engine's call) gives the same as the broadcast rows.
    shared = _reference(model, np.broadcast_to(z[0], z.shape), pitch, velocity, t_on, t_off, noise)
    _assert_close(fast(z[0].astype(np.float64), pitch, velocity, t_on, t_off, noise), shared)
    assert np.isfinite(shared).all()


def test_extreme_inputs_and_buffer_growth():
    model = random_model(ModelConfig(), seed=1)
    cfg = model.config
    fast = NumpyFrameDecoder(model, max_voices=2)
    v = 21  # more voices than the buffers were made for: they grow
    pitch = np.linspace(-10.0, 150.0, v)  # clamped to 0..135 like decode
    z = np.full(cfg.latent_dim, 3.0)
    ones = np.ones(v)
    noise = np.random.default_rng(0).standard_normal((v, cfg.noise_dim)).astype(np.float32)
    got = fast(z, pitch, ones, ones * 0.01, -ones, noise)
    _assert_close(got, _reference(model, np.broadcast_to(z, (v, cfg.latent_dim)), pitch, ones, ones * 0.01, -ones, noise))
    # The output is a reused buffer: a second call with other inputs overwrites it.
    first = got.copy()
    again = fast(z, pitch + 1.0, ones, ones * 0.01, -ones, noise)
    assert again.shape == first.shape and not np.array_equal(again, first)


@pytest.mark.slow
@pytest.mark.parametrize("with_noise", [False, True])
def test_matches_decode_with_playing_settings(with_noise):
    """Level normalisation, vibrato, shimmer and the envelope read at each harmonic: alike on both paths."""
    cfg = ModelConfig(level_dbfs=-12.5, vibrato_cents=10.0, shimmer_db=2.0, envelope_at_harmonics=True)
    model = random_model(cfg, seed=5)
    cfg = model.config
    fast = NumpyFrameDecoder(model, max_voices=2)
    rng = np.random.default_rng(7)
    v = 5
    z = rng.standard_normal((v, cfg.latent_dim)).astype(np.float32)
    pitch, velocity = rng.uniform(30.0, 100.0, v), rng.uniform(0.1, 1.0, v)
    t_on, t_off = rng.uniform(0.0, 3.0, v), np.array([-1.0, 0.2, -1.0, 1.0, -1.0])
    noise = rng.standard_normal((v, cfg.noise_dim)).astype(np.float32) if with_noise else None
    _assert_close(fast(z, pitch, velocity, t_on, t_off, noise), _reference(model, z, pitch, velocity, t_on, t_off, noise))


def test_level_normalisation_brings_every_timbre_to_the_target():
    from livegen.model.spectral import LEVEL_REF_SECONDS, LEVEL_REF_VELOCITY, frame_rms_log

    model = random_model(ModelConfig(level_dbfs=-20.0), seed=2)
    cfg = model.config
    fast = NumpyFrameDecoder(model)
    rng = np.random.default_rng(0)
    v = 6
    z = (2.0 * rng.standard_normal((v, cfg.latent_dim))).astype(np.float32)  # far-apart timbres
    pitch = np.linspace(36.0, 90.0, v)
    frames = fast(z, pitch, np.full(v, LEVEL_REF_VELOCITY), np.full(v, LEVEL_REF_SECONDS), -np.ones(v))
    level_db = 20 / np.log(10) * frame_rms_log(torch.from_numpy(frames.copy()), cfg.n_fft).numpy()
    assert np.allclose(level_db, -20.0, atol=0.01)
