"""Output meters the OSC server sends to subscribers: levels, spectrum, and no allocation per hop."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from livegen.control.midi import describe_message
from livegen.engine.meters import OutputMeters


def sine(freq, amplitude, n, rate=48000):
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def test_levels_and_spectrum_of_a_sine():
    meters = OutputMeters(48000)
    y = sine(1000.0, 0.5, 48000)
    for start in range(0, len(y), 256):
        meters.feed(y[start:start + 256])
    assert meters.sequence == (48000 // 256) // -(-meters.window_samples // 256)  # a window ends on a block
    peak, rms = meters.levels()
    assert peak == pytest.approx(20 * np.log10(0.5), abs=0.05)
    assert rms == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)
    bands = np.array(meters.spectrum())
    assert len(bands) == 64
    centres = np.geomspace(30, 24000, 65)
    loudest = int(np.argmax(bands))
    assert centres[loudest] <= 1000 < centres[loudest + 1] * 1.2
    assert bands[loudest] == pytest.approx(20 * np.log10(0.5), abs=3.0)
    assert bands[:loudest - 6].max() < bands[loudest] - 40  # far below the tone: the window's sidelobes only
    for _ in range(2):  # the window under way ends, then one of silence: the floor, not -inf or NaN
        meters.feed(np.zeros(2000, dtype=np.float32))
    assert meters.levels() == (-120.0, -120.0) and max(meters.spectrum()) == -120.0


def test_a_hop_that_does_not_finish_a_window_allocates_nothing_of_block_size():
    meters = OutputMeters(48000)
    block = sine(440.0, 0.3, 1024)
    meters.feed(block)
    meters.feed(block)  # two windows' worth done; the next feed starts a fresh window
    tracemalloc.start()
    try:
        before = meters.sequence
        meters.feed(block[:256])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert meters.sequence == before
    assert peak < 512, f"{peak} bytes allocated by one hop"


def test_midi_message_as_short_text():
    assert describe_message([0xB0, 70, 64]) == "ch1 CC 70 64"
    assert describe_message([0x99, 36, 100]) == "ch10 note 36 100"
    assert describe_message([0x90, 36, 0]) == "ch1 off 36"
    assert describe_message([0xE1, 0, 64]) == "ch2 bend 0"
    assert describe_message([0xF8]) == "system"
