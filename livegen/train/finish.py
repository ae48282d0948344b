"""After the last step: fit the XY plane to the training encodings, calibrate the noise, set the
playing settings (level, vibrato, shimmer), save."""

from __future__ import annotations

import time

import numpy as np

from livegen.model import save_model
from livegen.model.spectral import PLAYING_DEFAULTS
from livegen.train.evaluate import UNPITCHED_FAMILIES, calibrate_life, encode_notes


def finish_model(model, sampler, cfg, out_dir, *, train_seconds: float, world: int) -> dict:
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
    card = (f"# livegen spectral model (trained)\n\nTrained {cfg.steps} steps in {train_seconds / 60:.1f} min "
            f"on {len(sampler)} notes of {len(set(sampler.instrument))} instruments. "
            "Run `livegen eval` for its measured figures.\n")
    save_model(model, out_dir, card_text=card)
    return {"model_dir": str(out_dir), "life_calibration": calib}
