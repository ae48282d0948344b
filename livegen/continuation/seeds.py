"""Seed audio for a continuation model: a file's frames play first and teacher-force the model,
whose own output takes over where the file ends. Reading and analysing a file is slow (file I/O,
STFT, the style encoder): it happens before playing, or on a worker thread while playing, never
on the decoder thread; the prepared result travels in a `seed` event's payload.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from livegen.data.features import load_audio, log_magnitude
from livegen.data.files import check_input_file
from livegen.engine.events import Event
from livegen.errors import ParameterError
from livegen.filehash import file_sha256

SEED_SECONDS = 30.0
"""A seed file is read up to this long (a whole song would only delay the model's turn)."""


def seed_frames(path, *, sample_rate: int, n_fft: int, hop: int, max_seconds: float | None = SEED_SECONDS,
                what: str = "--seed-audio") -> np.ndarray:
    """Log-magnitude frames ``[T, n_bins]`` of an audio file at the model's STFT settings.

    `what` names the option or address the path came from in the error messages.
    """
    check_input_file(path, what)
    try:
        y, _ = load_audio(str(path), sample_rate=sample_rate, max_seconds=max_seconds)
    except OSError as exc:
        raise ParameterError(f"{what} {path}: cannot read it as audio ({exc}); give a WAV, FLAC, OGG or MP3 "
                             "file") from None
    if y.size < n_fft + hop:
        raise ParameterError(f"{what} {path}: {y.size / sample_rate:.3f} s is too short; give at least "
                             f"{(n_fft + hop) / sample_rate:.3f} s of audio")
    return log_magnitude(y, n_fft=n_fft, hop=hop)


def seed_logmag(seed_audio, config):
    """A `--seed-audio` file's frames at the model's STFT settings (None without one)."""
    if not seed_audio:
        return None
    return seed_frames(seed_audio, sample_rate=config.sample_rate, n_fft=config.n_fft, hop=config.hop)


def style_offset(model, logmag: np.ndarray) -> np.ndarray:
    """The seed's style encoding relative to the plane's centre (the pad's (0.5, 0.5) plays it)."""
    with torch.inference_mode():
        coef = model.analyse(torch.from_numpy(np.asarray(logmag, dtype=np.float32)))
        mu, _ = model.encode(coef[None])
        centre = model.xy_to_z(torch.tensor([0.5, 0.5]))
    return (mu[0] - centre).numpy().astype(np.float64)


@dataclass(frozen=True, eq=False)
class PreparedSeed:
    """A seed file read and analysed, ready for the decoder thread to start playing (a `seed`
    event's payload): nothing is left to do at the block boundary but swapping references."""

    path: str
    sha256: str
    logmag: np.ndarray
    style_offset: np.ndarray

    @property
    def hops(self) -> int:
        return int(self.logmag.shape[0])

    def __deepcopy__(self, memo):  # a copied event shares the frames: nothing changes them
        return self


def prepare_seed(model, path, *, what: str = "/livegen/seed") -> PreparedSeed:
    """Read and analyse a seed file for `model` (slow: file I/O, STFT, the style encoder; never
    on the decoder thread). Errors are `ParameterError`s naming the file and what to do."""
    cfg = model.config
    logmag = seed_frames(path, sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop=cfg.hop, what=what)
    header = seed_audio_header(path)
    logmag = np.ascontiguousarray(logmag, dtype=np.float32)
    return PreparedSeed(header["seed_audio"], header["seed_audio_sha256"], logmag, style_offset(model, logmag))


def seed_event(prepared: PreparedSeed, *, t: float = 0.0, source: str = ""):
    """The `seed` event that starts `prepared` playing; its log line names the file and sha256."""
    return Event("seed", t=t, source=source, extra={"path": prepared.path, "sha256": prepared.sha256},
                 payload=prepared)


def seed_audio_header(path) -> dict:
    """Session-log header fields naming a `--seed-audio` file: its absolute path and sha256."""
    path = Path(path).resolve()
    return {"seed_audio": str(path), "seed_audio_sha256": file_sha256(path)}


def seed_audio_from_header(header: dict, *, log_path=None, warn=None) -> str | None:
    """The seed audio file a session log was played with (None when it had none, or it is gone).

    Looks at the recorded path, then beside the log under the same name; `warn(text)` is told
    when the file is missing or its sha256 is not the recorded one (the render then differs).
    """
    recorded = header.get("seed_audio")
    if not recorded:
        return None
    return _find_seed_file(recorded, header.get("seed_audio_sha256"), log_path=log_path, warn=warn,
                           missing=f"the seed audio {recorded} this log was played with is missing; rendering "
                                   "without it, so the render will differ from the recording (give the file "
                                   "with --seed-audio)")


def _find_seed_file(recorded: str, expected: str | None, *, log_path, warn, missing: str) -> str | None:
    """The recorded file, else the one of that name beside the log (None, and `missing` warned
    when given, when neither is there); a sha256 other than `expected` is warned about."""
    warn = warn or (lambda text: None)
    candidates = [Path(recorded)] + ([Path(log_path).with_name(Path(recorded).name)] if log_path else [])
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        if missing:
            warn(missing)
        return None
    actual = seed_audio_header(path)["seed_audio_sha256"]
    if expected and actual != expected:
        warn(f"{path} (sha256 {actual[:12]}) is not the seed audio this log was played with (sha256 "
             f"{expected[:12]}); the render will differ from the recording")
    return str(path)


def prepare_seed_event(event: Event, model, *, log_path=None, warn=None) -> Event:
    """`event` (a `seed` event) with its file read and analysed into its `payload`.

    Live (`warn` None: `/livegen/seed`), errors name the address and the file. From an event file
    or session log (`warn` given), the file is looked for at its recorded path, then beside the
    log (`log_path`); a missing one is an error that says the render will differ, a changed one
    (sha256) is warned about and used.
    """
    if event.payload is not None:
        return event
    recorded = event.extra["path"]
    if warn is None:  # the log line will name the file's absolute path and its sha256
        return seed_event(prepare_seed(model, recorded), t=event.t, source=event.source)
    missing = (f"the seed file {recorded} of the seed event at t={event.t:.3f} s is missing; rendering without "
               "that seed, so the render will differ from the recording (put the file back there or beside the log)")
    path = _find_seed_file(recorded, event.extra.get("sha256"), log_path=log_path, warn=warn, missing=None)
    if path is None:
        raise ParameterError(missing)
    return dataclasses.replace(event, extra=dict(event.extra),
                               payload=prepare_seed(model, path, what=f"seed event at t={event.t:.3f} s:"))
