"""Measurements of a trained model: timbre (LSD), pitch, life, smooth morphs, the latent plane.

Definitions (also written into the report):
- LSD: per frame, sqrt(mean over bins of (dB_gen - dB_real)^2), both floored 80 dB under the
  real note's peak; averaged over every frame (hold and release) of the notes. Generated frames
  are the model's reconstruction of the note (z = encoder mean, noiseless decode).
- life: mean |dB[m+1] - dB[m]| over bins inside the sustained part of a note (0.25 s after
  note-on to note-off), generated with the noise on (AR(1) draws, `advance_noise`) vs real.
- morph flux: the same frame-to-frame change while z sweeps across the XY plane, stretch by
  stretch, vs a steady note held at each stretch's midpoint with the same noise draws (ratio
  <= 1: moving adds no jumps).
- pitch: notes generated at MIDI 36-84 in quarter-tone steps from latent points spread over
  the plane, inverted with the streaming inverter, tracked with CREPE (torchcrepe's "tiny"
  model, weighted-argmax decoding, periodicity > 0.5 = voiced) when installed, else librosa's
  YIN (frames within 30 dB of the note's loudest = voiced); the first 50 ms are skipped.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from livegen.data.features import load_audio
from livegen.data.pitch import import_torchcrepe
from livegen.dsp import invert
from livegen.train.losses import DB, EPS, FLOOR_DB

SUSTAIN_START_S = 0.25
UNPITCHED_FAMILIES = ("percussive", "sound_effects")


def encode_notes(model, sampler, notes, *, n_enc: int = 24, chunk: int = 256) -> torch.Tensor:
    """Encoder means `[N, latent_dim]` of `notes` (frames evenly spread over each note)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(notes), chunk):
            b = sampler.note_batch(np.asarray(notes[i:i + chunk]), n_enc)
            out.append(model.encode(b.enc_frames, b.pitch, b.velocity)[0])
    return torch.cat(out) if out else torch.zeros(0, model.config.latent_dim)


def generate_frames(model, z, pitch, velocity, n_frames: int, release_frame: int, *, noise_seed=None,
                    z_path=None) -> np.ndarray:
    """Frames `[n_frames, bins]` (linear) of one note from the decoder alone: the model's playing
    settings (level, vibrato, shimmer) are left out, so these compare with the training notes.

    `noise_seed` None = noiseless; `z_path` `[n_frames, D]` overrides z per frame (morphs).
    """
    cfg = model.config
    hop_s = cfg.hop_seconds
    m = torch.arange(n_frames, dtype=torch.float32)
    t_on = m * hop_s
    t_off = (m - release_frame) * hop_s if release_frame >= 0 else torch.full((n_frames,), -1.0)
    zz = z_path if z_path is not None else torch.as_tensor(z, dtype=torch.float32).expand(n_frames, -1)
    noise = None
    if noise_seed is not None:
        g = torch.Generator().manual_seed(int(noise_seed))
        draws = torch.randn(n_frames, cfg.noise_dim, generator=g)
        noise = torch.empty_like(draws)
        state = draws[0]
        for i in range(n_frames):
            state = draws[0] if i == 0 else model.advance_noise(state, draws[i])
            noise[i] = state
    with torch.inference_mode():
        # Frames are independent given their inputs, so the whole note decodes as one batch.
        p = torch.full((n_frames,), float(pitch))
        y = model.render(model.decode_params(zz, p, torch.full((n_frames,), float(velocity)), t_on, t_off), p, noise)
    return y.numpy()


def _db(logmag, log_peak, floor_db=FLOOR_DB):
    return DB * np.maximum(logmag, log_peak - floor_db / DB)


