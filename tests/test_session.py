"""Session recorder against real files, real processes killed for real, a real file-size limit."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import soundfile

from livegen.engine.events import param, read_events
from livegen.session.recorder import SessionRecorder
from conftest import REPO, require, require_binary
from helpers import wait_for


def _feed(rec: SessionRecorder, audio: np.ndarray, sizes, *, keep_up: bool = True) -> None:
    """Give `audio` to the recorder in blocks of the given sizes, waiting while the ring is >half full."""
    start = 0
    for n in sizes:
        if start >= len(audio):
            break
        while keep_up and rec._w - rec._r > rec._capacity // 2:
            time.sleep(0.002)
        rec.write_audio(audio[start:start + n])
        start += n
    assert start >= len(audio)


def _sox_frames(path) -> int:
    out = subprocess.run([require_binary("sox"), "--i", "-s", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 2])
def test_recorder_writes_exactly_the_blocks_given(tmp_path, channels):
    sr = 8000
    rng = np.random.default_rng(channels)
    shape = (int(2.3 * sr),) if channels == 1 else (int(2.3 * sr), channels)
    audio = rng.uniform(-1, 1, shape).astype(np.float32)
    # A 0.25 s ring fed in odd block sizes wraps many times at odd offsets.
    rec = SessionRecorder(tmp_path, samplerate=sr, channels=channels, header={"seed": 7, "blocksize": 64},
                          ring_seconds=0.25).start()
    sizes = rng.integers(1, 700, size=len(audio))
    stamped = []
    for k, sample in enumerate(range(0, len(audio), 997)):
        event = param("z0", k / 10)
        event.sample = sample
        stamped.append(event)
        rec.log_event(event)
    _feed(rec, audio, sizes)
    rec.stop()
    rec.stop()  # twice is fine
    assert rec.error is None and rec.dropped == 0
    back, rate = soundfile.read(rec.path, dtype="float32", always_2d=False)
    assert rate == sr
    assert back.shape == audio.shape
    assert np.array_equal(back, audio)
    assert _sox_frames(rec.path) == len(audio)
    assert rec.elapsed == pytest.approx(len(audio) / sr)
    assert rec.bytes_written == os.path.getsize(rec.path)

    header, events = read_events(rec.log_path)
    assert header["seed"] == 7 and header["blocksize"] == 64 and header["samplerate"] == sr
    assert header["wav"] == rec.path.name and header["channels"] == channels
    assert [e.sample for e in events] == [e.sample for e in stamped]
    assert [e.value for e in events] == [e.value for e in stamped]
    assert all(e.t == e.sample / sr for e in events)


def test_pcm24_recording(tmp_path):
    sr = 16000
    audio = (0.5 * np.sin(np.arange(sr) * 0.05)[:, None] * [1, -1]).astype(np.float32)
    rec = SessionRecorder(tmp_path, samplerate=sr, channels=2, subtype="PCM_24").start()
    _feed(rec, audio, [256] * 100)
    rec.stop()
    info = soundfile.info(rec.path)
    assert info.subtype == "PCM_24" and info.frames == sr
    back, _ = soundfile.read(rec.path, dtype="float32")
    assert np.abs(back - audio).max() <= 2.0 ** -23


def test_recordings_never_overwrite(tmp_path):
    sentinel = tmp_path / "livegen-take.wav"
    sentinel.write_bytes(b"not yours")
    first = SessionRecorder(tmp_path, samplerate=8000, channels=1, name="livegen-take").start()
    second = SessionRecorder(tmp_path, samplerate=8000, channels=1, name="livegen-take").start()
    # Two recorders started in the same second, named by the clock.
    a = SessionRecorder(tmp_path, samplerate=8000, channels=1).start()
    b = SessionRecorder(tmp_path, samplerate=8000, channels=1).start()
    for rec in (first, second, a, b):
        rec.write_audio(np.ones(100, np.float32))
        rec.stop()
    assert sentinel.read_bytes() == b"not yours"
    assert first.path.name == "livegen-take.1.wav" and second.path.name == "livegen-take.2.wav"
    assert first.log_path.name == "livegen-take.1.jsonl"
    names = {r.path for r in (first, second, a, b)} | {r.log_path for r in (first, second, a, b)}
    assert len(names) == 8
    for rec in (first, second, a, b):
        assert soundfile.info(rec.path).frames == 100


def test_unwritable_directory_is_a_clear_error(tmp_path):
    from livegen.errors import ParameterError

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    mounted = False
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions, not a read-only file system
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(locked)],
                                  capture_output=True, text=True)
            require(done.returncode == 0, f"a read-only tmpfs mount for root ({done.stderr.strip()})")
            mounted = True
        with pytest.raises(ParameterError, match="--record-dir"):
            SessionRecorder(locked, samplerate=8000, channels=1).start()
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(locked)], capture_output=True)
        locked.chmod(0o700)


def test_a_take_folder_that_became_a_file_is_named_as_one(tmp_path):
    """The folder a show records into was replaced by a file (a mount gone, a slip in another
    terminal): the next take is refused saying so, not with mkdir's "File exists"."""
    from livegen.errors import ParameterError

    takes = tmp_path / "takes"
    takes.write_text("not a folder")
    with pytest.raises(ParameterError, match="takes: that is a file, not a folder; make it a folder") as refused:
        SessionRecorder(takes, samplerate=8000, channels=1).start()
    assert "--record-dir" in str(refused.value)


