"""`LiveFeed.read_hop`: the device-rate ring read back a model hop at a time (no device needed)."""

from __future__ import annotations

import types

import numpy as np

from livegen.audio.input import BACKLOG_SECONDS, LiveFeed
from livegen.audio.ring import RingBuffer


def _feed(device_rate: int = 48000, model_rate: int = 24000) -> LiveFeed:
    live = types.SimpleNamespace(ring=RingBuffer(2 * device_rate), samplerate=device_rate, info={"name": "test"},
                                 largest_block=256)
    return LiveFeed(live, model_rate=model_rate)


def test_a_period_in_is_a_hop_out_resampled_with_the_pitch_kept():
    feed = _feed()
    t = np.arange(48000 * 2) / 48000
    x = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    hop = np.zeros(128, np.float32)
    out, real = [], []
    for i in range(0, len(x), 256):  # a duplex callback: a period in, then the hop it renders
        feed.live.ring.write(x[i:i + 256])
        real.append(feed.read_hop(hop))
        out.append(hop.copy())
    assert feed.underruns <= 1 and all(n == 128 for n in real[2:]), real[:4]
    y = np.concatenate(out)[4800:]
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spectrum) * 24000 / len(y) - 440.0) < 2.0
    assert 0.45 < np.abs(y).max() < 0.55
    assert feed.skipped == 0


def test_input_waiting_longer_than_the_backlog_is_dropped_and_counted():
    feed = _feed()
    feed.live.ring.write(np.ones(48000, np.float32))  # a second of input nobody read (a stalled engine)
    hop = np.zeros(128, np.float32)
    feed.read_hop(hop)
    assert feed.skipped == 48000 - int(BACKLOG_SECONDS * 48000)
    assert feed.live.ring.fill == 0
    assert feed.header() == {"device": "test", "device_samplerate": 48000, "model_samplerate": 24000}


def test_same_rates_pass_the_samples_through_untouched():
    feed = _feed(24000, 24000)
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    feed.live.ring.write(x[:300])
    hop = np.zeros(128, np.float32)
    assert feed.read_hop(hop) == 128 and np.array_equal(hop, x[:128])
    assert feed.read_hop(hop) == 128 and np.array_equal(hop, x[128:256])
    assert feed.read_hop(hop) == 44 and np.array_equal(hop[:44], x[256:300]) and not hop[44:].any()
    assert feed.underruns == 1


def test_cycles_lost_under_load_do_not_hold_the_pitch_on_a_subharmonic():
    """Input cycles lost to xruns can make the tracker read a tone's subharmonic for a moment; its
    continuity must not hold it there (a pure tone dips as deep at every multiple of its period).
    This pattern of lost cycles (seed 23) held 330 Hz at 110 Hz before."""
    import soxr

    from livegen.dsp.tracker import PitchTracker

    rng = np.random.default_rng(23)
    sr = 48000
    freq = np.where(np.arange(4 * sr) < 2 * sr, 220.0, 330.0)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(freq) / sr)
    kept = [x[i:i + 256] for i in range(0, len(x), 256)
            if not (1.5 * sr < i < 1.95 * sr and rng.random() < 0.25)]  # a quarter of the cycles lost
    y = soxr.resample(np.concatenate(kept), sr, 24000)
    tracker = PitchTracker(samplerate=24000, window=1024)  # as `InputSource` runs it: pitch every other hop
    for hop, i in enumerate(range(0, len(y) - 128, 128)):
        tracker.push(y[i:i + 128], pitch=False)
        if hop % 2:
            tracker.analyse()
    assert abs(tracker.f0 - 330.0) < 2.0, tracker.f0
