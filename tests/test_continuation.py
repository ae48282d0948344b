"""Continuation model: shapes, streaming == batched, a tiny real training run, deterministic renders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from helpers import MUSIC_SR as SR, TINY_CONTINUATION as TINY, default_input_name as _default_input_name
from helpers import music as _music, seed_frames_from, write_songs as _write_songs
from livegen.server import factory
from livegen.continuation.seeds import seed_frames
from livegen.continuation.source import ContinuationSource, render_continuation
from livegen.continuation.io import is_continuation_model, load_continuation, save_continuation
from livegen.continuation.runtime import ContinuationStream
from livegen.continuation.train import ContinuationTrainConfig
from livegen.continuation.train_entry import maybe_run_continuation
from livegen.engine.events import Event
from livegen.errors import ModelError, ParameterError

def test_step_shapes_and_finite(tiny_model):
    cfg = tiny_model.config
    x = torch.randn(2, 5, cfg.step_dim)
    (logits, mean, log_std), h = tiny_model(x, torch.zeros(2, cfg.latent_dim))
    assert logits.shape == (2, 5, cfg.mixtures)
    assert mean.shape == log_std.shape == (2, 5, cfg.mixtures, cfg.step_dim)
    assert h.shape == (cfg.layers, 2, cfg.hidden)
    stream = ContinuationStream(tiny_model, seed=0)
    frames = stream.run(np.zeros(cfg.latent_dim), 3 * cfg.block + 1)
    assert frames.shape == (3 * cfg.block + 1, cfg.n_bins) and frames.dtype == np.float32
    assert np.isfinite(frames).all() and (frames >= 0).all() and frames.max() > 0
    assert stream.steps == 4


@pytest.mark.slow
def test_streaming_equals_batched(tiny_model):
    """Feeding seed frames one hop at a time leaves the state a batched run over the blocks gives,
    and spreading each GRU step over several hops gives the same frames as running it at once."""
    cfg = tiny_model.config
    logmag = seed_frames_from(_music(1.0, 7))[: 6 * cfg.block]
    z = np.linspace(-0.5, 0.5, cfg.latent_dim).astype(np.float32)
    stream = ContinuationStream(tiny_model, seed=0)
    stream.feed(logmag)
    played = stream.run(z, logmag.shape[0])
    np.testing.assert_allclose(played, np.exp(logmag) - 1e-5, rtol=1e-5, atol=1e-7)  # the seed plays as it is
    coef = torch.from_numpy(stream.analyse(logmag))
    np.testing.assert_allclose(coef.numpy(), tiny_model.analyse(torch.from_numpy(logmag)).clamp(-6, 6).numpy(), atol=1e-4)
    with torch.no_grad():
        _, h_b = tiny_model(coef.reshape(1, -1, cfg.step_dim), torch.from_numpy(z)[None])
    torch.testing.assert_close(torch.stack(stream._h), h_b, rtol=1e-5, atol=1e-5)
    assert stream.steps == 6
    spread, at_once = ContinuationStream(tiny_model, seed=5), ContinuationStream(tiny_model, seed=5)
    works = set()
    for i in range(5 * cfg.block):
        a = spread.next_frame(z)
        if i:  # the very first hop computes the first block at once: there is nothing to play yet
            works.add(spread.last_work)
        b = at_once.next_frame(z)
        at_once.flush()
        np.testing.assert_array_equal(a, b)
    assert {"i", "g", "h"} <= works and all(len(w) <= 1 for w in works - {""})


def test_save_load_roundtrip_and_errors(tmp_path, tiny_model):
    path = save_continuation(tiny_model, tmp_path / "m", card_text="card\n")
    assert is_continuation_model(path) and not is_continuation_model(tmp_path)
    loaded = load_continuation(path)
    a = ContinuationStream(tiny_model, seed=3).run(np.zeros(4), 20)
    b = ContinuationStream(loaded, seed=3).run(np.zeros(4), 20)
    np.testing.assert_array_equal(a, b)
    cfg = json.loads((path / "config.json").read_text())
    cfg["format"] = "livegen-spectral-vae"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="not a continuation model"):
        load_continuation(path)


@pytest.mark.slow
def test_tiny_training_run(tmp_path, capsys):
    _write_songs(tmp_path / "data")
    cfg = ContinuationTrainConfig(steps=6, batch=4, seq_blocks=8, style_frames=64, val_every=3, log_every=3,
                                  val_batches=1, basis_frames=2000, warmup=2, sched_start=2, model=dict(TINY))
    # through `livegen train` itself: the config's kind selects the continuation trainer
    from livegen.cli import main

    config = tmp_path / "cont.json"
    config.write_text(json.dumps(cfg.to_dict()))
    argv = ["train", "--config", str(config), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
            "--cache", str(tmp_path / "cache"), "--no-progress"]
    assert main(argv) == 0
    # the model folder has its card: the data, the exact command, the figures training measured, how to play it
    card = (tmp_path / "run" / "model" / "card.md").read_text()
    out = capsys.readouterr().out
    assert card in out  # printed at the end, as the spectral trainer's card is
    # four songs leave no validation piece: the log says validation uses the training pieces
    assert "continuation: 3 train / no valid pieces (validating on the train pieces)," in out
    command = (f"livegen train --config {config} --data {tmp_path / 'data'} --out {tmp_path / 'run'} "
               f"--cache {tmp_path / 'cache'}")
    assert f"Trained by `{command}`" in card
    assert f"`{(tmp_path / 'data').resolve()}` (gtzan layout)" in card and "genres alpha, beta" in card
    val = load_continuation(tmp_path / "run" / "model").metadata["val_nll"]
    assert f"| validation NLL | NLL {val:.4f} nats per whitened dimension" in card
    assert "| step | train NLL | validation NLL |" in card and "\n| 3 | " in card and "\n| 6 | " in card
    assert f"livegen play --model {tmp_path / 'run' / 'model'} --seed-audio SEED.wav" in card
    summary = load_continuation(tmp_path / "run" / "model").metadata
    assert summary["steps"] == 6 and np.isfinite(summary["val_nll"])
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6] and all(np.isfinite(r["nll"]) for r in rows)
    assert rows[-1]["sched"] > 0  # scheduled sampling switched on
    model = load_continuation(tmp_path / "run" / "model")
    assert model.metadata["trained"] and set(model.family_centroids) <= {"alpha", "beta"}
    assert model.config.genres == ["alpha", "beta"] or set(model.config.genres) <= {"alpha", "beta"}


def test_train_entry_selects_by_kind(tmp_path):
    import argparse

    vae = tmp_path / "vae.json"
    vae.write_text(json.dumps({"steps": 5}))
    assert maybe_run_continuation(argparse.Namespace(config=str(vae))) is None
    assert maybe_run_continuation(argparse.Namespace(config=None)) is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "continuation", "nope": 1}))
    with pytest.raises(ParameterError, match="nope"):
        maybe_run_continuation(argparse.Namespace(config=str(bad), data="x", out="y", device="cpu"))


@pytest.mark.slow
def test_offline_render_is_deterministic_and_continues_the_seed(tmp_path, tiny_model):
    seed_wav = tmp_path / "seed.wav"
    y_seed = _music(1.0, 11)
    sf.write(seed_wav, y_seed, SR, subtype="FLOAT")
    events = [Event(t=0.0, type="param", name="drift", value=0.5), Event(t=1.2, type="param", name="x", value=0.8)]
    kw = dict(model=tiny_model, samplerate=SR, seconds=2.0, seed_audio=seed_wav)
    a, engine = render_continuation(events, seed=1, **kw)
    b, _ = render_continuation(events, seed=1, **kw)
    c, _ = render_continuation(events, seed=2, **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.isfinite(a).all() and engine.status()["nan"] == 0
    n_seed = seed_frames(seed_wav, sample_rate=SR, n_fft=1024, hop=128).shape[0]
    assert engine.find(ContinuationSource).stream.seeded_hops == n_seed
    # the seeded first second is the same whatever the generation seed
    np.testing.assert_array_equal(a[: n_seed * 128 // 2], c[: n_seed * 128 // 2])
    after = a[n_seed * 128 + 4096:]
    assert np.sqrt(np.mean(after ** 2)) > 1e-4  # the model goes on sounding after the seed
    with pytest.raises(ParameterError, match="too short"):
        sf.write(tmp_path / "short.wav", y_seed[:500], SR)
        seed_frames(tmp_path / "short.wav", sample_rate=SR, n_fft=1024, hop=128)


def test_live_input_follower_drives_the_stream(tiny_model):
    from livegen.continuation.live_input import InputFollower

    y = _music(1.0, 21)
    stream_a = ContinuationStream(tiny_model, seed=4)
    follower = InputFollower(stream_a, device_rate=48000)
    import soxr

    y48 = soxr.resample(y, SR, 48000)
    heard = sum(follower.push(y48[i:i + 256]) for i in range(0, len(y48), 256))
    assert heard == follower.frames and 150 <= heard <= 1 + (len(y) - 1024) // 128  # soxr holds a few ms back
    z = follower.style_z()
    assert z is not None and z.shape == (tiny_model.config.latent_dim,) and np.isfinite(z).all()
    out_a = stream_a.run(z, 2 * tiny_model.config.block)
    out_b = ContinuationStream(tiny_model, seed=4).run(z, 2 * tiny_model.config.block)
    assert np.isfinite(out_a).all() and not np.array_equal(out_a, out_b)  # what it heard changed what it plays


def test_bundled_model_loads_and_streams():
    from livegen.continuation.io import default_continuation_path

    path = default_continuation_path()
    assert is_continuation_model(path), f"{path} should hold the bundled continuation model"
    model = load_continuation(path)
    assert model.metadata["trained"] and model.config.latent_dim >= 2
    assert sum(f.stat().st_size for f in path.iterdir()) < 10 * 2 ** 20
    frames = ContinuationStream(model, seed=0).run(model.xy_to_z([0.5, 0.5]).numpy(), 3 * model.config.block)
    assert np.isfinite(frames).all() and frames.max() > 0


def test_render_cli_entry_and_play_builder(tmp_path, tiny_model):
    from livegen.cli import main
    from livegen.errors import LivegenError

    model_dir = save_continuation(tiny_model, tmp_path / "m")
    events = tmp_path / "ev.jsonl"
    events.write_text('{"t": 0.0, "type": "param", "name": "drift", "value": 0.2}\n')
    seed = tmp_path / "seed.wav"
    sf.write(seed, _music(0.5, 3), SR)
    outs = []
    for name in ("a.wav", "b.wav"):
        assert main(["render", str(events), "--model", str(model_dir), "--seed-audio", str(seed), "--seconds", "1",
                     "--samplerate", "24000", "-o", str(tmp_path / name)]) == 0
        outs.append(sf.read(tmp_path / name)[0])
    np.testing.assert_array_equal(*outs)
    assert main(["render", str(events), "--model", str(tmp_path), "--seed-audio", str(seed), "-o", str(tmp_path / "c.wav")]) == 2
    with pytest.raises(LivegenError):
        factory.load(str(tmp_path), log=lambda text: None)
    engine = factory.load(str(model_dir), seed_audio=seed, log=lambda text: None).engine(samplerate=24000, seed=0)
    assert engine.find(ContinuationSource).stream.seeding and engine.step().shape[0] == 128


def test_engine_parameters_steer_the_stream(tmp_path, tiny_model):
    seed_wav = tmp_path / "seed.wav"
    sf.write(seed_wav, _music(0.5, 12), SR)
    events = [Event(t=0.0, type="param", name="temperature", value=0.0),
              Event(t=0.8, type="param", name="return", value=1),
              Event(t=0.9, type="param", name="x", value=0.9)]
    y, engine = render_continuation(events, model=tiny_model, samplerate=SR, seconds=1.2, seed=0, seed_audio=seed_wav)
    assert engine.find(ContinuationSource).stream.temperature == 0.0 and engine.params.get("return") == 1
    assert {"temperature", "follow", "return", "drift", "x", "z0"} <= set(engine.params.names)
    assert engine.rejected == 0 and np.isfinite(y).all()
    greedy, _ = render_continuation(events[:1], model=tiny_model, samplerate=SR, seconds=1.2, seed=0, seed_audio=seed_wav)
    with_return, _ = render_continuation(events[:2], model=tiny_model, samplerate=SR, seconds=1.2, seed=0, seed_audio=seed_wav)
    cut = int(0.8 * SR)
    np.testing.assert_array_equal(greedy[:cut], with_return[:cut])
    assert not np.array_equal(greedy[cut:], with_return[cut:])  # the return trigger went back to the seed's end


def test_trajectory_loops_through_presets():
    from livegen.continuation.trajectory import loop_events

    presets = [{"x": 0.0, "y": 0.0, "drift": 0.1}, {"x": 1.0, "y": 0.5}]
    events = loop_events(presets, seconds_per_leg=1.0, total_seconds=4.0, rate=4.0)
    xs = {e.t: e.value for e in events if e.name == "x"}
    assert {e.name for e in events} == {"x", "y"}
    assert xs[0.0] == 0.0 and xs[1.0] == 1.0 and xs[2.0] == 0.0 and xs[3.0] == 1.0 and xs[0.5] == pytest.approx(0.5)
    with pytest.raises(ParameterError):
        loop_events(presets[:1], seconds_per_leg=1.0, total_seconds=1.0)


def test_live_input_from_a_real_jack_input(jack_server, tmp_path, tiny_model):
    """A sounddevice input stream on jackd dummy feeds the engine's stream as it plays."""
    import subprocess
    import sys

    model_dir = save_continuation(tiny_model, tmp_path / "m")
    script = f"""
import time
from livegen.continuation.io import load_continuation
from livegen.audio.input import LiveInput
from livegen.continuation.source import continuation_engine
live = LiveInput(samplerate=48000).start()
engine = continuation_engine(load_continuation({str(model_dir)!r}), samplerate=24000, seed=0, live_input=live)
end = time.monotonic() + 60  # steps paced by the input's arrival, until the stream heard enough of it
while time.monotonic() < end and not (live.frames > 50 and live.callbacks > 10):
    engine.step()
    time.sleep(0.002)
live.close()
print("frames", live.frames, "callbacks", live.callbacks, "overflows", live.overflows)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=jack_server.env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    words = proc.stdout.split()
    frames, callbacks = int(words[words.index("frames") + 1]), int(words[words.index("callbacks") + 1])
    assert callbacks > 10 and frames > 50


def test_session_log_renders_from_its_start_for_its_length(tmp_path, tiny_model):
    """A log recorded mid-performance (`start_sample`, a WAV beside it) renders the WAV's span:
    the same samples a render from sample 0 has there, and the WAV's length."""
    from livegen.cli import main
    from livegen.engine.events import write_events

    model_dir = save_continuation(tiny_model, tmp_path / "m")
    events = [Event(t=0.0, type="param", name="drift", value=0.4, sample=0),
              Event(t=0.3, type="param", name="x", value=0.9, sample=7200)]
    start, frames = 9600, 12000
    sf.write(tmp_path / "take.wav", np.zeros(frames, np.float32), SR)
    header = {"model_dir": str(model_dir), "samplerate": SR, "seed": 3, "start_sample": start, "wav": "take.wav"}
    write_events(tmp_path / "take.jsonl", events, header=header)
    assert main(["render", str(tmp_path / "take.jsonl"), "-o", str(tmp_path / "out.wav")]) == 0
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == SR and len(y) == frames
    full, _ = render_continuation(events, model=load_continuation(model_dir), samplerate=SR,
                                  seconds=(start + frames) / SR, seed=3)
    np.testing.assert_array_equal(y, full[start:])
    assert np.abs(y).max() > 0


