"""`livegen train --data ANY_FOLDER`: a playable model from recordings, with no labels.

`prepare` reads the folder (any layout `livegen.data` opens), picks the model's rate from the
material, decides pitched or texture (`--kind auto`), computes the features (per-frame f0,
voicing and loudness for pitched material) into the memory-mapped cache, cuts notes or events
(`livegen.train.material`) and returns the task the training loop runs. Its `finish` fits the
XY plane, saves the model and writes the report card (`livegen.train.card`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from livegen.data.features import compute_features
from livegen.errors import ParameterError
from livegen.model import ModelConfig, save_model
from livegen.model.texture import TextureConfig, save_texture_model, set_level
from livegen.paths import remember_trained
from livegen.train import card, material
from livegen.train.evaluate import calibrate_life, encode_notes
from livegen.train.tasks import NoteTask, TextureTask

TRACKER = "pyin"
KINDS = ("auto", "pitched", "texture")
TRADE_OFFS = {
    "texture": "trained as texture: notes transpose the recorded sound (a sampler's repitch) instead of playing "
               "a learned instrument at any pitch; harmonics move with the spectrum",
    "pitched": "trained as pitched: only voiced frames teach the model; unpitched parts (noise, hits, chords) "
               "are left out and the harmonic model plays one pitch at a time",
}


def prepare(dataset, cfg, *, kind: str, cache: Path, rank: int, distributed: bool, progress: bool, log,
            steps_given: bool, max_minutes: float | None, command: str | None = None):
    """The training task for `dataset` (see the module docstring); `cfg` gets the run's steps;
    `command` is the command line the card names (None: `livegen train --data` the folder)."""
    if kind not in KINDS:
        raise ParameterError(f"--kind {kind!r}: use one of {', '.join(KINDS)}")
    say = log if rank == 0 else (lambda *_a, **_k: None)
    started = time.perf_counter()
    rates = material.survey_rates(dataset)
    sample_rate, n_fft, hop = material.choose_stft(rates)
    rate_text = ", ".join(f"{r} Hz x{n}" for r, n in sorted(rates.items()))
    say(f"material: {len(dataset)} files ({dataset.layout} layout) at {rate_text or 'unknown rates'}; "
        f"model at {sample_rate} Hz (bandwidth {sample_rate // 2000} kHz), n_fft {n_fft}, hop {hop}")
    decision = {"asked": kind}
    if kind == "auto":
        kind, why, figures = material.decide_kind(dataset)
        decision.update(why=why, **figures)
        say(f"kind: {kind} ({why})")
    else:
        say(f"kind: {kind} (as asked)")
        decision["why"] = "as asked"
    decision["kind"] = kind
    pitch = TRACKER if kind == "pitched" else None

    def features_now(show: bool):
        return compute_features(dataset, sample_rate=sample_rate, n_fft=n_fft, hop=hop, cache_dir=cache,
                                progress=show, pitch=pitch, clean=True)

    if rank == 0:
        features = features_now(progress)
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    if rank != 0:
        features = features_now(False)
    report = features.report
    for s in report["skipped"]:
        say(f"skipped {s['path']}: {s['reason']}")
    clipped = [f for f in report.get("files", []) if f.get("clipped_share", 0) > 1e-4]
    for f in clipped[:10]:
        say(f"clipping in {f['id']}: {f['clipped_share']:.2%} of samples at full scale (kept; the model learns "
            "the clipped sound)")
    dc = [f for f in report.get("files", []) if abs(f.get("dc_offset", 0)) > 1e-3]
    if dc:
        say(f"DC offset removed in {len(dc)} file(s) (10 Hz high-pass)")
    if not len(features):
        raise ParameterError(f"{dataset.root}: none of the {len(dataset)} files is usable audio "
                             f"(see the skipped files above); 0 s found, {material.MIN_TEXTURE_SECONDS:.0f} s needed")
    hop_s = hop / sample_rate
    label = Path(dataset.root).name
    if kind == "pitched":
        events, frame_midi = material.pitched_events(features)
    else:
        overrides = {k: v for k, v in cfg.model.items() if k in {f.name for f in dataclasses.fields(TextureConfig)}}
        max_event = float(overrides.get("max_event_s", TextureConfig.max_event_s))
        events, cycle = material.texture_events(features, max_event_s=max_event)
        frame_midi = None
    seconds = material.check_amount(events, hop_s=hop_s, kind=kind, data=dataset.root)
    loud = material.loudness_range(events)
    train_s = material.EventSampler(features, events, held_out=False, loud_range=loud, frame_midi=frame_midi,
                                    label=label)
    try:
        held_s = material.EventSampler(features, events, held_out=True, loud_range=loud, frame_midi=frame_midi,
                                       label=label)
    except ParameterError:
        held_s = None
    if max_minutes is not None and not steps_given:
        cfg.steps = 10_000_000  # the time budget ends the run; the learning rate follows the clock
    heard = sorted({int(round(p)) for p in train_s.pitch}) if kind == "pitched" else []
    info = {
        "kind": kind, "decision": decision, "layout": dataset.layout, "data": str(Path(dataset.root).resolve()),
        "command": command or f"livegen train --data {Path(dataset.root).resolve()}",
        "files_found": len(dataset), "files_used": len(features), "skipped": report["skipped"],
        "clipped_files": [f["id"] for f in clipped], "rates_found": {str(k): v for k, v in rates.items()},
        "minutes_of_audio": round(material.seconds_of(features) / 60.0, 2),
        "minutes_learned_from": round(seconds / 60.0, 2), "events_train": len(train_s),
        "events_held_out": 0 if held_s is None else len(held_s), "loudness_range_dbfs": [round(x, 1) for x in loud],
        "analysis_seconds": round(time.perf_counter() - started, 1), "tracker": pitch,
        "pitches_heard": heard, "median_onset_interval_s": None if kind == "pitched" else round(cycle, 3),
    }
    say(f"{kind}: {len(train_s)} {'notes' if kind == 'pitched' else 'events'} ({seconds / 60:.2f} min) to learn "
        f"from, {info['events_held_out']} held out; loudness {loud[0]:.0f}..{loud[1]:.0f} dBFS -> velocity 0..1"
        + (f"; pitches heard {heard[0]}-{heard[-1]}" if heard else ""))
    say(TRADE_OFFS[kind] if decision["asked"] != "auto" else "")
    def finish(model, out_dir, *, train_seconds, world):
        return _finish(model, train_s, held_s, cfg, out_dir, info, train_seconds=train_seconds, world=world, log=say)

    if kind == "pitched":
        base = {**dataclasses.asdict(ModelConfig()), "sample_rate": sample_rate, "n_fft": n_fft, "hop": hop,
                "families": sorted(set(train_s.family))}
        base.update(cfg.model)
        base["noise_rho"] = 0.0  # recomputed for this n_fft/hop
        mcfg = ModelConfig.from_dict(base)

        task = NoteTask(cfg, mcfg, train_s, held_s, finish=finish)
    else:
        tcfg = TextureConfig.from_dict({"sample_rate": sample_rate, "n_fft": n_fft, "hop": hop, "cycle_s": cycle,
                                        "families": sorted(set(train_s.family)), **overrides})

        task = TextureTask(cfg, tcfg, train_s, held_s, finish=finish)
    task.time_schedule = max_minutes is not None and not steps_given
    return task


def _plane(model, sampler, cfg, encode) -> tuple[torch.Tensor, list]:
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.plane_notes, len(sampler))
    events = np.sort(rng.choice(len(sampler), n, replace=False))
    mu = encode(model, sampler, events)
    families = [sampler.family[i] for i in events]
    model.fit_plane(mu, families)
    return mu, families


def encode_events(model, sampler, events, *, n_enc: int = 24, chunk: int = 256) -> torch.Tensor:
    """Texture encoder means `[N, latent_dim]` of `events`."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(events), chunk):
            b = sampler.note_batch(np.asarray(events[i:i + chunk]), n_enc)
            out.append(model.encode(b.enc_frames, b.velocity)[0])
    return torch.cat(out) if out else torch.zeros(0, model.config.latent_dim)


