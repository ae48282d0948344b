"""Slow work beside a playing engine (reading and analysing a seed file): one job at a time, on
a worker thread at low CPU priority, so that it yields the cores to the audio path."""

from __future__ import annotations

import os
import threading

import torch

from livegen.errors import LivegenError


class Preparer:
    """Runs `prepare()` on a worker thread, then `post(event)` with what it returned; `done(ok,
    text)` follows from that thread: the event's `path` when it has one, or what was wrong
    (prefixed `what`; a `LivegenError`'s own text says it already). One job at a time: another is
    refused until the first is posted."""

    def __init__(self, *, threads: int = 1):
        self.threads = int(threads)
        self._lock = threading.Lock()
        self._busy = False

    def start(self, prepare, post, done, *, what: str = "", kind: str = "event") -> None:
        with self._lock:
            if self._busy:
                done(False, f"{what}another {kind} is still being prepared; try again when it plays")
                return
            self._busy = True
        threading.Thread(target=self._run, args=(prepare, post, done, what), name=f"livegen-{kind}",
                         daemon=True).start()

    def _run(self, prepare, post, done, what: str) -> None:
        try:
            _background_priority()
            torch.set_num_threads(self.threads)
            event = prepare()
        except LivegenError as exc:
            ok, text = False, str(exc)
        except Exception as exc:  # bad input must not end the performance
            ok, text = False, f"{what}cannot use it ({type(exc).__name__}: {exc})"
        else:
            post(event)
            ok, text = True, str(event.extra.get("path", event.type))
        finally:
            with self._lock:
                self._busy = False
        done(ok, text)


def _background_priority() -> None:
    """Lower this thread's CPU priority (Linux: nice 19 for one thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (OSError, AttributeError):
        pass
