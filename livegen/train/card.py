"""Model cards: the shared writer (`card_markdown`, `save_card`, `train_command`) every trainer's
`card.md` goes through, and the report card of a model trained on recordings, printed at the end.

Figures on the held-out part of the folder:
- LSD: per frame sqrt(mean over bins of (dB_gen - dB_real)^2), both floored 80 dB under the
  real event's peak, averaged over the event's frames, then over events; generated = the
  model's reconstruction (encoder mean, no noise draws).
- pitched models: notes at every semitone over the range found, played at the pad's centre
  (velocity 0.8, noise on, 0.5 s), inverted with the streaming inverter and tracked (CREPE-tiny
  when torchcrepe is installed, else YIN); the share of voiced frames within 50 cents, for the
  pitches the recordings contain and for those they never do.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import torch

from livegen.model.io import CARD_NAME
from livegen.train import evaluate as ev
from livegen.train.losses import DB, FLOOR_DB

MAX_EVENTS = 60


def texture_lsd(model, sampler, events) -> np.ndarray:
    """Per-event LSD (dB) of a texture model's reconstructions."""
    out = []
    for i in events:
        real = sampler.full_note(i)
        b = sampler.note_batch(np.array([i]), 24)
        with torch.inference_mode():
            mu, _ = model.encode(b.enc_frames, b.velocity)
            n = real.shape[0]
            t = torch.arange(n, dtype=torch.float32) * model.config.hop_seconds
            gen = model.frame_logmag(mu.expand(n, -1), b.velocity.expand(n), t).numpy()
        peak = real.max()
        floor = peak - FLOOR_DB / DB
        d = DB * (np.maximum(gen, floor) - np.maximum(real, floor))
        out.append(float(np.sqrt((d * d).mean(1)).mean()))
    return np.array(out)


def pitch_sweep(model, pitches, *, heard, seconds: float = 0.5, method: str | None = None) -> dict:
    """Notes at `pitches` from the pad's centre, inverted and tracked: within-50-cent shares."""
    cfg = model.config
    method = method or ev._tracker()
    z = model.xy_to_z(torch.tensor([0.5, 0.5]))
    n = int(round(seconds / cfg.hop_seconds))
    mags = [ev.generate_frames(model, z, float(p), 0.8, n, -1, noise_seed=k) for k, p in enumerate(pitches)]
    per = {}
    for c, p in zip(ev.tracked_cents(mags, [float(p) for p in pitches], cfg, method=method), pitches):
        per[int(p)] = (int((c <= 50).sum()), int(c.size))

    def share(sel):
        ok = sum(per[p][0] for p in sel)
        tot = sum(per[p][1] for p in sel)
        return round(ok / tot, 4) if tot else None

    heard_set = set(heard)
    return {"tracker": method, "pitches": [int(p) for p in pitches],
            "within_50c_all": share(per), "within_50c_heard": share([p for p in per if p in heard_set]),
            "within_50c_unheard": share([p for p in per if p not in heard_set]),
            "unheard_pitches": [p for p in per if p not in heard_set],
            "per_pitch": {str(p): round(v[0] / v[1], 3) if v[1] else None for p, v in per.items()}}


def write_card(model, out_dir, *, info: dict, held, train, mu, families, log=print) -> dict:
    """Measure, write `card.md` (+ plane.png) into `out_dir`, print the card; returns the figures."""
    out_dir = Path(out_dir)
    figures: dict = {}
    kind = info["kind"]
    sampler = held if held is not None else train
    figures["lsd_on"] = "held-out" if held is not None else "training (nothing held out)"
    rng = np.random.default_rng(0)
    events = np.sort(rng.choice(len(sampler), min(MAX_EVENTS, len(sampler)), replace=False))
    if kind == "pitched":
        lsd = ev.note_lsd(model, sampler, events)[:, 0]
        heard = info["pitches_heard"]
        lo, hi = int(min(heard)), int(max(heard))
        figures["pitch_range"] = [lo, hi]
        figures["pitch"] = pitch_sweep(model, list(range(lo, hi + 1)), heard=heard)
    else:
        lsd = texture_lsd(model, sampler, events)
    figures["lsd_db"] = round(float(lsd.mean()), 2) if lsd.size else None
    figures["lsd_events"] = int(lsd.size)
    figures["plane_png"] = ev.plane_png(model, mu, families, out_dir / "plane.png",
                                       what="Notes" if kind == "pitched" else "Events")
    command = f"livegen play --model {out_dir}"
    figures["command"] = command
    save_card(out_dir, render_card(model, info, figures), log=log)
    return figures


