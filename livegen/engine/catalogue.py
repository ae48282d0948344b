"""Every kind of event the spectral engine applies, each with what it needs in place first.

The sound server's warm-up (`livegen.server.process`) applies them all to a spare engine of the
model before the first callback, so that the first time a performer lifts the sustain pedal or
starts a morph no numba kernel compiles (or loads from numba's cache) inside the audio callback;
`livegen bench alloc` counts what each one allocates there.
"""

from __future__ import annotations

from livegen.engine.events import Event

STORED = {0: {"x": 0.1, "y": 0.9, "gain": -20.0, "z0": -1.0, "voices": 4},
          1: {"x": 0.9, "y": 0.2, "gain": -4.0, "z0": 2.0, "voices": 12},
          2: {"x": 0.5, "y": 0.5, "gain": -10.0, "z1": 1.5, "quality": 2}}
"""Presets stored before the kinds are applied (and a few notes held: see `setup_events`)."""


def setup_events() -> list[Event]:
    """What the engine holds before the kinds are applied: three stored presets, four notes."""
    events = [Event("preset", action="store", slot=slot, values=dict(values)) for slot, values in STORED.items()]
    return events + [Event("note_on", pitch=pitch, velocity=90) for pitch in (40, 43, 47, 50)]


def _p(name, value):
    return Event("param", name=name, value=float(value))


def _preset(action, **fields):
    return Event("preset", action=action, **fields)


EVENT_KINDS = (
    # label: application i -> (events applied first, not counted; the event counted)
    ("param x (the pad)", lambda i: ((), _p("x", (i % 10) / 10))),
    ("param z0, clamped", lambda i: ((), _p("z0", 9.0 if i % 2 else -9.0))),
    ("param voices (steals)", lambda i: ((), _p("voices", 1 + i % 8))),
    ("param sustain up (releases)", lambda i: ((_p("sustain", 1), Event("note_on", pitch=60, velocity=80),
                                                Event("note_off", pitch=60)), _p("sustain", 0))),
    ("param quality", lambda i: ((), _p("quality", 2 + i % 3))),
    ("param drone", lambda i: ((), _p("drone", i % 2))),
    ("note_on", lambda i: ((), Event("note_on", pitch=52 + i % 24, velocity=100))),
    ("note_off", lambda i: ((Event("note_on", pitch=80, velocity=100),), Event("note_off", pitch=80))),
    ("note_on, voice id", lambda i: ((), Event("note_on", pitch=52 + i % 24, velocity=100, voice=1 + i % 15))),
    ("note_off, voice id", lambda i: ((Event("note_on", pitch=81, velocity=100, voice=20),),
                                      Event("note_off", pitch=81, voice=20))),
    ("voice (MPE bend)", lambda i: ((), Event("voice", voice=1 + i % 15, name="bend", value=(i % 7) / 7))),
    ("voice (MPE slide, y)", lambda i: ((), Event("voice", voice=1 + i % 15, name="y", value=(i % 5) / 5 - 0.4))),
    ("voice (pad offset x)", lambda i: ((), Event("voice", voice=1 + i % 15, name="x", value=(i % 5) / 5 - 0.4))),
    ("voice (MPE pressure)", lambda i: ((), Event("voice", voice=1 + i % 15, name="pressure", value=(i % 4) / 4))),
    ("preset store", lambda i: ((), _preset("store", slot=10 + i % 4))),
    ("preset store, values", lambda i: ((), _preset("store", slot=14, values={"x": (i % 10) / 10, "y": 0.5}))),
    ("preset recall", lambda i: ((), _preset("recall", slot=i % 3))),
    ("preset morph", lambda i: ((), _preset("morph", slot=i % 3, seconds=0.5))),
    ("preset loop, 3 slots", lambda i: ((), _preset("loop", seconds=0.5, slots=(0, 1, 2)))),
    ("preset loop, every slot", lambda i: ((), _preset("loop", seconds=0.5))),
    ("preset loop 0 s (stop)", lambda i: ((_preset("loop", seconds=0.5, slots=(0, 2)),), _preset("loop", seconds=0.0))),
    ("param during a morph", lambda i: ((_preset("morph", slot=1, seconds=2.0),), _p("x", (i % 10) / 10))),
    ("preset morph, resumed", lambda i: ((), _preset("morph", slot=1, seconds=1.0, extra={"resume": {
        "rows": {"x": [0.2, 0.8], "gain": [-12.0, -6.0]}, "span": 48000, "elapsed": 100 * i}}))),
    ("record", lambda i: ((), Event("record", value=float(i % 2)))),
    ("sound_off, voice id", lambda i: ((Event("note_on", pitch=82, velocity=100, voice=21),
                                        Event("note_on", pitch=84, velocity=100, voice=21)), Event("sound_off", voice=21))),
    ("sound_off, plain notes", lambda i: ((Event("note_on", pitch=83, velocity=100),), Event("sound_off"))),
    ("sound_off, every note (panic)", lambda i: ((Event("note_on", pitch=85, velocity=100, voice=22),
                                                  Event("note_on", pitch=86, velocity=100), _p("drone", 0)),
                                                 Event("sound_off", action="all"))),
)
"""Every kind of event the spectral engine applies, with what it needs in place to do its work."""
