"""`livegen bench glide`: how soon a sound that moves continuously is heard moving, with the
streaming inverter reading its frames near their centres (``read="centre"`` or "committed")
against reading whole windows (``read="window"``, the default), in one run.

Each case is a `livegen render` of the default model at 48 kHz (the engine on its virtual clock):

- vibrato: a held note whose voice bend traces 5.5 Hz vibrato of +-1 semitone, one event a hop;
- slide: a held note's voice bend sliding up an octave over 200 ms, one event a hop;
- glide: the pad moved across the plane (x 0.2 -> 0.8) with glide 0.1 s under a held note;
- input: an audio input (`livegen render --input`) holding 220 Hz that steps up half a semitone
  after 1 s.

Figures per case and reading: the lag (ms) from a bend event to the output's pitch that best
fits the YIN track (1 ms steps) to the commanded pitch, and the error left at that lag (cents
RMS); for the glide, the lag that best fits the output's spectral centroid to the centroids of
the frames the engine pushed, each at its hop, and the error left (Hz RMS); for the input, when
the output's YIN pitch crosses the middle of its step, after the input's step (the input's own
track crosses it 2.7 ms early: the tracker's window); the spectral
convergence of the inverter's output against the frames it was given (dB, lower is better; a
"centre" or "committed" stream compared as much later as it runs ahead), beside librosa's
Griffin-Lim (32 iterations, offline) of the same frames; and click measures of the 48 kHz
output while it moves: the largest sample-to-sample step and the largest spectral-flux rise
(dB, mean over bins between 256-sample hops). Where nothing moves (a held note, a chord, the
drone, and a pad jump without glide) the spectral convergence of the held part, the same click
measures and the first sound after a note-on in a running stream.
"""

from __future__ import annotations

import argparse

import librosa
import numpy as np

from livegen.dsp import spectral_convergence, stft_magnitude
from livegen.dsp.inverter import READS
from livegen.engine import events as ev
from livegen.engine.input import FileFeed, with_input_defaults
from livegen.errors import comma_list, one_of
from livegen.server import factory

SR = 48000
PITCH = 60.0
START = 0.4
"""Seconds before anything moves (a held note past its attack)."""


def _hops(seconds: float, hop_s: float) -> int:
    return int(round(seconds / hop_s))


def _moving(kind: str, hop_s: float) -> tuple[list, np.ndarray, np.ndarray, float]:
    """Events, the times (s) and commanded pitches (semitones) of the pitch curve, and the
    render length."""
    t0 = _hops(START, hop_s) * hop_s  # on a hop boundary: no wait for the next one
    events = [ev.param("drone", 0), ev.note_on(PITCH, 100, t=0.0, voice=1)]
    if kind == "input":  # the input's follower settled on its tone first
        t1 = _hops(1.0, hop_s) * hop_s
        return with_input_defaults([]), np.array([t1]), np.array([PITCH]), t1 + 1.0
    if kind == "glide":
        events += [ev.param("x", 0.2), ev.param("y", 0.5), ev.param("glide", 0.1, t=t0 - hop_s),
                   ev.param("x", 0.8, t=t0)]
        return events, np.array([t0]), np.array([PITCH]), t0 + 0.8
    seconds = 1.0 if kind == "vibrato" else 0.6
    times = t0 + np.arange(_hops(seconds, hop_s)) * hop_s
    if kind == "vibrato":
        bend = np.sin(2 * np.pi * 5.5 * (times - t0))
    else:
        bend = 12.0 * np.clip((times - t0) / 0.2, 0.0, 1.0)
    events += [ev.voice_control(1, "bend", float(b), t=float(t)) for t, b in zip(times, bend)]
    return events, times, PITCH + bend, times[-1] + 0.3


STILL = {
    "held": [ev.param("drone", 0), ev.note_on(60, 100, t=START)],
    "chord": [ev.param("drone", 0), *(ev.note_on(p, 90, t=START) for p in (48, 55, 64))],
    "drone": [ev.param("drone", 1)],
    "jump": [ev.param("drone", 0), ev.param("glide", 0.0), ev.note_on(60, 100, t=START),
             ev.param("x", 0.9, t=START + 0.4)],
}
"""Nothing moves continuously: notes started at `START` in a running stream, the drone, and a pad
jump without glide (a cut)."""


