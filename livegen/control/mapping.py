"""MIDI messages -> engine events: the pure layer (no ports, no threads), fuzzable.

`MidiMapper.feed(message)` takes one raw MIDI message (a sequence of ints, as rtmidi hands
it over) and returns the events it causes. It handles notes (note-on velocity 0 is a note-off),
program change (preset recall), pitch bend (`bend`), RPN 0 (`bend_range`), CC maps with range
and curve, 14-bit CC pairs (CC 0-31 MSB with CC 32-63 LSB; an MSB alone still works), NRPN,
relative encoders, soft takeover and MIDI learn. Anything else -- sysex, clock, active sensing,
truncated or malformed messages -- returns no events.

Default map (used when no map file exists; see `DEFAULT_MAP`)::

    CC 70-77  -> z0..z7 (latent knobs; most controllers' knob row sends these or can)
    CC 16, 17 -> x, y   (general purpose 1/2; 14-bit with LSB CC 48, 49)
    CC 1      -> drift  (mod wheel)
    CC 5      -> glide  (portamento time)
    CC 7      -> gain   (volume)
Built in, whatever the map (a map entry for CC 64 takes it over)::

    CC 64 (sustain pedal) -> sustain (>= 64 down); CC 123 -> all held notes off;
    CC 120 -> all sound off (`sound_off`: cut at once, release tails too)
    CC 121 (reset all controllers) -> bend 0, sustain off (unless CC 64 is mapped)
    pitch bend -> bend; RPN 0 (bend sensitivity) -> bend_range; program change -> preset recall

A mapping whose param is `record` (`RECORD`) is a button, not a parameter: each press (the
control's value rising to 64 or more) starts recording, or stops the recording under way.

MPE (MIDI Polyphonic Expression): an MPE keyboard plays each note on its own member channel so
each note bends, slides and presses alone. A zone (`mpe="lower"`, `"upper:7"`, or the MPE
Configuration Message the keyboard sends: RPN 6 on channel 1 or 16) makes its member channels'
notes voices with ids (the channel, 1..16, for the first input port to play; 16 + channel for the
second, ...: `MPE_PORTS`): note on/off carry `voice`; pitch bend, CC 74 (slide) and channel
pressure become `voice` events (`bend`, `y`, `pressure`). Polyphonic key pressure changes nothing
on any channel: MPE keeps it off member channels (a receiver drops it there), and elsewhere it
would need a control per key, where a voice id is a whole channel's. The manager channel (1 for
the lower zone, 16 for the upper) means what any channel means without a zone,
except that its channel pressure, and its CC 74 where no mapping binds it, are the zone's: added
to each member voice's own pressure and `y` (one voice event per member it changes); RPN 0 there sets `bend_range`, RPN 0 on a member channel sets the members' bend
range (48 semitones until then, the MPE default) as the MPE specification has it. Zone-wide
messages on the manager reach the zone's members too: All Notes Off releases their notes, All
Sound Off cuts them (`sound_off` events), Reset All Controllers resets their voices. A
configuration message sets the bend ranges back to the specification's defaults (members 48,
`bend_range` 2), the zone's pressure and slide to 0, and resets the voices of channels that join
or leave the zone.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from livegen.engine.events import VOICE_CONTROLS, VOICE_IDS, Event, note_off, note_on, sound_off, voice_control
from livegen.errors import ParameterError

MODES = ("absolute", "relative-twos", "relative-offset", "relative-sign")
"""absolute: 0..127 is the range. Relative encoders send ticks: two's complement (1..63 up,
127..65 down), binary offset (65.. up, 63.. down, 64 = 0) or sign bit (1..63 up, 65..127 down)."""
CURVES = ("linear", "exp", "log")
PICKUP_TOLERANCE = 2 / 127
"""A knob picks up its parameter when within this fraction of it (or when it crosses it)."""
PENDING_SECONDS = 0.25
"""How long our own posted value counts as current before the engine's value is trusted again."""
RECORD = "record"
"""Mapping target that toggles recording (a `record` event) instead of setting a parameter."""
NRPN_SELECT = (98, 99, 100, 101)
DATA_ENTRY = (6, 38, 96, 97)
MPE_ZONES = {"lower": 1, "upper": 16}
"""MPE zones and their manager channels."""
MPE_MEMBER_BEND = 48.0
"""Semitones a member channel's full pitch bend moves (the MPE default until RPN 0 on a member)."""
MPE_MANAGER_BEND = 2.0
"""`bend_range` a configuration message sets: the manager channel's default in the MPE specification."""
MPE_VOICE_RESET = (("bend", 0.0), ("y", 0.0), ("pressure", 0.0))
"""A member's voice controls at rest: no bend, CC 74 at its centre (64), no pressure."""
MPE_SLIDE_CC = 74
MPE_RPN = 6
"""RPN 6, the MPE Configuration Message: data entry MSB = member channels (0 ends the zone)."""
MPE_PORTS = VOICE_IDS // 16 - 1
"""Input ports that get voice ids of their own: port k (in the order they first send to a zone)
plays member channel c as voice 16 k + c, under `VOICE_IDS`; later ports share the first's ids."""


