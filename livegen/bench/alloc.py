"""`livegen bench alloc`: what applying each kind of event allocates on the audio path.

At lead 0 the sound server applies events inside the JACK callback (`livegen.server.process`),
so an event's cost there is the engine's `_apply` plus the server's listener, which encodes the
applied event for the client (`livegen.server.wire.encode_applied`). For each event kind, on a
warmed engine of the default model (the continuation model for a `seed` event), this applies
the event many times (a hop rendered between applications, not counted) and prints per event:

- numpy arrays allocated and their bytes, counted by a numpy memory handler that sees every
  array's data buffer (temporaries too, which a tracemalloc snapshot misses), and the lines
  that allocated them;
- the Python heap's high-water mark above where it stood (tracemalloc's peak), less what the
  measuring itself makes. (Blocks still held say little: freed floats, tuples and dicts stay
  on the interpreter's free lists.)

The baseline of the same run: one hop (`Engine.step`) with no event. Then per hop, for each of
`HOP_SITUATIONS` (and a continuation engine, its model's forward pass left out): the numpy arrays
a hop makes, its events applied first and counted with it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import ctypes
import re
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile
from numpy._core import _multiarray_umath

from livegen.continuation.io import default_continuation_path
from livegen.continuation.source import ContinuationSource
from livegen.engine.catalogue import EVENT_KINDS, STORED, setup_events
from livegen.engine.events import Event
from livegen.engine.input import FileFeed
from livegen.errors import ranged
from livegen.paths import bundled_model_dir
from livegen.server import factory
from livegen.server.wire import ID_KEY, encode_applied

_MALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_CALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)


class _Allocator(ctypes.Structure):
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p), ("calloc", ctypes.c_void_p),
                ("realloc", ctypes.c_void_p), ("free", ctypes.c_void_p)]


class _Handler(ctypes.Structure):
    """numpy's `PyDataMem_Handler` (NEP 49), version 1."""
    _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8), ("allocator", _Allocator)]


_NUMPY_DIR = str(Path(np.__file__).parent)
_THIS_FILE = __file__


class NumpyAllocations:
    """Counts the numpy arrays whose data is allocated in this thread while it is installed
    (`with NumpyAllocations() as counted:`; `counted.paused()` leaves work out).

    Installed through numpy's memory-handler API (NEP 49): the handler delegates to numpy's
    default one and counts each data allocation, with the first line outside numpy that asked.
    Arrays keep the handler they were made with: theirs frees through numpy's own code, so they
    may outlive the count. A view allocates no data and is not counted.
    """

    def __init__(self):
        self.count = 0
        self.bytes = 0
        self.where: collections.Counter = collections.Counter()
        self._counting = True
        self._old = None
        api = _array_api()
        default = api["PyDataMem_DefaultHandler"]
        handler = ctypes.cast(_capsule_pointer(ctypes.cast(default, ctypes.POINTER(ctypes.py_object))[0]),
                              ctypes.POINTER(_Handler))[0]
        if handler.version != 1:
            raise RuntimeError(f"numpy {np.__version__}'s memory handler is version {handler.version}; "
                               "NumpyAllocations knows version 1")
        own = handler.allocator
        # Called with the interpreter lock held (numpy's calloc releases it itself while zeroing).
        malloc = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)(own.malloc)
        calloc = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)(own.calloc)

        def on_malloc(ctx, size):
            self._seen(size)
            return malloc(own.ctx, size)

        def on_calloc(ctx, count, size):
            self._seen(count * size)
            return calloc(own.ctx, count, size)

        self._callbacks = (_MALLOC(on_malloc), _CALLOC(on_calloc))
        # realloc and free go straight to numpy's own: arrays made while counting may be freed at
        # any time later, even while the interpreter shuts down.
        allocator = _Allocator(own.ctx, ctypes.cast(self._callbacks[0], ctypes.c_void_p).value,
                               ctypes.cast(self._callbacks[1], ctypes.c_void_p).value, own.realloc, own.free)
        # Arrays hold the capsule; the struct it points to must outlive them: it is never freed.
        memory = ctypes.pythonapi.PyMem_RawMalloc
        memory.restype, memory.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        address = memory(ctypes.sizeof(_Handler))
        ctypes.memmove(address, ctypes.addressof(_Handler(b"livegen_counting", 1, allocator)), ctypes.sizeof(_Handler))
        _KEPT.append(self._callbacks)
        new = ctypes.pythonapi.PyCapsule_New
        new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        self._capsule = new(address, b"mem_handler", None)
        self._set = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(api["PyDataMem_SetHandler"])

    def _seen(self, size: int) -> None:
        if not self._counting:
            return
        self.count += 1
        self.bytes += size
        frame = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename.startswith(_NUMPY_DIR)
                                     or frame.f_code.co_filename == _THIS_FILE):
            frame = frame.f_back
        self.where[f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}" if frame is not None else "?"] += 1

    def __enter__(self) -> NumpyAllocations:
        self._old = self._set(self._capsule)
        return self

    def __exit__(self, *exc) -> None:
        self._set(self._old)
        self._old = None

    def reset(self) -> None:
        self.count = self.bytes = 0
        self.where.clear()

    @contextlib.contextmanager
    def paused(self):
        """Leave out what runs inside (the counter stays installed)."""
        self._counting = False
        try:
            yield
        finally:
            self._counting = True


