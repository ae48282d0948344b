"""One call for the engine server: start OSC and MIDI from the parsed CLI options.

    from livegen.control.setup import add_control_arguments, start_controls
    add_control_arguments(parser)             # --osc-* and --midi-* options
    controls = start_controls(target, args, log=log)
    ...
    controls.stop()

OSC failing to bind is an error (the performer asked for that port). MIDI failing to open
(no JACK server, no MIDI system) is logged and the instrument plays on without it.
"""

from __future__ import annotations

from livegen.control.midi import add_midi_arguments, midi_input_from_args
from livegen.control.osc import add_osc_arguments, osc_server_from_args
from livegen.errors import DeviceError


def add_control_arguments(parser) -> None:
    add_osc_arguments(parser)
    add_midi_arguments(parser)


class Controls:
    def __init__(self, osc=None, midi=None):
        self.osc = osc
        self.midi = midi

    def stop(self) -> None:
        if self.osc is not None:
            self.osc.stop()
        if self.midi is not None:
            self.midi.stop()

    def describe(self) -> str:
        osc = f"OSC {self.osc.host}:{self.osc.port}" if self.osc is not None else "OSC off"
        if self.osc is not None and self.osc.query is not None:
            osc += f", OSCQuery {self.osc.query.url}"
        if self.midi is None:
            return f"{osc}, MIDI off"
        connected = ", ".join(f"{spec} -> {port or 'waiting'}" for spec, port in self.midi.connections.items())
        mpe = f", MPE {self.midi.mapper.mpe}" if self.midi.mapper.mpe else ""
        return f"{osc}, MIDI in '{self.midi.port_name}'" + (f" ({connected})" if connected else "") + mpe


def start_controls(target, args, *, log=print) -> Controls:
    """Start the OSC server and MIDI input the options ask for (see `add_control_arguments`);
    `target` is a `livegen.control.target.ControlTarget`."""
    midi = None
    try:
        midi = midi_input_from_args(target, args, log=log)
        if midi is not None:
            midi.start()
    except DeviceError as exc:
        log(f"MIDI is off: {exc}")
        midi = None
    osc = osc_server_from_args(target, args, midi=midi, log=log)
    try:
        if osc is not None:
            osc.start()
    except Exception:
        if midi is not None:
            midi.stop()
        raise
    return Controls(osc, midi)
