"""The spectral VAE: `load_model`, `save_model`, `random_model`, `SpectralModel`, `ModelConfig`."""

from livegen.model.config import FORMAT, FORMAT_VERSION, GM_FAMILIES, ModelConfig
from livegen.model.io import default_model_path, load_model, random_model, save_model
from livegen.model.spectral import SpectralModel, pitch_to_hz

__all__ = [
    "FORMAT", "FORMAT_VERSION", "GM_FAMILIES", "ModelConfig", "SpectralModel", "default_model_path",
    "load_model", "pitch_to_hz", "random_model", "save_model",
]
