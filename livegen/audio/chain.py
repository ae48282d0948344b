"""The output chain after phase reconstruction: resample, sanitise, gain, level, limit, fade.

Everything here runs on the decoder thread, one model hop at a time, and is deterministic:
the same input blocks give the same output samples in the live and the offline path.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import soxr

DC_POLE = 0.9985
"""DC blocker pole: the -3 dB corner sits near 11 Hz at 48 kHz (below any musical content)."""
FLUSH = 1e-20
"""The DC blocker's decaying state is set to 0 under this (-400 dBFS): after a second of silence
its tail would pass through float32's subnormal range into the output, and float64's later."""
FLOAT32_TINY = float(np.finfo(np.float32).tiny)

LIMITER_RELEASE_S = 0.12
LIMITER_KNEE_DB = 3.0
"""The limiter starts compressing this far below the ceiling; the soft clip fills the last 3 dB."""


LEVELLER_HEADROOM_DB = 15.0
"""The leveller holds the output's RMS (0.5 s average) this far under the ceiling, so a loud chord's
peaks (10-15 dB over its RMS after phase reconstruction) mostly stay under the ceiling."""
LEVELLER_RMS_S = 0.5
LEVELLER_ATTACK_S = 0.05
LEVELLER_RELEASE_S = 1.0
"""Slow on purpose: a held chord settles on one gain instead of the limiter's gain following
each block's peak (pumping)."""


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


UPSAMPLE_TAPS_PER_PHASE = 48
"""FIR length per output phase of the integer-ratio upsampler (96 taps at 2x: 48 samples,
1 ms, of delay at 48 kHz; images above the model's band are attenuated by about 80 dB)."""