def parse_mpe(text: str | None, *, where: str = "--mpe") -> dict[str, int]:
    """Zones from 'lower', 'upper', 'lower:N', 'upper:N' (N = 1..15 member channels) or 'off':
    {"lower": 15} etc.; {} for off or None."""
    if text is None or text == "off":
        return {}
    zone, colon, count = str(text).partition(":")
    ok = zone in MPE_ZONES and (not colon or (count.isascii() and count.isdigit() and 1 <= int(count) <= 15))
    if not ok:
        raise ParameterError(f"{where} {text!r}: give lower, upper, lower:N or upper:N with N = 1..15 "
                             "member channels (lower: manager channel 1, members from 2 up; upper: "
                             "manager 16, members from 15 down), or off")
    return {zone: int(count) if colon else 15}


def check_mpe_channel(mpe: str | None, channel: int | None) -> None:
    """An MPE zone plays on many channels: refuse it beside a one-channel filter."""
    if parse_mpe(mpe) and channel is not None:
        raise ParameterError(f"--mpe {mpe} plays on many channels and --midi-channel {channel} (or a MIDI "
                             "map's channel) listens to one: give one of them")


def mpe_members(zones: dict[str, int]) -> dict[int, str]:
    """{member channel (1..16): its zone} for zones {"lower": n, "upper": m}."""
    members = {ch: "upper" for ch in range(15, 15 - zones.get("upper", 0), -1)}
    members.update({ch: "lower" for ch in range(2, 2 + zones.get("lower", 0))})
    return members