def render_card(model, info: dict, figures: dict) -> str:
    cfg = model.config
    kind = info["kind"]
    meta = model.metadata
    command = info.get("command") or f"livegen train --data {info['data']}"
    intro = (f"Trained by `{command}` ({info['layout']} layout), kind **{kind}** "
             f"({info['decision'].get('why', '')}).")
    rows = [
        ("files", f"{info['files_used']} used of {info['files_found']} found"
                  + (f"; skipped: " + ", ".join(f"{Path(s['path']).name} ({s['reason']})" for s in info["skipped"][:8])
                     if info["skipped"] else "")),
        ("audio", f"{info['minutes_of_audio']} min read, {info['minutes_learned_from']} min learned from "
                  f"({info['events_train']} {'notes' if kind == 'pitched' else 'events'}; "
                  f"{info['events_held_out']} held out)"),
        ("rates", ", ".join(f"{k} Hz x{v}" for k, v in info["rates_found"].items())
                  + f" -> model at {cfg.sample_rate} Hz, n_fft {cfg.n_fft}, hop {cfg.hop} "
                    f"({cfg.hop_seconds * 1e3:.2f} ms)"),
        ("velocity", f"0..1 spans the recordings' loudness {info['loudness_range_dbfs'][0]} to "
                     f"{info['loudness_range_dbfs'][1]} dBFS (5th-95th percentile of event peaks)"),
        ("training", f"{meta.get('train_steps')} steps in {meta.get('train_seconds', 0) / 60:.1f} min "
                     f"(world size {meta.get('world_size')}); features and analysis {info['analysis_seconds']} s"),
        ("held-out LSD", f"{figures['lsd_db']} dB over {figures['lsd_events']} {figures['lsd_on']} events "
                         "(80 dB floor)"),
    ]
    if kind == "pitched":
        p = figures["pitch"]
        lo, hi = figures["pitch_range"]
        rows += [
            ("pitch range found", f"MIDI {lo}-{hi} (tracker {info['tracker']}); heard: "
                                  + ",".join(str(x) for x in info["pitches_heard"])),
            ("pitch accuracy", f"{_pct(p['within_50c_all'])} of voiced frames within 50 cents over MIDI {lo}-{hi}; "
                               f"heard pitches {_pct(p['within_50c_heard'])}, never-heard pitches "
                               f"{_pct(p['within_50c_unheard'])} ({', '.join(map(str, p['unheard_pitches'])) or 'none'}); "
                               f"tracker {p['tracker']}"),
        ]
    else:
        cycle = info.get("median_onset_interval_s")
        why = ("the material's median onset interval" if cycle is None or abs(cycle - cfg.cycle_s) < 1e-6
               else f"set by the training config; the material's median onset interval is {cycle:.2f} s")
        rows += [("notes", f"a note starts an event at its velocity; held (and the drone) it repeats every "
                           f"{cfg.cycle_s:.2f} s ({why}); MIDI {cfg.root_pitch:g} plays it as recorded, each "
                           "semitone scales the frequency axis by 2^(1/12)")]
    sections = ["![plane](plane.png)"] if figures.get("plane_png") else []
    return card_markdown(f"livegen {kind} model: {Path(info['data']).name}", intro, rows, sections=sections,
                         play=[figures["command"]])


def card_markdown(title: str, intro: str, rows, *, sections=(), play) -> str:
    """A `card.md`: title, how the model was made, a table of its data and figures, further
    Markdown sections, and the commands that play it. One shape for every kind of model, so a
    card reads the same whichever trainer wrote it."""
    lines = [f"# {title}", "", intro, "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines.append("")
    for section in sections:
        lines += [section, ""]
    lines += ["Play it:", "```", *play, "```", ""]
    return "\n".join(lines)


def save_card(out_dir, text: str, *, log=print) -> Path:
    """Write `text` as the model folder's `card.md` and print it: the card is the run's last word."""
    path = Path(out_dir) / CARD_NAME
    path.write_text(text)
    log(text)
    return path


def train_command(args) -> str:
    """The `livegen train` command line of parsed options `args` (those given, defaults left out),
    for a card to say exactly how its model was made."""
    words = ["livegen", "train"]
    for dest in ("config", "data", "out", "kind", "steps", "seed", "device", "cache", "threads", "max_minutes"):
        value = getattr(args, dest, None)
        if value is None or (dest in ("kind", "device") and value == "auto"):
            continue
        words += ["--" + dest.replace("_", "-"), f"{value:g}" if isinstance(value, float) else str(value)]
    if getattr(args, "resume", False):
        words.append("--resume")
    return shlex.join(words)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


__all__ = ["card_markdown", "pitch_sweep", "render_card", "save_card", "texture_lsd", "train_command",
           "write_card"]
