"""Training: a tiny run writes checkpoints/metrics/model, resumes exactly, and runs under DDP."""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_refused, livegen

from livegen.errors import ParameterError
from livegen.model import load_model
from livegen.train import TrainConfig, train

TINY = {
    "batch_notes": 4, "frames_per_note": 4, "enc_frames": 6, "log_every": 2, "val_every": 2, "ckpt_every": 2,
    "plane_notes": 50, "calibrate_notes": 0,
    "model": {"latent_dim": 4, "hidden": 32, "enc_hidden": 32, "n_bands": 16, "max_harmonics": 64, "noise_dim": 8},
}


@pytest.fixture(scope="module")
def tiny_gm(tmp_path_factory, gm_soundfont):
    """16 real FluidSynth notes: programs 0-7 (train, valid and test instruments), 2 pitches."""
    from livegen.data.gm import render_gm_dataset

    out = tmp_path_factory.mktemp("gm")
    render_gm_dataset(out, soundfont=gm_soundfont, sample_rate=24000, programs=list(range(8)), pitches=[48, 60],
                      velocities=[100], hold_s=0.3, release_s=0.1, progress=False)
    return out


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.mark.slow
def test_tiny_run_writes_everything_and_resumes_exactly(tiny_gm, tmp_path):
    cache = tmp_path / "cache"
    command = f"livegen train --data {tiny_gm} --out {tmp_path / 'full'} --steps 6"
    printed = []
    full = train(tiny_gm, tmp_path / "full", config=TrainConfig.from_dict(dict(TINY)), steps=6, device="cpu",
                 cache_dir=cache, progress=False, command=command, log=printed.append)
    assert full["steps"] == 6
    rows = _rows(tmp_path / "full" / "metrics.jsonl")
    # the card: its data, the exact command, the losses training measured, how to play it
    card = (tmp_path / "full" / "model" / "card.md").read_text()
    assert printed[-1] == card
    assert f"Trained by `{command}`" in card
    assert f"`{Path(tiny_gm).resolve()}` (gm layout): " in card and " instruments trained on" in card
    last = {r["split"]: r for r in rows}
    assert f"| final train loss | loss {last['train']['loss']:.4f}: " in card and "; step 6 " in card
    assert f"| validation loss | loss {last['valid']['loss']:.4f}: " in card and "held out for validation" in card
    assert f"livegen play --model {tmp_path / 'full' / 'model'}" in card
    assert [r["step"] for r in rows if r["split"] == "train"] == [2, 4, 6]
    assert [r["step"] for r in rows if r["split"] == "valid"] == [2, 4, 6]
    assert all(r["loss"] == r["loss"] and r["loss"] > 0 for r in rows)
    state = json.loads((tmp_path / "full" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6
    model = load_model(tmp_path / "full" / "model")
    assert model.config.latent_dim == 4 and model.metadata["trained"]
    assert set(model.family_centroids) <= {"keyboard"}

    # Interrupted at 4, resumed to 6: the same losses as the uninterrupted run.
    train(tiny_gm, tmp_path / "part", config=TrainConfig.from_dict(dict(TINY)), steps=4, device="cpu",
          cache_dir=cache, progress=False, finish=False)
    train(tiny_gm, tmp_path / "part", config=TrainConfig.from_dict(dict(TINY)), steps=6, device="cpu",
          cache_dir=cache, progress=False, resume=True)
    resumed = _rows(tmp_path / "part" / "metrics.jsonl")
    assert [r["step"] for r in resumed if r["split"] == "train"] == [2, 4, 6]
    assert resumed[-1]["loss"] == pytest.approx(rows[-1]["loss"], rel=1e-5)
    assert resumed[-2]["loss"] == pytest.approx(rows[-2]["loss"], rel=1e-5)


def test_resume_without_checkpoint_and_bad_config(tiny_gm, tmp_path):
    with pytest.raises(ParameterError, match="no checkpoint"):
        train(tiny_gm, tmp_path / "x", config=TrainConfig.from_dict(dict(TINY)), steps=2, device="cpu",
              cache_dir=tmp_path / "c", progress=False, resume=True)
    with pytest.raises(ParameterError, match="unknown keys"):
        TrainConfig.from_dict({"stepz": 3})
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = [")
    with pytest.raises(ParameterError, match="not valid"):
        TrainConfig.load(bad)
    bad.write_bytes(b"RIFF\x80\xff")  # a WAV given by mistake
    with pytest.raises(ParameterError, match="not a UTF-8 text file"):
        TrainConfig.load(bad)


@pytest.mark.parametrize("extra, named", [
    (["train", "--data", "{tmp}", "--out", "{file}"], ["--out {file}", "not a folder"]),
    (["train", "--data", "{tmp}", "--out", "{file}/run"], ["--out {file}/run", "not a folder"]),
    (["train", "--data", "{tmp}", "--out", "{tmp}/run", "--cache", "{file}"], ["--cache {file}", "not a folder"]),
    (["train", "--data", "{tmp}", "--out", "{tmp}/run", "--threads", "0"], ["--threads", "0", "1..256"]),
    (["train", "--data", "{tmp}", "--out", "{tmp}/run", "--seed", "-1"], ["--seed", "-1", "0..4294967295"]),
    (["train", "--data", "{tmp}", "--out", "{tmp}/run", "--steps", "0"], ["--steps", "0", ">= 1"]),
    (["train", "--data", "{tmp}", "--out", "{tmp}/run", "--max-minutes", "0"], ["--max-minutes", "0", "> 0"]),
    (["eval", "--model", "models/default", "--out", "{tmp}/ev", "--pitch-step", "0"], ["--pitch-step", "0", "0.05..48"]),
    (["eval", "--model", "models/default", "--out", "{file}"], ["--out {file}", "not a folder"]),
    (["eval", "--model", "models/default", "--out", "{tmp}/ev", "--notes", "-5"], ["--notes", "-5", ">= 1"]),
    # the pitches tested are numpy.arange(36, 84, step): 1e-300 was a ValueError after the LSD and life figures
    (["eval", "--model", "models/default", "--out", "{tmp}/ev", "--pitch-step", "1e-300"], ["--pitch-step", "0.05..48"]),
    (["eval", "--model", "models/default", "--out", "{tmp}/ev", "--pitch-points", str(10 ** 9)],
     ["--pitch-points", str(10 ** 9), "1..1000"]),
    (["eval", "--model", "models/default", "--out", "{tmp}/ev", "--per-pitch", "1000"], ["--per-pitch", "1000", "1..20"]),
])
def test_cli_bad_output_or_number_exits_2_before_any_work(tmp_path, extra, named):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    def fill(text):
        return text.replace("{file}", str(taken)).replace("{tmp}", str(tmp_path))

    assert_refused(livegen(*map(fill, extra)), *map(fill, named))
    assert taken.read_text() == "mine" and not (tmp_path / "run").exists()


@pytest.mark.parametrize("settings", [{"seed": 2 ** 40}, {"kind": "continuation", "seed": 2 ** 32}])
def test_config_seed_past_what_seed_takes_is_refused_naming_the_file(tmp_path, settings):
    """A config's own seed has --seed's bound: a larger one overflowed torch's seeding deep in a run."""
    config = tmp_path / "train.json"
    config.write_text(json.dumps(settings))
    result = livegen("train", "--config", config, "--data", tmp_path, "--out", tmp_path / "run")
    assert_refused(result, str(config), f"seed={settings['seed']}", "0..4294967295")
    assert not (tmp_path / "run").exists()
    assert TrainConfig.from_dict({"seed": 2 ** 32 - 1}).seed == 2 ** 32 - 1


def test_cli_train_into_a_finished_run_is_refused_and_leaves_it_alone(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    (run / "metrics.jsonl").write_text("{}\n")
    result = livegen("train", "--data", tmp_path, "--out", run)
    assert_refused(result, f"--out {run}", "already holds a training run", "--resume")
    assert (run / "metrics.jsonl").read_text() == "{}\n" and (run / "model" / "config.json").read_text() == "{}"


@pytest.mark.slow
def test_cli_train_under_torchrun_with_two_cpu_processes(tiny_gm, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun ships with torch"
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "livegen", "train", "--data", str(tiny_gm),
         "--out", str(out), "--config", str(cfg), "--steps", "4", "--device", "cpu", "--no-progress",
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(out / "metrics.jsonl")
    assert rows and all(r.get("world_size", 2) == 2 for r in rows if r["split"] == "train")
    assert (out / "model" / "weights.safetensors").is_file()
    load_model(out / "model")


@pytest.mark.slow
def test_eval_writes_report_and_plane(tiny_gm, tmp_path):
    from livegen.cli import main

    cfg = TrainConfig.from_dict(dict(TINY))
    train(tiny_gm, tmp_path / "run", config=cfg, steps=2, device="cpu", cache_dir=tmp_path / "cache", progress=False)
    out = tmp_path / "eval"
    rc = main(["eval", "--model", str(tmp_path / "run" / "model"), "--data", str(tiny_gm), "--out", str(out),
               "--cache", str(tmp_path / "cache"), "--notes", "3", "--life-notes", "2", "--pitch-points", "2",
               "--pitch-step", "12", "--real-pitch-notes", "2", "--tracker", "yin", "--no-progress", "--no-audio"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["lsd"]["test"]["notes"] == 2 and report["lsd"]["test"]["mean_db"] > 0
    assert report["pitch_generated"]["notes"] == 5 * 2 and report["pitch_generated"]["tracker"] == "yin"
    assert 0 <= report["pitch_generated"]["within_50c"] <= 1
    assert set(report["pass"]) == {"pitch_50c", "pitch_20c", "lsd_db", "life_ratio", "morph_ratio"}
    assert "LSD" in (out / "report.md").read_text()
    if report["plane_png"]:
        assert (out / "plane.png").read_bytes()[:4] == b"\x89PNG"


def test_rms_reconstruction_loss_is_the_frames_lsd_and_bad_names_are_refused(tiny_gm, tmp_path):
    import torch

    from livegen.model import ModelConfig, random_model
    from livegen.train.data import NoteSampler, open_features
    from livegen.train.losses import VAELoss, floored_db

    with pytest.raises(ParameterError, match="rec_loss='l2'"):
        TrainConfig.from_dict({"rec_loss": "l2"})
    mcfg = ModelConfig.from_dict(TINY["model"])
    model = random_model(mcfg, seed=0)
    features = open_features(tiny_gm, cache_dir=tmp_path / "cache", sample_rate=24000, n_fft=mcfg.n_fft, hop=mcfg.hop,
                             progress=False)
    b = NoteSampler(features, "train").batch(np.random.default_rng(0), 3, 4, 6)
    eps = torch.zeros(3, mcfg.latent_dim)
    with torch.no_grad():
        _, l1_parts = VAELoss(model, beta=0.0, env_weight=0.0)(b.enc_frames, b.pitch, b.velocity, b.frames, b.t_on,
                                                               b.t_off, b.log_peak, eps)
        _, rms_parts = VAELoss(model, beta=0.0, env_weight=0.0, rec_loss="rms")(
            b.enc_frames, b.pitch, b.velocity, b.frames, b.t_on, b.t_off, b.log_peak, eps)
        mu, _ = model.encode(b.enc_frames, b.pitch, b.velocity)
        f = b.t_on.shape[1]
        pred = torch.log(model.decode(mu.repeat_interleave(f, 0), b.pitch.repeat_interleave(f),
                                      b.velocity.repeat_interleave(f), b.t_on.reshape(-1), b.t_off.reshape(-1))
                         + 1e-7).view(3, f, -1)
    d = floored_db(pred, b.log_peak) - floored_db(b.frames, b.log_peak)
    assert float(rms_parts[0]) == pytest.approx(float(d.square().mean(-1).add(1e-3).sqrt().mean()), rel=1e-4)
    assert float(l1_parts[0]) == pytest.approx(float(d.abs().mean()), rel=1e-4)
    assert float(rms_parts[0]) > float(l1_parts[0])  # RMS >= mean |x|, strictly for uneven errors


def test_sampler_pitch_includes_the_rendered_detune(gm_soundfont, tmp_path):
    from livegen.data.gm import render_gm_dataset
    from livegen.train.data import NoteSampler, open_features

    out = tmp_path / "gm"
    render_gm_dataset(out, soundfont=gm_soundfont, sample_rate=24000, programs=list(range(8)), pitches=[60],
                      velocities=[100], cents=[-25, 50], hold_s=0.2, release_s=0.1, progress=False)
    features = open_features(out, cache_dir=tmp_path / "cache", sample_rate=24000, n_fft=1024, hop=128, progress=False)
    pitches = sorted(set(NoteSampler(features, "train").pitch.round(3).tolist()))
    assert pitches == [59.75, 60.5]


@pytest.mark.parametrize("settings, named", [
    ({"lr": "fast"}, "lr='fast'; give a number >= 0"),
    ({"lr": -1}, "lr=-1; give a number >= 0"),
    ({"steps": 2.5}, "steps=2.5; give a whole number >= 0"),
    ({"lr": 10 ** 400}, "lr=1000"),  # too large for a float: refused, not an OverflowError
    ({"rec_loss": 3}, "rec_loss=3; give a string"),
])
def test_config_value_of_the_wrong_type_is_refused_naming_it(settings, named):
    with pytest.raises(ParameterError, match=re.escape(named)):
        TrainConfig.from_dict(settings)
