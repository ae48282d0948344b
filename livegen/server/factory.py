"""The one way from a model directory to an engine with its sources: the sound server (`play`
and its model switch), `livegen render` and the benches all build engines here.

`load(path)` does the slow part once (reading weights, a seed file); `LoadedModel.engine()`
then builds a fresh engine, with fresh sources, at the output rate and seed asked for:

- a spectral VAE: its note voices and drone (`NotesSource`);
- a continuation model: its stream (`ContinuationSource`), with notes from a voice model beside
  it (`livegen.continuation.notes`: `models/default` unless its config names another).

For models already in memory: `livegen.engine.notes.spectral_engine` and
`livegen.continuation.source.continuation_engine` (what `engine()` calls).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from livegen.continuation.io import is_continuation_model, load_continuation
from livegen.continuation.notes import load_voice_model, resolve_voice_model, voice_model_header
from livegen.continuation.seeds import seed_audio_header, seed_logmag
from livegen.continuation.source import continuation_engine
from livegen.engine.core import Engine
from livegen.engine.notes import spectral_engine
from livegen.engine.setup import load_engine_model
from livegen.errors import ParameterError
from livegen.model.spectral import SpectralModel


@dataclass
class LoadedModel:
    """A model directory's models, loaded: `engine()` builds engines for it."""

    name: str
    """What status and logs call it: the directory, or "random"."""
    model: object
    continuation: bool = False
    voice_model: object = None
    header: dict = field(default_factory=dict)
    """Session-log header fields of what was loaded (voice model, seed audio)."""
    seed_logmag: object = None
    temperature: float | None = None
    device: str = "cpu"

    @property
    def config(self):
        return self.model.config

    @property
    def follows_input(self) -> bool:
        """Whether its engines can follow live input (`live_input`)."""
        return self.continuation

    @property
    def plays_input(self) -> bool:
        """Whether an audio input can play a voice of it (`input_feed`: a spectral model)."""
        return isinstance(self.model, SpectralModel)

    def engine(self, *, samplerate: int, seed: int = 0, live_input=None, input_feed=None, **engine_kwargs) -> Engine:
        """A fresh engine (fresh sources) at output rate `samplerate`. ``engine_kwargs``:
        `Engine`'s (lookahead, method, fade_seconds, threads). `input_feed`
        (`livegen.engine.input.InputFeed`): an audio input plays a voice of a spectral model."""
        if input_feed is not None and not self.plays_input:
            raise ParameterError(f"--input: model {self.name} is not a spectral model, which an audio input plays; "
                                 "give one (--model models/default)")
        if self.continuation:
            engine = continuation_engine(self.model, voice_model=self.voice_model, samplerate=samplerate, seed=seed,
                                         temperature=self.temperature, seed_logmag=self.seed_logmag,
                                         live_input=live_input, header=self.header, **engine_kwargs)
        else:
            if live_input is not None:
                raise ParameterError(f"--input-device: model {self.name} does not follow live input; "
                                     "give a continuation model (--model models/continuation)")
            engine = spectral_engine(self.model, samplerate=samplerate, seed=seed, device=self.device,
                                     input_feed=input_feed, **engine_kwargs)
        engine.extra_status["model"] = self.name
        return engine


def load(path, *, device: str = "cpu", seed_audio=None, temperature: float | None = None, voice_model="auto",
         log=None) -> LoadedModel:
    """Load the model directory at `path` (None: `models/default`; "random": the seed-0 random
    model) with what its engines need.

    `seed_audio`: a file whose frames start a continuation model. `voice_model`: the spectral
    model directory a continuation model's notes play with ("auto": the one its config names,
    else `models/default`; None: notes are rejected). `log(text)` hears what was loaded.
    """
    log = log or (lambda text: print(text, file=sys.stderr))
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not 0.0 <= temperature <= 1.5):  # also NaN, e.g. from a log header
        raise ParameterError(f"temperature {temperature!r} is out of range; give --temperature 0..1.5")
    if not is_continuation_model(path):
        if seed_audio:
            raise ParameterError(f"--seed-audio needs a continuation model (--model models/continuation); "
                                 f"{path or 'the default model'} is not one")
        model, name = load_engine_model(path, device=device, log=log)
        return LoadedModel(name, model, device=device)
    model = load_continuation(path, device="cpu")  # small, one step per hop: the CPU
    log(f"model: {path} (continuation)")
    voice_dir = resolve_voice_model(path) if voice_model == "auto" else voice_model
    voices = load_voice_model(voice_dir, config=model.config) if voice_dir else None
    log(f"notes: voice model {voice_dir}" if voices is not None else "notes: no voice model; notes are ignored")
    header = voice_model_header(voice_dir if voices is not None else None)
    frames = seed_logmag(seed_audio, model.config)
    if seed_audio:
        header.update(seed_audio_header(seed_audio))
    return LoadedModel(str(path), model, continuation=True, voice_model=voices, header=header, seed_logmag=frames,
                       temperature=temperature)