_CHILD = textwrap.dedent("""
    import sys, time, numpy as np
    from livegen.engine.events import param
    from livegen.session.recorder import SessionRecorder
    directory, limit, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if limit:
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sr, block = 48000, 256
    errors = []
    rec = SessionRecorder(directory, samplerate=sr, channels=2, header={"seed": 1}, on_error=errors.append).start()
    print(rec.path, flush=True)
    n = np.arange(block)
    start = time.monotonic()
    done = 0
    while done < seconds * sr:
        # Real time: one block whenever the clock has passed it, like an engine thread.
        while time.monotonic() - start < done / sr:
            time.sleep(0.001)
        x = (0.5 * np.sin(2 * np.pi * 441 * (done + n) / sr)).astype(np.float32)
        rec.write_audio(np.stack([x, -x], axis=1))
        if done % (block * 50) == 0:
            event = param("z0", done / sr)
            event.sample = done
            rec.log_event(event)
        done += block
    print("played", done, flush=True)
    rec.stop()
    print("error", rec.error, flush=True)
    print("callback", errors, flush=True)
""")


def _expected_sine(frames: int) -> np.ndarray:
    x = (0.5 * np.sin(2 * np.pi * 441 * np.arange(frames) / 48000)).astype(np.float32)
    return np.stack([x, -x], axis=1)


def _child(tmp_path, *, limit=0, seconds=3.0, preexec_fn=None):
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), str(limit), str(seconds)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=preexec_fn)


@pytest.mark.live
def test_kill_9_leaves_a_playable_file(tmp_path):
    sox = require_binary("sox")
    child = _child(tmp_path, seconds=30)
    path = child.stdout.readline().strip()
    # killed once the header (kept current while recording) counts a second and a half
    wait_for(lambda: soundfile.info(path).frames >= 72000, 60, "the WAV header to count 1.5 s")
    counted = soundfile.info(path).frames
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    info = soundfile.info(path)
    assert info.samplerate == 48000 and info.channels == 2
    assert info.frames >= counted, (info.frames, counted)
    assert _sox_frames(path) == info.frames
    assert subprocess.run([sox, path, "-n", "stat"], capture_output=True).returncode == 0
    back, _ = soundfile.read(path, dtype="float32")
    assert np.array_equal(back, _expected_sine(len(back)))
    # The log lost at most its last line.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header, events = read_events(path[:-4] + ".jsonl", tolerate_truncation=True)
    assert header["wav"] == os.path.basename(path)
    assert len(events) >= 1 and all(e.sample % (256 * 50) == 0 for e in events)


