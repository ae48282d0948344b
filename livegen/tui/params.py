"""The engine's parameter table as the UI learns it over OSC (`/livegen/params`), never by import.

Each reply message carries one parameter (`livegen.control.oscaddress.PARAM_FIELDS`); the table
is complete once `count` distinct indices arrived, whatever bundles or order they came in.
"""

from __future__ import annotations

from dataclasses import dataclass

from livegen.control.oscaddress import PARAM_FIELDS


@dataclass(frozen=True)
class ParamInfo:
    """One parameter as a slider needs it."""

    name: str
    minimum: float
    maximum: float
    default: float
    unit: str = ""
    integer: bool = False
    step: float = 0.0
    """Smallest change the engine keeps (1 for integer parameters); 0: any."""
    description: str = ""

    def clamp(self, value: float) -> tuple[float, bool]:
        """The value brought into range (whole for integer parameters), and whether it moved."""
        inside = min(max(value, self.minimum), self.maximum)
        if self.step > 0:
            inside = self.minimum + round((inside - self.minimum) / self.step) * self.step
        return inside, inside != value

    def to_unit(self, value: float) -> float:
        """0..1 over the range (where a slider's bar ends)."""
        span = self.maximum - self.minimum
        return (value - self.minimum) / span if span else 0.0

    def from_unit(self, fraction: float) -> float:
        return self.minimum + min(max(fraction, 0.0), 1.0) * (self.maximum - self.minimum)


def info_from_args(args) -> ParamInfo:
    """One `/livegen/params` message's arguments -> (index, count, ParamInfo); ValueError if malformed."""
    if len(args) < len(PARAM_FIELDS):
        raise ValueError(f"{len(args)} arguments, expected {len(PARAM_FIELDS)}")
    row = dict(zip(PARAM_FIELDS, args))
    info = ParamInfo(str(row["name"]), float(row["minimum"]), float(row["maximum"]), float(row["default"]),
                     str(row["unit"]), bool(int(row["integer"])), float(row["step"]), str(row["description"]))
    return int(row["index"]), int(row["count"]), info


class ParamTable:
    """Rows of `/livegen/params` as they arrive; `specs()` once `complete`."""

    def __init__(self):
        self.rows: dict[int, ParamInfo] = {}
        self.count: int | None = None

    def add(self, index: int, count: int, info: ParamInfo) -> None:
        if count != self.count:  # a reply for another model (or the first one): start again
            self.rows = {}
            self.count = count
        self.rows[index] = info

    @property
    def complete(self) -> bool:
        return self.count is not None and len(self.rows) == self.count

    def specs(self) -> dict[str, ParamInfo]:
        return {info.name: info for _, info in sorted(self.rows.items())}
