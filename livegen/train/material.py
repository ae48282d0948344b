"""Training on any folder of recordings: the model's rate, pitched or texture, and the events.

Recordings carry no note labels. Pitched material is cut into notes where pYIN calls the frames
voiced with a probability over `NOTE_PROB` (deciding pitched or texture counts pYIN's voicing
alone, which finds more of speech; the model learns from the surer frames), a new note where
the pitch jumps by more than `NOTE_JUMP` semitones; each note's frames carry their own tracked
pitch, its velocity is its loudness placed in the material's loudness range
(5th to 95th percentile -> 0..1), and up to `RELEASE_S` of what follows it (until the next note)
are its release frames. Texture material is cut into events at spectral-flux onsets (at most
`max_event_s` long). Files of the valid/test splits are held out; when the folder is too small
for those, the last `HOLDOUT_SHARE` of every file is.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np
import torch

from livegen.data import pitch as pitch_track
from livegen.data.features import load_audio
from livegen.errors import ParameterError
from livegen.train.data import NoteBatch, NoteSampler

NOTE_JUMP = 0.6
NOTE_PROB = 0.5             # notes are cut from frames pYIN calls voiced with at least this probability
RELEASE_S = 0.25
HOLDOUT_SHARE = 0.15
SOUNDING_DB = 50.0          # frames within this many dB of a file's loudest count as sounding
PITCHED_SHARE = 0.5         # auto: pitched when at least this share of sounding frames is voiced
MIN_PITCHED_SECONDS = 4.0   # voiced audio a pitched model needs (training part)
MIN_TEXTURE_SECONDS = 4.0   # sounding audio a texture model needs (training part)
KIND_SAMPLE_FILES = 8
KIND_SAMPLE_SECONDS = 4.0


def survey_rates(dataset) -> collections.Counter:
    """Native sample rates of the files (soundfile's header read; unreadable ones left out)."""
    import soundfile as sf

    rates: collections.Counter = collections.Counter()
    for ex in dataset:
        try:
            rates[int(sf.info(ex.audio_path).samplerate)] += 1
        except Exception:  # the feature pass lists unreadable files with their reason
            continue
    return rates


def choose_stft(rates: collections.Counter) -> tuple[int, int, int]:
    """(sample_rate, n_fft, hop) keeping the material's bandwidth: the most common native rate,
    at most 48 kHz and at least 16 kHz; n_fft 2048 above 32 kHz (hop 256: <= 5.8 ms), else 1024/128."""
    rate = rates.most_common(1)[0][0] if rates else 24000
    rate = int(min(max(rate, 16000), 48000))
    return (rate, 2048, 256) if rate > 32000 else (rate, 1024, 128)


def decide_kind(dataset, *, log=print) -> tuple[str, str, dict]:
    """('pitched' | 'texture', why, figures) from a sample of the training files (pYIN)."""
    files = [ex for ex in dataset if ex.split == "train"] or list(dataset)
    step = max(1, len(files) // KIND_SAMPLE_FILES)
    voiced = sounding = 0
    looked = 0
    for ex in files[::step][:KIND_SAMPLE_FILES]:
        try:
            y, _ = load_audio(ex.audio_path, sample_rate=pitch_track.TRACK_RATE, max_seconds=KIND_SAMPLE_SECONDS)
        except OSError:
            continue
        if y.size < 2048 or not np.isfinite(y).all():
            continue
        n = 1 + (y.size - 1024) // pitch_track.TRACK_HOP
        track = pitch_track.frame_pitch(y, sample_rate=pitch_track.TRACK_RATE, n_fft=1024, hop=pitch_track.TRACK_HOP,
                                        n_frames=n)
        loud = track[:, 2] > track[:, 2].max() - SOUNDING_DB
        sounding += int(loud.sum())
        voiced += int((loud & (track[:, 0] > 0)).sum())
        looked += 1
    share = voiced / sounding if sounding else 0.0
    figures = {"voiced_share": round(share, 3), "files_sampled": looked, "seconds_each": KIND_SAMPLE_SECONDS}
    if share >= PITCHED_SHARE:
        why = (f"{share:.0%} of the sounding frames of {looked} sampled files are voiced (pYIN), "
               f">= {PITCHED_SHARE:.0%}: one pitch at a time, so notes can play it at any pitch")
        return "pitched", why, figures
    why = (f"only {share:.0%} of the sounding frames of {looked} sampled files are voiced (pYIN), "
           f"< {PITCHED_SHARE:.0%}: unpitched or polyphonic, so a texture model")
    return "texture", why, figures


# ------------------------------------------------------------------ events
@dataclass
class Events:
    """Events (notes or texture events) cut from a `FeatureSet`, as NoteSampler's arrays."""

    start: np.ndarray        # first frame (global frame index)
    length: np.ndarray       # frames, release included
    release: np.ndarray      # frame offset of the note-off (-1: none)
    pitch: np.ndarray        # median MIDI pitch (texture: root)
    loudness: np.ndarray     # dBFS (peak frame loudness)
    file: np.ndarray         # row of the FeatureSet
    held_out: np.ndarray     # bool


def _sounding(features, row) -> np.ndarray:
    """Frame loudness (dBFS) of one row, from the pitch track or the log-magnitude frames."""
    a, b = row["start"], row["stop"]
    if features.pitch is not None:
        return np.asarray(features.pitch[a:b, 2], dtype=np.float64)
    logmag = np.asarray(features.frames[a:b], dtype=np.float32)
    power = np.exp(2 * logmag.astype(np.float64)).sum(1)
    n = features.n_fft
    # Parseval with a periodic Hann window (sum w^2 = 3n/8), one-sided spectrum: mean square.
    return 10 * np.log10(np.maximum(power * 16.0 / (3.0 * n * n), 1e-12))


def _holdout(features, rows) -> tuple[set, bool]:
    """Rows held out (valid/test split), or none and True: hold out the end of every file."""
    held = {i for i, r in enumerate(rows) if r["split"] in ("valid", "test")}
    train = [i for i in range(len(rows)) if i not in held]
    if not held or not train:
        return set(), True
    return held, False


def pitched_events(features, *, min_frames: int = 8) -> tuple[Events, np.ndarray]:
    """Notes of pitched material and the per-frame MIDI pitch array (release frames keep the note's)."""
    hop_s = features.hop / features.sample_rate
    rows = list(features.index)
    held_rows, tail = _holdout(features, rows)
    frame_midi = np.full(features.frames.shape[0], np.nan, np.float32)
    out = {k: [] for k in ("start", "length", "release", "pitch", "loudness", "file", "held_out")}
    release_n = int(round(RELEASE_S / hop_s))
    for i, row in enumerate(rows):
        a, b = row["start"], row["stop"]
        track = np.asarray(features.pitch[a:b], dtype=np.float64)
        loud = track[:, 2]
        ok = (track[:, 1] > NOTE_PROB) & (track[:, 0] > 0) & (loud > loud.max() - SOUNDING_DB)
        midi = pitch_track.hz_to_midi(np.where(ok, track[:, 0], 0.0))
        frame_midi[a:b] = np.where(ok, midi, np.nan)
        jump = np.zeros(b - a, bool)
        jump[1:] = np.abs(np.diff(np.nan_to_num(midi))) > NOTE_JUMP
        starts = np.flatnonzero(ok & (np.concatenate([[True], ~ok[:-1]]) | jump))
        for k, s in enumerate(starts):
            e = s
            while e + 1 < b - a and ok[e + 1] and not jump[e + 1]:
                e += 1
            voiced_n = e - s + 1
            if voiced_n < min_frames:
                continue
            nxt = starts[k + 1] if k + 1 < len(starts) else b - a
            rel = min(release_n, nxt - e - 1)
            med = float(np.median(midi[s:e + 1]))
            frame_midi[a + e + 1:a + e + 1 + rel] = midi[e]
            out["start"].append(a + s)
            out["length"].append(voiced_n + rel)
            out["release"].append(voiced_n if rel > 0 else -1)
            out["pitch"].append(med)
            out["loudness"].append(float(loud[s:e + 1].max()))
            out["file"].append(i)
            out["held_out"].append(i in held_rows or (tail and s >= (1 - HOLDOUT_SHARE) * (b - a)))
    return _events(out), frame_midi


def texture_events(features, *, max_event_s: float, min_frames: int = 8) -> tuple[Events, float]:
    """Events at spectral-flux onsets (each at most `max_event_s`), and the median onset interval."""
    import librosa

    hop_s = features.hop / features.sample_rate
    rows = list(features.index)
    held_rows, tail = _holdout(features, rows)
    max_n = max(min_frames, int(round(max_event_s / hop_s)))
    out = {k: [] for k in ("start", "length", "release", "pitch", "loudness", "file", "held_out")}
    gaps = []
    for i, row in enumerate(rows):
        a, b = row["start"], row["stop"]
        logmag = np.asarray(features.frames[a:b], dtype=np.float32)
        loud = _sounding(features, row)
        flux = np.maximum(np.diff(logmag, axis=0, prepend=logmag[:1]), 0.0).mean(1)
        peaks = librosa.util.peak_pick(flux, pre_max=8, post_max=8, pre_avg=32, post_avg=32,
                                       delta=float(np.std(flux)) * 0.5 + 1e-6, wait=int(0.05 / hop_s))
        bounds = sorted(set([0, *[int(p) for p in peaks]]))
        gaps += list(np.diff(bounds) * hop_s)
        cuts = []
        for k, s in enumerate(bounds):
            e = bounds[k + 1] if k + 1 < len(bounds) else b - a
            while e - s > max_n:
                cuts.append((s, s + max_n))
                s += max_n
            cuts.append((s, e))
        for s, e in cuts:
            if e - s < min_frames or loud[s:e].max() < loud.max() - SOUNDING_DB:
                continue
            out["start"].append(a + s)
            out["length"].append(e - s)
            out["release"].append(-1)
            out["pitch"].append(0.0)
            out["loudness"].append(float(loud[s:e].max()))
            out["file"].append(i)
            out["held_out"].append(i in held_rows or (tail and s >= (1 - HOLDOUT_SHARE) * (b - a)))
    cycle = float(np.median(gaps)) if gaps else max_event_s
    return _events(out), float(min(max(cycle, 0.1), max_event_s))


def _events(out: dict) -> Events:
    return Events(start=np.array(out["start"], np.int64), length=np.array(out["length"], np.int64),
                  release=np.array(out["release"], np.int64), pitch=np.array(out["pitch"], np.float32),
                  loudness=np.array(out["loudness"], np.float64), file=np.array(out["file"], np.int64),
                  held_out=np.array(out["held_out"], bool))


def loudness_range(events: Events) -> tuple[float, float]:
    """The material's loudness range (dBFS): 5th and 95th percentile of its events' peaks."""
    lo, hi = np.percentile(events.loudness, [5, 95]) if len(events.loudness) else (-60.0, 0.0)
    return float(lo), float(max(hi, lo + 1.0))


def check_amount(events: Events, *, hop_s: float, kind: str, data) -> float:
    """Seconds of usable training audio; a ParameterError naming found and needed when too little."""
    train = ~events.held_out
    seconds = float(events.length[train].sum() * hop_s)
    need = MIN_PITCHED_SECONDS if kind == "pitched" else MIN_TEXTURE_SECONDS
    what = "voiced (pitched) audio" if kind == "pitched" else "sounding audio"
    if seconds < need:
        hint = (" (or --kind texture, which needs no pitch)" if kind == "pitched" else "")
        raise ParameterError(f"{data}: {seconds:.1f} s of {what} found for training, {need:.0f} s needed; "
                             f"add recordings{hint}")
    return seconds


class EventSampler(NoteSampler):
    """NoteSampler over `Events` cut from recordings; pitched events carry per-frame pitch."""

    def __init__(self, features, events: Events, *, held_out: bool, loud_range: tuple[float, float],
                 frame_midi: np.ndarray | None = None, label: str = ""):
        self.features = features
        self.hop_s = features.hop / features.sample_rate
        sel = events.held_out == held_out
        if not sel.any():
            raise ParameterError(f"{features.path}: no {'held-out' if held_out else 'training'} events")
        self.start = events.start[sel]
        self.length = events.length[sel]
        self.release = events.release[sel]
        self.pitch = events.pitch[sel]
        lo, hi = loud_range
        self.velocity = np.clip((events.loudness[sel] - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
        self.file = events.file[sel]
        self.rows = [{"file": int(f)} for f in self.file]
        # The first sub-folder names a file's family (a kit, a take): the plane's centroids.
        self.family = [features.index[int(f)].get("family") or label for f in self.file]
        self.instrument = [features.index[int(f)]["id"] for f in self.file]
        self.frame_midi = frame_midi

    def _make(self, note, enc_off, tgt_off) -> NoteBatch:
        batch = super()._make(note, enc_off, tgt_off)
        if self.frame_midi is not None:
            fp = self.frame_midi[self.start[note][:, None] + tgt_off]
            fp = np.where(np.isfinite(fp), fp, self.pitch[note][:, None])
            batch.frame_pitch = torch.from_numpy(fp.astype(np.float32))
        return batch

    def frame_pitches(self, i: int) -> np.ndarray:
        """Per-frame MIDI pitch of event `i` (its median where untracked)."""
        fp = self.frame_midi[self.start[i]:self.start[i] + self.length[i]]
        return np.where(np.isfinite(fp), fp, self.pitch[i]).astype(np.float32)


def seconds_of(features) -> float:
    """Seconds of audio the features hold."""
    return float(features.frames.shape[0] * features.hop / features.sample_rate)

