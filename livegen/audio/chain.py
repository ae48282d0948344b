"""The output chain after phase reconstruction: resample, sanitise, gain, limit, fade.

Everything here runs on the decoder thread, one model hop at a time, and is deterministic:
the same input blocks give the same output samples in the live and the offline path.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

DC_POLE = 0.9985
"""DC blocker pole: the -3 dB corner sits near 11 Hz at 48 kHz (below any musical content)."""

LIMITER_RELEASE_S = 0.12
LIMITER_KNEE_DB = 3.0
"""The limiter starts compressing this far below the ceiling; the soft clip fills the last 3 dB."""


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


UPSAMPLE_TAPS_PER_PHASE = 48
"""FIR length per output phase of the integer-ratio upsampler (96 taps at 2x: 48 samples,
1 ms, of delay at 48 kHz; images above the model's band are attenuated by about 80 dB)."""


class IntegerUpsampler:
    """Stateful polyphase FIR upsampling by an integer factor, exactly `factor` samples out per sample in.

    soxr's `ResampleStream` hands its output out in bursts of about 1600 samples at its
    default quality (and lags 480 samples with `vr=True`): 10-35 ms of latency for a
    128-sample hop. For the common integer ratios (24 -> 48 kHz) this FIR is as clean and
    adds 1 ms; other ratios go through soxr.
    """

    def __init__(self, factor: int, *, in_rate: int):
        self.factor = int(factor)
        taps = UPSAMPLE_TAPS_PER_PHASE * self.factor
        # Kaiser-windowed sinc low-pass at 0.45 x the model rate (scipy's firwin, without
        # importing scipy.signal, which costs a second of start-up).
        cutoff = 0.45 * in_rate / (in_rate * self.factor / 2)  # fraction of the output Nyquist
        n = np.arange(taps) - (taps - 1) / 2
        h = cutoff * np.sinc(cutoff * n) * np.kaiser(taps, 8.0)
        h = h / h.sum() * self.factor
        # Polyphase: output phase p is the input convolved with h[p::factor] (no zero-stuffing).
        self.phases = [h[p::self.factor].astype(np.float32) for p in range(self.factor)]
        self.history = np.zeros(UPSAMPLE_TAPS_PER_PHASE - 1, dtype=np.float32)
        self.delay = (taps - 1) / 2

    def resample_chunk(self, x: np.ndarray) -> np.ndarray:
        ext = np.concatenate([self.history, x.astype(np.float32, copy=False)])
        y = np.empty(len(x) * self.factor, dtype=np.float32)
        for p, h in enumerate(self.phases):
            y[p::self.factor] = np.convolve(ext, h, mode="valid")
        self.history = ext[len(ext) - len(self.history):]
        return y


def _burst_margin(resampler_factory, *, in_rate: int, out_rate: int, hop: int = 128, chunks: int = 64) -> int:
    """How far a streaming resampler's output count falls behind the ideal (probed on zeros)."""
    probe = resampler_factory()
    x = np.zeros(hop, dtype=np.float32)
    produced = 0
    worst = 0
    for i in range(1, chunks + 1):
        produced += len(probe.resample_chunk(x))
        worst = max(worst, -(-i * hop * out_rate // in_rate) - produced)
    return worst


class OutputChain:
    """Model-rate mono blocks in, device-rate mono blocks out, never above the ceiling.

    Stages: soxr `ResampleStream` (model rate -> output rate), sanitiser (NaN/Inf -> 0,
    counted in `nan_count`; DC blocker), gain (dB, ramped across each block), soft limiter
    (block-peak gain reduction with instant attack and a smooth release, then a tanh soft clip
    over the last `LIMITER_KNEE_DB`, then a hard clip at the ceiling), then the start/stop fade.
    """

    def __init__(self, *, in_rate: int, out_rate: int, fade_seconds: float = 0.01, quality: str = "HQ"):
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self.resampler = None
        self._margin = 0
        if self.out_rate == self.in_rate:
            pass
        elif self.out_rate % self.in_rate == 0:
            self.resampler = IntegerUpsampler(self.out_rate // self.in_rate, in_rate=self.in_rate)
        else:
            def factory():
                return soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=quality, vr=True)

            self._margin = _burst_margin(factory, in_rate=self.in_rate, out_rate=self.out_rate) + 2
            self.resampler = factory()
        self.nan_count = 0
        self._dc_x = 0.0  # last input and output of the DC blocker
        self._dc_y = 0.0
        self._dc_powers = np.zeros(0)
        self._gain = None
        self._limiter_gain = 1.0
        self.fade_samples = max(1, int(round(fade_seconds * out_rate)))
        self._fade = 0.0  # current master fade level
        self._fade_target = 1.0  # fades in from silence at start
        self.peak = 0.0
        """Largest output sample so far."""
        self.meter_peak = 0.0
        self.meter_rms = 0.0
        """Recent level (peak falls about 20 dB a second, rms is a 100 ms average): for meters."""
        self._in_total = 0
        self._out_total = 0
        self._pending = np.zeros(0, dtype=np.float32)
        self._primed = False

    def fade_out(self) -> None:
        """Start the stop fade; `faded_out` turns true once it has reached silence."""
        self._fade_target = 0.0

    @property
    def faded_out(self) -> bool:
        return self._fade_target == 0.0 and self._fade == 0.0

    def process(self, block: np.ndarray, *, gain_db: float, ceiling_db: float) -> np.ndarray:
        """One hop of mono model-rate samples -> output-rate samples (length may vary by one)."""
        x = block.astype(np.float32, copy=False)
        bad = ~np.isfinite(x)
        if bad.any():
            self.nan_count += int(bad.sum())
            x = np.where(bad, np.float32(0.0), x)
        if self.resampler is not None:
            x = self._regular(self.resampler.resample_chunk(x), len(block))
        y = self._dc_block(x.astype(np.float64))
        gain = db_to_gain(gain_db)
        start_gain = gain if self._gain is None else self._gain
        if start_gain != gain:
            y *= np.linspace(start_gain, gain, len(y), endpoint=False) if len(y) > 1 else gain
        else:
            y *= gain
        self._gain = gain
        y = self._limit(y, db_to_gain(ceiling_db))
        y = self._apply_fade(y)
        out = y.astype(np.float32)
        block_peak = float(np.max(np.abs(out)))
        self.peak = max(self.peak, block_peak)
        seconds = len(out) / self.out_rate
        self.meter_peak = max(block_peak, self.meter_peak * 10 ** (-20 * seconds / 20))
        a = math.exp(-seconds / 0.1)
        self.meter_rms = math.sqrt(a * self.meter_rms ** 2 + (1 - a) * float(np.mean(out.astype(np.float64) ** 2)))
        return out

    def _dc_block(self, x: np.ndarray) -> np.ndarray:
        """y[n] = x[n] - x[n-1] + R y[n-1], in closed form over the block (R^-n stays small)."""
        n = len(x)
        if len(self._dc_powers) < n:
            self._dc_powers = DC_POLE ** np.arange(max(n, 4096))
        pw = self._dc_powers[:n]
        d = np.empty(n)
        d[0] = x[0] - self._dc_x
        np.subtract(x[1:], x[:-1], out=d[1:])
        y = pw * (DC_POLE * self._dc_y + np.cumsum(d / pw))
        self._dc_x = float(x[-1])
        self._dc_y = float(y[-1])
        return y

    def _regular(self, x: np.ndarray, n_in: int) -> np.ndarray:
        """Hand out exactly ceil(total_in * out_rate / in_rate) samples in total after each hop.

        A streaming resampler's output per chunk starts short and may vary; a FIFO primed with
        as many zeros as it was measured to fall behind makes every hop boundary land on a fixed
        output sample, so events stamped live and rendered offline meet the same boundaries.
        """
        self._in_total += n_in
        target = -(-self._in_total * self.out_rate // self.in_rate)
        n = target - self._out_total
        if not self._primed:
            x = np.concatenate([np.zeros(self._margin, dtype=np.float32), x])
            self._primed = True
        pending = np.concatenate([self._pending, x]) if len(self._pending) else x
        if len(pending) < n:  # cannot happen after priming unless soxr stalls; keep the count exact
            pending = np.concatenate([pending, np.zeros(n - len(pending), dtype=np.float32)])
        self._pending = pending[n:].copy()
        self._out_total = target
        return pending[:n]

    def _limit(self, y: np.ndarray, ceiling: float) -> np.ndarray:
        knee = ceiling * db_to_gain(-LIMITER_KNEE_DB)
        peak = float(np.max(np.abs(y)))
        wanted = 1.0 if peak <= ceiling else ceiling / peak  # the soft clip shapes knee..ceiling
        release = math.exp(-len(y) / (LIMITER_RELEASE_S * self.out_rate))
        if wanted < self._limiter_gain:
            target = wanted  # instant attack: this block must not overshoot the knee
        else:
            target = wanted + (self._limiter_gain - wanted) * release
        if target != self._limiter_gain and len(y) > 1 and wanted >= self._limiter_gain:
            y *= np.linspace(self._limiter_gain, target, len(y))
        else:
            y *= target
        self._limiter_gain = target
        a = np.abs(y)
        over = a > knee
        if over.any():
            span = ceiling - knee
            y = np.where(over, np.sign(y) * (knee + span * np.tanh((a - knee) / span)), y)
        return np.clip(y, -ceiling, ceiling)

    def _apply_fade(self, y: np.ndarray) -> np.ndarray:
        if self._fade == self._fade_target:
            if self._fade == 0.0:
                y[:] = 0.0
            return y
        step = 1.0 / self.fade_samples
        direction = 1.0 if self._fade_target > self._fade else -1.0
        ramp = self._fade + direction * step * np.arange(1, len(y) + 1)
        ramp = np.clip(ramp, 0.0, 1.0)
        self._fade = float(ramp[-1])
        y *= ramp
        return y