def test_play_input_device_follows_a_real_jack_input(jack_server, live_play, tmp_path, tiny_model):
    """`play --headless --input-device NAME` with a continuation model hears the input while it plays;
    a spectral model (here the random one) takes it too: the input plays a voice of it."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    model_dir = save_continuation(tiny_model, tmp_path / "m")
    name = _default_input_name(jack_server.env)
    play = live_play("--no-midi", "--model", str(model_dir), "--input-device", name)
    play.wait_status(lambda pairs: pairs.get("input_frames", 0) > 50, 60, "more than 50 input frames heard")
    assert play.stop(60) == 0, play.log
    log = play.log
    words = log[log.index("frames heard") - 40:].split()
    heard = int(words[words.index("frames") - 1])
    assert f"live input: {name!r}" in log and heard > 50, log[-3000:]
    line = log[log.index("live input: "):].splitlines()[0]
    assert "own JACK client" in line and "output stream" not in line, line  # a port of the server's client
    base = [sys.executable, "-m", "livegen", "play", "--headless", "--osc-port", "0", "--no-midi", "--nice", "0"]
    proc = subprocess.run([*base, "--model", "random", "--input-device", name, "--duration", "1"], cwd=repo,
                          env=jack_server.env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and "livegen-audio:input" in proc.stderr, proc.stderr[-3000:]


def test_rebuilt_play_argv_keeps_the_input_device():
    import argparse

    from livegen.cli.play import _rebuild_argv, add_parser

    sub = argparse.ArgumentParser().add_subparsers()
    args = add_parser(sub).parse_args(["--input-device", "system", "--model", "models/continuation"])
    argv = _rebuild_argv(args)
    assert argv[argv.index("--input-device") + 1] == "system"


@pytest.mark.slow
def test_seeded_session_log_rerenders_with_its_seed_audio(tmp_path, tiny_model, capfd):
    """A recorded session with --seed-audio names the file (path + sha256) in its log header;
    `render` of the log alone then uses it and gives the recorded samples; a changed or missing
    file is warned about."""
    import argparse

    from livegen.cli import main
    from livegen.engine.events import read_events
    from livegen.app.play import _attach_session

    model_dir = save_continuation(tiny_model, tmp_path / "m")
    seed_wav = tmp_path / "seed.wav"
    sf.write(seed_wav, _music(0.6, 31), SR, subtype="FLOAT")
    engine = factory.load(str(model_dir), seed_audio=seed_wav, temperature=0.4).engine(samplerate=SR, seed=5)
    args = argparse.Namespace(record=str(tmp_path / "rec"), record_dir=str(tmp_path / "rec"), record_format="FLOAT")
    session = _attach_session(engine, args, model_name=str(model_dir), blocksize=None)
    engine.post(Event(t=0.0, type="param", name="drift", value=0.5, source="test"))
    while engine.samples_out < int(1.2 * SR):
        engine.step()
    session.record(False)
    engine.step()
    session.close()
    (log,) = (tmp_path / "rec").glob("*.jsonl")
    header, _ = read_events(log, tolerate_truncation=True)
    assert header["seed_audio"] == str(seed_wav.resolve()) and len(header["seed_audio_sha256"]) == 64
    assert header["temperature"] == pytest.approx(0.4)
    recorded, _ = sf.read(log.with_name(header["wav"]), dtype="float32")
    assert len(recorded) > SR

    assert main(["render", str(log), "-o", str(tmp_path / "again.wav")]) == 0
    again, _ = sf.read(tmp_path / "again.wav", dtype="float32")
    np.testing.assert_array_equal(again, recorded)
    assert "warning" not in capfd.readouterr().err

    sf.write(seed_wav, _music(0.6, 32), SR, subtype="FLOAT")  # another file under the recorded name
    assert main(["render", str(log), "-o", str(tmp_path / "changed.wav")]) == 0
    assert "is not the seed audio this log was played with" in capfd.readouterr().err
    seed_wav.unlink()
    assert main(["render", str(log), "-o", str(tmp_path / "missing.wav")]) == 0
    err = capfd.readouterr().err
    assert "seed audio" in err and "missing" in err
    assert not np.array_equal(sf.read(tmp_path / "missing.wav", dtype="float32")[0], recorded)
