"""A preallocated single-producer / single-consumer ring buffer of float32 samples.

The decoder thread writes, the audio callback reads. Each side owns one monotonically
increasing index (Python ints, assigned atomically under the GIL), so neither side locks
and the callback only copies.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Mono float32 ring; `fill` = samples written and not yet read."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.buffer = np.zeros(self.capacity, dtype=np.float32)
        self.written = 0  # owned by the producer
        self.read = 0  # owned by the consumer

    @property
    def fill(self) -> int:
        return self.written - self.read

    @property
    def space(self) -> int:
        return self.capacity - (self.written - self.read)

    def write(self, block: np.ndarray) -> int:
        """Producer: copy as much of `block` as fits; returns the count written."""
        n = min(len(block), self.space)
        if n <= 0:
            return 0
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self.buffer[start:start + first] = block[:first]
        if first < n:
            self.buffer[:n - first] = block[first:n]
        self.written += n
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Consumer: fill `out` (frames x channels, or 1-D) from the ring, zeros past the end.

        Returns the number of frames that came from the ring; fewer than `len(out)` is an
        underrun. Copies into every channel of a 2-D `out` without allocating a buffer.
        """
        frames = len(out)
        n = min(frames, self.written - self.read)
        start = self.read % self.capacity
        first = min(n, self.capacity - start)
        if out.ndim == 2:
            out[:first, :] = self.buffer[start:start + first, None]
            if first < n:
                out[first:n, :] = self.buffer[:n - first, None]
        else:
            out[:first] = self.buffer[start:start + first]
            if first < n:
                out[first:n] = self.buffer[:n - first]
        if n < frames:
            out[n:] = 0.0
        self.read += n
        return n

    def skip(self, frames: int) -> int:
        """Consumer: drop up to `frames` of the oldest samples; returns the count dropped."""
        n = max(min(int(frames), self.written - self.read), 0)
        self.read += n
        return n