def stepping_input(at: float, seconds: float) -> np.ndarray:
    """A held 220 Hz tone (and its octave) at 48 kHz that steps up half a semitone at `at` s."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(np.where(t < at, 220.0, 220.0 * 2 ** (0.5 / 12))) / SR
    return (0.3 * np.sin(phase) + 0.15 * np.sin(2 * phase)).astype(np.float32)


def render(loaded, events, seconds: float, read: str, feed_from=None):
    """48 kHz output, the frames pushed and the inverter's output at the model rate, aligned
    with the frames' windows; `feed_from`: 48 kHz samples an audio input plays."""
    feed = None if feed_from is None else FileFeed(feed_from, samplerate=SR, model_rate=loaded.config.sample_rate)
    engine = loaded.engine(samplerate=SR, seed=0, read=read, input_feed=feed)
    inv = engine.inverter
    frames, blocks = [], []
    push = inv.push

    def recording_push(S, onset=None, cut=False):
        frames.append(np.array(S[0]))
        out = push(S, onset, cut)
        blocks.append(np.array(out[0]))
        return out

    inv.push = recording_push
    engine.schedule(events)
    y = engine.render(seconds)
    model_rate = np.concatenate(blocks)[inv.latency:]
    if inv.ahead:  # its stream runs ahead of the frames' windows
        model_rate = np.concatenate([np.zeros(inv.ahead, np.float32), model_rate])
    return y, np.array(frames), model_rate


def best_lag(t, track, times, asked) -> tuple[float, float]:
    """The delay (s) that best fits `track` (at times `t`, s) to the step curve `asked` set at
    `times`, and the RMS error at that delay."""
    keep = (t > times[0] + 0.03) & (t < times[-1]) & np.isfinite(track)
    delays = np.arange(0.0, 0.08, 0.00025)
    errs = []
    for d in delays:
        idx = np.searchsorted(times, t[keep] - d, side="right") - 1
        want = asked[np.clip(idx, 0, len(asked) - 1)]
        errs.append(np.sqrt(np.mean((track[keep] - want) ** 2)))
    best = int(np.argmin(errs))
    return delays[best], errs[best]


def pitch_lag(y, times, asked) -> tuple[float, float]:
    """The delay (ms) that best fits the YIN track of `y` to the commanded pitch, and the RMS
    error (cents) at that delay."""
    hop, length = SR // 1000, 2048
    f0 = librosa.yin(y, fmin=100.0, fmax=1200.0, sr=SR, frame_length=length, hop_length=hop, center=False)
    t = (np.arange(len(f0)) * hop + length / 2) / SR
    lag, err = best_lag(t, librosa.hz_to_midi(f0), times, asked)
    return 1000 * lag, 100 * err


def centroid_lag(y, S, hop_s: float, model_rate: int, times) -> tuple[float, float]:
    """The delay (ms) that best fits the spectral centroid of `y` to the centroids of the frames
    pushed (frame m at m hops), over ``times[0]..times[0] + 0.5`` s, and the RMS error (Hz)."""
    hop, length = 64, 1024
    M = stft_magnitude(y.astype(np.float32), n_fft=length, hop=hop).astype(np.float64)
    freqs = np.arange(M.shape[1]) * SR / length
    low = freqs <= model_rate / 2
    track = (M[:, low] * freqs[low]).sum(1) / np.maximum(M[:, low].sum(1), 1e-12)
    t = (np.arange(len(track)) * hop + length / 2) / SR
    bins = np.arange(S.shape[1]) * model_rate / (2 * (S.shape[1] - 1))
    asked = (S * bins).sum(1) / np.maximum(S.sum(1), 1e-12)
    frame_times = np.arange(len(S)) * hop_s
    span = (frame_times >= times[0]) & (frame_times <= times[0] + 0.5)
    lag, err = best_lag(t, track, frame_times[span], asked[span])
    return 1000 * lag, err


def step_lag(y, at: float) -> float:
    """Milliseconds from `at` to where the YIN pitch of `y` first passes the middle of the step
    between its medians over the 0.3 s before and after it."""
    hop, length = SR // 1000, 2048
    f0 = librosa.yin(y, fmin=100.0, fmax=1200.0, sr=SR, frame_length=length, hop_length=hop, center=False)
    t = (np.arange(len(f0)) * hop + length / 2) / SR
    midi = librosa.hz_to_midi(f0)
    before = np.median(midi[(t > at - 0.35) & (t < at - 0.05)])
    after = np.median(midi[(t > at + 0.3) & (t < at + 0.6)])
    past = np.flatnonzero((t > at - 0.1) & (midi > (before + after) / 2))
    return 1000 * (t[past[0]] - at) if len(past) else float("nan")


