"""`livegen bench mpe`: an MPE keyboard's stream through JACK MIDI into the engine.

Fingers hold notes on the member channels of a lower zone; one more finger's pitch bend is
timed from send to the engine applying its `voice` event. Three phases of the same run, each as
long, the first the baseline: `still` (the notes held, no expression: every voice decodes at the
shared point), `offsets` (each finger's slide set once: each voice at its own point, no stream),
`stream` (bend, slide and pressure of every finger moving `--rate` times a second each, sent
from another process as a keyboard would). Printed per phase: the bend's send-to-applied time
(the engine's stamp: a diagnostic; what is heard is `livegen bench latency --kinds mpe`), the engine's
render load (its hop cost over the hop's length, smoothed) and xruns; then the ratios to `still`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import threading
import time

from livegen.audio.realtime import REALTIME_PRIORITY
from livegen.bench.control import _engine_target, _Jack, _midi_out, _summary, _until_applied
from livegen.control.fake import FakeTarget
from livegen.control.mapping import MidiMapper
from livegen.control.midi import MidiInput
from livegen.engine.events import param
from livegen.errors import ranged

PORT = "livegen:livegen"
LOWEST = 48
"""The fingers' notes: from here up in fifths and fourths, one per member channel from 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="livegen bench mpe", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", choices=("engine", "fake"), default="engine",
                   help="the real engine in the sound server on jackd dummy (default) or the fake target")
    p.add_argument("--model", help="model directory (default: models/default or a random model)")
    p.add_argument("--fingers", type=ranged(int, 1, 13), default=7, help="notes held and moved, 1-13 (default 7; with the "
                                                          "timed finger, 8 voices)")
    p.add_argument("--rate", type=ranged(float, above=0), default=100.0,
                   help="updates per second of each finger's bend, slide and pressure in the stream (default 100)")
    p.add_argument("--seconds", type=ranged(float, above=0), default=10.0, help="length of each phase (default 10)")
    p.add_argument("--bends", type=ranged(int, 1), default=100, help="timed bends per phase (default 100)")
    p.add_argument("--realtime-priority", type=ranged(int, 0, 94), default=None, metavar="N",
                   help="audio thread priority as in `play` (default: play's; 0 = off)")
    return p


def _bend(channel: int, raw: int) -> list[int]:
    return [0xE0 | (channel - 1), raw & 0x7F, raw >> 7]


def _pitches(fingers: int) -> list[int]:
    steps = [7, 5]
    out = [LOWEST]
    while len(out) < fingers + 1:
        out.append(out[-1] + steps[len(out) % 2])
    return out


class _BendProbe:
    """Listener: when the engine applied each bend of one voice, keyed by its value."""

    def __init__(self, voice: int):
        self.voice = voice
        self.applied: dict[float, float] = {}

    def __call__(self, event) -> None:
        if event.type == "voice" and event.voice == self.voice and event.name == "bend":
            self.applied[round(float(event.value), 3)] = time.perf_counter()


def _stream(conn, fingers: int, rate: float, seconds: float) -> None:
    """Another process: the keyboard. Every finger's bend (a 5 Hz vibrato of half a semitone),
    slide and pressure, `rate` times a second each, until `seconds` have passed."""
    out = _midi_out("bench-mpe-keyboard", PORT, seconds=10.0)
    conn.send("ready")
    conn.recv()
    total = 3 * fingers * rate
    sent, start = 0, time.perf_counter()
    while (now := time.perf_counter() - start) < seconds:
        finger, what = divmod(sent % (3 * fingers), 3)
        channel, phase = 2 + finger, 2 * math.pi * now + finger
        if what == 0:
            out.send_message(_bend(channel, 8192 + int(85 * math.sin(5 * phase))))
        elif what == 1:
            out.send_message([0xB0 | (channel - 1), 74, 64 + int(40 * math.sin(0.5 * phase))])
        else:
            out.send_message([0xD0 | (channel - 1), 64 + int(40 * math.sin(0.7 * phase))])
        sent += 1
        ahead = sent / total - (time.perf_counter() - start)
        if ahead > 0:
            time.sleep(ahead)
    out.close_port()
    conn.send((sent, time.perf_counter() - start))


def _phase(target, out, probe: _BendProbe, seconds: float, bends: int, offset: int) -> dict:
    """Time `bends` bends of the probe finger over `seconds`, sampling the load meanwhile."""
    loads, stop = [], threading.Event()

    def sample():
        while not stop.wait(0.1):
            loads.append(float(target.status().get("load", 0.0)))

    sampler = threading.Thread(target=sample, daemon=True)
    xruns = target.status().get("xruns", 0)
    sampler.start()
    latencies, start = [], time.perf_counter()
    for i in range(bends):
        raw = 8192 + 1 + (offset + 37 * i) % 2000
        ms = _until_applied(probe.applied, round((raw - 8192) / 8192 * 48, 3), out.send_message,
                            _bend(probe.voice, raw))
        if ms is not None:
            latencies.append(ms)
        pause = start + (i + 1) * seconds / bends - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    stop.set()
    sampler.join()
    status = target.status()
    return {"latency": latencies, "load": statistics.fmean(loads) if loads else float("nan"),
            "xruns": status.get("xruns", 0) - xruns, "voices": status.get("voices"),
            "points": len(set(zip(*[iter(status.get("voices_xy") or [])] * 2)))}


