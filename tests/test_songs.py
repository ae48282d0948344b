"""gm-songs: generated pieces are deterministic, rendered by the real FluidSynth into a GTZAN layout."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from livegen.data.datasets import open_dataset
from livegen.data.songs import DRUM_CHANNEL, GENRES, generate_piece, render_songs
from livegen.errors import ParameterError


def test_pieces_are_deterministic_and_valid():
    a = generate_piece(3, seed=1, seconds=6.0)
    b = generate_piece(3, seed=1, seconds=6.0)
    c = generate_piece(3, seed=2, seconds=6.0)
    assert a.events == b.events and a.to_meta() == b.to_meta()
    assert a.events != c.events
    assert a.genre == GENRES[3]
    for piece in (a, c):
        notes = [e for e in piece.events if e[2] == "on"]
        assert notes and all(0 <= e[4] <= 127 and 1 <= e[5] <= 127 and 0 <= e[0] < 6.0 for e in notes)
        assert sorted(piece.events, key=lambda e: (e[0], e[1], e[3], e[4])) == piece.events
        ons = sum(e[2] == "on" for e in piece.events)
        assert ons == sum(e[2] == "off" for e in piece.events)


def test_drums_on_channel_10_where_the_style_has_drums():
    rock = generate_piece(GENRES.index("rock"), seed=0, seconds=4.0)
    assert any(e[3] == DRUM_CHANNEL and e[2] == "on" for e in rock.events)
    channels = {e[3] for e in rock.events if e[2] == "on"}
    assert {0, 1, 2, DRUM_CHANNEL} <= channels


@pytest.mark.slow
def test_render_layout_determinism_and_cli(tmp_path, gm_soundfont):
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    report = render_songs(out_a, soundfont=gm_soundfont, songs=3, seconds=2.0, seed=5, progress=False)
    cli = subprocess.run(
        [sys.executable, "-m", "livegen", "dataset", "gm-songs", "--soundfont", str(gm_soundfont), "--out", str(out_b),
         "--songs", "3", "--seconds", "2", "--seed", "5", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert "3 pieces" in cli.stdout
    files = sorted(p.relative_to(out_a) for p in out_a.rglob("*.wav"))
    assert [str(p) for p in files] == [f"genres_original/{g}/{g}.00000.wav" for g in sorted(GENRES[:3])]
    for rel in files:
        assert (out_a / rel).read_bytes() == (out_b / rel).read_bytes()
        y, sr = sf.read(out_a / rel)
        assert sr == 24000 and len(y) == 48000 and 0.01 < np.abs(y).max() <= 0.99
    assert (out_a / "songs.json").read_text() == (out_b / "songs.json").read_text()
    ds = open_dataset(out_a)
    assert ds.layout == "gtzan" and sorted(ex.label for ex in ds) == sorted(GENRES[:3])
    assert [p["genre"] for p in report["pieces"]] == list(GENRES[:3])


def test_bad_arguments_name_the_value(tmp_path, gm_soundfont):
    with pytest.raises(ParameterError, match="--songs 0"):
        render_songs(tmp_path, soundfont=gm_soundfont, songs=0)
    with pytest.raises(ParameterError, match="does not exist"):
        render_songs(tmp_path, soundfont=tmp_path / "none.sf2", songs=1)