def clicks(y) -> tuple[float, float]:
    """Largest sample-to-sample step, and the largest spectral-flux rise (dB) between 256-sample
    hops of the 48 kHz output."""
    step = float(np.max(np.abs(np.diff(y))))
    M = 20 * np.log10(stft_magnitude(y.astype(np.float32), n_fft=1024, hop=256).astype(np.float64) + 1e-5)
    flux = np.maximum(M[1:] - M[:-1], 0.0).mean(axis=1)
    return step, float(flux.max())


CASES = ("vibrato", "slide", "glide", "input")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livegen bench glide", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=comma_list(one_of(*CASES)), default=",".join(CASES),
                        help=f"moving cases, comma-separated (default {','.join(CASES)})")
    return parser


def _first_sound(y, at: float) -> float:
    """Milliseconds from `at` to the first output sample above 1 % of the render's peak after it."""
    start = int(at * SR)
    tail = np.abs(y[start:])
    return 1000 * int(np.argmax(tail > 0.01 * tail.max())) / SR


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    loaded = factory.load(None, log=lambda text: None)
    cfg = loaded.config
    n_fft, hop = cfg.n_fft, cfg.hop
    hop_s = hop / cfg.sample_rate
    cases = args.cases
    print(f"model {loaded.name}: {cfg.sample_rate} Hz, n_fft {n_fft}, hop {hop} ({1000 * hop_s:.2f} ms); "
          f"output {SR} Hz")
    print("case     read       lag ms  error  SC dB  GL32 dB  max step  flux dB   (error: cents, glide Hz)")
    for kind in cases:
        events, times, asked, seconds = _moving(kind, hop_s)
        once = kind in ("glide", "input")  # one step at times[0], followed for half a second
        start = _hops(times[0], hop_s)
        end = times[0] + 0.5 if once else times[-1] + 0.1
        stop = _hops(times[0] + 0.5 if once else times[-1], hop_s)
        region = slice(max(start - 8, 0), stop + 8)
        rows = {}
        feed_from = stepping_input(times[0], seconds) if kind == "input" else None
        gl_sc = None
        for read in READS:
            y, S, ym = render(loaded, events, seconds, read, feed_from)
            sc = spectral_convergence(ym[region.start * hop:], S[region], n_fft=n_fft, hop=hop)
            if gl_sc is None:  # the magnitudes are the same for every reading
                gl = librosa.griffinlim(S[region].T, n_iter=32, hop_length=hop, n_fft=n_fft, window="hann",
                                        center=False, init=None, random_state=0)
                gl_sc = spectral_convergence(gl, S[region], n_fft=n_fft, hop=hop)
            if kind == "glide":
                lag, err = centroid_lag(y, S, hop_s, cfg.sample_rate, times)
            elif kind == "input":
                lag, err = step_lag(y, times[0]), float("nan")
            else:
                lag, err = pitch_lag(y, times, asked)
            step, flux = clicks(y[int((times[0] - 0.02) * SR):int(end * SR)])
            rows[read] = (lag, err, sc, step, flux)
            print(f"{kind:8s} {read:9s}  {lag:6.1f}  {err:5.1f}  {sc:5.1f}  {gl_sc:7.1f}  {step:8.4f}  {flux:7.2f}")
        print(f"{kind:8s} lag centre/window {rows['centre'][0] / rows['window'][0]:.2f}, "
              f"committed/window {rows['committed'][0] / rows['window'][0]:.2f}")
    print("still    read       SC dB (held part)  max step  flux dB  first sound ms")
    for name, events in STILL.items():
        for read in READS:
            y, S, ym = render(loaded, events, 1.5, read)
            held = _hops(START + 0.3, hop_s)  # the held part, after the onset
            sc = spectral_convergence(ym[held * hop:], S[held:-8], n_fft=n_fft, hop=hop)
            step, flux = clicks(y)
            first = _first_sound(y, START) if name != "drone" else float("nan")
            print(f"{name:8s} {read:9s}  {sc:16.1f}  {step:8.4f}  {flux:7.2f}  {first:14.2f}")
    return 0
