"""`livegen devices`: list audio output and input devices and MIDI ports."""

from __future__ import annotations

import argparse

from livegen.audio import devices


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("devices", help="list audio devices and MIDI ports",
                                   description="List audio output and input devices (PortAudio) and MIDI ports (rtmidi).")
    parser.add_argument("--no-midi", action="store_true", help="skip MIDI ports")
    return parser


def run(args) -> int:
    _section("Audio output devices (use --audio-device INDEX or part of the NAME):", devices.output_devices,
             "none. With no sound card, start a JACK server: jackd -d dummy -r 48000 -p 256")
    _section("Audio input devices (play --input-device INDEX or part of the NAME; on JACK, connect what you "
             "play to livegen-audio:input):", devices.input_devices, "none.")
    if args.no_midi:
        return 0
    print("MIDI ports (rtmidi):")
    # rtmidi's ALSA and JACK back ends print to stderr when they find no server.
    with devices.quiet_stderr():
        ports = devices.midi_ports()
    for api, names in ports.items():
        print(f"  {api}:")
        for name in names or ["(no ports)"]:
            print(f"    {name}")
    return 0


def _section(title: str, lister, none: str) -> None:
    print(title)
    try:
        with devices.quiet_stderr():
            found = lister()
    except Exception as exc:
        print(f"  (PortAudio failed: {exc})")
        found = []
    if not found:
        print(f"  {none}")
    for d in found:
        print(f"  {d['index']:>3}  {d['name']}  [{d['hostapi']}, {d['channels']} ch, "
              f"{d['samplerate']:.0f} Hz, {d['latency'] * 1000:.1f} ms]")
