"""Real-time scheduling of the sound server's threads: what it reports is what the kernel says."""

from __future__ import annotations

import os

from helpers import wait_for


POLICY_NAMES = {0: "other", 1: "fifo", 2: "rr"}


def kernel_policy(tid: int, pid: int | None = None) -> tuple[str, int]:
    """(policy, rt priority) of a thread from /proc, read independently of livegen.audio.realtime."""
    with open(f"/proc/{pid or os.getpid()}/task/{tid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return POLICY_NAMES.get(int(fields[38]), fields[38]), int(fields[37])


def test_sound_server_reports_its_callback_thread_policy(jack_server):
    """The policy the sound server publishes for its callback thread is the kernel's; on JACK
    it is the server's business (this test server runs --no-realtime), not raised by livegen;
    the housekeeping thread that shares the callback's interpreter lock runs at its priority."""
    from livegen.server.client import RemoteEngine
    from livegen.server.shm import Counter

    engine = RemoteEngine({"blocksize": 256, "realtime_priority": 8}, {"model": "random", "device": "cpu"})
    try:
        engine.wait_ready()
        engine.start()
        tid = wait_for(lambda: engine.shared[Counter.CB_TID], 10, "the sound server to publish its callback thread")
        policy = kernel_policy(tid, engine.pid)
        assert engine.status()["audio_policy"] == f"{policy[0]} {policy[1]}"
        assert policy == ("other", 0)
        main_thread = kernel_policy(engine.pid, engine.pid)
        assert main_thread == policy  # the housekeeping (main) thread follows the callback's policy
    finally:
        engine.stop(fade=False)
        engine.close()
