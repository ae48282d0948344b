"""`livegen bench mpe` runs its three phases through a real JACK MIDI port (on the fake target,
briefly) and prints each phase's bend latency beside the baseline's."""

from __future__ import annotations

import re

import pytest

from conftest import require_binary
from livegen.cli import main


@pytest.mark.slow
def test_bench_mpe_prints_the_phases_and_ratios(capsys, monkeypatch):
    require_binary("jackd")
    for name in ("JACK_DEFAULT_SERVER", "JACK_NO_AUDIO_RESERVATION", "JACK_NO_START_SERVER"):
        monkeypatch.setenv(name, "")  # the bench's private jackd sets them: given back after the test
    code = main(["bench", "mpe", "--target", "fake", "--seconds", "0.5", "--bends", "5", "--fingers", "2", "--rate", "50"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "2 fingers on member channels 2-3" in text and "errors 0" in text, text
    for phase in ("still", "offsets", "stream"):
        assert re.search(rf"^{phase}\s+median .*\(n=5\)", text, re.M), (phase, text)  # every bend timed
    assert "stream/still: bend sent -> applied median" in text, text
