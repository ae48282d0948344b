"""Notes beside a continuation model: pitched voices from a spectral model at the same latent point.

A continuation model has no note decoder: it makes a stream, like the drone/bed of the spectral
engine. Notes (MIDI, OSC, the UI) therefore play with a *voice model*, a spectral VAE: by default
`models/default`, or the one the continuation model's ``config.json`` names under
``"voice_model"`` (a path relative to the model directory; ``null`` turns notes off). The voices
are a `NotesSource` (polyphony, stealing, sustain, release; no drone voice: the stream is the
drone) beside the `ContinuationSource`; the engine sums their magnitudes and inverts them as
one stream.

The latent point: the performer's ``x, y`` map onto each model's own XY plane, and ``z0..zN``,
``glide`` and the ``drift`` walk apply to both models alike (`livegen.engine.latent`), so moving
the pad moves the stream's style and the notes' timbre together. A `--seed-audio` file's style
offset is the continuation model's alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from livegen.errors import ModelError
from livegen.model import default_model_path, load_model
from livegen.session.wiring import weights_sha256


VOICE_MODEL_KEY = "voice_model"


def resolve_voice_model(model_dir) -> Path | None:
    """The voice model directory for the continuation model at `model_dir` (None: no notes).

    Its ``config.json`` ``"voice_model"`` when it has the key (relative to `model_dir`; null
    turns notes off), else the bundled `models/default` when it exists.
    """
    import json

    named = None
    if model_dir:
        try:
            data = json.loads((Path(os.fspath(model_dir)) / "config.json").read_text())
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and VOICE_MODEL_KEY in data:
            named = data[VOICE_MODEL_KEY]
            if not named:
                return None
            return (Path(os.fspath(model_dir)) / str(named)).resolve()
    default = default_model_path()
    return default if (default / "config.json").is_file() else None


def load_voice_model(path, *, config):
    """Load the spectral model at `path` for notes beside a continuation model of `config`
    (CPU; the STFT settings must be the same, the frames are summed before one inverter)."""
    model = load_model(path, device="cpu")
    vcfg = model.config
    mine = (config.sample_rate, config.n_fft, config.hop)
    theirs = (vcfg.sample_rate, vcfg.n_fft, vcfg.hop)
    if mine != theirs:
        raise ModelError(f"voice model {path} has sample rate/n_fft/hop {theirs}, the continuation model {mine}; "
                         f"give a voice model with the same STFT settings (\"{VOICE_MODEL_KEY}\" in the continuation "
                         "model's config.json)")
    return model


def voice_model_header(path) -> dict:
    """Session-log header fields naming the voice model (absolute path and weights sha256)."""
    if path is None:
        return {VOICE_MODEL_KEY: None}
    path = Path(os.fspath(path)).resolve()
    return {VOICE_MODEL_KEY: str(path), "voice_model_sha256": weights_sha256(path)}


def voice_model_from_header(header: dict, model_dir, *, warn=None) -> Path | None:
    """The voice model a session log or event file renders its notes with (None: no notes).

    A log names it (`voice_model_header`); a continuation session log from before notes played
    names none and had none (a `temperature` field says it is one); an event file written by
    hand gets the continuation model's own (`resolve_voice_model`). `warn(text)` hears of a
    missing voice model or one whose weights are not the recorded ones.
    """
    warn = warn or (lambda text: None)
    if VOICE_MODEL_KEY not in header:
        return None if "temperature" in header else resolve_voice_model(model_dir)
    recorded = header[VOICE_MODEL_KEY]
    if not recorded:
        return None
    path = Path(recorded)
    if not (path / "config.json").is_file():
        fallback = resolve_voice_model(model_dir)
        warn(f"the voice model {recorded} this log's notes were played with is missing; rendering them with "
             f"{fallback}, so the render will differ from the recording")
        return fallback
    expected, actual = header.get("voice_model_sha256"), weights_sha256(path)
    if expected and actual and expected != actual:
        warn(f"{path}/weights.safetensors (sha256 {actual[:12]}) is not the voice model this log was played with "
             f"(sha256 {expected[:12]}); the notes will differ from the recording")
    return path
