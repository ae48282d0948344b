"""`livegen bench engine`: cost, latency, start-up and xruns of the live engine.

Figures (all measured in one run, ratios against baselines of the same run):

- real-time factor of the offline render at 48 kHz on one thread, 1 voice (the drone) and
  8 note voices, beside the decode-only and inverter-only cost of the same work, and the
  summed stream's spectral convergence to the voice magnitudes it was given;
- per-voice control (MPE): 8 note voices each at its own latent point (a pad offset per voice
  id) against 8 plain voices sharing the performer's point, measured in turns, and their ratio;
  the per-hop cost with 8 fingers' bend, slide and pressure streaming (24 voice events a hop);
- control-to-sound latency in the offline render: from an event's sample to the first output
  sample it changes, for the default look-ahead and look-ahead 0, with the algorithmic floor
  printed beside (one block of waiting for the next hop boundary; a parameter the model reads
  also waits look-ahead x hop, a note's pre-rolled onset does not);
- start-up of `play --headless` to the first non-silent sample on `jackd -d dummy`;
- an xrun soak (`--soak-seconds`): 8 voices, parameter changes every 10 ms over OSC, engine
  and JACK xrun counts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import numpy as np

from livegen.audio.devices import quiet_stderr
from livegen.audio.input import JACK_CLIENT
from livegen.audio.jackstream import ProcessCallback
from livegen.audio.realtime import describe_process
from livegen.bench.latency import xy_walk
from livegen.bench.ui import _status
from livegen.continuation.io import default_continuation_path
from livegen.dsp import StreamingInverter, spectral_convergence
from livegen.engine import events as ev
from livegen.server import factory
from livegen.engine.notes import spectral_engine
from livegen.model import default_model_path
from livegen.errors import ranged

SR = 48000


def _model():
    loaded = factory.load(None, log=lambda text: None)
    return loaded.model, loaded.name


def _engine(model, **kwargs):
    return spectral_engine(model, samplerate=SR, **kwargs)


def _script(voices: int, *, per_voice: bool = False):
    """The drone alone (1), or `voices` notes; `per_voice`: each note with a voice id whose pad
    offset (0.3 pad widths, a different direction each) gives it a latent point of its own."""
    if voices <= 1:
        return [ev.param("drone", 1)]
    script = [ev.param("drone", 0)]
    for i in range(voices):
        voice = i + 1 if per_voice else None
        if per_voice:
            angle = 2 * np.pi * i / voices
            script += [ev.voice_control(voice, "x", 0.3 * np.cos(angle)), ev.voice_control(voice, "y", 0.3 * np.sin(angle))]
        script.append(ev.note_on(48 + 3 * i, 100, t=0.0, voice=voice))
    return script


def _rtf(model, voices: int, seconds: float, *, per_voice: bool = False, **kwargs) -> tuple[float, object]:
    engine = _engine(model, **kwargs)
    engine.schedule(_script(voices, per_voice=per_voice))
    engine.render(0.2)  # warm-up (first torch calls, allocations)
    start = time.perf_counter()
    y = engine.render(seconds)
    return seconds / (time.perf_counter() - start), (engine, y)


def _hop_costs(model, hops: int, *, mpe: bool = False) -> np.ndarray:
    """Milliseconds of each `Engine.step` with the soak's load (8 voices, an xy change every other
    hop): what a callback that renders needs when nothing else delays it. `mpe`: the 8 notes have
    voice ids and each moves its bend, y and pressure every hop as well (24 voice events per hop,
    4,500 a second: 8 fingers of an MPE keyboard streaming), which also sets each voice at a point
    of its own."""
    engine = _engine(model)
    engine.schedule(_script(8, per_voice=mpe))
    engine.render(0.2)
    rng = np.random.default_rng(0)
    xy = np.array([0.5, 0.5])
    costs = np.empty(hops)
    for k in range(hops):
        if k % 2 == 0:
            xy = np.clip(xy + rng.normal(0, 0.02, 2), 0, 1)
            engine.post(ev.param("x", float(xy[0])))
            engine.post(ev.param("y", float(xy[1])))
        if mpe:
            for voice in range(1, 9):
                engine.post(ev.voice_control(voice, "bend", float(rng.uniform(-0.5, 0.5))))
                engine.post(ev.voice_control(voice, "y", float(rng.uniform(-0.3, 0.3))))
                engine.post(ev.voice_control(voice, "pressure", float(rng.uniform(0.0, 1.0))))
        start = time.perf_counter_ns()
        engine.step()
        costs[k] = (time.perf_counter_ns() - start) / 1e6
    return costs


def _decode_only(model, voices: int, seconds: float) -> float:
    import numpy as np
    import torch

    cfg = model.config
    hops = int(seconds * cfg.sample_rate / cfg.hop)
    v = max(1, voices)
    z = torch.zeros(v, cfg.latent_dim)
    pitch = torch.full((v,), 60.0)
    vel = torch.full((v,), 0.8)
    t_on = torch.ones(v)
    t_off = -torch.ones(v)
    rng = np.random.default_rng(0)
    with torch.inference_mode():
        model.decode(z, pitch, vel, t_on, t_off, torch.zeros(v, cfg.noise_dim))
        start = time.perf_counter()
        for _ in range(hops):
            noise = torch.from_numpy(rng.standard_normal((v, cfg.noise_dim)).astype(np.float32))
            model.decode(z, pitch, vel, t_on, t_off, noise)
    return seconds / (time.perf_counter() - start)


def _inverter_only(model, rows: int, seconds: float, frames) -> float:
    cfg = model.config
    inverter = StreamingInverter(n_fft=cfg.n_fft, hop=cfg.hop, voices=rows)
    hops = int(seconds * cfg.sample_rate / cfg.hop)
    start = time.perf_counter()
    for i in range(hops):
        inverter.push(frames[i % len(frames)])
    return seconds / (time.perf_counter() - start)


def _spectral_convergence_of_mix(model, voices: int, seconds: float) -> float:
    """SC (dB) of the inverter's stream against the summed voice magnitudes it was given.

    The inverter's own output, not the engine's: the output chain after it (DC blocker,
    leveller, limiter) changes the level on purpose, and a level change reads as spectral error
    (docs/benchmarks/history.md)."""
    import numpy as np

    cfg = model.config

    engine = spectral_engine(model, samplerate=cfg.sample_rate)
    engine.schedule(_script(voices))
    targets, blocks = [], []
    original = engine.inverter.push

    def capture(frame, onset=None, cut=False):
        targets.append(np.asarray(frame, dtype=np.float32).sum(axis=0))
        out = original(frame, onset, cut)
        blocks.append(np.array(out[0], dtype=np.float32))
        return out

    engine.inverter.push = capture
    engine.render(seconds)
    skip = 20  # past the first look-ahead frames
    start = (engine.lookahead + skip) * cfg.hop  # push m returns stream samples from (m - lookahead) * hop
    y = np.concatenate(blocks)[start:]
    frames = 1 + (len(y) - cfg.n_fft) // cfg.hop
    target = np.stack(targets)[skip:skip + frames]
    return float(spectral_convergence(y, target, n_fft=cfg.n_fft, hop=cfg.hop))


def _latency(model, lookahead: int | None) -> dict:
    """Samples from an event to the first output sample it changes (offline, 48 kHz)."""
    import numpy as np

    hop_out = model.config.hop * SR // model.config.sample_rate
    at = 40 * hop_out  # on a hop boundary, after the start fade
    results = {}
    for name, change in (("note_on", [ev.note_on(60, 100)]), ("param", [ev.param("drone_pitch", 60.0)])):
        base = [ev.param("drone", 0)] if name == "note_on" else []
        outs = []
        for script in (base, base + [dataclass_at(e, at) for e in change]):
            engine = _engine(model, lookahead=lookahead)
            engine.schedule(script)
            outs.append(engine.render(at / SR + 0.2))
            la = engine.lookahead
        diff = np.abs(outs[0] - outs[1])
        threshold = 1e-4 * max(1e-9, float(np.abs(outs[1]).max()))
        changed = np.flatnonzero(diff > threshold)
        first = int(changed[0]) if len(changed) else -1
        results[name] = first - at if first >= 0 else None
        # when the change is really there: its 2 ms RMS envelope within 20 dB of its maximum
        env = np.sqrt(np.convolve(diff.astype(np.float64) ** 2, np.ones(96) / 96, mode="same"))
        strong = np.flatnonzero(env[at:] >= 0.1 * env[at:].max())
        results[name + "_20db"] = int(strong[0]) if len(strong) else None
    results["lookahead"] = la
    results["floor"] = la * hop_out + hop_out
    results["hop_out"] = hop_out
    return results


def dataclass_at(event, sample):
    import dataclasses

    return dataclasses.replace(event, sample=sample, t=sample / SR)


# ---------------------------------------------------------------- live: jackd + play --headless
class _Jack:
    """A private `jackd -d dummy`, real-time (`-R -P 10`, as a stage rig runs it) when the system
    allows, else `--no-realtime` with a note; `scheduling` says what its threads obtained.

    `capture=False` registers the input port without a process callback, so no Python (and no
    GIL of this busy bench process) sits in JACK's real-time cycle: the soak's choice."""

    PRIORITY = 10
    REALTIME = True
    """False: every server starts --no-realtime (`bench engine --no-realtime`)."""

    def __init__(self, period=256, *, capture=True, realtime=None):
        realtime = self.REALTIME if realtime is None else realtime
        self.name = f"livegen-bench-{uuid.uuid4().hex[:8]}"
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_AUDIO_RESERVATION="1",
                        JACK_NO_START_SERVER="1")
        jackd = shutil.which("jackd")
        if jackd is None:
            raise RuntimeError("jackd not found (Debian jackd2)")
        self.log = open(f"/tmp/{self.name}.log", "w+")
        self.note = ""
        mode = ["-R", "-P", str(self.PRIORITY)] if realtime else ["--no-realtime"]
        self.proc = subprocess.Popen([jackd, *mode, "-n", self.name, "-d", "dummy", "-r", str(SR),
                                      "-p", str(period)], stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        import jack

        deadline = time.monotonic() + 10
        while True:
            try:
                with quiet_stderr():  # libjack prints every failed attempt while jackd starts
                    self.client = jack.Client("livegen-bench", servername=self.name, no_start_server=True)
                break
            except jack.JackError:
                if self.proc.poll() is not None and realtime:  # refused real-time: go on without
                    self.log.close()
                    self.__init__(period, capture=capture, realtime=False)
                    self.note = "jackd -R refused here; running --no-realtime"
                    return
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        import numpy as np

        self.port = self.client.inports.register("in")
        self.buffer = np.zeros(SR * 60 * 12 if capture else 0, dtype=np.float32)
        self.pos = 0
        self.first_sound = None
        self.xruns = 0
        self.process = ProcessCallback(self.client, self._process) if capture else self.client
        self.client.set_xrun_callback(self._xrun)
        self.process.activate()
        self.realtime = "fifo" in describe_process(self.proc.pid)
        if realtime and not self.realtime and not self.note:
            self.note = "jackd -R got no real-time thread here (no privilege); it runs at normal policy"

    @property
    def scheduling(self) -> str:
        mode = f"-R -P {self.PRIORITY}" if self.realtime else "--no-realtime"
        return (f"jackd {mode}: {describe_process(self.proc.pid)}; this bench's JACK client: "
                f"{describe_process(os.getpid())}" + (f" ({self.note})" if self.note else ""))

    def _process(self, frames):
        data = self.port.get_array()
        if self.first_sound is None and float(abs(data).max()) > 1e-4:
            self.first_sound = time.monotonic()
        n = min(frames, len(self.buffer) - self.pos)
        if n > 0:
            self.buffer[self.pos:self.pos + n] = data[:n]
            self.pos += n

    def _xrun(self, delay):
        self.xruns += 1

    def connect(self) -> bool:
        for port in self.client.get_ports(is_audio=True, is_output=True):
            if port.name.startswith(f"{JACK_CLIENT}:"):  # the sound server's outputs
                try:
                    self.client.connect(port, self.port)
                except Exception:
                    pass
                return True
        return False

    def close(self):
        try:
            self.process.deactivate()
            self.client.close()
        finally:
            self.proc.terminate()
            self.proc.wait(5)
            self.log.seek(0)
            self.server_xruns = self.log.read().count("XRun")
            self.log.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _play(jack: _Jack, port: int, extra=()):
    return subprocess.Popen([sys.executable, "-m", "livegen", "play", "--headless", "--osc-port", str(port), *extra],
                            env=jack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _startup(extra) -> tuple[float | None, str]:
    jack = _Jack()
    port = _free_port()
    try:
        started = time.monotonic()
        proc = _play(jack, port, extra)
        deadline = started + 120
        while jack.first_sound is None and time.monotonic() < deadline and proc.poll() is None:
            jack.connect()
            time.sleep(0.01)
        seconds = jack.first_sound - started if jack.first_sound else None
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        return seconds, out.strip()
    finally:
        jack.close()


def _playing_eight_voices(jack: _Jack, port: int, extra, *, settle: float):
    """`play --headless` on `jack`, answering OSC, connected, settled, with 8 notes held."""
    from pythonosc.udp_client import SimpleUDPClient

    proc = _play(jack, port, extra)
    osc = SimpleUDPClient("127.0.0.1", port)
    deadline = time.monotonic() + 120
    while _status(port, timeout=0.5) is None and time.monotonic() < deadline and proc.poll() is None:
        pass
    jack.connect()
    time.sleep(settle)  # let the start-up settle
    for i in range(8):
        osc.send_message("/livegen/note", [48 + 3 * i, 100])
    return proc, osc


def _soak(seconds: float, extra) -> dict:
    jack = _Jack(capture=False)
    port = _free_port()
    try:
        proc, osc = _playing_eight_voices(jack, port, extra, settle=1.0)
        jack_xruns_before = jack.xruns
        changes, loads = xy_walk(lambda x, y: osc.send_message("/livegen/xy", [x, y]), seconds)
        status = _status(port) or {}
        threads = describe_process(proc.pid)
        scheduling = jack.scheduling
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        return {"summary": out.strip(), "jack_client_xruns": jack.xruns - jack_xruns_before, "changes": changes,
                "status": status, "engine_threads": threads, "scheduling": scheduling,
                "load": (min(loads), max(loads), sum(loads) / len(loads)) if loads else (os.getloadavg()[0],) * 3,
                "stderr": err}
    finally:
        jack.close()
        time.sleep(0.1)


def _switches(seconds: float, every: float, extra) -> dict:
    """Engine xruns over `seconds` with a model switch (default <-> continuation) every `every`
    seconds, against the same time without switches just before, 8 voices and xy every 10 ms."""
    import numpy as np

    models = (str(default_continuation_path()), str(default_model_path()))
    jack = _Jack(capture=False)
    port = _free_port()
    try:
        proc, osc = _playing_eight_voices(jack, port, extra, settle=2.0)
        rng = np.random.default_rng(0)
        xy = [0.5, 0.5]

        def period(switch: bool) -> dict:
            before, jack_before = _status(port) or {}, jack.xruns
            start = next_at = time.monotonic()
            next_switch, count = start + every, 0
            while (now := time.monotonic()) < start + seconds:
                xy[:] = np.clip(np.asarray(xy) + rng.normal(0, 0.02, 2), 0, 1).tolist()
                osc.send_message("/livegen/xy", xy)
                if switch and now >= next_switch:
                    osc.send_message("/livegen/model", [models[count % 2]])
                    count += 1
                    next_switch += every
                next_at += 0.010
                time.sleep(max(0.0, next_at - time.monotonic()))
            time.sleep(1.0)  # the last switch's load and fade
            after = _status(port) or {}
            return {"switches": count, "load": os.getloadavg()[0], "jack_xruns": jack.xruns - jack_before,
                    **{key: after.get(key, 0) - before.get(key, 0) for key in ("xruns", "underflows", "late")},
                    "model": after.get("model", "?")}

        quiet, switching = period(False), period(True)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        return {"quiet": quiet, "switching": switching, "summary": out.strip(), "scheduling": jack.scheduling}
    finally:
        jack.close()
        time.sleep(0.1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="livegen bench engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=ranged(float, above=0), default=5.0, help="audio rendered per cost figure")
    parser.add_argument("--soak-seconds", type=ranged(float, 0), default=10.0, help="length of the xrun soak (0 skips)")
    parser.add_argument("--hops", type=ranged(int, 1), default=5000, help="hops timed one by one for the per-hop cost")
    parser.add_argument("--no-live", action="store_true", help="skip the jackd start-up and soak figures")
    parser.add_argument("--play-args", default="", help="extra `play --headless` options for the live figures")
    parser.add_argument("--switch-seconds", type=ranged(float, 0), default=0.0,
                        help="xruns over this long with model switches (default <-> continuation), against the "
                             "same time without (0 skips)")
    parser.add_argument("--switch-every", type=ranged(float, above=0), default=4.0, help="seconds between model switches")
    parser.add_argument("--no-realtime", action="store_true",
                        help="baseline without real-time scheduling: jackd --no-realtime and play "
                             "--realtime-priority 0 (the set-up before real-time scheduling)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(1)
    model, name = _model()
    cfg = model.config
    load = os.getloadavg()[0]
    print(f"model: {name}; STFT {cfg.sample_rate} Hz, n_fft {cfg.n_fft}, hop {cfg.hop}; output {SR} Hz; "
          f"one torch thread; machine load average {load:.1f} on {os.cpu_count()} CPUs")

    print("\nreal-time factor of render (x real time; higher is better)")
    rows = []
    for voices in (1, 8):
        rtf, (engine, _) = _rtf(model, voices, args.seconds)
        decoded = voices if voices > 1 else 1
        dec = _decode_only(model, decoded, args.seconds)
        frames = [np.abs(np.random.default_rng(i).standard_normal((1, cfg.n_bins))).astype(np.float32) for i in range(8)]
        inv = _inverter_only(model, 1, args.seconds, frames)
        rows.append((voices, rtf, dec, inv))
        target = 20 if voices == 1 else 4
        print(f"  {voices} voice{'s' if voices > 1 else ' '}: engine {rtf:6.1f}x  (target {target}x)   "
              f"decode-only {dec:6.1f}x   inverter-only {inv:6.1f}x   engine/decode-only {rtf / dec:.2f}")
    # In turns, the best of each: a shared machine's load moves between measurements.
    plain, per_voice = [], []
    for _ in range(3):
        plain.append(_rtf(model, 8, args.seconds)[0])
        per_voice.append(_rtf(model, 8, args.seconds, per_voice=True)[0])
    print(f"  8 voices, each at its own latent point (per-voice pad offsets, MPE): engine {max(per_voice):6.1f}x; "
          f"8 plain voices {max(plain):6.1f}x (best of 3 in turns); cost per-voice/plain "
          f"{max(plain) / max(per_voice):.2f}")
    costs = _hop_costs(model, args.hops)
    hop_ms = 1000 * cfg.hop / cfg.sample_rate
    print(f"  one hop, 8 voices, xy every other hop ({len(costs)} hops): median {np.median(costs):.2f} ms, "
          f"p99.9 {np.percentile(costs, 99.9):.2f} ms, max {costs.max():.2f} ms; the hop is {hop_ms:.2f} ms "
          f"(max/hop {costs.max() / hop_ms:.2f})")
    streamed = _hop_costs(model, args.hops, mpe=True)
    print(f"  the same with an MPE stream (each voice's bend, y and pressure every hop: 24 voice events a hop): "
          f"median {np.median(streamed):.2f} ms, p99.9 {np.percentile(streamed, 99.9):.2f} ms, "
          f"max {streamed.max():.2f} ms; median streamed/still {np.median(streamed) / np.median(costs):.2f}")
    sc_sum = _spectral_convergence_of_mix(model, 8, 2.0)
    print(f"  spectral convergence vs the summed voice magnitudes (8 voices; lower is better): "
          f"summed stream {sc_sum:.1f} dB")

    print("\ncontrol-to-sound latency in the offline render (event on a hop boundary -> first changed sample)")
    for lookahead in (None, 0):
        r = _latency(model, lookahead)
        label = f"look-ahead {r['lookahead']}" + (" (default)" if lookahead is None else " (low latency)")
        parts = []
        for kind in ("note_on", "param"):
            n, m = r[kind], r[kind + "_20db"]
            parts.append(f"{kind} first change {n} samples = {1000 * n / SR:.2f} ms, within 20 dB of full "
                         f"{m} = {1000 * m / SR:.2f} ms" if n is not None else f"{kind} unchanged")
        floor = r["floor"]
        print(f"  {label}: {'; '.join(parts)}")
        print(f"    events between boundaries wait up to one more block (+{r['hop_out']} samples = "
              f"{1000 * r['hop_out'] / SR:.2f} ms); algorithmic floor: note_on {r['hop_out']} samples = "
              f"{1000 * r['hop_out'] / SR:.2f} ms (one block: its onset is pre-rolled), param {floor} samples = "
              f"{1000 * floor / SR:.2f} ms (look-ahead x hop + one block)")

    if args.no_live:
        return 0
    extra = args.play_args.split()
    if args.no_realtime:
        extra += ["--realtime-priority", "0"]
        _Jack.REALTIME = False
    print("\nlive (play --headless on jackd -d dummy -r 48000 -p 256)")
    try:
        seconds, summary = _startup(extra)
        print(f"  start-up to first non-silent sample: {seconds:.2f} s (target 3 s)" if seconds is not None
              else "  start-up: no sound within 120 s")
        if args.soak_seconds > 0:
            result = _soak(args.soak_seconds, extra)
            low, high, mean = result["load"]
            print(f"  soak {args.soak_seconds:.0f} s, 8 voices, {result['changes']} xy changes (every 10 ms), "
                  f"machine load average {mean:.1f} (from {low:.1f} to {high:.1f}): "
                  f"JACK xruns seen by a passive client {result['jack_client_xruns']}")
            print(f"  engine: {result['summary']}")
            status = result["status"]
            print(f"  scheduling: {result['scheduling']}; engine process: {result['engine_threads']}; "
                  f"audio callback thread {status.get('audio_policy', '?')}, longest render "
                  f"{status.get('render_max_ms', '?')} ms")
            for line in result["stderr"].splitlines():
                if "refused" in line:
                    print(f"  engine said: {line}")
        if args.switch_seconds > 0:
            result = _switches(args.switch_seconds, args.switch_every, extra)
            for name in ("quiet", "switching"):
                r = result[name]
                print(f"  {args.switch_seconds:.0f} s {'with' if r['switches'] else 'without'} model switches "
                      f"({r['switches']}, every {args.switch_every:g} s), load average {r['load']:.1f}: engine xruns "
                      f"{r['xruns']} ({r['underflows']} underflows, {r['late']} late renders), "
                      f"JACK xruns {r['jack_xruns']}; playing {r['model']}")
            print(f"  engine: {result['summary']}")
    except Exception as exc:  # jackd missing or refusing: the offline figures still stand
        print(f"  live figures unavailable: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