_KEPT: list = []
"""The callbacks of every counting handler made (arrays made under one may call it later)."""


def _short(path: str) -> str:
    marker = "/livegen/"
    if marker in path:
        return "livegen/" + path.rsplit(marker, 1)[1]
    return f"{Path(path).parent.name}/{Path(path).name}"  # a library's own: soxr/__init__.py


def _capsule_pointer(capsule, name: bytes | None = b"mem_handler") -> int:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get(capsule, name)


def _array_api() -> dict:
    """numpy's C-API table entries for its memory handlers, found by the indices its own header gives."""
    header = Path(np.get_include(), "numpy", "__multiarray_api.h")
    try:
        text = header.read_text()
    except OSError as exc:
        raise RuntimeError(f"cannot read numpy's C-API header {header} ({exc}); NumpyAllocations needs it") from None
    table = ctypes.cast(_capsule_pointer(_multiarray_umath._ARRAY_API, None), ctypes.POINTER(ctypes.c_void_p))
    found = {}
    for name in ("PyDataMem_SetHandler", "PyDataMem_DefaultHandler"):
        match = re.search(rf"#define {name}\b[^#]*?PyArray_API\[(\d+)\]", text)
        if match is None:
            raise RuntimeError(f"{header} does not define {name}; NumpyAllocations needs numpy >= 1.22")
        found[name] = table[int(match.group(1))]
    return found




def apply_kind(engine, make, i: int, counter: NumpyAllocations | None = None) -> None:
    """Application `i` of an `EVENT_KINDS` entry: its first events and a hop (paused in `counter`,
    which the caller installs), then its event."""
    first, event = _made(make, i)
    with counter.paused() if counter is not None else contextlib.nullcontext():
        for before in first:
            engine._apply(before)
        engine.step()
    engine._apply(event)


def _made(make, i: int):
    """Application `i`'s events; the counted one carries a client's number, as a posted event does."""
    first, event = make(i)
    event.extra[ID_KEY] = i
    return first, event


def server_engine(model=None, *, wire: bool = True):
    """An engine of `model` (None: the default one), warmed, with the sound server's listener (the
    applied event encoded for the client, as the audio callback does at lead 0) unless not `wire`."""
    loaded = factory.load(model, log=lambda text: None)
    engine = loaded.engine(samplerate=48000, seed=0)
    if wire:
        engine.add_listener(encode_applied)
    for event in setup_events():
        engine._apply(event)
    engine.render(0.2)
    return engine


def seed_kind(engine, folder) -> tuple:
    """The `EVENT_KINDS` entry of a continuation engine's `seed` event: a second of a chord
    written to `folder` and prepared (off the audio path, as `Engine.submit` does), then applied."""
    rate = engine.config.sample_rate
    t = np.arange(rate) / rate
    path = Path(folder) / "seed.wav"
    soundfile.write(path, sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)), rate, subtype="FLOAT")
    prepared = engine.prepare(Event("seed", extra={"path": str(path)}), warn=lambda text: None)
    return ("seed (continuation)", lambda i: ((), dataclasses.replace(prepared, extra=dict(prepared.extra))))


def _measure(engine, make, n: int, warm: int) -> dict:
    counter = NumpyAllocations()
    for i in range(warm):
        apply_kind(engine, make, i)
    with counter:
        for i in range(warm, warm + n):
            apply_kind(engine, make, i, counter)
    peak = 0
    tracemalloc.start()
    try:
        for i in range(warm + n, warm + 2 * n):
            first, event = _made(make, i)
            for before in first:
                engine._apply(before)
            engine.step()
            peak += _python_peak(engine._apply, event) - _python_peak(_nothing, event)
    finally:
        tracemalloc.stop()
    return {"arrays": counter.count / n, "bytes": counter.bytes / n, "peak": peak / n,
            "where": counter.where}


