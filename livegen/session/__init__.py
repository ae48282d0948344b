"""Sessions: crash-safe recording of what is heard, and the event log that re-renders it."""

from __future__ import annotations

__all__ = ["SessionRecorder", "ignore_file_size_signal", "SUBTYPES"]


def __getattr__(name):
    # Lazy, so CLI modules can import the light option helpers without numpy/soundfile.
    if name in __all__:
        from livegen.session import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module 'livegen.session' has no attribute {name!r}")
