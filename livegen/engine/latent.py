"""The performer's latent point, shared by the sources: the XY pad on each model's plane, the
``z`` offsets, the glide, and the engine's drift walk. numpy and numba only, buffers reused."""

from __future__ import annotations

import math

import numba
import numpy as np

from livegen.model.plane import XYPlane

DRIFT_SCALE = 1.0
"""Standard deviation of the drift walk in latent units at drift = 1 (the prior is N(0, 1))."""
DRIFT_BOUND = 3.0


JUMP = 0.25
"""A point that moves further than this (latent units, on any dimension) in one hop without
glide jumped: the engine cuts to the new sound at once (`StreamingInverter.push`'s ``cut``)
instead of letting it fill the synthesis window. A hand or knob moving the pad, a few
hundredths of a unit per hop, never gets there."""


class DriftWalk:
    """A bounded Ornstein-Uhlenbeck walk (unit variance, clipped), advanced once per hop whatever
    the drift amount, so turning it up mid-performance does not change the noise that follows."""

    def __init__(self, dim: int, rng: np.random.Generator):
        self._rng = rng
        self.walk = np.zeros(dim)
        self._fresh = np.zeros(dim)
        self.offset = np.zeros(dim)

    def step(self, amount: float, speed_hz: float, hop_seconds: float) -> np.ndarray:
        """Advance one hop; returns `offset` (the walk times `amount`, latent units)."""
        theta = min(2 * math.pi * speed_hz * hop_seconds, 1.0)
        self._rng.standard_normal(out=self._fresh)
        _drift_step(self.walk, self._fresh, theta, amount * DRIFT_SCALE, self.offset)
        return self.offset

    def reset(self) -> None:
        self.walk[:] = 0.0


class LatentPoint:
    """A source's latent point for one hop: its model's `plane` at ``x, y``, plus the ``z``
    offsets (on the dimensions both have), glided by ``glide``, plus the drift walk."""

    def __init__(self, plane: XYPlane, params, *, hop_seconds: float):
        self.plane = plane
        dim = plane.latent_dim
        offsets = 0
        while offsets < dim and f"z{offsets}" in params.index:
            offsets += 1
        self._z_index = np.array([params.index[f"z{i}"] for i in range(offsets)], dtype=np.int64)
        self._x, self._y, self._glide = (params.index[name] for name in ("x", "y", "glide"))
        self._hop = float(hop_seconds)
        self._key = (math.nan, math.nan)
        self._xy_z = np.zeros(dim)
        self._smooth = np.zeros(dim)
        self._fresh = True
        self._index = -1
        self.z = np.zeros(dim)
        self.jumped = False
        """Whether this hop's point jumped (no glide) by more than `JUMP` on some dimension."""

    def __call__(self, hop) -> np.ndarray:
        """This hop's point (`self.z`, overwritten next hop); a second call in the same hop
        (`Hop.index`) returns it as it is."""
        if hop.index == self._index:
            return self.z
        self._index = hop.index
        values = hop.values
        key = (values[self._x], values[self._y])
        if key != self._key:
            self.plane.z(key[0], key[1], self._xy_z)
            self._key = key
        glide = values[self._glide]
        reset = self._fresh or glide <= 0
        smooth = 0.0 if reset else 1.0 - math.exp(-self._hop / glide)
        moved = _glide_step(values, self._z_index, self._xy_z, self._smooth, reset, smooth, hop.drift, self.z)
        self.jumped = reset and not self._fresh and moved > JUMP
        self._fresh = False
        return self.z


@numba.njit(cache=True, nogil=True)
def _drift_step(walk, fresh, theta, amount, offset):
    step = math.sqrt(2.0 * theta)
    for i in range(len(walk)):
        d = walk[i] + (-theta * walk[i] + step * fresh[i])
        d = min(max(d, -DRIFT_BOUND), DRIFT_BOUND)
        walk[i] = d
        offset[i] = amount * d


@numba.njit(cache=True, nogil=True)
def _glide_step(values, z_index, xy_z, smooth, reset, rate, drift, out):
    """Glide `smooth` towards the target point and write the point into `out`; returns the
    largest step a dimension took."""
    n_off = len(z_index)
    n_drift = len(drift)
    moved = 0.0
    for i in range(len(out)):
        target = xy_z[i]
        if i < n_off:
            target = target + values[z_index[i]]
        before = smooth[i]
        if reset:
            smooth[i] = target
        else:
            smooth[i] += (target - smooth[i]) * rate
        moved = max(moved, abs(smooth[i] - before))
        v = smooth[i]
        if i < n_drift:
            v = v + drift[i]
        out[i] = v
    return moved