def note_lsd(model, sampler, notes, *, floors=(FLOOR_DB,), parts: dict | None = None) -> np.ndarray:
    """Per-note LSD (dB) of the model's reconstructions, `[notes, len(floors)]`.

    With `parts` (a dict), it also gets where the error lies at the first floor, averaged over
    notes: `onset` (first 50 ms), `held`, `release` frames, and the RMS dB error in the bands
    `<1k`, `1-4k`, `4-8k`, `>8k` Hz.
    """
    mu = encode_notes(model, sampler, notes)
    out = []
    cuts = []
    if parts is not None:
        bin_hz = model.config.bin_hz
        cuts = [(name, int(lo / bin_hz), int(hi / bin_hz)) for name, lo, hi in
                (("<1k", 0, 1000), ("1-4k", 1000, 4000), ("4-8k", 4000, 8000), (">8k", 8000, 1e9))]
        onset = max(1, int(round(0.05 / sampler.hop_s)))
        acc: dict[str, list] = {}
    for j, i in enumerate(notes):
        real = sampler.full_note(i)
        peak = real.max()
        gen = np.log(generate_frames(model, mu[j], sampler.pitch[i], sampler.velocity[i], real.shape[0],
                                     int(sampler.release[i])) + EPS)
        row = []
        for k, fl in enumerate(floors):
            d = _db(gen, peak, fl) - _db(real, peak, fl)
            per_frame = np.sqrt((d * d).mean(axis=1))
            row.append(float(per_frame.mean()))
            if parts is not None and k == 0:
                rel = int(sampler.release[i]) if sampler.release[i] > 0 else len(per_frame)
                for name, seg in (("onset", per_frame[:onset]), ("held", per_frame[onset:rel]),
                                  ("release", per_frame[rel:])):
                    if seg.size:
                        acc.setdefault(name, []).append(float(seg.mean()))
                for name, lo, hi in cuts:
                    if d[:, lo:hi].size:
                        acc.setdefault(name, []).append(float(np.sqrt((d[:, lo:hi] ** 2).mean())))
        out.append(row)
    if parts is not None:
        parts.update({name: round(float(np.mean(v)), 3) for name, v in acc.items()})
    return np.array(out).reshape(len(out), len(floors))


def _sustain(sampler, i, n):
    hop_s = sampler.hop_s
    a = int(math.ceil(SUSTAIN_START_S / hop_s))
    rel = int(sampler.release[i])
    b = rel if rel > 0 else n
    return a, min(b, n)


def life(model, sampler, notes, *, seed: int = 0) -> tuple[float, float]:
    """(real, generated) mean frame-to-frame dB change inside sustained parts of `notes`."""
    mu = encode_notes(model, sampler, notes)
    real_c, gen_c = [], []
    for j, i in enumerate(notes):
        real = sampler.full_note(i)
        a, b = _sustain(sampler, i, real.shape[0])
        if b - a < 4:
            continue
        peak = real.max()
        gen = generate_frames(model, mu[j], sampler.pitch[i], sampler.velocity[i], real.shape[0],
                              int(sampler.release[i]), noise_seed=seed + j)
        rd = _db(real[a:b], peak)
        gd = _db(np.log(gen[a:b] + EPS), np.log(gen.max() + EPS))
        real_c.append(np.abs(np.diff(rd, axis=0)).mean())
        gen_c.append(np.abs(np.diff(gd, axis=0)).mean())
    return float(np.mean(real_c)), float(np.mean(gen_c))


def calibrate_life(model, sampler, notes, *, target: float = 1.0) -> dict:
    """Choose noise_gain / harm_jitter so generated sustained notes move like real ones."""
    cfg = model.config
    best = None
    for gain in (1.0, 0.7, 0.5):
        for jitter in (0.0, 0.03, 0.06, 0.1, 0.15, 0.25):
            cfg.noise_gain, cfg.harm_jitter = gain, jitter
            real, gen = life(model, sampler, notes)
            ratio = gen / max(real, 1e-9)
            score = abs(math.log(max(ratio, 1e-6) / target))
            if best is None or score < best[0]:
                best = (score, gain, jitter, ratio, real, gen)
    _, cfg.noise_gain, cfg.harm_jitter, ratio, real, gen = best
    return {"noise_gain": cfg.noise_gain, "harm_jitter": cfg.harm_jitter, "life_ratio": round(ratio, 3),
            "life_real_db": round(real, 3), "life_gen_db": round(gen, 3)}


def _flux_db(frames: np.ndarray, log_peak: float) -> float:
    """Mean |dB[m+1] - dB[m]| of linear `frames`, floored FLOOR_DB under `log_peak`."""
    return float(np.abs(np.diff(_db(np.log(frames + EPS), log_peak), axis=0)).mean())