def _finish(model, train_s, held_s, cfg, out_dir, info, *, train_seconds, world, log):
    """Fit the plane, calibrate the noise (pitched), save, remember for the picker, write the card."""
    model = model.cpu().eval()
    pitched = info["kind"] == "pitched"
    mu, families = _plane(model, train_s, cfg, encode_notes if pitched else encode_events)
    extra = {}
    if not pitched:
        extra["gain_db"] = set_level(model)
    if pitched:
        extra["life_calibration"] = {"skipped": True}
        if cfg.calibrate_notes > 0:
            rng = np.random.default_rng(cfg.seed)
            notes = list(rng.choice(len(train_s), min(cfg.calibrate_notes, len(train_s)), replace=False))
            extra["life_calibration"] = calibrate_life(model, train_s, notes)
    model.metadata = {"trained": True, "kind": info["kind"], "train_steps": cfg.steps,
                      "train_seconds": round(train_seconds, 1), "world_size": world, "train_config": cfg.to_dict(),
                      "own": info, **extra}
    (save_model if pitched else save_texture_model)(model, out_dir)
    remember_trained(out_dir)
    figures = card.write_card(model, out_dir, info=info, held=held_s, train=train_s, mu=mu, families=families,
                              log=log)
    return {"model_dir": str(out_dir), "card": figures}
