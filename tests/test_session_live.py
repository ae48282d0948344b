"""A session played live on `jackd -d dummy`, driven over OSC (python-osc and liblo's oscsend) and
JACK MIDI, recorded, stopped, then re-rendered offline from its log: sample for sample."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from pathlib import Path

import numpy as np
import soundfile

from livegen.engine.events import read_events
from conftest import REPO, require, require_binary
from helpers import jack_midi_out, listen, status_of, take_rendered_again, wait_for, wait_played

# The engine server's live stack (as `livegen play --headless` builds it) with recording attached.
_SERVER = textwrap.dedent("""
    import argparse, signal, sys, threading, time
    from livegen.server.client import RemoteEngine, SoundServer
    from livegen.control.osc import OscServer
    from livegen.session.options import add_session_arguments
    from livegen.session.wiring import attach_session

    parser = argparse.ArgumentParser()
    add_session_arguments(parser)
    parser.add_argument("--midi", action="store_true")
    parser.add_argument("--stall", type=float, default=0.0)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(sys.argv[1:])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine = RemoteEngine({"samplerate": 48000, "blocksize": 256}, {"model": None, "seed": 9, "device": "cpu"})
    engine.wait_ready()
    live = SoundServer(engine)
    session = attach_session(engine, args, model_name="models/default", log=lambda text: print(text, flush=True))
    osc = OscServer(live, port=0).start()
    trace = []
    if args.trace:  # after the session's listener: (sample, value asked, recording flag after)
        engine.add_listener(lambda e: trace.append((e.sample, int(e.value), int(engine.recording)))
                            if e.type == "record" else None)
    marks = {}
    if args.stall:
        # A disk that stops answering for `stall` seconds at the recorder's third write.
        from livegen.session.recorder import SessionRecorder
        write = SessionRecorder._write_frames
        def stalling(self, frames):
            self._writes = getattr(self, "_writes", 0) + 1
            if self._writes == 3:
                marks["before"] = (engine.samples_out, engine.status()["callbacks"])
                time.sleep(args.stall)
                marks["after"] = (engine.samples_out, engine.status()["callbacks"])
            write(self, frames)
        SessionRecorder._write_frames = stalling
    midi = None
    if args.midi:
        import rtmidi
        from livegen.control.midi import MidiInput
        midi = MidiInput(live, api=rtmidi.API_UNIX_JACK, map_path=args.record_dir + "/map.toml").start()
    engine.start()
    print("osc", osc.port, flush=True)
    while not stop.wait(0.05):
        pass
    osc.stop()
    if midi is not None:
        midi.stop()
    xruns = live.status()["xruns"]
    live.stop(fade=False)
    session.close()
    print("recordings", " ".join(str(r.path) for r in session.recordings), flush=True)
    print("xruns", xruns, flush=True)
    print("dropped", sum(r.dropped for r in session.recordings), flush=True)
    print("stall", *marks.get("before", (0, 0)), *marks.get("after", (0, 0)), flush=True)
    print("trace", *(":".join(map(str, item)) for item in trace), flush=True)
