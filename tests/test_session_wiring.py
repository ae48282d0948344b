"""Recording wired to the real engine on its virtual clock: record events, exact re-render, errors."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from livegen.engine.events import Event, note_off, note_on, param, read_events
from conftest import REPO
from helpers import wait_for


@pytest.fixture(scope="module")
def model():
    import torch

    from livegen.engine.setup import load_engine_model

    torch.set_num_threads(1)
    model, name = load_engine_model(None, log=lambda text: None)
    return model, name


def _engine(model, seed=5):
    from livegen.engine.notes import spectral_engine

    return spectral_engine(model[0], samplerate=48000, seed=seed)


def _rerender(log_path, model, *, frames):
    """Render a session log from sample 0 and cut out the recorded span."""
    from livegen.session.render import render_events

    header, events = read_events(log_path, tolerate_truncation=True)
    start = header["start_sample"]
    y, _ = render_events(events, model=model[0], samplerate=header["samplerate"], seed=header["seed"],
                         lookahead=header["lookahead"], seconds=(start + frames) / header["samplerate"])
    return y[start:start + frames]


def _play(engine, seconds):
    """Step the engine for `seconds` of output, keeping every sample (as the live decoder does)."""
    blocks, target = [], engine.samples_out + int(seconds * engine.samplerate)
    while engine.samples_out < target:
        blocks.append(engine.step().copy())
    return np.concatenate(blocks)


PERFORMANCE = [
    param("x", 0.2, t=0.1), note_on(60, 100, t=0.25), Event("record", t=0.4, value=1),
    param("z0", 1.5, t=0.55), note_on(67, 80, t=0.6), note_off(60, t=0.8), Event("record", t=0.9, value=0),
    param("drift", 0.5, t=1.0), Event("record", t=1.1, value=1), param("gain", -12, t=1.2),
    note_off(67, t=1.3), Event("record", t=1.45, value=0),
]


def test_recordings_started_mid_session_rerender_exactly(model, tmp_path, monkeypatch):
    from livegen.session import wiring
    from livegen.session.wiring import SessionControl, engine_header

    monkeypatch.setattr(wiring, "JOURNAL_CHUNK", 2)  # the journal of earlier events goes through compression

    engine = _engine(model)
    errors = []
    session = SessionControl(engine, directory=tmp_path, header=engine_header(engine, model_name=model[1]),
                             on_error=errors.append).attach()
    engine.schedule(PERFORMANCE)
    # A control thread re-arms the next recorder after a take stops; the live decoder gives it
    # real time, the virtual clock must wait for it before the second record event.
    wait_for(lambda: session._armed is not None)
    live = [_play(engine, 1.0)]
    wait_for(lambda: session._armed is not None)
    live.append(_play(engine, 0.6))
    live = np.concatenate(live)
    session.close()
    assert errors == []
    assert len(session.recordings) == 2
    for rec, (on, off) in zip(session.recordings, [(0.4, 0.9), (1.1, 1.45)]):
        header, events = read_events(rec.log_path)
        start = header["start_sample"]
        audio, rate = soundfile.read(rec.path, dtype="float32")
        assert rate == 48000 and rec.dropped == 0
        # The recording is exactly the engine's output from the record event's block to the stop's.
        # (within one output block: the engine applies events at block boundaries)
        assert on * 48000 <= start < (on + 0.05) * 48000
        assert off * 48000 <= start + len(audio) < (off + 0.05) * 48000
        assert np.array_equal(audio, live[start:start + len(audio)])
        assert np.abs(audio).max() > 1e-3
        # The log holds everything applied since the engine started, stamped; no record events.
        assert all(e.type != "record" for e in events)
        assert [e.sample for e in events] == sorted(e.sample for e in events)
        assert header["seed"] == 5 and header["samplerate"] == 48000 and header["wav"] == rec.path.name
        again = _rerender(rec.log_path, model, frames=len(audio))
        assert np.abs(again - audio).max() <= 1e-6


@pytest.mark.slow
def test_record_from_the_start_renders_with_the_cli(model, tmp_path):
    from livegen.session.wiring import attach_session

    engine = _engine(model, seed=11)
    args = argparse.Namespace(record=str(tmp_path / "takes"), record_dir=None, record_format="FLOAT")
    session = attach_session(engine, args, model_name=model[1])
    engine.schedule([param("y", 0.8, t=0.1), note_on(64, 90, t=0.2), param("z1", 1.0, t=0.5), note_off(64, t=0.7)])
    engine.render(1.0)
    session.close()
    (rec,) = session.recordings
    assert rec.path.parent == tmp_path / "takes"
    header, _ = read_events(rec.log_path)
    assert header["start_sample"] == 0
    recorded, _ = soundfile.read(rec.path, dtype="float32")
    assert len(recorded) == engine.samples_out

    out = tmp_path / "again.wav"
    done = subprocess.run([sys.executable, "-m", "livegen", "render", str(rec.log_path), "-o", str(out),
                           "--seconds", str(len(recorded) / 48000)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    again, _ = soundfile.read(out, dtype="float32")
    assert len(again) == len(recorded)
    assert np.abs(again - recorded).max() <= 1e-6

    # A crash cut the log's last line: the render warns and stops short of that event.
    lines = rec.log_path.read_text().splitlines(keepends=True)
    cut_at = read_events(rec.log_path)[1][-1].sample
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:-1]) + lines[-1][:20])
    out = tmp_path / "cut.wav"
    done = subprocess.run([sys.executable, "-m", "livegen", "render", str(cut), "-o", str(out),
                           "--seconds", str(len(recorded) / 48000)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "incomplete" in done.stderr
    partial, _ = soundfile.read(out, dtype="float32")
    assert np.abs(partial[:cut_at] - recorded[:cut_at]).max() <= 1e-6
    assert np.abs(partial[cut_at:] - recorded[cut_at:]).max() > 1e-4  # the lost note-off is audible


def test_unwritable_record_dir_is_reported_and_play_goes_on(model, tmp_path):
    from livegen.session.wiring import SessionControl, engine_header

    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    engine = _engine(model)
    errors = []
    session = SessionControl(engine, directory=not_a_dir, header=engine_header(engine), on_error=errors.append).attach()
    engine.schedule([Event("record", t=0.05, value=1)])
    engine.render(0.2)
    wait_for(lambda: errors)
    assert "cannot create a recording" in errors[0] and "--record-dir" in errors[0]
    wait_for(lambda: (_play(engine, 0.05) is not None) and not engine.recording)
    assert session.recorder is None
    session.close()  # its control thread handles every request before it ends
    # The stop that ended the failed take is no "stopped in the block it started": the reason stays shown.
    assert errors == [errors[0]] and session.last_error == errors[0], errors


def test_full_disk_mid_recording_keeps_the_engine_and_the_file(model, tmpfs):
    from livegen.session.wiring import SessionControl, engine_header

    mount = tmpfs("128k")
    if mount is None:
        return  # this process may not mount: the test ran and passed in a namespace of its own
    engine = _engine(model)
    errors = []
    session = SessionControl(engine, directory=mount, header=engine_header(engine), on_error=errors.append).attach()
    engine.schedule([note_on(60, 100, t=0.0), Event("record", t=0.0, value=1)])
    live = [_play(engine, 0.3)]
    while not errors:  # 128 KiB hold ~0.7 s of mono float: the disk fills while we play on
        live.append(_play(engine, 0.1))
        assert len(live) < 100
    wait_for(lambda: (live.append(_play(engine, 0.05)) is None) and not engine.recording)
    live = np.concatenate(live)
    session.close()
    assert "no space" in errors[0] and "file so far is kept" in errors[0]
    (rec,) = session.recordings
    audio, _ = soundfile.read(rec.path, dtype="float32")
    assert 0 < len(audio) < len(live)
    assert np.array_equal(audio, live[:len(audio)])
    assert np.abs(live[-4800:]).max() > 1e-3  # still playing


def test_replay_plan_at_the_same_and_at_another_rate(model, tmp_path):
    import soxr

    from livegen.session.render import render_events
    from livegen.session.replay import plan_replay
    from livegen.session.wiring import SessionControl, engine_header

    engine = _engine(model)
    session = SessionControl(engine, directory=tmp_path, header=engine_header(engine)).attach()
    engine.schedule([param("x", 0.2, t=0.1), note_on(60, 100, t=0.25), Event("record", t=0.4, value=1),
                     param("z0", 1.5, t=0.55), note_off(60, t=0.8), Event("record", t=1.0, value=0)])
    _play(engine, 1.1)
    session.close()
    (rec,) = session.recordings
    recorded, _ = soundfile.read(rec.path, dtype="float32")
    header, events = read_events(rec.log_path)

    same, skip, frames = plan_replay(header, events, samplerate=48000, log_path=rec.log_path)
    assert (skip, frames) == (header["start_sample"], len(recorded))
    assert [e.sample for e in same] == [e.sample for e in events]
    y, _ = render_events(same, model=model[0], samplerate=48000, seed=header["seed"], seconds=(skip + frames) / 48000)
    assert np.abs(y[skip:skip + frames] - recorded).max() <= 1e-6

    # Twice the rate: the same hop boundaries, twice the samples, and the same music.
    double, skip2, frames2 = plan_replay(header, events, samplerate=96000, log_path=rec.log_path)
    assert (skip2, frames2) == (2 * skip, 2 * frames)
    assert [e.sample for e in double] == [2 * e.sample for e in events]
    y2, _ = render_events(double, model=model[0], samplerate=96000, seed=header["seed"],
                          seconds=(skip2 + frames2) / 96000)
    back = soxr.resample(y2[skip2:skip2 + frames2], 96000, 48000)
    error = recorded - back[:len(recorded)]
    assert 10 * np.log10(np.sum(recorded ** 2) / np.sum(error ** 2)) > 10.0

    rec.path.unlink()  # a log whose WAV is gone still plans; the length is unknown
    assert plan_replay(header, events, samplerate=48000, log_path=rec.log_path)[2] is None


def _offset(y, reference, width=2000):
    """Samples by which `y` lags `reference` (cross-correlation peak, parabolic interpolation)."""
    m = min(len(y), len(reference))
    corr = np.fft.irfft(np.fft.rfft(y[:m], 2 * m) * np.conj(np.fft.rfft(reference[:m], 2 * m)))
    corr = np.concatenate([corr[-width:], corr[:width + 1]])
    k = int(np.argmax(corr))
    a, b, c = corr[k - 1], corr[k], corr[k + 1]
    return k - width + 0.5 * (a - c) / (a - 2 * b + c)


def test_rerender_at_another_rate_lines_up_with_the_recording(model, tmp_path):
    """A 48 kHz recording re-rendered at 44.1 and 96 kHz: resampled back to 48 kHz, it lines up
    with the recording within a sample (before the replay plan took the output chains' latency
    difference out, 44.1 kHz lagged by 435 samples: soxr's primed FIFO against the FIR's 47.5)."""
    import soxr

    from livegen.session.render import render_events
    from livegen.session.replay import output_latency, plan_replay
    from livegen.session.wiring import SessionControl, engine_header

    engine = _engine(model)
    session = SessionControl(engine, directory=tmp_path, header=engine_header(engine)).attach()
    engine.schedule([param("x", 0.2, t=0.1), note_on(60, 100, t=0.25), Event("record", t=0.4, value=1),
                     param("z0", 1.5, t=0.55), note_on(64, 90, t=0.7), note_off(60, t=0.8),
                     Event("record", t=1.2, value=0)])
    wait_for(lambda: session._armed is not None)
    _play(engine, 1.3)
    session.close()
    (rec,) = session.recordings
    recorded, _ = soundfile.read(rec.path, dtype="float32")
    header, events = read_events(rec.log_path)
    assert header["output_latency"] == output_latency(24000, 48000) == 47.5
    for rate in (44100, 96000):
        moved, skip, frames = plan_replay(header, events, samplerate=rate, log_path=rec.log_path)
        y, _ = render_events(moved, model=model[0], samplerate=rate, seed=header["seed"],
                             seconds=(skip + frames) / rate)
        back = soxr.resample(y[skip:skip + frames], rate, 48000, quality="VHQ")
        offset = _offset(back, recorded)
        print(f"re-render at {rate} Hz: {offset:+.2f} samples (at 48 kHz) against the recording")
        assert abs(offset) <= 1.0, (rate, offset)
        error = recorded - back[:len(recorded)]
        assert 10 * np.log10(np.sum(recorded ** 2) / np.sum(error ** 2)) > 10.0
    # 24 kHz has no resampler (no latency): a take from sample 0 would need 24 samples of silence
    # in front, which only a caller that pads can give.
    at_zero = {**header, "start_sample": 0}
    assert plan_replay(at_zero, events, samplerate=24000)[1] == 0
    assert plan_replay(at_zero, events, samplerate=24000, allow_negative=True)[1] == -24
    # An older log without `output_latency` plans the same (the latency of the chain it names).
    old = {k: v for k, v in header.items() if k != "output_latency"}
    assert plan_replay(old, events, samplerate=44100, log_path=rec.log_path)[1:] == \
        plan_replay(header, events, samplerate=44100, log_path=rec.log_path)[1:]


def test_trim_to_recording_drops_or_pads_the_chain_latency_difference():
    from livegen.session.replay import trim_to_recording

    y = np.arange(1, 7, dtype=np.float32)
    assert trim_to_recording(y, 2).tolist() == [3, 4, 5, 6]
    assert trim_to_recording(y, -2).tolist() == [0, 0, 1, 2, 3, 4, 5, 6]
    assert trim_to_recording(y.reshape(3, 2), -1).shape == (4, 2)
