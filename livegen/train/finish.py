"""After the last step: fit the XY plane to the training encodings, calibrate the noise, set the
playing settings (level, vibrato, shimmer), save, and write the card (`livegen.train.card`)."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import numpy as np

from livegen.model import save_model
from livegen.model.spectral import PLAYING_DEFAULTS
from livegen.train.card import card_markdown, save_card
from livegen.train.evaluate import UNPITCHED_FAMILIES, calibrate_life, encode_notes


def finish_model(model, sampler, cfg, out_dir, *, train_seconds: float, world: int, data, layout: str,
                 valid=None, command: str | None = None, metrics_path=None, log=print) -> dict:
    """Finish a note-dataset model trained on `sampler` (`valid`: the validation notes or None)
    from the folder `data` and save it with its card; `command`: the command line that trained
    it (None: called from Python); `metrics_path`: the run's `metrics.jsonl`, whose last lines
    give the card its final losses."""
    model = model.cpu().eval()
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.plane_notes, len(sampler))
    notes = np.sort(rng.choice(len(sampler), n, replace=False))
    mu = encode_notes(model, sampler, notes)
    families = [sampler.family[i] for i in notes]
    # The pad spans the pitched instruments: with drum and effect presets in the plane's fit its
    # corners fell on unpitched sounds (YIN found the asked pitch in 10-30 % of their frames).
    # Those families stay reachable off the plane with the z knobs.
    pitched_mask = [f not in UNPITCHED_FAMILIES for f in families]
    model.fit_plane(mu, families, fit_on=pitched_mask if any(pitched_mask) else None)
    model.config.families = sorted(set(sampler.family))
    pitched = [i for i in notes if sampler.family[i] not in UNPITCHED_FAMILIES]
    cal_notes = list(rng.choice(pitched or list(notes), min(cfg.calibrate_notes, len(pitched or notes)), replace=False))
    calib = {"skipped": True}
    if cfg.calibrate_notes > 0:
        t = time.perf_counter()
        calib = calibrate_life(model, sampler, cal_notes)
        calib["seconds"] = round(time.perf_counter() - t, 1)
    # Playing settings: an even level over the pad; vibrato and shimmer only where notes are pitched.
    model.config.level_dbfs = PLAYING_DEFAULTS["level_dbfs"]
    model.config.envelope_at_harmonics = PLAYING_DEFAULTS["envelope_at_harmonics"]
    if pitched:
        for name in ("vibrato_cents", "vibrato_hz", "shimmer_db"):
            setattr(model.config, name, PLAYING_DEFAULTS[name])
    model.metadata = {
        "trained": True, "train_steps": cfg.steps, "train_seconds": round(train_seconds, 1), "world_size": world,
        "train_notes": len(sampler), "train_instruments": len(set(sampler.instrument)),
        "plane_notes": int(n), "life_calibration": calib, "train_config": cfg.to_dict(),
    }
    save_model(model, out_dir)
    text = note_card(model, sampler, cfg, out_dir, train_seconds=train_seconds, world=world, data=data,
                     layout=layout, valid=valid, command=command, last=last_rows(metrics_path),
                     calib_notes=len(cal_notes))
    save_card(out_dir, text, log=log)
    return {"model_dir": str(out_dir), "life_calibration": calib}


def last_rows(metrics_path) -> dict:
    """The last logged row of each split ("train", "valid") in `metrics.jsonl` (none: {})."""
    try:
        lines = Path(metrics_path).read_text().splitlines() if metrics_path else []
    except OSError:
        return {}
    return {row.get("split", "train"): row for row in (json.loads(line) for line in lines if line.strip())}


def _losses(row: dict, rec_loss: str) -> str:
    rec = {"l1": "mean absolute", "rms": "RMS per frame"}.get(rec_loss, rec_loss)
    return (f"loss {row['loss']:.4f}: reconstruction {row['rec_db']:.2f} dB ({rec}, 80 dB floor), "
            f"band envelope {row['env_db']:.2f} dB, KL {row['kl']:.3f}; step {row['step']}")


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def note_card(model, sampler, cfg, out_dir, *, train_seconds: float, world: int, data, layout: str, valid,
              command: str | None, last: dict, calib_notes: int) -> str:
    """The `card.md` of a spectral model trained on a note dataset: its data, the command, the
    figures training measured and how to play it, in the shape every trainer's card has."""
    mcfg, meta = model.config, model.metadata
    data_path = Path(data).resolve()
    if command:
        intro = f"Trained by `{command}` (the spectral VAE on the labelled notes of a {layout} dataset)."
    else:
        intro = ("Trained by `livegen.train.train` called from Python (the spectral VAE on the labelled notes of a "
                 f"{layout} dataset, no command line); its settings are below.")
    held = (f"{_count(len(valid), 'note')} of {_count(len(set(valid.instrument)), 'other instrument')} held out "
            "for validation" if valid is not None else "none held out for validation")
    params = sum(p.numel() for p in model.parameters())
    lr = f"{cfg.lr:g}" if cfg.lr == cfg.lr_min else f"{cfg.lr:g} to {cfg.lr_min:g}"
    rows = [
        ("data", (f"`{data_path}` ({layout} layout): {_count(len(sampler), 'note')} of "
                  f"{_count(len(set(sampler.instrument)), 'instrument')} trained on (families "
                  f"{', '.join(sorted(set(sampler.family)))}); {held}")),
        ("frames", f"{mcfg.sample_rate} Hz, n_fft {mcfg.n_fft}, hop {mcfg.hop} ({mcfg.hop_seconds * 1e3:.2f} ms)"),
        ("model", f"latent {mcfg.latent_dim}-D; {params / 1e6:.2f} M parameters"),
        ("training", (f"{meta['train_steps']} steps (batches of {cfg.batch_notes} notes x {cfg.frames_per_note} "
                      f"frames) in {train_seconds / 60:.1f} min, world size {world}; lr {lr}, seed {cfg.seed}")),
        ("final train loss", _losses(last["train"], cfg.rec_loss) + " (mean over the steps since the previous log line)"
         if "train" in last else "not logged"),
        ("validation loss", _losses(last["valid"], cfg.rec_loss) + " (held-out instruments, fixed batch, z at the mean)"
         if "valid" in last else "none: the dataset holds no validation notes"),
        ("XY pad", f"fitted to {meta['plane_notes']} training notes' encodings (pitched families)"),
    ]
    calib = meta["life_calibration"]
    if calib.get("skipped"):
        rows.append(("noise", "not calibrated (calibrate_notes 0): the config's noise gain and jitter"))
    else:
        rows.append(("noise", (f"noise gain {calib['noise_gain']}, harmonic jitter {calib['harm_jitter']}: "
                               f"generated notes change {calib['life_ratio']}x as much frame to frame as real ones "
                               f"({calib['life_gen_db']} vs {calib['life_real_db']} dB, {calib_notes} training notes)")))
    sections = ["Held-out pitch accuracy and LSD: `livegen eval` (below) measures them.",
                "Settings (the training config as run):\n```json\n" + json.dumps(cfg.to_dict()) + "\n```"]
    out = shlex.quote(str(out_dir))
    play = [f"livegen play --model {out}", f"livegen eval --model {out} --data {shlex.quote(str(data_path))}"]
    return card_markdown(f"livegen spectral model: {data_path.name}", intro, rows, sections=sections, play=play)
