"""Finding audio and MIDI devices, with messages that say what to do when one is missing."""

from __future__ import annotations

from livegen.errors import DeviceError

HINT = ("run `livegen devices` to list them; choose one with --audio-device NAME|INDEX "
        "(and --samplerate, --blocksize, --latency); with no sound card, start a JACK server "
        "(e.g. `jackd -d dummy -r 48000 -p 256`)")


def sounddevice():
    """Import sounddevice, turning a missing PortAudio into a DeviceError."""
    try:
        import sounddevice as sd
    except OSError as exc:
        raise DeviceError(f"PortAudio is not available ({exc}); install libportaudio2") from None
    return sd


INPUT_HINT = ("run `livegen devices` to list the audio inputs and give one's index or part of its name "
              "(on JACK: --input-device system, then connect what you play to livegen-audio:input)")


def output_devices() -> list[dict]:
    return _devices("output")


def input_devices() -> list[dict]:
    return _devices("input")


def _devices(kind: str) -> list[dict]:
    sd = sounddevice()
    hostapis = sd.query_hostapis()
    found = []
    for index, info in enumerate(sd.query_devices()):
        if info[f"max_{kind}_channels"] > 0:
            found.append({"index": index, "name": info["name"], "hostapi": hostapis[info["hostapi"]]["name"],
                          "channels": info[f"max_{kind}_channels"],
                          "samplerate": info["default_samplerate"],
                          "latency": info[f"default_low_{kind}_latency"]})
    return found


def find_output_device(spec: str | int | None) -> dict:
    """Resolve `--audio-device` (None/'default', an index, or part of a name) to a device."""
    sd = sounddevice()
    devices = output_devices()
    if not devices:
        raise DeviceError(f"no audio output device found; {HINT}")
    if spec is None or str(spec).strip().lower() in ("", "default", "auto"):
        default = sd.default.device[1] if isinstance(sd.default.device, (list, tuple)) else sd.default.device
        for device in devices:
            if device["index"] == default:
                return device
        return devices[0]
    text = str(spec).strip()
    if text.isdigit():
        for device in devices:
            if device["index"] == int(text):
                return device
        raise DeviceError(f"no audio output device with index {text}; {HINT}")
    matches = [d for d in devices if text.lower() in d["name"].lower()]
    if not matches:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in devices)
        raise DeviceError(f"no audio output device matching {text!r} (have {names}); {HINT}")
    exact = [d for d in matches if d["name"].lower() == text.lower()]
    return (exact or matches)[0]


def midi_ports() -> dict[str, list[str]]:
    """MIDI input and output ports per rtmidi API (ALSA, JACK, ...); errors become notes."""
    result: dict[str, list[str]] = {}
    try:
        import rtmidi
    except ImportError as exc:
        return {"(python-rtmidi missing)": [str(exc)]}
    for api in rtmidi.get_compiled_api():
        name = rtmidi.get_api_display_name(api)
        ports: list[str] = []
        for kind, cls in (("in", rtmidi.MidiIn), ("out", rtmidi.MidiOut)):
            try:
                client = cls(api, name="livegen-devices")
                ports.extend(f"{kind}: {port}" for port in client.get_ports())
                client.delete()
            except Exception as exc:  # rtmidi raises SystemError etc. when the API has no server
                ports.append(f"{kind}: unavailable ({type(exc).__name__}: {exc})")
        result[name] = ports
    return result


class quiet_stderr:
    """Silence C libraries (ALSA, JACK) that print to file descriptor 2 while probing."""

    def __enter__(self):
        import os
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        return self

    def __exit__(self, *exc):
        import os

        os.dup2(self._saved, 2)
        os.close(self._saved)
        return False
