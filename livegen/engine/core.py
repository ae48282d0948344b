"""The engine: parameters and events in, one output block per model hop out.

One `Engine` serves both paths. Live (`livegen play`), a decoder thread calls `step()` and
writes the block into the ring buffer the audio callback reads; offline (`livegen render`),
a loop calls `step()` on a virtual clock. Events are applied only at hop boundaries and are
stamped with `samples_out` (the output-rate sample index at which they took effect), so an
applied-event log renders back to the same samples.

The engine mixes sources (`livegen.engine.source`): each adds its linear magnitudes for the hop
into one frame, which is inverted as ONE stream, resampled and made safe by the output chain.
It knows the source interface, never a source by name; `livegen.server.factory` builds an
engine with the sources of a model directory. One stream for the mixture rather than one per
voice: separately reconstructed voices interfere where their partials meet, while the summed
stream's phase is fitted to the mixture, and it costs the same whatever the voice count (the
per-voice figures are in docs/benchmarks/history.md). The sum of magnitudes is the mixture's
magnitude wherever voices do not share a bin, which notes of different pitch rarely do.

A hop on CPU makes no torch call and only a few small allocations: the latent point
(`livegen.engine.latent`), the notes source's decode (`livegen.model.fast`), voice bookkeeping
and the output chain are numpy and numba over reused buffers (docs/benchmarks/engine.md).
Applying an event makes no numpy array either (the sound server applies them in the audio
callback): a morph fills buffers made here, the voices' bookkeeping loops in numba
(`livegen bench alloc`, docs/realtime.md).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
import warnings

import numba
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from livegen.audio.chain import OutputChain
from livegen.dsp import StreamingInverter
from livegen.engine.events import PRESET_SLOTS, Event, check_events
from livegen.engine.latent import DriftWalk
from livegen.engine.params import ParamStore, engine_param_specs, latent_param_specs
from livegen.engine.prepare import Preparer
from livegen.engine.source import Hop, Source, SourceContext
from livegen.errors import LivegenError

MORPH_ROWS = PRESET_SLOTS + 1
"""Rows of a morph's or loop's path: where it starts, then one per slot (a loop names at most
`PRESET_SLOTS`)."""


class Engine:
    """The decoder loop: sources mixed into one frame per hop, the inverter and the output chain.

    Parameters
    ----------
    sources : what it mixes, in this order (`livegen.engine.source.Source`); build them with
        `livegen.server.factory`.
    config : the model's settings: `sample_rate`, `n_fft`, `hop`, `n_bins` and `latent_dim` (the
        ``z`` offsets and the drift walk have this many dimensions).
    samplerate : output rate; the model's own rate is resampled to it with soxr.
    seed : seeds the drift walk (child 1 of ``SeedSequence(seed)``; sources seed themselves), so
        the same events, sources and seed give the same samples.
    lookahead : look-ahead frames of the streaming inverter (None: its default).
    device : torch device the sources' models run on (reported in the status and log header).
    threads : torch and BLAS threads of the thread that runs `step` (see `bind_thread`).
    read : how the inverter reads its frames (`livegen.dsp.inverter.READS`): "centre" or
        "committed" make a sound that moves (a bend, a slide, a glide) heard sooner.
    """

    def __init__(self, sources, *, config, samplerate: int = 48000, seed: int = 0, lookahead: int | None = None,
                 device: str = "cpu", method: str | None = None, fade_seconds: float = 0.01, threads: int = 1,
                 read: str = "window"):
        self.sources: tuple[Source, ...] = tuple(sources)
        self.threads = int(threads)
        # BLAS's threads are process-wide: a second one only adds wake-ups (and stalls on a busy
        # machine) for products as small as a hop's.
        threadpool_limits(self.threads, user_api="blas")
        self.config = config
        self.device = device
        self.samplerate = int(samplerate)
        self.seed = int(seed)
        self.hop = config.hop
        self.hop_seconds = config.hop / config.sample_rate
        self.latent_dim = config.latent_dim
        self.params = _merged_store(self.sources, config.latent_dim)
        self._frame = np.zeros((1, config.n_bins), dtype=np.float32)
        inverter_kwargs = {"n_fft": config.n_fft, "hop": config.hop, "iters": int(self.params.get("quality"))}
        if lookahead is not None:
            inverter_kwargs["lookahead"] = int(lookahead)
        if method is not None:
            inverter_kwargs["method"] = method
        inverter_kwargs["read"] = read
        self.inverter = StreamingInverter(**inverter_kwargs)
        self.lookahead = int(self.inverter.lookahead)
        self.chain = OutputChain(in_rate=config.sample_rate, out_rate=self.samplerate, fade_seconds=fade_seconds)
        self._drift = DriftWalk(self.latent_dim, np.random.default_rng(np.random.SeedSequence(self.seed).spawn(2)[1]))
        self._names = self.params.names
        specs = list(self.params.specs.values())
        self._integer = np.array([spec.integer for spec in specs], dtype=np.bool_)
        self._jump = np.array([spec.smoothing == 0.0 for spec in specs], dtype=np.bool_)
        """Which parameters are whole numbers, and which follow a new value at once (a morph's)."""
        self._idx = {name: self.params.index[name] for name in self._names}
        self._onset = np.zeros((1, config.n_bins), dtype=np.float32)
        self._hop = Hop(values=self.params.values, drift=self._drift.offset, seconds=self.hop_seconds,
                        onset=self._onset[0])
        self._routes: dict[str, list[Source]] = {}
        self._reactors: dict[str, list[Source]] = {}
        for source in self.sources:
            for kind in source.events:
                self._routes.setdefault(kind, []).append(source)
            for name in source.reacts_to:
                self._reactors.setdefault(name, []).append(source)
        self._side = ["quality"] + [name for name in self._reactors if name != "quality"]
        """Parameters whose change is acted on at once (a recall, morph or loop that moves them
        calls `_param_changed`)."""
        self._side_index = np.array([self.params.index[name] for name in self._side], dtype=np.int64)
        self._inbox: collections.deque[Event] = collections.deque()
        self._scheduled: list[tuple[int, int, Event]] = []
        self._next_scheduled = 0
        self._listeners: list = []
        self._taps: list = []
        self._preparer = Preparer(threads=self.threads)
        self.presets: dict[int, dict[str, float]] = {}
        self._morph: _Morph | None = None
        n = len(self._names)
        self._morphs = tuple(_Morph(rows=np.zeros((MORPH_ROWS, n)), legs=0, control=np.zeros(n, dtype=np.bool_),
                                    loop=False, start=0, span=0, integer=self._integer, jump=self._jump,
                                    side=self._side, side_index=self._side_index,
                                    side_last=np.zeros(len(self._side))) for _ in range(2))
        """Two morphs' buffers, made here: a new morph or loop (applied in the audio callback) fills
        the one the running morph does not use, so one refused half-way leaves that one intact."""
        self._side_before = np.zeros(len(self._side))
        self.samples_out = 0
        self.hops = 0
        self.clamped = 0
        self.rejected = 0
        self.recording = False
        self.load = 0.0
        self.extra_status: dict = {}
        context = SourceContext(params=self.params, hop_seconds=self.hop_seconds, n_bins=config.n_bins,
                                drift=self._drift)
        for source in self.sources:
            source.bind(context)

    @property
    def calls_torch(self) -> bool:
        """A source's hop runs a torch network (see `Source.calls_torch`)."""
        return any(source.calls_torch for source in self.sources)

    def find(self, kind: type):
        """The first source that is a `kind` (None when there is none)."""
        return next((source for source in self.sources if isinstance(source, kind)), None)

    def handles(self, event_type: str) -> bool:
        """Whether a source of this engine takes events of `event_type` (e.g. "seed")."""
        return event_type in self._routes

    @property
    def log_header(self) -> dict:
        """Session-log header fields the sources need to be rebuilt by a render."""
        header = {}
        for source in self.sources:
            header.update(source.header())
        return header

    # ----------------------------------------------------------------- control (ControlTarget)
    def post(self, event: Event) -> None:
        """Thread-safe and non-blocking: applied at the next hop boundary."""
        self._inbox.append(event)

    def add_listener(self, callback) -> None:
        """`callback(event)` for every applied event, on the engine thread (keep it cheap)."""
        self._listeners.append(callback)

    def add_tap(self, callback) -> None:
        """`callback(block)` for every output block (after the limiter), on the engine thread."""
        self._taps.append(callback)

    def remove_tap(self, callback) -> None:
        if callback in self._taps:
            self._taps.remove(callback)

    def remove_listener(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def schedule(self, events, *, log_path=None, warn=None) -> None:
        """Queue events for the virtual clock: each applies at the first hop boundary at or
        after its `sample` (when stamped) or `t * samplerate`.

        Events that need slow work (a `seed` event's file) are prepared now (`prepare`); one that
        cannot be is left out, and `warn(text)` (default `warnings.warn`) says why.
        """
        warn = warn or warnings.warn
        items = list(self._scheduled[self._next_scheduled:])
        for event in events:
            try:
                event = self.prepare(event, log_path=log_path, warn=warn)
            except LivegenError as exc:
                warn(str(exc))
                continue
            items.append((event.due(self.samplerate), len(items), event))
        items.sort(key=lambda item: (item[0], item[1]))
        self._scheduled = items
        self._next_scheduled = 0

    def prepare(self, event: Event, *, log_path=None, warn=None) -> Event:
        """`event` ready to apply: the sources it is meant for do their slow work on it (off the
        real-time path). Raises a `LivegenError` saying what is wrong."""
        for source in self._routes.get(event.type, ()):
            event = source.prepare(event, log_path=log_path, warn=warn)
        return event

    def submit(self, event: Event, done, *, what: str = "") -> None:
        """Prepare `event` on a worker thread at low priority, then post it (e.g. `/livegen/seed`:
        the file is read and analysed while the engine plays on); `done(ok, text)` as `Preparer`
        says. One at a time."""
        self._preparer.start(lambda: self.prepare(event), self.post, done, what=what, kind=event.type)

    def status(self) -> dict:
        """What `/livegen/status` answers (name/value pairs; the OSC reply stays far below the
        8192-byte packet limit)."""
        nan = sum(source.nonfinite for source in self.sources) + self.chain.nan_count + self.inverter.sanitized
        status = {
            "samplerate": self.samplerate,
            "recording": int(self.recording),
            "load": round(self.load, 4),
            "nan": nan,
            "clamped": self.clamped,
            "peak": round(self.chain.meter_peak, 5),
            "rms": round(self.chain.meter_rms, 5),
            "model_samplerate": self.config.sample_rate,
            "hop": self.hop,
            "rejected": self.rejected,
            "lookahead": self.lookahead,
            "seconds": round(self.samples_out / self.samplerate, 3),
            "device": str(self.device),
        }
        for source in self.sources:
            status.update(source.status())
        status.update(self.extra_status)
        return status

    def bind_thread(self) -> None:
        """Call first on the thread that will run `step`: torch's CPU thread count is per thread.

        A thread that skips it gets torch's default team, which spins against the rest of the
        machine and makes each step many times slower (docs/benchmarks/history.md).
        """
        torch.set_num_threads(self.threads)

    # ----------------------------------------------------------------- the hop
    def step(self) -> np.ndarray:
        """Apply due events, mix one hop of every source, return output samples (a view of a
        buffer the next step overwrites: the audio path makes no array)."""
        started = time.perf_counter()
        self._apply_due()
        self.params.advance(self.hop_seconds)
        values = self.params.values
        idx = self._idx
        self._drift.step(values[idx["drift"]], values[idx["drift_speed"]], self.hop_seconds)
        hop = self._hop
        hop.values = values
        hop.sample = self.samples_out
        hop.index = self.hops
        frame = self._frame[0]
        frame.fill(0.0)  # fill, not frame[:] = 0.0: that makes an array of the 0
        if hop.onsets:
            hop.onset.fill(0.0)
            hop.onsets = 0
        hop.cuts = 0
        for source in self.sources:
            source.add(frame, hop)
        block = self.inverter.push(self._frame, self._onset if hop.onsets else None, cut=hop.cuts > 0)[0]
        out = self.chain.process(block, gain_db=values[idx["gain"]], ceiling_db=values[idx["ceiling"]])
        for tap in self._taps:
            tap(out)
        self.samples_out += len(out)
        self.hops += 1
        spent = time.perf_counter() - started
        ratio = spent / (len(out) / self.samplerate) if len(out) else 0.0
        self.load = 0.98 * self.load + 0.02 * ratio
        return out

    def render(self, seconds: float | None = None, *, frames: int | None = None) -> np.ndarray:
        """Run the virtual clock for exactly `seconds` of output, or `frames` samples (scheduled
        events apply on time)."""
        total = int(round(seconds * self.samplerate)) if frames is None else int(frames)
        out = np.zeros(total, dtype=np.float32)
        filled = self.samples_out
        start = filled
        while self.samples_out - start < total:
            block = self.step()
            n = min(len(block), total - (filled - start))
            out[filled - start:filled - start + n] = block[:n]
            filled += len(block)
        return out

    def render_events(self, events, *, seconds: float | None = None, frames: int | None = None, log_path=None,
                      warn=None) -> np.ndarray:
        """Check `events` (unknown parameter names are refused before anything plays), schedule
        them (see `schedule`) and `render` `seconds` (or `frames` samples) of output."""
        check_events(events, self.params)
        self.schedule(events, log_path=log_path, warn=warn)
        return self.render(seconds, frames=frames)

    def fade_out(self) -> None:
        self.chain.fade_out()

    @property
    def faded_out(self) -> bool:
        return self.chain.faded_out

    # ----------------------------------------------------------------- internals
    def _apply_due(self) -> None:
        while self._next_scheduled < len(self._scheduled) and self._scheduled[self._next_scheduled][0] <= self.samples_out:
            self._apply(self._scheduled[self._next_scheduled][2])
            self._next_scheduled += 1
        inbox = self._inbox
        while inbox:
            self._apply(inbox.popleft())
        if self._morph is not None:
            self._morph_advance()

    def _apply(self, event: Event) -> None:
        applied = event.stamped(self.samples_out, self.samples_out / self.samplerate)
        kind = event.type
        try:
            if kind == "param":
                value, moved = self.params.set(event.name, event.value)
                applied.value = value
                if self._morph is not None:  # the performer's hand wins over a morph
                    self._morph.control[self.params.index[event.name]] = False
                if moved:
                    self.clamped += 1
                    applied.extra["clamped_from"] = event.value
                self._param_changed(event.name)
            elif kind == "preset":
                if event.action == "store":
                    stored = (self.params.snapshot() if event.values is None
                              else {name: float(value) for name, value in event.values.items()})
                    self.presets[int(event.slot)] = stored
                    applied.values = dict(stored)  # the log (and a client) learns what the slot holds
                elif event.action in ("morph", "loop"):
                    if not self._start_morph(event):
                        self.rejected += 1
                        return
                    if self._morph is not None:  # where it goes: what a new engine needs to resume it
                        applied.extra["moves"] = self._morph_moves()
                elif int(event.slot) in self.presets:
                    self._morph = None
                    targets, before = self.params.targets, self._side_before
                    for k, i in enumerate(self._side_index):
                        before[k] = targets[i]
                    self.params.restore(self.presets[int(event.slot)])
                    for k, i in enumerate(self._side_index):
                        if targets[i] != before[k]:
                            self._param_changed(self._side[k])
                else:
                    self.rejected += 1
                    return
            elif kind == "record":
                self.recording = bool(event.value)
            else:
                taken = False
                for source in self._routes.get(kind, ()):
                    taken = source.handle(event) or taken
                if not taken:
                    self.rejected += 1
                    return
        except (ValueError, TypeError, OverflowError):  # unknown parameter or a malformed value from a live source
            self.rejected += 1
            return
        for callback in self._listeners:
            callback(applied)

    @property
    def morphing(self) -> bool:
        """Whether a preset morph or loop is moving parameters now."""
        return self._morph is not None

    def morph_names(self) -> list[str]:
        """The parameters a running morph or loop still moves (none when there is none)."""
        morph = self._morph
        if morph is None:
            return []
        names = self.params.names
        return [names[i] for i in np.flatnonzero(morph.control)]

    def _start_morph(self, event: Event) -> bool:
        """Start (or, for a loop of 0 seconds, stop) a morph; False when it cannot run.

        Every parameter the slots store glides from the current targets on a raised cosine,
        computed from the sample clock at each block boundary, so a render of the same events
        gives the same samples. A `morph` ends on the slot's values; a `loop` glides from the
        current values to its first slot, then slot to slot and back to the first, until a
        `recall`, another `morph`/`loop`, or a `loop` of 0 seconds. A `param` event for a
        parameter under its control releases that parameter alone (the performer's value
        stands; the rest keep moving) for the rest of that morph or loop.
        """
        seconds = float(event.seconds or 0.0)
        if not math.isfinite(seconds) or seconds < 0:
            return False
        if event.action == "loop" and seconds == 0:
            self._morph = None
            return True
        if "resume" in event.extra:
            return self._resume_morph(event.action == "loop", event.extra["resume"])
        if event.action == "loop":
            slots = event.slots if event.slots else sorted(self.presets)
            if not 2 <= len(slots) <= PRESET_SLOTS or any(int(slot) not in self.presets for slot in slots):
                return False
        else:
            if event.slot is None or int(event.slot) not in self.presets:
                return False
            slots = (int(event.slot),)
        store = self.params
        morph = self._spare_morph()
        rows, control = morph.rows, morph.control
        rows[0] = store.targets
        control.fill(False)
        for row, slot in enumerate(slots, start=1):
            rows[row] = store.targets
            for name, value in self.presets[int(slot)].items():
                if name in store.index:  # presets move between models: others are ignored
                    rows[row, store.index[name]] = store.check(name, value)[0]
                    control[store.index[name]] = True
        self._begin_morph(morph, len(slots), loop=event.action == "loop", start=self.samples_out,
                          span=max(int(round(seconds * self.samplerate)), 1 if event.action == "loop" else 0))
        return True

    def _spare_morph(self) -> _Morph:
        """The morph buffers the running morph does not use (a new one is filled there)."""
        return self._morphs[1] if self._morph is self._morphs[0] else self._morphs[0]

    def _begin_morph(self, morph: _Morph, legs: int, *, loop: bool, start: int, span: int) -> None:
        """Run `morph` (its `rows` and `control` filled): `legs` legs of `span` samples from `start`."""
        morph.legs, morph.loop, morph.start, morph.span = legs, loop, start, span
        targets = self.params.targets
        for k, i in enumerate(self._side_index):
            morph.side_last[k] = targets[i]
        self._morph = morph

    def _morph_moves(self) -> dict:
        """The running morph's path, by parameter name (an applied morph's `moves`): each moved
        parameter's value at the start and at each slot, the samples per leg and the start sample.
        Plain lists read from its buffers (made in the audio callback: no temporary arrays)."""
        morph = self._morph
        rows = morph.rows[:morph.legs + 1].tolist()
        control = morph.control
        names = self._names
        return {"rows": {names[i]: [row[i] for row in rows] for i in range(len(names)) if control[i]},
                "span": int(morph.span), "start": int(morph.start)}

    def _resume_morph(self, loop: bool, resume) -> bool:
        """Go on with a morph or loop another engine ran (a `resume`: its `moves` rows and span,
        and the samples it had run), at the same point of its path, so that the parameters move
        as they would have there; parameters this model lacks are left out. False if malformed."""
        if not isinstance(resume, dict) or not isinstance(resume.get("rows"), dict):
            return False
        span, elapsed = int(resume.get("span", -1)), int(resume.get("elapsed", -1))
        moved = resume["rows"]
        lengths = {len(row) if isinstance(row, list) else 0 for row in moved.values()}
        if (span < (1 if loop else 0) or elapsed < 0 or len(lengths) != 1
                or not (3 if loop else 2) <= min(lengths) <= MORPH_ROWS):
            return False
        n_rows = lengths.pop()
        store = self.params
        morph = self._spare_morph()
        rows, control = morph.rows, morph.control
        for r in range(n_rows):
            rows[r] = store.targets
        control.fill(False)
        for name, row in moved.items():
            if name in store.index:  # presets move between models: others are ignored
                i = store.index[name]
                for r, value in enumerate(row):
                    rows[r, i] = store.check(name, value)[0]
                control[i] = True
        self._begin_morph(morph, n_rows - 1, loop=loop, start=self.samples_out - elapsed, span=span)
        return True

    def _morph_advance(self) -> None:
        """Move the morph's parameters to this block boundary's point (no allocation)."""
        morph = self._morph
        store = self.params
        elapsed = self.samples_out - morph.start
        legs = morph.legs
        if not morph.loop and elapsed >= morph.span:
            a, b, w, done = 0, 1, 1.0, True
        else:
            leg, rem = divmod(elapsed, morph.span)
            if leg == 0:
                a, b = 0, 1
            else:
                a, b = 1 + (leg - 1) % legs, 1 + leg % legs
            w = 0.5 - 0.5 * math.cos(math.pi * rem / morph.span)
            done = False
        _morph_step(morph.rows[a], morph.rows[b], w, morph.control, morph.integer, morph.jump,
                    store.targets, store.values)
        for k in range(len(morph.side)):
            now = store.targets[morph.side_index[k]]
            if now != morph.side_last[k]:
                morph.side_last[k] = now
                self._param_changed(morph.side[k])
        if done:
            self._morph = None

    def _param_changed(self, name: str) -> None:
        if name == "quality":
            self.inverter.iters = int(self.params.get("quality"))
        reactors = self._reactors.get(name)
        if reactors:
            value = self.params.get(name)
            for source in reactors:
                source.param_changed(name, value)


def _merged_store(sources, latent_dim: int) -> ParamStore:
    """The engine's parameters, the sources' and the ``z`` offsets in one store: every engine's
    own in their usual order, then the sources' new ones, then the offsets. A name declared
    twice must have the same spec."""
    specs = {spec.name: spec for spec in engine_param_specs()}
    for source in sources:
        for spec in source.params():
            if specs.setdefault(spec.name, spec) != spec:
                raise ValueError(f"{type(source).__name__} declares parameter {spec.name!r} as {spec}, "
                                 f"another as {specs[spec.name]}")
    return ParamStore(list(specs.values()) + latent_param_specs(latent_dim))


@dataclasses.dataclass
class _Morph:
    """A preset morph or loop: its endpoints, in buffers the engine makes once and fills when one starts."""

    rows: np.ndarray
    """[MORPH_ROWS, params]: row 0 the targets when it started, then each slot's values (rows
    1..legs are this morph's)."""
    legs: int
    control: np.ndarray
    """Which parameters it still moves (a `param` event for one releases it)."""
    loop: bool
    start: int
    """Output sample at which it started."""
    span: int
    """Output samples per leg."""
    integer: np.ndarray
    jump: np.ndarray
    """Parameters with no smoothing: their smoothed value follows the target at once."""
    side: list
    side_index: np.ndarray
    side_last: np.ndarray


@numba.njit(cache=True, nogil=True)
def _morph_step(a, b, w, control, integer, jump, targets, values):
    """targets[i] = a[i] on a raised-cosine weight `w` towards b[i], for controlled parameters;
    integer parameters round (so they step), unsmoothed ones take the value at once."""
    for i in range(len(targets)):
        if control[i]:
            v = a[i] * (1.0 - w) + b[i] * w
            if integer[i]:
                v = math.floor(v + 0.5)
            targets[i] = v
            if jump[i]:
                values[i] = v
