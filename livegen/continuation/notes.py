"""Notes beside a continuation model: pitched voices from a spectral model at the same latent point.

A continuation model has no note decoder: it makes a stream, like the drone/bed of the spectral
engine. Notes (MIDI, OSC, the UI) therefore play with a *voice model*, a spectral VAE: by default
`models/default`, or the one the continuation model's ``config.json`` names under
``"voice_model"`` (a path relative to the model directory; ``null`` turns notes off). The voices
are the `Engine`'s own (`VoiceBank`: polyphony, stealing, sustain, release) and are decoded by
its `_decode_voices`; their magnitudes and the stream's frame are summed and inverted as one
stream, as the spectral engine mixes its voices.

The latent point: the performer's ``x, y`` map onto the voice model's own XY plane (its
principal directions and family centroids), and ``z0..zN``, ``glide`` and the ``drift`` walk
apply to both models alike, so moving the pad moves the stream's style and the notes' timbre
together. A `--seed-audio` file's style offset is the continuation model's alone.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

VOICE_MODEL_KEY = "voice_model"


def resolve_voice_model(model_dir) -> Path | None:
    """The voice model directory for the continuation model at `model_dir` (None: no notes).

    Its ``config.json`` ``"voice_model"`` when it has the key (relative to `model_dir`; null
    turns notes off), else the bundled `models/default` when it exists.
    """
    import json

    from livegen.model import default_model_path

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
    from livegen.errors import ModelError
    from livegen.model import load_model

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
    from livegen.session.wiring import weights_sha256

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
    from livegen.session.wiring import weights_sha256

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


class NoteLatent:
    """The voice model's latent point for one hop, from the engine's parameters: its own XY plane
    at ``x, y``, plus the ``z`` offsets, glided, plus the engine's drift walk (shared, not
    advanced again). Buffers are made once; a hop only writes into them."""

    def __init__(self, voice_model, *, z_index: np.ndarray, x_index: int, y_index: int, glide_index: int,
                 drift_index: int, hop_seconds: float):
        self.model = voice_model
        self.dim = int(voice_model.config.latent_dim)
        shared = min(self.dim, len(z_index))   # offsets reach the dimensions both latents have
        self._z_index = np.asarray(z_index[:shared], dtype=np.int64)
        self._x, self._y, self._glide, self._drift_i = x_index, y_index, glide_index, drift_index
        self._hop = float(hop_seconds)
        self._key = None
        self._xy_z = np.zeros(self.dim)
        self._target = np.zeros(self.dim)
        self._smooth = np.zeros(self.dim)
        self._fresh = True
        self.z = np.zeros(self.dim)

    def __call__(self, values: np.ndarray, drift: np.ndarray, drift_scale: float) -> np.ndarray:
        key = (values[self._x], values[self._y])
        if key != self._key:
            import torch

            with torch.inference_mode():
                z = self.model.xy_to_z(torch.tensor([key[0], key[1]], dtype=torch.float32))
            self._xy_z[:] = np.asarray(z.detach().cpu().numpy(), dtype=np.float64).reshape(-1)
            self._key = key
        target = self._target
        target[:] = self._xy_z
        n = len(self._z_index)
        target[:n] += values[self._z_index]
        glide = values[self._glide]
        if self._fresh or glide <= 0:
            self._smooth[:] = target
            self._fresh = False
        else:
            self._smooth += (target - self._smooth) * (1.0 - math.exp(-self._hop / glide))
        self.z[:] = self._smooth
        m = min(self.dim, len(drift))
        self.z[:m] += values[self._drift_i] * drift_scale * drift[:m]
        return self.z
