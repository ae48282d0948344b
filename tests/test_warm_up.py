"""The sound server's warm-up leaves nothing to compile for the audio callback: the first time a
performer lifts the sustain pedal, starts a morph or cuts a voice, no numba kernel compiles (or
loads from numba's cache) inside a hop. Before the warm-up ran every kind of event, the first
pedal lift held one hop for about half a second and the first morph for 0.4 s."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO
from livegen.engine.catalogue import EVENT_KINDS
from livegen.engine.events import EVENT_TYPES, VOICE_CONTROLS
from livegen.engine.notes import NotesSource

# In a process of its own: numba's compiled kernels live in the process, and other tests'
# renders would have compiled them already.
SCRIPT = r"""
import json, sys
import numba
from livegen.engine.catalogue import EVENT_KINDS
from livegen.server.process import build_engine

def compiled():
    counts = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("livegen"):
            for attr, value in list(vars(module).items()):
                if isinstance(value, numba.core.registry.CPUDispatcher):
                    counts[f"{name}.{attr}"] = len(value.signatures)
    return counts

engine, _ = build_engine({"model": None}, 48000)
for _ in range(4):
    engine.step()
before = compiled()
late = {}
for label, make in EVENT_KINDS:
    for i in (5, 6):  # other values than the warm-up's
        first, event = make(i)
        for each in (*first, event):
            engine.post(each)
        engine.step()
        engine.step()
        now = compiled()
        grew = sorted(k for k in now if now[k] > before.get(k, 0))
        if grew:
            late[label] = grew
        before = now
print(json.dumps({"late": late, "kernels": len(before)}))
"""


@pytest.mark.slow  # loads the default model in a process of its own
def test_after_the_warm_up_no_event_compiles_a_kernel_in_a_hop():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["kernels"] > 10, report  # the engine's kernels were found (else this checks nothing)
    assert report["late"] == {}, f"kernels compiled in a hop, by event kind: {report['late']}"


def test_the_catalogue_holds_every_kind_of_event_the_engine_applies():
    """A new event type, voice control or reacting parameter must join the catalogue, or the
    warm-up leaves its kernels to the first callback that meets it."""
    events = [event for _, make in EVENT_KINDS for i in (0, 1) for event in (*make(i)[0], make(i)[1])]
    types = {event.type for event in events}
    assert set(EVENT_TYPES) - types <= {"engine", "seed"}, "engine: a restart marker; seed: continuation's own"
    assert {event.name for event in events if event.type == "voice"} >= set(VOICE_CONTROLS)
    params = {event.name for event in events if event.type == "param"}
    assert set(NotesSource.reacts_to) <= params
    assert {event.action for event in events if event.type == "preset"} >= {"store", "recall", "morph", "loop"}
    assert any(event.type == "sound_off" and event.voice is not None for event in events)
