"""`livegen bench latency`: its detectors on synthetic signals with a known delay, and a short run
on a real dummy jackd that must produce a well-formed table (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, require, require_binary
from livegen.bench import latency

SR = latency.SR


def _noise(n: int, level: float, seed: int = 0) -> np.ndarray:
    return level * np.random.default_rng(seed).standard_normal(n)


@pytest.mark.parametrize("delay", [0, 1, 517, 2400])
def test_onset_found_at_known_delay(delay):
    start = SR // 4
    x = _noise(SR, 1e-5)  # -100 dBFS hiss
    t = np.arange(SR - start - delay) / SR
    x[start + delay:] += 0.1 * np.sin(2 * np.pi * 440 * t) * np.minimum(1.0, t / 0.005)  # 5 ms fade-in
    found = latency.detect_onset(np.stack([x, x]), start)
    # 30 dB above -100 dBFS is reached within the first few samples of the fade-in
    assert found is not None and delay <= found <= delay + 8


def test_onset_ignores_what_sounded_before_the_send_and_reports_none_without_sound():
    start = SR // 4
    x = _noise(SR, 1e-5)
    x[: start // 2] += 0.3  # loud, but over before the 50 ms of silence the threshold is taken from
    assert latency.detect_onset(x, start) is None
    x[start + 1000] = 0.01
    assert latency.detect_onset(x, start) == 1000


@pytest.mark.parametrize("delay", [0, 300, 1700])
def test_spectral_change_found_at_known_delay(delay):
    """A steady tone that turns into another: the detector's onset is the last sample of the first
    frame that clearly changed, so it lies after the change by less than one frame (256)."""
    start = int(0.3 * SR)
    n = start + int(0.4 * SR)
    t = np.arange(n) / SR
    at = start + delay
    x = np.where(np.arange(n) < at, np.sin(2 * np.pi * 330 * t), 0.5 * np.sin(2 * np.pi * 2500 * t))
    x = x + 0.1 * np.sin(2 * np.pi * 660 * t) + _noise(n, 1e-3)
    found = latency.detect_change(x, start)
    assert found is not None and delay <= found < delay + 256


def _held_note(t, brightness):
    """A steady note whose two partials at 700 and 800 Hz both leak into the band that holds one
    FFT bin (750 Hz): where they cancel, that band drops for a single frame (as the bundled
    model's note did); `brightness` adds three upper partials."""
    return (np.sin(2 * np.pi * 262 * t) + 0.3 * np.sin(2 * np.pi * 524 * t) + 0.05 * np.sin(2 * np.pi * 700 * t)
            + 0.05 * np.sin(2 * np.pi * 800 * t + 0.3)
            + brightness * sum(np.sin(2 * np.pi * f * t) for f in (1048, 2096, 4192)))


@pytest.mark.parametrize("delay", [0, 300, 1700])
def test_a_lone_frame_before_the_send_does_not_hide_a_change_that_holds(delay):
    """Before the send one frame lies far from the rest (8 dB; three in a row never pass 3 dB);
    a change that settles 12 dB away is found (taking that lone frame as the noise hid it)."""
    start = int(0.3 * SR)
    n = start + int(0.4 * SR)
    t = np.arange(n) / SR
    x = np.where(np.arange(n) < start + delay, _held_note(t, 0.0), _held_note(t, 0.01)) + _noise(n, 1e-4)
    found = latency.detect_change(x, start)
    assert found is not None and delay <= found < delay + 256
    assert latency.detect_change(_held_note(t, 0.0) + _noise(n, 1e-4), start) is None


def test_no_spectral_change_means_none():
    start = int(0.3 * SR)
    t = np.arange(start + int(0.4 * SR)) / SR
    assert latency.detect_change(np.sin(2 * np.pi * 330 * t) + _noise(len(t), 1e-3), start) is None


@pytest.mark.slow
def test_input_bench_plays_bursts_into_the_input_port_and_finds_the_output():
    r = subprocess.run([sys.executable, "-m", "livegen", "bench", "latency", "--input", "--events", "4"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    row = re.search(r"^\s*input\s+256\s+\S+ \(default\)\s+(\d+)/4\s+([\d.]+)", r.stdout, re.M)
    assert row, r.stdout[-3000:]
    assert int(row.group(1)) >= 3 and float(row.group(2)) > 0


@pytest.mark.slow
def test_bench_runs_on_dummy_jackd_and_prints_a_table(tmp_path):
    require_binary("jackd")
    try:
        import jack  # noqa: F401
    except OSError as exc:
        require(False, f"libjack for the JACK-Client package ({exc})")
    out_md = tmp_path / "latency.md"
    r = subprocess.run([sys.executable, "-m", "livegen", "bench", "latency", "--events", "3", "--periods", "256",
                        "--lookaheads", "0", "--no-realtime", "--kinds", "osc,midi,xy,mpe", "--markdown", str(out_md)],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    head = re.search(r"^\s*control\s+period\s+look-ahead\s+found\s+median ms\s+p95 ms\s+max ms\s+jitter ms\s+"
                     r"floor ms\s+median/floor\s+p95/floor$", r.stdout, re.M)
    assert head, r.stdout
    for kind in (*latency.KINDS, "mpe"):  # mpe: play with --mpe, one member channel's note bent
        row = re.search(rf"^\s*{kind}\s+256\s+0\s+(\d)/3\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+5\.33\s+(\S+)\s+(\S+)$",
                        r.stdout, re.M)
        assert row, (kind, r.stdout)
        assert int(row.group(1)) >= 1, (kind, r.stdout)  # the instrument answered at least once
        float(row.group(2)), float(row.group(6))  # figures and ratios are numbers
    text = out_md.read_text()  # written by `livegen bench --markdown`, stamped
    assert re.search(r"^- commit: [0-9a-f]{10}", text, re.M), text
    assert "- machine: " in text and "- load average" in text and "- date: " in text
    assert head.group(0).strip() in text
