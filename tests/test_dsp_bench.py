"""`livegen bench phase --quick` runs end to end on real FluidSynth / espeak-ng clips."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO, require_binary

pytestmark = pytest.mark.slow  # each test runs the CLI or a benchmark in a process of its own


def test_bench_phase_quick(gm_soundfont):
    require_binary("espeak-ng")
    r = subprocess.run([sys.executable, "-m", "livegen", "bench", "phase", "--quick", "--hop", "256"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    mean = re.search(r"^mean\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s*$", out, re.M)
    assert mean, out
    gl32, rtpghi0, hybrid0, hybrid2 = map(float, mean.groups())
    assert hybrid2 < gl32  # the default beats GL-32 on the same clips (a ratio, not a time)
    assert re.search(r"^hybrid k=2 i8\*(\s+\d+){4}(\s+[\d.]+){3}\s+512\s+23\.22\s+21\.33\s+10\.67$", out, re.M), out
    assert "targets (n_fft 1024, hop 256):" in out


def test_bench_glide_hears_a_slide_sooner_reading_the_centres():
    r = subprocess.run([sys.executable, "-m", "livegen", "bench", "glide", "--cases", "slide"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    ratio = re.search(r"^slide\s+lag centre/window (\d+\.\d+), committed/window (\d+\.\d+)$", out, re.M)
    assert ratio and float(ratio.group(1)) < 0.5 and float(ratio.group(2)) < 0.6, out  # delays in the signal
    sc = dict(re.findall(r"^held\s+(window|centre|committed)\s+(-?\d+\.\d+)", out, re.M))
    assert abs(float(sc["centre"]) - float(sc["window"])) < 1.5, out
    assert abs(float(sc["committed"]) - float(sc["window"])) < 1.5, out
