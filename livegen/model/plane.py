"""The XY pad's plane in a model's latent space, in numpy: the engine maps x, y with it every
hop the pad moves, so a hop never calls torch."""

from __future__ import annotations

from dataclasses import dataclass

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

    def z(self, x: float, y: float, out: np.ndarray) -> np.ndarray:
        """Write the latent point of pad position (x, y) into `out` (float64 [latent_dim])."""
        c0 = np.float32(self.lo[0] + np.float32(x) * (self.hi[0] - self.lo[0]))
        c1 = np.float32(self.lo[1] + np.float32(y) * (self.hi[1] - self.lo[1]))
        out[:] = self.origin + (c0 * self.axes[0] + c1 * self.axes[1])
        return out
