"""Issue-8 loose ends: `livegen bench continuation` gives the notes figures too; `livegen render`
with a VAE model says once that it skips seed events."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO

pytestmark = pytest.mark.slow  # each test runs the CLI or a benchmark in a process of its own


def test_bench_continuation_has_the_notes_part(capsys):
    from livegen.bench.continuation import main

    assert main(["--skip", "collapse,fit,cost", "--notes-hops", "10"]) == 0
    out = capsys.readouterr().out
    assert "[notes beside the stream" in out
    for case in ("no voice model (before)", "voice model, 0 notes", "voice model, 1 note", "voice model, 8 notes",
                 "spectral engine (models/default), 8 notes", "continuation stream alone"):
        assert case in out, out
    no_voice = next(line for line in out.splitlines() if "no voice model (before)" in line)
    assert no_voice.split()[-6] == "-"  # no voice model: no voice decodes, whatever notes the bank holds
    eight = next(line for line in out.splitlines() if "voice model, 8 notes" in line)
    assert eight.split()[-6] == "8"
    assert "8 notes in real time" in out


def test_bench_notes_module_alone_still_runs():
    result = subprocess.run([sys.executable, "-m", "livegen.continuation.bench_notes", "--hops", "10"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "voice model, 8 notes" in result.stdout and "stream alone" in result.stdout


def test_vae_render_warns_once_about_seed_events(tmp_path):
    events = tmp_path / "events.jsonl"
    wav = tmp_path / "seed.wav"
    sf.write(wav, np.zeros(2400, np.float32), 24000)
    events.write_text('{"type": "header", "seed": 1}\n'
                      '{"t": 0.05, "type": "note_on", "pitch": 60, "velocity": 90}\n'
                      '{"t": 0.1, "type": "seed", "path": "%s"}\n'
                      '{"t": 0.2, "type": "seed", "path": "%s"}\n' % (wav, wav))
    out = tmp_path / "x.wav"
    result = subprocess.run([sys.executable, "-m", "livegen", "render", str(events), "-o", str(out), "--seconds", "0.3",
                             "--model", "random"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("warning: the seed event") == 1, result.stderr
    assert f"t=0.1 s ({wav}) and 1 more" in result.stderr
    assert "--model models/continuation" in result.stderr
    assert out.exists()
    events.write_text('{"type": "header", "seed": 1}\n{"t": 0.05, "type": "note_on", "pitch": 60, "velocity": 90}\n')
    result = subprocess.run([sys.executable, "-m", "livegen", "render", str(events), "-o", str(out), "--seconds", "0.3",
                             "--model", "random"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "seed event" not in result.stderr, result.stderr
