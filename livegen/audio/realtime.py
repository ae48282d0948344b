"""Real-time scheduling for the threads that keep audio flowing, and a look at what was obtained.

On a shared or busy machine a normal-policy thread can wait a whole scheduler time slice (or
several) behind other processes; an audio thread that waits that long misses its cycle. Stage
rigs run JACK and its clients with SCHED_FIFO for that reason. Linux schedules threads, not
processes: `os.sched_setscheduler(0, ...)` changes only the calling thread, so each thread asks
for itself (or is named by its native id). Without the privilege (no CAP_SYS_NICE, RLIMIT_RTPRIO
0) the request is refused and the thread plays on at normal policy.
"""

from __future__ import annotations

import os

REALTIME_PRIORITY = 3
"""Default base SCHED_FIFO priority: where JACK does not set it, the audio thread asks N+5."""

POLICIES = {0: "other", 1: "fifo", 2: "rr", 3: "batch", 5: "idle", 6: "deadline"}


def set_realtime(priority: int, *, tid: int = 0) -> tuple[bool, str]:
    """Put the calling thread (or native thread id `tid`) under SCHED_FIFO at `priority`.

    Returns (obtained, what happened in words); never raises. `priority` 0 or less asks for
    nothing.
    """
    priority = int(priority)
    if priority <= 0:
        return False, "off"
    if not hasattr(os, "sched_setscheduler"):
        return False, "this system has no sched_setscheduler"
    try:
        low, high = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
        if not low <= priority <= high:
            return False, f"priority {priority} is outside SCHED_FIFO's {low}..{high}"
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, ValueError, OverflowError) as exc:
        return False, f"SCHED_FIFO {priority} refused ({exc})"
    return True, f"SCHED_FIFO {priority}"


def thread_policy(tid: int = 0) -> tuple[str, int]:
    """(policy name, real-time priority) of a thread (0: the calling one)."""
    try:
        policy = os.sched_getscheduler(tid)
        priority = os.sched_getparam(tid).sched_priority
    except OSError:
        return "?", 0
    return POLICIES.get(policy, str(policy)), int(priority)


def process_threads(pid: int) -> list[tuple[str, str, int]]:
    """(thread name, policy, priority) of every thread of process `pid`, read from /proc."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in sorted(tids, key=int):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as handle:
                text = handle.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        # after the name: state is field 3 of stat(5); rt_priority is 40 and policy 41
        priority, policy = int(fields[37]), int(fields[38])
        out.append((name, POLICIES.get(policy, str(policy)), priority))
    return out


def describe_process(pid: int) -> str:
    """Short summary such as `3 threads fifo 10, 4 other` for a process's threads."""
    counts: dict[str, int] = {}
    for _, policy, priority in process_threads(pid):
        key = f"{policy} {priority}" if policy in ("fifo", "rr") else policy
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return "gone"
    return ", ".join(f"{n} thread{'s' if n > 1 else ''} {key}" for key, n in
                     sorted(counts.items(), key=lambda kv: (kv[0].startswith("other"), kv[0])))
