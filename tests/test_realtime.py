"""Real-time scheduling of the decoder and audio threads: what they report is what the kernel
says, and a refused request falls back to normal scheduling without stopping the sound."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers import wait_for
from livegen.audio.ring import RingBuffer

POLICY_NAMES = {0: "other", 1: "fifo", 2: "rr"}


def kernel_policy(tid: int, pid: int | None = None) -> tuple[str, int]:
    """(policy, rt priority) of a thread from /proc, read independently of livegen.audio.realtime."""
    with open(f"/proc/{pid or os.getpid()}/task/{tid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return POLICY_NAMES.get(int(fields[38]), fields[38]), int(fields[37])


def fifo_allowed_here() -> bool:
    """Whether this system lets a process take SCHED_FIFO 2 (asked of another program: chrt)."""
    chrt = shutil.which("chrt")
    return chrt is not None and subprocess.run([chrt, "-f", "2", "true"], capture_output=True).returncode == 0


class StandInOutput:
    """What `LiveEngine` needs of an output; nothing reads the ring, so the decoder fills it and waits."""

    def __init__(self):
        self.ring = RingBuffer(1 << 14)
        self.primed = False
        self.active = True
        self.samplerate = 48000
        self.blocksize = 256
        self.output_latency = 0.0
        self.underflows = self.ring_underruns = 0
        self.info = {"name": "stand-in"}

    def start(self):
        pass

    def close(self):
        self.active = False


def live_engine(priority: int, logs: list):
    from livegen.engine.notes import spectral_engine
    from livegen.engine.live import LiveEngine
    from livegen.engine.setup import load_engine_model

    model, _ = load_engine_model("random", device="cpu")
    engine = spectral_engine(model, samplerate=48000)
    return LiveEngine(engine, StandInOutput(), ahead=1024, realtime_priority=priority, log=logs.append)


def wait_filled(live, timeout: float = 20.0) -> None:
    wait_for(lambda: live.ring.fill >= live.ahead, timeout, lambda: f"the ring filled ({live.ring.fill} of {live.ahead})")


def test_decoder_thread_reports_the_policy_the_kernel_gave_it():
    logs: list[str] = []
    live = live_engine(2, logs)
    live.start()
    try:
        wait_filled(live)
        status = live.status()
        policy, priority = kernel_policy(live.decoder_tid)
        assert live.decoder_tid and live.decoder_tid != __import__("threading").get_native_id()
        assert status["realtime"] == int(policy == "fifo")
        assert (status["decoder_policy"], status["realtime_priority"]) == (policy, priority)
        if fifo_allowed_here():
            assert (policy, priority) == ("fifo", 2) and logs == []
        else:
            assert policy == "other" and len(logs) == 1 and "normal priority" in logs[0]
        # only the decoder thread asked: the thread that started it keeps its policy
        assert kernel_policy(__import__("threading").get_native_id())[0] == "other"
        assert live.ring.fill >= live.ahead
    finally:
        live.stop(fade=False)


@pytest.mark.parametrize("priority", [1000, -1])
def test_impossible_or_no_priority_plays_on_at_normal_policy(priority):
    logs: list[str] = []
    live = live_engine(priority, logs)
    live.start()
    try:
        wait_filled(live)
        status = live.status()
        assert status["realtime"] == 0
        assert kernel_policy(live.decoder_tid)[0] == "other" == status["decoder_policy"]
        assert live.ring.fill >= live.ahead and live.error is None  # still decoding
        if priority > 0:  # asked and refused: said once; not asked: nothing to say
            assert len(logs) == 1 and "1000" in logs[0] and "normal priority" in logs[0]
        else:
            assert logs == [] and live.realtime_note == "off"
    finally:
        live.stop(fade=False)


@pytest.mark.slow
def test_audio_process_reports_its_callback_thread_policy(jack_server):
    from livegen.audio.process import ProcessOutput, SharedRing

    ring = SharedRing(1 << 14)
    output = ProcessOutput(ring, blocksize=256, realtime_priority=8)
    try:
        output.open()
        output.start()
        wait_for(lambda: output.callback_policy != ("?", 0), 10, "the audio process to report its callback's policy")
        reported = output.callback_policy
        from livegen.audio.process import _CB_TID

        tid = int(ring.counters[_CB_TID])
        assert tid and reported == kernel_policy(tid, output.process.pid)
        # On JACK the callback runs on libjack's thread: its policy is the server's business
        # (this test server runs --no-realtime), not raised by the audio process.
        assert reported == ("other", 0)
    finally:
        output.close()
        ring.close(unlink=True)
