"""Sources: what the engine mixes. One per generator: note voices with the drone, a continuation
stream, a texture model, a test's fake. The engine knows this interface, never a source by name.

The shape is pedalboard's `Plugin`: one method does the work (`add`: this hop's linear
magnitudes, added into the engine's mix frame); everything else has a default that does nothing,
so a test-only source is a few lines (`livegen.engine.fake.FakeSource`). The engine

- merges each source's `params()` into its one `ParamStore` (MIDI learn, OSC, presets, the log
  reach them like any other) and calls `param_changed` for the names in `reacts_to`;
- routes the event types in `events` to `handle` at hop boundaries, stamping those it takes;
- calls `prepare` off the real-time path (`Engine.submit`'s worker thread, or before rendering
  offline; the sound server's client prepares seeds in its own process) for events that need
  slow work first (reading and analysing a file), so `handle` only swaps references;
- adds `status()` to `/livegen/status` and `header()` to the session log's header, and counts
  `nonfinite` in the status's `nan`.

An audio input's voice: `livegen.engine.input.InputSource` tracks the input's f0, loudness and
voicing (and encodes its timbre) and decodes one voice.
Per-voice control (MPE, /livegen/voice): `livegen.engine.notes.NotesSource` takes `voice` events
and decodes a voice with a pad offset at its own latent point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from livegen.engine.events import Event
from livegen.engine.latent import DriftWalk, LatentPoint
from livegen.engine.params import ParamSpec, ParamStore


PITCH_JUMP_SEMITONES = 0.8
"""A sounding voice whose pitch moves this far from one frame to the next (a bend or a followed
pitch that jumps) adds its new frame to `Hop.onset`, so the new pitch sounds at once instead of
rising through the synthesis window (half a window, 21 ms at the default model's, behind)."""


@dataclass
class Hop:
    """What every source gets for one hop (the same object each hop: read it, do not keep it)."""

    values: np.ndarray
    """Smoothed parameter values this hop, indexed by `ParamStore.index`."""
    drift: np.ndarray
    """The engine's drift walk this hop, in latent units, to add to a latent point (`LatentPoint`)."""
    seconds: float
    """Hop length in seconds at the model rate."""
    sample: int = 0
    """Output sample at which this hop's events took effect."""
    index: int = 0
    """How many hops the engine ran before this one (what work done once a hop is keyed by)."""
    onset: np.ndarray | None = None
    """float32 ``[n_bins]``, zero at the start of each hop: a source adds here (as well as into
    the frame) the magnitudes of what starts this hop (a note's first frame), which then sounds
    at once instead of through the window's rising edge (`StreamingInverter.push`)."""
    onsets: int = 0
    """How many sources added an onset this hop (0: the engine skips the pre-roll)."""
    cuts: int = 0
    """How many sources jumped this hop (their sound changed at once: a latent point moved with
    no glide); the engine then cuts to the new frame instead of crossfading through the window."""


@dataclass(frozen=True)
class SourceContext:
    """What a source learns from the engine once, in `bind`, before the first hop."""

    params: ParamStore
    """The engine's one store: look up indices here (`params.index[name]`); values come in `Hop`."""
    hop_seconds: float
    n_bins: int
    drift: DriftWalk
    """The shared drift walk (a source may `reset()` it, e.g. on a return to its seed)."""
    latents: list = field(default_factory=list, repr=False)
    """The latent points handed out (`latent_point`)."""

    def latent_point(self, plane) -> LatentPoint:
        """The `LatentPoint` on `plane` that every source asking for an equal plane shares: it
        moves once a hop, whichever asks first (a model's notes and input voice glide as one,
        for the cost of one). A source that takes it calls it every hop."""
        for point in self.latents:
            if point.plane.equals(plane):
                return point
        point = LatentPoint(plane, self.params, hop_seconds=self.hop_seconds)
        self.latents.append(point)
        return point


class Source:
    """One generator the engine mixes. Subclasses implement `add`; the rest is optional."""

    events: tuple[str, ...] = ()
    """Event types it handles (e.g. "note_on", "seed", "voice"); the engine routes them here."""
    reacts_to: tuple[str, ...] = ()
    """Parameters whose change it acts on at once (`param_changed`); the rest it reads from `Hop.values`."""
    nonfinite: int = 0
    """Non-finite magnitudes it zeroed so far (counted in the status's `nan`)."""
    calls_torch: bool = False
    """Its `add` runs a torch network (a GPU decoder, a recurrent step): a live server then
    renders it on a thread beside the audio callback, never in it."""

    def params(self) -> list[ParamSpec]:
        """Parameters it adds to the engine's store (a name every engine has, or another source
        declares, must have the same spec)."""
        return []

    def bind(self, context: SourceContext) -> None:
        """Called once by the engine, after its store is built and before the first hop."""

    def add(self, frame: np.ndarray, hop: Hop) -> None:
        """Add this hop's linear magnitudes into `frame` (float32 ``[n_bins]``). Real-time: no
        lock, no big allocation, no log, and no torch call unless it says `calls_torch`."""
        raise NotImplementedError

    def handle(self, event: Event) -> bool:
        """Apply an event of one of its `events` types at this hop boundary; False rejects it."""
        return False

    def param_changed(self, name: str, value: float) -> None:
        """A parameter in `reacts_to` was set (by an event, a preset recall or a morph)."""

    def prepare(self, event: Event, *, log_path=None, warn=None) -> Event:
        """Slow work an event needs before `handle` (off the real-time path): returns the event
        ready to apply (e.g. with a `payload`). Raises a `LivegenError` saying what is wrong;
        `log_path` is the session log an event came from (to find files beside it), `warn(text)`
        hears of what differs from the recording."""
        return event

    def status(self) -> dict:
        """Name/value pairs for `/livegen/status` (numbers and short strings)."""
        return {}

    def header(self) -> dict:
        """Session-log header fields a render needs to rebuild this source."""
        return {}
