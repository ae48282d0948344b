"""The seed document's LSTM recipe as a baseline kind (`kind = "seed_lstm"`): it trains through the
continuation trainer, its checkpoint and model directory load, and the engine and bench run it."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from conftest import REPO
from helpers import write_songs as _write_songs

from livegen.continuation.baseline import SeedLSTMConfig, SeedLSTMModel, SeedLSTMStream
from livegen.continuation.io import is_continuation_model, load_continuation
from livegen.continuation.runtime import ContinuationStream
from livegen.continuation.train import ContinuationTrainConfig, train_continuation
from livegen.errors import ParameterError

TINY = {"hidden": 16, "window": 8, "target_offset": 8}


def _config(**kw) -> ContinuationTrainConfig:
    base = dict(kind="seed_lstm", steps=4, batch=4, val_every=2, log_every=2, ckpt_every=2, val_batches=1,
                basis_frames=2000, lr=1e-3, lr_min=1e-3, warmup=0, grad_clip=1e9, weight_decay=0.0,
                input_noise=0.0, sched_max=0.0, style_frames=16, model=dict(TINY))
    base.update(kw)
    return ContinuationTrainConfig(**base)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    root = tmp_path_factory.mktemp("songs")
    _write_songs(root / "data", n=4, seconds=2.0)
    return root


@pytest.mark.slow
def test_baseline_trains_and_its_checkpoint_and_model_load(songs, tmp_path):
    torch.set_num_threads(1)
    data, cache = songs / "data", songs / "cache"
    # through `livegen train` itself: the config's kind selects the baseline
    from livegen.cli.train import run as train_cli

    config = tmp_path / "seed_lstm.json"
    config.write_text(json.dumps(_config().to_dict()))
    args = argparse.Namespace(data=str(data), out=str(tmp_path / "full"), config=str(config), resume=False, steps=None,
                              seed=None, device="auto", cache=str(cache), threads=None, max_minutes=None, no_progress=True)
    assert train_cli(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(0 < r["val_mse"] < 1 for r in rows)
    model_dir = tmp_path / "full" / "model"
    assert is_continuation_model(model_dir)
    model = load_continuation(model_dir)
    assert isinstance(model, SeedLSTMModel) and model.config.hidden == 16 and model.config.window == 8
    assert model.metadata["steps"] == 4 and "baseline" in model.metadata
    assert 0.0 < model.metadata["levels"]["share_at_floor"] < 1.0
    card = (model_dir / "card.md").read_text()  # its card names the recipe, the command and the figure
    assert card.startswith("# livegen seed_lstm baseline: data") and "seed-recipe baseline: LSTM 1x16" in card
    assert f"`livegen train --config {config} --data {data} --out {tmp_path / 'full'} --cache {cache}`" in card
    assert f"| validation MSE | MSE {model.metadata['val_mse']:.5f}" in card
    # the weights moved from their start and the trained ones are what the directory holds
    saved = load_file(str(model_dir / "weights.safetensors"))
    ckpt = load_file(str(tmp_path / "full" / "checkpoint" / "model.safetensors"))
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(saved[name], value.numpy())
        np.testing.assert_array_equal(ckpt[name], value.numpy())
    fresh = SeedLSTMModel(model.config)
    assert not torch.equal(fresh.dense.weight, model.dense.weight)

    # stopped after 2 steps and resumed from its checkpoint: the uninterrupted run's weights
    part = train_continuation(data, tmp_path / "part", config=_config(), cache_dir=cache, progress=False,
                              log=lambda s: None, stop_after=2)
    assert part["stopped_early"] and part["steps"] == 2
    state = json.loads((tmp_path / "part" / "checkpoint" / "state.json").read_text())
    assert state["train_config"]["kind"] == "seed_lstm"
    resumed = train_continuation(data, tmp_path / "part", config=_config(), cache_dir=cache, progress=False,
                                 log=lambda s: None, resume=True)
    assert resumed["steps"] == 4
    again = load_file(str(tmp_path / "part" / "model" / "weights.safetensors"))
    for name in saved:
        np.testing.assert_array_equal(again[name], saved[name])
    # a real continuation checkpoint is not resumed as a baseline
    with pytest.raises(ParameterError, match="seed_lstm"):
        train_continuation(data, tmp_path / "part", config=_config(kind="continuation", model={}), cache_dir=cache,
                           progress=False, log=lambda s: None, resume=True)


def test_baseline_streams_through_the_engine(songs, tmp_path):
    torch.manual_seed(0)
    model = SeedLSTMModel(SeedLSTMConfig(**TINY)).eval()
    stream = ContinuationStream(model, seed=0)
    assert isinstance(stream, SeedLSTMStream)
    logmag = np.log(np.full((5, model.config.n_bins), 0.5, np.float32))
    stream.feed(logmag)
    played = stream.run(np.zeros(2), 5)
    np.testing.assert_allclose(played, np.exp(logmag) - 1e-5, rtol=1e-6)   # the seed plays as it is
    out = stream.run(np.zeros(2), 3)
    assert out.shape == (3, model.config.n_bins) and np.isfinite(out).all() and stream.steps == 3
    from livegen.continuation.source import render_continuation

    a, _ = render_continuation([], model=model, samplerate=24000, seconds=0.2, seed=1)
    b, _ = render_continuation([], model=model, samplerate=24000, seconds=0.2, seed=1)
    assert a.shape[0] == 4800 and np.isfinite(a).all() and np.abs(a).max() > 0
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_bench_compares_two_models_side_by_side(songs, tmp_path, capsys):
    from livegen.bench.continuation import main

    train_continuation(songs / "data", tmp_path / "b", config=_config(steps=2), cache_dir=songs / "cache",
                       progress=False, log=lambda s: None)
    main(["--model", str(REPO / "models" / "continuation"), "--model", str(tmp_path / "b" / "model"), "--skip", "fit,cost,notes",
          "--seconds", "2"])
    out = capsys.readouterr().out
    assert "seed-recipe baseline: LSTM 1x16" in out and "[side by side]" in out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 3 and table[2].startswith(f"| {tmp_path / 'b' / 'model'} |")


def test_collapse_figures_call_a_frozen_spectrum_frozen():
    """A steady sound (what the seed recipe settles into) passes the flux tests, which are relative
    to its own start, but every second of it is frozen; chords changing each second are not."""
    from livegen.bench.continuation import collapse_figures

    sr = 24000
    t = np.arange(12 * sr) / sr
    rng = np.random.default_rng(0)
    steady = 0.1 * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 330 * t)) + 0.01 * rng.standard_normal(t.size)
    f = collapse_figures(steady.astype(np.float32), sr=sr)
    assert f["silent_seconds"] == 0 and f["static_seconds"] == 0 and f["ratio"] > 0.5
    assert f["frozen_seconds"] == 10 and f["change_median_db"] < 2.0  # 11 whole seconds: 10 changes
    f0 = 110 * 2 ** (rng.permutation(24)[:12] / 12)  # a new note every second
    moving = 0.1 * np.sin(2 * np.pi * np.repeat(f0, sr) * t) + 0.01 * rng.standard_normal(t.size)
    g = collapse_figures(moving.astype(np.float32), sr=sr)
    assert g["frozen_seconds"] == 0 and g["change_median_db"] > 3.0
