"""The XY pad's plane in a model's latent space, in numpy: the engine maps x, y with it every
hop the pad moves, so a hop never calls torch."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class XYPlane:
    """``z = origin + (lo + xy * (hi - lo)) @ axes`` (float32, as the model's `xy_to_z`)."""

    origin: np.ndarray
    """[latent_dim]"""
    axes: np.ndarray
    """[2, latent_dim]"""
    lo: np.ndarray
    """[2]: plane coordinates at the pad's (0, 0)"""
    hi: np.ndarray
    """[2]: plane coordinates at the pad's (1, 1)"""

    @classmethod
    def from_buffers(cls, origin, axes, lo, hi) -> "XYPlane":
        """From the model's torch buffers (copied once, at load)."""
        def arr(t):
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

        return cls(arr(origin), arr(axes), arr(lo), arr(hi))

    @classmethod
    def flat(cls, latent_dim: int) -> "XYPlane":
        """A plane that maps every pad position to the origin (a model without one)."""
        zeros = np.zeros(2, np.float32)
        return cls(np.zeros(latent_dim, np.float32), np.zeros((2, latent_dim), np.float32), zeros, zeros)

    @property
    def latent_dim(self) -> int:
        return len(self.origin)

    def equals(self, other: "XYPlane") -> bool:
        """Whether `other` maps every pad position to the same point (the same arrays)."""
        return all(np.array_equal(getattr(self, name), getattr(other, name)) for name in ("origin", "axes", "lo", "hi"))

    def z(self, x: float, y: float, out: np.ndarray) -> np.ndarray:
        """Write the latent point of pad position (x, y) into `out` (float64 [latent_dim]); the
        audio path calls it, so it makes no array."""
        _plane_z(self.origin, self.axes, self.lo, self.hi, float(x), float(y), out)
        return out


@numba.njit(cache=True, nogil=True)
def _plane_z(origin, axes, lo, hi, x, y, out):
    """`XYPlane.z` in float32 throughout, as numpy computed it on the float32 arrays."""
    c0 = np.float32(lo[0] + np.float32(x) * (hi[0] - lo[0]))
    c1 = np.float32(lo[1] + np.float32(y) * (hi[1] - lo[1]))
    for k in range(len(origin)):
        out[k] = origin[k] + (c0 * axes[0, k] + c1 * axes[1, k])
