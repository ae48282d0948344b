"""One error root, so the CLI can print a clear message instead of a traceback, and the argparse
types that refuse a bad number or list where it enters (argparse then exits with code 2)."""

import argparse
import math


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
NO_INPUT = "no audio input to check; start play with --input-device NAME"
"""What a sound check asked of an engine with no audio input is told (by every control target alike)."""


def finite_number(value) -> bool:
    """Whether `value` is an int or float (not a bool) that a float holds, finite: an integer too
    large for one (JSON and argparse read any size) would raise OverflowError where it is used."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _bound(value) -> str:
    """A range's end as the message shows it: an integer in full (a seed's 4294967295), a float short."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _shown(text: str) -> str:
    """A value as a message quotes it: a 400-digit number as its start and its length, not in full."""
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def ranged(kind=float, low=None, high=None, *, above=None, hint: str = ""):
    """An argparse `type` for a number option: NaN, infinities and values outside low..high (or
    not above `above`) are refused with the value and the range, so argparse exits with code 2
    before anything starts instead of a NaN or a negative count failing deep inside."""
    noun = "an integer" if kind is int else "a number"
    if above is not None:
        wanted = f"{noun} > {_bound(above)}" + (f" and <= {_bound(high)}" if high is not None else "")
    elif low is not None and high is not None:
        wanted = f"{noun} in {_bound(low)}..{_bound(high)}"
    elif low is not None:
        wanted = f"{noun} >= {_bound(low)}"
    else:
        wanted = f"{noun} <= {_bound(high)}" if high is not None else noun
    wanted += f" ({hint})" if hint else ""

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            if kind is int and text.strip().lstrip("+-").isdigit():  # past Python's 4300-digit limit
                raise argparse.ArgumentTypeError(f"{_shown(text)} is out of range; give {wanted}") from None
            raise argparse.ArgumentTypeError(f"{_shown(text)!r} is not {noun}; give {wanted}") from None
        if not finite_number(value):
            what = "is too large" if kind is int else "is not a finite number or too large"
            raise argparse.ArgumentTypeError(f"{_shown(text)} {what}; give {wanted}")
        if ((low is not None and value < low) or (high is not None and value > high)
                or (above is not None and value <= above)):
            raise argparse.ArgumentTypeError(f"{_shown(text)} is out of range; give {wanted}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type by it in its own messages
    return convert


SEED_MAX = 2**32 - 1
"""The largest seed an option takes. numpy's generators take any size, but its legacy seeding and
many tools take 32 bits, torch's 64, and training seeds torch with its seed * 1000 plus the step:
32 bits fit every one of them (and are seeds enough)."""


LOOKAHEAD_MAX = 16
"""The most look-ahead frames the streaming inverter keeps uncommitted (each adds a hop of latency
and a hop's work per push); here, not in `livegen.dsp`, so that the CLI bounds `--lookahead`
without importing numba."""


SECONDS_MIN = 0.01
"""The shortest `render --seconds` and `play --duration`: about two hops of the bundled models
(a shorter render would be silence or empty), here so that the CLI bounds it at parsing."""


def seed_type(hint: str = "the random seed"):
    """The argparse `type` of every `--seed`: an integer in 0..SEED_MAX."""
    return ranged(int, 0, SEED_MAX, hint=hint)


def one_of(*choices: str):
    """An argparse `type` for one word of `choices` (inside `comma_list`, where `choices=` cannot serve)."""
    def convert(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is unknown; choose from {', '.join(choices)}")
        return text

    convert.__name__ = "choice"
    return convert


def comma_list(item):
    """An argparse `type` for comma-separated values, each converted and checked by `item`."""
    def convert(text: str) -> list:
        return [item(part.strip()) for part in text.split(",") if part.strip()]

    convert.__name__ = "list"
    return convert