@dataclass
class Mapping:
    """One control bound to one parameter: CC (`cc`) or NRPN (`nrpn`), on `channel` (1-16; None = any)."""

    param: str
    cc: int | None = None
    nrpn: int | None = None
    channel: int | None = None
    mode: str = "absolute"
    min: float | None = None
    max: float | None = None
    curve: str | float = "linear"
    takeover: bool = True
    step: float = 1 / 128
    """Fraction of the range one relative-encoder tick moves."""
    engaged: bool = field(default=False, repr=False, compare=False)
    last_unit: float | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        where = f"MIDI mapping for {self.param!r}"
        if (self.cc is None) == (self.nrpn is None):
            raise ParameterError(f"{where}: give exactly one of cc (0-127) or nrpn (0-16383)")
        if self.cc is not None and not (isinstance(self.cc, int) and 0 <= self.cc <= 127):
            raise ParameterError(f"{where}: cc {self.cc!r} must be 0..127")
        if self.cc is not None and (self.cc in NRPN_SELECT or 120 <= self.cc <= 127):
            raise ParameterError(f"{where}: cc {self.cc} is reserved (NRPN/RPN select or channel mode)")
        if self.nrpn is not None and not (isinstance(self.nrpn, int) and 0 <= self.nrpn <= 16383):
            raise ParameterError(f"{where}: nrpn {self.nrpn!r} must be 0..16383")
        if self.channel is not None and not (isinstance(self.channel, int) and 1 <= self.channel <= 16):
            raise ParameterError(f"{where}: channel {self.channel!r} must be 1..16 (leave it out for any)")
        if self.mode not in MODES:
            raise ParameterError(f"{where}: mode {self.mode!r}; use one of {', '.join(MODES)}")
        if isinstance(self.curve, bool) or not (self.curve in CURVES or (
                isinstance(self.curve, (int, float)) and 0.05 <= self.curve <= 20)):
            raise ParameterError(f"{where}: curve {self.curve!r}; use {', '.join(CURVES)} or an exponent 0.05..20")
        for key in ("min", "max", "step"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise ParameterError(f"{where}: {key} {value!r} must be a finite number")
        if not 0 < self.step <= 1:
            raise ParameterError(f"{where}: step {self.step!r} must be in (0, 1]")

    @property
    def control(self) -> str:
        """Human name of the control, e.g. 'CC 70 ch 1' or 'NRPN 1234 any ch'."""
        what = f"CC {self.cc}" if self.cc is not None else f"NRPN {self.nrpn}"
        return f"{what} {'ch ' + str(self.channel) if self.channel else 'any ch'}"

    def same_control(self, other: "Mapping") -> bool:
        return (self.cc, self.nrpn) == (other.cc, other.nrpn) and (
            self.channel is None or other.channel is None or self.channel == other.channel)

    def matches(self, channel: int) -> bool:
        return self.channel is None or self.channel == channel

    def bounds(self, spec) -> tuple[float, float]:
        lo = spec.minimum if self.min is None else self.min
        hi = spec.maximum if self.max is None else self.max
        return float(lo), float(hi)

    def shape(self, unit: float) -> float:
        exponent = {"linear": 1.0, "exp": 2.0, "log": 0.5}.get(self.curve, self.curve)
        return unit ** exponent

    def unshape(self, shaped: float) -> float:
        exponent = {"linear": 1.0, "exp": 2.0, "log": 0.5}.get(self.curve, self.curve)
        return min(max(shaped, 0.0), 1.0) ** (1.0 / exponent)

    def value(self, unit: float, spec) -> float:
        lo, hi = self.bounds(spec)
        return lo + self.shape(min(max(unit, 0.0), 1.0)) * (hi - lo)

    def unit_of(self, value: float, spec) -> float:
        lo, hi = self.bounds(spec)
        if hi == lo:
            return 0.0
        return self.unshape((value - lo) / (hi - lo))

    def to_dict(self) -> dict:
        out: dict = {"param": self.param}
        out.update({"cc": self.cc} if self.cc is not None else {"nrpn": self.nrpn})
        if self.channel is not None:
            out["channel"] = self.channel
        if self.mode != "absolute":
            out["mode"] = self.mode
            out["step"] = self.step
        for key in ("min", "max"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.curve != "linear":
            out["curve"] = self.curve
        if not self.takeover:
            out["takeover"] = False
        return out

    @classmethod
    def from_dict(cls, record: dict, *, where: str = "mapping") -> "Mapping":
        if not isinstance(record, dict):
            raise ParameterError(f"{where}: expected a table, got {type(record).__name__}")
        known = {"param", "cc", "nrpn", "channel", "mode", "min", "max", "curve", "takeover", "step"}
        unknown = set(record) - known
        if unknown:
            raise ParameterError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        if not isinstance(record.get("param"), str):
            raise ParameterError(f"{where}: needs param = \"<parameter name>\"")
        try:
            return cls(**record)
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}") from None
        except TypeError as exc:
            raise ParameterError(f"{where}: {exc}") from None


def _default_map() -> list[Mapping]:
    maps = [Mapping(f"z{i}", cc=70 + i) for i in range(8)]
    maps += [
        Mapping("x", cc=16), Mapping("y", cc=17),
        Mapping("drift", cc=1), Mapping("glide", cc=5), Mapping("gain", cc=7),
    ]
    return maps


DEFAULT_MAP = _default_map()


class _ChannelState:
    __slots__ = ("msb", "lsb_seen", "nrpn_msb", "nrpn_lsb", "rpn_msb", "rpn_lsb", "selected",
                 "data_msb", "data_lsb_seen")

    def __init__(self):
        self.msb: dict[int, int] = {}
        self.lsb_seen: set[int] = set()
        self.nrpn_msb = self.nrpn_lsb = self.rpn_msb = self.rpn_lsb = 127
        self.selected: tuple[str, int] | None = None
        self.data_msb: int | None = None
        self.data_lsb_seen: set[tuple[str, int]] = set()


class MidiMapper:
    """Turns raw MIDI messages into events for `params` (a ParamStore, read only).

    Parameters
    ----------
    params : ParamStore
        Read for ranges and current values (soft takeover, relative encoders).
    mappings : list of Mapping, or None for `DEFAULT_MAP`.
    channel : 1..16 to listen to one channel only; None listens to all.
    mpe : an MPE zone to start with ('lower', 'upper:7', ...: `parse_mpe`); a controller's MPE
        Configuration Message sets zones whatever this says.
    """

    def __init__(self, params, mappings: list[Mapping] | None = None, *, channel: int | None = None,
                 clock: Callable[[], float] = _time.monotonic, is_recording: Callable[[], bool] | None = None,
                 mpe: str | None = None):
        if channel is not None and not 1 <= channel <= 16:
            raise ParameterError(f"MIDI channel {channel} must be 1..16 (--midi-channel)")
        zones = parse_mpe(mpe)
        check_mpe_channel(mpe, channel)
        self.params = params
        self.mappings: list[Mapping] = [Mapping(**_fields(m)) for m in (DEFAULT_MAP if mappings is None else mappings)]
        self.channel = channel
        self.clock = clock
        self.is_recording = is_recording
        """Whether a recording is under way (for the `record` toggle); None: the mapper's own guess."""
        self._recording_guess = False
        self.armed: str | None = None
        self._on_learned: Callable | None = None
        self.on_change: Callable[[], None] | None = None
        """Called after learn changed the mappings (the MIDI input saves the map file)."""
        self._states = [_ChannelState() for _ in range(16)]
        self._posted: dict[str, tuple[float, float]] = {}
        self._held: dict[tuple[str, int], set[int]] = {}
        self._pedal_down: set[str] = set()
        """The sources whose sustain pedal (CC 64, built in) is down."""
        self.ignored = 0
        self.zones: dict[str, int] = {}
        """MPE zones: {"lower": members, "upper": members}; set with `set_zone`."""
        self._members: dict[int, str] = {}
        self._member_bend = {zone: MPE_MEMBER_BEND for zone in MPE_ZONES}
        self._blocks: dict[str, int] = {}
        """Each input port's first voice id less one (0, 16, 32, ...: `MPE_PORTS`)."""
        self._own: dict[tuple[int, str], float] = {}
        """A member voice's own `y` and `pressure` (its channel's CC 74 and pressure)."""
        self._zone_values: dict[tuple[str, str, str], float] = {}
        """(port, zone, "y" or "pressure"): the manager's CC 74 and pressure, added to each member's."""
        for zone, count in zones.items():
            self.set_zone(zone, count)

    # -- MPE ---------------------------------------------------------------------------------
    def set_zone(self, zone: str, members: int) -> list[Event]:
        """Give MPE `zone` ('lower' or 'upper') `members` channels (0 ends it), as the MPE
        Configuration Message does: a zone that would overlap the other shrinks the other, the
        zone's member bend range goes back to 48, its pressure and slide (the manager's) to 0, and
        channels that join or leave the zones have their held notes released (their note-offs
        would no longer name them) and their voices reset, as the specification asks of a receiver."""
        if zone not in MPE_ZONES:
            raise ParameterError(f"MPE zone {zone!r}: give one of {', '.join(MPE_ZONES)}")
        members = max(0, min(int(members), 15))
        other = "upper" if zone == "lower" else "lower"
        zones = dict(self.zones, **{zone: members})
        zones[other] = min(zones.get(other, 0), 14 - members if members else 15)
        zones = {z: n for z, n in zones.items() if n > 0}
        before, after = self._members, mpe_members(zones)
        self.zones, self._members = zones, after
        self._member_bend[zone] = MPE_MEMBER_BEND
        moved = set(before) ^ set(after)
        events = self._let_go([key for key in self._held if key[1] in moved], before)
        for base in sorted(set(self._blocks.values())) or [0]:
            events += self._rest(base, sorted(moved), zone=None)
        return events + self._zone_reset(zone, before, moved)

    def _zone_reset(self, zone: str, before: dict[int, str], moved: set[int]) -> list[Event]:
        """`zone`'s pressure and slide (every port's manager's) back to 0, as a configuration
        message sets the zone up afresh: each member voice that stays a member and whose sum
        changes is posted (the voices of channels that joined or left are at rest already)."""
        old = self._zone_values
        self._zone_values = {key: value for key, value in old.items() if key[1] != zone}
        kept = sorted(ch for ch, z in self._members.items() if z == zone and ch not in moved)
        events = []
        for source, base in self._blocks.items():
            for channel in kept:
                for name in ("y", "pressure"):
                    events += self._changed(base + channel, name, old.get((source, before[channel], name), 0.0), 0.0)
        return events

    def _changed(self, voice: int, name: str, was: float, now: float) -> list[Event]:
        """Member `voice`'s `name` (its own plus its zone's) when its zone's part goes from `was` to
        `now`: one event, or none when the sum, clipped, stays the same."""
        lo, hi = VOICE_CONTROLS[name]
        own = self._own.get((voice, name), 0.0)
        if min(max(own + was, lo), hi) == min(max(own + now, lo), hi):
            return []
        return [_voice(voice, name, own + now)]

    def _let_go(self, keys, members: dict[int, str]) -> list[Event]:
        """Note-offs for the notes held under `keys` ((source, channel)), voiced as `members` had them."""
        events = []
        for src, channel in keys:
            voice = self._base(src) + channel if channel in members else None
            events += [note_off(float(p), voice=voice, source=src) for p in sorted(self._held.pop((src, channel), ()))]
        return events

    def _cut(self, source: str, channels: list[int]) -> list[Event]:
        """All Sound Off on `channels` of `source`: note-offs for their held notes (what OSC
        subscribers and the carry follow), then a `sound_off` for each member's voice, and one for
        the notes without an id when a channel outside the zones is among them (the engine knows
        no channels: plain notes of every channel are one pool, as their note-offs are)."""
        events = self._let_go([(source, channel) for channel in channels], self._members)
        for channel in channels:
            events.append(sound_off(voice=self._base(source) + channel if channel in self._members else None))
        return events

    def release(self, source: str) -> list[Event]:
        """`source` went away (a controller unplugged mid-note): no note-off will come from it, so
        the notes it held are let go and its sustain pedal let up (unless another one holds it
        down), as if its keys and pedal had been released."""
        events = self._let_go([key for key in self._held if key[0] == source], self._members)
        if source in self._pedal_down:
            self._pedal_down.discard(source)
            if not self._pedal_down:
                events += self._set("sustain", 0.0)
        for event in events:
            event.source = event.source or source
        return events

    def _base(self, source: str) -> int:
        """`source`'s voice ids less their channel: 0 for the first port to play, 16 for the
        second, ... (`MPE_PORTS`), so two keyboards' notes on one channel are two voices."""
        base = self._blocks.get(source)
        if base is None:
            base = self._blocks[source] = 16 * len(self._blocks) if len(self._blocks) < MPE_PORTS else 0
        return base

    def _combined(self, source: str, voice: int, name: str) -> float:
        """A member voice's `y` or `pressure`: its own plus its zone's (the manager channel's)."""
        zone = self._members.get(voice - self._base(source))
        return self._own.get((voice, name), 0.0) + self._zone_values.get((source, zone, name), 0.0)

    def _zone_move(self, source: str, zone: str, name: str, value: float) -> list[Event]:
        """The manager's `name` (`y` or `pressure`) of `zone` set to `value` for `source`'s voices:
        each member voice whose sum with it changes is posted (a voice event per member; one
        clipped before and after the move is not)."""
        before = self._zone_values.get((source, zone, name), 0.0)
        self._zone_values[source, zone, name] = value
        base, events = self._base(source), []
        for channel in sorted(ch for ch, z in self._members.items() if z == zone):
            events += self._changed(base + channel, name, before, value)
        return events

    def _rest(self, base: int, channels, *, zone: str | None) -> list[Event]:
        """The voice events that put `channels`' voices (ids `base` + channel) at rest
        (`MPE_VOICE_RESET`); with `zone` a source, each keeps its zone's y and pressure."""
        events = []
        for channel in channels:
            voice = base + channel
            for name, value in MPE_VOICE_RESET:
                self._own.pop((voice, name), None)
                events.append(_voice(voice, name, value if zone is None else self._combined(zone, voice, name)))
        return events

    def _manager_zone(self, channel: int) -> str | None:
        """The zone `channel` manages, if any."""
        return next((z for z, manager in MPE_ZONES.items() if manager == channel and z in self.zones), None)

    def _zone_channels(self, channel: int) -> list[int]:
        """`channel` and, when it is a zone's manager, that zone's member channels."""
        zone = self._manager_zone(channel)
        return [channel] + sorted(ch for ch, z in self._members.items() if z == zone)

    @property
    def mpe(self) -> str:
        """The MPE zones as text for the status: 'lower 15', 'upper 7', 'lower 7, upper 7' or ''."""
        return ", ".join(f"{zone} {self.zones[zone]}" for zone in MPE_ZONES if zone in self.zones)

    def _member(self, kind: int, channel: int, data: bytes, source: str) -> list[Event]:
        """Events of a message on an MPE member channel; the voice id is the channel plus the
        port's block (`_base`). Slide and pressure add the zone's (the manager's) to the channel's."""
        voice = self._base(source) + channel
        if kind == 0x90 and data[2] > 0:
            return [note_on(float(data[1]), data[2], voice=voice)]
        if kind in (0x80, 0x90):
            return [note_off(float(data[1]), voice=voice)]
        if kind == 0xE0:
            # 8192 steps a side, as an MPE keyboard computes them (8192 + semitones / range x 8192),
            # so its bends land on their semitones; the wheel's full up is 1 instead (`feed`).
            raw = data[1] | (data[2] << 7)
            return [_voice(voice, "bend", (raw - 8192) / 8192.0 * self._member_bend[self._members[channel]])]
        name, value = ("pressure", data[1] / 127.0) if kind == 0xD0 else ("y", (data[2] - 64) / 128.0)
        self._own[voice, name] = value  # CC 74 (slide) or pressure
        return [_voice(voice, name, self._combined(source, voice, name))]

    # -- learn -----------------------------------------------------------------------------
    def arm(self, param: str, on_learned: Callable[[str, str], None] | None = None) -> None:
        """The next moved CC or NRPN control binds to `param`; `on_learned(param, control)` follows."""
        if param != RECORD:
            self.params.spec(param)  # raises ParameterError for an unknown name
        self.armed = param
        self._on_learned = on_learned

    def disarm(self) -> None:
        self.armed = None
        self._on_learned = None

    def _learn(self, *, cc: int | None = None, nrpn: int | None = None, channel: int) -> None:
        takeover = self.armed != RECORD and self.params.spec(self.armed).integer is False
        mapping = Mapping(self.armed, cc=cc, nrpn=nrpn, channel=channel, takeover=takeover)
        self.mappings = [m for m in self.mappings if not m.same_control(mapping)] + [mapping]
        callback, param = self._on_learned, self.armed
        self.disarm()
        if self.on_change is not None:
            self.on_change()  # saved before it is announced: who hears of it may read the map file
        if callback is not None:
            callback(param, mapping.control)

    def bindings(self) -> list[tuple[str, str]]:
        """(parameter, control) for every mapping, e.g. ('z0', 'CC 70 any ch')."""
        return [(m.param, m.control) for m in self.mappings]

    def unlearn(self, param: str) -> int:
        """Remove every mapping of `param` (then `on_change`, which saves the map); returns how many."""
        kept = [m for m in self.mappings if m.param != param]
        removed = len(self.mappings) - len(kept)
        self.mappings = kept
        if removed and self.on_change is not None:
            self.on_change()
        return removed

    # -- feeding -----------------------------------------------------------------------------
    def feed(self, message: Sequence[int], *, source: str = "midi") -> list[Event]:
        """Events caused by one raw MIDI message; [] for anything ignored or malformed."""
        try:
            data = bytes(message)
        except (TypeError, ValueError):
            self.ignored += 1
            return []
        if not data or data[0] < 0x80 or data[0] >= 0xF0 or any(b >= 0x80 for b in data[1:]):
            self.ignored += 1  # running status, system messages (sysex, clock, sensing) and junk
            return []
        kind, channel = data[0] & 0xF0, (data[0] & 0x0F) + 1
        expected = 2 if kind in (0xC0, 0xD0) else 3
        if len(data) != expected:
            self.ignored += 1
            return []
        if self.channel is not None and channel != self.channel:
            return []
        events: list[Event] = []
        if kind == 0x90 and data[2] > 0:
            self._held.setdefault((source, channel), set()).add(data[1])
        elif kind in (0x80, 0x90):
            self._held.get((source, channel), set()).discard(data[1])
        if kind == 0xA0:  # polyphonic key pressure: no per-key control here (see the module's docstring)
            return []
        if channel in self._members and (kind != 0xB0 or data[1] == MPE_SLIDE_CC) and kind != 0xC0:
            events += self._member(kind, channel, data, source)
        elif kind == 0xD0 and self._manager_zone(channel):  # zone-wide pressure
            events += self._zone_move(source, self._manager_zone(channel), "pressure", data[1] / 127.0)
        elif kind == 0x90 and data[2] > 0:
            events.append(Event("note_on", pitch=float(data[1]), velocity=data[2]))
        elif kind in (0x80, 0x90):
            events.append(Event("note_off", pitch=float(data[1])))
        elif kind == 0xE0:
            raw = data[1] | (data[2] << 7)
            bend = (raw - 8192) / (8192.0 if raw < 8192 else 8191.0)
            events += self._set("bend", bend)
        elif kind == 0xC0:
            events.append(Event("preset", action="recall", slot=data[1]))
        elif kind == 0xB0:
            events += self._control_change(channel, data[1], data[2], source)
        for event in events:
            event.source = event.source or source  # a zone's releases keep their notes' own
        return events

    def _control_change(self, channel: int, number: int, value: int, source: str) -> list[Event]:
        state = self._states[channel - 1]
        if number == 120:  # all sound off: cut at once; on a manager, the whole zone
            return self._cut(source, self._zone_channels(channel))
        if number == 123:  # all notes off: released; on a manager, the whole zone's
            return self._let_go([(source, ch) for ch in self._zone_channels(channel)], self._members)
        if number == 121:  # reset all controllers: on a manager, its zone's member voices too
            channels = self._zone_channels(channel)
            for ch in channels:
                self._states[ch - 1].selected = None
            if channel in self._members:
                return self._rest(self._base(source), channels, zone=source)
            sustain = []
            if self._builtin_sustain(channel):
                self._pedal_down.discard(source)
                sustain = self._set("sustain", 0.0)
            zone = self._manager_zone(channel)
            for name in ("y", "pressure"):
                self._zone_values.pop((source, zone, name), None)
            rest = self._rest(self._base(source), channels[1:], zone=None) if zone else []
            return self._set("bend", 0.0) + sustain + rest
        if number >= 120:
            return []
        if number == 64 and self._builtin_sustain(channel):
            if self.armed is not None:
                self._learn(cc=number, channel=channel)
                return []
            if value >= 64:
                self._pedal_down.add(source)
            else:
                self._pedal_down.discard(source)
            return self._set("sustain", 1.0 if value >= 64 else 0.0)
        if number in NRPN_SELECT:
            if number == 99:
                state.nrpn_msb, state.selected = value, ("nrpn", (value << 7) | state.nrpn_lsb)
            elif number == 98:
                state.nrpn_lsb, state.selected = value, ("nrpn", (state.nrpn_msb << 7) | value)
            elif number == 101:
                state.rpn_msb, state.selected = value, ("rpn", (value << 7) | state.rpn_lsb)
            else:
                state.rpn_lsb, state.selected = value, ("rpn", (state.rpn_msb << 7) | value)
            if state.selected == ("rpn", 16383) or state.selected == ("nrpn", 16383):
                state.selected = None  # the null function
            state.data_msb = None
            return []
        if number in DATA_ENTRY and state.selected is not None:
            return self._data_entry(channel, state, number, value)
        if (number == MPE_SLIDE_CC and self.armed is None and self._manager_zone(channel)
                and not any(m.cc == number and m.matches(channel) for m in self.mappings)):
            return self._zone_move(source, self._manager_zone(channel), "y", (value - 64) / 128.0)  # zone-wide slide
        if 32 <= number < 64 and any(m.cc == number - 32 and m.matches(channel) and m.mode == "absolute"
                                     for m in self.mappings):
            msb = state.msb.get(number - 32)
            if msb is None:
                return []
            state.lsb_seen.add(number - 32)
            return self._apply_cc(channel, number - 32, ((msb << 7) | value) / 16383.0, value)
        if self.armed is not None:
            self._learn(cc=number, channel=channel)
            return []
        if number < 32:
            state.msb[number] = value
            if number in state.lsb_seen:
                return self._apply_cc(channel, number, (value << 7) / 16383.0, value)
        return self._apply_cc(channel, number, value / 127.0, value)

    def _builtin_sustain(self, channel: int) -> bool:
        """CC 64 drives `sustain` only while no map entry has taken it over on this channel."""
        return not any(m.cc == 64 and m.matches(channel) for m in self.mappings)

    def _data_entry(self, channel: int, state: _ChannelState, number: int, value: int) -> list[Event]:
        kind, control = state.selected
        if kind == "rpn":
            if control == MPE_RPN and number == 6 and channel in (1, 16):  # MPE Configuration Message
                zone = "lower" if channel == 1 else "upper"
                return self.set_zone(zone, value) + self._set("bend_range", MPE_MANAGER_BEND)
            if control == 0 and number in (6, 38) and channel in self._members:  # the members' bend range
                zone = self._members[channel]
                if number == 6:
                    state.data_msb = value
                    self._member_bend[zone] = float(min(value, 96))
                elif state.data_msb is not None:
                    self._member_bend[zone] = min(state.data_msb + value / 100.0, 96.0)
                return []
            if control == 0 and number in (6, 38):  # pitch bend sensitivity: semitones, cents
                if number == 6:
                    state.data_msb = value
                    return self._set("bend_range", float(value))
                if state.data_msb is not None:
                    return self._set("bend_range", state.data_msb + value / 100.0)
            return []
        if self.armed is not None and number in (6, 96, 97):
            self._learn(nrpn=control, channel=channel)
            return []
        key = (kind, control)
        if number == 6:
            state.data_msb = value
            unit = (value << 7) / 16383.0 if key in state.data_lsb_seen else value / 127.0
        elif number == 38:
            if state.data_msb is None:
                return []
            state.data_lsb_seen.add(key)
            unit = ((state.data_msb << 7) | value) / 16383.0
        else:  # 96 increment, 97 decrement: one tick of a relative move
            return self._apply_nrpn_ticks(channel, control, 1 if number == 96 else -1)
        events = []
        for mapping in self.mappings:
            if mapping.nrpn == control and mapping.matches(channel):
                events += self._apply(mapping, unit, value)
        return events

    def _apply_nrpn_ticks(self, channel: int, control: int, ticks: int) -> list[Event]:
        events = []
        for mapping in self.mappings:
            if mapping.nrpn == control and mapping.matches(channel) and mapping.param in self.params.specs:
                spec = self.params.spec(mapping.param)
                unit = mapping.unit_of(self._current(mapping.param), spec) + ticks * mapping.step
                events += self._set(mapping.param, mapping.value(unit, spec))
        return events

    def _apply_cc(self, channel: int, number: int, unit: float, raw: int) -> list[Event]:
        events = []
        for mapping in self.mappings:
            if mapping.cc == number and mapping.matches(channel):
                events += self._apply(mapping, unit, raw)
        return events

    def _apply(self, mapping: Mapping, unit: float, raw: int) -> list[Event]:
        if mapping.param == RECORD:
            return self._record_button(mapping, unit)
        if mapping.param not in self.params.specs:
            return []
        spec = self.params.spec(mapping.param)
        current = self._current(mapping.param)
        if mapping.mode != "absolute":
            ticks = _ticks(mapping.mode, raw)
            if ticks == 0:
                return []
            target_unit = mapping.unit_of(current, spec) + ticks * mapping.step
            return self._set(mapping.param, mapping.value(target_unit, spec))
        if mapping.takeover and not spec.integer:
            here = mapping.unit_of(current, spec)
            if mapping.engaged and not self._ours(mapping.param, current):
                mapping.engaged = False  # someone else moved the parameter: pick it up again
            if not mapping.engaged:
                last = mapping.last_unit
                crossed = last is not None and (last - here) * (unit - here) <= 0
                if crossed or abs(unit - here) <= PICKUP_TOLERANCE:
                    mapping.engaged = True
                mapping.last_unit = unit
                if not mapping.engaged:
                    return []
        mapping.last_unit = unit
        return self._set(mapping.param, mapping.value(unit, spec))

    def _record_button(self, mapping: Mapping, unit: float) -> list[Event]:
        pressed = unit >= 0.5
        was = mapping.last_unit is not None and mapping.last_unit >= 0.5
        mapping.last_unit = unit
        if not pressed or was:
            return []
        recording = self.is_recording() if self.is_recording is not None else self._recording_guess
        self._recording_guess = not recording
        return [Event("record", value=0.0 if recording else 1.0)]

    def _set(self, name: str, value: float) -> list[Event]:
        if name not in self.params.specs:
            return []
        clamped, _ = self.params.check(name, value)
        self._posted[name] = (clamped, self.clock())
        return [Event("param", name=name, value=clamped)]

    def _current(self, name: str) -> float:
        posted = self._posted.get(name)
        if posted is not None and self.clock() - posted[1] < PENDING_SECONDS:
            return posted[0]
        return self.params.get(name)

    def _ours(self, name: str, current: float) -> bool:
        """Whether the parameter still holds what this mapper last posted."""
        posted = self._posted.get(name)
        if posted is None:
            return False
        spec = self.params.spec(name)
        span = (spec.maximum - spec.minimum) or 1.0
        return abs(current - posted[0]) / span <= PICKUP_TOLERANCE / 2


def _voice(voice: int, name: str, value: float) -> Event:
    """`name` of `voice`, clipped to its range."""
    lo, hi = VOICE_CONTROLS[name]
    return voice_control(voice, name, min(max(value, lo), hi))


def _ticks(mode: str, raw: int) -> int:
    if mode == "relative-twos":
        return raw if raw < 64 else raw - 128
    if mode == "relative-offset":
        return raw - 64
    return raw if raw < 64 else -(raw - 64)  # relative-sign


def _fields(mapping: Mapping) -> dict:
    return {k: getattr(mapping, k) for k in ("param", "cc", "nrpn", "channel", "mode", "min", "max",
                                             "curve", "takeover", "step")}


# -- map files -------------------------------------------------------------------------------
MAP_HEADER = """\
# livegen MIDI map. One [[map]] table per control:
#   param = "z0"          parameter name (livegen: /livegen/params lists them)
#   cc = 70  or  nrpn = 1234
#   channel = 1           1..16; leave out for any channel
#   mode = "absolute"     or relative-twos / relative-offset / relative-sign (encoders)
#   step = 0.0078125      range fraction per encoder tick (relative modes)
#   min = -4.0, max = 4.0 range in parameter units (default: the parameter's range; min > max inverts)
#   curve = "linear"      or "exp", "log", or an exponent like 1.5
#   takeover = true       soft takeover: the knob acts once it reaches the current value
# Top level (before the first [[map]]): channel = 1 (listen to one channel), mpe = "lower"
# (an MPE zone: lower, upper, lower:N, upper:N; as --mpe).
"""


def default_map_path() -> Path:
    """The user's map file (created by MIDI learn): <user config dir>/livegen/midi-map.toml."""
    import platformdirs

    return platformdirs.user_config_path("livegen") / "midi-map.toml"


def load_map(path: str | Path) -> tuple[list[Mapping], dict]:
    """Read a TOML map file: (mappings, options). Options: `channel` (1-16), `mpe` (a zone, as
    `--mpe` takes it)."""
    import tomllib

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"cannot read MIDI map {path}: {exc.strerror or exc}; check --midi-map") from None
    except UnicodeDecodeError:
        raise ParameterError(f"MIDI map {path} is not a UTF-8 text file: give a TOML map (MIDI learn writes one "
                             "you can copy)") from None
    try:
        record = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ParameterError(f"MIDI map {path} is not valid TOML: {exc}") from None
    maps = record.pop("map", [])
    if not isinstance(maps, list):
        raise ParameterError(f"{path}: 'map' must be an array of tables ([[map]])")
    options = {k: v for k, v in record.items()}
    unknown = set(options) - {"channel", "mpe"}
    if unknown:
        raise ParameterError(f"{path}: unknown top-level keys {sorted(unknown)}; known: channel, mpe, map")
    if "mpe" in options:
        if not isinstance(options["mpe"], str):
            raise ParameterError(f"{path}: mpe {options['mpe']!r} must be a string like \"lower\" or \"upper:7\"")
        parse_mpe(options["mpe"], where=f"{path}: mpe")
    channel = options.get("channel")
    if channel is not None and not (isinstance(channel, int) and 1 <= channel <= 16):
        raise ParameterError(f"{path}: channel {channel!r} must be 1..16")
    return [Mapping.from_dict(m, where=f"{path} [[map]] #{i + 1}") for i, m in enumerate(maps)], options


def save_map(path: str | Path, mappings: list[Mapping], options: dict | None = None) -> None:
    """Write a TOML map file atomically (a crash never leaves half a file)."""
    import os
    import tomli_w

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = dict(options or {})
    body["map"] = [m.to_dict() for m in mappings]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(MAP_HEADER + tomli_w.dumps(body), encoding="utf-8")
    os.replace(tmp, path)
