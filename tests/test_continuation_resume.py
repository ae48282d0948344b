"""`livegen train --resume` for the continuation model: stopped and resumed == uninterrupted."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from safetensors.numpy import load_file
from helpers import TINY_CONTINUATION as TINY, write_songs as _write_songs

from livegen.continuation.io import load_continuation
from livegen.continuation.train import ContinuationTrainConfig, train_continuation
from livegen.errors import ParameterError


def _config(**kw) -> ContinuationTrainConfig:
    base = dict(steps=8, batch=4, seq_blocks=8, style_frames=64, val_every=4, log_every=2, ckpt_every=3,
                val_batches=1, basis_frames=2000, warmup=2, sched_start=2, model=dict(TINY))
    base.update(kw)
    return ContinuationTrainConfig(**base)


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    root = tmp_path_factory.mktemp("songs")
    _write_songs(root / "data")
    return root


@pytest.mark.slow
def test_stopped_and_resumed_run_matches_the_uninterrupted_one(songs, tmp_path):
    import torch

    torch.set_num_threads(1)
    data, cache = songs / "data", songs / "cache"
    full = train_continuation(data, tmp_path / "full", config=_config(), cache_dir=cache, progress=False, log=lambda s: None)
    assert full["steps"] == 8
    # Stopped after 5 steps (the last checkpoint is at 3: steps 4-5 are lost and redone), then
    # resumed through `livegen train --resume` itself.
    part = train_continuation(data, tmp_path / "part", config=_config(), cache_dir=cache, progress=False,
                              log=lambda s: None, stop_after=5)
    assert part["stopped_early"] and part["steps"] == 5
    state = json.loads((tmp_path / "part" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 5 and state["stopped_early"] and state["train_config"]["kind"] == "continuation"
    assert not (tmp_path / "part" / "model").exists()
    # Back to the periodic checkpoint at step 3 (what a killed run leaves), with its rows 4..5 logged.
    from livegen.train.loop import CHECKPOINT

    ckpt = tmp_path / "part" / CHECKPOINT
    part3 = train_continuation(data, tmp_path / "part3", config=_config(), cache_dir=cache, progress=False,
                               log=lambda s: None, stop_after=3)
    assert part3["steps"] == 3
    import shutil

    shutil.rmtree(ckpt)
    shutil.copytree(tmp_path / "part3" / CHECKPOINT, ckpt)

    from livegen.cli.train import run as train_cli

    config = tmp_path / "cont.json"
    config.write_text(json.dumps(_config().to_dict()))
    args = argparse.Namespace(data=str(data), out=str(tmp_path / "part"), config=str(config), resume=True, steps=None,
                              seed=None, device="cpu", cache=str(cache), threads=1, max_minutes=None, no_progress=True)
    assert train_cli(args) == 0

    a, b = _rows(tmp_path / "full" / "metrics.jsonl"), _rows(tmp_path / "part" / "metrics.jsonl")
    assert [r["step"] for r in b] == [2, 4, 6, 8]  # the rows after the checkpoint were dropped and logged again
    for ra, rb in zip(a, b):
        assert {k: v for k, v in ra.items() if k != "seconds"} == {k: v for k, v in rb.items() if k != "seconds"}
    wa = load_file(str(tmp_path / "full" / "model" / "weights.safetensors"))
    wb = load_file(str(tmp_path / "part" / "model" / "weights.safetensors"))
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)
    for name in ("model", "optim"):
        ca = load_file(str(tmp_path / "full" / CHECKPOINT / f"{name}.safetensors"))
        cb = load_file(str(tmp_path / "part" / CHECKPOINT / f"{name}.safetensors"))
        for key in ca:
            np.testing.assert_array_equal(ca[key], cb[key], err_msg=f"{name}.{key}")
    assert load_continuation(tmp_path / "part" / "model").metadata["steps"] == 8


def test_resume_refuses_a_missing_or_foreign_checkpoint(songs, tmp_path):
    data, cache = songs / "data", songs / "cache"
    with pytest.raises(ParameterError, match="no checkpoint"):
        train_continuation(data, tmp_path / "none", config=_config(), cache_dir=cache, progress=False,
                           log=lambda s: None, resume=True)
    train_continuation(data, tmp_path / "run", config=_config(), cache_dir=cache, progress=False, log=lambda s: None,
                       stop_after=3)
    other = dict(TINY, hidden=48)
    with pytest.raises(ParameterError, match="model settings"):
        train_continuation(data, tmp_path / "run", config=_config(model=other), cache_dir=cache, progress=False,
                           log=lambda s: None, resume=True)
    state = tmp_path / "run" / "checkpoint" / "state.json"
    saved = json.loads(state.read_text())
    saved["train_config"] = {"steps": 3}  # a spectral VAE's checkpoint
    state.write_text(json.dumps(saved))
    with pytest.raises(ParameterError, match="not a continuation model"):
        train_continuation(data, tmp_path / "run", config=_config(), cache_dir=cache, progress=False,
                           log=lambda s: None, resume=True)


@pytest.mark.slow
def test_resume_under_torchrun_with_two_cpu_processes(songs, tmp_path):
    """`torchrun --nproc_per_node=2 -m livegen train --config cont.json`: DDP on gloo, stopped
    after 4 steps (a full run of 4), resumed to 6 with --resume from rank 0's checkpoint."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import REPO

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun ships with torch"
    config = tmp_path / "cont.json"
    config.write_text(json.dumps(_config(steps=6, log_every=2, val_every=2, ckpt_every=2).to_dict()))
    base = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "livegen", "train", "--data", str(songs / "data"),
            "--out", str(tmp_path / "run"), "--config", str(config), "--cache", str(songs / "cache"), "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for extra in (["--steps", "4"], ["--steps", "6", "--resume"]):
        proc = subprocess.run(base + extra, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming at step 4 of 6" in proc.stdout + proc.stderr
    rows = _rows(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4, 6] and all(np.isfinite(r["nll"]) for r in rows)
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6 and state["world_size"] == 2
    assert load_continuation(tmp_path / "run" / "model").metadata["steps"] == 6