def _limit_file_size(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.live
def test_file_size_limit_stops_recording_and_keeps_the_file(tmp_path):
    limit = 300_001  # ~0.78 s of 48 kHz stereo float, cut mid-frame
    # The child applies the limit itself after start-up (python's imports write .pyc files);
    # preexec_fn is the way a user's `ulimit -f` arrives, checked by a second, limit-at-exec run.
    child = _child(tmp_path, limit=limit, seconds=2.0)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0, out  # SIGXFSZ ignored: the "engine" played on
    lines = out.splitlines()
    path = lines[0]
    assert lines[1] == "played 96000"
    assert "file too large" in lines[2].lower() and "recording stopped" in lines[2]
    assert "recording stopped" in lines[3]  # on_error callback fired with the same message
    info = soundfile.info(path)
    assert 0 < info.frames and os.path.getsize(path) <= limit
    assert _sox_frames(path) == info.frames
    back, _ = soundfile.read(path, dtype="float32")
    assert np.array_equal(back, _expected_sine(len(back)))


@pytest.mark.live
def test_file_size_limit_from_the_shell(tmp_path):
    limit = 50_000_000  # imports fit; the recording does not get near it: no error, SIGXFSZ handler set
    child = _child(tmp_path, limit=0, seconds=0.3, preexec_fn=_limit_file_size(limit))
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0, out
    assert "error None" in out


class _StallingRecorder(SessionRecorder):
    """A disk that stops answering for `stall` seconds at its second write."""

    stall = 1.5

    def _write_frames(self, frames):
        self._writes = getattr(self, "_writes", 0) + 1
        if self._writes == 2:
            time.sleep(self.stall)
        super()._write_frames(frames)


@pytest.mark.slow
def test_stalled_disk_loses_nothing_with_a_generous_ring(tmp_path):
    sr = 48000
    audio = np.random.default_rng(3).uniform(-1, 1, (3 * sr, 2)).astype(np.float32)
    rec = _StallingRecorder(tmp_path, samplerate=sr, channels=2, ring_seconds=10).start()
    # Faster than real time: the whole 3 s arrive while the disk stalls for 1.5 s.
    _feed(rec, audio, [256] * (len(audio) // 256 + 1), keep_up=False)
    rec.stop()
    assert rec.dropped == 0 and rec.error is None
    back, _ = soundfile.read(rec.path, dtype="float32")
    assert np.array_equal(back, audio)


class _HeldRecorder(SessionRecorder):
    """A disk thread that hangs inside its first write until released."""

    def _write_frames(self, frames):
        self.held.set()
        self.release.wait()
        super()._write_frames(frames)


def test_engine_side_never_waits_for_a_hung_disk(tmp_path):
    """The engine's calls (`write_audio`, `log_event`) return while the disk thread hangs: a stall
    costs ring space, never the audio thread's time (a call that waited would never return here)."""
    import threading

    sr = 48000
    audio = np.random.default_rng(5).uniform(-1, 1, (sr, 2)).astype(np.float32)
    rec = _HeldRecorder(tmp_path, samplerate=sr, channels=2, ring_seconds=4)
    rec.held, rec.release = threading.Event(), threading.Event()
    rec.start()
    rec.write_audio(audio[:256])
    assert rec.held.wait(30), "the disk thread never started writing"
    feeder = threading.Thread(target=lambda: (_feed(rec, audio[256:], [256] * (len(audio) // 256 + 1), keep_up=False),
                                              rec.log_event(param("gain", -3.0))))
    feeder.start()
    feeder.join(60)
    hung = feeder.is_alive()
    rec.release.set()
    feeder.join()
    rec.stop()
    assert not hung, "the engine side waited for the hung disk"
    assert rec.dropped == 0 and rec.error is None
    back, _ = soundfile.read(rec.path, dtype="float32")
    assert np.array_equal(back, audio)


def test_stall_longer_than_the_ring_drops_but_keeps_time(tmp_path):
    sr = 8000
    audio = np.random.default_rng(4).uniform(-1, 1, (2 * sr, 1)).astype(np.float32)
    rec = _StallingRecorder(tmp_path, samplerate=sr, channels=1, ring_seconds=0.25).start()
    rec.stall = 0.5
    _feed(rec, audio, [100] * (len(audio) // 100), keep_up=False)
    rec.stop()
    assert rec.dropped > 0
    back, _ = soundfile.read(rec.path, dtype="float32", always_2d=True)
    # Dropped blocks became silence: the file keeps its length, so log sample stamps still line up.
    assert len(back) == len(audio)
    kept = np.any(back != 0, axis=1)
    assert np.array_equal(back[kept], audio[kept])
    assert len(audio) - kept.sum() == rec.dropped


def test_truncated_log_reads_up_to_the_last_whole_event(tmp_path):
    rec = SessionRecorder(tmp_path, samplerate=8000, channels=1, header={"seed": 3}).start()
    for k in range(5):
        event = param("gain", -float(k))
        event.sample = 800 * k
        rec.log_event(event)
    rec.write_audio(np.zeros(4000, np.float32))
    rec.stop()
    text = rec.log_path.read_text()
    rec.log_path.write_text(text[:-9])  # a crash cut the last line
    with pytest.warns(UserWarning, match="incomplete"):
        header, events = read_events(rec.log_path, tolerate_truncation=True)
    assert header["seed"] == 3
    assert [e.sample for e in events] == [0, 800, 1600, 2400]
    assert json.loads(text.splitlines()[-1])["sample"] == 3200


def test_full_disk_stops_recording_and_keeps_the_file(tmpfs):
    tiny_filesystem = tmpfs("1m")
    if tiny_filesystem is None:
        return  # this process may not mount: the test ran and passed in a namespace of its own
    sr = 48000
    audio = _expected_sine(3 * sr)  # 2.3 MB: does not fit
    messages = []
    rec = SessionRecorder(tiny_filesystem, samplerate=sr, channels=2, on_error=messages.append).start()
    _feed(rec, audio, [256] * (len(audio) // 256 + 1))
    rec.stop()
    assert rec.error is not None and "no space" in rec.error
    assert messages == [rec.error]
    info = soundfile.info(rec.path)
    assert 0 < info.frames < len(audio)
    assert _sox_frames(rec.path) == info.frames
    back, _ = soundfile.read(rec.path, dtype="float32")
    assert np.array_equal(back, audio[:len(back)])
