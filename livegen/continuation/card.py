"""The card a continuation training run leaves in its model folder (`card.md`): the data, the
exact command, the figures its training measured and how to play it, through the writer every
trainer shares (`livegen.train.card`), so a continuation model's folder is as complete as a
spectral one's."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

from livegen.continuation.baseline import KIND as BASELINE
from livegen.continuation.notes import VOICE_MODEL_KEY
from livegen.data.songs import REPORT_NAME, read_songs_report
from livegen.train.card import card_markdown, save_card

UNIT_GAUSSIAN_NLL = 0.5 * math.log(2 * math.pi * math.e)
"""The NLL per whitened dimension of a model that knows nothing (a unit Gaussian): the scale a
continuation model's NLL is read against."""
MAX_LOSS_ROWS = 10


def split_figures(pieces, rows_in_split: int, *, hop_seconds: float) -> dict:
    """Pieces and minutes of one split's analysed frames (`SongFrames.coefs`), and how many of the
    split's rows were too short to train on."""
    frames = sum(int(c.shape[0]) for c in pieces)
    return {"pieces": len(pieces), "minutes": round(frames * hop_seconds / 60.0, 2),
            "too_short": rows_in_split - len(pieces)}


def loss_rows(metrics_path, loss_name: str) -> list[dict]:
    """The logged rows that carry a held-out loss, thinned to at most MAX_LOSS_ROWS (the last kept)."""
    try:
        lines = Path(metrics_path).read_text().splitlines()
    except OSError:
        return []
    rows = [r for r in (json.loads(line) for line in lines if line.strip()) if "val_" + loss_name in r]
    if len(rows) <= MAX_LOSS_ROWS:
        return rows
    every = math.ceil(len(rows) / MAX_LOSS_ROWS)
    return [r for i, r in enumerate(rows) if (len(rows) - 1 - i) % every == 0]


