"""The audio path applies events without making numpy arrays: at lead 0 the sound server's JACK
callback applies them (`livegen.server.process.Renderer`), so every kind of event, applied to a
warmed engine of the default model with the server's listener, must allocate no array data.
Counted by `livegen.bench.alloc.NumpyAllocations` (numpy's memory-handler API), which sees
temporaries that a tracemalloc snapshot would miss."""

from __future__ import annotations

import numpy as np
import pytest

from livegen.bench.alloc import EVENT_KINDS, NumpyAllocations, apply_kind, seed_kind, server_engine
from livegen.continuation.io import default_continuation_path
from livegen.engine.events import Event


@pytest.fixture(scope="module")
def engine():
    import torch

    torch.set_num_threads(1)
    return server_engine()


def test_the_counter_sees_temporaries_and_not_views():
    a = np.zeros(16)
    with NumpyAllocations() as counted:
        b = a[2:8]  # a view: no data
        assert counted.count == 0
        float((a + 1.0).sum())  # a temporary, freed at once
        np.flatnonzero(a > 0)
    assert counted.count >= 3 and counted.bytes >= 16 * 8
    assert any(place.startswith("tests/test_apply_allocations.py:") for place in counted.where), counted.where
    assert b.base is a


@pytest.mark.parametrize("label, make", EVENT_KINDS, ids=[label for label, _ in EVENT_KINDS])
def test_applying_an_event_makes_no_numpy_array(engine, label, make):
    _check_no_arrays(engine, label, make)


def test_a_seed_event_makes_no_numpy_array(tmp_path):
    """A continuation model's seed event (its file prepared off the audio path) only hands the
    prepared frames over."""
    engine = server_engine(default_continuation_path())
    _check_no_arrays(engine, *seed_kind(engine, tmp_path))


def _check_no_arrays(engine, label, make):
    counter = NumpyAllocations()
    for i in range(6):  # the first applications may compile or grow what they keep
        apply_kind(engine, make, i)
    rejected = engine.rejected
    with counter:
        for i in range(6, 30):
            apply_kind(engine, make, i, counter)
    assert engine.rejected == rejected, f"{label}: the engine refused it"
    assert counter.count == 0, f"{label}: {counter.count} arrays in 24 applications, at {dict(counter.where)}"


def test_an_allocating_listener_is_caught(engine):
    """The count covers the listeners the engine calls as it applies (the server's encoder):
    one that makes an array per event fails the check above."""
    counter = NumpyAllocations()

    def wasteful(event):
        np.zeros(4)

    engine.add_listener(wasteful)
    try:
        with counter:
            apply_kind(engine, EVENT_KINDS[0][1], 0, counter)
    finally:
        engine.remove_listener(wasteful)
    assert counter.count == 1


def test_a_refused_morph_leaves_the_running_one_as_it_was(engine):
    """A new morph fills buffers the running one does not use: a resume refused half-way (a value
    that is no number) leaves the running morph's path and position intact."""
    engine._apply(Event("preset", action="morph", slot=1, seconds=2.0))
    before = engine._morph_moves()
    rejected = engine.rejected
    engine._apply(Event("preset", action="morph", slot=0, seconds=1.0, extra={"resume": {
        "rows": {"x": [0.2, 0.8], "gain": [-12.0, "loud"]}, "span": 48000, "elapsed": 0}}))
    assert engine.rejected == rejected + 1
    assert engine.morphing and engine._morph_moves() == before
    engine._apply(Event("preset", action="loop", seconds=0.0))

