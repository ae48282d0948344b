"""Signal processing: STFT conventions and the streaming phase reconstructor."""

from livegen.dsp.inverter import METHODS, StreamingInverter, default_settings, invert
from livegen.dsp.stft import check_stft, frames_for, hann, spectral_convergence, stft_magnitude

__all__ = [
    "METHODS",
    "StreamingInverter",
    "check_stft",
    "default_settings",
    "frames_for",
    "hann",
    "invert",
    "spectral_convergence",
    "stft_magnitude",
]
