"""Output path pieces: the ring buffer and the safety chain."""

from __future__ import annotations

import numpy as np
import pytest

from livegen.audio.chain import LEVELLER_HEADROOM_DB, OutputChain
from livegen.audio.ring import RingBuffer


def test_ring_wraps_and_reports_underruns():
    ring = RingBuffer(1000)
    data = np.arange(2500, dtype=np.float32)
    out = np.zeros((300, 2), dtype=np.float32)
    got = []
    pos = 0
    while pos < len(data):
        pos += ring.write(data[pos:pos + 350])
        n = ring.read_into(out)
        assert np.array_equal(out[:, 0], out[:, 1])
        got.append(out[:n, 0].copy())
    while ring.fill:
        n = ring.read_into(out)
        got.append(out[:n, 0].copy())
    assert np.array_equal(np.concatenate(got), data)
    assert ring.read_into(out) == 0 and not out.any()  # underrun: zeros, counted by the caller
    assert ring.write(np.ones(1200, dtype=np.float32)) == 1000  # never overwrites unread samples


@pytest.mark.slow
@pytest.mark.parametrize("rate", [24000, 44100, 48000])
def test_chain_hands_out_exact_block_sizes_without_gaps(rate):
    chain = OutputChain(in_rate=24000, out_rate=rate)
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(128 * 400) / 24000)).astype(np.float32)
    blocks = [chain.process(x[i:i + 128], gain_db=0.0, ceiling_db=-0.3).copy() for i in range(0, len(x), 128)]
    total = 0
    for k, block in enumerate(blocks, 1):
        total += len(block)
        assert total == -(-k * 128 * rate // 24000)
    y = np.concatenate(blocks)[rate // 10:]
    assert np.abs(y).min() < 0.01 and np.abs(y).max() > 0.25
    zero = np.concatenate([[0], (y == 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(zero))
    assert not len(edges) or (edges[1::2] - edges[::2]).max() < 4  # no dropouts inside the stream


def test_sanitiser_zeroes_and_counts_non_finite_samples():
    chain = OutputChain(in_rate=24000, out_rate=48000)
    block = np.full(128, 0.1, dtype=np.float32)
    block[[3, 50]] = [np.nan, np.inf]
    out = np.concatenate([chain.process(block, gain_db=0, ceiling_db=-0.3).copy() for _ in range(20)])
    assert np.all(np.isfinite(out))
    assert chain.nan_count == 40


def test_limiter_holds_the_ceiling_and_dc_is_blocked():
    chain = OutputChain(in_rate=24000, out_rate=48000)
    loud = (3.0 + np.sin(np.arange(128 * 200) * 0.3)).astype(np.float32)  # +DC, far over full scale
    out = np.concatenate([chain.process(loud[i:i + 128], gain_db=12, ceiling_db=-6).copy() for i in range(0, len(loud), 128)])
    assert np.abs(out).max() <= 10 ** (-6 / 20)
    assert abs(out[-9600:].mean()) < 0.05 * np.abs(out[-9600:]).max()


@pytest.mark.slow
def test_leveller_settles_a_loud_steady_sound_so_the_limiter_holds_still():
    chain = OutputChain(in_rate=24000, out_rate=48000)
    t = np.arange(128 * 600)
    # A loud chord-like sound: RMS near -3 dBFS with peaks far over the ceiling.
    loud = sum(0.25 * np.sin(t * 2 * np.pi * f / 24000 + k) for k, f in enumerate((220, 277, 330, 440, 554, 660)))
    loud = loud.astype(np.float32)
    out, reductions = [], []
    for i in range(0, len(loud), 128):
        out.append(chain.process(loud[i:i + 128], gain_db=0, ceiling_db=-0.3).copy())
        reductions.append(chain.reduction_db)
    out = np.concatenate(out)
    reductions = np.array(reductions)
    held = reductions[-300:]  # the last 1.6 s, long after the 1 s release
    rms_db = 10 * np.log10(np.mean(out[-48000:].astype(np.float64) ** 2))
    assert abs(rms_db - (-0.3 - LEVELLER_HEADROOM_DB)) < 1.0  # held LEVELLER_HEADROOM_DB under the ceiling
    assert np.ptp(held[:, 0]) < 0.5 and np.ptp(held[:, 1]) < 0.5  # no gain wobble: no pumping


def test_leveller_leaves_a_quiet_sound_alone():
    chain = OutputChain(in_rate=24000, out_rate=24000)
    quiet = (0.1 * np.sin(np.arange(128 * 200) * 0.05)).astype(np.float32)  # -23 dBFS RMS
    for i in range(0, len(quiet), 128):
        chain.process(quiet[i:i + 128], gain_db=0, ceiling_db=-0.3)
    assert chain.reduction_db == (0.0, 0.0)
