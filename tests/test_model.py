"""The spectral model: save/load, the loader's checks, decode contract, continuous pitch, plane."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch

from livegen.errors import ModelError
from livegen.model import ModelConfig, SpectralModel, load_model, random_model, save_model

SMALL = ModelConfig(latent_dim=4, hidden=32, enc_hidden=32, n_bands=16, max_harmonics=64, noise_dim=8)


def _inputs(model, v=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    return dict(
        z=torch.randn(v, cfg.latent_dim, generator=g),
        pitch=torch.linspace(21.0, 108.0, v),
        velocity=torch.linspace(0.1, 1.0, v),
        t_on=torch.linspace(0.0, 3.0, v),
        t_off=torch.tensor([-1.0, -0.01, 0.0, 0.3, 2.0])[:v],
    )


def test_default_config_is_the_shared_stft():
    cfg = ModelConfig()
    assert (cfg.sample_rate, cfg.n_fft, cfg.hop, cfg.n_bins) == (24000, 1024, 128, 513)
    assert abs(cfg.hop_seconds * 1e3 - 5.333) < 1e-3 and abs(cfg.bin_hz - 23.4375) < 1e-9
    assert 0.85 < cfg.noise_rho < 0.95


def test_save_load_round_trip(tmp_path):
    model = random_model(SMALL, seed=3)
    model.family_centroids = {"organ": (0.25, 0.75)}
    save_model(model, tmp_path / "m", card_text="# card\n")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"config.json", "weights.safetensors", "card.md"}
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, SpectralModel) and not loaded.training
    assert loaded.config == model.config
    assert loaded.family_centroids == {"organ": (0.25, 0.75)}
    args = _inputs(model)
    noise = torch.randn(5, SMALL.noise_dim)
    with torch.inference_mode():
        assert torch.equal(model.decode(**args, noise=noise), loaded.decode(**args, noise=noise))
        assert torch.equal(model.xy_to_z(torch.tensor([0.3, 0.6])), loaded.xy_to_z(torch.tensor([0.3, 0.6])))


def _saved(tmp_path):
    path = tmp_path / "m"
    save_model(random_model(SMALL), path)
    return path


def test_weights_cut_short_are_named_with_what_to_do(tmp_path):
    """A copy to the stage laptop that did not finish: the file and the remedy are named."""
    path = _saved(tmp_path)
    weights = path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelError, match="weights.safetensors as safetensors: .*copy the model folder again"):
        load_model(path)


def test_loader_rejects_missing_things(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope")
    path = _saved(tmp_path)
    (path / "weights.safetensors").unlink()
    with pytest.raises(ModelError, match="no weights.safetensors"):
        load_model(path)
    (path / "config.json").unlink()
    with pytest.raises(ModelError, match="no config.json"):
        load_model(path)


def test_loader_rejects_bad_config(tmp_path):
    path = _saved(tmp_path)
    cfg_path = path / "config.json"
    good = json.loads(cfg_path.read_text())
    cfg_path.write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        load_model(path)
    cfg_path.write_text(json.dumps({**good, "format_version": 99}))
    with pytest.raises(ModelError, match="format_version 99"):
        load_model(path)
    cfg_path.write_text(json.dumps({**good, "format": "something-else"}))
    with pytest.raises(ModelError, match="not a livegen model"):
        load_model(path)
    cfg_path.write_text(json.dumps({**good, "config": {**good["config"], "wings": 2}}))
    with pytest.raises(ModelError, match="unknown fields"):
        load_model(path)
    cfg_path.write_text(json.dumps({**good, "config": {**good["config"], "hidden": -1}}))
    with pytest.raises(ModelError, match="hidden"):
        load_model(path)


def test_loader_rejects_shape_mismatch(tmp_path):
    path = _saved(tmp_path)
    cfg_path = path / "config.json"
    data = json.loads(cfg_path.read_text())
    data["config"]["hidden"] = 48  # weights were saved with 32
    cfg_path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"shape \(32, .*needs \(48"):
        load_model(path)


def test_loader_never_unpickles(tmp_path):
    path = _saved(tmp_path)
    marker = tmp_path / "unpickled"

    class Marker:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (path / "weights.safetensors").write_bytes(pickle.dumps({"decoder.0.weight": Marker()}))
    with pytest.raises(ModelError, match="safetensors"):
        load_model(path)
    assert not marker.exists()


def test_decode_contract():
    model = random_model(SMALL, seed=1)
    args = _inputs(model)
    with torch.inference_mode():
        out = model.decode(**args, noise=torch.randn(5, SMALL.noise_dim))
        quiet = model.decode(**args)
    for y in (out, quiet):
        assert y.shape == (5, SMALL.n_bins) and y.dtype == torch.float32
        assert torch.isfinite(y).all() and (y >= 0).all()
    assert not torch.equal(out, quiet)


def test_decode_extreme_inputs_stay_finite():
    model = random_model(seed=0)
    v = 6
    z = torch.tensor([[0.0] * 8, [30.0] * 8, [-30.0] * 8, [1.0] * 8, [0.0] * 8, [0.0] * 8])
    pitch = torch.tensor([-20.0, 0.0, 60.0, 135.0, 200.0, 69.0])
    with torch.inference_mode():
        y = model.decode(z, pitch, torch.tensor([0.0, 1.0, 0.5, 2.0, 0.5, 0.5]),
                         torch.tensor([0.0, 100.0, 1e-4, 5.0, 1.0, -1.0]), torch.tensor([-5.0, 50.0, 0.0, 1.0, -1.0, 1e6]),
                         noise=torch.randn(v, 32) * 5)
    assert torch.isfinite(y).all() and (y >= 0).all()


def _peak_hz(frame, bin_hz):
    """Frequency of the strongest peak, refined by a parabola on the log magnitudes."""
    k = int(np.argmax(frame))
    a, b, c = np.log(frame[k - 1:k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * bin_hz


@pytest.mark.parametrize("base", [43.0, 60.0, 77.0])
def test_peak_moves_with_fractional_pitch(base):
    model = random_model(seed=2)
    cfg = model.config
    pitches = base + torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    v = len(pitches)
    with torch.inference_mode():
        y = model.decode(torch.zeros(v, cfg.latent_dim), pitches, torch.full((v,), 0.8),
                         torch.full((v,), 0.5), torch.full((v,), -1.0)).numpy()
    peaks = np.array([_peak_hz(f, cfg.bin_hz) for f in y])
    f0 = 440.0 * 2.0 ** ((pitches.numpy() - 69.0) / 12.0)
    harmonic = np.round(peaks / f0)
    assert (harmonic >= 1).all()
    # Within a quarter bin of the asked harmonic (neighbouring lobes overlap for low notes).
    off_bins = (peaks - harmonic * f0) / cfg.bin_hz
    assert np.abs(off_bins).max() < 0.25, off_bins
    assert np.all(np.diff(peaks / harmonic) > 0)


def test_determinism_and_noise_source():
    model = random_model(seed=0)
    args = _inputs(model)
    g1 = torch.Generator().manual_seed(7)
    g2 = torch.Generator().manual_seed(7)
    n1 = torch.randn(5, 32, generator=g1)
    n2 = torch.randn(5, 32, generator=g2)
    with torch.inference_mode():
        assert torch.equal(model.decode(**args, noise=n1), model.decode(**args, noise=n2))
        assert torch.equal(random_model(seed=0).decode(**args), model.decode(**args))
        assert not torch.equal(random_model(seed=1).decode(**args), model.decode(**args))
    state = torch.zeros(20000, 32)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        state = model.advance_noise(state, torch.randn(20000, 32, generator=g))
    assert abs(float(state.std()) - math.sqrt(1 - model.config.noise_rho ** 60)) < 0.02


def test_frame_decoder_matches_decode_and_handles_no_voices():
    model = random_model(seed=4)
    fast = model.frame_decoder()
    for v in (0, 1, 6):
        g = torch.Generator().manual_seed(v)
        args = (torch.randn(v, 8, generator=g), torch.linspace(30.0, 90.5, v), torch.rand(v, generator=g),
                torch.rand(v, generator=g), torch.randn(v, generator=g))
        noise = torch.randn(v, 32, generator=g)
        with torch.inference_mode():
            assert fast(*args).shape == (v, 513)
            assert torch.equal(fast(*args), model.decode(*args))
            assert torch.equal(fast(*args, noise), model.decode(*args, noise))
    assert model.frame_decoder(trace=False) == model.decode


def test_xy_plane():
    model = random_model(SMALL, seed=0)
    d = SMALL.latent_dim
    z = model.xy_to_z(torch.rand(3, 7, 2))
    assert z.shape == (3, 7, d)
    xy = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.25]])
    assert torch.allclose(model.z_to_xy(model.xy_to_z(xy)), xy, atol=1e-6)
    # Fit to encodings that spread along two known directions, with two families.
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(400, d, generator=g) * torch.tensor([5.0, 0.1, 2.0, 0.1])
    fams = ["organ" if m[0] > 0 else "brass" for m in mu]
    model.fit_plane(mu, fams)
    axes = model.plane_axes.abs()
    assert axes[0, 0] > 0.99 and axes[1, 2] > 0.99
    assert model.family_centroids["organ"][0] != model.family_centroids["brass"][0]
    assert all(0 <= c <= 1 for xy in model.family_centroids.values() for c in xy)
    assert model.z_to_xy(mu).min() < 0.05 and model.z_to_xy(mu).max() > 0.95
    # A family far along a third direction, left out of the fit, does not tilt the plane; its
    # centroid is still given (on the pad's edge).
    drums = torch.randn(100, d, generator=g) * 0.1 + torch.tensor([0.0, 0.0, 0.0, 30.0])
    model.fit_plane(torch.cat([mu, drums]), fams + ["percussive"] * 100, fit_on=[True] * 400 + [False] * 100)
    axes = model.plane_axes.abs()
    assert axes[0, 0] > 0.99 and axes[1, 2] > 0.99
    assert set(model.family_centroids) == {"organ", "brass", "percussive"}
    model.fit_plane(torch.cat([mu, drums]), fams + ["percussive"] * 100)
    assert model.plane_axes.abs()[0, 3] > 0.9  # fitted on everything, the far family takes an axis


def test_random_model_has_placeholder_centroids_and_encodes():
    model = random_model()
    assert len(model.family_centroids) == 16
    mu, logvar = model.encode(torch.randn(3, 10, 513), torch.tensor([40.0, 60.0, 80.0]), torch.rand(3))
    assert mu.shape == logvar.shape == (3, 8)


def test_a_steep_envelope_does_not_move_a_partial_read_at_its_frequency():
    """Drawn bin by bin under a steep harmonic envelope, a low partial's lobe tilts and its
    centroid (the pitch an inverter finds) moves; read at the harmonic's frequency it stays."""
    cfg = ModelConfig(n_bands=16, max_harmonics=8, n_resid_harmonics=4, hidden=32, enc_hidden=32)
    model = random_model(cfg, seed=0)
    params = torch.zeros(1, model.n_out)
    params[0, :cfg.n_bands] = torch.linspace(-12.0, 12.0, cfg.n_bands)  # steep harmonic envelope
    params[0, cfg.n_bands:2 * cfg.n_bands] = -30.0                       # no noise
    params[0, 2 * cfg.n_bands:2 * cfg.n_bands + cfg.n_resid_harmonics] = torch.tensor([0.0, -40.0, -40.0, -40.0])
    params[0, -1] = -30.0                                                # no inharmonicity
    pitch = torch.tensor([37.0])  # 69.3 Hz: 2.96 bins
    b = float(440.0 * 2 ** ((37.0 - 69.0) / 12) / cfg.bin_hz)
    bins = torch.arange(8, dtype=torch.float32)
    shifts = {}
    for flag in (False, True):
        model.config.envelope_at_harmonics = flag
        with torch.inference_mode():
            frame = model.render(params, pitch)[0, :8]
        shifts[flag] = abs(float((frame * bins).sum() / frame.sum()) - b)
    assert shifts[True] < 0.05 < shifts[False], shifts