def morph_flux(model, *, pitches=(48.0, 60.0, 72.0), n_frames: int = 240, seed: int = 0, segments: int = 8) -> dict:
    """Frame-to-frame change while z sweeps diagonally across the plane vs steady notes.

    The sweep is cut into `segments` stretches; each is compared with a steady note held at its
    midpoint (same noise draws, one floor under the louder of the two), so the ratio measures what
    moving adds rather than how noisy the timbres passed through are. The earlier baseline, one
    steady note at the pad's centre against the whole sweep, is kept as `centre_ratio`.
    """
    cfg = model.config
    start = int(math.ceil(0.5 / cfg.hop_seconds))
    total = start + n_frames
    seg_sweep, seg_steady, whole_sweep, centre, jumps = [], [], [], [], []
    ends = torch.tensor([[0.05, 0.1], [0.95, 0.9]])
    xy = torch.lerp(ends[0], ends[1], torch.linspace(0.0, 1.0, n_frames).unsqueeze(1))
    path = torch.cat([model.xy_to_z(xy[:1]).expand(start, -1), model.xy_to_z(xy)])
    bounds = np.linspace(0, n_frames, segments + 1).astype(int)
    for k, p in enumerate(pitches):
        sw = generate_frames(model, None, p, 0.7, total, -1, noise_seed=seed + k, z_path=path)[start:]
        for a, b in zip(bounds[:-1], bounds[1:]):
            st = generate_frames(model, model.xy_to_z(xy[(a + b) // 2]), p, 0.7, total, -1,
                                 noise_seed=seed + k)[start + a:start + b]
            peak = math.log(max(sw[a:b].max(), st.max()) + EPS)
            seg_sweep.append(_flux_db(sw[a:b], peak))
            seg_steady.append(_flux_db(st, peak))
        st = generate_frames(model, model.xy_to_z(torch.tensor([0.5, 0.5])), p, 0.7, total, -1,
                             noise_seed=seed + k)[start:]
        peak = math.log(max(sw.max(), st.max()) + EPS)
        whole_sweep.append(_flux_db(sw, peak))
        centre.append(_flux_db(st, peak))
        quiet = generate_frames(model, None, p, 0.7, total, -1, z_path=path)[start:]
        jumps.append(np.abs(np.diff(_db(np.log(quiet + EPS), math.log(quiet.max() + EPS)), axis=0)).mean(axis=1).max())
    return {"sweep_flux_db": round(float(np.mean(seg_sweep)), 3), "steady_flux_db": round(float(np.mean(seg_steady)), 3),
            "ratio": round(float(np.mean(seg_sweep) / max(np.mean(seg_steady), 1e-9)), 3),
            "centre_sweep_flux_db": round(float(np.mean(whole_sweep)), 3),
            "centre_steady_flux_db": round(float(np.mean(centre)), 3),
            "centre_ratio": round(float(np.mean(whole_sweep) / max(np.mean(centre), 1e-9)), 3),
            "max_noiseless_jump_db": round(float(np.max(jumps)), 3), "sweep_seconds": round(n_frames * cfg.hop_seconds, 2)}


# ------------------------------------------------------------------ pitch
def _tracker():
    try:
        import_torchcrepe()
        return "crepe"
    except Exception:  # torchcrepe (the `eval` extra) is not installed
        return "yin"


def track_pitch(audio: np.ndarray, sr: int, *, method: str):
    """(midi [frames], voiced [frames] bool) for one signal."""
    if method == "crepe":
        torchcrepe = import_torchcrepe()
        x = torch.from_numpy(audio.astype(np.float32))[None]
        f0, per = torchcrepe.predict(x, sr, hop_length=sr // 100, fmin=50.0, fmax=1400.0, model="tiny",
                                     return_periodicity=True, batch_size=512, device="cpu",
                                     decoder=torchcrepe.decode.weighted_argmax)
        f0, per = f0[0].numpy(), per[0].numpy()
        voiced = per > 0.5
    else:
        import librosa

        hop = sr // 100
        f0 = librosa.yin(audio, fmin=50.0, fmax=1400.0, sr=sr, frame_length=2048, hop_length=hop, center=False)
        rms = librosa.feature.rms(y=audio, frame_length=2048, hop_length=hop, center=False)[0][:f0.size]
        f0 = f0[:rms.size]
        voiced = rms > rms.max() * 10 ** (-30 / 20)
    midi = 69.0 + 12.0 * np.log2(np.maximum(f0, 1e-3) / 440.0)
    return midi, voiced


def _score(midi, voiced, asked, skip):
    v = voiced.copy()
    v[:skip] = False
    cents = np.abs(midi[v] - asked) * 100.0
    return cents


def tracked_cents(mags, asked, cfg, *, method: str) -> list[np.ndarray]:
    """Notes' magnitude frames `mags` inverted and tracked with `method`: per note, how many cents
    each voiced frame (after the first 5) is off its `asked` pitch."""
    audio = invert(np.stack(mags).astype(np.float32), n_fft=cfg.n_fft, hop=cfg.hop)
    sr = cfg.sample_rate
    if method == "crepe":
        import soxr

        audio = np.stack([soxr.resample(a, sr, 16000) for a in audio])
        sr = 16000
    return [_score(*track_pitch(a, sr, method=method), p, skip=5) for a, p in zip(audio, asked)]


def pitch_accuracy_generated(model, *, n_points: int = 20, pitches=None, seconds: float = 0.5, seed: int = 0,
                             method: str | None = None, per_pitch: int = 2) -> dict:
    """Generate, invert and track notes from `n_points` latent points spread over the plane."""
    cfg = model.config
    method = method or _tracker()
    pitches = np.arange(36.0, 84.01, 0.5) if pitches is None else np.asarray(pitches, dtype=float)
    cols = int(math.ceil(math.sqrt(n_points)))
    rows = int(math.ceil(n_points / cols))
    # A cols x rows grid over the whole pad (20 points: 5 x 4), cell centres.
    grid = [((i + 0.5) / cols, (j + 0.5) / rows) for j in range(rows) for i in range(cols)][:n_points]
    zs = model.xy_to_z(torch.tensor(grid, dtype=torch.float32))
    n_frames = int(round(seconds / cfg.hop_seconds))
    cents_all, on_grid = [], []
    mags, asked = [], []
    for k, p in enumerate(pitches):
        # Every latent point playing every pitch would be 20x97 notes; instead each pitch is played
        # by `per_pitch` latent points in rotation, so every point plays pitches across the range.
        for r in range(per_pitch):
            idx = (k * per_pitch + r) % len(zs)
            mags.append(generate_frames(model, zs[idx], p, 0.8, n_frames, -1, noise_seed=seed + k * per_pitch + r))
            asked.append(p)
    for c, p in zip(tracked_cents(mags, asked, cfg, method=method), asked):
        cents_all.append(c)
        on_grid.append(np.full(c.size, float(p) == round(p)))
    c = np.concatenate(cents_all)
    grid_mask = np.concatenate(on_grid)
    return {"tracker": method, "notes": len(asked), "latent_points": len(zs), "voiced_frames": int(c.size),
            "within_50c": round(float((c <= 50).mean()), 4) if c.size else None,
            "within_20c": round(float((c <= 20).mean()), 4) if c.size else None,
            "within_50c_semitones": round(float((c[grid_mask] <= 50).mean()), 4) if grid_mask.any() else None,
            "within_50c_quartertones": round(float((c[~grid_mask] <= 50).mean()), 4) if (~grid_mask).any() else None}


def pitch_accuracy_real(paths_and_pitches, *, sample_rate: int, method: str | None = None, seconds: float = 0.6) -> dict:
    """The same measurement on real rendered notes (their first `seconds`)."""
    method = method or _tracker()
    cents = []
    for path, p in paths_and_pitches:
        y, _ = load_audio(path, sample_rate=16000 if method == "crepe" else sample_rate, max_seconds=seconds)
        midi, voiced = track_pitch(y, 16000 if method == "crepe" else sample_rate, method=method)
        cents.append(_score(midi, voiced, p, skip=5))
    c = np.concatenate(cents) if cents else np.zeros(0)
    return {"tracker": method, "notes": len(paths_and_pitches), "voiced_frames": int(c.size),
            "within_50c": round(float((c <= 50).mean()), 4) if c.size else None,
            "within_20c": round(float((c <= 20).mean()), 4) if c.size else None}


# ------------------------------------------------------------------ plane picture
def plane_png(model, mu, families, path, *, what: str = "Notes") -> bool:
    """Scatter of every note's position on the XY plane, coloured by family; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    xy = model.z_to_xy(mu).numpy()
    names = sorted(set(families))
    cmap = plt.get_cmap("tab20", max(len(names), 1))
    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=110)
    fam = np.array(families)
    for k, name in enumerate(names):
        sel = fam == name
        ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.55, color=cmap(k), label=name)
    for name, (cx, cy) in model.family_centroids.items():
        ax.annotate(name, (cx, cy), fontsize=7, ha="center", weight="bold")
    ax.add_patch(plt.Rectangle((0, 0), 1, 1, fill=False, lw=1, ls="--", color="grey"))
    ax.set_xlabel("x (1st principal direction)")
    ax.set_ylabel("y (2nd principal direction)")
    ax.set_title(f"{what} on the XY plane (encoder means), by family")
    ax.legend(fontsize=6, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