def _python_peak(work, event) -> int:
    """The Python heap's high-water mark above where it stood in `work(event)`, tracemalloc running."""
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    work(event)
    return tracemalloc.get_traced_memory()[1] - base


def _nothing(event) -> None:
    return None


def _baseline(engine, n: int) -> dict:
    counter = NumpyAllocations()
    with counter:
        for _ in range(n):
            engine.step()
    return {"arrays": counter.count / n, "bytes": counter.bytes / n, "where": counter.where}


def held_notes(pitches, **fields) -> list[Event]:
    return [Event("note_on", pitch=pitch, velocity=90, **fields) for pitch in pitches]


def _voice_ids(n: int) -> list[Event]:
    return [Event("note_on", pitch=40 + 3 * k, velocity=90, voice=1 + k) for k in range(n)]


def _moving_voices(i: int) -> list[Event]:
    return [Event("voice", voice=1 + k, name=name, value=((i + 3 * k) % 11) / 11)
            for k in range(4) for name in ("bend", "x", "y")]


def pad_moves(i: int) -> list[Event]:
    return [Event("param", name="x", value=(i % 37) / 37), Event("param", name="y", value=1.0 - (i % 23) / 23)]


def _morph(i: int) -> list[Event]:
    return [Event("preset", action="morph", slot=i // 40 % 3, seconds=0.5)] if i % 40 == 0 else []


def _onsets(i: int) -> list[Event]:
    if i % 7 == 0:
        return [Event("note_on", pitch=50 + i % 12, velocity=100)]
    return [Event("note_off", pitch=50 + (i - 3) % 12)] if i % 7 == 3 else []


def _none(i: int) -> list[Event]:
    return []


HOP_SITUATIONS = (
    # label, engine options (`LoadedModel.engine`'s; "input": an input voice fed by a FileFeed),
    # events before the counted hops, events applied before hop i (counted with the hop)
    ("nothing sounding", {}, [Event("param", name="drone", value=0.0)], _none),
    ("drone alone", {}, [Event("param", name="drone", value=1.0)], _none),
    ("4 notes held", {}, held_notes((40, 43, 47, 50)), _none),
    ("16 notes held", {}, [Event("param", name="voices", value=16.0)] + held_notes(range(36, 84, 3)), _none),
    ("4 voice ids, controls moving", {}, _voice_ids(4), _moving_voices),
    ("notes starting and ending", {}, held_notes((40, 43)), _onsets),
    ("pad moving (x, y every hop)", {}, held_notes((40, 43, 47, 50)), pad_moves),
    ("preset morph running", {}, [Event("preset", action="store", slot=s, values=dict(v)) for s, v in STORED.items()]
     + held_notes((40, 43, 47, 50)), _morph),
    ("input voice (FileFeed)", {"input": True}, held_notes((40, 47)), _none),
) + tuple(
    (f"read {read}, look-ahead {ahead}", {"read": read, "lookahead": ahead}, held_notes((40, 43, 47, 50)), pad_moves)
    for read in ("window", "centre", "committed") for ahead in (0, 1, 2) if not (read == "centre" and ahead == 0)
) + (
    ("output at 44.1 kHz (soxr)", {"samplerate": 44100}, held_notes((40, 43, 47, 50)), _none),
)
"""Every situation a performer meets, for the per-hop count (`hop_engine`, `count_hops`)."""


def _input_feed(rate: int):
    t = np.arange(2 * rate) / rate
    samples = (0.3 * np.sin(2 * np.pi * 196.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)
    return FileFeed(np.tile(samples, 30), samplerate=rate, model_rate=rate)


def hop_engine(options: dict, setup, model=None, loaded=None):
    """A warmed engine for a `HOP_SITUATIONS` entry (`loaded`: a `factory.load` result to reuse)."""
    loaded = loaded if loaded is not None else factory.load(model, log=lambda text: None)
    kwargs = dict(options)
    if kwargs.pop("input", False):
        kwargs["input_feed"] = _input_feed(loaded.config.sample_rate)
    kwargs.setdefault("samplerate", 48000)
    engine = loaded.engine(seed=0, **kwargs)
    engine.add_listener(encode_applied)
    for event in setup:
        engine._apply(event)
    engine.render(0.2)
    return engine


def count_hops(engine, events, hops: int, start: int = 0, counter: NumpyAllocations | None = None,
               outside=None) -> NumpyAllocations:
    """Count what `hops` hops allocate, each after applying `events(i)`; `outside(counter)` wraps
    what is left out (a continuation model's forward pass)."""
    counter = counter if counter is not None else NumpyAllocations()
    with counter:
        for i in range(start, start + hops):
            for event in events(i):
                engine._apply(event)
            engine.step()
    return counter


def continuation_hops(engine, counter: NumpyAllocations) -> None:
    """Leave a continuation engine's model out of `counter`: the stages of its stream's step (the
    network's forward pass in torch, then the draw from its output), outside the no-allocation
    rule. The rest of the hop (the frame made from the drawn block) is counted."""
    stream = engine.find(ContinuationSource).stream
    for name in ("_run_stage", "_start"):
        method = getattr(stream, name)

        def paused(*args, _method=method, **kwargs):
            with counter.paused():
                return _method(*args, **kwargs)

        setattr(stream, name, paused)


def _hop_rows(hops: int, warm: int) -> list[tuple[str, NumpyAllocations]]:
    loaded = factory.load(None, log=lambda text: None)
    rows = []
    for label, options, setup, events in HOP_SITUATIONS:
        engine = hop_engine(options, setup, loaded=loaded)
        count_hops(engine, events, warm)
        rows.append((label, count_hops(engine, events, hops, warm)))
    engine = hop_engine({}, held_notes((40, 43, 47, 50)), bundled_model_dir("hydrogen-kits"))
    count_hops(engine, pad_moves, warm)
    rows.append(("texture model (hydrogen-kits), 4 notes, the pad moving", count_hops(engine, pad_moves, hops, warm)))
    engine = hop_engine({}, held_notes((40, 43, 47, 50)), default_continuation_path())
    counter = NumpyAllocations()
    continuation_hops(engine, counter)
    count_hops(engine, pad_moves, warm)
    label = "continuation model, 4 notes, the pad moving (its model's step left out)"
    rows.append((label, count_hops(engine, pad_moves, hops, warm, counter)))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="livegen bench alloc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=ranged(int, 1), default=200, help="applications counted per event kind")
    parser.add_argument("--warm", type=ranged(int, 0), default=20, help="applications first, not counted")
    parser.add_argument("--no-wire", action="store_true",
                        help="the engine's apply alone, without the server's encoding of the applied event")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print(f"numpy {np.__version__}; per event, over {args.count} applications after {args.warm} not counted; "
          + ("the engine's apply alone" if args.no_wire else
             "the engine's apply and the server's encoding of the applied event"))
    print()
    print("| event | numpy arrays | numpy bytes | Python peak bytes | arrays allocated at |")
    print("|---|---:|---:|---:|---|")
    engine = server_engine(wire=not args.no_wire)
    with tempfile.TemporaryDirectory() as folder:
        continuation = server_engine(default_continuation_path(), wire=not args.no_wire)
        kinds = [(engine, kind) for kind in EVENT_KINDS] + [(continuation, seed_kind(continuation, folder))]
        for on, (label, make) in kinds:
            r = _measure(on, make, args.count, args.warm)
            where = ", ".join(f"{place} ({count / args.count:g})" for place, count in r["where"].most_common(4))
            print(f"| {label} | {r['arrays']:.2f} | {r['bytes']:.0f} | {r['peak']:.0f} | {where} |")
    base = _baseline(engine, args.count)
    where = ", ".join(f"{place} ({count / args.count:g})" for place, count in base["where"].most_common(4))
    print(f"\nbaseline: one hop with no event (4 notes held): {base['arrays']:.2f} numpy arrays, "
          f"{base['bytes']:.0f} bytes a hop; at {where or '-'}")
    print(f"\nPer hop (`Engine.step`, the events of each hop applied first and counted), over {args.count} hops "
          f"after {args.warm}:\n")
    print("| situation | numpy arrays a hop | numpy bytes a hop | arrays allocated at |")
    print("|---|---:|---:|---|")
    for label, counted in _hop_rows(args.count, args.warm):
        where = ", ".join(f"{place} ({count / args.count:g})" for place, count in counted.where.most_common(4))
        print(f"| {label} | {counted.count / args.count:.2f} | {counted.bytes / args.count:.0f} | {where or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
