"""A rendered hop makes no numpy array: after warm-up, `Engine.step` in every situation a
performer meets (`livegen.bench.alloc.HOP_SITUATIONS`: silence, the drone, 4 and 16 notes,
voice ids with moving controls, notes starting and ending, the pad moving, a preset morph, the
input voice, each read mode and look-ahead, the output chain at 48 and 44.1 kHz), a texture
model's hop, a continuation engine's hop (its model's step runs torch and is left out), and the
sound server's audio callback at lead 0 in a real JACK process callback. Counted by
`livegen.bench.alloc.NumpyAllocations`."""

from __future__ import annotations

import threading

import pytest

from livegen.audio.jackstream import JackStream
from livegen.bench.alloc import (HOP_SITUATIONS, NumpyAllocations, continuation_hops, count_hops, held_notes,
                                 hop_engine, pad_moves)
from livegen.continuation.io import default_continuation_path
from livegen.paths import bundled_model_dir
from livegen.server import factory
from livegen.server.process import Renderer
from livegen.server.shm import Counter, SharedBlock
from livegen.server.wire import ARRIVAL, encode_posted

WARM, HOPS = 30, 40


@pytest.fixture(scope="module")
def loaded():
    import torch

    torch.set_num_threads(1)
    return factory.load(None, log=lambda text: None)


@pytest.mark.parametrize("label, options, setup, events", HOP_SITUATIONS, ids=[s[0] for s in HOP_SITUATIONS])
def test_a_hop_makes_no_numpy_array(loaded, label, options, setup, events):
    engine = hop_engine(options, setup, loaded=loaded)
    count_hops(engine, events, WARM)  # the first hops may compile or grow what they keep
    counted = count_hops(engine, events, HOPS, WARM)
    if engine.samplerate % engine.config.sample_rate:
        # soxr's stream hands out a new array per chunk (it has no `out=`): that one, nothing else.
        assert counted.count <= HOPS and set(counted.where) <= {"soxr/__init__.py:126"}, dict(counted.where)
    else:
        assert counted.count == 0, f"{label}: {counted.count} arrays in {HOPS} hops, at {dict(counted.where)}"


def test_a_texture_model_hop_makes_no_numpy_array():
    engine = hop_engine({}, held_notes((40, 43, 47, 50)), bundled_model_dir("hydrogen-kits"))
    count_hops(engine, pad_moves, WARM)
    counted = count_hops(engine, pad_moves, HOPS, WARM)
    assert counted.count == 0, f"{counted.count} arrays in {HOPS} hops, at {dict(counted.where)}"


def test_a_continuation_hop_makes_no_numpy_array_outside_its_model(loaded):
    engine = hop_engine({}, held_notes((40, 43, 47, 50)), default_continuation_path())
    counter = NumpyAllocations()
    continuation_hops(engine, counter)
    count_hops(engine, pad_moves, WARM)
    counted = count_hops(engine, pad_moves, HOPS, WARM, counter)
    assert counted.count == 0, f"{counted.count} arrays in {HOPS} hops, at {dict(counted.where)}"


@pytest.mark.slow
def test_the_jack_callback_makes_no_numpy_array(jack_server, loaded):
    """The sound server's callback at lead 0 (`Renderer`: the posted events decoded and applied,
    a hop rendered, its FIFO, the audio ring) in the stream's JACK process callback (its copies
    to the ports), a pad event posted every period: counted in JACK's thread
    (numpy's memory handler is per thread) once it has warmed. Posting is the client's work:
    left out."""
    engine = hop_engine({}, held_notes((40, 43, 47, 50)), loaded=loaded)
    shared = SharedBlock(n_params=len(engine.params.names), samplerate=jack_server.rate)
    renderer = Renderer(engine, shared, lead=0)
    applied = []
    engine.add_listener(applied.append)
    index = dict(engine.params.index)
    records = [ARRIVAL.pack(0) + encode_posted(i, event, index)[0]
               for i in range(WARM + HOPS + 8) for event in pad_moves(i)[:1]]
    counter = NumpyAllocations()
    periods = {"n": 0}
    done = threading.Event()

    def callback(outdata, frames, time_info, status):
        n = periods["n"]
        with counter.paused():
            shared.inbox.put(records[n % len(records)])
        renderer.callback(outdata, frames, time_info, status)
        periods["n"] = n = n + 1
        if n == WARM:
            counter.__enter__()  # this thread's handler from here on
        elif n == WARM + HOPS:
            counter.__exit__(None, None, None)
            done.set()

    shared[Counter.GO] = 1
    stream = JackStream(name="livegen-alloc", device="system", samplerate=jack_server.rate, channels=2,
                        callback=callback)
    try:
        stream.start()
        assert done.wait(60), f"{periods['n']} JACK periods in 60 s"
    finally:
        stream.stop()
        stream.close()
        shared.close(unlink=True)
    assert renderer.error is None, renderer.error
    assert engine.rejected == 0 and len(applied) >= WARM + HOPS - 1, (engine.rejected, len(applied))
    assert counter.count == 0, f"{counter.count} arrays in {HOPS} periods, at {dict(counter.where)}"