class IntegerUpsampler:
    """Stateful polyphase FIR upsampling by an integer factor, exactly `factor` samples out per sample in.

    soxr's `ResampleStream` hands its output out in bursts many hops long, which would add
    tens of milliseconds of latency to a 128-sample hop. For the common integer ratios
    (24 -> 48 kHz) this FIR is as clean and adds only its group delay; other ratios go
    through soxr.
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
        # Polyphase: output phase p is the input convolved with h[p::factor] (no zero-stuffing),
        # stored reversed so the kernel's inner loop is a plain dot product.
        self.phases = np.ascontiguousarray(np.stack([h[p::self.factor][::-1] for p in range(self.factor)]),
                                           dtype=np.float32)
        self._ext = np.zeros(UPSAMPLE_TAPS_PER_PHASE - 1 + 256, dtype=np.float32)  # history + block
        self._y = np.zeros(256 * self.factor, dtype=np.float32)
        self.delay = (taps - 1) / 2
        self.nan_count = 0
        """Non-finite input samples, replaced by 0 before filtering."""

    def resample_chunk(self, x: np.ndarray) -> np.ndarray:
        """`x` upsampled: a view of a buffer the next call overwrites (grown only for a longer `x`)."""
        hist = UPSAMPLE_TAPS_PER_PHASE - 1
        if hist + len(x) > len(self._ext):
            ext = np.zeros(hist + len(x), dtype=np.float32)
            ext[:hist] = self._ext[:hist]
            self._ext = ext
            self._y = np.zeros(len(x) * self.factor, dtype=np.float32)
        y = self._y[:len(x) * self.factor]
        self.nan_count += _upsample(x, self._ext, self.phases, y)
        return y


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})  # lets the tap loop vectorise
def _upsample(x, ext, phases, y):
    """Polyphase FIR of `x` after the history kept at the front of `ext`; returns how many
    non-finite inputs were replaced by 0."""
    factor, taps = phases.shape
    hist = taps - 1
    n = len(x)
    bad = 0
    for i in range(n):
        v = np.float32(x[i])
        if not np.isfinite(v):
            v = np.float32(0.0)
            bad += 1
        ext[hist + i] = v
    for j in range(n):
        for p in range(factor):
            acc = np.float32(0.0)
            for t in range(taps):
                acc += ext[j + t] * phases[p, t]
            y[j * factor + p] = acc
    for i in range(hist):
        ext[i] = ext[n + i]
    return bad


@numba.njit(cache=True, nogil=True)
def _finish(x, out, y, dc_x, dc_y, gain_start, gain, ceiling, knee, release, limiter_gain, fade, fade_target,
            fade_step, lev):
    """DC blocker, gain ramp, leveller, limiter (block-peak gain, soft clip over the knee, hard
    clip) and fade, sample by sample in float64 (in `y`, as long as `x` or longer), into `out`
    (float32). Non-finite input counts as 0; no subnormal number stays in the DC blocker's state
    or reaches `out`.
    `lev` = [smoothed mean square, gain, threshold RMS, rms coeff, attack coeff, release coeff]
    (first two updated in place).

    Returns (dc_x, dc_y, limiter_gain, fade, nan_count, block_peak, sum_of_squares).
    """
    n = len(x)
    bad = 0
    ramp = gain_start != gain
    ms = 0.0
    for i in range(n):
        v = np.float64(x[i])
        if not np.isfinite(v):
            v = 0.0
            bad += 1
        dc_y = v - dc_x + DC_POLE * dc_y  # y[n] = x[n] - x[n-1] + R y[n-1]
        if abs(dc_y) < FLUSH:
            dc_y = 0.0
        dc_x = v
        g = gain_start + (gain - gain_start) * i / n if ramp else gain
        s = dc_y * g
        y[i] = s
        ms += s * s
    # Leveller: a slow gain that keeps the 0.5 s RMS under the threshold, ramped across the block.
    if n:
        lev[0] = lev[3] * lev[0] + (1.0 - lev[3]) * ms / n
    rms = math.sqrt(lev[0])
    wanted_lev = 1.0 if rms <= lev[2] else lev[2] / rms
    coeff = lev[4] if wanted_lev < lev[1] else lev[5]
    lev_start = lev[1]
    lev[1] = wanted_lev + (lev_start - wanted_lev) * coeff
    peak = 0.0
    for i in range(n):
        s = y[i] * (lev_start + (lev[1] - lev_start) * (i + 1) / n)
        y[i] = s
        peak = max(peak, abs(s))
    wanted = 1.0 if peak <= ceiling else ceiling / peak  # the soft clip shapes knee..ceiling
    if wanted < limiter_gain:
        target = wanted  # instant attack: this block must not overshoot the knee
    else:
        target = wanted + (limiter_gain - wanted) * release
    limit_ramp = target != limiter_gain and n > 1 and wanted >= limiter_gain
    span = ceiling - knee
    out_peak = 0.0
    sumsq = 0.0
    fading = fade != fade_target
    direction = 1.0 if fade_target > fade else -1.0
    for i in range(n):
        s = y[i] * (limiter_gain + (target - limiter_gain) * i / (n - 1) if limit_ramp else target)
        a = abs(s)
        if a > knee:
            s = math.copysign(knee + span * math.tanh((a - knee) / span), s)
        s = min(max(s, -ceiling), ceiling)
        if fading:
            s *= min(max(fade + direction * fade_step * (i + 1), 0.0), 1.0)
        elif fade == 0.0:
            s = 0.0
        if abs(s) < FLOAT32_TINY:  # no subnormal sample leaves the chain
            s = 0.0
        o = np.float32(s)
        out[i] = o
        a = abs(np.float64(o))
        out_peak = max(out_peak, a)
        sumsq += a * a
    if fading and n:
        fade = min(max(fade + direction * fade_step * n, 0.0), 1.0)
    return dc_x, dc_y, target, fade, bad, out_peak, sumsq


@numba.njit(cache=True, nogil=True)
def _finite_copy(x, out):
    """`x` into `out` (float32) with non-finite samples as 0; returns how many there were."""
    bad = 0
    for i in range(len(x)):
        v = np.float32(x[i])
        if not np.isfinite(v):
            v = np.float32(0.0)
            bad += 1
        out[i] = v
    return bad


@numba.njit(cache=True, nogil=True)
def _fifo_take(fifo, held, x, n, out):
    """Append `x` to the `held` samples waiting in `fifo`, hand the first `n` out into `out`
    (zeros where there are fewer), keep the rest at the front; returns how many are left."""
    for i in range(len(x)):
        fifo[held + i] = x[i]
    held += len(x)
    for i in range(n):
        out[i] = fifo[i] if i < held else np.float32(0.0)
    left = max(held - n, 0)
    for i in range(left):
        fifo[i] = fifo[n + i]
    return left


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
    counted in `nan_count`; DC blocker), gain (dB, ramped across each block), a slow leveller
    (holds the RMS `LEVELLER_HEADROOM_DB` under the ceiling), soft limiter
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
        self._gain = None
        self._limiter_gain = 1.0
        self._leveller = np.zeros(6)  # see _finish
        self._leveller[1] = 1.0
        self._leveller_rate = 0
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
        self._fifo = np.zeros(0, dtype=np.float32)
        self._regular_out = np.zeros(0, dtype=np.float32)
        self._held = 0
        """`_regular`'s FIFO (its first `_held` samples wait) and the buffer it hands out."""
        self._clean = np.zeros(0, dtype=np.float32)
        self._primed = False
        self._out = np.zeros(0, dtype=np.float32)
        self._work = np.zeros(0)
        """`process`'s output (it hands out a view the next call overwrites) and its float64 work."""

    @property
    def reduction_db(self) -> tuple[float, float]:
        """(leveller, limiter) gain reduction in dB after the last block (0 = not acting)."""
        return (-20.0 * math.log10(max(float(self._leveller[1]), 1e-9)),
                -20.0 * math.log10(max(float(self._limiter_gain), 1e-9)))

    def fade_out(self) -> None:
        """Start the stop fade; `faded_out` turns true once it has reached silence."""
        self._fade_target = 0.0

    @property
    def faded_out(self) -> bool:
        return self._fade_target == 0.0 and self._fade == 0.0

    def process(self, block: np.ndarray, *, gain_db: float, ceiling_db: float) -> np.ndarray:
        """One hop of mono model-rate samples -> output-rate samples (length may vary by one): a
        view of a buffer the next call overwrites."""
        x = block
        if isinstance(self.resampler, IntegerUpsampler):
            before = self.resampler.nan_count
            x = self._regular(self.resampler.resample_chunk(x), len(block))
            self.nan_count += self.resampler.nan_count - before
        elif self.resampler is not None:
            if len(x) > len(self._clean):
                self._clean = np.zeros(len(x), dtype=np.float32)
            clean = self._clean[:len(x)]
            self.nan_count += _finite_copy(x, clean)
            # soxr hands out a new array per chunk: the one array this path still makes a hop
            x = self._regular(self.resampler.resample_chunk(clean), len(block))
        gain = db_to_gain(gain_db)
        start_gain = gain if self._gain is None else self._gain
        self._gain = gain
        ceiling = db_to_gain(ceiling_db)
        n = len(x)
        if n > len(self._out):  # a longer hop than before: grown once
            self._out, self._work = np.zeros(n, dtype=np.float32), np.zeros(n)
        out = self._out[:n]
        lev = self._leveller
        if n != self._leveller_rate or lev[2] != ceiling * db_to_gain(-LEVELLER_HEADROOM_DB):
            self._leveller_rate = n
            lev[2:] = (ceiling * db_to_gain(-LEVELLER_HEADROOM_DB), math.exp(-n / (LEVELLER_RMS_S * self.out_rate)),
                       math.exp(-n / (LEVELLER_ATTACK_S * self.out_rate)), math.exp(-n / (LEVELLER_RELEASE_S * self.out_rate)))
        self._dc_x, self._dc_y, self._limiter_gain, self._fade, bad, block_peak, sumsq = _finish(
            x, out, self._work, self._dc_x, self._dc_y, start_gain, gain, ceiling, ceiling * db_to_gain(-LIMITER_KNEE_DB),
            math.exp(-n / (LIMITER_RELEASE_S * self.out_rate)), self._limiter_gain, self._fade, self._fade_target,
            1.0 / self.fade_samples, lev)
        self.nan_count += bad
        self.peak = max(self.peak, block_peak)
        seconds = n / self.out_rate
        self.meter_peak = max(block_peak, self.meter_peak * 10 ** (-20 * seconds / 20))
        a = math.exp(-seconds / 0.1)
        self.meter_rms = math.sqrt(a * self.meter_rms ** 2 + (1 - a) * (sumsq / n if n else 0.0))
        return out

    def _regular(self, x: np.ndarray, n_in: int) -> np.ndarray:
        """Hand out exactly ceil(total_in * out_rate / in_rate) samples in total after each hop.

        A streaming resampler's output per chunk starts short and may vary; a FIFO primed with
        as many zeros as it was measured to fall behind makes every hop boundary land on a fixed
        output sample, so events stamped live and rendered offline meet the same boundaries.
        """
        self._in_total += n_in
        target = -(-self._in_total * self.out_rate // self.in_rate)
        n = target - self._out_total
        if self._primed and not self._held and len(x) == n:  # the integer ratio's every hop
            self._out_total = target
            return x
        if not self._primed:
            self._held = self._margin  # as many zeros as the resampler falls behind
            self._primed = True
        need = max(self._held + len(x), n)
        if need > len(self._fifo):  # grown a few times at most, early on
            fifo = np.zeros(2 * need, dtype=np.float32)
            kept = min(self._held, len(self._fifo))  # beyond it: the priming zeros
            fifo[:kept] = self._fifo[:kept]
            self._fifo, self._regular_out = fifo, np.zeros(2 * need, dtype=np.float32)
        # short of n samples: cannot happen after priming unless soxr stalls; zeros keep the count exact
        self._held = _fifo_take(self._fifo, self._held, x, n, self._regular_out)
        self._out_total = target
        return self._regular_out[:n]
