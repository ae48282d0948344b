"""Preset-to-preset trajectories that loop, as ordinary `param` events.

Autonomous mode moves the latent point by itself: the engine's `drift` walk wanders around the
point, and a trajectory carries the point itself from preset to preset and back to the first,
round and round. It is made of events (`x`/`y` and any other preset values, interpolated on a
smooth cosine ease), so it renders offline, plays live (`post` each event when due), lands in
the session log and re-renders exactly, with no new machinery in the engine.
"""

from __future__ import annotations

import math

from livegen.engine.events import Event
from livegen.errors import ParameterError


def loop_events(presets: list[dict], *, seconds_per_leg: float, total_seconds: float, rate: float = 20.0,
                start: float = 0.0, names: tuple[str, ...] | None = None) -> list:
    """Events moving through `presets` (dicts of parameter values) in a loop.

    Each leg from one preset to the next lasts `seconds_per_leg`; values are sent `rate` times
    per second; only parameters present in every preset move (or those in `names`).
    """
    if len(presets) < 2:
        raise ParameterError(f"a trajectory needs at least 2 presets, got {len(presets)}")
    if seconds_per_leg <= 0 or total_seconds <= 0 or rate <= 0:
        raise ParameterError("seconds_per_leg, total_seconds and rate must be positive")
    keys = names or tuple(sorted(set.intersection(*(set(p) for p in presets))))
    if not keys:
        raise ParameterError("the presets share no parameter to move; give x/y (or names=...)")
    events = []
    n = int(math.floor(total_seconds * rate)) + 1
    for i in range(n):
        t = i / rate
        leg, frac = divmod(t / seconds_per_leg, 1.0)
        a = presets[int(leg) % len(presets)]
        b = presets[(int(leg) + 1) % len(presets)]
        w = 0.5 - 0.5 * math.cos(math.pi * frac)
        for name in keys:
            events.append(Event(t=round(start + t, 6), type="param", name=name,
                                value=float(a[name] + (b[name] - a[name]) * w)))
    return events


def genre_presets(model, genres: list[str] | None = None) -> list[dict]:
    """XY presets at the genres' centroids on the model's plane (`family_centroids`)."""
    cents = model.family_centroids
    chosen = genres or sorted(cents)
    missing = [g for g in chosen if g not in cents]
    if missing:
        raise ParameterError(f"no centroid for {missing}; the model knows {sorted(cents)}")
    return [{"x": float(cents[g][0]), "y": float(cents[g][1])} for g in chosen]
