"""Streaming phase reconstruction: one magnitude frame in, one hop of final samples out.

The frames still inside the look-ahead window (the newest ``lookahead + 1``) stay uncommitted
and are refined by batched Griffin-Lim projections against everything already committed
(RTISI-LA, Zhu et al. 2007); the oldest is then committed and its first hop, to which no later
frame contributes, is returned. A new frame's starting phase comes from the overlap-add of its
neighbours ("rtisi-la") or from phase-gradient heap integration ("rtpghi", `livegen.dsp.pghi`);
"hybrid" starts from RTPGHI and refines with RTISI-LA iterations using fast-Griffin-Lim momentum.

Inside the iterations the overlap-add is divided by the window-square sum of the frames
received so far, floored at ``floor`` times the full-overlap value (at most 8x overlap's,
`FLOOR_OVERLAP`), not by the full-overlap constant: the look-ahead frames' right edges are then not pulled towards zero, which is the
largest single gain over classic RTISI-LA (+1..6 dB). Updates are Jacobi-style (all frames of
the window from the same estimate) so that one batched FFT pair per iteration serves every
frame of every voice, and momentum near 1 stays stable.

Everything is preallocated per instance: a push allocates no arrays (FFTs write in place).
"""

from __future__ import annotations

import numpy as np

from livegen.dsp import kernels as K
from livegen.dsp.kernels import irfft_into, rfft_into
from livegen.dsp.pghi import HANN_GAMMA, PghiWorkspace, frame_features, rtpghi_frames
from livegen.dsp.stft import check_stft, hann
from livegen.errors import LOOKAHEAD_MAX, ParameterError

METHODS = ("hybrid", "rtisi-la", "rtpghi")
_COUNTS = tuple(np.array(k, np.int64) for k in range(4))
_ZERO32 = np.array(0.0, np.float32)
"""Numbers the hop compares with, as 0-d arrays: a Python number in a ufunc makes an array."""

READS = ("window", "centre", "committed")
"""How the output is read from the frames: "window" overlap-adds whole windows (a frame is heard
through its window's rising edge, a change half a window later); "centre" reads a few frames
near their centres, the newest one the uncommitted look-ahead frame (a change is heard half a
window sooner); "committed" the same from committed frames only (half a window less a hop
sooner, and the look-ahead frame's unfinished phases are not heard)."""

# Defaults per overlap (n_fft // hop), chosen from `livegen bench phase` runs on this 2-core
# machine (mean spectral convergence over 5 GM/speech clips of 4 s, n_fft 1024):
#   75 % (hop 256, 22.05 kHz): hybrid k=2, 8 iterations, momentum 0.7: -29.5 dB (librosa GL-100
#       -28.8, GL-32 -22.6), ~0.4 ms per hop; 4 iterations -27.3; k=1 with 8 -27.8; k=0 needs 4
#       iterations to pass GL-32 (-22.9).
#   87.5 % (hop 128, 24 kHz): hops come twice as often and the redundancy makes RTPGHI's start
#       much better (-21.8 dB alone at k=0); k=1 with 3 iterations gives -29.1 dB (GL-100 -28.8;
#       k=2 with 2 the same -29.1, k=1 with 2 -27.7, k=1 with 4 -29.6) at the cost of k=2 with
#       2 and one hop (5.3 ms) less latency: the live instrument's default.
# Momentum 0.7 was best or within 0.3 dB of best at every k and iteration count tried
# (0.5/0.7/0.9); the window-sum floor 0.1 likewise (0.03..0.6 tried).
ONSET_FADE = 32
"""Samples (model rate) over which a pre-rolled onset fades in: 1.3 ms at 24 kHz, short enough
to keep a struck note's edge, long enough not to click."""

FLOOR_OVERLAP = 8
"""The window-square-sum floor is ``floor`` times the full-overlap sum at this overlap at most
(n_fft / hop = 8: 3 Hann window peaks). Finer hops keep that floor: scaled with the overlap it
would outgrow the few frames that cover a stream's first and last window (at hop n_fft/128 it is
4.8 window peaks, so a stream of one frame came back at a ninth of its level and the look-ahead
frames' right edges were pulled towards zero)."""

