"""CREPE (torchcrepe) reads the same pitch from the same audio in every process: the benchmarks'
pitch figures ("within 50 cents") are measured with it and must not move from run to run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from conftest import REPO
from livegen.data.pitch import import_torchcrepe

READ = """
import numpy as np, sys
from livegen.train.evaluate import track_pitch
t = np.arange(16000) / 16000
y = (0.3 * np.sin(2 * np.pi * 445.0 * t)).astype(np.float32)
midi, voiced = track_pitch(y, 16000, method="crepe")
sys.stdout.write(repr([round(float(m), 6) for m in midi[voiced]]))
"""


def test_the_bins_are_read_at_their_centres_without_dither():
    torchcrepe = import_torchcrepe()
    bins = torch.arange(360)
    exact = torchcrepe.CENTS_PER_BIN * bins + 1997.3794084376191
    assert torch.equal(torchcrepe.convert.bins_to_cents(bins), exact)


def test_two_processes_read_the_same_pitch_from_the_same_tone():
    reads = [subprocess.run([sys.executable, "-c", READ], cwd=REPO, capture_output=True, text=True, timeout=300)
             for _ in range(2)]
    for read in reads:
        assert read.returncode == 0, read.stderr[-2000:]
    first, second = (np.array(eval(read.stdout)) for read in reads)
    assert len(first) > 50 and np.array_equal(first, second)
    assert abs(np.median(first) - (69 + 12 * np.log2(445 / 440))) < 0.1  # and the right pitch