""")


def test_live_session_rerenders_sample_for_sample(jack_server, tmp_path):
    from pythonosc.udp_client import SimpleUDPClient

    oscsend = require_binary("oscsend")
    import rtmidi

    require(rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api(), "python-rtmidi built with JACK support")
    server = subprocess.Popen([sys.executable, "-c", _SERVER, "--record-dir", str(tmp_path), "--midi", "--stall", "1.5"],
                              cwd=REPO, env=jack_server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("osc "), line + server.stderr.read()
        port = int(line.split()[1])
        osc = SimpleUDPClient("127.0.0.1", port)
        midi = jack_midi_out("sessionctl")
        # the events spaced on the engine's clock (the music's time), whatever the machine's load
        osc.send_message("/livegen/param/x", 0.3)
        wait_played(osc, 0.5)
        osc.send_message("/livegen/record", 1)  # recording starts mid-performance
        wait_played(osc, 0.3)
        osc.send_message("/livegen/note", [60, 100])
        wait_played(osc, 0.2)
        subprocess.run([oscsend, "localhost", str(port), "/livegen/z/0", "f", "1.5"], check=True)
        midi.send_message([0x90, 67, 90])  # note on
        midi.send_message([0xB0, 70, 20])  # CC 70 -> z0 in the default map (soft takeover may hold it)
        wait_played(osc, 0.3)
        osc.send_message("/livegen/xy", [0.8, 0.1])
        midi.send_message([0x80, 67, 0])
        wait_played(osc, 0.2)
        osc.send_message("/livegen/note", [60, 0])
        wait_played(osc, 0.3)
        osc.send_message("/livegen/record", 0)
        wait_for(lambda: status_of(osc).get("recording") == 0, 30, "the recording to stop")
        midi.delete()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert "recording to" in out and "recorded" in out, out
    paths = [line.split()[1:] for line in out.splitlines() if line.startswith("recordings")][0]
    assert len(paths) == 1
    wav = paths[0]
    # The disk stalled 1.5 s mid-recording: meanwhile the engine kept producing and the device kept
    # being fed (the engine thread never waits for the disk), and the ring absorbed it all.
    stall = [int(v) for v in [line for line in out.splitlines() if line.startswith("stall")][0].split()[1:]]
    made_before, played_before, made_after, played_after = stall
    print("server said:", out, "stall (samples made, samples played) before/after:", stall)
    assert made_after > made_before and played_after > played_before, stall
    assert "dropped 0" in out
    audio, rate = soundfile.read(wav, dtype="float32")
    header, events = read_events(wav[:-4] + ".jsonl")
    assert {"param", "note_on", "note_off"} <= {e.type for e in events}
    assert any(e.type == "note_on" and e.pitch == 67 for e in events)  # the MIDI note made it into the log
    assert header["start_sample"] > 0 and rate == 48000
    assert 0.8 < len(audio) / rate < 3.0
    assert np.abs(audio).max() > 1e-3

    from livegen.session.render import render_events
    from livegen.engine.setup import load_engine_model

    model, _ = load_engine_model(header.get("model_dir"), log=lambda text: None)
    start = header["start_sample"]
    again, _ = render_events(events, model=model, samplerate=rate, seed=header["seed"],
                             lookahead=header["lookahead"], seconds=(start + len(audio)) / rate)
    diff = np.abs(again[start:start + len(audio)] - audio).max()
    print(f"recorded {len(audio)} samples from sample {start}; re-render max abs diff {diff}")
    assert diff <= 1e-6, f"max abs difference {diff}"


def test_play_record_then_livegen_render_matches(live_play, tmp_path):
    """`livegen play --record DIR` (the real command), OSC events, stop, `livegen render` the log."""
    takes = tmp_path / "takes"
    play = live_play("--record", str(takes), "--samplerate", "48000", "--seed", "4")
    for address, args in [("/livegen/note", [62, 110]), ("/livegen/param/drift", 0.7), ("/livegen/xy", [0.1, 0.9]),
                          ("/livegen/note", [62, 0]), ("/livegen/param/gain", -3.0)]:
        play.played(0.3)
        play.client.send_message(address, args)
    play.played(0.3)
    assert play.stop(60) == 0, play.log
    (wav,) = takes.glob("*.wav")
    recorded, rate = soundfile.read(wav, dtype="float32")
    header, events = read_events(wav.with_suffix(".jsonl"))
    assert header["start_sample"] == 0 and header["seed"] == 4
    assert [e.type for e in events].count("param") >= 3 and len(recorded) > rate
    again_path = tmp_path / "again.wav"
    done = subprocess.run([sys.executable, "-m", "livegen", "render", str(wav.with_suffix(".jsonl")),
                           "-o", str(again_path), "--seconds", str(len(recorded) / rate)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    again, _ = soundfile.read(again_path, dtype="float32")
    assert len(again) == len(recorded)
    diff = np.abs(again - recorded).max()
    print(f"recorded {len(recorded)} samples; livegen render max abs diff {diff}")
    assert diff <= 1e-6, f"max abs difference {diff}"


def test_play_recording_started_mid_performance_renders_back(live_play, tmp_path):
    """`livegen play --headless`, events over OSC, `/livegen/record 1` mid-performance, more events,
    `/livegen/record 0`; then `livegen render LOG` alone (no --seconds) reproduces the WAV."""
    takes = tmp_path / "takes"
    play = live_play("--no-midi", "--record-dir", str(takes), "--samplerate", "48000", "--seed", "5")
    for address, args in [("/livegen/note", [57, 100]), ("/livegen/param/drift", 0.6), ("/livegen/record", 1),
                          ("/livegen/xy", [0.8, 0.2]), ("/livegen/note", [64, 90]), ("/livegen/note", [57, 0]),
                          ("/livegen/param/gain", -4.0), ("/livegen/record", 0)]:
        play.played(0.3)
        play.client.send_message(address, args)
    play.wait_status(lambda pairs: pairs["recording"] == 0 and pairs.get("record_file") == "", 30,
                     "the take to be finished")
    assert play.stop(60) == 0, play.log
    (wav,) = takes.glob("*.wav")
    recorded, rate = soundfile.read(wav, dtype="float32")
    log = wav.with_suffix(".jsonl")
    header, events = read_events(log)
    assert header["start_sample"] > 0, header
    assert any(e.type == "note_on" and e.sample < header["start_sample"] for e in events)
    again_path = tmp_path / "again.wav"
    done = subprocess.run([sys.executable, "-m", "livegen", "render", str(log), "-o", str(again_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    again, again_rate = soundfile.read(again_path, dtype="float32")
    assert again_rate == rate and len(again) == len(recorded), (len(again), len(recorded))
    diff = np.abs(again - recorded).max()
    print(f"recorded {len(recorded)} samples from sample {header['start_sample']}; livegen render max abs diff {diff}")
    assert diff <= 1e-6, f"max abs difference {diff}"


def test_record_toggles_hammered_over_udp_leave_every_take_whole(jack_server, tmp_path):
    """`/livegen/record 1`, `0`, `1`, ... back to back and at random short gaps over real UDP to the
    engine server on jackd dummy: every start the engine applied gives one WAV + log, closed,
    starting at the start's sample and exactly as long as until its stop, or (a start and stop in
    one block, or more starts than armed recorders) a message saying so and no file; the recording
    flag ends off and nothing is left open."""
    import random

    from pythonosc.udp_client import SimpleUDPClient

    soxi = require_binary("soxi")
    server = subprocess.Popen([sys.executable, "-c", _SERVER, "--record-dir", str(tmp_path), "--trace"],
                              cwd=REPO, env=jack_server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("osc "), line + server.stderr.read()
        osc = SimpleUDPClient("127.0.0.1", int(line.split()[1]))
        osc.send_message("/livegen/note", [60, 100])
        wait_played(osc, 0.3)
        rng = random.Random(7)
        for i in range(80):
            osc.send_message("/livegen/record", (i + 1) % 2)
            gap = rng.choice([0, 0, 0, 0.001, 0.004, 0.02, 0.15])
            if gap:
                time.sleep(gap)
        osc.send_message("/livegen/record", 0)
        # the control thread finishes the last files: no take open any more
        wait_for(lambda: (lambda pairs: pairs.get("recording") == 0 and pairs.get("record_file") == "")(status_of(osc)),
                 30, "the last take to be finished")
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=120)
    assert server.returncode == 0, err
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    trace = [tuple(map(int, item.split(":"))) for item in lines["trace"]]
    assert len(trace) == 81
    spans, refused, on = [], 0, False
    for sample, asked, flag in trace:
        if flag and not on:
            start = sample
        elif on and not flag:
            spans.append((start, sample))
        elif asked and not on and not flag:
            refused += 1
        on = bool(flag)
    assert not on, "the recording flag must end off"
    print(f"{len(spans)} starts ({sum(1 for a, b in spans if a == b)} stopped in the same block), {refused} refused; "
          f"frames {[b - a for a, b in spans]}")
    assert out.count("no recorder is armed yet") == refused
    assert sum(1 for a, b in spans if b > a) >= 5, spans
    paths = [Path(p) for p in lines["recordings"]]
    assert len(paths) == len(list(tmp_path.glob("*.wav"))) == len(list(tmp_path.glob("*.jsonl")))
    assert out.count("recorded ") == len(paths)  # every take was stopped and finished cleanly
    # Takes in start order; a start and stop in one block either made no file (and said so) or,
    # when the control thread had opened it already, an empty one.
    taken, unmade = 0, 0
    for start, stop in spans:
        header, events = (read_events(paths[taken].with_suffix(".jsonl"))  # strict: every line whole
                          if taken < len(paths) else ({}, []))
        info = soundfile.info(str(paths[taken])) if taken < len(paths) else None
        if header.get("start_sample") != start or info.frames != stop - start:
            assert stop == start, f"the take {start}..{stop} has no file"
            unmade += 1
            continue
        path = paths[taken]
        taken += 1
        assert info.samplerate == 48000
        assert int(subprocess.run([soxi, "-s", str(path)], capture_output=True, text=True, check=True).stdout) \
            == info.frames
        assert header["wav"] == path.name
        assert [e.sample for e in events] == sorted(e.sample for e in events)
        assert any(e.type == "note_on" for e in events)  # the journal from before the start
    assert taken == len(paths)
    assert out.count("nothing recorded") == unmade
    longest = max(paths, key=lambda path: soundfile.info(str(path)).frames)
    assert np.abs(soundfile.read(str(longest), dtype="float32")[0]).max() > 1e-3
    # Each take (recorders armed again after a same-block stop among them) re-renders from its log.
    from livegen.session.render import render_events
    from livegen.engine.setup import load_engine_model

    model, _ = load_engine_model(None, log=lambda text: None)
    for path in paths:
        audio, rate = soundfile.read(str(path), dtype="float32")
        if not len(audio):
            continue
        header, events = read_events(path.with_suffix(".jsonl"))
        start = header["start_sample"]
        again, _ = render_events(events, model=model, samplerate=rate, seed=header["seed"],
                                 lookahead=header["lookahead"], seconds=(start + len(audio)) / rate)
        assert np.abs(again[start:start + len(audio)] - audio).max() <= 1e-6, path


def test_a_take_that_hits_the_file_size_limit_stops_alone_and_says_so(live_play, tmp_path):
    """The disk fills up mid-take (here the file-size limit, set on the running play with
    prlimit): the music plays on, the performer is told over OSC and in the status, and what was
    written is a valid WAV whose log `livegen render` renders to the same samples."""
    prlimit = require_binary("prlimit")
    takes = tmp_path / "takes"
    play = live_play("--record-dir", str(takes), "--model", "random", "--no-midi")
    watcher = play.subscriber()
    play.send("/livegen/note", 60, 100)
    play.send("/livegen/record", 1)
    play.wait_status(lambda s: s.get("record_bytes", 0) > 100_000, 30, "a take on disk")
    (wav,) = takes.glob("*.wav")
    subprocess.run([prlimit, f"--pid={play.process.pid}", f"--fsize={wav.stat().st_size + 100_000}"], check=True)
    heard = listen(watcher, lambda address, args: address == "/livegen/error", 60)
    assert heard and heard[-1][0] == "/livegen/error", heard
    message = heard[-1][1][0]
    assert "recording stopped: file too large" in message and wav.name in message and "kept" in message, message
    status = play.wait_status(lambda s: not s.get("recording"), 20, "the take stopped")
    assert status["record_error"] == message
    play.played(0.5)  # the music goes on
    assert play.stop(60) == 0, play.log
    recorded, again = take_rendered_again(wav)
    assert len(recorded) > 48000 and np.array_equal(recorded, again)