CENTRE_FRAMES = 4
"""Frames a "centre" or "committed" hop is read from at most (the newest fading in, the rest at
full weight): more frames average away more of the newest ones' unfinished phases without
making a change heard later (docs/glide.md)."""

_DEFAULTS = {
    4: {"method": "hybrid", "lookahead": 2, "iters": 8, "momentum": 0.7},
    8: {"method": "hybrid", "lookahead": 1, "iters": 3, "momentum": 0.7},
}


def default_settings(*, n_fft: int, hop: int) -> dict:
    """The measured default ``method``, ``lookahead``, ``iters`` and ``momentum`` for an overlap."""
    n_fft, hop = check_stft(n_fft, hop)
    ratio = n_fft // hop
    if ratio in _DEFAULTS:
        return dict(_DEFAULTS[ratio])
    # Not measured: fall back to the nearest measured overlap.
    return dict(_DEFAULTS[4] if ratio < 6 else _DEFAULTS[8])


def _check_int(name: str, value, low: int, high: int | None, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
        high is not None and value > high
    ):
        rng = f">= {low}" if high is None else f"in {low}..{high}"
        raise ParameterError(f"{name}={value!r} is not usable: give an integer {rng} ({hint})")
    return int(value)


class StreamingInverter:
    """Phase reconstruction for a stream of magnitude frames, batched over voices.

    Parameters
    ----------
    n_fft, hop : STFT geometry (periodic Hann, ``center=False``); hop must divide n_fft.
    voices : rows processed together in one batched FFT per iteration.
    method : "hybrid" (default), "rtisi-la" or "rtpghi" (no iterations; look-ahead 0 or 1).
    lookahead : frames kept uncommitted; adds ``lookahead * hop`` samples of latency.
    iters : projections per hop (may be changed between pushes: a quality/cost knob).
    momentum : fast-Griffin-Lim momentum inside the iterations (0 = plain Griffin-Lim).
    floor : window-square-sum floor, as a fraction of the full-overlap sum (of 8x overlap's for
        finer hops, `FLOOR_OVERLAP`).
    tol : RTPGHI ignores (and log-clamps) bins below ``tol`` times the frame maximum.
    read : "window" (default), "centre" (needs look-ahead >= 1 and not "rtpghi") or "committed"
        (`READS`). The phases are found the same way; "centre" reads each hop half a window
        into the oldest look-ahead frame: from it, the next one fading in over the hop, and the
        committed ones before it (`CENTRE_FRAMES` in all); "committed" a hop earlier in the
        frames, from the frame committed now and those before it. What a frame holds is then
        heard from (about) its window's start instead of rising through the window: the stream
        runs `ahead` samples ahead of the frames' windows. An onset or a cut crossfades to the
        frame that holds it over `ONSET_FADE` samples.

    Defaults depend on the overlap; see `default_settings` (measured by `livegen bench phase`).
    The constructor runs one silent push so that the numba kernels are compiled (first use
    after install, a few seconds of CPU; cached on disk afterwards) before any live push.

    Push m returns samples ``[(m - lookahead) * hop, (m - lookahead + 1) * hop)`` of the stream
    (zeros for m < lookahead), so the latency is constant. The returned array is a view of an
    internal buffer, valid until the next call: copy it to keep it.
    """

    def __init__(self, *, n_fft: int, hop: int, voices: int = 1, method: str | None = None,
                 lookahead: int | None = None, iters: int | None = None, momentum: float | None = None,
                 floor: float = 0.1, tol: float = 1e-5, read: str = "window"):
        n_fft, hop = check_stft(n_fft, hop)
        defaults = default_settings(n_fft=n_fft, hop=hop)
        method = defaults["method"] if method is None else method
        if method not in METHODS:
            raise ParameterError(f"method={method!r} is unknown: choose one of {', '.join(METHODS)}")
        if lookahead is None:
            lookahead = min(defaults["lookahead"], 1) if method == "rtpghi" else defaults["lookahead"]
        if method == "rtpghi":
            lookahead = _check_int("lookahead", lookahead, 0, 1, "method 'rtpghi' supports look-ahead 0 or 1; "
                                   "use 'hybrid' for more")
        else:
            lookahead = _check_int("lookahead", lookahead, 0, LOOKAHEAD_MAX, "frames of look-ahead; 2 is a good start")
        voices = _check_int("voices", voices, 1, None, "rows of magnitudes per push")
        if read not in READS:
            raise ParameterError(f"read={read!r} is unknown: choose one of {', '.join(READS)}")
        newest = {"window": 0, "centre": 1, "committed": 0}[read]
        if read != "window" and n_fft // hop < 4:  # the read divides by window squares a hop in
            raise ParameterError(f"read={read!r} with n_fft {n_fft} and hop {hop}: it needs a hop of at most "
                                 "n_fft / 4 (75 % overlap or more); use read='window'")
        if read == "centre" and (lookahead < 1 or method == "rtpghi"):
            raise ParameterError(f"read='centre' with method={method!r} and lookahead={lookahead}: it reads the "
                                 "look-ahead frames, which need phases: give lookahead 1 or more and method "
                                 "'hybrid' or 'rtisi-la', or read='committed'")
        if iters is None:
            iters = 0 if method == "rtpghi" else defaults["iters"]
        if momentum is None:
            momentum = defaults["momentum"]
        if not (isinstance(momentum, (int, float, np.floating)) and 0.0 <= momentum < 2.0):
            raise ParameterError(f"momentum={momentum!r} is not usable: give a number in [0, 2) (0.7 is a good start)")
        if not (isinstance(floor, (int, float, np.floating)) and 0.0 < floor <= 1.0):
            raise ParameterError(f"floor={floor!r} is not usable: give a fraction in (0, 1] (0.1 is a good start)")
        if not (isinstance(tol, (int, float, np.floating)) and 0.0 < tol < 1.0):
            raise ParameterError(f"tol={tol!r} is not usable: give a fraction in (0, 1) (1e-5 is a good start)")

        self.n_fft, self.hop, self.voices = n_fft, hop, voices
        self.n_bins = n_fft // 2 + 1
        self.method = method
        self.read = read
        self.lookahead = lookahead
        self.ahead = {"window": 0, "centre": n_fft // 2, "committed": n_fft // 2 - hop}[read]
        """Samples the output runs ahead of the frames' windows (0 when reading whole windows)."""
        self.latency = lookahead * hop
        self.momentum = float(momentum)
        self.iters = iters
        self.sanitized = 0
        # RTPGHI phases start every new frame (not "rtisi-la"), and with a "centre" or "committed"
        # reading re-phase the look-ahead frames an onset changes (`_rephase`) from the frames
        # before them, "rtisi-la"'s too: every frame needs its features then.
        self._features = method != "rtisi-la" or read != "window"
        self._floor = float(floor) * float(np.sum(hann(n_fft).astype(np.float64) ** 2) / max(hop, n_fft / FLOOR_OVERLAP))
        self._tol = float(tol)
        self._lam = HANN_GAMMA * n_fft * n_fft

        V, K1, N, H, B = voices, lookahead + 1, n_fft, hop, self.n_bins
        L = lookahead * hop + n_fft  # span of the uncommitted frames
        self._K1, self._L = K1, L
        self._w = hann(n_fft)
        self._w2 = self._w * self._w
        f32, c64 = np.float32, np.complex64
        self._mags = np.zeros((V, K1, B), f32)
        self._Y = np.zeros((V, K1, B), c64)
        self._ysyn = np.zeros((V, K1, N), f32)
        self._tprev = np.zeros((V, K1, B), c64)
        self._logs = np.zeros((V, K1, B), f32)
        self._tg = np.zeros((V, K1, B), f32)
        self._mx = np.zeros((V, K1), f32)
        self._prev_logs = np.zeros((V, B), f32)
        self._prev_tg = np.zeros((V, B), f32)
        self._prev_mx = np.zeros(V, f32)
        self._prev2_logs = np.zeros((V, B), f32)
        self._prev2_mx = np.zeros(V, f32)
        self._has_prev2 = np.zeros(V, np.bool_)
        self._steady = np.zeros(V, np.bool_)
        self._no_steady = np.zeros(V, np.bool_)
        self._prev_mag = np.zeros((V, B), f32)
        self._prev_Y = np.zeros((V, B), c64)
        self._acc_c = np.zeros((V, L), f32)
        self._acc_t = np.zeros((V, L), f32)
        self._wss = np.zeros((V, L), f32)
        self._winv = np.zeros((V, K1, N), f32)
        self._frames = np.zeros((V, K1, N), f32)
        self._X = np.zeros((V, K1, B), c64)
        self._X1 = np.zeros((V, B), c64)
        self._yraw = np.zeros((V, K1, N), f32)
        self._zero_c = np.zeros((V, K1, B), c64)  # scratch "previous estimate" when momentum is off (beta 0)
        self._zero_c1 = np.zeros((V, B), c64)
        # flat float32 views for the projection kernel, made once
        self._Xf, self._Yf = K.interleaved(self._X), K.interleaved(self._Y)
        self._tprevf, self._zero_cf = K.interleaved(self._tprev), K.interleaved(self._zero_c)
        self._magsf = self._mags.reshape(-1, B)
        self._mag1 = np.zeros((V, B), f32)
        self._Y1 = np.zeros((V, B), c64)
        self._no_w2 = np.zeros(0, f32)
        self._zeros_in = np.zeros((V, B), f32)
        self._out = np.zeros((V, H), f32)
        self._count = np.zeros(V, np.int64)
        self._beta, self._beta_of = np.float32(0.0), None
        self._has_prev = np.zeros(V, np.bool_)
        self._pghi = PghiWorkspace(B)
        # Onset pre-roll (see `push`): the frames a starting sound would have had before it.
        R = n_fft // hop
        self._onset_frames = R - 1
        self._onset_mag = np.zeros((V, B), f32)
        self._onset_logs = np.zeros((V, B), f32)
        self._onset_tg = np.zeros((V, B), f32)
        self._onset_mx = np.zeros(V, f32)
        self._onset_Y = np.zeros((V, R - 1, B), c64)
        self._onset_y = np.zeros((V, R - 1, N), f32)
        fade = min(ONSET_FADE, hop)
        self._onset_fade = (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)).astype(f32)
        self.onsets = 0
        # read="centre"/"committed": the newest read frame (look-ahead slot `newest`) fades in over
        # a hop (an onset or a cut over `ONSET_FADE` samples), the older ones, up to
        # `CENTRE_FRAMES` in all and as many as reach the hop, at full weight.
        self._newest = newest
        self._rise = (0.5 - 0.5 * np.cos(np.pi * np.arange(hop) / hop)).astype(f32)
        self._quick = np.ones(hop, f32)
        self._quick[:fade] = self._onset_fade
        kept = 0 if read == "window" else max(0, min(CENTRE_FRAMES - 1, n_fft // (2 * hop)) - newest)
        self._hist = np.zeros((V, kept, n_fft), f32)
        self._since = np.full(V, kept + newest, np.int64)
        self._fast = np.zeros(V, np.bool_)
        # Once a voice has received every frame overlapping its window, the window-square sums
        # (hence the analysis weights) are the same at every hop: compute them once.
        R = n_fft // hop
        full = np.zeros((R - 1) * hop + L, np.float64)
        for m in range(R - 1 + K1):  # R - 1 committed frames overlap the window, then K1 slots
            full[m * hop:m * hop + n_fft] += self._w2
        full = full[(R - 1) * hop:]
        self._winv_steady = np.stack(
            [self._w / np.maximum(full[j * hop:j * hop + n_fft], self._floor) for j in range(K1)]
        ).astype(f32)
        self._steady_after = np.array(R + K1, np.int64)
        # Compile (first use after install: seconds) or load the kernels now, not on the first
        # live push: one silent push, then back to a clean state.
        self.push(self._zeros_in)
        # The onset kernels too: a performance's first note must not load them.
        K.clean_onset(self._onset_mag, self._steady)
        K.add_onset(self._mags, self._onset_mag, False, self._newest)
        self._preroll(cut=True)
        self.reset()

    # -- knobs -------------------------------------------------------------------------------
    @property
    def iters(self) -> int:
        return self._iters

    @iters.setter
    def iters(self, value) -> None:
        self._iters = _check_int("iters", value, 0, 1000, "projections per hop; more is better and slower")

    # -- streaming ---------------------------------------------------------------------------
    def push(self, magnitudes, onset=None, cut: bool = False) -> np.ndarray:
        """Take one frame ``[voices, n_bins]`` of linear magnitudes, return ``[voices, hop]`` samples.

        ``onset`` (same shape, or None): the part of `magnitudes` that starts with this frame (a
        note's first frame). A new frame alone reaches the output through its window's rising
        edge, a few milliseconds under any threshold a listener hears; instead the onset sounds
        at once, as if it had been held for a window already, faded in over `ONSET_FADE`
        samples (pre-roll: the frames before it are synthesised from its magnitudes and its
        phase turned back by its phase advance per hop). It is also added to the look-ahead
        frames before the new one, so look-ahead does not delay an onset. Voices whose stream
        has not yet filled a window ignore it.

        ``cut``: the whole frame replaces what sounded (a jump of the latent point): what the
        committed frames still owe fades out over the same `ONSET_FADE` samples while the new
        frame, pre-rolled as an onset, fades in, and it replaces the look-ahead frames.

        The result is a view into a buffer that the next push overwrites.
        """
        S = np.asarray(magnitudes)
        if S.ndim == 1 and self.voices == 1:
            S = S[None]
        if S.shape != (self.voices, self.n_bins):
            raise ParameterError(
                f"frame of shape {S.shape} does not fit this inverter: want [voices, n_bins] = "
                f"[{self.voices}, {self.n_bins}] (n_fft={self.n_fft}); check n_fft and the voice count"
            )
        self._advance()
        slot = self._mags[:, -1]
        np.copyto(slot, S, casting="unsafe")
        np.add(self._count, _COUNTS[1], out=self._count)
        np.greater(self._count, self._steady_after, out=self._steady)
        self.sanitized += K.accept(slot, self._w2, self._wss, self._floor, self._w, self._winv, self.hop,
                                   self._steady, self._winv_steady)
        if self._features:
            frame_features(slot, self._tol, self.hop, self.n_fft, self._lam, self._logs[:, -1],
                           self._tg[:, -1], self._mx[:, -1])
        self._start_phase(new_frame=True)
        preroll = (onset is not None or cut) and self._accept_onset(slot if cut else onset, cut)
        self._iterate()
        if preroll:
            self._preroll(cut)
            np.greater(self._onset_mx, _ZERO32, out=self._fast)  # read="centre": these crossfade quickly
        else:
            self._fast.fill(False)
        return self._commit()

    def _accept_onset(self, onset, cut: bool) -> bool:
        """Copy `onset` in (voices still filling their first window get none) and add it to (or,
        for a cut, put it in place of) the look-ahead frames older than the new one; False when
        nothing is left to pre-roll."""
        np.copyto(self._onset_mag, onset, casting="unsafe")
        ok = K.clean_onset(self._onset_mag, self._steady)
        if ok:
            K.add_onset(self._mags, self._onset_mag, cut, self._newest)
            self.onsets += 1
            if self.read != "window":
                self._rephase()
        return ok

    def _rephase(self) -> None:
        """read="centre"/"committed": the look-ahead slots older than the newest that now hold
        the onset, read at once, get RTPGHI phases for their new magnitudes (every voice's: one
        batched pass)."""
        np.greater_equal(self._count, _COUNTS[2], out=self._has_prev)
        for j in range(self._newest, self._K1 - 1):
            frame_features(self._mags[:, j], self._tol, self.hop, self.n_fft, self._lam, self._logs[:, j],
                           self._tg[:, j], self._mx[:, j])
            self._pghi_into(j - 1, j, False)
            irfft_into(self._Y[:, j], self._yraw[:, 0])
            K.window_into(self._yraw[:, :1], self._w, self._ysyn[:, j:j + 1])

    def _preroll(self, cut: bool) -> None:
        """Synthesise the onset's frames before the oldest look-ahead frame into the committed sum
        (for a cut, after fading out what it held)."""
        frame_features(self._onset_mag, self._tol, self.hop, self.n_fft, self._lam, self._onset_logs,
                       self._onset_tg, self._onset_mx)
        K.preroll_spectra(self._Y[:, 0], self._onset_mag, self._onset_tg, self._onset_Y)
        irfft_into(self._onset_Y, self._onset_y)
        if cut:
            K.fade_committed(self._acc_c, self._onset_fade, self._onset_mx)
        K.preroll_add(self._onset_y, self._w, self._onset_fade, self.hop, self._acc_c)

    def flush(self) -> np.ndarray:
        """Return the ``lookahead*hop + n_fft - hop`` samples still owed after the last push.

        The look-ahead frames are finished with the same iterations (no new frames arrive). The
        window reading ends with its last frames' falling window edges; a "centre" or "committed"
        reading reads on as the frames run out (what silence pushed would give), so that it too
        falls to 0 instead of stopping at the last frame's centre. Afterwards every voice is
        reset, ready for a new stream.
        """
        H, N = self.hop, self.n_fft
        out = np.empty((self.voices, self.lookahead * H + N - H), np.float32)
        self._fast.fill(False)
        hops = self.lookahead if self.read == "window" else self.lookahead + N // H - 1
        for i in range(hops):
            self._advance()
            K.accept(self._mags[:, -1], self._no_w2, self._wss, self._floor, self._w, self._winv, H,
                     self._no_steady, self._winv_steady)
            if i < self.lookahead:  # afterwards every frame left is silence: nothing to refine
                self._start_phase(new_frame=False)
                self._iterate()
            out[:, i * H:(i + 1) * H] = self._commit()
        if self.read == "window":
            K.commit(self._acc_c[:, H:N], self._ysyn[:, 0], self._wss[:, H:N], self._floor,
                     out[:, self.lookahead * H:], True)
        self.reset()
        return out

    def reset(self, voices=None) -> None:
        """Clear the state of some voice rows (all if None): their next push starts a new stream.

        Rows that are not reset keep going untouched, and every row keeps the same latency (a
        reset row returns zeros for its next ``lookahead`` pushes). What the row still owed
        (its look-ahead hops and overlap tail) is dropped, so reset rows that have gone silent.
        """
        rows = slice(None) if voices is None else np.atleast_1d(np.asarray(voices))
        if voices is not None and (rows.dtype.kind not in "iu" or rows.min(initial=0) < 0
                                   or rows.max(initial=0) >= self.voices):
            raise ParameterError(f"voices={voices!r} are not rows of this inverter: give indices in 0..{self.voices - 1}")
        for a in (self._mags, self._Y, self._ysyn, self._tprev, self._logs, self._tg, self._mx,
                  self._prev_mag, self._prev_Y, self._prev_logs, self._prev_tg, self._prev_mx,
                  self._prev2_logs, self._prev2_mx, self._acc_c, self._wss, self._out, self._count, self._hist):
            a[rows] = 0
        self._since[rows] = self._hist.shape[1] + self._newest

    # -- internals ---------------------------------------------------------------------------
    def _advance(self) -> None:
        K.advance(self._mags, self._Y, self._ysyn, self._tprev, self._logs, self._tg, self._mx,
                  self._prev_mag, self._prev_Y, self._prev_logs, self._prev_tg, self._prev_mx,
                  self._prev2_logs, self._prev2_mx, self._acc_c, self._wss, self.hop)

    def _start_phase(self, *, new_frame: bool) -> None:
        """Give the frame that just entered (or, for RTPGHI with look-ahead 1, slot 0) a phase."""
        k = self._K1 - 1
        if self.method == "rtpghi" and k == 1:
            # Slot 0 is committed this push: centred time derivative when its successor exists.
            np.greater_equal(self._count, _COUNTS[3 if new_frame else 2], out=self._has_prev)
            self._pghi_into(-1, 0, new_frame)
        elif not new_frame:
            return
        elif self.method == "rtisi-la":
            # Classic start: the phase the committed and look-ahead frames imply for this frame.
            K.analysis_frames(self._ysyn, k, self._acc_c, self.hop, self._winv, self._acc_t, self._frames)
            np.multiply(self._acc_t[:, k * self.hop:], self._w, out=self._frames[:, k])
            rfft_into(self._frames[:, k], self._X1)
            np.copyto(self._mag1, self._mags[:, k])
            K.project(self._X1, self._zero_c1, self._mag1, self._Y1, 0.0)
            self._Y[:, k] = self._Y1
        elif k:
            np.greater_equal(self._count, _COUNTS[2], out=self._has_prev)
            self._pghi_into(k - 1, k, False)
        else:
            np.greater_equal(self._count, _COUNTS[2], out=self._has_prev)
            self._pghi_into(-1, k, False)
        j = 0 if self.method == "rtpghi" else k
        irfft_into(self._Y[:, j], self._yraw[:, 0])
        K.window_into(self._yraw[:, :1], self._w, self._ysyn[:, j:j + 1])

    def _pghi_into(self, p: int, j: int, centred: bool) -> None:
        """RTPGHI phase for slot j from slot p (-1: the last committed frame)."""
        if p < 0:
            prev = (self._prev_mag, self._prev_logs, self._prev_tg, self._prev_mx, self._prev_Y)
        else:
            prev = (self._mags[:, p], self._logs[:, p], self._tg[:, p], self._mx[:, p], self._Y[:, p])
        if p >= 1:
            prev2 = (self._logs[:, p - 1], self._mx[:, p - 1])
        elif p == 0:
            prev2 = (self._prev_logs, self._prev_mx)
        else:
            prev2 = (self._prev2_logs, self._prev2_mx)
        n = j + 1 if centred else j
        np.greater_equal(self._count, _COUNTS[3], out=self._has_prev2)
        rtpghi_frames(*prev, self._mags[:, j], self._logs[:, j], self._tg[:, j], self._mx[:, j],
                      self._logs[:, n], self._mx[:, n], *prev2, self._has_prev2, centred, self._has_prev, self._Y[:, j],
                      self.hop, self.n_fft, self._lam, self._tol, self._pghi.work, self._pghi.src)

    def _iterate(self) -> None:
        mom = self.momentum
        if mom != self._beta_of:  # made once, not every hop (np.float32 makes an array)
            self._beta, self._beta_of = np.float32(mom / (1.0 + mom)), mom
        beta = self._beta
        tprev = self._tprevf if mom > 0.0 else self._zero_cf
        for _ in range(self._iters):
            K.analysis_frames(self._ysyn, self._K1, self._acc_c, self.hop, self._winv, self._acc_t, self._frames)
            rfft_into(self._frames, self._X)
            K.project_rows(self._Xf, tprev, self._magsf, self._Yf, beta)
            irfft_into(self._Y, self._yraw)
            K.window_into(self._yraw, self._w, self._ysyn)

    def _commit(self) -> np.ndarray:
        K.commit(self._acc_c, self._ysyn[:, 0], self._wss, self._floor, self._out, False)
        if self.read != "window":
            K.centre_tap(self._ysyn, self._newest, self._hist, self._w2, self._rise, self._quick, self._fast,
                         self._since, self._out)
        return self._out


def invert(magnitudes, *, n_fft: int, hop: int, **inverter_kwargs) -> np.ndarray:
    """Whole-signal phase reconstruction through the streaming core.

    ``magnitudes`` is ``[frames, bins]`` (or ``[voices, frames, bins]``); the result has
    ``(frames - 1) * hop + n_fft`` samples per voice, time-aligned with the frames (the
    look-ahead delay removed, and for a "centre" or "committed" reading its `ahead` put back),
    and equals the concatenated live output sample for sample (so shifted).
    """
    S = np.asarray(magnitudes)
    single = S.ndim == 2
    if single:
        S = S[None]
    if S.ndim != 3 or S.shape[1] < 1:
        raise ParameterError(
            f"magnitudes of shape {np.shape(magnitudes)} are not usable: want [frames, bins] or "
            f"[voices, frames, bins] with at least one frame"
        )
    voices, frames = S.shape[0], S.shape[1]
    inv = StreamingInverter(n_fft=n_fft, hop=hop, voices=voices, **inverter_kwargs)
    H = inv.hop
    out = np.empty((voices, frames * H + inv.latency + inv.n_fft - H), np.float32)
    for m in range(frames):
        out[:, m * H:(m + 1) * H] = inv.push(S[:, m])
    out[:, frames * H:] = inv.flush()
    out = out[:, inv.latency:]
    if inv.ahead:
        out = np.concatenate([np.zeros((voices, inv.ahead), np.float32), out[:, :-inv.ahead]], axis=1)
    return out[0] if single else out
