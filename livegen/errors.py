"""One error root, so the CLI can print a clear message instead of a traceback."""


class LivegenError(Exception):
    """Base of every error livegen raises on purpose; its message says what to do."""


class ParameterError(LivegenError, ValueError):
    """A value given by the user (argument, file, message) is out of range or malformed."""


class ModelError(LivegenError):
    """A model directory is missing, incomplete or does not match this version."""


class DeviceError(LivegenError):
    """An audio or MIDI device is missing or failed."""


NOT_CONTINUATION = ("/livegen/seed: the model playing is not a continuation model; load one first "
                    "(/livegen/model models/continuation)")
"""What a seed sent to a model that takes none is told (by every control target alike)."""