def write_continuation_card(model, out_dir, *, cfg, data, pieces: dict, command: str | None, basis_info: dict,
                            val_loss: float, train_seconds: float, world: int, metrics_path, log=print) -> Path:
    """Write (and print) `out_dir/card.md` for a just-saved continuation model or seed-recipe baseline.

    `pieces`: the folder's ``layout``, `split_figures` of the pieces trained (``train``) and
    validated on (``valid``, None when the folder held none out and validation ran on training
    pieces), the ``test`` pieces no training touches and the ``unreadable`` files; `val_loss`: the
    final validation loss `finish` measured; `metrics_path`: the run's `metrics.jsonl`.
    """
    mcfg = model.config
    baseline = cfg.kind == BASELINE
    loss = "mse" if baseline else "nll"
    data_path = Path(data).resolve()
    hop_ms = mcfg.hop_seconds * 1e3
    params = sum(p.numel() for p in model.parameters())
    what = "seed-recipe baseline" if baseline else "continuation model"
    if command:
        intro = f"Trained by `{command}` (a {what}: the config's `kind` is `\"{cfg.kind}\"`)."
    else:
        intro = (f"Trained by `livegen.continuation.train.train_continuation` called from Python (a {what}, "
                 "no command line); its settings are below.")

    train, valid = pieces["train"], pieces["valid"]
    data_row = (f"`{data_path}` ({pieces['layout']} layout): {train['pieces']} pieces trained on "
                f"({train['minutes']} min), " + (f"{valid['pieces']} held out for validation ({valid['minutes']} min)"
                                                  if valid else "none held out for validation")
                + f", {pieces['test']} in the test split (unused); genres {', '.join(mcfg.genres) or 'none'}")
    short = train["too_short"] + (valid["too_short"] if valid else 0)
    if short or pieces["unreadable"]:
        data_row += f"; left out: {short} pieces too short, {pieces['unreadable']} unreadable or silent files"
    rows = [("data", data_row)]
    songs = read_songs_report(data)
    if songs:
        rows.append(("made by", f"`livegen dataset gm-songs`: {songs.get('songs')} pieces x {songs.get('seconds')} s, "
                                f"seed {songs.get('seed')}, SoundFont {songs.get('soundfont')} ({data_path / REPORT_NAME})"))
    frames = f"{mcfg.sample_rate} Hz, n_fft {mcfg.n_fft}, hop {mcfg.hop} ({hop_ms:.2f} ms)"
    if baseline:
        frames += (f"; dB re {basis_info['ref_db']:.1f} (the loudest training bin), {mcfg.top_db:g} dB floor, "
                   f"scaled 0..1 ({100 * basis_info['share_at_floor']:.1f} % of {basis_info['frames']} frames' "
                   "values at the floor)")
        arch = mcfg.describe()
    else:
        frames += (f"; {mcfg.n_components} PCA components explain {100 * basis_info['explained_variance']:.1f} % of "
                   f"the normalised variance ({basis_info['frames']} training frames), whitened")
        arch = (f"GRU {mcfg.layers} x {mcfg.hidden} stepping once per block of {mcfg.block} hops "
                f"({mcfg.block * hop_ms:.1f} ms), a {mcfg.mixtures}-component diagonal Gaussian mixture over the next "
                f"block, {mcfg.latent_dim}-D style latent")
    rows += [("frames", frames), ("model", f"{arch}; {params / 1e6:.2f} M parameters")]
    seq = (f"{mcfg.window + mcfg.target_offset}-frame windows" if baseline
           else f"sequences of {cfg.seq_blocks} blocks")
    lr = f"{cfg.lr:g}" if cfg.lr == cfg.lr_min else f"{cfg.lr:g} to {cfg.lr_min:g}"
    rows.append(("training", f"{model.metadata.get('steps')} steps (batches of {cfg.batch} {seq}) in "
                             f"{train_seconds / 60:.1f} min, world size {world}; lr {lr}, seed {cfg.seed}"))
    on = (f"{valid['pieces']} held-out pieces" if valid else "training pieces, the folder holding none out") + (
        f" ({cfg.val_batches} batch{'es' if cfg.val_batches > 1 else ''} of {cfg.batch}, fixed seed"
        + ("" if baseline else ", no input noise") + ")")
    if baseline:
        held = f"MSE {val_loss:.5f} (0..1-scaled dB frames) on {on}"
    else:
        held = (f"NLL {val_loss:.4f} nats per whitened dimension on {on}; a unit Gaussian that knows nothing "
                f"scores {UNIT_GAUSSIAN_NLL:.2f}")
    rows.append(("validation " + loss.upper(), held))
    if not baseline and model.family_centroids:
        rows.append(("XY pad", "fitted to the training pieces' style encodings; genres at "
                     + ", ".join(f"{g} ({x:.2f}, {y:.2f})" for g, (x, y) in sorted(model.family_centroids.items()))))
    rows.append(("notes", f"MIDI and OSC notes play from a spectral voice model beside the stream: `models/default` "
                          f"unless `config.json` names another under `\"{VOICE_MODEL_KEY}\"`"))

    table = loss_rows(metrics_path, loss)
    sections = []
    if table:
        name = loss.upper()
        lines = ["Losses (`metrics.jsonl`; train: the logged step's own batch):", "",
                 f"| step | train {name} | validation {name} |", "|---:|---:|---:|"]
        lines += [f"| {r['step']} | {r.get(loss, '-')} | {r['val_' + loss]} |" for r in table]
        if table[-1]["step"] != model.metadata.get("steps"):
            lines.append(f"| {model.metadata.get('steps')} (final) | - | {val_loss} |")
        sections.append("\n".join(lines))
    sections.append("Settings (the training config as run):\n```json\n" + json.dumps(cfg.to_dict()) + "\n```")
    out = shlex.quote(str(out_dir))
    play = [f"livegen play --model {out} --seed-audio SEED.wav",
            f"livegen render EVENTS.jsonl --model {out} --seed-audio SEED.wav --seconds 30 -o continued.wav",
            f"livegen bench continuation --model {out}"]
    title = f"livegen {'seed_lstm baseline' if baseline else 'continuation model'}: {data_path.name}"
    return save_card(out_dir, card_markdown(title, intro, rows, sections=sections, play=play), log=log)


__all__ = ["loss_rows", "split_figures", "write_continuation_card"]