def main(argv=None) -> int:
    import multiprocessing

    import rtmidi

    args = _parser().parse_args(argv)
    if not 1 <= args.fingers <= 13:
        print(f"--fingers {args.fingers}: give 1..13 (channels 2-14; the timed finger plays on the next)")
        return 2
    jack = _Jack()
    if not jack.start():
        print("no JACK server could be started (jackd -d dummy): MPE goes through JACK MIDI here")
        return 1
    live = None
    if args.target == "engine":
        live, what = _engine_target(args.model, realtime_priority=REALTIME_PRIORITY if args.realtime_priority is None else args.realtime_priority)
        target = live
    else:
        target, what = FakeTarget(latent_dim=8), "FAKE control target (no audio: the figures are the control path's)"
    fingers, probe_channel = args.fingers, args.fingers + 2
    print(f"target: {what}")
    print(f"machine: {os.cpu_count()} cores, shared, load average {os.getloadavg()[0]:.1f}; JACK {jack.scheduling}")
    probe = _BendProbe(probe_channel)
    target.add_listener(probe)
    midi = MidiInput(target, mapper=MidiMapper(target.params, [], mpe="lower"), api=rtmidi.API_UNIX_JACK,
                     save_learned=False, map_path=os.path.join(tempfile.gettempdir(), "livegen-bench-mpe.toml")).start()
    out = _midi_out("bench-mpe-timer", PORT)
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    keyboard = context.Process(target=_stream, args=(there, fingers, args.rate, args.seconds), daemon=True)
    keyboard.start()
    code = 0
    try:
        if not here.poll(60):
            print("the keyboard process did not start")
            return 1
        here.recv()
        target.post(param("drone", 0, source="bench"))
        target.post(param("voices", max(8, fingers + 1), source="bench"))
        for channel, pitch in zip(range(2, probe_channel + 1), _pitches(fingers)):
            out.send_message([0x90 | (channel - 1), pitch, 100])
        time.sleep(1.0)  # the engine's first hops with the notes are slow: warm up
        results = {"still": _phase(target, out, probe, args.seconds, args.bends, 0)}
        for channel in range(2, probe_channel):
            out.send_message([0xB0 | (channel - 1), 74, 30 + 5 * channel])  # a slide of its own, never 64
        time.sleep(0.1)
        results["offsets"] = _phase(target, out, probe, args.seconds, args.bends, 500)
        before = midi.messages
        here.send("go")
        results["stream"] = _phase(target, out, probe, args.seconds, args.bends, 1000)
        sent, took = here.recv() if here.poll(args.seconds + 30) else (0, float("nan"))
        handled = midi.messages - before
        print(f"\n{fingers} fingers on member channels 2-{probe_channel - 1} (notes {_pitches(fingers)[:-1]}), "
              f"the timed finger's bend on channel {probe_channel}; {args.seconds:g} s per phase")
        print(f"stream: {sent} messages in {took:.1f} s ({sent / took:,.0f}/s: bend, slide and pressure of each "
              f"finger {args.rate:g}/s) from another process; the MIDI input handled {handled} "
              f"(with the timed bends), errors {len(midi.errors)}")
        print("\nphase     bend sent -> applied                           load    xruns  voices  points")
        for name, r in results.items():
            print(f"{name:8s}  {_summary(r['latency']):45s}  {r['load']:6.3f}  {r['xruns']:5d}  {r['voices']!s:>6}  "
                  f"{r['points']:>6}")
        print("(load: hop cost over hop length, smoothed, sampled every 0.1 s; points: the distinct pad points "
              "the voices with ids sound at, from the status)")
        base = results["still"]
        for name in ("offsets", "stream"):
            r = results[name]
            if base["latency"] and r["latency"]:
                ratio = statistics.median(r["latency"]) / statistics.median(base["latency"])
                load = f", load {r['load'] / base['load']:.2f}" if base["load"] else ""
                print(f"{name}/still: bend sent -> applied median {ratio:.2f}{load}")
        if any(not r["latency"] for r in results.values()) or midi.errors:
            code = 1
    finally:
        keyboard.join(5)
        if keyboard.is_alive():
            keyboard.terminate()
        out.close_port()
        midi.stop()
        if live is not None:
            live.stop()
        else:
            target.close()
        jack.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
